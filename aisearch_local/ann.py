"""Approximate nearest neighbours (HNSW, on usearch) for dense embedders.

The exact vector search (:func:`aisearch_local.search.vector_candidates`) reads the whole
matrix: about 200 ms a query at a million 256-dimension rows. Above a size threshold, a dense
embedder's instance is searched in an HNSW graph instead (usearch; the choice and the figures
are in docs/DEPS-ann.md). The graph only proposes candidates: their similarities are computed
exactly from the instance's matrix, so every score is the exact one.

One :class:`AnnIndex` per instance, keyed by chunk id (cid). :class:`AnnManager` keeps it in
step with the store's :class:`~aisearch_local.vectors.VectorTable` through the table's listener
API: a :class:`_Follower` hears every write (the chunk ids it appended and tombstoned) and
queues them; a background thread adds and removes those rows in small batches, and until it
has, a search scores the queued new rows exactly and drops every row its snapshot holds dead.
A write costs the graph its own rows, and is reflected in the very next search.

The graph is compared with a whole ``InstanceIndex`` only when it cannot follow a table: at
first (a build, or a graph loaded from disk), when the store hands over a new table (a reload,
another process's write), after a compaction (``on_reset``), after an overflow of the queues
(no search for :data:`_QUEUE_MAX` changes), and for a snapshot without a table. The comparison:

* the cids, in one sorted pass: a cid the graph lacks is *missing*, a key the instance lacks
  is *gone*;
* a fingerprint of every row (its projection on a fixed random direction), stored with each
  key: a cid that the store re-used for new content is *changed*.

A background thread makes that comparison (one pass over the matrix; searches are exact
meanwhile), then applies it in small batches; until it is done, a search asks the graph, drops
the gone and changed keys from its answer and scores the missing and changed rows exactly. When
more than a fifth of the rows are missing (the first build), the search is exact.

The graph is saved next to the database (``ann/<instance pk>.usearch``, ``.keys.npz`` and
``.json``, the last written last) after a build and when the server closes, then loaded at
restart. A file is never trusted: its SHA-256, the instance, embedder, dimension and keys are
checked against the ``.json`` and the database before use, and anything wrong (a missing,
truncated, stale, foreign or corrupt file) means a rebuild, never a crash. In-memory servers
keep the graph in memory.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aisearch_local.records import InstanceIndex, InstanceRecord
from aisearch_local.vectors import top_k

if TYPE_CHECKING:
    from usearch.index import Index

    from aisearch_local.vectors import VectorTable

__all__ = [
    "ANN_MIN_ROWS",
    "EXPANSION_SEARCH",
    "MODES",
    "MODE_ENV",
    "AnnIndex",
    "AnnManager",
    "fingerprints",
    "signing_key",
]

logger = logging.getLogger(__name__)

MODES = ("auto", "exact", "ann")
"""``--vector-search``: ``auto`` (the graph for a dense embedder at ``ANN_MIN_ROWS`` rows or
more), ``exact`` (never) or ``ann`` (for every instance and size, the hashing embedder's too)."""
MODE_ENV = "AISEARCH_LOCAL_VECTOR_SEARCH"
ANN_MIN_ROWS = 20_000
"""Rows from which ``auto`` uses the graph (docs/DEPS-ann.md: where it starts to pay)."""
EXPANSION_SEARCH = 256
"""HNSW ``ef`` at search time (at least twice the candidates asked for): recall@10 0.97 at 1M
rows in about 1 ms (128 gave 0.92; docs/DEPS-ann.md)."""
CONNECTIVITY = 16
EXPANSION_ADD = 128
FORMAT = 1
_BATCH = 128  # rows added or removed per lock hold when catching up (a search waits that long)
_STEP = 4  # queued rows added per lock hold while searches come (what a search may wait for)
_SAVE_POLL_S = 0.002  # how often a search waiting for the graph checks whether it is saved
_BUSY = 0.1  # seconds after a search during which the background thread adds _STEP rows a hold
_BUILD_BATCH = 10_000  # rows added at a time to a graph built apart (close() stops between)
_FP_TOLERANCE = 1e-4  # float32 BLAS differences are ~1e-7; a changed vector moves far more
_FILTER_EXACT_FACTOR = 40
_NO_ID = 1 << 62  # above every chunk id
_QUEUE_MAX = 100_000  # queued changes (or a fifth of the rows) past which a comparison is due
_MAX_ASK = 4096  # most candidates asked of the graph before falling back to the exact search


def _direction(dim: int) -> np.ndarray:
    rng = np.random.default_rng(20261205)
    out: np.ndarray = rng.standard_normal(dim).astype(np.float32)
    return out


def fingerprints(matrix: np.ndarray) -> np.ndarray:
    """Return each row's projection on a fixed random direction (``(n,)`` float32).

    One matrix-vector product (about 100 ms at 1M x 256; a second direction made it a GEMM
    and cost 230 ms). A vector changed so little that its projection moves by less than
    1e-4 keeps its old place in the graph, where it is nearly as well found.
    """
    with np.errstate(invalid="ignore", over="ignore"):  # a NaN row must not churn
        out = np.asarray(matrix @ _direction(matrix.shape[1]), dtype=np.float32)
    clean: np.ndarray = np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)
    return clean


ONE_THREAD_ROWS = 50_000
"""Graphs below this many rows are built on one thread (see :meth:`AnnIndex.add`)."""


class AnnIndex:
    """An HNSW graph of unit vectors (inner product) keyed by chunk id.

    Args:
        dim: The vector dimension.
    """

    def __init__(self, dim: int, *, _index: Index | None = None) -> None:
        from usearch.index import Index  # imported when a graph is first needed (~0.3 s)

        self.dim = dim
        self._index = _index or Index(
            ndim=dim,
            metric="ip",
            dtype="f16",
            connectivity=CONNECTIVITY,
            expansion_add=EXPANSION_ADD,
            expansion_search=EXPANSION_SEARCH,
        )
        self.keys = np.zeros(0, dtype=np.int64)  # sorted, unique
        self.fps = np.zeros(0, dtype=np.float32)  # aligned with keys

    def __len__(self) -> int:
        return len(self.keys)

    def __repr__(self) -> str:
        return f"AnnIndex(dim={self.dim}, size={len(self)})"

    def _present(self, cids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos = np.searchsorted(self.keys, cids)
        found = pos < len(self.keys)
        found[found] = self.keys[pos[found]] == cids[found]
        return pos, found

    def contains(self, cids: np.ndarray) -> np.ndarray:
        """Whether each chunk id is in the graph (a boolean array)."""
        return self._present(np.asarray(cids, dtype=np.int64))[1]

    def add(
        self,
        cids: np.ndarray,
        vectors: np.ndarray,
        fps: np.ndarray | None = None,
        *,
        threads: int = 0,
    ) -> None:
        """Add (or replace) rows: ``cids`` unique positive ints, ``vectors`` ``(n, dim)``.

        ``threads``: usearch's (0: every core; 1 for a few rows, which it adds faster alone).
        A graph of fewer than :data:`ONE_THREAD_ROWS` rows is always built on one thread: a
        build on every core can leave rows that no search reaches (11 of 20,000 measured, none
        on one thread in about the same time).
        """
        cids = np.asarray(cids, dtype=np.int64)
        if not len(cids):
            return
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape != (len(cids), self.dim):
            raise ValueError(f"vectors must have shape ({len(cids)}, {self.dim})")
        fps = fingerprints(vectors) if fps is None else np.asarray(fps, dtype=np.float32)
        order = np.argsort(cids, kind="stable")
        cids, vectors, fps = cids[order], vectors[order], fps[order]
        if cids[0] <= 0 or np.any(cids[1:] == cids[:-1]):
            raise ValueError("chunk ids must be unique positive integers")
        self.remove(cids)
        clean = np.nan_to_num(vectors, nan=0.0, posinf=0.0, neginf=0.0)  # a tampered database
        if len(self.keys) + len(cids) < ONE_THREAD_ROWS:
            threads = 1
        self._index.add(cids.astype(np.uint64), np.ascontiguousarray(clean), threads=threads)
        if not len(self.keys) or cids[0] > self.keys[-1]:  # new chunks: the usual case
            self.keys = np.concatenate([self.keys, cids])
            self.fps = np.concatenate([self.fps, fps])
        else:
            pos = np.searchsorted(self.keys, cids)
            self.keys = np.insert(self.keys, pos, cids)
            self.fps = np.insert(self.fps, pos, fps)

    def remove(self, cids: np.ndarray) -> None:
        """Remove the rows of these chunk ids (unknown ids are ignored)."""
        cids = np.asarray(cids, dtype=np.int64)
        pos, found = self._present(cids)
        if not found.any():
            return
        self._index.remove(cids[found].astype(np.uint64))
        keep = np.ones(len(self.keys), dtype=bool)
        keep[pos[found]] = False
        self.keys = self.keys[keep]
        self.fps = self.fps[keep]

    def search(
        self, qvec: np.ndarray, k: int, expansion: int = EXPANSION_SEARCH
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return up to ``k`` (chunk ids, approximate inner products), best first."""
        if not len(self) or k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        # usearch declares this setter apart from its getter, which mypy reads as read-only
        self._index.expansion_search = max(expansion, 2 * k)  # type: ignore[misc]
        found = self._index.search(np.asarray(qvec, dtype=np.float32), k, threads=1)
        keys = np.asarray(found.keys, dtype=np.int64)
        return keys, (1.0 - np.asarray(found.distances, dtype=np.float32))

    # -- files -------------------------------------------------------------------------------

    def save(self, base: Path, identity: dict[str, Any], key: bytes) -> None:
        """Write ``base``.usearch, .keys.npz and .json (last, as the commit), atomically each.

        The ``.json`` holds the files' SHA-256 and is signed (HMAC-SHA256) with ``key``. The
        whole save holds an exclusive lock on ``base``.lock: two processes saving the same
        graph (``serve --workers`` workers stopping together) never interleave their files, so
        the ``.json`` never vouches for one's graph with the other's keys.
        """
        base.parent.mkdir(parents=True, exist_ok=True)
        with _save_lock(base):
            self._save_files(base, identity, key)

    def _save_files(self, base: Path, identity: dict[str, Any], key: bytes) -> None:
        graph, keys, meta = _paths(base)
        tmp_graph = graph.with_name(graph.name + ".tmp")
        self._index.save(str(tmp_graph))
        tmp_keys = keys.with_name(keys.name + ".tmp")
        with tmp_keys.open("wb") as fh:
            np.savez(fh, keys=self.keys, fps=self.fps)
        for tmp in (tmp_graph, tmp_keys):
            _fsync(tmp)
        with contextlib.suppress(FileNotFoundError):
            meta.unlink()  # the old .json must never vouch for the new files
        os.replace(tmp_graph, graph)
        os.replace(tmp_keys, keys)
        record = {
            **identity,
            "format": FORMAT,
            "dim": self.dim,
            "count": len(self),
            "graph_sha256": _sha256(graph),
            "keys_sha256": _sha256(keys),
        }
        record["hmac"] = _sign(key, record)
        tmp_meta = meta.with_name(meta.name + ".tmp")
        tmp_meta.write_text(json.dumps(record), encoding="utf-8")
        _fsync(tmp_meta)
        os.replace(tmp_meta, meta)

    @classmethod
    def load(cls, base: Path, identity: dict[str, Any], dim: int, key: bytes) -> AnnIndex | None:
        """Load a saved graph, or None (and a log line) when anything does not check out.

        usearch does not validate a graph file (a corrupt one can crash the process), so
        nothing reaches it unless the ``.json`` carries this server's signature (``key``)
        and the files match the SHA-256 it lists.
        """
        graph, keys_path, meta_path = _paths(base)
        if not meta_path.exists():
            return None
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if not isinstance(meta, dict):
                raise ValueError("the .json is not an object")
            signature = meta.pop("hmac", None)
            if not isinstance(signature, str) or not hmac.compare_digest(
                signature, _sign(key, meta)
            ):
                raise ValueError("not signed by this server's key")
            for name, want in {**identity, "format": FORMAT, "dim": dim}.items():
                if meta.get(name) != want:
                    raise ValueError(f"{name} is {meta.get(name)!r}, not {want!r}")
            if _sha256(keys_path) != meta.get("keys_sha256"):
                raise ValueError("the keys file does not match its SHA-256")
            if _sha256(graph) != meta.get("graph_sha256"):
                raise ValueError("the graph file does not match its SHA-256")
            with np.load(keys_path, allow_pickle=False) as npz:
                keys = np.asarray(npz["keys"])
                fps = np.asarray(npz["fps"])
            count = meta.get("count")
            if (
                keys.dtype != np.int64
                or fps.dtype != np.float32
                or keys.shape != (count,)
                or fps.shape != (count,)
                or (len(keys) and (keys[0] <= 0 or np.any(np.diff(keys) <= 0)))
                or not np.isfinite(fps).all()
            ):
                raise ValueError("the keys file has the wrong shape or content")
            from usearch.index import Index

            header = Index.metadata(str(graph))
            if not isinstance(header, dict) or header.get("dimensions") != dim:
                raise ValueError(f"the graph header is not a {dim}-dimension usearch index")
            index = Index.restore(str(graph))
            if index is None or index.ndim != dim or len(index) != count:
                raise ValueError("the graph does not hold the rows its keys file lists")
        except Exception as exc:  # a hostile or corrupt file is rebuilt, never trusted
            logger.warning("ignoring the ANN index %s (%s): rebuilding it", graph.name, exc)
            return None
        out = cls(dim, _index=index)
        out.keys, out.fps = keys, fps
        return out


@contextlib.contextmanager
def _save_lock(base: Path) -> Iterator[None]:
    """An exclusive lock on ``base``.lock for a save (across processes; none without fcntl)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: one process per data folder there
        yield
        return
    with base.with_name(base.name + ".lock").open("a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _paths(base: Path) -> tuple[Path, Path, Path]:
    return (
        base.with_name(base.name + ".usearch"),
        base.with_name(base.name + ".keys.npz"),
        base.with_name(base.name + ".json"),
    )


def _all_paths(base: Path) -> tuple[Path, ...]:
    """The graph's files and its save lock."""
    return (*_paths(base), base.with_name(base.name + ".lock"))


def _sign(key: bytes, record: dict[str, Any]) -> str:
    text = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def signing_key() -> bytes | None:
    """Return this user's key for signing graph files, created on first use; None if unusable.

    It lives outside every data folder (``$XDG_STATE_HOME/aisearch-local/ann.key``, by default
    ``~/.local/state/...``, mode 0600): a graph file copied from elsewhere, or written by
    anyone without this key, is rebuilt rather than handed to usearch.
    """
    try:
        state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    except RuntimeError:  # no home directory
        logger.warning("no home directory for the ANN signing key: ANN graphs are not saved")
        return None
    path = Path(state) / "aisearch-local" / "ann.key"
    for _ in range(2):
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            pass
        except OSError as exc:
            logger.warning("cannot read %s (%s): ANN graphs are not saved", path, exc)
            return None
        else:
            if len(data) == 32:
                return data
            logger.warning("%s is not a 32-byte key: ANN graphs are not saved", path)
            return None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue  # another server created it meanwhile: read it
        except OSError as exc:
            logger.warning("cannot create %s (%s): ANN graphs are not saved", path, exc)
            return None
        with os.fdopen(fd, "wb") as fh:
            key = secrets.token_bytes(32)
            fh.write(key)
            fh.flush()
            os.fsync(fh.fileno())
        return key
    return None  # pragma: no cover - created and deleted between two reads


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    with path.open("rb") as fh:
        os.fsync(fh.fileno())


# -- keeping a graph in step with an instance ---------------------------------------------------


@dataclass
class _Delta:
    """How an ``InstanceIndex`` differs from the graph (when the delta was computed)."""

    excluded: np.ndarray  # sorted graph keys to drop from answers (gone or changed)
    missing: np.ndarray  # rows of the InstanceIndex the graph lacks or holds changed


class _Queue:
    """Chunk ids in arrival order: pushed in blocks, taken from the front."""

    def __init__(self) -> None:
        self._blocks: collections.deque[np.ndarray] = collections.deque()
        self._head = 0  # ids of the first block already taken
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def push(self, cids: np.ndarray) -> None:
        if len(cids):
            self._blocks.append(cids)
            self._len += len(cids)
            if len(self._blocks) > 64:  # many small writes: one block (bounded by _QUEUE_MAX)
                every = self.all()
                self._blocks.clear()
                self._blocks.append(every)
                self._head = 0

    def clear(self) -> None:
        self._blocks.clear()
        self._head, self._len = 0, 0

    def peek(self, k: int) -> np.ndarray:
        """The first ``k`` ids (fewer when fewer are queued)."""
        out, need, head = [], k, self._head
        for block in self._blocks:
            part = block[head : head + need]
            out.append(part)
            need, head = need - len(part), 0
            if not need:
                break
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    def drop(self, k: int) -> None:
        """Take the first ``k`` ids off the queue."""
        self._len -= k
        while k and self._blocks:
            left = len(self._blocks[0]) - self._head
            if k < left:
                self._head += k
                return
            self._blocks.popleft()
            self._head, k = 0, k - left

    def all(self) -> np.ndarray:
        return self.peek(self._len)

    def take_below(self, bound: int, limit: int) -> np.ndarray:
        """Take up to ``limit`` ids below ``bound`` off the queue (the others keep their order)."""
        every = self.all()
        below = np.flatnonzero(every < bound)[:limit]
        if not len(below):
            return every[:0]
        keep = np.ones(len(every), dtype=bool)
        keep[below] = False
        self.clear()
        self.push(every[keep])
        return every[below]


class _Follower:
    """Hears one vector table's changes for one graph (a ``vectors.TableListener``).

    It queues the chunk ids (rows are renumbered by a compaction; ids are not) appended and
    tombstoned since the graph took them. The writer calls it under the table's lock: it only
    copies the ids, under its own lock, under which nothing else is ever taken. ``mark`` is the
    table's (epoch, rows, tombstones) when it started listening (or re-listening after a reset):
    a snapshot at or after it, plus the queued changes, is the table now.
    """

    def __init__(self, table: VectorTable) -> None:
        self.table = weakref.ref(table)
        self.lock = threading.Lock()
        self.added = _Queue()  # ascending: chunk ids only grow
        self.dead = _Queue()
        self.stale = False  # a reset: the graph must be compared with the table again
        self.cleared = 0  # how many times the queues were emptied (an overflow)
        self.active = True
        self.mark = (table.epoch, table.n, table.dead)

    def on_append(self, rows: np.ndarray) -> None:
        """Queue the appended rows' chunk ids."""
        self._hear(rows, dead=False)

    def on_tombstone(self, rows: np.ndarray) -> None:
        """Queue the tombstoned rows' chunk ids."""
        self._hear(rows, dead=True)

    def _hear(self, rows: np.ndarray, *, dead: bool) -> None:
        table = self.table()
        if table is None or not self.active:
            return
        cids = table.chunk_ids(rows)
        with self.lock:
            if self.stale:  # the comparison to come covers it
                return
            (self.dead if dead else self.added).push(cids)
            if len(self.added) + len(self.dead) > max(_QUEUE_MAX, table.n // 5):
                # nobody took them (no search since): one comparison will be cheaper
                self.restart()

    def on_reset(self) -> None:
        """The rows were renumbered: the graph is compared with the table again."""
        with self.lock:
            self.restart()

    def restart(self) -> None:
        """Drop the queues: a comparison with a snapshot after the next :attr:`mark` follows."""
        self.added.clear()
        self.dead.clear()
        self.stale, self.cleared = True, self.cleared + 1

    def covers(self, idx: InstanceIndex) -> bool:
        """Whether ``idx`` was taken at or after :attr:`mark` (rows and tombstones only grow)."""
        epoch, rows, dead = self.mark
        n = len(idx.cids)
        return idx.epoch == epoch and n >= rows and n - idx.live_count >= dead

    def pending(self) -> bool:
        with self.lock:
            return bool(len(self.added) or len(self.dead))


@dataclass
class _Entry:
    identity: dict[str, Any]
    dim: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    ann: AnnIndex | None = None
    synced: Any = None  # weakref to the InstanceIndex the graph equals (without a table)
    target: Any = None  # weakref to the newest InstanceIndex seen
    worker: threading.Thread | None = None  # set and cleared under the lock
    unsaved: int = 0
    loaded: bool = False
    follower: _Follower | None = None  # listening to the newest table seen
    in_step: bool = False  # the graph plus the follower's queues equal its table
    searches: int = 0  # searches waiting for the lock: the background thread lets them in first
    last_search: float = 0.0  # time.monotonic() of the last search through the graph
    count_lock: threading.Lock = field(default_factory=threading.Lock)
    saving: bool = False  # the graph is being written to its files (under the lock)
    dropped: bool = False  # the instance was deleted: nothing is saved any more (the lock)

    @contextlib.contextmanager
    def searching(self) -> Iterator[bool]:
        """Hold the lock for a search, announced to the background thread while waiting.

        Yields False, without the lock, while the graph is being saved: writing it takes
        the lock for about 1.5 s at a million rows, and an exact search is 10 times faster.
        """
        with self.count_lock:
            self.searches += 1
        got = False
        try:
            while not (got := self.lock.acquire(timeout=_SAVE_POLL_S)) and not self.saving:
                pass
        finally:
            with self.count_lock:
                self.searches -= 1
        if not got:
            yield False
            return
        try:
            yield True  # never saving: a save holds the lock
        finally:
            self.lock.release()

    def let_searches_in(self) -> None:
        """Wait while searches wait for the lock: at most 2 ms (busy servers never starve it)."""
        for _ in range(20):
            if not self.searches:
                return
            time.sleep(0.0001)


def _identity(inst: InstanceRecord) -> dict[str, Any]:
    return {
        "instance": f"{inst.namespace}/{inst.id}",
        "created_at": inst.created_at,
        "embedder": inst.embedder,
    }


def _detach(follower: _Follower | None) -> None:
    if follower is None:
        return
    follower.active = False
    table = follower.table()
    if table is not None:
        with table.lock, contextlib.suppress(ValueError):
            table.listeners.remove(follower)


class AnnManager:
    """The graphs of one server, one per instance, and the policy of when to use them.

    Args:
        directory: Where graphs are saved (``<data dir>/ann``), or None to keep them in memory.
        mode: ``auto``, ``exact`` or ``ann`` (see :data:`MODES`).
        min_rows: Rows from which ``auto`` uses a graph.
        expansion: HNSW ``ef`` at search time.
    """

    def __init__(
        self,
        directory: Path | None,
        *,
        mode: str = "auto",
        min_rows: int = ANN_MIN_ROWS,
        expansion: int = EXPANSION_SEARCH,
    ) -> None:
        if mode not in MODES:
            raise ValueError(
                f"vector search mode (--vector-search, {MODE_ENV}) must be one of "
                f"{', '.join(MODES)}, got {mode!r}"
            )
        if isinstance(min_rows, bool) or not isinstance(min_rows, int) or min_rows < 0:
            raise ValueError(
                f"ann_min_rows (--ann-min-rows) must be an integer >= 0, got {min_rows!r}"
            )
        if isinstance(expansion, bool) or not isinstance(expansion, int) or expansion < 1:
            raise ValueError(f"ann expansion must be an integer >= 1, got {expansion!r}")
        self.directory = directory
        self._key: bytes | None = None  # read (or created) when a graph is first saved/loaded
        self.mode = mode
        self.min_rows = min_rows
        self.expansion = expansion
        self.filter_exact_factor = _FILTER_EXACT_FACTOR
        self._entries: dict[int, _Entry] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def __repr__(self) -> str:
        return f"AnnManager(mode={self.mode!r}, min_rows={self.min_rows})"

    def applies(self, n_rows: int, *, dense: bool) -> bool:
        """Whether an instance of ``n_rows`` rows is searched with a graph."""
        if self.mode == "exact" or self._stop.is_set():
            return False
        return self.mode == "ann" or (dense and n_rows >= self.min_rows)

    def _entry(self, inst: InstanceRecord) -> _Entry:
        identity = _identity(inst)
        with self._lock:
            entry = self._entries.get(inst.pk)
            if entry is None or entry.identity != identity or entry.dim != inst.dim:
                entry = self._entries[inst.pk] = _Entry(identity=identity, dim=inst.dim)
            return entry

    def _base(self, inst_pk: int) -> Path | None:
        """Where the instance's graph is saved, or None (in memory, or no signing key)."""
        if self.directory is None:
            return None
        with self._lock:
            if self._key is None:
                self._key = signing_key()
                if self._key is None:
                    self.directory = None
            directory = self.directory
        return None if directory is None else directory / str(inst_pk)

    def warm(self, inst: InstanceRecord, idx: InstanceIndex) -> None:
        """Start loading or building the instance's graph now (a search would do it too)."""
        entry = self._entry(inst)
        with entry.lock:
            self._kick(inst, entry, idx)

    def wait(self, inst: InstanceRecord, timeout: float | None = None) -> bool:
        """Wait for the instance's background work; True when its graph is in step."""
        entry = self._entry(inst)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with entry.lock:
                worker = entry.worker
                if worker is None:
                    return self._in_step(entry)
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            worker.join(left)

    @staticmethod
    def _in_step(entry: _Entry) -> bool:
        target = entry.target() if entry.target is not None else None
        if entry.ann is None or target is None:
            return False
        if target.table is None:
            return entry.synced is not None and entry.synced() is target
        f = entry.follower
        return (
            f is not None
            and entry.in_step
            and f.table() is target.table
            and not f.stale
            and not f.pending()
        )

    def candidates(
        self,
        inst: InstanceRecord,
        idx: InstanceIndex,
        qvec: np.ndarray,
        k: int,
        allowed: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Return the top ``k`` (rows, exact similarities) through the graph, or None.

        None means "search exactly": the graph is not built yet (or lags by more than a
        fifth of the rows), or a filter leaves too few rows for the graph to find them.
        """
        n = len(idx.cids)
        entry = self._entry(inst)
        if entry.saving:
            return None  # the graph is being written to its files: search exactly meanwhile
        with entry.searching() as through_graph:
            if not through_graph:
                return None
            entry.last_search = time.monotonic()
            self._kick(inst, entry, idx)
            ann = entry.ann
            if ann is None or not len(ann):
                return None
            delta = self._delta(entry, ann, idx)
            if delta is None or len(delta.missing) > n // 5:
                return None  # not compared yet (the background thread does it) or far behind
            # twice k, and 16 more at least: the graph ranks in f16, so near ties are
            # re-scored exactly (ef stays >= 2 ask, so asking more costs little)
            ask = max(2 * k, k + 16)
            missing = delta.missing
            if allowed is not None:
                n_allowed = int(np.count_nonzero(allowed))
                ask = max(ask, int(np.ceil(2 * k * n / max(n_allowed, 1))))
                # a graph search with ef = 2 * ask reads ~30 vectors per step: scoring the
                # allowed rows exactly is cheaper below ~40 * ask rows (docs/DEPS-ann.md)
                if n_allowed <= self.filter_exact_factor * ask:
                    return None
                missing = missing[allowed[missing]]
            while True:  # ask until k usable rows come back (gone, changed, filtered dropped)
                if ask > _MAX_ASK:
                    return None
                keys, _ = ann.search(qvec, min(ask, len(ann)), self.expansion)
                rows = _live_rows_of(idx, keys)
                keep = rows >= 0
                if len(delta.excluded):
                    keep &= ~np.isin(keys, delta.excluded, assume_unique=True)
                hits = rows[keep]
                if allowed is not None:
                    hits = hits[allowed[hits]]
                if len(hits) >= k or ask >= len(ann):
                    break
                ask *= 4
            cand = np.union1d(hits, missing)
        with np.errstate(invalid="ignore", over="ignore"):
            sims = np.nan_to_num(idx.matrix[cand] @ qvec, nan=-np.inf, posinf=-np.inf)
        return top_k(cand, sims, k)

    @staticmethod
    def _delta(entry: _Entry, ann: AnnIndex, idx: InstanceIndex) -> _Delta | None:
        """The graph's difference from ``idx``, or None until the background thread has it."""
        f = entry.follower
        if (
            idx.table is not None
            and f is not None
            and entry.in_step
            and f.table() is idx.table
            and not f.stale
        ):  # the queued appends (a write's rows, not the instance's): score them exactly
            with f.lock:
                added = f.added.all()
            rows = _live_rows_of(idx, added) if len(added) else added
            return _Delta(np.zeros(0, dtype=np.int64), rows[rows >= 0])
        if entry.synced is not None and entry.synced() is idx:
            return _Delta(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
        cached: _Delta | None = idx.cache.get(_delta_key(ann))
        return cached

    def _kick(self, inst: InstanceRecord, entry: _Entry, idx: InstanceIndex) -> None:
        """Make ``idx`` the graph's target; start the background thread when needed."""
        current = entry.target() if entry.target is not None else None
        if current is not idx:
            entry.target = weakref.ref(idx)
        if entry.worker is not None or self._stop.is_set():
            return
        if idx.table is None:
            idle = entry.synced is not None and entry.synced() is idx
        else:
            f = entry.follower
            idle = (
                f is not None
                and entry.in_step
                and f.table() is idx.table
                and not f.stale
                and not f.pending()
            )
        if idle:
            return
        entry.worker = threading.Thread(
            target=self._work,
            args=(entry, self._base(inst.pk)),
            name=f"aisearch-local-ann-{inst.pk}",
            daemon=True,
        )
        entry.worker.start()

    def _work(self, entry: _Entry, base: Path | None) -> None:
        try:
            self._catch_up(entry, base)
        except Exception:  # pragma: no cover - searches stay exact; the next one retries
            logger.exception("building the ANN index failed; searching exactly meanwhile")
        finally:
            with entry.lock:
                if entry.worker is threading.current_thread():
                    entry.worker = None

    def _catch_up(self, entry: _Entry, base: Path | None) -> None:
        """The background thread: load or build the graph, then keep it in step.

        With a vector table (the server's case), it follows the table through a listener
        (:class:`_Follower`): once the graph was compared with the table, every write costs
        the graph its own rows only. Without one, or after a reset, the graph is compared with
        the whole ``InstanceIndex`` (:meth:`_compare`).
        """
        if entry.ann is None and base is not None:
            loaded = AnnIndex.load(base, entry.identity, entry.dim, self._key or b"")
            with entry.lock:
                entry.ann, entry.loaded = loaded, loaded is not None
        while not self._stop.is_set():
            entry.let_searches_in()
            with entry.lock:
                idx = entry.target() if entry.target is not None else None
                f = None if idx is None else self._follow(entry, idx.table)
                if (
                    entry.dropped
                    or idx is None
                    or (f is None and entry.synced is not None and entry.synced() is idx)
                ):
                    step = "done"
                elif f is None or not entry.in_step:
                    # a snapshot older than the listener cannot be compared: wait for a newer
                    step = "compare" if f is None or f.covers(idx) else "done"
                elif self._apply_queued(entry, f, idx):
                    step = "next"
                elif base is not None and entry.unsaved > max(1_000, len(entry.ann or ()) // 10):
                    step = "save"
                else:
                    step = "done"
                if step == "done":
                    entry.worker = None  # from now on, a search starts a new thread
                    return
            if step == "save" and base is not None:
                self._save(entry, base)
            elif step == "compare" and idx is not None:
                self._compare(entry, idx, f)
            _pause()

    def _follow(self, entry: _Entry, table: VectorTable | None) -> _Follower | None:
        """Listen to ``table`` (under the entry's lock); None for a snapshot without a table."""
        if table is None:
            return None
        f = entry.follower
        if f is not None and f.table() is table:
            with table.lock, f.lock:
                if f.stale:  # a compaction: compare once more, from a snapshot after it
                    f.stale, entry.in_step = False, False
                    f.mark = (table.epoch, table.n, table.dead)
            return f
        _detach(f)
        with table.lock:
            f = _Follower(table)
            table.add_listener(f)
        entry.follower, entry.in_step = f, False
        return f

    def _apply_queued(self, entry: _Entry, f: _Follower, idx: InstanceIndex) -> bool:
        """Apply one batch of the queued changes to the graph; False when none applies.

        Under the entry's lock. An appended id is added when ``idx`` holds it live and no
        tombstone of it is queued; ids newer than ``idx`` wait for a newer snapshot. A
        tombstone is applied once its id's append was (ids grow: it is below the queue's head).
        """
        ann = entry.ann
        assert ann is not None
        newest = int(idx.cids[-1]) if len(idx.cids) else 0
        with f.lock:
            cleared = f.cleared
            # while searches come, a few rows a hold (one thread: faster for a few rows);
            # else a batch (every core)
            busy = entry.searches or time.monotonic() - entry.last_search < _BUSY
            added = f.added.peek(_STEP if busy else _BATCH)
            added = added[: int(np.searchsorted(added, newest, side="right"))]
            head = int(f.added.peek(1)[0]) if len(f.added) else None
            # removals are cheap (~10 us a row): more of them per lock hold
            dead = f.dead.take_below(_NO_ID if head is None else head, _BATCH * 32)
            doomed = f.dead.all() if len(added) else added
        if len(dead):
            ann.remove(dead)
        if len(added):
            rows = _live_rows_of(idx, added)
            take = (rows >= 0) & ~ann.contains(added)
            if len(doomed):
                take &= ~np.isin(added, doomed)
            ann.add(added[take], idx.matrix[rows[take]], threads=1 if busy else 0)
            with f.lock:
                if f.cleared == cleared:  # else the follower is stale: a comparison follows
                    f.added.drop(len(added))
        entry.unsaved += len(dead) + len(added)
        return bool(len(dead) or len(added))

    def _compare(self, entry: _Entry, idx: InstanceIndex, f: _Follower | None) -> None:
        """Bring the graph to ``idx`` by comparing the two (a pass over the matrix).

        Searches use the difference meanwhile (or search exactly while the graph is built).
        With a follower that covers ``idx``, the graph is then in step with its table.
        """
        fps = fingerprint(idx)  # outside the lock: one pass over the matrix
        with entry.lock:
            ann = entry.ann
            diff = None if ann is None else _difference(ann, idx)
            if ann is not None and diff is not None:
                idx.cache[_delta_key(ann)] = diff  # searches use it until caught up
        _pause()
        if ann is None or diff is None or len(diff.missing) > len(idx.cids) // 5:
            # (re)build apart, then swap it in: searches stay exact meanwhile, unblocked
            fresh = AnnIndex(entry.dim)
            live = np.arange(len(idx.cids)) if idx.alive is None else np.flatnonzero(idx.alive)
            for start in range(0, len(live), _BUILD_BATCH):
                if self._stop.is_set():
                    return
                part = live[start : start + _BUILD_BATCH]
                fresh.add(idx.cids[part], idx.matrix[part], fps[part])
            with entry.lock:
                entry.ann, entry.unsaved, entry.synced = fresh, len(fresh) + 1, None
                self._mark_in_step(entry, idx, f)
            return
        for start in range(0, len(diff.excluded), _BATCH):
            if self._stop.is_set():
                return
            with entry.lock:
                ann.remove(diff.excluded[start : start + _BATCH])
            _pause()
        for start in range(0, len(diff.missing), _BATCH):
            if self._stop.is_set():
                return
            rows = diff.missing[start : start + _BATCH]
            with entry.lock:
                ann.add(idx.cids[rows], idx.matrix[rows], fps[rows])
            _pause()
        with entry.lock:
            entry.unsaved += len(diff.excluded) + len(diff.missing)
            if f is None:
                entry.synced = weakref.ref(idx)
            else:
                self._mark_in_step(entry, idx, f)

    @staticmethod
    def _mark_in_step(entry: _Entry, idx: InstanceIndex, f: _Follower | None) -> None:
        """After the graph was made equal to ``idx`` (under the entry's lock)."""
        if f is not None and entry.follower is f and not f.stale and f.covers(idx):
            entry.in_step = True  # the queues hold every change since: applied next

    def _save(self, entry: _Entry, base: Path) -> None:
        """Write the graph to its files; searches meanwhile are exact, not kept waiting."""
        with entry.lock:
            ann = entry.ann
            if ann is None or not entry.unsaved or entry.dropped:
                return
            entry.saving = True
            try:
                ann.save(base, entry.identity, self._key or b"")
            except Exception as exc:  # disk full, read-only folder: kept in memory
                logger.warning("could not save the ANN index %s: %s", base, exc)
            else:
                entry.unsaved = 0
            finally:
                entry.saving = False

    def drop(self, inst: InstanceRecord) -> None:
        """Forget an instance's graph and delete its files (the instance was deleted)."""
        with self._lock:
            entry = self._entries.pop(inst.pk, None)
        if entry is not None:
            with entry.lock:  # waits for a save under way, whose files are deleted below
                entry.dropped = True
            _detach(entry.follower)
        if self.directory is not None:
            for path in _all_paths(self.directory / str(inst.pk)):
                with contextlib.suppress(OSError):
                    path.unlink()

    def close(self, instances: Iterable[InstanceRecord] | None = None) -> None:
        """Stop the background threads and save every graph that changed since its last save.

        Args:
            instances: The instances that still exist (None: every graph's does). The graph
                of any other one is not saved: another process (``serve --workers``,
                ``aisearch-local ingest``) deleted it and its files, which a save would write
                back for nothing.
        """
        live = None if instances is None else {i.pk: _identity(i) for i in instances}
        self._stop.set()
        with self._lock:
            entries = dict(self._entries)
        for pk, entry in entries.items():
            with entry.lock:
                worker = entry.worker
            if worker is not None:
                worker.join()
            _detach(entry.follower)
            base = self._base(pk)
            if base is not None and (live is None or live.get(pk) == entry.identity):
                self._save(entry, base)


def fingerprint(idx: InstanceIndex) -> np.ndarray:
    """Return (once per ``InstanceIndex``) the fingerprints of its rows."""
    fps: np.ndarray | None = idx.cache.get("ann_fingerprints")
    if fps is None:
        fps = idx.cache["ann_fingerprints"] = fingerprints(idx.matrix)
    return fps


def _pause() -> None:
    """Between two batches of the background thread, outside the lock: let searches in."""
    time.sleep(0)


def _delta_key(ann: AnnIndex) -> str:
    return f"ann-delta-{id(ann)}"  # per graph: a rebuilt graph gets its own


def _rows_of(cids: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Row of each key in the sorted ``cids``, -1 when absent."""
    pos = np.searchsorted(cids, keys)
    found = pos < len(cids)
    found[found] = cids[pos[found]] == keys[found]
    out: np.ndarray = np.where(found, pos, -1)
    return out


def _live_rows_of(idx: InstanceIndex, keys: np.ndarray) -> np.ndarray:
    """Live row of each key in the instance, -1 when absent or tombstoned."""
    rows = _rows_of(idx.cids, keys)
    if idx.alive is not None:
        found = rows >= 0
        found[found] = idx.alive[rows[found]]
        rows = np.where(found, rows, -1)
    return rows


def _difference(ann: AnnIndex, idx: InstanceIndex) -> _Delta:
    """Compare the graph's keys and fingerprints with the instance's live rows."""
    fps = fingerprint(idx)
    rows = _live_rows_of(idx, ann.keys)
    present = rows >= 0
    same = present.copy()
    if present.any():
        diff = np.abs(ann.fps[present] - fps[rows[present]])
        same[present] = diff <= _FP_TOLERANCE
    covered = np.zeros(len(idx.cids), dtype=bool) if idx.alive is None else ~idx.alive
    covered[rows[same]] = True  # tombstoned rows count as covered: never missing
    return _Delta(excluded=ann.keys[~same], missing=np.flatnonzero(~covered))
