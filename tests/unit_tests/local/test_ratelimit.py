"""The public endpoints' rate limiter (``aisearch_local.ratelimit``) on a fake clock."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aisearch_local.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 600.0  # a multiple of the periods below: window boundaries at whole minutes

    def __call__(self) -> float:
        return self.now


def test_fixed_allows_requests_per_window():
    clock = Clock()
    rl = RateLimiter(clock)
    assert [rl.hit("e", 2, 60000, "fixed") for _ in range(2)] == [None, None]
    assert rl.hit("e", 2, 60000, "fixed") == pytest.approx(60.0)
    clock.now += 59.5
    assert rl.hit("e", 2, 60000, "fixed") == pytest.approx(0.5)
    clock.now += 0.5
    assert rl.hit("e", 2, 60000, "fixed") is None
    assert rl.hit("other", 2, 60000, "fixed") is None  # one counter per endpoint


def test_a_new_rule_starts_over():
    rl = RateLimiter(Clock())
    assert rl.hit("e", 1, 60000, "fixed") is None
    assert rl.hit("e", 1, 60000, "fixed") is not None
    assert rl.hit("e", 2, 60000, "fixed") is None


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(
    requests=st.integers(1, 5),
    period_s=st.sampled_from([60, 90, 3600]),
    technique=st.sampled_from(["fixed", "sliding"]),
    steps=st.lists(st.floats(0, 200, allow_nan=False), min_size=1, max_size=30),
)
def test_retry_after_is_exact(requests, period_s, technique, steps):
    # whenever a request is refused with "wait w", one is refused just before w and allowed at w
    clock = Clock()
    rl = RateLimiter(clock)
    period = period_s * 1000
    for step in steps:
        clock.now += step
        wait = rl.hit("e", requests, period, technique)
        if wait is None:
            continue
        assert wait > 0
        start = clock.now
        if wait > 0.002:
            clock.now = start + wait - 0.001
            assert rl.hit("e", requests, period, technique) is not None
        clock.now = start + wait + 1e-6
        assert rl.hit("e", requests, period, technique) is None


def test_counters_of_endpoints_no_longer_used_are_dropped() -> None:
    """The counters do not grow with every endpoint ever seen (deleted ones included)."""
    now = [6000.0]
    limiter = RateLimiter(lambda: now[0])
    for i in range(1000):
        assert limiter.hit(("instance", f"e{i}"), 5, 60_000, "sliding") is None
    assert len(limiter._windows) == 1000
    now[0] += 120.0  # two periods on: none of them counts anything any more
    assert limiter.hit(("instance", "fresh"), 5, 60_000, "fixed") is None
    assert list(limiter._windows) == [("instance", "fresh")]
    now[0] += 60.0  # one period on: its count still weighs on a sliding window
    assert limiter.hit(("instance", "other"), 5, 60_000, "fixed") is None
    assert len(limiter._windows) == 2
