"""Retry policy as pure functions: which failures retry, and how long to wait.

Connection errors, timeouts and HTTP 408, 409, 429 and >= 500 are retried; other 4xx
never. The wait is ``Retry-After`` when the server sent one (capped at 60 s), otherwise
an exponential backoff from 0.5 s doubling to at most 8 s, with jitter (the delay is
drawn from ``[0.75 * base, base]``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime

from aisearch._exceptions import AISearchError, APIConnectionError, APIStatusError

__all__ = [
    "INITIAL_DELAY",
    "MAX_DELAY",
    "MAX_RETRY_AFTER",
    "RETRYABLE_STATUS",
    "is_retryable",
    "is_retryable_status",
    "parse_retry_after",
    "retry_delay",
]

INITIAL_DELAY = 0.5
MAX_DELAY = 8.0
MAX_RETRY_AFTER = 60.0
JITTER = 0.25
RETRYABLE_STATUS = frozenset({408, 409, 429})


def is_retryable_status(status_code: int) -> bool:
    """Tell whether an HTTP status is worth retrying (408, 409, 429, >= 500).

    Args:
        status_code: The HTTP status.

    Returns:
        ``True`` when a retry may succeed.
    """
    return status_code in RETRYABLE_STATUS or status_code >= 500


def is_retryable(error: BaseException) -> bool:
    """Tell whether an error raised by a request is worth retrying.

    Args:
        error: The exception.

    Returns:
        ``True`` for connection errors, timeouts and retryable status errors.
    """
    if isinstance(error, APIConnectionError):
        return True
    if isinstance(error, APIStatusError):
        return is_retryable_status(error.status_code)
    return False


def parse_retry_after(
    headers: Mapping[str, str], *, now: Callable[[], float] = time.time
) -> float | None:
    """Read ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date).

    Args:
        headers: Response headers (case-insensitive mapping, e.g. ``httpx.Headers``).
        now: Clock used for HTTP dates.

    Returns:
        Seconds to wait (never negative), or ``None`` when absent or unparsable.
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
    """Compute the wait before the next attempt.

    Args:
        retries_done: Retries already made (0 before the first retry).
        retry_after: Seconds the server asked for (``Retry-After``), if any.
        rand: Source of jitter in ``[0, 1)`` (``random.random`` when ``None``).

    Returns:
        Seconds to sleep: ``min(retry_after, 60)`` when given, else
        ``min(0.5 * 2**retries_done, 8) * (1 - 0.25 * rand())``.
    """
    if retry_after is not None:
        return min(max(retry_after, 0.0), MAX_RETRY_AFTER)
    base = min(INITIAL_DELAY * (2.0 ** min(retries_done, 16)), MAX_DELAY)
    jitter = (rand or random.random)()
    return base * (1.0 - JITTER * jitter)


def delay_for(error: AISearchError, retries_done: int) -> float:
    """Wait before retrying ``error``, honouring its ``Retry-After`` header.

    Args:
        error: A retryable error.
        retries_done: Retries already made.

    Returns:
        Seconds to sleep.
    """
    retry_after = None
    if isinstance(error, APIStatusError) and error.response is not None:
        retry_after = parse_retry_after(error.response.headers)
    return retry_delay(retries_done, retry_after=retry_after)
