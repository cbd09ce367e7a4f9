"""Status codes and error bodies map to the right exception, with code, message, request id."""

from __future__ import annotations

import logging

import httpx
import pytest

from aisearch import (
    AISearchError,
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)
from tests.unit_tests.core.conftest import raising
from tests.unit_tests.core.payloads import GLOBAL_KEY, TOKEN, error_body

STATUS_CLASSES = [
    (400, BadRequestError, 7001, "Input Validation Error"),
    (401, AuthenticationError, 10001, "Unauthorized"),
    (403, PermissionDeniedError, 10000, "Authentication error"),
    (404, NotFoundError, 7002, "instance not found"),
    (409, ConflictError, 7009, "already exists"),
    (422, APIStatusError, 7001, "unprocessable"),
    (429, RateLimitError, 7020, "sync_in_cooldown"),
    (500, InternalServerError, 7000, "internal error"),
    (503, InternalServerError, 7017, "unable_to_connect_to_ai_search"),
]


@pytest.mark.parametrize(("status", "cls", "code", "message"), STATUS_CLASSES)
def test_status_maps_to_exception_with_envelope_fields(harness, status, cls, code, message):
    def handler(request):
        return httpx.Response(status, json=error_body(code, message), headers={"cf-ray": "8f1-SJC"})

    h = harness(handler, max_retries=0)
    with pytest.raises(cls) as info:
        h.call("search", "docs", "q")
    err = info.value
    assert type(err) is cls
    assert isinstance(err, APIStatusError) and isinstance(err, AISearchError)
    assert err.status_code == status
    assert err.code == code
    assert err.message == message
    assert err.request_id == "8f1-SJC"
    assert err.body == error_body(code, message)
    assert err.response is not None and err.response.status_code == status
    hint = "; credential used: the API token from api_token=" if status in (401, 403) else ""
    assert str(err).startswith(f"HTTP {status} (code {code}): {message}{hint}")
    assert str(err).endswith(" [request id 8f1-SJC]")
    assert len(h.requests) == 1


@pytest.mark.parametrize(
    ("content", "headers", "message", "code"),
    [
        (
            b"<html>502 Bad Gateway</html>",
            {"content-type": "text/html"},
            "<html>502 Bad Gateway</html>",
            None,
        ),
        (b"", {}, "Not Found", None),
        (
            b'{"error": {"code": 9, "message": "nested"}}',
            {"content-type": "application/json"},
            "nested",
            9,
        ),
        (b'{"error": "plain string"}', {"content-type": "application/json"}, "plain string", None),
        (
            b'{"message": "top-level message"}',
            {"content-type": "application/json"},
            "top-level message",
            None,
        ),
        (b'{"errors": ["bare string"]}', {"content-type": "application/json"}, "bare string", None),
        (b"[1, 2]", {"content-type": "application/json"}, "Not Found", None),
    ],
)
def test_error_body_shapes(harness, content, headers, message, code):
    def handler(request):
        return httpx.Response(404, content=content, headers={**headers, "x-request-id": "req-7"})

    h = harness(handler)
    with pytest.raises(NotFoundError) as info:
        h.call("get_instance", "docs")
    assert info.value.message == message
    assert info.value.code == code
    assert info.value.request_id == "req-7"


def test_success_false_on_200_raises_instead_of_an_empty_result(harness):
    def handler(request):
        return httpx.Response(200, json=error_body(7003, "No route for that URI"))

    h = harness(handler)
    with pytest.raises(APIStatusError) as info:
        h.call("search", "docs", "q")
    assert info.value.status_code == 200
    assert info.value.code == 7003
    assert info.value.message == "No route for that URI"
    assert len(h.requests) == 1  # never retried


@pytest.mark.parametrize(
    "method",
    [
        ("list_instances",),
        ("get_instance", "docs"),
        ("chat_completions", "docs", [{"role": "user", "content": "x"}]),
        ("legacy_search", "docs", "q"),
    ],
)
def test_success_false_on_200_for_every_parser(harness, method):
    h = harness(lambda r: httpx.Response(200, json=error_body(1, "nope")))
    with pytest.raises(APIStatusError, match="nope"):
        h.call(*method)


@pytest.mark.parametrize(
    ("payload", "what"),
    [
        (b'{"success": true, "result": {"chunks": [{"id": "x"}]}}', "score"),
        (b'{"success": true, "result": {"chunks": "nope"}}', "chunks"),
        (b'{"success": true}', "no result"),
        (b"not json at all", "search"),
        (b'{"success": true, "result": {"chunks": [{"id": 1, "score": "high"}]}}', "chunks"),
    ],
)
def test_2xx_body_that_does_not_fit_raises_with_excerpt(harness, payload, what):
    h = harness(lambda r: httpx.Response(200, content=payload))
    with pytest.raises(APIResponseValidationError) as info:
        h.call("search", "docs", "q")
    err = info.value
    assert err.status_code == 200
    assert err.body_excerpt == payload.decode()[:200]
    assert "body:" in str(err)
    assert len(h.requests) == 1


def test_validation_excerpt_is_short(harness):
    huge = b'{"success": true, "result": {"chunks": [' + b'{"id": "x"},' * 5000 + b"{}]}}"
    h = harness(lambda r: httpx.Response(200, content=huge))
    with pytest.raises(APIResponseValidationError) as info:
        h.call("search", "docs", "q")
    assert len(info.value.body_excerpt) <= 203
    assert len(str(info.value)) < 600


@pytest.mark.parametrize(
    "payload", [b'{"choices": "x"}', b"[]", b'{"success": true, "result": {"choices": 3}}']
)
def test_chat_body_that_does_not_fit(harness, payload):
    h = harness(lambda r: httpx.Response(200, content=payload))
    with pytest.raises(APIResponseValidationError):
        h.call("chat_completions", "docs", [{"role": "user", "content": "x"}])


def test_list_result_that_is_not_a_list(harness):
    h = harness(lambda r: httpx.Response(200, json={"success": True, "result": {"id": "x"}}))
    with pytest.raises(APIResponseValidationError):
        h.call("list_instances")
    h = harness(lambda r: httpx.Response(200, json={"success": True, "result": [{"no_id": 1}]}))
    with pytest.raises(APIResponseValidationError):
        h.call("list_items", "docs")


def test_empty_2xx_body(harness):
    h = harness(lambda r: httpx.Response(204))
    assert h.call("delete_instance", "docs") is None
    h = harness(lambda r: httpx.Response(200, content=b""))
    with pytest.raises(APIResponseValidationError, match="empty"):
        h.call("get_instance", "docs")


def test_connection_error_is_wrapped(harness):
    h = harness(raising(httpx.ConnectError("connection refused")), max_retries=0)
    with pytest.raises(APIConnectionError) as info:
        h.call("search", "docs", "q")
    assert not isinstance(info.value, APITimeoutError)
    assert info.value.request is not None
    assert isinstance(info.value.__cause__, httpx.ConnectError)


def test_timeout_is_wrapped(harness):
    h = harness(raising(httpx.ReadTimeout("slow")), max_retries=0)
    with pytest.raises(APITimeoutError):
        h.call("search", "docs", "q")


SECRET_ECHO = f"bad token {TOKEN} rejected"


def _secrets_absent(text: str) -> bool:
    return TOKEN not in text and GLOBAL_KEY not in text


def test_token_never_in_repr_str_exceptions_or_logs(harness, caplog):
    caplog.set_level(logging.DEBUG)

    def handler(request):
        return httpx.Response(403, json=error_body(10000, SECRET_ECHO))

    h = harness(handler, max_retries=1)
    assert _secrets_absent(repr(h.client)) and _secrets_absent(str(h.client))
    assert _secrets_absent(repr(h.client._config)) and _secrets_absent(str(vars(h.client)))
    with pytest.raises(PermissionDeniedError) as info:
        h.call("search", "docs", "q")
    assert h.last.headers["authorization"] == f"Bearer {TOKEN}"  # it was sent...
    err = info.value
    for text in (str(err), repr(err), err.message, *map(str, err.args)):
        assert _secrets_absent(text)
    assert "***" in err.message
    # ...and a retryable failure with logging at DEBUG never logs it
    h2 = harness(lambda r: httpx.Response(503, json=error_body(1, "down")), max_retries=2)
    with pytest.raises(InternalServerError):
        h2.call("search", "docs", "q")
    assert any("retrying" in r.getMessage() for r in caplog.records)
    for record in caplog.records:
        assert _secrets_absent(record.getMessage())
        assert _secrets_absent(str(record.args))


def test_error_body_is_scrubbed_too(harness):
    h = harness(lambda r: httpx.Response(403, json=error_body(10000, SECRET_ECHO)), max_retries=0)
    with pytest.raises(PermissionDeniedError) as info:
        h.call("search", "docs", "q")
    assert _secrets_absent(str(info.value.body))
    assert info.value.body["errors"][0]["message"] == "bad token *** rejected"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("instance 'local-notes' not found", "instance 'local-notes' not found"),
        ("<html><title>Not Found</title></html>", "<html><title>Not Found</title></html>"),
        ("token local is not valid", "token *** is not valid"),
        ("Bearer local", "Bearer ***"),
        ("localhost refused 'local'", "localhost refused '***'"),
    ],
)
def test_a_short_local_token_is_scrubbed_only_where_it_stands_alone(harness, message, expected):
    # README's local setup uses a short token: scrubbing every substring mangled messages
    h = harness(
        lambda r: httpx.Response(404, json=error_body(7002, message)),
        api_token="local",
        max_retries=0,
    )
    with pytest.raises(NotFoundError) as info:
        h.call("search", "docs", "q")
    assert info.value.message == expected


def test_stream_error_events_are_scrubbed(harness):
    sse = f'event: error\ndata: {{"error": "token {TOKEN} expired"}}\n\n'.encode()
    h = harness(
        lambda r: httpx.Response(200, headers={"content-type": "text/event-stream"}, content=sse),
        max_retries=0,
    )
    with pytest.raises(APIStatusError) as info:
        h.collect_into([], "stream_chat_completions", "docs", [{"role": "user", "content": "x"}])
    assert info.value.message == "token *** expired"
    assert _secrets_absent(str(info.value.body)) and _secrets_absent(str(info.value))


def test_global_key_auth_headers_and_secrecy(harness):
    h = harness(
        lambda r: httpx.Response(401, json=error_body(10001, f"key {GLOBAL_KEY}")),
        api_token=None,
        api_email="me@example.com",
        api_key=GLOBAL_KEY,
        max_retries=0,
    )
    with pytest.raises(AuthenticationError) as info:
        h.call("get_instance", "docs")
    assert h.last.headers["x-auth-email"] == "me@example.com"
    assert h.last.headers["x-auth-key"] == GLOBAL_KEY
    assert "authorization" not in h.last.headers
    assert _secrets_absent(str(info.value)) and _secrets_absent(repr(h.client))


@pytest.mark.parametrize(
    ("method", "payload"),
    [
        (("chat_completions", "docs", [{"role": "user", "content": "x"}]), b"<html>"),
        (("get_instance", "docs"), b'{"success": "maybe"}'),
        (("get_instance", "docs"), b"[]"),
        (("get_instance", "docs"), b'{"success": true, "result": {"name": "no id"}}'),
        (("get_item", "docs", "i1"), b'{"success": true, "result": {"id": "i1", "metadata": 3}}'),
    ],
)
def test_management_and_chat_bodies_that_do_not_fit(harness, method, payload):
    h = harness(lambda r: httpx.Response(200, content=payload))
    with pytest.raises(APIResponseValidationError) as info:
        h.call(*method)
    assert info.value.body_excerpt == payload.decode()


def test_item_error_text_and_missing_error(harness):
    body = {"success": True, "result": {"id": "i1", "status": "error", "error": "bad pdf"}}
    h = harness(lambda r: httpx.Response(200, json=body))
    assert h.call("get_item", "docs", "i1").error == "bad pdf"
    body = {"success": True, "result": {"id": "i1", "error": None, "metadata": None}}
    h = harness(lambda r: httpx.Response(200, json=body))
    got = h.call("get_item", "docs", "i1")
    assert (got.error, got.metadata) == (None, {})


def test_stream_error_status_whose_body_breaks(harness, mode):
    from tests.unit_tests.core.conftest import stream_content

    def handler(request):
        if mode == "sync":

            def gen():
                yield b'{"success": false'
                raise httpx.ReadError("reset")

            content = gen()
        else:

            async def agen():
                yield b'{"success": false'
                raise httpx.ReadError("reset")

            content = agen()
        return httpx.Response(500, content=content)

    assert stream_content  # the helper exists for regular pieces
    h = harness(handler, max_retries=0)
    with pytest.raises(APIConnectionError, match="ReadError"):
        h.collect("stream_chat_completions", "docs", [{"role": "user", "content": "x"}])


def test_error_from_body_edge_cases():
    from aisearch._exceptions import error_from_body

    err = error_from_body(
        {"status": 404, "errors": [{"code": 1.5, "message": "m"}]}, 200, None, "d"
    )
    assert isinstance(err, NotFoundError)
    assert (err.status_code, err.code, err.message) == (404, "1.5", "m")
    err = error_from_body({"errors": [{"code": 3}]}, 500, "rid", "default text")
    assert (err.message, err.request_id) == ("default text", "rid")


def test_local_protocol_error_never_quotes_header_values(harness):
    # httpx's LocalProtocolError text can quote an illegal header value (the token)
    h = harness(
        raising(httpx.LocalProtocolError(f"Illegal header value b'Bearer {TOKEN}\\n'")),
        max_retries=0,
    )
    with pytest.raises(APIConnectionError) as info:
        h.call("search", "docs", "q")
    assert TOKEN not in str(info.value)
    assert "LocalProtocolError" in str(info.value)
