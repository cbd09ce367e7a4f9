"""Retry policy: pure delay/classification tables, and the clients' retry loops (no real sleep)."""

from __future__ import annotations

import email.utils

import httpx
import pytest

from aisearch import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    InvalidRequestError,
    RateLimitError,
)
from aisearch._retry import is_retryable, is_retryable_status, parse_retry_after, retry_delay
from tests.unit_tests.core.payloads import SEARCH_RESPONSE, error_body


@pytest.mark.parametrize(
    ("retries_done", "rand", "expected"),
    [
        (0, 0.0, 0.5),
        (1, 0.0, 1.0),
        (2, 0.0, 2.0),
        (3, 0.0, 4.0),
        (4, 0.0, 8.0),
        (5, 0.0, 8.0),
        (50, 0.0, 8.0),
        (0, 1.0, 0.375),
        (2, 0.5, 1.75),
        (4, 1.0, 6.0),
    ],
)
def test_backoff_schedule(retries_done, rand, expected):
    assert retry_delay(retries_done, rand=lambda: rand) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [(0.0, 0.0), (2.0, 2.0), (59.5, 59.5), (60.0, 60.0), (3600.0, 60.0), (-5.0, 0.0)],
)
def test_retry_after_is_honoured_and_capped(retry_after, expected):
    assert retry_delay(3, retry_after=retry_after, rand=lambda: 0.9) == expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "junk", "retry-after": "4"}, 4.0),
        ({"retry-after-ms": "nan", "retry-after": "4"}, 4.0),
    ],
)
def test_parse_retry_after(headers, expected):
    assert parse_retry_after(httpx.Headers(headers)) == expected


def test_parse_retry_after_http_date():
    now = 1_800_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(httpx.Headers({"retry-after": date}), now=lambda: now) == 30.0
    past = email.utils.formatdate(now - 30, usegmt=True)
    assert parse_retry_after(httpx.Headers({"retry-after": past}), now=lambda: now) == 0.0


@pytest.mark.parametrize(
    ("status", "retry"),
    [
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (408, True),
        (409, True),
        (422, False),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (504, True),
    ],
)
def test_retryable_statuses(status, retry):
    assert is_retryable_status(status) is retry
    assert is_retryable(APIStatusError("x", status_code=status)) is retry


@pytest.mark.parametrize(
    ("code", "retry"),
    [(7009, False), ("7009", False), (7099, True), (None, True), (1, True), ("x", True)],
)
def test_409_already_exists_is_final_and_other_409s_retry(code, retry):
    assert is_retryable_status(409, code) is retry
    assert is_retryable(APIStatusError("x", status_code=409, code=code)) is retry
    assert is_retryable_status(503, 7009)  # the code table is per status


def test_409_already_exists_is_not_retried(harness):
    conflict = httpx.Response(409, json=error_body(7009, "namespace 'a' already exists"))
    h = harness(sequence(conflict, ok()), max_retries=5)
    with pytest.raises(ConflictError):
        h.call("create_namespace", "a")
    assert len(h.requests) == 1 and h.sleeps == []


def test_409_modified_concurrently_is_retried(harness, no_jitter):
    conflict = httpx.Response(409, json=error_body(7099, "namespace modified concurrently"))
    h = harness(sequence(conflict, ok()), max_retries=1)
    h.call("search", "docs", "q")
    assert len(h.requests) == 2 and h.sleeps == [0.5]


def test_retryable_errors():
    assert is_retryable(APIConnectionError())
    assert is_retryable(APITimeoutError())
    assert not is_retryable(InvalidRequestError("x"))
    assert not is_retryable(ValueError("x"))


def sequence(*responses):
    """Handler returning the given responses (or raising exceptions) in order."""
    queue = list(responses)

    def handler(request):
        item = queue.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    return handler


def ok():
    return httpx.Response(200, json=SEARCH_RESPONSE)


def fail(status, **headers):
    return httpx.Response(status, json=error_body(1, f"status {status}"), headers=headers)


@pytest.fixture
def no_jitter(monkeypatch):
    monkeypatch.setattr("aisearch._retry.random.random", lambda: 0.0)


def test_5xx_then_success_backs_off_exponentially(harness, no_jitter):
    h = harness(sequence(fail(503), fail(500), ok()), max_retries=2)
    assert h.call("search", "docs", "q").chunks[0].id == "chunk001"
    assert len(h.requests) == 3
    assert h.sleeps == [0.5, 1.0]


def test_max_retries_is_respected(harness, no_jitter):
    h = harness(sequence(*[fail(502)] * 4), max_retries=3)
    with pytest.raises(InternalServerError):
        h.call("search", "docs", "q")
    assert len(h.requests) == 4
    assert h.sleeps == [0.5, 1.0, 2.0]


def test_zero_retries(harness):
    h = harness(sequence(fail(503)), max_retries=0)
    with pytest.raises(InternalServerError):
        h.call("search", "docs", "q")
    assert len(h.requests) == 1 and h.sleeps == []


def test_429_retry_after_is_honoured(harness, no_jitter):
    h = harness(
        sequence(fail(429, **{"retry-after": "7"}), fail(429, **{"retry-after": "120"}), ok()),
        max_retries=2,
    )
    h.call("search", "docs", "q")
    assert h.sleeps == [7.0, 60.0]


def test_429_exhausted_raises_rate_limit(harness):
    h = harness(sequence(fail(429), fail(429)), max_retries=1)
    with pytest.raises(RateLimitError):
        h.call("search", "docs", "q")
    assert len(h.requests) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_other_4xx_never_retried(harness, status):
    h = harness(sequence(fail(status), ok()), max_retries=5)
    with pytest.raises(APIStatusError):
        h.call("search", "docs", "q")
    assert len(h.requests) == 1 and h.sleeps == []


@pytest.mark.parametrize("status", [408, 409])
def test_408_409_retried(harness, status, no_jitter):
    h = harness(sequence(fail(status), ok()), max_retries=1)
    h.call("search", "docs", "q")
    assert len(h.requests) == 2 and h.sleeps == [0.5]


def test_connection_errors_and_timeouts_are_retried(harness, no_jitter):
    h = harness(
        sequence(httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), ok()), max_retries=2
    )
    assert h.call("search", "docs", "q").search_query == "How do I get started?"
    assert h.sleeps == [0.5, 1.0]


def test_validation_errors_are_not_retried(harness):
    h = harness(sequence(httpx.Response(200, content=b"{}"), ok()), max_retries=3)
    with pytest.raises(Exception, match="result"):
        h.call("search", "docs", "q")
    assert len(h.requests) == 1


def test_multipart_upload_is_rebuilt_on_retry(harness, no_jitter):
    item = {"success": True, "result": {"id": "i1", "key": "a.md", "status": "queued"}}
    h = harness(sequence(fail(503), httpx.Response(200, json=item)), max_retries=1)
    h.call("upload_item", "docs", "a.md", "hello", metadata={"folder": "x/"})
    assert len(h.requests) == 2
    assert h.requests[0].content == h.requests[1].content.replace(
        h.requests[1].headers["content-type"].split("boundary=")[1].encode(),
        h.requests[0].headers["content-type"].split("boundary=")[1].encode(),
    )
    assert b"hello" in h.requests[1].content


def test_with_options_changes_retries_and_timeout_sharing_the_pool(harness, no_jitter):
    h = harness(sequence(fail(503), fail(503), fail(503)), max_retries=0)
    clone = h.client.with_options(max_retries=2, timeout=3.0)
    assert clone._client is h.client._client
    assert clone.max_retries == 2 and h.client.max_retries == 0
    assert clone.timeout.read == 3.0 and clone.timeout.connect == 3.0
    h.client = clone
    with pytest.raises(InternalServerError):
        h.call("search", "docs", "q")
    assert len(h.requests) == 3
    assert h.requests[0].extensions["timeout"]["read"] == 3.0


def test_with_options_validates(harness):
    h = harness(sequence())
    with pytest.raises(InvalidRequestError, match="max_retries"):
        h.client.with_options(max_retries=-1)
    with pytest.raises(InvalidRequestError, match="timeout"):
        h.client.with_options(timeout=0)
    same = h.client.with_options()
    assert same.max_retries == h.client.max_retries


def test_default_timeout_is_sent_with_every_request(harness):
    h = harness(sequence(ok()))
    h.call("search", "docs", "q")
    assert h.last.extensions["timeout"] == {
        "connect": 5.0,
        "read": 30.0,
        "write": 30.0,
        "pool": 30.0,
    }


def test_bad_request_body_names_status(harness):
    h = harness(sequence(fail(400)))
    with pytest.raises(BadRequestError, match="HTTP 400"):
        h.call("search", "docs", "q")
