"""aisearch_local.guard.Perimeter called as an ASGI application (no socket), fuzzed.

The same rules are checked over real HTTP in tests/integration_tests/server/test_perimeter.py;
here Hypothesis throws arbitrary header values and body framings at the middleware itself.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aisearch_local.guard import (
    MAX_BULK_BODY_BYTES,
    MAX_JSON_BYTES,
    MAX_MANAGEMENT_JSON_BYTES,
    MAX_UPLOAD_BODY_BYTES,
    Perimeter,
    body_limit,
    normalize_host,
    parse_host_header,
    source_outside_roots,
)

FUZZ = settings(max_examples=300, deadline=None, derandomize=True)
LATIN1 = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=255), max_size=60)
PATH = "/client/v4/accounts/a/ai-search/instances"


class _App:
    """The protected application: records what reached it."""

    def __init__(self) -> None:
        self.calls: list[bytes] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.calls.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def _call(
    guard: Perimeter,
    headers: dict[str, str],
    *,
    method: str = "POST",
    path: str = PATH,
    chunks: tuple[bytes, ...] = (b"",),
    scheme: str = "http",
) -> tuple[int, dict[str, Any] | None]:
    scope = {
        "type": "http",
        "scheme": scheme,
        "method": method,
        "path": path,
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
    }
    pending = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(guard(scope, receive, send))
    status = sent[0]["status"]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return status, (json.loads(body) if status != 200 else None)


def _assert_envelope(body: dict[str, Any] | None, code: int, needle: str) -> None:
    assert body is not None
    assert body["success"] is False and body["result"] is None and body["messages"] == []
    assert body["errors"][0]["code"] == code
    assert needle in body["errors"][0]["message"]


def _assert_refused(status: int, body: dict[str, Any] | None, needle: str) -> None:
    """A 403 / 10000 envelope whose message names ``needle``."""
    assert status == 403
    _assert_envelope(body, 10000, needle)


def _guard() -> tuple[Perimeter, _App]:
    app = _App()
    return Perimeter(app, bind_host="127.0.0.1", allowed_hosts=["search.internal"]), app


@pytest.mark.parametrize(
    ("value", "host"),
    [
        ("LocalHost:8787", "localhost"),
        ("[::1]:8787", "::1"),
        ("::1", "::1"),
        ("[::1]", "::1"),
        ("example.com.", "example.com"),
        ("127.0.0.1", "127.0.0.1"),
        (" a.b:1 ", "a.b"),
    ],
)
def test_normalize_host(value: str, host: str) -> None:
    assert normalize_host(value) == host


@pytest.mark.parametrize(
    "host",
    [
        "[::1]evil.example",
        "[::1]@evil",
        "127.0.0.1:18787@evil.example",
        "127.0.0.1:8787:1",
        "localhost:99999",
        "localhost:",
        "localhost:x",
        "",
        " ",
        "::1",
        "local host",
        "localhost/x",
        "user@localhost",
        "[]",
        "[::1",
    ],
)
def test_a_malformed_host_header_is_refused(host: str) -> None:
    assert parse_host_header(host) is None
    guard, app = _guard()
    status, body = _call(guard, {"host": host}, method="GET")
    assert status == 403 and not app.calls
    _assert_envelope(body, 10000, "Host")


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("LocalHost:8787", ("localhost", 8787)),
        ("[::1]:8787", ("::1", 8787)),
        ("[::1]", ("::1", None)),
        ("127.0.0.1.", ("127.0.0.1", None)),
        ("search.internal:65535", ("search.internal", 65535)),
    ],
)
def test_parse_host_header(value: str, parsed: tuple[str, int | None]) -> None:
    assert parse_host_header(value) == parsed


def test_no_host_header_passes_and_origin_scheme_must_match() -> None:
    guard, _app = _guard()
    # HTTP/1.0 without Host: a browser always sends Host, so this is not DNS rebinding.
    assert _call(guard, {}, method="GET")[0] == 200
    host = {"host": "127.0.0.1:18787"}
    assert _call(guard, {**host, "origin": "http://127.0.0.1:18787"})[0] == 200
    status, body = _call(guard, {**host, "origin": "https://127.0.0.1:18787"})
    _assert_refused(status, body, "Origin")
    assert _call(guard, {**host, "origin": "https://127.0.0.1:18787"}, scheme="https")[0] == 200
    status, body = _call(guard, {**host, "origin": "http://127.0.0.1:18787"}, scheme="https")
    assert status == 403


def test_body_limits_by_route() -> None:
    ns = "/client/v4/accounts/a/ai-search/namespaces/default/instances/x"
    assert body_limit("POST", ns + "/items") == MAX_UPLOAD_BODY_BYTES
    assert body_limit("POST", ns + "/search") == MAX_JSON_BYTES
    assert body_limit("POST", ns + "/chat/completions") == MAX_JSON_BYTES
    assert body_limit("POST", "/client/v4/accounts/a/autorag/rags/r/ai-search") == MAX_JSON_BYTES
    assert body_limit("PUT", ns + "/items") == MAX_MANAGEMENT_JSON_BYTES
    assert body_limit("POST", PATH) == MAX_MANAGEMENT_JSON_BYTES
    assert MAX_JSON_BYTES > 10 * 1024 * 1024 * 4 // 3  # a base64 10 MiB chat file part fits
    bare = "/client/v4/accounts/a/ai-search/instances/x/items"
    assert body_limit("POST", bare) == MAX_UPLOAD_BODY_BYTES
    # the bulk route under a namespace named "instances" ends like an upload: not one
    bulk = "/client/v4/_local/bulk/instances/x/items"
    assert body_limit("POST", bulk) == MAX_BULK_BODY_BYTES


def test_wildcard_bind_is_not_an_allowed_host() -> None:
    app = _App()
    guard = Perimeter(app, bind_host="0.0.0.0")
    status, body = _call(guard, {"host": "0.0.0.0:8787"}, method="GET")
    _assert_refused(status, body, "--allowed-host")
    assert _call(Perimeter(app, allowed_hosts=["*"]), {"host": "any.example"})[0] == 200


@FUZZ
@given(host=LATIN1)
def test_any_host_header_is_served_only_when_allowed(host: str) -> None:
    guard, _app = _guard()
    status, body = _call(guard, {"host": host}, method="GET")
    parsed = parse_host_header(host)
    allowed = parsed is not None and parsed[0] in {
        "localhost",
        "127.0.0.1",
        "::1",
        "search.internal",
    }
    assert (status == 200) is allowed
    if not allowed:
        _assert_refused(status, body, "Host")


ORIGINS = st.builds(
    "{}://{}:{}".format,
    st.sampled_from(["http", "https", "ftp", "HTTP"]),
    st.sampled_from(["127.0.0.1", "localhost", "evil.example", "[::1]", "127.0.0.1."]),
    st.sampled_from(["8787", "80", "1", "", "x"]),
)


@FUZZ
@given(origin=st.one_of(LATIN1, ORIGINS))
def test_only_the_server_own_origin_changes_state(origin: str) -> None:
    guard, _app = _guard()
    status, body = _call(guard, {"host": "127.0.0.1:8787", "origin": origin})
    if status == 200:
        page = urlsplit(origin.strip().lower())
        assert page.scheme == "http"  # the server's own scheme
        assert (page.hostname or "").rstrip(".") == "127.0.0.1" and page.port == 8787
    else:
        _assert_refused(status, body, "Origin")


CONTENT_TYPES = [
    "application/json",
    "application/ld+json",
    "Application/JSON; charset=utf-8",
    "application/jsonx",
    "application/json-seq",
    "application/x+json+",
    "text/json",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
]


@FUZZ
@given(ctype=st.one_of(LATIN1, st.sampled_from(CONTENT_TYPES)))
def test_json_routes_take_only_json(ctype: str) -> None:
    guard, app = _guard()
    headers = {"host": "localhost", "content-type": ctype, "content-length": "2"}
    status, body = _call(guard, headers, chunks=(b"{}",))
    base = ctype.partition(";")[0].strip().lower()
    is_json = base == "application/json" or (
        base.startswith("application/") and base.endswith("+json") and " " not in base
    )
    if status == 200:
        assert is_json, ctype
        assert app.calls == [b"{}"]
    else:
        assert status == 415 and not app.calls
        _assert_envelope(body, 7001, "Content-Type")


def test_a_body_without_content_type_passes_unless_a_page_sent_it() -> None:
    guard, app = _guard()
    assert _call(guard, {"host": "localhost", "content-length": "2"}, chunks=(b"{}",))[0] == 200
    assert app.calls == [b"{}"]
    headers = {"host": "localhost", "content-length": "2", "origin": "https://evil.example"}
    assert _call(guard, headers, chunks=(b"{}",))[0] == 403
    assert app.calls == [b"{}"]


@FUZZ
@given(sizes=st.lists(st.integers(0, 400_000), min_size=1, max_size=8))
def test_chunked_bodies_reach_the_route_whole_or_not_at_all(sizes: list[int]) -> None:
    guard, app = _guard()
    chunks = tuple(bytes([65 + i % 26]) * n for i, n in enumerate(sizes))
    headers = {
        "host": "localhost",
        "content-type": "application/json",
        "transfer-encoding": "chunked",
    }
    status, body = _call(guard, headers, chunks=chunks)
    if sum(sizes) <= MAX_MANAGEMENT_JSON_BYTES:
        assert status == 200 and app.calls == [b"".join(chunks)]
    else:
        assert status == 413 and not app.calls
        _assert_envelope(body, 7001, f"{MAX_MANAGEMENT_JSON_BYTES} byte")


def test_content_length_over_the_limit_is_refused_without_reading() -> None:
    guard, app = _guard()

    async def receive() -> dict[str, Any]:
        raise AssertionError("the body was read")

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": PATH + "/x/search",
        "headers": [
            (b"host", b"localhost"),
            (b"content-type", b"application/json"),
            (b"content-length", str(MAX_JSON_BYTES + 1).encode()),
        ],
    }
    asyncio.run(guard(scope, receive, send))
    assert sent[0]["status"] == 413 and not app.calls


def test_source_roots(tmp_path: Any) -> None:
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (tmp_path / "other").mkdir()
    (root / "link").symlink_to(tmp_path / "other")
    assert source_outside_roots(str(root), [root]) is None
    assert source_outside_roots(str(root / "a"), [root]) is None
    assert source_outside_roots(str(root / "missing"), [root]) is None
    for outside in (tmp_path / "other", root / "link", root / ".." / "other", tmp_path):
        message = source_outside_roots(str(outside), [root])
        assert message is not None and str(root) in message
    assert "no folder" in (source_outside_roots(str(root), []) or "")
    assert source_outside_roots(str(tmp_path / "rootx"), [root]) is not None  # not a prefix


@pytest.mark.parametrize("length", ["\u00b2", "\u00b9\u00b2", "1_0", "+2", " 2x"])
def test_a_content_length_that_is_not_ascii_digits_is_a_400(length: str) -> None:
    # str.isdigit() holds for the superscripts, which int() then refuses (a 500 before)
    guard, app = _guard()
    headers = {"host": "localhost", "content-type": "application/json", "content-length": length}
    status, body = _call(guard, headers, chunks=(b"{}",))
    assert status == 400 and not app.calls
    _assert_envelope(body, 7001, "Content-Length")


def test_the_bulk_route_takes_only_json_whatever_the_namespace_is_called() -> None:
    guard, app = _guard()
    headers = {"host": "localhost", "content-type": "text/plain", "content-length": "2"}
    for ns in ("default", "instances"):  # "instances" made the path look like an upload's
        path = f"/client/v4/_local/bulk/{ns}/x/items"
        status, body = _call(guard, headers, path=path, chunks=(b"{}",))
        assert status == 415 and not app.calls, ns
        _assert_envelope(body, 7001, "Content-Type")
