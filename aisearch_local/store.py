"""SQLite storage for the local AI Search server.

One database file per data directory, in WAL mode with ``synchronous=FULL``: every write the
server acknowledges has been fsynced to the write-ahead log, so it survives ``kill -9``.

Layout::

    namespaces(name, description, created_at, modified_at)
    instances(pk, namespace, id, config JSON, embedder, dim, source_dir, created_at, modified_at)
    items(pk, inst_pk, id, key, status, error, checksum, file_size, metadata JSON,
          timestamp_ms, source_id, chunks_count, created_at, modified_at)
    chunks(cid, inst_pk, item_pk, seq, id, text, start_byte, end_byte, embedding BLOB)
    fts_<inst_pk>(text)      FTS5, rowid = chunks.cid; tokenizer porter or trigram per instance
    jobs(pk, inst_pk, id, source, description, started_at, ended_at, end_reason, last_seen_at,
         log JSON)

Embeddings are float32 blobs. For search, :meth:`Store.index` loads them once per instance into
a :class:`~aisearch_local.vectors.VectorTable` (a numpy matrix with the chunk and item ids
aligned to it), from its file under ``vectors/`` when that file is current, else from SQLite.
Every write bumps the instance's generation (``meta``) in its transaction and, after COMMIT,
appends or tombstones rows of the table and of its file (``docs/architecture.md``, "The vector
index"). Chunk ids only grow (``meta`` key ``cid_hwm``), so appended rows stay sorted.

Connections: one *writer* connection, behind the store lock, runs every transaction
(:meth:`Store.transaction`); reads (:meth:`Store._query`, keyword searches, chunk fetches) run
on a read-only connection of the calling thread, so that they never wait for each other or for
a writer (WAL readers see the last commit). A thread's reader is closed when the thread ends
(starlette's thread pool starts and stops threads) and every reader on :meth:`Store.close`.
An in-memory store (``Store(None)``) keeps one connection for everything: a ``:memory:``
database cannot be opened twice, and a shared-cache URI would trade the lock for SQLite's
table locks (``SQLITE_LOCKED``, which no busy timeout retries).
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np

from aisearch_local import keyword as keyword_mod
from aisearch_local import vectors
from aisearch_local.filters import ItemTable
from aisearch_local.jsonsafe import dumps_strict, loads_lenient
from aisearch_local.keyword import KeywordIndexes, engine_from_env, fts_expression
from aisearch_local.nowait import hold, refuse
from aisearch_local.records import (
    INSTANCE_COLUMNS,
    ITEM_COLUMNS,
    JOB_COLUMNS,
    SCHEMA,
    ChunkRow,
    ImportedInstance,
    InstanceIndex,
    InstanceRecord,
    NewChunk,
    instance_row,
    item_attributes,
    item_row,
    job_row,
    metadata_dict,
    namespace_row,
    now_iso,
    now_ms,
)
from aisearch_local.vectors import VectorChange, VectorTable, own_ahead

__all__ = [
    "DB_FILENAME",
    "ChunkRow",
    "InstanceIndex",
    "InstanceRecord",
    "NewChunk",
    "Store",
    "item_attributes",
    "now_iso",
    "now_ms",
]

T = TypeVar("T")

DB_FILENAME = "aisearch-local.sqlite3"
_ITEM_NS = uuid.UUID("6f1c9b5e-3d1a-4c47-9a55-2b8f3f9c1d20")
_CLOSED = "the aisearch-local store is closed"
# page cache of each connection, in KiB (SQLite's negative cache_size): the writer keeps the
# old 64 MiB; a reader 16 MiB (there is one per worker thread, and the OS caches the file too)
_WRITER_CACHE_KIB = 65536
_READER_CACHE_KIB = 16384
# entries of a connection's catalog cache (instance records, namespace names) before it starts over
_CATALOG_MAX = 4096


class _Catalog:
    """Instance records and namespace names read by one connection, valid for one stamp.

    The stamp is the store's commit count and the connection's ``PRAGMA data_version``, read
    *before* the rows: any commit since (this process's, or another process's on the same
    file) changes it, and the next lookup starts over from SQLite.
    """

    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state: tuple[
            tuple[int, int], dict[tuple[str, str], InstanceRecord], set[str], dict[str, Any]
        ]
        self.state = ((-1, -1), {}, set(), {})

    def at(
        self, stamp: tuple[int, int]
    ) -> tuple[dict[tuple[str, str], InstanceRecord], set[str], dict[str, Any]]:
        """The entries read at ``stamp``: new, empty ones when it is not theirs.

        One tuple, swapped whole: a thread holding the entries of an older stamp fills those,
        never the new ones. The third member holds values derived from the whole catalog
        (:meth:`Store.derived`).
        """
        state = self.state
        if state[0] != stamp or len(state[1]) + len(state[2]) > _CATALOG_MAX:
            state = self.state = (stamp, {}, set(), {})
        return state[1], state[2], state[3]


class _Reader:
    """One thread's read-only connection, with the lock :meth:`Store.close` takes to close it.

    When its thread ends, the thread-local slot lets go of it and the connection is closed
    with it (``sqlite3.Connection`` closes itself when collected).
    """

    __slots__ = ("__weakref__", "catalog", "closed", "conn", "lock")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.lock = threading.Lock()
        self.closed = False
        self.catalog = _Catalog()

    def close(self) -> None:
        with self.lock:
            if not self.closed:
                self.closed = True
                self.conn.close()


def update_attributes(table: VectorTable, change: VectorChange) -> None:
    """Bring the table's item attributes (when built) up to date with a write."""
    items = table.extra.get("items")
    if not isinstance(items, ItemTable):
        return
    for pk, key, ts_ms, metadata in change.items:
        if key is None or metadata is None:
            items.clear(pk)
        else:
            items.set(pk, item_attributes(key, ts_ms, metadata))


class Store:
    """Thread-safe access to the SQLite database of one data directory.

    Args:
        data_dir: Directory holding the database file (created when missing), or None for an
            in-memory database: nothing is written to disk and everything is lost on close.
        keyword_engine: ``auto``, ``tantivy`` or ``fts5``: what answers the keyword searches
            of ``porter`` instances (``aisearch_local.keyword``); None reads
            ``AISEARCH_LOCAL_KEYWORD_ENGINE`` (default ``auto``).
    """

    def __init__(self, data_dir: Path | str | None, *, keyword_engine: str | None = None) -> None:
        self.data_dir = None if data_dir is None else Path(data_dir)
        self.keywords = KeywordIndexes(
            engine_from_env(keyword_engine),
            self.keyword_source,
            self.chunk_texts,
            directory=None if self.data_dir is None else self.data_dir / "keyword",
            own=self._own_gens,
        )
        self.path: Path | None = None
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self.path = self.data_dir / DB_FILENAME
        self._lock = threading.RLock()  # the writer connection and the index cache
        self._conn = self._connect()
        if self.path is None:  # temporary tables and indexes too stay in memory
            self._conn.execute("PRAGMA temp_store=MEMORY")
        else:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA foreign_keys=OFF")
        self._conn.execute(f"PRAGMA cache_size=-{_WRITER_CACHE_KIB}")
        self._conn.executescript(SCHEMA)
        self._local = threading.local()
        self._readers: weakref.WeakSet[_Reader] = weakref.WeakSet()
        self._readers_lock = threading.Lock()
        self._versions: dict[int, int] = {}
        self._indexes: dict[int, InstanceIndex] = {}
        # each instance's generation as read at a stamp (see _checked_generation)
        self._gens: dict[int, tuple[tuple[int, int], tuple[str, int] | None]] = {}
        self._tables: dict[int, VectorTable] = {}
        self._pending: dict[int, dict[int, VectorChange]] = {}
        # the generations of this process's writes under way (committed or about to be, their
        # change not yet handed to the tables): instance pk -> {gen: writing thread}
        self._own: dict[int, dict[int, int]] = {}
        self._own_lock = threading.Lock()  # a leaf lock: nothing is acquired under it
        self._vlock = threading.RLock()
        self._applied = threading.Condition(self._vlock)  # a table took changes, or was dropped
        self._closed = False
        self._data_version = -1
        self._external = 0
        self._commits = 0  # COMMITs of the writer (stamps the catalog caches)
        self._catalog = _Catalog()  # the in-memory store's (its one connection's)
        with self.transaction() as cur:
            cur.execute(
                "INSERT OR IGNORE INTO namespaces(name, description, created_at, modified_at) "
                "VALUES ('default', 'The default namespace', ?, ?)",
                (now_iso(), now_iso()),
            )

    # -- plumbing ---------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(
            ":memory:" if self.path is None else self.path,
            check_same_thread=False,
            isolation_level=None,
            timeout=30.0,
        )

    def close(self) -> None:
        """Close every reader, checkpoint the WAL and close the writer (idempotent).

        A read running in another thread finishes first; any later read or write raises
        ``sqlite3.ProgrammingError``.
        """
        self.keywords.close()
        with self._lock:
            if self._closed:
                return
            with self._readers_lock:
                self._closed = True
                readers = list(self._readers)
            for reader in readers:
                reader.close()
            try:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                self._conn.close()

    def _reader(self) -> _Reader:
        """The calling thread's read-only connection (opened on its first read)."""
        reader: _Reader | None = getattr(self._local, "reader", None)
        if reader is not None:
            return reader
        with self._readers_lock:
            if self._closed:
                raise sqlite3.ProgrammingError(_CLOSED)
            conn = self._connect()
            try:
                conn.execute("PRAGMA query_only=ON")
                conn.execute(f"PRAGMA cache_size=-{_READER_CACHE_KIB}")
            except BaseException:
                conn.close()
                raise
            reader = _Reader(conn)
            self._readers.add(reader)
        self._local.reader = reader
        return reader

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Cursor]:
        """Run a block in one ``BEGIN IMMEDIATE`` transaction on the writer connection."""
        with self._lock:
            if self._closed:
                raise sqlite3.ProgrammingError(_CLOSED)
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            else:
                cur.execute("COMMIT")
                self._commits += 1

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one read: on this thread's reader (the writer, behind the lock, in memory)."""
        if self.path is None:
            with hold(self._lock):  # a search on the event loop never waits for a writer
                if self._closed:
                    raise sqlite3.ProgrammingError(_CLOSED)
                return self._conn.execute(sql, params).fetchall()
        reader = self._reader()
        with reader.lock:
            if reader.closed:
                raise sqlite3.ProgrammingError(_CLOSED)
            return reader.conn.execute(sql, params).fetchall()

    def _bump(self, inst_pk: int) -> None:
        """A write that did not describe its change: the vector table is rebuilt from SQLite."""
        self._versions[inst_pk] = self._versions.get(inst_pk, 0) + 1
        self.keywords.drop(inst_pk)
        with self._vlock:
            self._tables.pop(inst_pk, None)
            self._pending.pop(inst_pk, None)
            if self.data_dir is not None:
                vectors.remove_head(self._vector_dir(inst_pk))

    def _sync_external(self) -> bool:
        """Drop every cache when another process (``aisearch-local ingest``) wrote the file.

        ``PRAGMA data_version`` changes on a connection when *another* connection committed, so
        it is read on the writer, the only connection of this process that commits. While the
        writer is busy with a transaction the check is skipped (a search never waits for a
        write); the next read after that transaction makes it. Returns whether it checked.
        """
        if not self._lock.acquire(blocking=False):
            return False
        try:
            if self._closed:
                return False
            dv = int(self._conn.execute("PRAGMA data_version").fetchone()[0])
            if dv != self._data_version:
                self._data_version = dv
                self._external += 1
                self._indexes.clear()
            return True
        finally:
            self._lock.release()

    def bump_version(self, inst_pk: int) -> None:
        """Change the instance's version without a write (``purge_cache``).

        Every similarity-cache entry keyed on the old version is orphaned.
        """
        with self._lock:
            self._bump_version(inst_pk)

    def _bump_version(self, inst_pk: int) -> None:
        self._versions[inst_pk] = self._versions.get(inst_pk, 0) + 1

    def version(self, inst_pk: int) -> int:
        """Return a counter that changes on every write to the instance."""
        self._sync_external()
        return self._versions.get(inst_pk, 0) + self._external * 1_000_000

    # -- the vector tables ------------------------------------------------------------------

    def _vector_dir(self, inst_pk: int) -> Path:
        assert self.data_dir is not None
        return self.data_dir / "vectors" / str(inst_pk)

    def _next_gen(self, cur: sqlite3.Cursor, inst_pk: int) -> VectorChange:
        """Bump the instance's vector generation inside the write transaction.

        The new generation is claimed as this process's own until the write ends
        (:meth:`_writing`): a search that finds SQLite ahead of its table only by own
        generations keeps the table (the write will apply its change), while a generation of
        another process makes it reload.
        """
        key = f"vectors:{inst_pk}"
        cur.execute("SELECT value FROM meta WHERE key = ?", (key,))
        row = cur.fetchone()
        parsed = vectors.parse_generation(row[0]) if row else None
        nonce, gen = parsed if parsed else (vectors.new_nonce(), 0)
        cur.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, f"{nonce}:{gen + 1}")
        )
        with self._own_lock:
            self._own.setdefault(inst_pk, {})[gen + 1] = threading.get_ident()
        return VectorChange(nonce=nonce, gen=gen + 1)

    def _own_gens(self, inst_pk: int) -> frozenset[int]:
        """The generations of this process's writes to the instance under way."""
        with self._own_lock:
            return frozenset(self._own.get(inst_pk, ()))

    def _generation(self, inst_pk: int) -> tuple[str, int] | None:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (f"vectors:{inst_pk}",))
        return vectors.parse_generation(rows[0][0]) if rows else None

    def _checked_generation(self, inst_pk: int) -> tuple[str, int] | None:
        """:meth:`_generation`, read once per commit (after a :meth:`_sync_external` that checked).

        The generation only changes in a committed transaction: this process's (counted in
        ``_commits`` once committed) or another's (counted in ``_external`` by the check). The
        stamp is read before the row: a commit in between changes the next stamp, so a cached
        value is never older than its stamp.
        """
        stamp = (self._commits, self._external)
        cached = self._gens.get(inst_pk)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        info = self._generation(inst_pk)
        self._gens[inst_pk] = (stamp, info)
        return info

    @contextmanager
    def _writing(self, inst_pk: int) -> Iterator[None]:
        """A write to the instance: its generation (:meth:`_next_gen`) is own until it ends.

        By then its change was handed to the tables (:meth:`_after_write`), or it failed.
        """
        me = threading.get_ident()
        try:
            yield
        finally:
            with self._own_lock:
                own = self._own.get(inst_pk, {})
                for gen in [g for g, owner in own.items() if owner == me]:
                    del own[gen]
                if not own:
                    self._own.pop(inst_pk, None)
            with self._vlock:  # a later write waiting for this one's change re-checks
                self._applied.notify_all()

    def _after_write(self, inst_pk: int, change: VectorChange) -> None:
        """Apply a committed write to the instance's vector table and its file.

        Returns once the table holds it (so that the write is acknowledged only then), as
        :meth:`KeywordIndexes.apply <aisearch_local.keyword.KeywordIndexes.apply>`: a change
        that follows an own write not applied yet (committed, its thread not back) waits for
        that thread to apply both, up to :data:`~aisearch_local.keyword.APPLY_WAIT_S`; then,
        or at once when a missing generation is another process's, the table is dropped and
        the next search loads it again (a kept table would miss this acknowledged write).
        """
        self._bump_version(inst_pk)
        with self._vlock:
            self._pending.setdefault(inst_pk, {})[change.gen] = change
            table = self._catch_up(inst_pk, self._tables.get(inst_pk))
            deadline = time.monotonic() + keyword_mod.APPLY_WAIT_S
            while table is not None and table.gen < change.gen:
                pending = self._pending.get(inst_pk, {})
                left = deadline - time.monotonic()
                if change.gen not in pending:  # dropped, or applied by a reload
                    break
                if left <= 0 or not own_ahead(
                    table.gen, change.gen - 1, self._own_gens(inst_pk), pending
                ):
                    self._tables.pop(inst_pk, None)  # the next search loads it again
                    self._pending.pop(inst_pk, None)
                    self._applied.notify_all()
                    break
                self._applied.wait(left)
                table = self._tables.get(inst_pk)
        self.keywords.apply(inst_pk, change)  # the keyword index (tantivy), if one is built

    def _catch_up(self, inst_pk: int, table: VectorTable | None) -> VectorTable | None:
        """Apply the pending changes that follow the table's generation, in order."""
        pending = self._pending.get(inst_pk, {})
        if table is None:
            table = self._load_table(inst_pk)
            if table is None:  # the instance is gone
                self._pending.pop(inst_pk, None)
                return None
            self._tables[inst_pk] = table
        for gen in [g for g in pending if g <= table.gen]:
            del pending[gen]
        while table.gen + 1 in pending:
            change = pending.pop(table.gen + 1)
            if change.nonce != table.nonce:  # a table from before the instance had a nonce
                pending.clear()
                table = self._tables[inst_pk] = self._rebuild_table(
                    inst_pk, table.dim, table.directory
                )
                break
            with table.lock:
                before = table.head()
                applied = table.apply(change)
                assert applied is not None
                update_attributes(table, change)
                if table.needs_compaction():
                    table.compact()
                    table.save()
                else:
                    table.persist(before, *applied)
        self._applied.notify_all()
        return table

    def _load_table(self, inst_pk: int) -> VectorTable | None:
        """Load the instance's table from its file when current, else rebuild it from SQLite."""
        with self._lock:
            dims = self._conn.execute(
                "SELECT dim FROM instances WHERE pk = ?", (inst_pk,)
            ).fetchall()
            if not dims:
                return None
            dim = int(dims[0][0])
            info = self._generation(inst_pk)
            live = int(
                self._conn.execute(
                    "SELECT COUNT(*) FROM chunks WHERE inst_pk = ?", (inst_pk,)
                ).fetchone()[0]
            )
            max_item = int(
                self._conn.execute("SELECT COALESCE(MAX(pk), 0) FROM items").fetchone()[0]
            )
        nonce, gen = info if info else ("", 0)
        directory = None if self.data_dir is None else self._vector_dir(inst_pk)
        if directory is not None and info is not None:
            table = vectors.load(
                directory, dim=dim, nonce=nonce, gen=gen, live_chunks=live, max_item_pk=max_item
            )
            if table is not None:
                return table
        return self._rebuild_table(inst_pk, dim, directory)

    def _rebuild_table(self, inst_pk: int, dim: int, directory: Path | None) -> VectorTable:
        """Read every embedding of the instance from SQLite (one consistent read)."""
        with self._lock:
            info = self._generation(inst_pk)
            n = int(
                self._conn.execute(
                    "SELECT COUNT(*) FROM chunks WHERE inst_pk = ?", (inst_pk,)
                ).fetchone()[0]
            )
            cap = max(n + n // 2, 1024)
            matrix = np.empty((cap, dim), dtype=np.float32)
            cids = np.empty(cap, dtype=np.int64)
            items = np.empty(cap, dtype=np.int64)
            cur = self._conn.execute(
                "SELECT cid, item_pk, embedding FROM chunks WHERE inst_pk = ? ORDER BY cid",
                (inst_pk,),
            )
            at = 0
            while batch := cur.fetchmany(4096):
                k = len(batch)
                cids[at : at + k] = [r[0] for r in batch]
                items[at : at + k] = [r[1] for r in batch]
                matrix[at : at + k] = np.frombuffer(
                    b"".join(r[2] for r in batch), dtype=np.float32
                ).reshape(k, dim)
                at += k
        nonce, gen = info if info else ("", 0)
        table = VectorTable(dim, nonce, gen, matrix, cids, items, at, directory=directory)
        if info is not None:
            table.save()
        return table

    # -- namespaces -------------------------------------------------------------------------

    def create_namespace(
        self, name: str, description: str | None, extra: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Create a namespace; return None when it already exists."""
        ts = now_iso()
        with self.transaction() as cur:
            cur.execute("SELECT 1 FROM namespaces WHERE name = ?", (name,))
            if cur.fetchone():
                return None
            cur.execute(
                "INSERT INTO namespaces(name, description, extra, created_at, modified_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (name, description, dumps_strict(extra), ts, ts),
            )
        return self.get_namespace(name)

    def get_namespace(self, name: str) -> dict[str, Any] | None:
        """Return a namespace as a dict, or None."""
        rows = self._query(
            "SELECT name, description, extra, created_at, modified_at FROM namespaces "
            "WHERE name = ?",
            (name,),
        )
        return namespace_row(rows[0]) if rows else None

    def list_namespaces(self) -> list[dict[str, Any]]:
        """Return every namespace, ordered by name."""
        rows = self._query(
            "SELECT name, description, extra, created_at, modified_at FROM namespaces ORDER BY name"
        )
        return [namespace_row(r) for r in rows]

    def update_namespace(
        self, name: str, description: str | None, extra: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Update a namespace's description and extra fields; None when missing."""
        with self.transaction() as cur:
            cur.execute("SELECT extra FROM namespaces WHERE name = ?", (name,))
            row = cur.fetchone()
            if row is None:
                return None
            old = loads_lenient(row[0], {}, what=f"namespace {name!r} extra fields")
            merged = {**(old if isinstance(old, dict) else {}), **extra}
            cur.execute(
                "UPDATE namespaces SET description = COALESCE(?, description), extra = ?, "
                "modified_at = ? WHERE name = ?",
                (description, dumps_strict(merged), now_iso(), name),
            )
        return self.get_namespace(name)

    def delete_namespace(self, name: str) -> None:
        """Delete a namespace (the caller checks that it is empty)."""
        with self.transaction() as cur:
            cur.execute("DELETE FROM namespaces WHERE name = ?", (name,))

    def count_instances(self, namespace: str) -> int:
        """Return how many instances a namespace holds."""
        return int(
            self._query("SELECT COUNT(*) FROM instances WHERE namespace = ?", (namespace,))[0][0]
        )

    # -- instances --------------------------------------------------------------------------

    @staticmethod
    def _tokenizer(config: dict[str, Any]) -> str:
        opts = config.get("indexing_options") or {}
        if opts.get("keyword_tokenizer") == "trigram":
            return "trigram"
        return "porter unicode61 remove_diacritics 2"

    def create_instance(
        self,
        namespace: str,
        instance_id: str,
        config: dict[str, Any],
        *,
        embedder: str,
        dim: int,
        source_dir: str | None = None,
    ) -> InstanceRecord | None:
        """Create an instance and its FTS5 table; None when the id is taken."""
        ts = now_iso()
        with self.transaction() as cur:
            cur.execute(
                "SELECT 1 FROM instances WHERE namespace = ? AND id = ?", (namespace, instance_id)
            )
            if cur.fetchone():
                return None
            cur.execute(
                "INSERT INTO instances(namespace, id, config, embedder, dim, source_dir, "
                "created_at, modified_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (namespace, instance_id, dumps_strict(config), embedder, dim, source_dir, ts, ts),
            )
            pk = int(cur.lastrowid or 0)
            tok = self._tokenizer(config)
            cur.execute(f"CREATE VIRTUAL TABLE fts_{pk} USING fts5(text, tokenize='{tok}')")
            cur.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                (f"vectors:{pk}", f"{vectors.new_nonce()}:0"),
            )
        return self.get_instance(namespace, instance_id)

    def _current_catalog(
        self,
    ) -> tuple[dict[tuple[str, str], InstanceRecord], set[str], dict[str, Any]]:
        """The calling thread's catalog cache, emptied when anything was committed since.

        The stamp is read before the rows the caller then reads and caches: a commit in
        between changes the next stamp, so a cached record is never older than its stamp.
        """
        commits = self._commits
        if self.path is None:  # one connection, written only by this process
            return self._catalog.at((commits, 0))
        reader = self._reader()
        with reader.lock:
            if reader.closed:
                raise sqlite3.ProgrammingError(_CLOSED)
            dv = int(reader.conn.execute("PRAGMA data_version").fetchone()[0])
        return reader.catalog.at((commits, dv))

    def derived(self, key: str, build: Callable[[], T]) -> T:
        """``build()``, computed once per calling thread until the next commit (any process's).

        For values derived from the instances and namespaces (e.g. the public endpoints by
        id), cached like :meth:`get_instance`: never change what ``build`` returns.
        """
        cache = self._current_catalog()[2]
        if key in cache:
            value: T = cache[key]
            return value
        value = cache[key] = build()
        return value

    def get_instance(self, namespace: str, instance_id: str) -> InstanceRecord | None:
        """Return an instance, or None.

        The record is cached per reading thread until the next commit to the database (of this
        process or another): it is shared by the requests meanwhile, so never change it.
        """
        return self._get_instance(namespace, instance_id, self._current_catalog()[0])

    def _get_instance(
        self, namespace: str, instance_id: str, instances: dict[tuple[str, str], InstanceRecord]
    ) -> InstanceRecord | None:
        key = (namespace, instance_id)
        cached = instances.get(key)
        if cached is not None:
            return cached
        rows = self._query(
            f"SELECT {INSTANCE_COLUMNS} FROM instances WHERE namespace = ? AND id = ?",
            (namespace, instance_id),
        )
        if not rows:
            return None
        record = instances[key] = instance_row(rows[0])
        return record

    def has_namespace(self, name: str) -> bool:
        """Whether a namespace exists (cached like :meth:`get_instance`)."""
        return self._has_namespace(name, self._current_catalog()[1])

    def _has_namespace(self, name: str, namespaces: set[str]) -> bool:
        if name in namespaces:
            return True
        if not self._query("SELECT 1 FROM namespaces WHERE name = ?", (name,)):
            return False
        namespaces.add(name)
        return True

    def find_instance(self, namespace: str, instance_id: str) -> tuple[bool, InstanceRecord | None]:
        """Whether the namespace exists, and the instance or None (one cache check for both)."""
        instances, namespaces, _ = self._current_catalog()
        if not self._has_namespace(namespace, namespaces):
            return False, None
        return True, self._get_instance(namespace, instance_id, instances)

    def list_instances(self, namespace: str | None = None) -> list[InstanceRecord]:
        """Return the instances of a namespace (every namespace when None)."""
        if namespace is None:
            rows = self._query(f"SELECT {INSTANCE_COLUMNS} FROM instances ORDER BY pk")
        else:
            rows = self._query(
                f"SELECT {INSTANCE_COLUMNS} FROM instances WHERE namespace = ? ORDER BY pk",
                (namespace,),
            )
        return [instance_row(r) for r in rows]

    def update_instance(self, inst: InstanceRecord, config: dict[str, Any]) -> InstanceRecord:
        """Replace an instance's configuration; rebuild FTS when the tokenizer changed."""
        rebuild = self._tokenizer(config) != self._tokenizer(inst.config)
        with self.transaction() as cur:
            cur.execute(
                "UPDATE instances SET config = ?, modified_at = ? WHERE pk = ?",
                (dumps_strict(config), now_iso(), inst.pk),
            )
            if rebuild:
                tok = self._tokenizer(config)
                cur.execute(f"DROP TABLE IF EXISTS fts_{inst.pk}")
                cur.execute(
                    f"CREATE VIRTUAL TABLE fts_{inst.pk} USING fts5(text, tokenize='{tok}')"
                )
                cur.execute(
                    f"INSERT INTO fts_{inst.pk}(rowid, text) "
                    "SELECT cid, text FROM chunks WHERE inst_pk = ?",
                    (inst.pk,),
                )
        if rebuild:
            self.keywords.drop(inst.pk)
        self._bump_version(inst.pk)  # the vectors did not change
        updated = self.get_instance(inst.namespace, inst.id)
        assert updated is not None
        return updated

    def set_source_dir(self, inst: InstanceRecord, source_dir: str | None) -> None:
        """Record the local folder an instance syncs from."""
        with self.transaction() as cur:
            cur.execute("UPDATE instances SET source_dir = ? WHERE pk = ?", (source_dir, inst.pk))

    def delete_instance(self, inst: InstanceRecord) -> None:
        """Delete an instance with its items, chunks, jobs and FTS table."""
        with self.transaction() as cur:
            cur.execute("DELETE FROM chunks WHERE inst_pk = ?", (inst.pk,))
            cur.execute("DELETE FROM items WHERE inst_pk = ?", (inst.pk,))
            cur.execute("DELETE FROM jobs WHERE inst_pk = ?", (inst.pk,))
            cur.execute("DELETE FROM instances WHERE pk = ?", (inst.pk,))
            cur.execute("DELETE FROM meta WHERE key = ?", (f"vectors:{inst.pk}",))
            cur.execute(f"DROP TABLE IF EXISTS fts_{inst.pk}")
        self._bump_version(inst.pk)
        self.keywords.drop(inst.pk)
        with self._vlock:
            self._tables.pop(inst.pk, None)
            self._pending.pop(inst.pk, None)
            if self.data_dir is not None:
                shutil.rmtree(self._vector_dir(inst.pk), ignore_errors=True)

    def stats(self, inst: InstanceRecord) -> dict[str, Any]:
        """Return item counts per status, chunk count and payload size."""
        counts = dict(
            self._query(
                "SELECT status, COUNT(*) FROM items WHERE inst_pk = ? GROUP BY status", (inst.pk,)
            )
        )
        n_chunks, payload = self._query(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(text)), 0) FROM chunks WHERE inst_pk = ?",
            (inst.pk,),
        )[0]
        last = self._query("SELECT MAX(modified_at) FROM items WHERE inst_pk = ?", (inst.pk,))[0][0]
        n_items = int(self._query("SELECT COUNT(*) FROM items WHERE inst_pk = ?", (inst.pk,))[0][0])
        return {
            "counts": counts,
            "chunks": int(n_chunks),
            "payload_bytes": int(payload),
            "items": n_items,
            "last_activity": last,
        }

    # -- items ------------------------------------------------------------------------------

    @staticmethod
    def item_id_for(inst: InstanceRecord, key: str) -> str:
        """Return the stable id of the item with this key (upload is an upsert by key)."""
        return str(uuid.uuid5(_ITEM_NS, f"{inst.namespace}/{inst.id}/{key}"))

    def write_item(
        self,
        inst: InstanceRecord,
        *,
        key: str,
        data: bytes,
        metadata: dict[str, Any],
        timestamp_ms: int | None,
        source_id: str | None,
        chunks: Sequence[NewChunk],
        embeddings: np.ndarray | None,
        error: str | None = None,
    ) -> dict[str, Any]:
        """Upsert one item with all its chunks in a single transaction.

        With ``error`` set the item is stored with status ``error`` and no chunks: an item is
        either fully indexed or not indexed at all.
        """
        item_id = self.item_id_for(inst, key)
        checksum = hashlib.sha256(data).hexdigest()
        ts = now_iso()
        status = "error" if error else "completed"
        if error is None and embeddings is not None and len(chunks) != len(embeddings):
            raise ValueError("one embedding per chunk is required")
        # the columns from status to chunks_count, shared by the update and the insert
        fields = (
            status,
            error,
            checksum,
            len(data),
            dumps_strict(metadata),
            timestamp_ms,
            source_id,
            0 if error else len(chunks),
        )
        with self._writing(inst.pk):
            with self.transaction() as cur:
                change = self._next_gen(cur, inst.pk)
                cur.execute("SELECT pk FROM items WHERE inst_pk = ? AND key = ?", (inst.pk, key))
                row = cur.fetchone()
                if row is not None:
                    item_pk = int(row[0])
                    self._delete_chunks(cur, inst.pk, item_pk, change)
                    cur.execute(
                        "UPDATE items SET status = ?, error = ?, checksum = ?, file_size = ?, "
                        "metadata = ?, timestamp_ms = ?, source_id = ?, chunks_count = ?, "
                        "modified_at = ?, data = ? WHERE pk = ?",
                        (*fields, ts, data, item_pk),
                    )
                else:
                    cur.execute(
                        "INSERT INTO items(inst_pk, id, key, status, error, checksum, "
                        "file_size, metadata, timestamp_ms, source_id, chunks_count, created_at, "
                        "modified_at, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (inst.pk, item_id, key, *fields, ts, ts, data),
                    )
                    item_pk = int(cur.lastrowid or 0)
                if error is None and embeddings is not None:
                    self._insert_chunks(cur, inst.pk, item_pk, item_id, chunks, embeddings, change)
                if error is None:
                    change.items.append((item_pk, key, timestamp_ms, metadata))
                else:
                    change.items.append((item_pk, None, None, None))
                cur.execute("SELECT " + ITEM_COLUMNS + " FROM items WHERE pk = ?", (item_pk,))
                out = item_row(cur.fetchone(), inst.namespace)
            self._after_write(inst.pk, change)
        return out

    def _insert_chunks(
        self,
        cur: sqlite3.Cursor,
        inst_pk: int,
        item_pk: int,
        item_id: str,
        chunks: Sequence[NewChunk],
        embeddings: np.ndarray,
        change: VectorChange | None = None,
    ) -> None:
        emb = np.ascontiguousarray(embeddings, dtype=np.float32)
        rows = [
            (inst_pk, item_pk, seq, f"{item_id}-{seq}", c.text, c.start, c.end, emb[seq].tobytes())
            for seq, c in enumerate(chunks)
        ]
        # chunk ids never come back after a delete: the vector tables append them in order
        cur.execute(
            "SELECT MAX(COALESCE((SELECT MAX(cid) FROM chunks), 0), "
            "COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'cid_hwm'), 0))"
        )
        first = int(cur.fetchone()[0]) + 1
        if rows:
            cur.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('cid_hwm', ?)",
                (str(first + len(rows) - 1),),
            )
        if change is not None and rows:
            change.add(
                np.arange(first, first + len(rows), dtype=np.int64),
                np.full(len(rows), item_pk, dtype=np.int64),
                emb[: len(rows)],
            )
        cur.executemany(
            "INSERT INTO chunks(cid, inst_pk, item_pk, seq, id, text, start_byte, end_byte, "
            "embedding) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(first + i, *r) for i, r in enumerate(rows)],
        )
        cur.executemany(
            f"INSERT INTO fts_{inst_pk}(rowid, text) VALUES (?, ?)",
            [(first + i, c.text) for i, c in enumerate(chunks)],
        )

    def _delete_chunks(
        self, cur: sqlite3.Cursor, inst_pk: int, item_pk: int, change: VectorChange | None = None
    ) -> None:
        if change is not None:
            cur.execute("SELECT cid FROM chunks WHERE item_pk = ?", (item_pk,))
            change.dead_cids.extend(int(r[0]) for r in cur.fetchall())
        cur.execute(
            f"DELETE FROM fts_{inst_pk} WHERE rowid IN (SELECT cid FROM chunks WHERE item_pk = ?)",
            (item_pk,),
        )
        cur.execute("DELETE FROM chunks WHERE item_pk = ?", (item_pk,))

    def bulk_insert(
        self,
        inst: InstanceRecord,
        docs: Iterable[
            tuple[str, bytes, dict[str, Any], int | None, Sequence[NewChunk], np.ndarray]
        ],
        *,
        source_id: str = "builtin",
    ) -> int:
        """Insert many new items (key, data, metadata, timestamp_ms, chunks, embeddings) at once.

        One transaction for the whole batch (the bulk route, ``aisearch-local ingest``,
        benchmarks). Existing keys are replaced. Returns the number of chunks written.
        """
        total = 0
        with self._writing(inst.pk):
            with self.transaction() as cur:
                change = self._next_gen(cur, inst.pk)
                for key, data, metadata, ts_ms, chunks, emb in docs:
                    item_id = self.item_id_for(inst, key)
                    cur.execute(
                        "SELECT pk, created_at FROM items WHERE inst_pk = ? AND key = ?",
                        (inst.pk, key),
                    )
                    row = cur.fetchone()
                    ts = now_iso()
                    created = ts
                    if row is not None:  # replaced: the item keeps its id and creation time
                        self._delete_chunks(cur, inst.pk, int(row[0]), change)
                        change.items.append((int(row[0]), None, None, None))
                        cur.execute("DELETE FROM items WHERE pk = ?", (int(row[0]),))
                        created = str(row[1])
                    cur.execute(
                        "INSERT INTO items(inst_pk, id, key, status, error, checksum, "
                        "file_size, metadata, timestamp_ms, source_id, chunks_count, created_at, "
                        "modified_at, data) "
                        "VALUES (?, ?, ?, 'completed', NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            inst.pk,
                            item_id,
                            key,
                            hashlib.sha256(data).hexdigest(),
                            len(data),
                            dumps_strict(metadata),
                            ts_ms,
                            source_id,
                            len(chunks),
                            created,
                            ts,
                            data,
                        ),
                    )
                    item_pk = int(cur.lastrowid or 0)
                    self._insert_chunks(cur, inst.pk, item_pk, item_id, chunks, emb, change)
                    change.items.append((item_pk, key, ts_ms, metadata))
                    total += len(chunks)
            self._after_write(inst.pk, change)
        return total

    def get_item(self, inst: InstanceRecord, item_id: str) -> dict[str, Any] | None:
        """Return an item by its id (exactly; a key is never taken for an id), or None."""
        rows = self._query(
            f"SELECT {ITEM_COLUMNS} FROM items WHERE inst_pk = ? AND id = ?", (inst.pk, item_id)
        )
        return item_row(rows[0], inst.namespace) if rows else None

    def get_item_by_key(self, inst: InstanceRecord, key: str) -> dict[str, Any] | None:
        """Return an item by key, or None."""
        rows = self._query(
            f"SELECT {ITEM_COLUMNS} FROM items WHERE inst_pk = ? AND key = ?", (inst.pk, key)
        )
        return item_row(rows[0], inst.namespace) if rows else None

    def item_data(self, item_pk: int) -> bytes | None:
        """Return the stored bytes of an item, or None."""
        rows = self._query("SELECT data FROM items WHERE pk = ?", (item_pk,))
        return bytes(rows[0][0]) if rows and rows[0][0] is not None else None

    def list_items(self, inst: InstanceRecord) -> list[dict[str, Any]]:
        """Return every item of an instance ordered by key."""
        rows = self._query(
            f"SELECT {ITEM_COLUMNS} FROM items WHERE inst_pk = ? ORDER BY key", (inst.pk,)
        )
        return [item_row(r, inst.namespace) for r in rows]

    def delete_item(self, inst: InstanceRecord, item_pk: int) -> None:
        """Delete an item and its chunks."""
        with self._writing(inst.pk):
            with self.transaction() as cur:
                change = self._next_gen(cur, inst.pk)
                self._delete_chunks(cur, inst.pk, item_pk, change)
                cur.execute("DELETE FROM items WHERE pk = ?", (item_pk,))
                change.items.append((item_pk, None, None, None))
            self._after_write(inst.pk, change)

    def item_chunks(
        self, inst: InstanceRecord, item_pk: int, limit: int, offset: int
    ) -> list[ChunkRow]:
        """Return an item's chunks in order."""
        rows = self._query(
            "SELECT cid, id, item_pk, seq, text, start_byte, end_byte FROM chunks "
            "WHERE item_pk = ? AND inst_pk = ? ORDER BY seq LIMIT ? OFFSET ?",
            (item_pk, inst.pk, limit, offset),
        )
        return [ChunkRow(*r) for r in rows]

    # -- search support ---------------------------------------------------------------------

    def indexing(self) -> int:
        """How many in-memory indexes are being built now (keyword indexes, column copies).

        Searches meanwhile are answered, by FTS5 and the full vector product: ``0`` is the
        steady state that benchmarks wait for after a start.
        """
        # not under the vector lock: a write applying its change or a table being loaded holds
        # it (30 s for a million chunks), and the health check reads this. ``list()`` of a
        # dict's values runs no Python code: no other thread changes the dict meanwhile
        tables = list(self._tables.values())
        return self.keywords.building() + sum(t.building for t in tables)

    def index(self, inst: InstanceRecord) -> InstanceIndex:
        """Return a snapshot of the instance's vector table, loading the table when needed.

        The table is current when it holds SQLite's generation, or when only this process's
        own writes are ahead of it (under way, or waiting for an earlier one: they will apply
        their changes); otherwise (first use, another process wrote: ``aisearch-local
        ingest``, another ``serve --workers`` worker) it is loaded from its file when that is
        current, else rebuilt from SQLite.
        """
        checked = self._sync_external()
        version = self._versions.get(inst.pk, 0) + self._external * 1_000_000
        info = self._checked_generation(inst.pk) if checked else self._generation(inst.pk)
        nonce, gen = info if info else ("", 0)
        with hold(self._vlock):  # held by a write applying its change (file appends)
            table = self._tables.get(inst.pk)
            pending = self._pending.get(inst.pk)
            current = (
                table is not None
                and table.nonce == nonce
                and own_ahead(table.gen, gen, self._own_gens(inst.pk), pending)
            )
            if not current or (pending and table is not None and table.gen + 1 in pending):
                refuse("the vector table is to be loaded or caught up")
            if not current:
                self._tables.pop(inst.pk, None)
                table = None
            table = self._catch_up(inst.pk, table)
            if table is None:  # deleted meanwhile: nothing to search
                empty = np.zeros(0, dtype=np.int64)
                return InstanceIndex(
                    version, np.zeros((0, inst.dim), dtype=np.float32), empty, empty
                )
            return table.snapshot(version)

    def item_attributes_table(self, inst: InstanceRecord, idx: InstanceIndex) -> ItemTable:
        """Return the columnar attributes of the instance's items (built on first use)."""
        table = idx.table
        if table is None:
            return self._read_item_table(inst.pk)
        with hold(table.lock):
            items = table.extra.get("items")
            if items is None:
                refuse("the item table is to be built")
                items = table.extra["items"] = self._read_item_table(inst.pk)
            return cast("ItemTable", items)

    def _read_item_table(self, inst_pk: int) -> ItemTable:
        rows = self._query(
            "SELECT pk, key, metadata, timestamp_ms FROM items "
            "WHERE inst_pk = ? AND status = 'completed'",
            (inst_pk,),
        )
        items = ItemTable()  # built outside the store lock
        for pk, key, metadata, ts_ms in rows:
            items.set(int(pk), item_attributes(key, ts_ms, metadata_dict(metadata)))
        return items

    def items_by_pk(self, pks: Iterable[int]) -> dict[int, dict[str, Any]]:
        """Return ``{"key", "timestamp", "metadata", "attrs"}`` of some items by primary key."""
        wanted = sorted(set(pks))
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        rows = self._query(
            f"SELECT pk, key, metadata, timestamp_ms FROM items WHERE pk IN ({marks})", wanted
        )
        out: dict[int, dict[str, Any]] = {}
        for pk, key, metadata, ts_ms in rows:
            meta = metadata_dict(metadata)
            out[int(pk)] = {
                "key": key,
                "timestamp": ts_ms,
                "metadata": meta,
                "attrs": item_attributes(key, ts_ms, meta),
            }
        return out

    def uses_fts5(self, inst: InstanceRecord) -> bool:
        """Whether FTS5 answers the instance's keyword searches (trigram, or the engine)."""
        return self.keywords.engine == "fts5" or self._tokenizer(inst.config) == "trigram"

    def keyword_hits(
        self, inst: InstanceRecord, terms: Sequence[str], mode: str, limit: int, rows: int = 0
    ) -> list[tuple[int, float]]:
        """Return ``(cid, bm25)`` best first for quoted ``terms`` joined by ``mode``.

        tantivy answers ``porter`` instances with engine ``tantivy``, and with ``auto`` those
        whose ``rows`` (live chunks) reach its threshold, once their index is built; FTS5
        answers the others (:meth:`keyword`).
        """
        if not self.uses_fts5(inst) and self.keywords.wants(inst.pk, rows):
            hits = self.keywords.search(
                inst.pk, self._generation(inst.pk), terms, mode, limit, rows
            )
            if hits is not None:
                return hits
        return self.keyword(inst, fts_expression(terms, mode), limit)

    def keyword_source(
        self, inst_pk: int
    ) -> tuple[tuple[str, int] | None, int, Iterator[tuple[int, str]]] | None:
        """Read an instance's chunks for its keyword index; None when the instance is gone.

        Returns its generation, chunk count and ``(cid, text)`` rows, read in one transaction
        (on a connection of its own, closed once the rows are read).
        """
        sql = "SELECT cid, text FROM chunks WHERE inst_pk = ? ORDER BY cid"
        if self.path is None:
            with self._lock:
                if not self._query("SELECT 1 FROM instances WHERE pk = ?", (inst_pk,)):
                    return None
                info = self._generation(inst_pk)
                docs = [(int(c), str(t)) for c, t in self._conn.execute(sql, (inst_pk,))]
            return info, len(docs), iter(docs)
        conn = self._connect()
        try:
            conn.execute("PRAGMA query_only=ON")
            conn.execute("BEGIN")
            if not conn.execute("SELECT 1 FROM instances WHERE pk = ?", (inst_pk,)).fetchall():
                conn.close()
                return None
            meta = conn.execute(
                "SELECT value FROM meta WHERE key = ?", (f"vectors:{inst_pk}",)
            ).fetchall()
            n = int(
                conn.execute(
                    "SELECT COUNT(*) FROM chunks WHERE inst_pk = ?", (inst_pk,)
                ).fetchone()[0]
            )
        except BaseException:
            conn.close()
            raise

        def rows() -> Iterator[tuple[int, str]]:
            try:
                cur = conn.execute(sql, (inst_pk,))
                while batch := cur.fetchmany(4096):
                    yield from batch
            finally:
                conn.close()

        return (vectors.parse_generation(meta[0][0]) if meta else None), n, rows()

    def chunk_texts(self, inst_pk: int, cids: Sequence[int]) -> list[tuple[int, str]]:
        """Return ``(cid, text)`` of the chunks among ``cids`` that SQLite still has."""
        if not cids:
            return []
        wanted = set(cids)
        rows = self._query(
            "SELECT cid, text FROM chunks WHERE inst_pk = ? AND cid BETWEEN ? AND ?",
            (inst_pk, min(wanted), max(wanted)),
        )
        return [(int(c), str(t)) for c, t in rows if int(c) in wanted]

    def keyword(self, inst: InstanceRecord, match: str, limit: int) -> list[tuple[int, float]]:
        """Run an FTS5 MATCH; return ``(cid, bm25)`` best first, bm25 positive (higher=better)."""
        rows = self._query(
            f"SELECT rowid, rank FROM fts_{inst.pk} WHERE fts_{inst.pk} MATCH ? "
            "ORDER BY rank LIMIT ?",
            (match, limit),
        )
        return [(int(cid), -float(rank)) for cid, rank in rows]

    def chunks_by_cid(self, cids: Sequence[int]) -> dict[int, ChunkRow]:
        """Return chunk rows by primary key."""
        if not cids:
            return {}
        marks = ",".join("?" * len(cids))
        rows = self._query(
            "SELECT cid, id, item_pk, seq, text, start_byte, end_byte FROM chunks "
            f"WHERE cid IN ({marks})",
            list(cids),
        )
        return {int(r[0]): ChunkRow(*r) for r in rows}

    def result_rows(
        self, cids: Sequence[int]
    ) -> tuple[dict[int, ChunkRow], dict[int, dict[str, Any]]]:
        """Return the chunk rows of ``cids`` and their items, in one query.

        The items are ``{"key", "timestamp", "metadata"}`` by primary key (one dict per item,
        shared by its chunks). A chunk deleted, or whose item was deleted, is absent.
        """
        if not cids:
            return {}, {}
        marks = ",".join("?" * len(cids))
        rows = self._query(
            "SELECT c.cid, c.id, c.item_pk, c.seq, c.text, c.start_byte, c.end_byte, "
            "i.key, i.metadata, i.timestamp_ms FROM chunks AS c JOIN items AS i "
            f"ON i.pk = c.item_pk WHERE c.cid IN ({marks})",
            list(cids),
        )
        chunks: dict[int, ChunkRow] = {}
        items: dict[int, dict[str, Any]] = {}
        for cid, chunk_id, item_pk, seq, text, start, end, key, metadata, ts_ms in rows:
            chunks[int(cid)] = ChunkRow(cid, chunk_id, item_pk, seq, text, start, end)
            if item_pk not in items:
                meta = metadata_dict(metadata)
                items[int(item_pk)] = {"key": key, "timestamp": ts_ms, "metadata": meta}
        return chunks, items

    def neighbours(self, item_pk: int, lo: int, hi: int) -> list[ChunkRow]:
        """Return an item's chunks with ``lo <= seq <= hi`` in order."""
        rows = self._query(
            "SELECT cid, id, item_pk, seq, text, start_byte, end_byte FROM chunks "
            "WHERE item_pk = ? AND seq BETWEEN ? AND ? ORDER BY seq",
            (item_pk, lo, hi),
        )
        return [ChunkRow(*r) for r in rows]

    # -- jobs -------------------------------------------------------------------------------

    def create_job(self, inst: InstanceRecord, description: str | None) -> dict[str, Any]:
        """Create a running job row and return it."""
        job_id = uuid.uuid4().hex
        ts = now_iso()
        with self.transaction() as cur:
            cur.execute(
                "INSERT INTO jobs(inst_pk, id, source, description, started_at, last_seen_at) "
                "VALUES (?, ?, 'user', ?, ?, ?)",
                (inst.pk, job_id, description, ts, ts),
            )
        job = self.get_job(inst, job_id)
        assert job is not None
        return job

    def finish_job(
        self, inst: InstanceRecord, job_id: str, end_reason: str, log: list[dict[str, Any]]
    ) -> None:
        """Mark a job as ended with a reason and its log lines."""
        ts = now_iso()
        with self.transaction() as cur:
            cur.execute(
                "UPDATE jobs SET ended_at = ?, last_seen_at = ?, end_reason = ?, log = ? "
                "WHERE inst_pk = ? AND id = ?",
                (ts, ts, end_reason, dumps_strict(log), inst.pk, job_id),
            )

    def get_job(self, inst: InstanceRecord, job_id: str) -> dict[str, Any] | None:
        """Return a job, or None."""
        rows = self._query(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE inst_pk = ? AND id = ?", (inst.pk, job_id)
        )
        return job_row(rows[0]) if rows else None

    def list_jobs(self, inst: InstanceRecord) -> list[dict[str, Any]]:
        """Return an instance's jobs, newest first."""
        rows = self._query(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE inst_pk = ? ORDER BY pk DESC", (inst.pk,)
        )
        return [job_row(r) for r in rows]

    # -- snapshots (aisearch_local/snapshot.py) ---------------------------------------------

    def export_items(
        self, inst: InstanceRecord
    ) -> Iterator[tuple[dict[str, Any], bytes, list[NewChunk], np.ndarray]]:
        """Yield an instance's items as stored, with their chunks and embeddings, by key.

        Each item is ``(row, data, chunks, embeddings)``: ``row`` holds the item columns
        (``key, status, error, checksum, metadata`` as text, ``timestamp_ms, source_id,
        created_at, modified_at``), ``embeddings`` one float32 row per chunk, in ``seq`` order.
        One transaction: the items are those of one moment, even if a server writes meanwhile.
        """
        columns = (
            "key, status, error, checksum, metadata, timestamp_ms, source_id, created_at, "
            "modified_at"
        )
        with self.transaction() as cur:
            items = cur.connection.cursor()
            items.execute(
                f"SELECT pk, {columns}, data FROM items WHERE inst_pk = ? ORDER BY key",
                (inst.pk,),
            )
            chunks = cur.connection.cursor()
            for pk, *values, data in items:
                chunks.execute(
                    "SELECT text, start_byte, end_byte, embedding FROM chunks "
                    "WHERE item_pk = ? AND inst_pk = ? ORDER BY seq",
                    (pk, inst.pk),
                )
                rows = chunks.fetchall()
                matrix = np.frombuffer(b"".join(r[3] for r in rows), dtype=np.float32)
                yield (
                    dict(zip(columns.split(", "), values, strict=True)),
                    bytes(data or b""),
                    [NewChunk(text=r[0], start=r[1], end=r[2]) for r in rows],
                    matrix.reshape(len(rows), inst.dim),
                )

    def import_instances(
        self, instances: Sequence[ImportedInstance], *, replace: bool
    ) -> list[InstanceRecord]:
        """Write whole instances (a snapshot's) in ONE transaction: all of them, or nothing.

        A missing namespace is created. An existing instance is deleted first with ``replace``,
        else refused. Chunks go through the same insert as every other write (FTS included).

        Raises:
            FileExistsError: An instance exists and ``replace`` is false (nothing is written).
        """
        ts = now_iso()
        touched: list[int] = []
        with self.transaction() as cur:
            for imp in instances:
                cur.execute(
                    "INSERT OR IGNORE INTO namespaces(name, description, created_at, "
                    "modified_at) VALUES (?, ?, ?, ?)",
                    (imp.namespace, imp.namespace_description, ts, ts),
                )
                cur.execute(
                    "SELECT pk FROM instances WHERE namespace = ? AND id = ?",
                    (imp.namespace, imp.id),
                )
                old = cur.fetchone()
                if old is not None:
                    if not replace:
                        raise FileExistsError(f"{imp.namespace}/{imp.id}")
                    old_pk = int(old[0])
                    for table in ("chunks", "items", "jobs"):
                        cur.execute(f"DELETE FROM {table} WHERE inst_pk = ?", (old_pk,))
                    cur.execute("DELETE FROM instances WHERE pk = ?", (old_pk,))
                    cur.execute(f"DROP TABLE IF EXISTS fts_{old_pk}")
                    # its generation goes too: a new instance may get the same pk
                    cur.execute("DELETE FROM meta WHERE key = ?", (f"vectors:{old_pk}",))
                    touched.append(old_pk)
                cur.execute(
                    "INSERT INTO instances(namespace, id, config, embedder, dim, source_dir, "
                    "created_at, modified_at) VALUES (?, ?, ?, ?, ?, NULL, ?, ?)",
                    (
                        imp.namespace,
                        imp.id,
                        dumps_strict(imp.config),
                        imp.embedder,
                        imp.dim,
                        imp.created_at,
                        imp.modified_at,
                    ),
                )
                pk = int(cur.lastrowid or 0)
                touched.append(pk)
                tok = self._tokenizer(imp.config)
                cur.execute(f"CREATE VIRTUAL TABLE fts_{pk} USING fts5(text, tokenize='{tok}')")
                cur.execute(  # a generation of its own, as create_instance gives
                    "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                    (f"vectors:{pk}", f"{vectors.new_nonce()}:0"),
                )
                inst_key = InstanceRecord(pk, imp.namespace, imp.id, {}, "", 0, None, ts, ts)
                for it in imp.items:
                    item_id = self.item_id_for(inst_key, it.key)
                    cur.execute(
                        "INSERT INTO items(inst_pk, id, key, status, error, checksum, "
                        "file_size, metadata, timestamp_ms, source_id, chunks_count, "
                        "created_at, modified_at, data) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            pk,
                            item_id,
                            it.key,
                            it.status,
                            it.error,
                            it.checksum,
                            len(it.data),
                            dumps_strict(it.metadata),
                            it.timestamp_ms,
                            it.source_id,
                            len(it.chunks),
                            it.created_at,
                            it.modified_at,
                            it.data,
                        ),
                    )
                    item_pk = int(cur.lastrowid or 0)
                    self._insert_chunks(cur, pk, item_pk, item_id, it.chunks, it.embeddings)
        for pk in touched:
            self._bump(pk)
        out = [self.get_instance(imp.namespace, imp.id) for imp in instances]
        return [inst for inst in out if inst is not None]
