"""The state of the faults, the sync cooldown and the rate limit: one interface, two homes.

:class:`State` is what :class:`~aisearch_local.service.LocalService` and the public endpoints'
:class:`~aisearch_local.ratelimit.RateLimiter` call; the service is given one when it is built
and never asks which:

* :class:`MemoryState`: in this process's memory (one process, the default);
* :class:`SharedState`: for ``aisearch-local serve --workers N``, where any request may land on
  any worker. It lives in one small SQLite file that the supervisor creates empty in a private
  temporary folder when ``serve`` starts and removes when it stops (a fault never outlives its
  server, and ``aisearch-local ingest`` never sees it):

  * ``faults``: one row per instance; a counted fault (``times``) is decremented in a write
    transaction, so two workers never both apply the last use of ``times: 1``. A search reads
    the faults from a per-process copy, stamped by a counter in a memory-mapped file that every
    change bumps after its commit: a search with no fault installed costs one memory read, no
    SQL;
  * ``syncs``: the start of each instance's last sync job (``time.monotonic``, one clock for
    every process of the machine on Linux);
  * ``windows``: the rate limit's counters, one write transaction per public request.

``tests/unit_tests/local/test_state_contract.py`` runs the same assertions on both. See
docs/workers.md.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import mmap
import os
import sqlite3
import struct
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from pathlib import Path
from typing import Any, Protocol

from aisearch_local.nowait import hold, refuse
from aisearch_local.ratelimit import MemoryCounters, RateLimiter, Window, count_hit, idle

__all__ = ["STATE_FILE", "MemoryState", "SharedRateLimiter", "SharedState", "State"]

STATE_FILE = "state.sqlite"
_GEN_FILE = "faults.gen"
_GEN = struct.Struct("<Q")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS faults (
    namespace TEXT NOT NULL, instance TEXT NOT NULL, fault TEXT NOT NULL,
    PRIMARY KEY (namespace, instance));
CREATE TABLE IF NOT EXISTS syncs (inst_pk INTEGER PRIMARY KEY, started REAL NOT NULL);
CREATE TABLE IF NOT EXISTS windows (
    key TEXT PRIMARY KEY, rule TEXT NOT NULL, idx INTEGER NOT NULL, count INTEGER NOT NULL,
    previous INTEGER NOT NULL);
"""


class State(Protocol):
    """The faults, sync starts and rate-limit counters of a server (see the module docstring).

    Faults are the JSON-able dicts of :meth:`Fault.as_dict
    <aisearch_local.service.Fault.as_dict>`; a state knows nothing of their fields but
    ``times`` and whether a fault is counted (the caller says, see :meth:`take_fault`). Every
    fault it returns is a copy.
    """

    def set_fault(self, namespace: str, instance_id: str, fault: dict[str, Any]) -> None:
        """Install (replace) the fault of an instance."""
        ...

    def clear_fault(self, namespace: str, instance_id: str) -> None:
        """Remove the fault of an instance (none installed: nothing happens)."""
        ...

    def clear_faults(self) -> None:
        """Remove every fault."""
        ...

    def fault_of(self, namespace: str, instance_id: str) -> dict[str, Any] | None:
        """The instance's fault, counting nothing."""
        ...

    def list_faults(self) -> list[tuple[str, str, dict[str, Any]]]:
        """Every fault as ``(namespace, instance_id, fault)``, sorted by name."""
        ...

    def take_fault(
        self, namespace: str, instance_id: str, counted: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any] | None:
        """The instance's fault for one request; a counted one's ``times`` is used up once.

        Args:
            namespace: The instance's namespace.
            instance_id: The instance.
            counted: Whether a fault with ``times`` set counts this request.

        Returns:
            The fault as it applies to this request (``times``: the uses left after it; the
            fault is removed when none are left), or None when none is installed (or another
            worker used its last use first).
        """
        ...

    def start_sync(self, inst_pk: int, cooldown_s: float, now: float | None = None) -> int | None:
        """Record the start of a sync job, or refuse it within ``cooldown_s`` of the last one.

        Args:
            inst_pk: The instance's primary key.
            cooldown_s: Seconds between two sync jobs of the instance (0: none).
            now: ``time.monotonic()`` when None.

        Returns:
            None when recorded; else the whole seconds to wait (at least 1).
        """
        ...

    def hit(
        self, key: Hashable, requests: int, period_ms: int, technique: str, now_ms: float
    ) -> float | None:
        """Count one public request of ``key``, or refuse it (see :func:`.count_hit`)."""
        ...

    def close(self) -> None:
        """Release what the state holds."""
        ...


def _cooldown_wait(last: float | None, cooldown_s: float, now: float) -> int | None:
    """The whole seconds a sync started at ``now`` still waits (None: it may start)."""
    if last is not None and now - last < cooldown_s:
        return max(1, math.ceil(cooldown_s - (now - last)))
    return None


def _use(fault: dict[str, Any], counted: Callable[[dict[str, Any]], bool]) -> bool:
    """Count one use of ``fault`` (in place) when it is counted; whether it was."""
    if fault.get("times") is None or not counted(fault):
        return False
    fault["times"] -= 1
    return True


class MemoryState:
    """The :class:`State` of one process, in its memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.faults: dict[tuple[str, str], dict[str, Any]] = {}
        self._syncs: dict[int, float] = {}
        self._counters = MemoryCounters()

    def set_fault(self, namespace: str, instance_id: str, fault: dict[str, Any]) -> None:
        """See :meth:`State.set_fault`."""
        with self._lock:
            self.faults[(namespace, instance_id)] = dict(fault)

    def clear_fault(self, namespace: str, instance_id: str) -> None:
        """See :meth:`State.clear_fault`."""
        with self._lock:
            self.faults.pop((namespace, instance_id), None)

    def clear_faults(self) -> None:
        """See :meth:`State.clear_faults`."""
        with self._lock:
            self.faults.clear()

    def fault_of(self, namespace: str, instance_id: str) -> dict[str, Any] | None:
        """See :meth:`State.fault_of`."""
        with self._lock:
            fault = self.faults.get((namespace, instance_id))
            return None if fault is None else dict(fault)

    def list_faults(self) -> list[tuple[str, str, dict[str, Any]]]:
        """See :meth:`State.list_faults`."""
        with self._lock:
            return [(ns, iid, dict(f)) for (ns, iid), f in sorted(self.faults.items())]

    def take_fault(
        self, namespace: str, instance_id: str, counted: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any] | None:
        """See :meth:`State.take_fault`."""
        with self._lock:
            fault = self.faults.get((namespace, instance_id))
            if fault is None:
                return None
            if _use(fault, counted) and fault["times"] <= 0:
                del self.faults[(namespace, instance_id)]
            return dict(fault)

    def start_sync(self, inst_pk: int, cooldown_s: float, now: float | None = None) -> int | None:
        """See :meth:`State.start_sync`."""
        now = time.monotonic() if now is None else now
        with self._lock:
            wait = _cooldown_wait(self._syncs.get(inst_pk), cooldown_s, now)
            if wait is None:
                self._syncs[inst_pk] = now
            return wait

    def hit(
        self, key: Hashable, requests: int, period_ms: int, technique: str, now_ms: float
    ) -> float | None:
        """See :meth:`State.hit`."""
        return self._counters.hit(key, requests, period_ms, technique, now_ms)

    def close(self) -> None:
        """Nothing to release."""


class SharedState:
    """The :class:`State` of the workers, in ``<directory>/state.sqlite``.

    Args:
        directory: The supervisor's private folder (created by :meth:`create`).

    Faults are stored as their JSON.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._conn = sqlite3.connect(
            self.directory / STATE_FILE,
            isolation_level=None,
            check_same_thread=False,
            timeout=10.0,
        )
        # no fsync per commit: the file lives as long as its server and is deleted when it
        # stops, and a process that dies still leaves every commit in the OS (a rate-limited
        # public request wrote on the event loop: ~270 us median with an fsync, ~30 without)
        self._conn.execute("PRAGMA synchronous=OFF")
        self._lock = threading.Lock()  # the connection (one transaction at a time)
        gen_fd = os.open(self.directory / _GEN_FILE, os.O_RDWR)
        try:
            self._gen_map = mmap.mmap(gen_fd, _GEN.size)
        finally:
            os.close(gen_fd)
        self._gen_path = self.directory / _GEN_FILE
        self._cache: tuple[int, dict[tuple[str, str], dict[str, Any]]] = (-1, {})

    @classmethod
    def create(cls, directory: str | Path) -> SharedState:
        """Create the (empty) state in ``directory`` and open it."""
        path = Path(directory)
        (path / _GEN_FILE).write_bytes(_GEN.pack(0))
        conn = sqlite3.connect(path / STATE_FILE, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
        finally:
            conn.close()
        return cls(path)

    def close(self) -> None:
        """Close the connection and the counter's mapping."""
        with self._lock:
            self._conn.close()
            self._gen_map.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (other processes wait for it: ``BEGIN IMMEDIATE``)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                # a failed COMMIT too (disk full, I/O error): left open, the transaction would
                # hold every worker's writes and refuse this one's next BEGIN
                if self._conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):  # the first error is the one
                        self._conn.execute("ROLLBACK")
                raise

    # -- faults ---------------------------------------------------------------------------------

    def _generation(self) -> int:
        return int(_GEN.unpack_from(self._gen_map, 0)[0])

    def _bump(self) -> None:
        """Count a committed change of the faults (under a file lock: writers never lose one)."""
        with open(self._gen_path, "rb") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                _GEN.pack_into(self._gen_map, 0, self._generation() + 1)
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _faults(self) -> dict[tuple[str, str], dict[str, Any]]:
        """Every fault, from the per-process copy when no change was committed since."""
        gen = self._generation()  # read before the rows: a change after it reloads next time
        cached_gen, faults = self._cache
        if cached_gen == gen:
            return faults
        with hold(self._lock):  # a search on the event loop never waits here (nowait)
            rows = self._conn.execute("SELECT namespace, instance, fault FROM faults").fetchall()
        faults = {(ns, iid): json.loads(text) for ns, iid, text in rows}
        self._cache = (gen, faults)
        return faults

    def set_fault(self, namespace: str, instance_id: str, fault: dict[str, Any]) -> None:
        """See :meth:`State.set_fault`."""
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO faults VALUES (?, ?, ?)",
                (namespace, instance_id, json.dumps(fault)),
            )
        self._bump()

    def clear_fault(self, namespace: str, instance_id: str) -> None:
        """See :meth:`State.clear_fault`."""
        if (namespace, instance_id) not in self._faults():
            return
        with self._write() as conn:
            conn.execute(
                "DELETE FROM faults WHERE namespace = ? AND instance = ?", (namespace, instance_id)
            )
        self._bump()

    def clear_faults(self) -> None:
        """See :meth:`State.clear_faults`."""
        with self._write() as conn:
            conn.execute("DELETE FROM faults")
        self._bump()

    def fault_of(self, namespace: str, instance_id: str) -> dict[str, Any] | None:
        """See :meth:`State.fault_of`."""
        fault = self._faults().get((namespace, instance_id))
        return None if fault is None else dict(fault)

    def list_faults(self) -> list[tuple[str, str, dict[str, Any]]]:
        """See :meth:`State.list_faults`."""
        return [(ns, iid, dict(f)) for (ns, iid), f in sorted(self._faults().items())]

    def take_fault(
        self, namespace: str, instance_id: str, counted: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any] | None:
        """See :meth:`State.take_fault`.

        A counted fault is re-read and used in a write transaction (the other workers count
        too); the faults' counter is bumped only when a row changed.
        """
        fault = self._faults().get((namespace, instance_id))
        if fault is None:
            return None
        if fault.get("times") is None or not counted(fault):
            return dict(fault)
        refuse("a counted fault is used in a write transaction")  # (nowait): on a thread
        with self._write() as conn:
            row = conn.execute(
                "SELECT fault FROM faults WHERE namespace = ? AND instance = ?",
                (namespace, instance_id),
            ).fetchone()
            if row is None:  # another worker used its last use, or cleared it, meanwhile
                return None
            taken: dict[str, Any] = json.loads(row[0])
            if not _use(taken, counted):  # replaced meanwhile by one that counts nothing
                return taken
            if taken["times"] <= 0:
                conn.execute(
                    "DELETE FROM faults WHERE namespace = ? AND instance = ?",
                    (namespace, instance_id),
                )
            else:
                conn.execute(
                    "UPDATE faults SET fault = ? WHERE namespace = ? AND instance = ?",
                    (json.dumps(taken), namespace, instance_id),
                )
        self._bump()
        return taken

    # -- sync cooldown --------------------------------------------------------------------------

    def start_sync(self, inst_pk: int, cooldown_s: float, now: float | None = None) -> int | None:
        """See :meth:`State.start_sync`."""
        now = time.monotonic() if now is None else now
        with self._write() as conn:
            row = conn.execute("SELECT started FROM syncs WHERE inst_pk = ?", (inst_pk,)).fetchone()
            wait = _cooldown_wait(None if row is None else float(row[0]), cooldown_s, now)
            if wait is None:
                conn.execute("INSERT OR REPLACE INTO syncs VALUES (?, ?)", (inst_pk, now))
        return wait

    # -- rate limit -----------------------------------------------------------------------------

    def hit(
        self, key: Hashable, requests: int, period_ms: int, technique: str, now_ms: float
    ) -> float | None:
        """See :meth:`State.hit`: the counters are rows, keyed by the key's JSON."""
        row_key = json.dumps(key, default=str)
        rule = (requests, period_ms, technique)
        with self._write() as conn:
            row = conn.execute(
                "SELECT rule, idx, count, previous FROM windows WHERE key = ?", (row_key,)
            ).fetchone()
            if row is None:  # a new key: forget the counters that count nothing
                stale = [
                    k
                    for k, r, i, c, p in conn.execute("SELECT * FROM windows")
                    if idle(Window(tuple(json.loads(r)), i, c, p), now_ms)
                ]
                conn.executemany("DELETE FROM windows WHERE key = ?", [(k,) for k in stale])
            w = None if row is None else Window(tuple(json.loads(row[0])), row[1], row[2], row[3])
            w, wait = count_hit(w, rule, now_ms)
            conn.execute(
                "INSERT OR REPLACE INTO windows VALUES (?, ?, ?, ?, ?)",
                (row_key, json.dumps(w.rule), w.index, w.count, w.previous),
            )
        return wait


class SharedRateLimiter(RateLimiter):
    """A :class:`~aisearch_local.ratelimit.RateLimiter` on a :class:`SharedState`'s counters.

    ``RateLimiter(clock, state)``: every worker counts in the same rows, so ``rate_limit``
    holds for the server as a whole, whatever the number of workers.
    """

    def __init__(self, state: SharedState, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(clock, state)
        self.state = state
