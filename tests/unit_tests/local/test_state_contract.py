"""One contract for both homes of the faults, sync starts and rate limit (aisearch_local/shared.py).

Every test runs on a :class:`MemoryState` (one process: both "workers" are the same object) and
on two :class:`SharedState` objects opened on one folder (two workers, each with its own
connection and cached copy of the faults): the same assertions, so the two cannot drift.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aisearch_local.app import create_app
from aisearch_local.errors import APIError
from aisearch_local.service import Fault, LocalService
from aisearch_local.shared import MemoryState, SharedState, State

Pair = tuple[State, State]


def _memory(_: Path) -> tuple[Pair, Callable[[], None]]:
    state = MemoryState()
    return (state, state), state.close


def _shared(folder: Path) -> tuple[Pair, Callable[[], None]]:
    a = SharedState.create(folder)
    b = SharedState(folder)

    def close() -> None:
        a.close()
        b.close()

    return (a, b), close


KINDS = {"memory": _memory, "shared": _shared}


@pytest.fixture(params=sorted(KINDS))
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pair]:
    states, close = KINDS[request.param](tmp_path)
    yield states
    close()


def _counted(fault: dict[str, Any]) -> bool:
    return fault.get("status") is not None


def test_no_fault_is_installed_at_first(pair: Pair) -> None:
    a, b = pair
    assert a.fault_of("default", "x") is None
    assert a.list_faults() == []
    assert a.take_fault("default", "x", _counted) is None
    b.clear_fault("default", "x")  # nothing to clear: no error
    b.clear_faults()
    assert b.list_faults() == []


def test_set_replaces_and_list_is_sorted_by_name(pair: Pair) -> None:
    a, b = pair
    a.set_fault("ns2", "b", {"status": 503, "times": None})
    a.set_fault("default", "z", {"status": 429, "times": None})
    a.set_fault("default", "a", {"status": 500, "times": None})
    a.set_fault("default", "a", {"status": None, "latency_ms": 5, "times": None})
    assert b.list_faults() == [
        ("default", "a", {"status": None, "latency_ms": 5, "times": None}),
        ("default", "z", {"status": 429, "times": None}),
        ("ns2", "b", {"status": 503, "times": None}),
    ]
    assert b.fault_of("default", "a") == {"status": None, "latency_ms": 5, "times": None}
    assert b.fault_of("default", "b") is None  # another namespace's instance of that name


def test_clear_removes_one_fault_and_clear_faults_every_one(pair: Pair) -> None:
    a, b = pair
    for iid in ("x", "y", "z"):
        a.set_fault("default", iid, {"status": 503, "times": None})
    b.clear_fault("default", "y")
    assert [iid for _, iid, _ in a.list_faults()] == ["x", "z"]
    b.clear_faults()
    assert a.list_faults() == []
    assert a.fault_of("default", "x") is None


def test_every_fault_given_or_returned_is_a_copy(pair: Pair) -> None:
    a, b = pair
    fault: dict[str, Any] = {"status": 503, "times": 3}
    a.set_fault("default", "x", fault)
    fault["status"] = 400  # the caller's dict changes after: the installed fault does not
    got = b.fault_of("default", "x")
    assert got == {"status": 503, "times": 3}
    got["times"] = 99
    a.list_faults()[0][2]["times"] = 99
    taken = b.take_fault("default", "x", _counted)
    assert taken == {"status": 503, "times": 2}
    taken["times"] = 99
    assert a.fault_of("default", "x") == {"status": 503, "times": 2}


def test_times_is_used_once_per_counted_request_then_the_fault_is_gone(pair: Pair) -> None:
    a, b = pair
    a.set_fault("default", "x", {"status": 503, "times": 2})
    assert a.take_fault("default", "x", _counted) == {"status": 503, "times": 1}
    assert b.fault_of("default", "x") == {"status": 503, "times": 1}  # seen by every worker
    assert b.take_fault("default", "x", _counted) == {"status": 503, "times": 0}
    assert a.fault_of("default", "x") is None
    assert a.take_fault("default", "x", _counted) is None
    assert b.list_faults() == []


def test_a_fault_not_counted_or_without_times_is_never_used_up(pair: Pair) -> None:
    a, b = pair
    a.set_fault("default", "lat", {"status": None, "latency_ms": 5, "times": 1})
    a.set_fault("default", "always", {"status": 503, "times": None})
    seen: list[dict[str, Any]] = []

    def counted(fault: dict[str, Any]) -> bool:
        seen.append(dict(fault))
        return _counted(fault)

    for state in (a, b, a):
        assert state.take_fault("default", "lat", counted) == {
            "status": None,
            "latency_ms": 5,
            "times": 1,
        }
        assert state.take_fault("default", "always", counted) == {"status": 503, "times": None}
    assert b.fault_of("default", "lat") == {"status": None, "latency_ms": 5, "times": 1}
    assert {"status": None, "latency_ms": 5, "times": 1} in seen  # the fault is what is judged


def test_the_sync_cooldown_holds_per_instance(pair: Pair) -> None:
    a, b = pair
    assert a.start_sync(7, 30.0, now=100.0) is None
    assert b.start_sync(7, 30.0, now=110.5) == 20  # whole seconds, rounded up
    assert b.start_sync(7, 30.0, now=129.9) == 1  # at least 1
    assert b.start_sync(8, 30.0, now=110.5) is None  # another instance
    assert a.start_sync(7, 30.0, now=130.0) is None  # the refused ones recorded nothing
    assert a.start_sync(7, 0.0, now=130.0) is None  # no cooldown
    assert b.start_sync(9, 3600.0) is None  # now: time.monotonic()
    assert a.start_sync(9, 3600.0) in (3599, 3600)


def test_the_rate_limit_counts_each_key(pair: Pair) -> None:
    a, b = pair
    key = ("instance", "e1")
    assert a.hit(key, 2, 1000, "fixed", 10_000.0) is None
    assert b.hit(key, 2, 1000, "fixed", 10_250.0) is None
    assert a.hit(key, 2, 1000, "fixed", 10_500.0) == pytest.approx(0.5)  # refused: not counted
    assert b.hit(("ns", "e1"), 2, 1000, "fixed", 10_500.0) is None  # another key
    assert b.hit(key, 2, 1000, "fixed", 11_000.0) is None  # the next window
    # sliding: at 13_250 the previous window's 1 still weighs 3/4, so a second one does not fit
    assert a.hit(key, 2, 1000, "sliding", 12_000.0) is None  # a new rule starts over
    assert b.hit(key, 2, 1000, "sliding", 13_250.0) is None
    assert a.hit(key, 2, 1000, "sliding", 13_250.0) == pytest.approx(0.75)


_NAMES = st.sampled_from([("default", "x"), ("default", "y"), ("ns", "x")])
_FAULT = st.fixed_dictionaries(
    {
        "status": st.sampled_from([None, 429, 503]),
        "latency_ms": st.sampled_from([0, 5]),
        "times": st.sampled_from([None, 1, 2, 3]),
    }
)
_OPS = st.one_of(
    st.tuples(st.just("set"), _NAMES, _FAULT),
    st.tuples(st.just("take"), _NAMES),
    st.tuples(st.just("of"), _NAMES),
    st.tuples(st.just("clear"), _NAMES),
    st.tuples(st.just("clear_all")),
    st.tuples(st.just("list")),
)


def _apply(state: State, op: tuple[Any, ...]) -> Any:
    if op[0] == "set":
        return state.set_fault(*op[1], op[2])
    if op[0] == "take":
        return state.take_fault(*op[1], _counted)
    if op[0] == "of":
        return state.fault_of(*op[1])
    if op[0] == "clear":
        return state.clear_fault(*op[1])
    if op[0] == "clear_all":
        return state.clear_faults()
    return state.list_faults()


@settings(max_examples=40, deadline=None)
@given(st.lists(_OPS, max_size=25))
def test_any_sequence_of_fault_calls_answers_the_same_in_both(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[Any, ...]]
) -> None:
    (memory, _), close_memory = _memory(Path())
    (one, two), close_shared = _shared(tmp_path_factory.mktemp("state"))
    try:
        for i, op in enumerate(ops):
            assert _apply((one, two)[i % 2], op) == _apply(memory, op), op
    finally:
        close_memory()
        close_shared()


# -- LocalService and the public endpoints call the state they are given ------------------------


@pytest.fixture(params=sorted(KINDS))
def services(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[LocalService, ...]]:
    (a, b), close = KINDS[request.param](tmp_path)
    one = LocalService(None) if isinstance(a, MemoryState) else LocalService(None, state=a)
    two = one if a is b else LocalService(None, state=b)
    yield one, two
    for svc in {one, two}:
        svc.close()
    close()


def test_the_service_faults_live_in_its_state(services: tuple[LocalService, ...]) -> None:
    one, two = services
    one.set_fault("default", "x", Fault(status=503, times=2, retry_after=2))
    assert two.state.fault_of("default", "x") == Fault(status=503, times=2, retry_after=2).as_dict()
    assert two.take_fault("default", "x") == Fault(status=503, times=1, retry_after=2)
    assert one.fault_of("default", "x") == Fault(status=503, times=1, retry_after=2)
    assert one.list_faults() == [("default", "x", Fault(status=503, times=1, retry_after=2))]
    one.set_fault("default", "y", Fault(latency_ms=5, times=1))
    assert two.take_fault("default", "y") == Fault(latency_ms=5, times=1)  # not counted
    two.clear_fault("default", "x")
    assert one.list_faults() == [("default", "y", Fault(latency_ms=5, times=1))]
    two.clear_faults()
    assert one.state.list_faults() == []


def test_the_service_sync_cooldown_lives_in_its_state(services: tuple[LocalService, ...]) -> None:
    one, two = services
    inst = one.create_instance("default", {"id": "docs"})
    one.sync_cooldown_s = two.sync_cooldown_s = 3600.0
    assert one.run_sync_job(inst, None)["end_reason"] is not None
    with pytest.raises(APIError) as refused:
        two.run_sync_job(inst, None)
    assert (refused.value.status, refused.value.code) == (429, 7020)
    assert refused.value.headers["Retry-After"] in ("3599", "3600")
    assert len(one.jobs(inst)) == 1  # the refused job was not created


def test_the_public_rate_limit_counts_in_the_service_state(
    services: tuple[LocalService, ...],
) -> None:
    one, _ = services
    limiter = create_app(None, service=one).state.public.limiter
    assert limiter.counters is one.state
    limiter.clock = lambda: 100.0
    assert limiter.hit(("instance", "e"), 1, 1000, "fixed") is None
    assert one.state.hit(("instance", "e"), 1, 1000, "fixed", 100_000.0) == pytest.approx(1.0)
    with pytest.raises(AttributeError, match="not kept in this process"):
        limiter._windows  # noqa: B018 (the in-process counters only)
