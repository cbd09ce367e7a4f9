"""The rate limit of the public endpoints (``public_endpoint_params.rate_limit``).

One counter per endpoint, shared by its ``/search``, ``/chat/completions`` and ``/mcp`` routes
and by every client (the real service does not document per-client limits). Time is cut into
windows of ``period_ms`` (window ``k`` is ``[k * period, (k + 1) * period)`` of the clock):

* ``fixed``: at most ``requests`` in each window;
* ``sliding``: Cloudflare's sliding-window estimate, the previous window's count weighted by
  the part of it still inside the last ``period_ms``, plus the current window's count, stays
  at most ``requests``.

A refused request is not counted. Counters idle for two windows are dropped when a new endpoint
is first counted. The clock is injectable (seconds, monotonic by default), so
tests move time instead of sleeping.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Counters", "MemoryCounters", "RateLimiter", "Window", "count_hit", "idle"]


@dataclass
class Window:
    """One key's counters.

    The rule ``(requests, period_ms, technique)``, the current window's index and count, and
    the previous window's count.
    """

    rule: tuple[int, int, str]
    index: int
    count: int
    previous: int


def idle(w: Window, now_ms: float) -> bool:
    """Whether the counter is two windows old or more (it weighs nothing any more)."""
    return math.floor(now_ms / w.rule[1]) > w.index + 1


def count_hit(
    w: Window | None, rule: tuple[int, int, str], now_ms: float
) -> tuple[Window, float | None]:
    """Count one request on ``w`` (None: the key's first), or refuse it.

    Returns:
        The counter (``w`` updated, or a new one) and None when allowed (and counted), else
        the seconds until a request would be allowed.
    """
    requests, period_ms, technique = rule
    index = math.floor(now_ms / period_ms)
    if w is None or w.rule != rule:  # first request, or the rule changed: start over
        w = Window(rule, index, 0, 0)
    if index != w.index:
        w.previous = w.count if index == w.index + 1 else 0
        w.index, w.count = index, 0
    elapsed = now_ms - index * period_ms
    if technique == "sliding":
        used = w.previous * (period_ms - elapsed) / period_ms + w.count
    else:
        used = w.count
    if used + 1 <= requests:
        w.count += 1
        return w, None
    return w, _wait_ms(w, requests, period_ms, elapsed) / 1000.0


def _wait_ms(w: Window, requests: int, period_ms: int, elapsed: float) -> float:
    """Milliseconds until one more request fits."""
    to_next = period_ms - elapsed
    if w.rule[2] != "sliding":
        return to_next
    if w.previous > 0 and w.count + 1 <= requests:
        # previous * (period - t) / period + count + 1 <= requests, solved for t
        t = period_ms * (1 - (requests - w.count - 1) / w.previous)
        return max(t - elapsed, 1.0)
    # not before the next window, where this window's count is the weighted one
    if w.count > 0 and requests - 1 < w.count:
        return to_next + period_ms * (1 - (requests - 1) / w.count)
    return to_next


class Counters(Protocol):
    """Where the counters are kept.

    :class:`MemoryCounters` in one process; a server's state
    (:class:`aisearch_local.shared.State`), which ``serve --workers`` shares between processes.
    """

    def hit(
        self, key: Hashable, requests: int, period_ms: int, technique: str, now_ms: float
    ) -> float | None:
        """Count one request of ``key`` at ``now_ms``, or refuse it (see :func:`count_hit`)."""
        ...


class MemoryCounters:
    """The counters in this process's memory."""

    def __init__(self) -> None:
        self.windows: dict[Hashable, Window] = {}
        self._lock = threading.Lock()

    def hit(
        self, key: Hashable, requests: int, period_ms: int, technique: str, now_ms: float
    ) -> float | None:
        """Count one request of ``key`` at ``now_ms``, or refuse it (see :func:`count_hit`)."""
        with self._lock:
            w = self.windows.get(key)
            if w is None:  # a new key: forget the counters that count nothing (see idle)
                for k in [k for k, old in self.windows.items() if idle(old, now_ms)]:
                    del self.windows[k]
            w, wait = count_hit(w, (requests, period_ms, technique), now_ms)
            self.windows[key] = w
            return wait


class RateLimiter:
    """The rate limit of the public endpoints, on a clock.

    Args:
        clock: Returns the time in seconds (``time.monotonic`` by default).
        counters: Where the counters are kept (None: a new :class:`MemoryCounters`); the
            server passes its service's state (:attr:`aisearch_local.service.LocalService.state`),
            which ``serve --workers`` shares between its processes.
    """

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, counters: Counters | None = None
    ) -> None:
        self.clock = clock
        self.counters: Counters = MemoryCounters() if counters is None else counters

    @property
    def _windows(self) -> dict[Hashable, Window]:
        """The counters, when they are kept in this process (tests look at them)."""
        if not isinstance(self.counters, MemoryCounters):
            raise AttributeError("_windows: the counters are not kept in this process")
        return self.counters.windows

    def hit(self, key: Hashable, requests: int, period_ms: int, technique: str) -> float | None:
        """Count one request of ``key``, or refuse it.

        Returns:
            None when allowed (and counted); else the seconds until a request would be allowed.
        """
        return self.counters.hit(key, requests, period_ms, technique, self.clock() * 1000.0)
