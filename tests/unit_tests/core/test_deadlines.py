"""Deadlines: attempt budgets, the call's total_timeout, stream idle/total limits, pool waits.

Pure arithmetic is tested directly; the clients run on ``httpx.MockTransport`` with a fake
monotonic clock that only moves when a test (or a fake body, or a fake sleep) moves it, so no
assertion depends on the machine's speed. Real hostile servers are in
``tests/integration_tests/core/test_deadlines_live.py``.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aisearch import (
    AISearchClient,
    APITimeoutError,
    AsyncAISearchClient,
    InternalServerError,
    InvalidRequestError,
    SourcesEvent,
    StreamEndEvent,
    TextDeltaEvent,
)
from aisearch._config import MAX_SECONDS, check_optional_seconds
from aisearch._retry import (
    attempt_budget,
    attempt_time,
    call_end,
    capped_timeouts,
    is_retryable,
    sleep_fits,
)
from tests.unit_tests.core.conftest import raising
from tests.unit_tests.core.payloads import (
    ACCOUNT,
    SEARCH_RESPONSE,
    SSE,
    STREAM_CHUNKS_EVENT,
    STREAM_DELTAS,
    STREAM_DONE,
    STREAM_FINISH,
    TOKEN,
    dumps,
    error_body,
)

MESSAGES = [{"role": "user", "content": "q"}]

# ---------------------------------------------------------------------- pure arithmetic


@pytest.mark.parametrize(
    ("timeout", "budget"),
    [
        (httpx.Timeout(2.0, connect=2.0), 2.0),
        (httpx.Timeout(30.0, connect=5.0), 30.0),
        (httpx.Timeout(1.0, read=7.0), 7.0),
        (httpx.Timeout(1.0, pool=9.0), 9.0),
        # no read limit (long generations): no attempt budget, not the connect limit's 3 s
        (httpx.Timeout(None, connect=3.0), None),
        (httpx.Timeout(5.0, read=None), None),
        (httpx.Timeout(None), None),
    ],
)
def test_attempt_budget_is_the_largest_phase_timeout(timeout, budget):
    assert attempt_budget(timeout) == budget


@pytest.mark.parametrize(
    ("now", "budget", "end", "expected"),
    [
        (100.0, 2.0, None, 2.0),  # no call deadline: the budget
        (100.0, None, None, None),  # nothing at all
        (100.0, None, 103.0, 3.0),  # no budget: what is left of the call
        (100.0, 2.0, 110.0, 2.0),  # the budget is nearer
        (100.0, 2.0, 100.5, 0.5),  # the call's deadline is nearer
        (100.0, 2.0, 100.0, 0.0),  # the deadline is now
        (100.0, 2.0, 99.0, -1.0),  # and past
    ],
)
def test_attempt_time(now, budget, end, expected):
    assert attempt_time(now, budget, end) == expected


def test_call_end_and_sleep_fits():
    assert call_end(None, 50.0) is None
    assert call_end(2.5, 50.0) == 52.5
    assert sleep_fits(100.0, 0.0, None)
    assert sleep_fits(0.5, 10.0, 11.0)
    assert not sleep_fits(1.0, 10.0, 11.0)  # would wake exactly at the deadline
    assert not sleep_fits(2.0, 10.0, 11.0)


def test_capped_timeouts_only_shrinks():
    timeouts = {"connect": 5.0, "read": 30.0, "write": 30.0, "pool": None}
    assert capped_timeouts(timeouts, 7.5) == {
        "connect": 5.0,
        "read": 7.5,
        "write": 7.5,
        "pool": 7.5,
    }
    assert capped_timeouts(timeouts, 60.0) == {**timeouts, "pool": 60.0}
    assert timeouts["read"] == 30.0  # a new mapping; the input is not changed


def test_pool_timeout_is_not_retryable_other_timeouts_are():
    def wrapped(cause: Exception) -> APITimeoutError:
        try:
            raise APITimeoutError("request timed out") from cause
        except APITimeoutError as exc:
            return exc

    assert not is_retryable(wrapped(httpx.PoolTimeout("full")))
    assert is_retryable(wrapped(httpx.ReadTimeout("slow")))
    assert is_retryable(wrapped(httpx.ConnectTimeout("slow")))
    assert is_retryable(APITimeoutError())


# ---------------------------------------------------------------------- validation

BAD_SECONDS = [
    (0, "must be a positive number of seconds (got 0)"),
    (-1.5, "must be a positive number of seconds (got -1.5)"),
    (math.nan, "must be a positive number of seconds (got nan)"),
    (math.inf, "must be finite and at most 604800 seconds (7 days) (got inf)"),
    (float("1e400"), "must be finite and at most 604800 seconds (7 days) (got inf)"),
    (10**400, "must be finite and at most 604800 seconds (7 days) (got 1000000000"),
    ("1", "must be a positive number of seconds (got '1')"),
    (True, "must be a positive number of seconds (got True)"),
    ([1], "must be a positive number of seconds (got [1])"),
]


@pytest.mark.parametrize("cls", [AISearchClient, AsyncAISearchClient])
@pytest.mark.parametrize("field", ["total_timeout", "stream_idle_timeout", "timeout"])
@pytest.mark.parametrize(("value", "message"), BAD_SECONDS)
def test_bad_durations_name_the_field(cls, field, value, message):
    with pytest.raises(InvalidRequestError) as info:
        cls(account_id=ACCOUNT, api_token=TOKEN, **{field: value})
    assert str(info.value).startswith(f"{field}: {message}")


@pytest.mark.parametrize("field", ["total_timeout", "stream_idle_timeout"])
@pytest.mark.parametrize(("value", "message"), BAD_SECONDS)
def test_with_options_validates_durations(harness, field, value, message):
    h = harness(lambda request: httpx.Response(200, json=SEARCH_RESPONSE))
    with pytest.raises(InvalidRequestError) as info:
        h.client.with_options(**{field: value})
    assert str(info.value).startswith(f"{field}: {message}")


def test_durations_default_set_keep_and_clear(harness):
    h = harness(lambda request: httpx.Response(200, json=SEARCH_RESPONSE))
    assert h.client.total_timeout is None and h.client.stream_idle_timeout is None
    h = harness(
        lambda request: httpx.Response(200, json=SEARCH_RESPONSE),
        total_timeout=12,
        stream_idle_timeout=3.5,
    )
    assert h.client.total_timeout == 12.0 and isinstance(h.client.total_timeout, float)
    assert h.client.stream_idle_timeout == 3.5
    kept = h.client.with_options(max_retries=1)
    assert kept.total_timeout == 12.0 and kept.stream_idle_timeout == 3.5
    changed = h.client.with_options(total_timeout=4, stream_idle_timeout=1)
    assert changed.total_timeout == 4.0 and changed.stream_idle_timeout == 1.0
    cleared = h.client.with_options(total_timeout=None, stream_idle_timeout=None)
    assert cleared.total_timeout is None and cleared.stream_idle_timeout is None
    assert h.client.total_timeout == 12.0  # the original is untouched


# ---------------------------------------------------------------------- the clients


class Clock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr("aisearch._deadlines.time.monotonic", c.monotonic)
    return c


@pytest.fixture
def no_jitter(monkeypatch):
    monkeypatch.setattr("aisearch._retry.random.random", lambda: 0.0)


def sleep_advancing(h: Any, clock: Clock, extra: float = 0.0) -> None:
    """Make the client's retry sleeps move the fake clock (by ``extra`` more: a late wake-up)."""
    if h.mode == "sync":

        def sleep(delay: float) -> None:
            h.sleeps.append(delay)
            clock.now += delay + extra

    else:

        async def sleep(delay: float) -> None:
            h.sleeps.append(delay)
            clock.now += delay + extra

    h.client._sleep = sleep


def slow_body(mode: str, clock: Clock, pieces: list[bytes], step: float) -> Any:
    """Response content whose every piece takes ``step`` seconds of the fake clock."""
    if mode == "sync":

        def gen():
            for piece in pieces:
                clock.now += step
                yield piece

        return gen()

    async def agen():
        for piece in pieces:
            clock.now += step
            await asyncio.sleep(0)  # let the event loop see the clock (and fire timers)
            yield piece

    return agen()


def fail(status: int) -> httpx.Response:
    return httpx.Response(status, json=error_body(1, f"status {status}"))


def test_pool_timeout_is_not_retried(harness):
    h = harness(raising(httpx.PoolTimeout("no connection free")), max_retries=3)
    with pytest.raises(APITimeoutError) as info:
        h.call("search", "docs", "q")
    assert isinstance(info.value.__cause__, httpx.PoolTimeout)
    assert len(h.requests) == 1 and h.sleeps == []


def test_total_timeout_stops_the_retries(harness, clock, no_jitter):
    h = harness(lambda request: fail(503), max_retries=5, total_timeout=1.0)
    sleep_advancing(h, clock)
    with pytest.raises(InternalServerError):
        h.call("search", "docs", "q")
    # t=0: 503, sleep 0.5 (ends before 1.0); t=0.5: 503, a 1.0 s sleep would pass the deadline
    assert h.sleeps == [0.5] and len(h.requests) == 2


def test_without_total_timeout_every_retry_runs(harness, clock, no_jitter):
    h = harness(lambda request: fail(503), max_retries=5)
    sleep_advancing(h, clock)
    with pytest.raises(InternalServerError):
        h.call("search", "docs", "q")
    assert h.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0] and len(h.requests) == 6


def test_total_timeout_shrinks_the_phase_timeouts(harness, clock):
    h = harness(lambda request: httpx.Response(200, json=SEARCH_RESPONSE), total_timeout=0.25)
    h.call("search", "docs", "q")
    assert h.last.extensions["timeout"] == dict.fromkeys(("connect", "read", "write", "pool"), 0.25)


def test_a_late_wake_up_past_the_deadline_sends_nothing(harness, clock, no_jitter):
    h = harness(lambda request: fail(503), max_retries=5, total_timeout=1.0)
    sleep_advancing(h, clock, extra=2.0)  # the 0.5 s sleep fits, but the process wakes late
    with pytest.raises(APITimeoutError, match="total_timeout passed"):
        h.call("search", "docs", "q")
    assert len(h.requests) == 1


def test_a_trickled_body_is_cut_at_the_attempt_budget(harness, mode, clock):
    body = dumps(SEARCH_RESPONSE)
    pieces = [body[i : i + 16] for i in range(0, len(body), 16)]
    assert len(pieces) > 8

    def handler(request):
        return httpx.Response(200, content=slow_body(mode, clock, pieces, 0.3))

    h = harness(handler, timeout=2.0, max_retries=0)
    with pytest.raises(APITimeoutError):
        h.call("search", "docs", "q")
    # every read took 0.3 s, far below the 2 s read timeout: only the attempt's deadline ends it


def test_a_body_within_the_budget_is_read_whole(harness, mode, clock):
    body = dumps(SEARCH_RESPONSE)
    pieces = [body[i : i + 16] for i in range(0, len(body), 16)]

    def handler(request):
        return httpx.Response(200, content=slow_body(mode, clock, pieces, 0.001))

    h = harness(handler, timeout=2.0, max_retries=0)
    assert h.call("search", "docs", "q").chunks[0].id == "chunk001"


def test_an_endless_error_body_is_cut_too(harness, mode, clock):
    def handler(request):
        return httpx.Response(503, content=slow_body(mode, clock, [b" "] * 1000, 0.3))

    h = harness(handler, timeout=2.0, max_retries=0)
    with pytest.raises(APITimeoutError):
        h.call("search", "docs", "q")


def test_comment_only_stream_ends_at_the_idle_timeout(harness, mode, clock):
    def handler(request):
        comments = [b": keep-alive\n\n"] * 1000
        return httpx.Response(200, headers=SSE, content=slow_body(mode, clock, comments, 0.3))

    h = harness(handler, timeout=30.0, stream_idle_timeout=1.0)
    with pytest.raises(APITimeoutError, match="no event within 1 s"):
        h.collect("stream_chat_completions", "docs", MESSAGES)


def test_the_idle_timeout_defaults_to_the_attempt_budget(harness, mode, clock):
    def handler(request):
        comments = [b": keep-alive\n\n"] * 1000
        return httpx.Response(200, headers=SSE, content=slow_body(mode, clock, comments, 0.3))

    h = harness(handler, timeout=1.5)
    with pytest.raises(APITimeoutError, match=r"no event within 1\.5 s"):
        h.collect("stream_chat_completions", "docs", MESSAGES)


def test_events_renew_the_idle_timeout(harness, mode, clock):
    stream = STREAM_CHUNKS_EVENT + STREAM_DELTAS + STREAM_FINISH + STREAM_DONE
    pieces = [part.encode() + b"\n\n" for part in stream.split("\n\n") if part]

    def handler(request):
        return httpx.Response(200, headers=SSE, content=slow_body(mode, clock, pieces, 0.8))

    h = harness(handler, stream_idle_timeout=1.0)
    events = h.collect("stream_chat_completions", "docs", MESSAGES)
    assert clock.now - 1000.0 > 3.0  # longer than the idle limit in all, but never idle
    assert [type(e) for e in events][:3] == [SourcesEvent, TextDeltaEvent, TextDeltaEvent]


def test_total_timeout_ends_a_stream_of_real_events(harness, mode, clock):
    delta = STREAM_DELTAS.split("\n\n")[0].encode() + b"\n\n"

    def handler(request):
        return httpx.Response(200, headers=SSE, content=slow_body(mode, clock, [delta] * 1000, 0.4))

    h = harness(handler, stream_idle_timeout=1.0, total_timeout=3.0)
    events: list[Any] = []
    with pytest.raises(APITimeoutError):
        h.collect_into(events, "stream_chat_completions", "docs", MESSAGES)
    assert 3 <= len(events) <= 8  # about 3.0 / 0.4 events, then the cap


def test_time_spent_by_the_consumer_counts_for_the_total_not_the_idle(mode, clock):
    stream = STREAM_CHUNKS_EVENT + STREAM_DELTAS + STREAM_FINISH + STREAM_DONE

    def handler(request):
        return httpx.Response(200, headers=SSE, content=stream.encode())

    transport = httpx.MockTransport(handler)
    kwargs: dict[str, Any] = {"account_id": ACCOUNT, "api_token": TOKEN}
    if mode == "sync":
        client = AISearchClient(
            http_client=httpx.Client(transport=transport), stream_idle_timeout=1.0, **kwargs
        )
        got = []
        for event in client.stream_chat_completions("docs", MESSAGES):
            got.append(event)
            clock.now += 5.0  # a slow consumer: the server is not idle meanwhile
        assert len(got) >= 4
        capped = client.with_options(total_timeout=7.0)
        got = []
        with pytest.raises(APITimeoutError):
            for event in capped.stream_chat_completions("docs", MESSAGES):
                got.append(event)
                clock.now += 5.0
        assert len(got) == 2
        return

    async def run() -> None:
        client = AsyncAISearchClient(
            http_client=httpx.AsyncClient(transport=transport), stream_idle_timeout=1.0, **kwargs
        )
        got = []
        async for event in client.stream_chat_completions("docs", MESSAGES):
            got.append(event)
            clock.now += 5.0
        assert len(got) >= 4
        capped = client.with_options(total_timeout=7.0)
        got = []
        with pytest.raises(APITimeoutError, match="no event within 0 s"):
            async for event in capped.stream_chat_completions("docs", MESSAGES):
                got.append(event)
                clock.now += 5.0
        assert len(got) == 2
        await client._client.aclose()

    asyncio.run(run())


def test_a_non_event_stream_answer_is_read_within_the_limits(harness, mode, clock):
    def handler(request):
        content = slow_body(mode, clock, [b" "] * 1000, 0.3)
        return httpx.Response(200, headers={"content-type": "application/json"}, content=content)

    h = harness(handler, stream_idle_timeout=1.0)
    with pytest.raises(APITimeoutError):
        h.collect("stream_chat_completions", "docs", MESSAGES)


def test_a_stream_past_its_total_before_the_body_reads_nothing_more(clock):
    def handler(request):
        clock.now += 5.0  # the response headers arrive after the call's total
        return httpx.Response(200, headers={"content-type": "application/json"}, content=b"{}")

    async def run() -> None:
        client = AsyncAISearchClient(
            account_id=ACCOUNT,
            api_token=TOKEN,
            http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
            total_timeout=2.0,
        )
        with pytest.raises(APITimeoutError, match="no response body within 0 s"):
            async for _ in client.stream_chat_completions("docs", MESSAGES):
                pass
        await client._client.aclose()

    asyncio.run(run())


def test_no_timeout_at_all_means_no_deadline(harness, mode):
    h = harness(
        lambda request: httpx.Response(200, json=SEARCH_RESPONSE), timeout=httpx.Timeout(None)
    )
    assert h.call("search", "docs", "q").chunks[0].id == "chunk001"
    assert h.last.extensions["timeout"] == {
        "connect": None,
        "read": None,
        "write": None,
        "pool": None,
    }

    def handler(request):
        return httpx.Response(200, headers=SSE, content=(STREAM_CHUNKS_EVENT + STREAM_DONE))

    h = harness(handler, timeout=httpx.Timeout(None))
    events = h.collect("stream_chat_completions", "docs", MESSAGES)
    assert [type(e) for e in events] == [SourcesEvent, StreamEndEvent]


def test_connection_errors_still_retry_under_a_total(harness, clock, no_jitter):
    calls = {"n": 0}

    def handler(request):
        calls["n"] += 1
        if calls["n"] == 1:
            raise httpx.ConnectError("refused")
        return httpx.Response(200, json=SEARCH_RESPONSE)

    h = harness(handler, max_retries=2, total_timeout=10.0)
    sleep_advancing(h, clock)
    assert h.call("search", "docs", "q").chunks[0].id == "chunk001"
    assert h.sleeps == [0.5]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=-(10**500), max_value=10**500),
        st.booleans(),
        st.text(max_size=5),
        st.none(),
    )
)
def test_check_seconds_accepts_exactly_finite_positive_numbers(value):
    try:
        got = check_optional_seconds(value, "total_timeout")
    except InvalidRequestError as exc:
        assert str(exc).startswith("total_timeout: must be ")
        finite = isinstance(value, (int, float)) and not isinstance(value, bool)
        if finite:
            try:
                finite = math.isfinite(float(value)) and 0 < value <= MAX_SECONDS
            except OverflowError:
                finite = False
        assert not finite
        return
    if value is None:
        assert got is None
    else:
        assert not isinstance(value, bool) and value > 0 and math.isfinite(got)
        assert got == float(value)


# ------------------------------------------- sync socket operations end by the attempt deadline


def test_the_own_pool_has_the_deadline_backend(monkeypatch):
    # pins the private shape of httpx/httpcore the sync client relies on: if httpx changes
    # it, this fails loudly instead of a trickling server hanging a call again
    from aisearch._deadlines import _bound_socket_operations, _DeadlineBackend

    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # an env proxy: a second pool
    client = AISearchClient(account_id="acc", api_token="t" * 20)
    pools = [client._client._transport._pool, *(t._pool for t in client._client._mounts.values())]
    assert len(pools) == 2
    assert all(isinstance(p._network_backend, _DeadlineBackend) for p in pools)
    client.close()
    injected = httpx.Client()
    client = AISearchClient(account_id="acc", api_token="t" * 20, http_client=injected)
    assert not isinstance(injected._transport._pool._network_backend, _DeadlineBackend)
    assert _bound_socket_operations(httpx.Client(transport=httpx.MockTransport(print))) == 0
    injected.close()


def _backend(buffer: list[bytes]) -> Any:
    import httpcore

    from aisearch._deadlines import _DeadlineBackend

    return _DeadlineBackend(httpcore.MockBackend(buffer))


def test_socket_operations_fail_once_the_attempt_deadline_passed():
    import time

    import httpcore

    from aisearch._deadlines import _attempt_end

    answer = [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", b"ok"]
    token = _attempt_end.set(time.monotonic() + 60)
    try:
        with httpcore.ConnectionPool(network_backend=_backend(list(answer))) as pool:
            assert pool.request("GET", "http://h/").content == b"ok"
        stream = _backend([]).connect_tcp("h", 80, timeout=5)
        assert stream.start_tls(None, "h", timeout=5).get_extra_info("x") is None
        assert _backend([]).connect_unix_socket("/s").read(10) == b""
        _backend([]).sleep(0)
        _attempt_end.set(time.monotonic() - 1)  # the attempt's time is up
        with pytest.raises(httpcore.ReadTimeout):
            stream.read(10, timeout=5)
        with pytest.raises(httpcore.WriteTimeout):
            stream.write(b"x")
        with pytest.raises(httpcore.ConnectTimeout):
            _backend([]).connect_tcp("h", 80)
        pool = httpcore.ConnectionPool(network_backend=_backend(list(answer)))
        with pool, pytest.raises(httpcore.ConnectTimeout):
            pool.request("GET", "http://h/")
        stream.close()
    finally:
        _attempt_end.reset(token)


@pytest.mark.parametrize(
    ("timeout", "left", "expected"),
    [
        (None, None, None),
        (5.0, None, 5.0),
        (None, 60.0, 60.0),
        (5.0, 60.0, 5.0),
        (90.0, 60.0, 60.0),
    ],
)
def test_a_socket_timeout_is_shrunk_to_the_time_left(timeout, left, expected):
    import time

    import httpcore

    from aisearch._deadlines import _attempt_end, _left

    token = _attempt_end.set(None if left is None else time.monotonic() + left)
    try:
        got = _left(timeout, httpcore.ReadTimeout)
    finally:
        _attempt_end.reset(token)
    assert got == expected or (expected == 60.0 and 59.0 < got <= 60.0)
