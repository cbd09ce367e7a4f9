"""Every id that goes into a URL path is checked once, before any request (issue #11, defect 1).

``delete_item("victim", "..")`` used to send ``DELETE .../instances/victim``: percent-encoding
leaves ``.`` and ``..`` alone and httpx removes dot segments. Each public method of both
clients that takes an id is called here with every hostile id; it must raise
``InvalidRequestError`` naming the argument, and the transport must see no request at all.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from aisearch import AISearchClient, AsyncAISearchClient, InvalidRequestError
from aisearch._config import check_path_id
from tests.unit_tests.core.payloads import ACCOUNT, BASE, MSGS, envelope, item

# Hostile in every id position: dot segments, separators, their encoded forms, any escape,
# control characters, empty or blank, look-alikes, too long, and values that are not strings.
HOSTILE: list[Any] = [
    "..",
    ".",
    "...",
    "../victim",
    "a/..",
    "a/b",
    "/",
    "a\\b",
    "\\",
    "%2e%2e",
    "%2E%2E",
    "%2e",
    ".%2e",
    "%2f",
    "a%2Fb",
    "%5c",
    "%5C",
    "%",
    "a%20b",
    "%00",
    "",
    " ",
    "a b",
    "\x00",
    "a\nb",
    "a\r",
    "\t",
    "\x7f",
    "\ud800",
    "\u2024\u2024",  # one-dot leaders
    "\uff0e\uff0e",  # fullwidth full stops
    "a?b",
    "a#b",
    "x" * 129,
    None,
    5,
    1.5,
    True,
    b"..",
    ["docs"],
    {"id": "docs"},
]
# Namespaces default to the client's when None, so None is not hostile there.
HOSTILE_NAMESPACES = [v for v in HOSTILE if v is not None]

OK = "docs"  # a valid instance id, namespace, item id and job id


def _call(method: str, *args: Any, **kwargs: Any) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
    return method, args, kwargs


# (field named in the error, builder of the call from the hostile value)
Builder = Callable[[Any], tuple[str, tuple[Any, ...], dict[str, Any]]]
ID_CASES: list[tuple[str, Builder]] = [
    ("instance_id", lambda v: _call("search", v, "q")),
    ("instance_id", lambda v: _call("chat_completions", v, MSGS)),
    ("instance_id", lambda v: _call("stream_chat_completions", v, MSGS)),
    ("instance_ids[0]", lambda v: _call("namespace_search", [v], "q")),
    ("instance_ids[0]", lambda v: _call("namespace_chat_completions", [v], MSGS)),
    ("instance_ids[0]", lambda v: _call("stream_namespace_chat_completions", [v], MSGS)),
    ("rag_id", lambda v: _call("legacy_search", v, "q")),
    ("rag_id", lambda v: _call("legacy_ai_search", v, "q")),
    ("rag_id", lambda v: _call("stream_legacy_ai_search", v, "q")),
    ("name", lambda v: _call("create_namespace", v)),
    ("name", lambda v: _call("get_namespace", v)),
    ("name", lambda v: _call("delete_namespace", v)),
    ("name", lambda v: _call("update_namespace", v, description="d")),
    ("instance_id", lambda v: _call("purge_cache", v)),
    # a list filter: None means "not given" there, so a hostile None is sent as False
    ("item_id", lambda v: _call("list_items", OK, item_id=False if v is None else v)),
    ("instance_id", lambda v: _call("create_instance", v)),
    ("instance_id", lambda v: _call("get_instance", v)),
    ("instance_id", lambda v: _call("delete_instance", v)),
    ("instance_id", lambda v: _call("update_instance", v, paused=True)),
    ("instance_id", lambda v: _call("instance_stats", v)),
    ("instance_id", lambda v: _call("create_job", v)),
    ("instance_id", lambda v: _call("list_jobs", v)),
    ("instance_id", lambda v: _call("get_job", v, OK)),
    ("instance_id", lambda v: _call("cancel_job", v, OK)),
    ("instance_id", lambda v: _call("job_logs", v, OK)),
    ("job_id", lambda v: _call("get_job", OK, v)),
    ("job_id", lambda v: _call("cancel_job", OK, v)),
    ("job_id", lambda v: _call("job_logs", OK, v)),
    ("instance_id", lambda v: _call("upload_item", v, "a.md", "x")),
    ("instance_id", lambda v: _call("create_or_update_item", v, "a.md")),
    ("instance_id", lambda v: _call("list_items", v)),
    ("instance_id", lambda v: _call("get_item", v, OK)),
    ("instance_id", lambda v: _call("delete_item", v, OK)),
    ("instance_id", lambda v: _call("sync_item", v, OK)),
    ("instance_id", lambda v: _call("list_item_chunks", v, OK)),
    ("instance_id", lambda v: _call("wait_until_indexed", v, [OK])),
    ("instance_id", lambda v: _call("wait_until_indexed", v)),
    ("item_id", lambda v: _call("get_item", OK, v)),
    ("item_id", lambda v: _call("delete_item", OK, v)),
    ("item_id", lambda v: _call("sync_item", OK, v)),
    ("item_id", lambda v: _call("list_item_chunks", OK, v)),
    ("item_ids[0]", lambda v: _call("wait_until_indexed", OK, [v])),
    ("item_ids[1]", lambda v: _call("wait_until_indexed", OK, [OK, v])),
]

# Every method with a namespace argument, called with valid ids and a hostile namespace.
NAMESPACE_CALLS: list[tuple[str, tuple[Any, ...]]] = [
    ("search", (OK, "q")),
    ("chat_completions", (OK, MSGS)),
    ("stream_chat_completions", (OK, MSGS)),
    ("namespace_search", ([OK], "q")),
    ("namespace_chat_completions", ([OK], MSGS)),
    ("stream_namespace_chat_completions", ([OK], MSGS)),
    ("create_instance", (OK,)),
    ("list_instances", ()),
    ("get_instance", (OK,)),
    ("delete_instance", (OK,)),
    ("update_instance", (OK,)),
    ("instance_stats", (OK,)),
    ("purge_cache", (OK,)),
    ("create_job", (OK,)),
    ("list_jobs", (OK,)),
    ("get_job", (OK, OK)),
    ("cancel_job", (OK, OK)),
    ("job_logs", (OK, OK)),
    ("upload_item", (OK, "a.md", "x")),
    ("create_or_update_item", (OK, "a.md")),
    ("list_items", (OK,)),
    ("get_item", (OK, OK)),
    ("delete_item", (OK, OK)),
    ("sync_item", (OK, OK)),
    ("list_item_chunks", (OK, OK)),
    ("wait_until_indexed", (OK, [OK])),
    ("wait_until_indexed", (OK,)),
]

ID_PARAMS = {"instance_id", "instance_ids", "rag_id", "name", "item_id", "item_ids", "job_id"}


def _public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


@pytest.mark.parametrize("cls", [AISearchClient, AsyncAISearchClient])
def test_the_tables_cover_every_public_method_that_takes_an_id(cls):
    covered_ids = {(b(OK)[0], field.split("[")[0]) for field, b in ID_CASES}
    covered_ns = {method for method, _ in NAMESPACE_CALLS}
    for name, sig in _public_methods(cls).items():
        for param in sig.parameters:
            if param in ID_PARAMS:
                assert (name, param) in covered_ids, f"{cls.__name__}.{name}({param}) untested"
            if param == "namespace":
                assert name in covered_ns, f"{cls.__name__}.{name}(namespace) untested"


def _never_called(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"a request was sent: {request.method} {request.url}")


def _run(h: Any, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    if method.startswith("stream_"):
        h.collect(method, *args, **kwargs)
    else:
        h.call(method, *args, **kwargs)


@pytest.mark.parametrize("value", HOSTILE, ids=repr)
@pytest.mark.parametrize(("field", "build"), ID_CASES, ids=[f"{b(OK)[0]}-{f}" for f, b in ID_CASES])
def test_hostile_id_is_refused_before_any_request(harness, field, build, value):
    h = harness(_never_called)
    method, args, kwargs = build(value)
    with pytest.raises(InvalidRequestError) as info:
        _run(h, method, args, kwargs)
    assert str(info.value).startswith(f"{field}: must be "), str(info.value)
    assert h.requests == []


@pytest.mark.parametrize("value", HOSTILE_NAMESPACES, ids=repr)
@pytest.mark.parametrize(("method", "args"), NAMESPACE_CALLS, ids=lambda x: str(x)[:40])
def test_hostile_namespace_is_refused_before_any_request(harness, method, args, value):
    h = harness(_never_called)
    kwargs: dict[str, Any] = {"namespace": value}
    if method == "update_instance":
        kwargs["paused"] = True
    with pytest.raises(InvalidRequestError) as info:
        _run(h, method, args, kwargs)
    assert str(info.value).startswith("namespace: must be "), str(info.value)
    assert h.requests == []


@pytest.mark.parametrize("value", HOSTILE_NAMESPACES, ids=repr)
def test_hostile_client_namespace_is_refused_by_the_constructor(harness, value):
    with pytest.raises(InvalidRequestError, match=r"^namespace: must be "):
        harness(_never_called, namespace=value)


@pytest.mark.parametrize("value", ["..", "a/b", "%2e%2e", "", None, 5])
def test_fan_out_keeps_a_hostile_target_as_its_error_and_sends_nothing(harness, value):
    h = harness(_never_called)
    if not isinstance(value, str):  # a target that is not a string is refused as a whole
        with pytest.raises(InvalidRequestError, match=r"^targets\[0\]: must be "):
            h.call("fan_out_search", [value], "q")
        assert h.requests == []
        return
    result = h.call("fan_out_search", [value], "q")
    assert h.requests == []
    assert len(result.errors) == 1
    assert isinstance(result.errors[0].error, InvalidRequestError)
    assert result.errors[0].message.startswith("instance_id: must be ")


@pytest.mark.parametrize("value", ["abc", b"abc", 5, {"a": 1}, iter(["a"])])
def test_item_ids_must_be_a_list_not_a_string(harness, value):
    # a string used to be waited on as the ids 'a', 'b', 'c'
    h = harness(_never_called)
    with pytest.raises(InvalidRequestError, match=r"^item_ids: must be a list of item ids"):
        h.call("wait_until_indexed", "docs", value)
    assert h.requests == []


ROOT = f"/client/v4/accounts/{ACCOUNT}/ai-search/namespaces/default/instances"


@pytest.mark.parametrize(
    ("method", "args", "path"),
    [
        ("delete_item", ("victim", "i.1~x"), "victim/items/i.1~x"),
        ("get_item", ("a" * 64, "x" * 128), f"{'a' * 64}/items/{'x' * 128}"),
        ("sync_item", ("_-_", "a..b"), "_-_/items/a..b"),
        ("list_item_chunks", ("docs", "-"), "docs/items/-/chunks"),
        ("cancel_job", ("docs", "0f9e.~_-"), "docs/jobs/0f9e.~_-"),
        ("job_logs", ("docs", "J0B"), "docs/jobs/J0B/logs"),
        ("get_instance", ("my_rag-2",), "my_rag-2"),
    ],
)
def test_a_valid_id_builds_the_expected_path(harness, method, args, path):
    payload = [] if method in ("list_item_chunks", "job_logs") else item("i")
    h = harness(lambda r: httpx.Response(200, json=envelope(payload)))
    h.call(method, *args)
    assert len(h.requests) == 1
    assert h.last.url.raw_path.decode().split("?")[0] == f"{ROOT}/{path}"
    assert str(h.last.url).startswith(BASE)


@pytest.mark.parametrize(
    ("value", "kind", "ok"),
    [
        ("a" * 64, "instance", True),
        ("a" * 65, "instance", False),
        ("Docs", "instance", False),
        ("a.b", "instance", False),
        ("x" * 128, "item", True),
        ("x" * 129, "job", False),
        ("a.", "item", True),
        ("..", "item", False),
        ("a\n", "item", False),
        ("a\n", "instance", False),
    ],
)
def test_check_path_id_bounds(value, kind, ok):
    if ok:
        assert check_path_id(value, "f", kind) == value
    else:
        with pytest.raises(InvalidRequestError, match=r"^f: must be "):
            check_path_id(value, "f", kind)
