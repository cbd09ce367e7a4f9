"""The credentials never show in an exception, whatever path built it (issue #11, defect 6).

The secrets matrix: each auth mode x each error path x each view of the exception. A server
(or a proxy) may echo the credential anywhere: in an error envelope, in a 200 that says
``success: false``, in an HTML page, in an SSE line. And the exceptions keep the request,
whose headers carry the credential: they are redacted in the live object and when pickled.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from aisearch import (
    AISearchClient,
    AISearchError,
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AsyncAISearchClient,
    StreamInterruptedError,
)
from aisearch._exceptions import MAX_MESSAGE_CHARS
from tests.unit_tests.core.payloads import ACCOUNT, GLOBAL_KEY, MSGS, SSE, TOKEN, error_body

AUTH_MODES: dict[str, dict[str, Any]] = {
    "bearer": {"api_token": TOKEN},
    "email+key": {"api_token": None, "api_email": "me@example.com", "api_key": GLOBAL_KEY},
}
ALL_SECRETS = (TOKEN, GLOBAL_KEY)


def _fill(value: Any, secret: str) -> Any:
    if isinstance(value, str):
        return value.replace("SECRET", secret)
    if isinstance(value, bytes):
        return value.replace(b"SECRET", secret.encode())
    if isinstance(value, dict):
        return {k: _fill(v, secret) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, secret) for v in value]
    return value


def _answer(status: int, **kwargs: Any) -> Callable[[str], Callable[[httpx.Request], Any]]:
    def make(secret: str) -> Callable[[httpx.Request], Any]:
        return lambda request: httpx.Response(status, **_fill(kwargs, secret))

    return make


def _sse(content: bytes) -> Callable[[str], Callable[[httpx.Request], Any]]:
    return _answer(200, content=content, headers=SSE)


def _raise(exc_type: type[Exception]) -> Callable[[str], Callable[[httpx.Request], Any]]:
    def make(secret: str) -> Callable[[httpx.Request], Any]:
        def handler(request: httpx.Request) -> httpx.Response:
            raise exc_type(f"failed while sending {secret} upstream")

        return handler

    return make


class _Broken(httpx.SyncByteStream, httpx.AsyncByteStream):
    """An event stream that sends its sources, then fails with ``exc_type`` (sync or async)."""

    def __init__(self, exc_type: type[Exception], secret: str) -> None:
        self._exc_type = exc_type
        self._secret = secret

    def _fail(self) -> Exception:
        return self._exc_type(f"lost the stream of {self._secret}")

    def __iter__(self) -> Any:
        yield b"event: chunks\ndata: []\n\n"
        raise self._fail()

    async def __aiter__(self) -> Any:
        yield b"event: chunks\ndata: []\n\n"
        raise self._fail()


def _breaks(exc_type: type[Exception]) -> Callable[[str], Callable[[httpx.Request], Any]]:
    def make(secret: str) -> Callable[[httpx.Request], Any]:
        return lambda request: httpx.Response(200, headers=SSE, stream=_Broken(exc_type, secret))

    return make


SEARCH = ("call", "search", ("docs", "q"))
STREAM = ("collect", "stream_chat_completions", ("docs", MSGS))
# the secret sits right where a 200-character excerpt is cut
AT_THE_CUT = "<html>" + "x" * 190 + " SECRET </html>"

# (name, expected error class, how to call, handler factory)
PATHS: list[tuple[str, type[AISearchError], tuple[str, str, tuple[Any, ...]], Any]] = [
    ("4xx JSON", APIStatusError, SEARCH, _answer(403, json=error_body(10000, "bad SECRET"))),
    ("5xx JSON", APIStatusError, SEARCH, _answer(503, json=error_body(7017, "down SECRET"))),
    ("4xx text", APIStatusError, SEARCH, _answer(401, content=b"denied for SECRET")),
    ("4xx text at the cut", APIStatusError, SEARCH, _answer(400, content=AT_THE_CUT.encode())),
    (
        "4xx header echo",
        APIStatusError,
        SEARCH,
        _answer(403, json=error_body(1, "x"), headers={"x-echo": "SECRET", "cf-ray": "SECRET"}),
    ),
    ("200 success:false", APIStatusError, SEARCH, _answer(200, json=error_body(1, "SECRET"))),
    (
        "200 success:false, wrong shape",
        APIStatusError,
        SEARCH,
        _answer(200, json={"success": False, "errors": [{"code": "SECRET"}], "result": 3}),
    ),
    (
        "200 HTML",
        APIResponseValidationError,
        SEARCH,
        _answer(200, content=b"<html>SECRET</html>", headers={"content-type": "text/html"}),
    ),
    (
        "200 HTML at the cut",
        APIResponseValidationError,
        SEARCH,
        _answer(200, content=AT_THE_CUT.encode()),
    ),
    (
        "200 wrong-shape JSON",
        APIResponseValidationError,
        SEARCH,
        _answer(200, json={"success": True, "result": {"chunks": [{"SECRET": 1}]}}),
    ),
    (
        "200 wrong-shape JSON key",
        APIResponseValidationError,
        ("call", "list_item_chunks", ("docs", "i1")),
        _answer(200, json={"success": True, "result": {"SECRET": [1]}}),
    ),
    (
        "stream non-SSE 2xx JSON",
        APIResponseValidationError,
        STREAM,
        _answer(200, json={"note": "SECRET"}),
    ),
    (
        "stream non-SSE 2xx error JSON",
        APIStatusError,
        STREAM,
        _answer(200, json={"error": "SECRET"}),
    ),
    (
        "stream non-SSE 2xx text",
        APIResponseValidationError,
        STREAM,
        _answer(200, content=b"SECRET", headers={"content-type": "text/plain"}),
    ),
    ("stream 4xx", APIStatusError, STREAM, _answer(401, json=error_body(1, "SECRET"))),
    (
        "SSE non-JSON data",
        APIResponseValidationError,
        STREAM,
        _sse(b"event: chunks\ndata: SECRET\n\n"),
    ),
    (
        "SSE message not JSON object",
        APIResponseValidationError,
        STREAM,
        _sse(b'data: ["SECRET"]\n\n'),
    ),
    (
        "SSE error event",
        APIStatusError,
        STREAM,
        _sse(b'event: error\ndata: {"error": "SECRET"}\n\n'),
    ),
    ("SSE error event, text", APIStatusError, STREAM, _sse(b"event: error\ndata: SECRET\n\n")),
    (
        "SSE in-stream error object",
        APIStatusError,
        STREAM,
        _sse(b'data: {"errors": [{"message": "SECRET"}]}\n\n'),
    ),
    ("connection error", APIConnectionError, SEARCH, _raise(httpx.ConnectError)),
    ("timeout", APITimeoutError, SEARCH, _raise(httpx.ReadTimeout)),
    ("stream connection error", APIConnectionError, STREAM, _raise(httpx.ConnectError)),
    ("local protocol error", APIConnectionError, SEARCH, _raise(httpx.LocalProtocolError)),
    (
        "SSE message non-JSON data",
        APIResponseValidationError,
        STREAM,
        _sse(b"data: not json Authorization: Bearer SECRET\n\n"),
    ),
    (
        "SSE errors event non-JSON data",
        APIResponseValidationError,
        ("collect", "stream_namespace_chat_completions", (["docs"], MSGS)),
        _sse(b"event: errors\ndata: SECRET\n\n"),
    ),
    ("stream read timeout mid-way", APITimeoutError, STREAM, _breaks(httpx.ReadTimeout)),
    ("stream broken mid-way", StreamInterruptedError, STREAM, _breaks(httpx.ReadError)),
    ("read error of the body", APIConnectionError, SEARCH, _breaks(httpx.ReadError)),
]


def _chain_views(err: BaseException) -> dict[str, str]:
    """Every exception chained to ``err`` (``__cause__``, ``__context__``, recursively)."""
    views: dict[str, str] = {}
    todo: list[tuple[str, BaseException | None]] = [
        ("__cause__", err.__cause__),
        ("__context__", err.__context__),
    ]
    seen: set[int] = set()
    while todo:
        where, link = todo.pop()
        if link is None or id(link) in seen:
            continue
        seen.add(id(link))
        views[where] = f"{link} {link!r} {link.args!r} {vars(link)!r}"
        for attr in ("doc", "body", "input", "content"):
            if hasattr(link, attr):
                views[f"{where}.{attr}"] = repr(getattr(link, attr))
        request = getattr(link, "_request", None)
        if isinstance(request, httpx.Request):
            views[f"{where}.request.headers"] = repr(request.headers.raw)
            views[f"{where}.request.content"] = repr(request.content)
        todo += [(f"{where}.__cause__", link.__cause__), (f"{where}.__context__", link.__context__)]
    return views


def _views(err: BaseException) -> dict[str, str | bytes]:
    """Every way a user (or a log, or a pickle) can look at an exception."""
    views: dict[str, str | bytes] = {
        "str": str(err),
        "repr": repr(err),
        "args": repr(err.args),
        "vars": repr(vars(err)),
        "pickle": pickle.dumps(err),
    }
    for attr in ("body", "message", "body_excerpt", "code", "request_id"):
        if hasattr(err, attr):
            views[attr] = repr(getattr(err, attr))
    request = getattr(err, "request", None)
    response = getattr(err, "response", None)
    if request is not None:
        views["request.headers"] = repr(request.headers)
        views["request.headers.raw"] = repr(request.headers.raw)
    if response is not None:
        views["response.request.headers"] = repr(response.request.headers)
        views["response.request.headers.raw"] = repr(response.request.headers.raw)
        views["response.headers"] = repr(response.headers.raw)
        views["response.content"] = response.content
        views["response pickle"] = pickle.dumps(response)
    views.update(_chain_views(err))
    return views


def _run(h: Any, how: tuple[str, str, tuple[Any, ...]]) -> None:
    kind, method, args = how
    getattr(h, kind)(method, *args)


@pytest.mark.parametrize("auth", list(AUTH_MODES))
@pytest.mark.parametrize(("path", "cls", "how", "make"), PATHS, ids=[p[0] for p in PATHS])
def test_secrets_matrix(harness, auth, path, cls, how, make):
    secret = TOKEN if auth == "bearer" else GLOBAL_KEY
    h = harness(make(secret), max_retries=0, **AUTH_MODES[auth])
    with pytest.raises(cls) as info:
        _run(h, how)
    sent = h.requests[-1].headers
    assert secret in (sent.get("authorization", "") + sent.get("x-auth-key", ""))  # it was sent
    views = _views(info.value)
    for view, text in views.items():
        for value in ALL_SECRETS:
            needle: str | bytes = value.encode() if isinstance(text, bytes) else value
            assert needle not in text, f"{path} / {auth}: the credential shows in {view}"
    if path.startswith("4xx text") or "200 HTML" in path:
        assert "***" in views["str"]  # the echo was scrubbed, not dropped


@pytest.mark.parametrize("auth", list(AUTH_MODES))
def test_exception_headers_are_redacted_live_and_after_pickling(harness, auth):
    h = harness(_answer(403, json=error_body(1, "no"))(""), max_retries=0, **AUTH_MODES[auth])
    with pytest.raises(APIStatusError) as info:
        h.call("get_instance", "docs")
    err = info.value
    sent = err.response.request.headers
    for name in ("authorization", "x-auth-key"):
        if name in h.last.headers:
            assert sent[name] in ("***", "Bearer ***") or sent[name] == "***"
    if auth == "email+key":
        assert sent["x-auth-email"] == "me@example.com"  # not a secret: kept
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is type(err) and str(back) == str(err)
    assert (back.status_code, back.code, back.body) == (err.status_code, err.code, err.body)
    assert back.response.json() == err.response.json()
    for name in ("authorization", "x-auth-key"):
        assert back.response.request.headers.get(name, "***") in ("***", "Bearer ***")


def test_connection_error_request_and_its_cause_are_redacted(harness):
    h = harness(_raise(httpx.ConnectError)(TOKEN), max_retries=0)
    with pytest.raises(APIConnectionError) as info:
        h.call("search", "docs", "q")
    err = info.value
    assert err.request.headers["authorization"] == "***"
    assert err.request.url == h.last.url and err.request.method == "POST"
    assert json.loads(err.request.content) == {"query": "q"}  # the body is kept
    assert err.__cause__.request.headers["authorization"] == "***"
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is APIConnectionError and str(back) == str(err)
    assert back.request.headers["authorization"] == "***"


@pytest.mark.parametrize("cls", [AISearchClient, AsyncAISearchClient])
def test_access_headers_of_an_injected_client_are_redacted_and_scrubbed(cls):
    access = {
        "CF-Access-Client-Id": "id-0123456789abcdef.access",
        "CF-Access-Client-Secret": "s" * 40,
    }
    body = error_body(
        1, f"denied {access['CF-Access-Client-Id']} {access['CF-Access-Client-Secret']}"
    )
    transport = httpx.MockTransport(lambda r: httpx.Response(403, json=body))
    http = (httpx.Client if cls is AISearchClient else httpx.AsyncClient)(
        transport=transport, headers=access
    )
    client = cls(account_id=ACCOUNT, api_token=TOKEN, http_client=http, max_retries=0)
    import asyncio

    with pytest.raises(APIStatusError) as info:
        result = client.get_instance("docs")
        if cls is AsyncAISearchClient:
            asyncio.run(result)
    err = info.value
    for value in access.values():
        for text in _views(err).values():
            assert (value.encode() if isinstance(text, bytes) else value) not in text
    assert err.response.request.headers["cf-access-client-secret"] == "***"
    assert err.response.request.headers["cf-access-client-id"] == "***"
    assert err.message == "denied *** ***"


def test_matrix_size():
    # documented in the report: auth modes x paths x (sync, async); views per case vary
    assert len(AUTH_MODES) * len(PATHS) * 2 == 116


# --------------------------------------------------------------------------- message caps


HUGE = 20 * 1024 * 1024


@pytest.mark.parametrize(
    ("how", "make", "cls"),
    [
        (SEARCH, _answer(500, content=b"x" * HUGE), APIStatusError),
        (SEARCH, _answer(400, json=error_body(1, "y" * HUGE)), APIStatusError),
        (SEARCH, _answer(400, json={"errors": [{"code": "c" * HUGE}]}), APIStatusError),
        (SEARCH, _answer(200, json=error_body(1, "z" * HUGE)), APIStatusError),
        (SEARCH, _answer(200, content=b"<html>" + b"h" * HUGE), APIResponseValidationError),
        (
            STREAM,
            _sse(b"event: error\ndata: " + b"e" * HUGE + b"\n\n"),
            APIStatusError,
        ),
    ],
    ids=["5xx text", "4xx message", "4xx code", "200 success:false", "200 HTML", "SSE error"],
)
def test_a_20_mb_error_body_gives_a_capped_message(harness, how, make, cls):
    h = harness(make(""), max_retries=0)
    with pytest.raises(cls) as info:
        _run(h, how)
    err = info.value
    limit = MAX_MESSAGE_CHARS + 400  # the cap, the marker, the status and code prefix
    assert len(str(err)) < limit and len(repr(err)) < limit
    assert all(len(str(a)) < limit for a in err.args)
    if isinstance(err, APIStatusError):
        assert len(err.message) <= MAX_MESSAGE_CHARS + 40
    assert "more characters]" in str(err) or len(getattr(err, "body_excerpt", "")) <= 203


def test_a_huge_validation_message_is_capped():
    from aisearch import InvalidRequestError

    with pytest.raises(InvalidRequestError) as info:
        AISearchClient(account_id=ACCOUNT, api_token=TOKEN, namespace="n" * HUGE)
    assert len(str(info.value)) < MAX_MESSAGE_CHARS + 100


def test_errors_built_by_hand_without_a_request_or_a_read_body():
    # a response without a request, a request whose body was never read, an unread response
    err = APIStatusError("m", status_code=500, response=httpx.Response(500, content=b"x"))
    assert err.response.content == b"x" and err.message == "m"
    request = httpx.Request(
        "POST", "https://h/x", headers={"Authorization": f"Bearer {TOKEN}"}, content=iter([b"x"])
    )
    conn = APIConnectionError(f"failed {TOKEN}", request=request)
    assert conn.request.headers["authorization"] == "***"
    assert TOKEN not in str(conn) and conn.request.content == b""
    unread = httpx.Response(502, content=iter([b"late"]), request=request)
    err = APIStatusError(f"bad {TOKEN}", status_code=502, response=unread)
    assert err.response.content == b"" and err.message == "bad ***"
    assert err.response.request.headers["authorization"] == "***"


def test_an_error_is_scrubbed_when_it_is_built_not_afterwards():
    err = APIStatusError(f"echo {TOKEN}", status_code=400, body={"m": TOKEN})
    assert TOKEN in err.message  # nothing told the constructor what the secret is
    err = APIStatusError(f"echo {TOKEN}", status_code=400, body={"m": TOKEN}, secrets=[TOKEN])
    assert (err.message, err.body, str(err)) == ("echo ***", {"m": "***"}, "HTTP 400: echo ***")


def test_an_item_error_echoing_the_token_is_scrubbed_from_the_indexing_error(harness):
    from aisearch import IndexingError
    from tests.unit_tests.core.payloads import envelope, item

    failed = item("i1", status="error", error=f"cannot fetch with {TOKEN}")
    h = harness(lambda r: httpx.Response(200, json=envelope(failed)))
    with pytest.raises(IndexingError) as info:
        h.call("wait_until_indexed", "docs", ["i1"])
    assert TOKEN not in str(info.value) and "cannot fetch with ***" in str(info.value)
    assert len(str(pickle.loads(pickle.dumps(info.value)))) == len(str(info.value))


class _Counted(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A 20 MB body sent 64 KiB at a time, counting the pieces the client pulled."""

    def __init__(self, piece: bytes) -> None:
        self.piece = piece
        self.pulled = 0

    def __iter__(self) -> Any:
        for _ in range(HUGE // len(self.piece)):
            self.pulled += 1
            yield self.piece

    async def __aiter__(self) -> Any:
        for _ in range(HUGE // len(self.piece)):
            self.pulled += 1
            yield self.piece


@pytest.mark.parametrize("how", [SEARCH, STREAM], ids=["search", "stream"])
@pytest.mark.parametrize("content_type", ["text/plain", "application/json"])
def test_a_20_mb_error_body_is_read_up_to_the_cap(harness, how, content_type):
    from aisearch._parse import MAX_ERROR_BODY

    body = _Counted(b"x" * 65536)
    h = harness(
        lambda r: httpx.Response(
            500, headers={"content-type": content_type, "content-length": str(HUGE)}, stream=body
        ),
        max_retries=0,
    )
    with pytest.raises(APIStatusError) as info:
        _run(h, how)
    err = info.value
    assert body.pulled <= MAX_ERROR_BODY // 65536 + 1  # the rest was never read
    assert err.response.content == b"x" * MAX_ERROR_BODY and err.body == "x" * MAX_ERROR_BODY
    assert err.status_code == 500 and err.response.headers["content-type"] == content_type
    assert len(pickle.dumps(err)) < MAX_ERROR_BODY + 65536  # the body once, not 41 MB
    back = pickle.loads(pickle.dumps(err))
    assert back.response.content == err.response.content and back.body == err.body


def test_an_error_body_under_the_cap_is_kept_whole_and_decoded(harness):
    payload = error_body(7, "y" * 1000)
    h = harness(
        lambda r: httpx.Response(400, json=payload, headers={"content-encoding": "identity"}),
        max_retries=0,
    )
    with pytest.raises(APIStatusError) as info:
        h.call("search", "docs", "q")
    assert info.value.body == payload and info.value.response.json() == payload
    assert info.value.code == 7
    back = pickle.loads(pickle.dumps(info.value))
    assert back.body == payload and back.response.json() == payload


def test_a_text_body_that_is_not_the_response_text_is_pickled_as_it_is():
    response = httpx.Response(502, content="café".encode("latin-1"))
    for body in ("other", "café"):  # the response decodes to "caf\ufffd", not "café"
        err = APIStatusError("m", status_code=502, body=body, response=response)
        assert pickle.loads(pickle.dumps(err)).body == body
    err = APIStatusError("m", status_code=502, body="", response=httpx.Response(502))
    assert pickle.loads(pickle.dumps(err)).body == ""
