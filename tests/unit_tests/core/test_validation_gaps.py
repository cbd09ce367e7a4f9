"""Bad values give ``InvalidRequestError`` naming the field, never a raw Python error.

Issue #11, defect 8: ``account_id=5`` raised TypeError, ``timeout=float("inf")`` an
OverflowError at send time, a lone surrogate a UnicodeEncodeError inside httpx, NaN in
``extra_body`` a ValueError, ``wait_until_indexed("docs", "abc")`` waited on ``a``, ``b``, ``c``.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aisearch import AISearchClient, AISearchError, AsyncAISearchClient, InvalidRequestError
from tests.unit_tests.core.payloads import ACCOUNT, SEARCH_RESPONSE, TOKEN, envelope, item

MSGS = [{"role": "user", "content": "x"}]
NOT_STRINGS = [5, 1.5, True, b"acc", ["acc"], {"a": 1}, object()]


def _never_called(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"a request was sent: {request.method} {request.url}")


# --------------------------------------------------------------------------- constructor


@pytest.mark.parametrize("cls", [AISearchClient, AsyncAISearchClient])
@pytest.mark.parametrize("field", ["account_id", "api_token", "api_email", "api_key", "base_url"])
@pytest.mark.parametrize("value", NOT_STRINGS, ids=repr)
def test_a_string_argument_of_another_type_is_named(cls, field, value):
    kwargs: dict[str, Any] = {"account_id": ACCOUNT, "api_token": TOKEN}
    if field in ("api_email", "api_key"):
        kwargs = {"account_id": ACCOUNT, "api_email": "a@b.c", "api_key": "k" * 20}
    kwargs[field] = value
    with pytest.raises(InvalidRequestError, match=rf"^{field}: must be a string \(got "):
        cls(**kwargs)


@pytest.mark.parametrize(
    "url",
    [
        "http://",
        "https:///path",
        "http://h/x?y=1",
        "http://h/x#f",
        "http://h x/",
        "http://h/\n",
        "http://h/\x00",
        "http://[::1",
        "http://h:99999999/",
        "javascript:alert(1)",
    ],
)
def test_a_bad_base_url_is_named(url):
    with pytest.raises(InvalidRequestError, match=r"^base_url: "):
        AISearchClient(account_id=ACCOUNT, api_token=TOKEN, base_url=url)


@pytest.mark.parametrize(
    "url",
    [
        "https://user:pa55-SECRET@api.example/client/v4",
        "http://:pa55-SECRET@127.0.0.1:8787/client/v4",
        "ftp://user:pa55-SECRET@api.example/",
        "http://user:pa55-SECRET@h/x?y=1",
    ],
)
def test_credentials_in_base_url_are_refused_without_echo(url):
    with pytest.raises(InvalidRequestError, match=r"^base_url: ") as info:
        AISearchClient(account_id=ACCOUNT, api_token=TOKEN, base_url=url)
    assert "pa55-SECRET" not in str(info.value)


def test_port_zero_is_refused():
    with pytest.raises(InvalidRequestError, match=r"^base_url: .*port from 1 to 65535"):
        AISearchClient(account_id=ACCOUNT, api_token=TOKEN, base_url="http://127.0.0.1:0/v4")


BAD_SECONDS = [
    0,
    -1,
    -0.0,
    float("inf"),
    float("-inf"),
    float("nan"),
    1e400,
    10**400,
    7 * 24 * 3600 + 1,
    1e10,
    "10",
    True,
    None if False else [],
]


@pytest.mark.parametrize("value", BAD_SECONDS, ids=repr)
def test_a_bad_timeout_is_named_by_the_constructor_and_with_options(value):
    with pytest.raises(InvalidRequestError, match=r"^timeout: must be "):
        AISearchClient(account_id=ACCOUNT, api_token=TOKEN, timeout=value)
    client = AISearchClient(account_id=ACCOUNT, api_token=TOKEN)
    with pytest.raises(InvalidRequestError, match=r"^timeout: must be "):
        client.with_options(timeout=value)
    client.close()


@pytest.mark.parametrize(
    ("timeout", "part"),
    [
        (httpx.Timeout(float("inf")), "connect"),
        (httpx.Timeout(5.0, read=float("nan")), "read"),
        (httpx.Timeout(5.0, write=-1.0), "write"),
        (httpx.Timeout(5.0, pool=1e12), "pool"),
    ],
)
def test_each_phase_of_an_httpx_timeout_is_checked(timeout, part):
    with pytest.raises(InvalidRequestError, match=rf"^timeout\.{part}: must be "):
        AISearchClient(account_id=ACCOUNT, api_token=TOKEN, timeout=timeout)


def test_an_httpx_timeout_without_limits_and_the_longest_timeout_are_accepted():
    client = AISearchClient(account_id=ACCOUNT, api_token=TOKEN, timeout=httpx.Timeout(None))
    assert client.timeout == httpx.Timeout(None)
    week = client.with_options(timeout=7 * 24 * 3600)
    assert week.timeout.read == 604800.0 and week.timeout.connect == 5.0
    client.close()


# --------------------------------------------------------------------------- request bodies


@pytest.mark.parametrize(
    ("method", "args", "kwargs", "field"),
    [
        ("search", ("docs", "q\ud800"), {}, "query"),
        ("search", ("docs",), {"messages": [{"role": "user", "content": "\udfff"}]}, "messages[0]"),
        ("chat_completions", ("docs", MSGS), {"model": "m\ud800"}, "model"),
        ("legacy_ai_search", ("docs", "q"), {"system_prompt": "\ud800"}, "system_prompt"),
        ("search", ("docs", "q"), {"extra_body": {"x": float("nan")}}, "extra_body.x"),
        ("search", ("docs", "q"), {"extra_body": {"x": [1, float("inf")]}}, "extra_body.x[1]"),
        ("search", ("docs", "q"), {"extra_body": {"x": {"\ud800": 1}}}, "extra_body.x."),
        ("search", ("docs", "q"), {"extra_body": {"x": {1: 2}}}, "extra_body.x"),
        ("search", ("docs", "q"), {"extra_body": {"x": b"bytes"}}, "extra_body.x"),
        ("search", ("docs", "q"), {"extra_options": {"y": object()}}, "extra_options.y"),
        (
            "search",
            ("docs", "q"),
            {"extra_options": {"y": {"z": float("nan")}}},
            "extra_options.y.z",
        ),
        ("legacy_search", ("docs", "q"), {"extra_body": {"x": float("nan")}}, "extra_body.x"),
        ("namespace_search", (["docs"], "q\ud800"), {}, "query"),
        ("create_instance", ("docs",), {"chunk_size": float("nan")}, "chunk_size"),
        ("create_instance", ("docs",), {"source": b"bucket"}, "source"),
        ("update_instance", ("docs",), {"paused": {"a": {"b": float("nan")}}}, "paused.a.b"),
        ("create_namespace", ("ns",), {"description": "\ud800"}, "description"),
        ("create_job", ("docs",), {"description": "\ud800"}, "description"),
        ("create_or_update_item", ("docs", "a\ud800.md"), {}, "key"),
        ("create_or_update_item", ("docs", "a\n.md"), {}, "key"),
        (
            "create_or_update_item",
            ("docs", "a.md"),
            {"wait_for_completion": "yes"},
            "wait_for_completion",
        ),
        ("upload_item", ("docs", "a.md", "\ud800"), {}, "content"),
        ("upload_item", ("docs", "\ud800.md", "x"), {}, "key"),
        ("upload_item", ("docs", "a\x00.md", "x"), {}, "key"),
        ("upload_item", ("docs", "a.md", "x"), {"wait_for_completion": 1}, "wait_for_completion"),
        ("upload_item", ("docs", "a.md", "x"), {"metadata": {"a": "\ud800"}}, "metadata"),
        ("list_items", ("docs",), {"metadata_filter": {"k": "v" * 9000}}, "metadata_filter"),
        ("wait_until_indexed", ("docs", ["i"]), {"on_progress": "print"}, "on_progress"),
        ("wait_until_indexed", ("docs", ["i"]), {"timeout": float("inf")}, "timeout"),
        ("wait_until_indexed", ("docs", ["i"]), {"poll_interval": 1e10}, "poll_interval"),
        ("wait_until_indexed", ("docs", ["i"]), {"poll_interval": float("nan")}, "poll_interval"),
    ],
)
def test_a_value_that_cannot_be_sent_is_named_before_any_request(
    harness, method, args, kwargs, field
):
    h = harness(_never_called)
    with pytest.raises(InvalidRequestError) as info:
        if method.startswith("stream_"):
            h.collect(method, *args, **kwargs)
        else:
            h.call(method, *args, **kwargs)
    assert str(info.value).startswith(field), str(info.value)
    assert h.requests == []


def test_deep_nesting_is_refused_not_a_recursion_error(harness):
    deep: Any = 1
    for _ in range(100_000):
        deep = [deep]
    h = harness(_never_called)
    with pytest.raises(InvalidRequestError, match=r"^extra_body\.x(\[0\])+: nested deeper than 64"):
        h.call("search", "docs", "q", extra_body={"x": deep})
    with pytest.raises(InvalidRequestError, match=r"nested deeper than 64"):
        h.call("create_instance", "docs", chunk=deep)
    assert h.requests == []


def test_the_body_is_encoded_once_and_sent_as_json(harness):
    h = harness(lambda r: httpx.Response(200, json=SEARCH_RESPONSE))
    h.call("search", "docs", "caf\u00e9 \u2615", extra_body={"n": 1.5})
    assert h.last.headers["content-type"] == "application/json"
    assert h.last.content == '{"query":"café ☕","n":1.5}'.encode()
    assert int(h.last.headers["content-length"]) == len(h.last.content)


# --------------------------------------------------------------------------- Hypothesis


anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.binary(max_size=5),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.sampled_from(["\ud800", "..", "a/b", "http://", "https://h", "docs", 1e400, 10**400]),
)


@settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
@given(
    field=st.sampled_from(
        ["account_id", "api_token", "api_key", "namespace", "base_url", "timeout", "max_retries"]
    ),
    value=anything,
)
def test_constructor_never_raises_a_raw_python_error(field, value):
    kwargs: dict[str, Any] = {"account_id": ACCOUNT, "api_token": TOKEN}
    if field == "api_key":
        kwargs = {"account_id": ACCOUNT, "api_email": "a@b.c"}
    kwargs[field] = value
    try:
        AISearchClient(**kwargs).close()
    except AISearchError as exc:  # InvalidRequestError, or a missing value (AISearchError)
        assert str(exc).split(":")[0] in (field, "api_email and api_key"), str(exc)


def _ok(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith("/search"):
        return httpx.Response(200, json=SEARCH_RESPONSE)
    return httpx.Response(200, json=envelope(item("i")))


@settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
@given(
    call=st.sampled_from(["search", "get_item", "upload_item", "wait", "with_options"]),
    value=anything,
    extra=st.dictionaries(st.text(max_size=3), anything, max_size=2),
)
def test_methods_never_raise_a_raw_python_error(call, value, extra):
    client = AISearchClient(
        account_id=ACCOUNT,
        api_token=TOKEN,
        http_client=httpx.Client(transport=httpx.MockTransport(_ok)),
    )
    try:
        if call == "search":
            client.search("docs", value, extra_body=extra)
        elif call == "get_item":
            client.get_item("docs", value)
        elif call == "upload_item":
            client.upload_item("docs", "a.md", value, metadata=extra)
        elif call == "wait":
            client._sleep = lambda s: None
            client.wait_until_indexed("docs", ["i"], timeout=value, poll_interval=value)
        else:
            client.with_options(timeout=value, max_retries=value)
    except InvalidRequestError:
        pass
    except AISearchError as exc:  # a wait that ran out of time is fine too
        assert type(exc).__name__ == "IndexingTimeoutError", repr(exc)


def test_async_client_names_the_same_fields():
    async def run() -> None:
        client = AsyncAISearchClient(
            account_id=ACCOUNT,
            api_token=TOKEN,
            http_client=httpx.AsyncClient(transport=httpx.MockTransport(_never_called)),
        )
        with pytest.raises(InvalidRequestError, match=r"^item_ids: must be a list"):
            await client.wait_until_indexed("docs", "abc")
        with pytest.raises(InvalidRequestError, match=r"^query: must be valid Unicode"):
            await client.search("docs", "\ud800")
        await client.aclose()

    asyncio.run(run())
    assert math.isfinite(1.0)
