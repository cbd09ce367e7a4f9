"""Retry and deadline policy as pure functions: what retries, what waits, what time is left.

Connection errors, timeouts and HTTP 408, 409, 429 and >= 500 are retried; other 4xx
never, nor a 409 whose Cloudflare code says the resource already exists (7009: asking again
cannot succeed; 7099 "modified concurrently" and other 409s are retried), and neither is a
wait for a pooled connection that timed out (``httpx.PoolTimeout``: the pool is full of this
process's own requests, a retry would only queue again). The wait is ``Retry-After`` when the
server sent one (capped at 60 s), otherwise an exponential backoff from 0.5 s doubling to at
most 8 s, with jitter (the delay is drawn from ``[0.75 * base, base]``).

Deadlines are ``time.monotonic()`` values. One attempt may take the largest value of the
``httpx.Timeout`` (``attempt_budget``), from connect to the last byte of the body; a call may
take ``total_timeout`` when one is set (``call_end``), retries and backoff included.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime

import httpx

from aisearch._exceptions import ALREADY_EXISTS, AISearchError, APIConnectionError, APIStatusError

__all__ = [
    "ALREADY_EXISTS",
    "INITIAL_DELAY",
    "MAX_DELAY",
    "MAX_RETRY_AFTER",
    "NOT_RETRIED_CODES",
    "RETRYABLE_STATUS",
    "already_exists",
    "attempt_budget",
    "attempt_time",
    "call_end",
    "capped_timeouts",
    "is_retryable",
    "is_retryable_status",
    "parse_retry_after",
    "retry_delay",
    "sleep_fits",
]

INITIAL_DELAY = 0.5
MAX_DELAY = 8.0
MAX_RETRY_AFTER = 60.0
JITTER = 0.25
RETRYABLE_STATUS = frozenset({408, 409, 429})


NOT_RETRIED_CODES: dict[int, frozenset[int]] = {409: frozenset({ALREADY_EXISTS})}
"""Cloudflare error codes that make a retryable status final, by status (7009: already exists)."""


def is_retryable_status(status_code: int, code: int | str | None = None) -> bool:
    """Tell whether an HTTP status is worth retrying (408, 409, 429, >= 500).

    ``code`` is the body's Cloudflare error code: a 409 with 7009 ("already exists") is not.
    """
    final = NOT_RETRIED_CODES.get(status_code, frozenset())
    if code is not None and str(code) in {str(c) for c in final}:
        return False
    return status_code in RETRYABLE_STATUS or status_code >= 500


def already_exists(error: BaseException) -> bool:
    """Tell whether ``error`` is a 409 saying the resource already exists (code 7009)."""
    return (
        isinstance(error, APIStatusError)
        and error.status_code == 409
        and str(error.code) == str(ALREADY_EXISTS)
    )


def is_retryable(error: BaseException) -> bool:
    """Tell whether a request's error is worth retrying (a ``PoolTimeout`` is not)."""
    if isinstance(error, APIConnectionError):
        return not isinstance(error.__cause__, httpx.PoolTimeout)
    if isinstance(error, APIStatusError):
        return is_retryable_status(error.status_code, error.code)
    return False


def parse_retry_after(
    headers: Mapping[str, str], *, now: Callable[[], float] = time.time
) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date), or ``None``.

    Never negative; ``None`` when absent or unparsable. ``now`` is the clock for HTTP dates.
    """
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            value = float(raw_ms) / 1000.0
        except ValueError:
            value = None
        if value is not None and value == value:  # not NaN
            return max(0.0, value)
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        try:
            date = parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        return max(0.0, date.timestamp() - now())
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def retry_delay(
    retries_done: int,
    *,
    retry_after: float | None = None,
    rand: Callable[[], float] | None = None,
) -> float:
    """Seconds before the next attempt after ``retries_done`` retries.

    ``min(retry_after, 60)`` when the server asked, else
    ``min(0.5 * 2**retries_done, 8) * (1 - 0.25 * rand())`` (``rand``: ``random.random``).
    """
    if retry_after is not None:
        return min(max(retry_after, 0.0), MAX_RETRY_AFTER)
    base = min(INITIAL_DELAY * (2.0 ** min(retries_done, 16)), MAX_DELAY)
    jitter = (rand or random.random)()
    return base * (1.0 - JITTER * jitter)


def delay_for(error: AISearchError, retries_done: int) -> float:
    """Seconds to wait before retrying ``error``, honouring its ``Retry-After`` header."""
    retry_after = None
    if isinstance(error, APIStatusError) and error.response is not None:
        retry_after = parse_retry_after(error.response.headers)
    return retry_delay(retries_done, retry_after=retry_after)


def attempt_budget(timeout: httpx.Timeout) -> float | None:
    """Seconds one attempt may take in all: the largest value of ``timeout``.

    ``timeout=10`` gives 10 s; the default ``httpx.Timeout(30.0, connect=5.0)`` gives 30 s.
    A ``read`` of ``None`` means "no limit on waiting for the answer" (httpx's meaning, e.g.
    ``httpx.Timeout(None, connect=5.0)`` for long generations): the attempt has no budget then,
    rather than the connect limit's.
    """
    if timeout.read is None:
        return None
    values = [
        v for v in (timeout.connect, timeout.read, timeout.write, timeout.pool) if v is not None
    ]
    return max(values)


def call_end(total_timeout: float | None, now: float) -> float | None:
    """The deadline of a call starting at ``now``: ``now + total_timeout``, or ``None``."""
    return None if total_timeout is None else now + total_timeout


def attempt_time(now: float, budget: float | None, end: float | None) -> float | None:
    """Seconds one attempt starting at ``now`` may take: its budget, never past ``end``.

    Also the wait for a stream's next event, with the idle timeout as ``budget``. Zero or less
    once ``end`` has passed; ``None`` when there is neither budget nor deadline.
    """
    if end is None:
        return budget
    left = end - now
    return left if budget is None or left < budget else budget


def sleep_fits(delay: float, now: float, end: float | None) -> bool:
    """Tell whether a retry may sleep ``delay`` seconds and still start before ``end``."""
    return end is None or now + delay < end


def capped_timeouts(timeouts: Mapping[str, float | None], remaining: float) -> dict[str, float]:
    """Shrink every phase timeout in a request's ``extensions["timeout"]`` to ``remaining``."""
    return {k: remaining if v is None or v > remaining else v for k, v in timeouts.items()}
