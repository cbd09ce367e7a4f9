"""The in-memory vector index of one instance, updated in place, and its file on disk.

:class:`VectorTable` holds an instance's embeddings as one float32 matrix with the chunk ids
(``cids``, ascending) and item primary keys aligned to its rows, in buffers with spare capacity:
a write **appends** rows (new chunks) or **tombstones** rows (deleted or re-indexed chunks); a
search takes an immutable :class:`~aisearch_local.records.InstanceIndex` snapshot (views of the
first ``n`` rows and a copy of the liveness mask), so a write never disturbs a search under way.
When tombstones pass :data:`COMPACT_FRACTION` of the rows, the table is compacted.

The file is a **cache** of SQLite, which stays the source of truth. It lives in
``<data dir>/vectors/<instance pk>/``::

    head.json       {"format", "nonce", "gen", "dim", "rows", "dead", "epoch"}
    e<epoch>.f32    rows x dim float32, row-major (numpy's layout), append-only
    e<epoch>.cid    rows int64 chunk ids
    e<epoch>.item   rows int64 item primary keys
    e<epoch>.dead   dead int64 chunk ids (tombstones)

Every write transaction bumps the instance's generation in SQLite (``meta`` table, key
``vectors:<pk>``, value ``<nonce>:<gen>``); after COMMIT the store applies the change here and
appends it to the files, then replaces ``head.json`` (written last, atomically). A load trusts
the files only when ``head.json`` names the same nonce and generation as SQLite and every size
and id checks out (see :func:`load`); anything else (a crash between COMMIT and the file write,
a deleted, truncated or hostile file) rebuilds the table from SQLite and rewrites the files.

For a sparse query (the hashing embedder's), :meth:`VectorTable.columns` keeps a compact
column-major copy of the rows (:class:`Columns`: one int8 code per value, a scale per column,
and the largest rounding error per column), built in the background and appended to; it finds
the candidates of ``search._pruned_vector`` reading a quarter of what float32 columns would, in
a quarter of the memory.

Listeners (:meth:`VectorTable.add_listener`) hear every change to the rows, for an index built
on top of this one (an ANN graph): ``on_append(rows)`` with the new row numbers,
``on_tombstone(rows)`` with the rows that died, and ``on_reset()`` when the rows were renumbered
(a compaction or a reload) and whatever was built on them must be rebuilt.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from aisearch_local.nowait import hold, refuse
from aisearch_local.records import InstanceIndex

__all__ = [
    "COMPACT_FRACTION",
    "FORMAT",
    "Columns",
    "TableListener",
    "VectorChange",
    "VectorTable",
    "column_scales",
    "load",
    "new_nonce",
    "own_ahead",
    "parse_generation",
    "quantize_into",
    "remove_head",
    "top_k",
]

logger = logging.getLogger(__name__)

FORMAT = 1
COMPACT_FRACTION = 0.25
"""Compact when the tombstoned rows pass this share of the rows (and :data:`COMPACT_MIN`)."""
COMPACT_MIN = 1024
_HEAD_MAX = 4096
_NONCE_LEN = 32
_MAX_ROWS = 1 << 40


def new_nonce() -> str:
    """A fresh random nonce naming one life of an instance's vector file."""
    return uuid.uuid4().hex


def own_ahead(
    held: int, gen: int, own: Collection[int], pending: Collection[int] | None = None
) -> bool:
    """Whether an index that holds generation ``held`` is current for SQLite's ``gen``.

    It is when it holds ``gen``, or when every generation after ``held`` up to ``gen`` is this
    process's own: a write under way (``own``) or a committed change waiting for an earlier one
    (``pending``), which will be applied to it. A generation of another process (``serve
    --workers``, ``aisearch-local ingest``) makes it stale: its change is only in SQLite.
    """
    if held == gen:
        return True
    if held > gen or gen - held > len(own) + len(pending or ()):
        return False
    return all(g in own or (pending is not None and g in pending) for g in range(held + 1, gen + 1))


def parse_generation(value: Any) -> tuple[str, int] | None:
    """Read a stored ``<nonce>:<gen>`` value; None when missing or malformed."""
    if not isinstance(value, str):
        return None
    nonce, _, gen = value.partition(":")
    if len(nonce) != _NONCE_LEN or not gen.isascii() or not gen.isdigit() or len(gen) > 18:
        return None
    return nonce, int(gen)


@dataclass
class VectorChange:
    """What one committed write did to an instance's vectors.

    Attributes:
        nonce: The instance's vector nonce (one life of its vector file).
        gen: The generation the write committed (one more than the one before it).
        dead_cids: Chunk ids deleted by the write.
        cids, item_pks, vectors: The chunks it inserted (ascending ids), aligned.
        items: The items whose attributes changed: ``(pk, key, timestamp_ms, metadata)`` for a
            completed item, ``(pk, None, None, None)`` for an item without chunks any more.
    """

    nonce: str
    gen: int
    dead_cids: list[int] = field(default_factory=list)
    cids: list[np.ndarray] = field(default_factory=list)
    item_pks: list[np.ndarray] = field(default_factory=list)
    vectors: list[np.ndarray] = field(default_factory=list)
    items: list[tuple[int, str | None, int | None, dict[str, Any] | None]] = field(
        default_factory=list
    )

    def add(self, cids: np.ndarray, item_pks: np.ndarray, vectors: np.ndarray) -> None:
        """Record inserted chunks."""
        self.cids.append(cids)
        self.item_pks.append(item_pks)
        self.vectors.append(vectors)


class TableListener(Protocol):
    """Hears the changes to a :class:`VectorTable`'s rows (see the module docstring)."""

    def on_append(self, rows: np.ndarray) -> None:
        """Rows ``rows`` (ascending row numbers) were appended."""

    def on_tombstone(self, rows: np.ndarray) -> None:
        """Rows ``rows`` died (their chunks were deleted)."""

    def on_reset(self) -> None:
        """Every row was renumbered (compaction, reload): rebuild from the table."""


@dataclass(frozen=True)
class Columns:
    """A compact column-major copy of a table's rows (for a sparse query's candidates).

    Attributes:
        codes: ``(dim, rows)`` int8: ``matrix[i, j]`` is about ``scale[j] * codes[j, i]``.
        scale: ``(dim,)`` float32, the largest ``|value|`` of each column (when the copy was
            built) over 127.
        error: ``(dim,)`` float64, the largest ``|scale[j] * codes[j, i] - matrix[i, j]|`` of
            each column over every row but the outliers (NaN when a row is not finite).
        max_norm: The largest row norm.
        block: Rows re-scored together so that BLAS reproduces the full product (see
            ``search._rescore``).
        outliers: Rows (ascending) appended later with a value beyond their column's scale
            (a short chunk among long ones): their codes mean nothing, and a search scores
            them from the matrix.
    """

    codes: np.ndarray
    scale: np.ndarray
    error: np.ndarray
    max_norm: float
    block: int
    outliers: np.ndarray


_QUANT_ROWS = 1024  # rows quantised at once: cache-sized blocks


def column_scales(matrix: np.ndarray, block: int = 65_536) -> np.ndarray | None:
    """Each column's int8 scale (its largest ``|value|`` over 127), or None if any is not finite."""
    peak = np.zeros(matrix.shape[1], dtype=np.float32)
    for start in range(0, len(matrix), block):
        np.maximum(peak, np.abs(matrix[start : start + block]).max(axis=0), out=peak)
    if not bool(np.all(np.isfinite(peak))):
        return None
    scale: np.ndarray = np.where(peak > 0, peak / np.float32(127), np.float32(1)).astype(np.float32)
    return scale


def quantize_into(
    codes: np.ndarray, matrix: np.ndarray, lo: int, hi: int, scale: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``codes[:, lo:hi]`` = the int8 codes of ``matrix[lo:hi]``: return (error, outliers).

    The error is each column's largest ``|scale[j] * code - value|`` (computed in float64,
    where the product is exact) over the rows but the outliers, NaN for a column holding a
    non-finite value (its code is 0); the outliers are the rows (ascending) with a value
    beyond its column's scale (clipped).
    """
    error = np.zeros(codes.shape[0], dtype=np.float64)
    outliers: list[np.ndarray] = []
    inv = (np.float32(1) / scale)[:, None]
    scale64 = scale.astype(np.float64)[:, None]
    for start in range(lo, hi, _QUANT_ROWS):
        end = min(start + _QUANT_ROWS, hi)
        part = matrix[start:end].T
        q = np.rint(part * inv)
        over = (np.abs(q) > 127).any(axis=0)
        np.clip(q, -127, 127, out=q)
        diff = np.abs(q.astype(np.float64) * scale64 - part)
        if over.any():
            diff[:, over] = 0.0
            outliers.append(start + np.flatnonzero(over))
        np.maximum(error, diff.max(axis=1), out=error)  # NaN stays NaN
        if not bool(np.isfinite(q).all()):
            np.nan_to_num(q, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        codes[:, start:end] = q
    rows = np.concatenate(outliers) if outliers else np.zeros(0, dtype=np.int64)
    return error, rows.astype(np.int64, copy=False)


def _grow(arr: np.ndarray, need: int) -> np.ndarray:
    """Return ``arr`` or a larger copy holding at least ``need`` rows (1.5x growth)."""
    if need <= arr.shape[0]:
        return arr
    cap = max(need, arr.shape[0] + arr.shape[0] // 2, 1024)
    out = np.empty((cap, *arr.shape[1:]), dtype=arr.dtype)
    out[: arr.shape[0]] = arr
    return out


class VectorTable:
    """An instance's vectors with spare capacity, updated in place (see the module docstring).

    Args:
        dim: The vector dimension.
        nonce, gen: The SQLite generation the rows correspond to.
        matrix, cids, item_pks: Initial rows (taken over, not copied; may have extra capacity
            beyond ``rows``).
        rows: How many rows of the buffers are filled.
        dead_cids: Tombstoned chunk ids.
        directory: Where the files live, or None (in memory only).
    """

    def __init__(
        self,
        dim: int,
        nonce: str,
        gen: int,
        matrix: np.ndarray,
        cids: np.ndarray,
        item_pks: np.ndarray,
        rows: int,
        dead_cids: np.ndarray | None = None,
        directory: Path | None = None,
        epoch: int = 0,
    ) -> None:
        self.dim = dim
        self.nonce = nonce
        self.gen = gen
        self.n = rows
        self._matrix = matrix
        self._cids = cids
        self._items = item_pks
        self._alive = np.ones(max(rows, 1024), dtype=bool)
        self.dead = 0
        self.directory = directory
        self.epoch = epoch
        self.persisted = False
        self.listeners: list[TableListener] = []
        self.lock = threading.RLock()
        self._snap: InstanceIndex | None = None
        self._columns: Columns | None = None
        self._columns_ok: bool | None = None
        self._columns_base = 1
        self._columns_stale = False
        self._building = False
        self.extra: dict[str, Any] = {}
        """Structures built on the table (the item attribute table): dropped on reset."""
        if dead_cids is not None and len(dead_cids):
            self._kill(self._rows_of(dead_cids))

    # -- reads --------------------------------------------------------------------------------

    def snapshot(self, version: int) -> InstanceIndex:
        """Return an immutable view of the current rows for one search."""
        with hold(self.lock):  # a writer holds it while it appends to the files
            snap = self._snap
            if snap is None:
                n = self.n
                alive = self._alive[:n].copy() if self.dead else None
                snap = InstanceIndex(
                    version=version,
                    matrix=self._matrix[:n],
                    cids=self._cids[:n],
                    item_pks=self._items[:n],
                    alive=alive,
                    table=self,
                    epoch=self.epoch,
                )
                self._snap = snap
            elif snap.version != version:
                snap = InstanceIndex(
                    version=version,
                    matrix=snap.matrix,
                    cids=snap.cids,
                    item_pks=snap.item_pks,
                    alive=snap.alive,
                    table=self,
                    epoch=snap.epoch,
                    cache=snap.cache,
                )
                self._snap = snap
            return snap

    @property
    def building(self) -> bool:
        """Whether the column copy is being built in the background.

        Read without the table's lock (one attribute): a write appending to the files holds it,
        and the health check reads this (``Store.indexing``).
        """
        return self._building

    def columns(self, snap: InstanceIndex, probe: Callable[[np.ndarray], int]) -> Columns | None:
        """Return the compact column copy (:class:`Columns`) of ``snap``'s rows, or None.

        None until it is built: the first call starts building it in a background thread (when
        ``probe`` accepts the matrix, returning the re-scoring block; see
        ``search._pruned_vector``), so a search after a restart never waits for it; appends
        keep it up to date. Once the rows doubled since it was built, or the outliers (rows
        scored from the matrix) pass :func:`_outlier_limit`, it is built anew in the background
        (with the scales of the rows as they are now) while this one serves. Also None for a
        snapshot of an older epoch, or when ``probe`` refused (0) or a value is not finite.
        """
        with hold(self.lock):
            if snap.epoch != self.epoch or self._columns_ok is False:
                return None
            cols = self._columns
            if cols is None or self._columns_stale:
                if not self._building:
                    self._building = True
                    threading.Thread(
                        target=self._build_columns,
                        args=(probe,),
                        name="aisearch-local-columns",
                        daemon=True,
                    ).start()
                if cols is None:  # meanwhile the full product: not on the event loop
                    refuse("the column copy is being built")
                    return None
            n = len(snap.cids)
            outliers = cols.outliers[: np.searchsorted(cols.outliers, n)]
            return Columns(
                cols.codes[:, :n], cols.scale, cols.error, cols.max_norm, cols.block, outliers
            )

    def _build_columns(self, probe: Callable[[np.ndarray], int]) -> None:
        with self.lock:
            epoch, n0, matrix = self.epoch, self.n, self._matrix
        cols: Columns | None = None
        try:
            block = probe(matrix[:n0])
            scale = column_scales(matrix[:n0]) if block else None
            if scale is not None:
                codes = np.empty((self.dim, _column_capacity(n0)), dtype=np.int8)
                error, outliers = quantize_into(codes, matrix, 0, n0, scale)
                max_norm = _max_norm(matrix[:n0])
                cols = Columns(codes, scale, error, max_norm, block, outliers)
        finally:
            with self.lock:
                self._building = False
        with self.lock:
            if epoch != self.epoch:  # compacted meanwhile: the next search starts anew
                return
            self._columns_ok = cols is not None
            self._columns = cols
            self._columns_stale = False
            if cols is None:
                return
            self._columns_base = max(n0, 1)
            self._append_columns(n0, self.n)  # rows appended meanwhile

    def _append_columns(self, lo: int, hi: int) -> None:
        """Quantise rows ``lo:hi`` into the column copy (new arrays: snapshots keep theirs)."""
        cols = self._columns
        if cols is None or lo >= hi:
            return
        codes = cols.codes
        if hi > codes.shape[1]:
            codes = np.empty((self.dim, _column_capacity(hi)), dtype=np.int8)
            codes[:, :lo] = cols.codes[:, :lo]
        error, outliers = quantize_into(codes, self._matrix, lo, hi, cols.scale)
        outliers = np.concatenate([cols.outliers, outliers]) if len(outliers) else cols.outliers
        max_norm = max(cols.max_norm, _max_norm(self._matrix[lo:hi]))
        error = np.maximum(cols.error, error)
        self._columns = Columns(codes, cols.scale, error, max_norm, cols.block, outliers)
        if hi > 2 * self._columns_base or len(outliers) > _outlier_limit(hi):
            self._columns_stale = True  # the next search starts building a new copy

    def _rows_of(self, cids: np.ndarray) -> np.ndarray:
        """The rows of ``cids`` present in the table (absent ones dropped)."""
        have = self._cids[: self.n]
        pos = np.searchsorted(have, cids)
        ok = pos < self.n
        ok[ok] = have[pos[ok]] == cids[ok]
        return np.asarray(pos[ok], dtype=np.int64)

    # -- writes -------------------------------------------------------------------------------

    def add_listener(self, listener: TableListener) -> None:
        """Register a listener of the row changes (see the module docstring)."""
        with self.lock:
            self.listeners.append(listener)

    def _kill(self, rows: np.ndarray) -> np.ndarray:
        rows = rows[self._alive[rows]]
        if len(rows):
            self._alive[rows] = False
            self.dead += len(rows)
        return rows

    def apply(self, change: VectorChange) -> tuple[np.ndarray, np.ndarray] | None:
        """Apply one write (generation ``gen + 1``): return (new rows, dead rows).

        None (and nothing changed) when the change does not follow this table's generation.
        """
        with self.lock:
            if change.gen != self.gen + 1:
                return None
            dead_rows = self._kill(self._rows_of(np.asarray(change.dead_cids, dtype=np.int64)))
            new_rows = np.zeros(0, dtype=np.int64)
            if change.cids:
                cids = np.concatenate(change.cids).astype(np.int64, copy=False)
                items = np.concatenate(change.item_pks).astype(np.int64, copy=False)
                vecs = np.concatenate(change.vectors).astype(np.float32, copy=False)
                if self.n and len(cids) and cids[0] <= self._cids[self.n - 1]:
                    raise ValueError("chunk ids must grow")  # pragma: no cover - store invariant
                new_rows = self._append(cids, items, vecs)
            self.gen = change.gen
            self._snap = None
            for listener in self.listeners:
                if len(dead_rows):
                    listener.on_tombstone(dead_rows)
                if len(new_rows):
                    listener.on_append(new_rows)
            return new_rows, dead_rows

    def _append(self, cids: np.ndarray, items: np.ndarray, vecs: np.ndarray) -> np.ndarray:
        n, k = self.n, len(cids)
        need = n + k
        self._matrix = _grow(self._matrix, need)
        self._cids = _grow(self._cids, need)
        self._items = _grow(self._items, need)
        if need > len(self._alive):
            alive = np.ones(max(need, len(self._alive) + len(self._alive) // 2), dtype=bool)
            alive[:n] = self._alive[:n]
            self._alive = alive
        self._matrix[n:need] = vecs
        self._cids[n:need] = cids
        self._items[n:need] = items
        self._alive[n:need] = True
        self._append_columns(n, need)
        self.n = need
        return np.arange(n, need, dtype=np.int64)

    def needs_compaction(self) -> bool:
        """Whether tombstones passed :data:`COMPACT_FRACTION` of the rows."""
        return self.dead >= COMPACT_MIN and self.dead > COMPACT_FRACTION * self.n

    def compact(self) -> None:
        """Drop the tombstoned rows (new buffers: snapshots under way keep the old ones)."""
        with self.lock:
            keep = np.flatnonzero(self._alive[: self.n])
            m = len(keep)
            cap = max(m + m // 2, 1024)
            matrix = np.empty((cap, self.dim), dtype=np.float32)
            matrix[:m] = self._matrix[keep]
            cids = np.empty(cap, dtype=np.int64)
            cids[:m] = self._cids[keep]
            items = np.empty(cap, dtype=np.int64)
            items[:m] = self._items[keep]
            self._matrix, self._cids, self._items = matrix, cids, items
            self._alive = np.ones(cap, dtype=bool)
            self.n, self.dead = m, 0
            self.epoch += 1
            self.persisted = False
            self._reset()

    def _reset(self) -> None:
        self._snap = None
        self._columns = None
        self._columns_ok = None
        self._columns_stale = False
        self.extra.clear()
        for listener in self.listeners:
            listener.on_reset()

    def chunk_ids(self, rows: np.ndarray) -> np.ndarray:
        """The chunk ids of these rows (a copy; for a listener, which hears row numbers)."""
        with self.lock:
            return np.array(self._cids[rows], dtype=np.int64)

    def dead_cids(self) -> np.ndarray:
        """The tombstoned chunk ids, ascending."""
        return np.asarray(self._cids[: self.n][~self._alive[: self.n]], dtype=np.int64)

    # -- files ----------------------------------------------------------------------------------

    def _head(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "nonce": self.nonce,
            "gen": self.gen,
            "dim": self.dim,
            "rows": self.n,
            "dead": self.dead,
            "epoch": self.epoch,
        }

    def _path(self, suffix: str, epoch: int | None = None) -> Path:
        assert self.directory is not None
        return self.directory / f"e{self.epoch if epoch is None else epoch}.{suffix}"

    def save(self) -> None:
        """Write every file anew (after a rebuild or a compaction); never raises."""
        if self.directory is None:
            return
        with self.lock:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                _remove(self.directory / "head.json")
                n = self.n
                for suffix, arr in (
                    ("f32", self._matrix[:n]),
                    ("cid", self._cids[:n]),
                    ("item", self._items[:n]),
                    ("dead", self.dead_cids()),
                ):
                    with self._path(suffix).open("wb") as f:
                        f.write(_bytes(arr))
                self._write_head()
                for old in self.directory.iterdir():
                    if old.name != "head.json" and not old.name.startswith(f"e{self.epoch}."):
                        _remove(old)
                self.persisted = True
            except OSError as exc:
                self._file_failed(exc)

    def persist(self, before: dict[str, Any], change_rows: np.ndarray, dead: np.ndarray) -> None:
        """Append one applied change to the files (``before``: the head they hold); never raises.

        Bytes go at the exact offsets the head implies (a torn earlier attempt is overwritten),
        then the new head replaces the old one: a crash in between leaves the old generation,
        which a load refuses as stale.
        """
        if self.directory is None or not self.persisted:
            return
        with self.lock:
            try:
                on_disk = _read_head(self.directory / "head.json")
                if on_disk != before:
                    # another process wrote the files: stop appending; a load will rebuild
                    self.persisted = False
                    return
                n0 = before["rows"]
                if len(change_rows):
                    lo, hi = int(change_rows[0]), int(change_rows[-1]) + 1
                    assert lo == n0
                    _pwrite(self._path("f32"), n0 * self.dim * 4, self._matrix[lo:hi])
                    _pwrite(self._path("cid"), n0 * 8, self._cids[lo:hi])
                    _pwrite(self._path("item"), n0 * 8, self._items[lo:hi])
                if len(dead):
                    _pwrite(self._path("dead"), before["dead"] * 8, self._cids[dead])
                self._write_head()
            except OSError as exc:
                self._file_failed(exc)

    def head(self) -> dict[str, Any]:
        """The head the files hold when :attr:`persisted`."""
        return self._head()

    def _write_head(self) -> None:
        assert self.directory is not None
        tmp = self.directory / "head.json.tmp"
        tmp.write_text(json.dumps(self._head()), encoding="ascii")
        os.replace(tmp, self.directory / "head.json")

    def _file_failed(self, exc: OSError) -> None:
        logger.warning("vector file of %s not written (%s): rebuilt at the next load", self, exc)
        self.persisted = False
        if self.directory is not None:
            _remove(self.directory / "head.json")

    def __repr__(self) -> str:
        return f"VectorTable(rows={self.n}, dead={self.dead}, dim={self.dim}, gen={self.gen})"


def _outlier_limit(rows: int) -> int:
    """Most outlier rows (:class:`Columns`) before the column copy is built anew."""
    return max(1024, rows // 256)


def _column_capacity(rows: int) -> int:
    """Room for a quarter more rows (numpy asks for huge pages: spare room is resident)."""
    return max(rows + rows // 4, 1024)


def _max_norm(vecs: np.ndarray) -> float:
    if not len(vecs):
        return 0.0
    return float(np.sqrt(np.max(np.einsum("ij,ij->i", vecs, vecs))))


def _bytes(arr: np.ndarray) -> memoryview:
    """The bytes of an array (no copy when it is contiguous)."""
    return np.ascontiguousarray(arr).reshape(-1).view(np.uint8).data


def remove_head(directory: Path) -> None:
    """Make an instance's files stale (the next load rebuilds from SQLite)."""
    _remove(directory / "head.json")


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _pwrite(path: Path, offset: int, arr: np.ndarray) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        data = _bytes(arr)
        while data:
            written = os.pwrite(fd, data, offset)
            data, offset = data[written:], offset + written
    finally:
        os.close(fd)


def _int(value: Any, lo: int, hi: int) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi:
        return value
    return None


def _read_head(path: Path) -> dict[str, Any] | None:
    """Read and check ``head.json``: None when missing, oversized or malformed."""
    try:
        with path.open("rb") as f:
            raw = f.read(_HEAD_MAX + 1)
    except OSError:
        return None
    if len(raw) > _HEAD_MAX:
        return None
    try:
        head = json.loads(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(head, dict) or set(head) != {
        "format",
        "nonce",
        "gen",
        "dim",
        "rows",
        "dead",
        "epoch",
    }:
        return None
    nonce = head["nonce"]
    checks = (
        head["format"] == FORMAT and not isinstance(head["format"], bool),
        isinstance(nonce, str) and parse_generation(f"{nonce}:0") is not None,
        _int(head["gen"], 0, 1 << 62) is not None,
        _int(head["dim"], 1, 1 << 16) is not None,
        _int(head["rows"], 0, _MAX_ROWS) is not None,
        _int(head["dead"], 0, _MAX_ROWS) is not None,
        _int(head["epoch"], 0, 1 << 62) is not None,
    )
    if not all(checks) or head["dead"] > head["rows"]:
        return None
    return head


def _read_into(path: Path, out: np.ndarray) -> bool:
    """Fill ``out`` from the start of ``path`` in one read; False when the file is short."""
    view = _bytes(out)
    try:
        with path.open("rb", buffering=0) as f:
            got = 0
            while got < len(view):
                r = f.readinto(view[got:])
                if not r:
                    return False
                got += r
    except OSError:
        return False
    return True


def _plausible_rows(matrix: np.ndarray, block: int = 65_536) -> bool:
    """Whether every row is finite with an L2 norm of at most 1 (every embedder normalises).

    A damaged or hostile cache file with NaN rows would otherwise be trusted, and NaN scores
    empty a hybrid search's keyword hits too. Checked in blocks: no matrix-sized temporary.
    """
    for start in range(0, len(matrix), block):
        part = matrix[start : start + block]
        norms = np.einsum("ij,ij->i", part, part)  # NaN or inf rows give NaN or inf
        if not bool(np.all(norms <= 1.0 + 1e-3)):
            return False
    return True


def load(
    directory: Path,
    *,
    dim: int,
    nonce: str,
    gen: int,
    live_chunks: int,
    max_item_pk: int,
) -> VectorTable | None:
    """Load an instance's table from its files, or None when they cannot be trusted.

    Trusted only when ``head.json`` names this nonce, generation and dimension, every file is
    at least as long as the head says, the chunk ids ascend strictly, every tombstone is one of
    them, the live rows are exactly ``live_chunks`` (SQLite's count) and the item keys are in
    ``1..max_item_pk``. The arrays are read with one contiguous read each into buffers with
    spare capacity (no per-row Python object).
    """
    head = _read_head(directory / "head.json")
    if head is None or head["nonce"] != nonce or head["gen"] != gen or head["dim"] != dim:
        return None
    rows, n_dead, epoch = head["rows"], head["dead"], head["epoch"]
    if rows - n_dead != live_chunks:
        return None
    cap = max(rows + rows // 2, 1024)
    sizes = {"f32": rows * dim * 4, "cid": rows * 8, "item": rows * 8, "dead": n_dead * 8}
    for suffix, size in sizes.items():
        try:
            if (directory / f"e{epoch}.{suffix}").stat().st_size < size:
                return None
        except OSError:
            return None
    matrix = np.empty((cap, dim), dtype=np.float32)
    cids = np.empty(cap, dtype=np.int64)
    items = np.empty(cap, dtype=np.int64)
    dead = np.empty(n_dead, dtype=np.int64)
    for suffix, arr in (
        ("f32", matrix[:rows]),
        ("cid", cids[:rows]),
        ("item", items[:rows]),
        ("dead", dead),
    ):
        if not _read_into(directory / f"e{epoch}.{suffix}", arr):
            return None
    if not _plausible_rows(matrix[:rows]):
        return None
    have = cids[:rows]
    if rows and (have[0] < 1 or np.any(np.diff(have) <= 0)):
        return None
    if rows and (items[:rows].min() < 1 or items[:rows].max() > max_item_pk):
        return None
    if n_dead:
        dead.sort()
        if np.any(np.diff(dead) <= 0):
            return None
        pos = np.searchsorted(have, dead)
        if np.any(pos >= rows) or not np.array_equal(have[np.minimum(pos, rows - 1)], dead):
            return None
    table = VectorTable(
        dim, nonce, gen, matrix, cids, items, rows, dead, directory=directory, epoch=epoch
    )
    table.persisted = True
    return table


def top_k(rows: np.ndarray, sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the ``k`` best ``(rows, sims)``, best first, ties by the lower row.

    Non-finite scores are never candidates: ``-inf`` marks a filtered-out row; NaN or ``inf``
    can only come from a damaged database row. Ties break on the row, so every path that
    scores the same rows (the pruned scan, the full product) picks the same ones even when
    several rows tie at the k-th place (duplicate chunks embed to the same vector).
    """
    keep = np.isfinite(sims)
    if not keep.all():
        rows, sims = rows[keep], sims[keep]
    if len(sims) > k:
        kth = np.partition(sims, len(sims) - k)[len(sims) - k]  # the k-th largest
        tied = sims >= kth
        rows, sims = rows[tied], sims[tied]
    order = np.lexsort((rows, -sims))[:k]
    return rows[order], sims[order]
