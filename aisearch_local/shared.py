"""The state that ``aisearch-local serve --workers N`` shares between its worker processes.

With one process (the default) the injected faults, the sync cooldown and the public endpoints'
rate limit live in memory (:class:`~aisearch_local.service.LocalService`,
:class:`~aisearch_local.ratelimit.RateLimiter`). With several, any request may land on any
worker, so they live in one small SQLite file that the supervisor creates empty in a private
temporary folder when ``serve`` starts and removes when it stops (a fault never outlives its
server, and ``aisearch-local ingest`` never sees it):

* ``faults``: one row per instance; a counted fault (``times``) is decremented in a write
  transaction, so two workers never both apply the last use of ``times: 1``. A search reads
  the faults from a per-process copy, stamped by a counter in a memory-mapped file that every
  change bumps after its commit: a search with no fault installed costs one memory read, no
  SQL;
* ``syncs``: the start of each instance's last sync job (``time.monotonic``, one clock for
  every process of the machine on Linux);
* ``windows``: the rate limit's counters (:class:`SharedRateLimiter`), one write transaction
  per public request.

See docs/workers.md.
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
from typing import Any

from aisearch_local.ratelimit import RateLimiter, Window, count_hit, idle

__all__ = ["STATE_FILE", "SharedRateLimiter", "SharedState"]

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


class SharedState:
    """The shared state of the workers, in ``<directory>/state.sqlite``.

    Args:
        directory: The supervisor's private folder (created by :meth:`create`).

    Faults are stored as the JSON of :meth:`Fault.as_dict
    <aisearch_local.service.Fault.as_dict>`; this module knows nothing of their fields but
    ``times`` and whether a fault is counted (the caller says, see :meth:`take_fault`).
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
        with self._lock:
            rows = self._conn.execute("SELECT namespace, instance, fault FROM faults").fetchall()
        faults = {(ns, iid): json.loads(text) for ns, iid, text in rows}
        self._cache = (gen, faults)
        return faults

    def set_fault(self, namespace: str, instance_id: str, fault: dict[str, Any]) -> None:
        """Install (replace) the fault of an instance."""
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO faults VALUES (?, ?, ?)",
                (namespace, instance_id, json.dumps(fault)),
            )
        self._bump()

    def clear_fault(self, namespace: str, instance_id: str) -> None:
        """Remove the fault of an instance."""
        if (namespace, instance_id) not in self._faults():
            return
        with self._write() as conn:
            conn.execute(
                "DELETE FROM faults WHERE namespace = ? AND instance = ?", (namespace, instance_id)
            )
        self._bump()

    def clear_faults(self) -> None:
        """Remove every fault."""
        with self._write() as conn:
            conn.execute("DELETE FROM faults")
        self._bump()

    def fault_of(self, namespace: str, instance_id: str) -> dict[str, Any] | None:
        """The instance's fault (a copy), counting nothing."""
        fault = self._faults().get((namespace, instance_id))
        return None if fault is None else dict(fault)

    def list_faults(self) -> list[tuple[str, str, dict[str, Any]]]:
        """Every fault as ``(namespace, instance_id, fault)``, sorted by name."""
        return [(ns, iid, dict(f)) for (ns, iid), f in sorted(self._faults().items())]

    def take_fault(
        self, namespace: str, instance_id: str, counted: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any] | None:
        """The instance's fault for one request; a counted one's ``times`` is used up once.

        Args:
            namespace: The instance's namespace.
            instance_id: The instance.
            counted: Whether a fault with ``times`` set counts this request.

        Returns:
            The fault as it applies to this request (``times``: the uses left after it), or
            None when none is installed or another worker used its last use first.
        """
        fault = self._faults().get((namespace, instance_id))
        if fault is None:
            return None
        if fault.get("times") is None or not counted(fault):
            return dict(fault)
        with self._write() as conn:  # re-read in the transaction: the other workers count too
            row = conn.execute(
                "SELECT fault FROM faults WHERE namespace = ? AND instance = ?",
                (namespace, instance_id),
            ).fetchone()
            if row is None:
                taken = None
            else:
                taken = json.loads(row[0])
                if taken.get("times") is not None and counted(taken):
                    taken["times"] -= 1
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
        """Record the start of a sync job, or refuse it within ``cooldown_s`` of the last one.

        Returns:
            None when recorded; else the whole seconds to wait (at least 1).
        """
        now = time.monotonic() if now is None else now
        with self._write() as conn:
            row = conn.execute("SELECT started FROM syncs WHERE inst_pk = ?", (inst_pk,)).fetchone()
            last = None if row is None else float(row[0])
            if last is not None and now - last < cooldown_s:
                return max(1, math.ceil(cooldown_s - (now - last)))
            conn.execute("INSERT OR REPLACE INTO syncs VALUES (?, ?)", (inst_pk, now))
        return None

    # -- rate limit -----------------------------------------------------------------------------

    def hit(
        self, key: str, requests: int, period_ms: int, technique: str, now_ms: float
    ) -> float | None:
        """:meth:`RateLimiter.hit <aisearch_local.ratelimit.RateLimiter.hit>` on the shared rows."""
        rule = (requests, period_ms, technique)
        with self._write() as conn:
            row = conn.execute(
                "SELECT rule, idx, count, previous FROM windows WHERE key = ?", (key,)
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
                (key, json.dumps(w.rule), w.index, w.count, w.previous),
            )
        return wait


class SharedRateLimiter(RateLimiter):
    """A rate limiter whose counters are in a :class:`SharedState`.

    Every worker counts in the same rows, so ``rate_limit`` holds for the server as a whole,
    whatever the number of workers.
    """

    def __init__(self, state: SharedState, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(clock)
        self.state = state

    def hit(self, key: Hashable, requests: int, period_ms: int, technique: str) -> float | None:
        """Count one request of ``key`` in the shared counters, or refuse it."""
        return self.state.hit(
            json.dumps(key, default=str), requests, period_ms, technique, self.clock() * 1000.0
        )
