"""The state ``serve --workers`` shares between processes (aisearch_local/shared.py).

Two :class:`SharedState` objects opened on one folder stand for two workers: each has its own
connection and its own cached copy of the faults, as a process would.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aisearch_local.ratelimit import RateLimiter
from aisearch_local.service import Fault, LocalService
from aisearch_local.shared import SharedRateLimiter, SharedState


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[SharedState, SharedState]]:
    a = SharedState.create(tmp_path)
    b = SharedState(tmp_path)
    yield a, b
    a.close()
    b.close()


def _counted(fault: dict[str, object]) -> bool:
    return bool(fault.get("status"))


def test_a_fault_set_by_one_worker_is_seen_by_the_other_at_once(
    pair: tuple[SharedState, SharedState],
) -> None:
    a, b = pair
    assert b.fault_of("default", "x") is None  # b caches "no fault"
    a.set_fault("default", "x", {"status": 503, "times": None})
    assert b.fault_of("default", "x") == {"status": 503, "times": None}
    assert b.list_faults() == [("default", "x", {"status": 503, "times": None})]
    b.clear_fault("default", "x")
    assert a.take_fault("default", "x", _counted) is None
    a.set_fault("default", "y", {"status": 429, "times": None})
    b.clear_faults()
    assert a.list_faults() == []


def test_times_is_counted_in_the_database_not_in_a_stale_copy(
    pair: tuple[SharedState, SharedState],
) -> None:
    a, b = pair
    a.set_fault("default", "x", {"status": 503, "times": 2})
    assert a.fault_of("default", "x") == {"status": 503, "times": 2}  # a's copy: times 2
    assert b.take_fault("default", "x", _counted) == {"status": 503, "times": 1}
    a._cache = (a._generation(), a._cache[1])  # a missed the change (the worst interleaving)
    assert a.take_fault("default", "x", _counted) == {"status": 503, "times": 0}
    assert b.take_fault("default", "x", _counted) is None
    assert a.take_fault("default", "x", _counted) is None


def test_a_latency_fault_with_times_is_not_counted(pair: tuple[SharedState, SharedState]) -> None:
    a, b = pair
    a.set_fault("default", "x", {"status": None, "latency_ms": 5, "times": 1})
    for _ in range(3):
        assert b.take_fault("default", "x", _counted) == {
            "status": None,
            "latency_ms": 5,
            "times": 1,
        }


def test_a_take_that_changes_no_row_bumps_no_counter(
    pair: tuple[SharedState, SharedState],
) -> None:
    # a bump makes every worker reload the faults at its next request: only a change may bump
    a, b = pair
    a.set_fault("default", "x", {"status": 503, "times": 1})
    assert b.fault_of("default", "x") == {"status": 503, "times": 1}  # b's copy: counted
    a.clear_fault("default", "x")
    b._cache = (b._generation(), b._cache[1])  # b read its copy just before the clear
    gen = a._generation()
    assert b.take_fault("default", "x", _counted) is None  # gone: nothing to use up
    assert a._generation() == gen
    a.set_fault("default", "x", {"status": 503, "times": 1})
    assert b.fault_of("default", "x") == {"status": 503, "times": 1}
    a.set_fault("default", "x", {"status": None, "times": 1})  # replaced: counts nothing
    b._cache = (b._generation(), b._cache[1])
    gen = a._generation()
    assert b.take_fault("default", "x", _counted) == {"status": None, "times": 1}
    assert a._generation() == gen
    a.set_fault("default", "x", {"status": 503, "times": 2})
    gen = a._generation()
    assert b.take_fault("default", "x", _counted) == {"status": 503, "times": 1}
    assert a._generation() == gen + 1  # a use is a change: the others reload


def test_the_sync_cooldown_is_one_for_all_workers(pair: tuple[SharedState, SharedState]) -> None:
    a, b = pair
    assert a.start_sync(7, 30.0, now=100.0) is None
    assert b.start_sync(7, 30.0, now=110.5) == 20
    assert b.start_sync(8, 30.0, now=110.5) is None  # another instance
    assert b.start_sync(7, 30.0, now=130.0) is None
    assert a.start_sync(7, 0.0, now=130.0) is None  # no cooldown


def test_the_service_keeps_its_fault_api_on_the_shared_state(tmp_path: Path) -> None:
    state = SharedState.create(tmp_path)
    one = LocalService(None, state=state)
    two = LocalService(None, state=state)
    try:
        one.set_fault("default", "x", Fault(status=503, times=1, retry_after=2))
        assert one.faults == {}  # not in the process
        assert two.fault_of("default", "x") == Fault(status=503, times=1, retry_after=2)
        assert two.list_faults() == [("default", "x", Fault(status=503, times=1, retry_after=2))]
        assert two.take_fault("default", "x") == Fault(status=503, times=0, retry_after=2)
        assert one.take_fault("default", "x") is None
        one.set_fault("default", "y", Fault(latency_ms=1))
        two.clear_fault("default", "y")
        assert one.list_faults() == []
        one.set_fault("default", "z", Fault(latency_ms=1))
        two.clear_faults()
        assert one.fault_of("default", "z") is None
    finally:
        one.close()
        two.close()
        state.close()


_HIT = st.tuples(
    st.sampled_from(["e1", "e2", "e3"]),
    st.integers(1, 4),
    st.sampled_from([1000, 5000]),
    st.sampled_from(["fixed", "sliding"]),
    st.floats(0, 4000),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(_HIT, max_size=30))
def test_the_shared_limiter_answers_as_the_in_process_one(
    tmp_path_factory: pytest.TempPathFactory, hits: list[tuple[str, int, int, str, float]]
) -> None:
    """Same requests, same clock: same answers (two workers sharing it count as one)."""
    state = SharedState.create(tmp_path_factory.mktemp("limit"))
    other = SharedState(state.directory)
    now = [10_000.0]
    local = RateLimiter(lambda: now[0])
    shared = [SharedRateLimiter(s, lambda: now[0]) for s in (state, other)]
    try:
        for i, (key, requests, period, technique, step_ms) in enumerate(hits):
            now[0] += step_ms / 1000.0
            expected = local.hit(("instance", key), requests, period, technique)
            got = shared[i % 2].hit(("instance", key), requests, period, technique)
            assert got == pytest.approx(expected)
    finally:
        state.close()
        other.close()


def test_a_commit_waits_for_no_fsync(pair: tuple[SharedState, SharedState]) -> None:
    # every public request commits a rate-limit count, on the event loop: an fsync there costs
    # the whole worker (the file is deleted when the server stops; nothing needs to survive)
    for state in pair:
        assert state._conn.execute("PRAGMA synchronous").fetchone()[0] == 0


def test_a_commit_that_fails_leaves_no_transaction_open(
    pair: tuple[SharedState, SharedState],
) -> None:
    # a COMMIT can fail (disk full, I/O error; here a deferred foreign key a trigger breaks):
    # the transaction must not stay open, holding the write lock of every worker and refusing
    # this worker's next writes ("cannot start a transaction within a transaction")
    a, b = pair
    a._conn.execute("PRAGMA foreign_keys=ON")
    a._conn.executescript(
        "CREATE TABLE parent (id INTEGER PRIMARY KEY);"
        "CREATE TABLE child (pid INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);"
        "CREATE TRIGGER broken AFTER INSERT ON syncs BEGIN INSERT INTO child VALUES (1); END;"
    )
    with pytest.raises(sqlite3.IntegrityError):
        a.start_sync(7, 30.0, now=100.0)
    assert not a._conn.in_transaction
    b._conn.execute("PRAGMA busy_timeout = 0")
    assert b.start_sync(8, 30.0, now=100.0) is None  # the write lock was released
    a._conn.execute("DROP TRIGGER broken")
    assert a.start_sync(7, 30.0, now=100.0) is None  # and the refused write counted nothing


def test_a_killed_supervisors_state_folder_is_removed_by_the_next(tmp_path, monkeypatch):
    import subprocess
    import sys
    import tempfile

    from aisearch_local.workers import state_folder

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()  # its pid is no longer running (nor reused within this test, practically)
    stale = tmp_path / f"aisearch-local-workers-{ended.pid}-abc"
    (stale / "sub").mkdir(parents=True)
    live = tmp_path / f"aisearch-local-workers-{os.getpid()}-def"
    live.mkdir()
    elsewhere = tmp_path / "target"
    elsewhere.mkdir()
    link = tmp_path / f"aisearch-local-workers-{ended.pid}-lnk"
    link.symlink_to(elsewhere)
    other = tmp_path / "aisearch-local-workers-x-1"  # not a pid: not ours to judge
    other.mkdir()
    odd = [tmp_path / f"aisearch-local-workers-{p}-1" for p in ("²", "0", "9" * 30)]
    for path in odd:  # a digit int() refuses, the process group, an int os.kill refuses
        path.mkdir()
    new = state_folder()
    assert new.parent == tmp_path and new.name.startswith(f"aisearch-local-workers-{os.getpid()}-")
    assert not stale.exists()
    assert live.is_dir() and other.is_dir() and link.is_symlink() and elsewhere.is_dir()
    assert all(path.is_dir() for path in odd)
