"""The rows of the local server's database and their in-memory shapes.

The SQLite schema (:data:`SCHEMA`), the records the store hands out (:class:`InstanceRecord`,
:class:`ChunkRow`, :class:`InstanceIndex`, item/job/namespace dicts built by the ``*_row``
converters) and the filterable attributes of an item (:func:`item_attributes`). Used by
:mod:`aisearch_local.store`; nothing here touches a connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from aisearch_local.jsonsafe import loads_lenient

__all__ = [
    "INSTANCE_COLUMNS",
    "ITEM_COLUMNS",
    "JOB_COLUMNS",
    "SCHEMA",
    "ChunkRow",
    "ImportedInstance",
    "ImportedItem",
    "InstanceIndex",
    "InstanceRecord",
    "NewChunk",
    "instance_row",
    "item_attributes",
    "item_row",
    "job_row",
    "metadata_dict",
    "namespace_row",
    "now_iso",
    "now_ms",
]


def _config_dict(text: str, namespace: str, instance_id: str) -> dict[str, Any]:
    value = loads_lenient(text, {}, what=f"configuration of instance {namespace}/{instance_id}")
    return value if isinstance(value, dict) else {}


def metadata_dict(text: str) -> dict[str, Any]:
    """Read stored item metadata (lenient: an unreadable value is ``{}``)."""
    value = loads_lenient(text, {}, what="item metadata")
    return value if isinstance(value, dict) else {}


def _log_list(text: str) -> list[dict[str, Any]]:
    value = loads_lenient(text, [], what="job log")
    if not isinstance(value, list):
        return []
    return [line for line in value if isinstance(line, dict) and "message" in line]


def now_iso() -> str:
    """Return the current UTC time as an ISO-8601 string with a ``Z`` suffix."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_ms() -> int:
    """Return the current Unix time in milliseconds."""
    return int(datetime.now(timezone.utc).timestamp() * 1000)


def item_attributes(key: str, timestamp_ms: int | None, metadata: dict[str, Any]) -> dict[str, Any]:
    """Build the filterable attributes of an item: custom metadata plus the built-ins.

    Built-ins follow AI Search: ``filename`` (the key), ``folder`` (the key's directory with a
    trailing slash, ``""`` at the root) and ``timestamp`` (last modified, Unix milliseconds).
    """
    attrs = {k.lower(): v for k, v in metadata.items()}
    folder = key.rsplit("/", 1)[0] + "/" if "/" in key else ""
    attrs["filename"] = key
    attrs["folder"] = folder
    attrs["timestamp"] = timestamp_ms
    return attrs


@dataclass(frozen=True)
class InstanceRecord:
    """An instance row: its primary key, identity, configuration and embedder.

    Frozen: the store caches records and hands the same one to concurrent requests
    (``Store.get_instance``); never change ``config`` in place either (copy it).
    """

    pk: int
    namespace: str
    id: str
    config: dict[str, Any]
    embedder: str
    dim: int
    source_dir: str | None
    created_at: str
    modified_at: str


@dataclass
class NewChunk:
    """A chunk to insert: text, byte span in the source and its embedding."""

    text: str
    start: int
    end: int


@dataclass
class ChunkRow:
    """A stored chunk with the fields the search pipeline returns."""

    cid: int
    id: str
    item_pk: int
    seq: int
    text: str
    start_byte: int
    end_byte: int


@dataclass
class InstanceIndex:
    """An immutable view of one instance's vectors for one search (a table snapshot).

    Attributes:
        matrix: float32 ``(n_chunks, dim)`` of L2-normalised embeddings.
        cids: chunk primary keys aligned with the matrix rows (sorted ascending).
        item_pks: the item primary key of every row.
        alive: which rows are live, or None when all are (deleted chunks stay as tombstoned
            rows until the table is compacted).
        table: the :class:`~aisearch_local.vectors.VectorTable` it was taken from, if any.
        epoch: the table's epoch (row numbering) when taken.
    """

    version: int
    matrix: np.ndarray
    cids: np.ndarray
    item_pks: np.ndarray
    alive: np.ndarray | None = None
    table: Any = None
    epoch: int = 0
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def live_count(self) -> int:
        """How many rows are live."""
        return len(self.cids) if self.alive is None else int(np.count_nonzero(self.alive))

    def rows_of(self, cids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Return the live matrix row of each chunk primary key (int64), -1 when absent."""
        want = np.asarray(cids, dtype=np.int64)
        if len(self.cids) == 0:
            return np.full(len(want), -1, dtype=np.int64)
        pos = np.searchsorted(self.cids, want)
        np.minimum(pos, len(self.cids) - 1, out=pos)  # past the end: compared, never equal
        found = self.cids[pos] == want
        if self.alive is not None:
            found &= self.alive[pos]
        rows: np.ndarray = np.where(found, pos, -1)
        return rows

    def row_of(self, cid: int) -> int | None:
        """Return the live matrix row of a chunk primary key, or None (``cids`` is sorted)."""
        pos = int(np.searchsorted(self.cids, cid))
        if (
            pos < len(self.cids)
            and int(self.cids[pos]) == cid
            and (self.alive is None or bool(self.alive[pos]))
        ):
            return pos
        return None


SCHEMA = """
CREATE TABLE IF NOT EXISTS namespaces (
    name TEXT PRIMARY KEY,
    description TEXT,
    extra TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    modified_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS instances (
    pk INTEGER PRIMARY KEY,
    namespace TEXT NOT NULL,
    id TEXT NOT NULL,
    config TEXT NOT NULL,
    embedder TEXT NOT NULL,
    dim INTEGER NOT NULL,
    source_dir TEXT,
    created_at TEXT NOT NULL,
    modified_at TEXT NOT NULL,
    UNIQUE(namespace, id)
);
CREATE TABLE IF NOT EXISTS items (
    pk INTEGER PRIMARY KEY,
    inst_pk INTEGER NOT NULL,
    id TEXT NOT NULL,
    key TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    checksum TEXT NOT NULL,
    file_size INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    timestamp_ms INTEGER,
    source_id TEXT,
    chunks_count INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    modified_at TEXT NOT NULL,
    data BLOB,
    UNIQUE(inst_pk, key)
);
CREATE INDEX IF NOT EXISTS items_id ON items(inst_pk, id);
CREATE TABLE IF NOT EXISTS chunks (
    cid INTEGER PRIMARY KEY,
    inst_pk INTEGER NOT NULL,
    item_pk INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    id TEXT NOT NULL,
    text TEXT NOT NULL,
    start_byte INTEGER NOT NULL,
    end_byte INTEGER NOT NULL,
    embedding BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_item ON chunks(item_pk, seq);
CREATE INDEX IF NOT EXISTS chunks_inst ON chunks(inst_pk);
CREATE TABLE IF NOT EXISTS jobs (
    pk INTEGER PRIMARY KEY,
    inst_pk INTEGER NOT NULL,
    id TEXT NOT NULL,
    source TEXT NOT NULL,
    description TEXT,
    started_at TEXT,
    ended_at TEXT,
    end_reason TEXT,
    last_seen_at TEXT,
    log TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def namespace_row(row: tuple[Any, ...]) -> dict[str, Any]:
    """A namespace row as its wire dict (stored extra fields included)."""
    name, description, extra, created_at, modified_at = row
    out: dict[str, Any] = {
        "name": name,
        "description": description,
        "created_at": created_at,
        "modified_at": modified_at,
    }
    extra_fields = loads_lenient(extra, {}, what=f"namespace {name!r} extra fields")
    if isinstance(extra_fields, dict):
        out.update({k: v for k, v in extra_fields.items() if k not in out})
    return out


def instance_row(row: tuple[Any, ...]) -> InstanceRecord:
    """An instance row (:data:`INSTANCE_COLUMNS`) as a record."""
    pk, namespace, id_, config, embedder, dim, source_dir, created_at, modified_at = row
    return InstanceRecord(
        pk=pk,
        namespace=namespace,
        id=id_,
        config=_config_dict(config, namespace, id_),
        embedder=embedder,
        dim=dim,
        source_dir=source_dir,
        created_at=created_at,
        modified_at=modified_at,
    )


INSTANCE_COLUMNS = "pk, namespace, id, config, embedder, dim, source_dir, created_at, modified_at"


ITEM_COLUMNS = (
    "pk, id, key, status, error, checksum, file_size, metadata, timestamp_ms, source_id, "
    "chunks_count, created_at, modified_at"
)


def item_row(row: tuple[Any, ...], namespace: str) -> dict[str, Any]:
    """An item row (:data:`ITEM_COLUMNS`) as its wire dict, plus the private ``_pk``."""
    (
        pk,
        id_,
        key,
        status,
        error,
        checksum,
        file_size,
        metadata,
        ts_ms,
        source_id,
        chunks_count,
        created_at,
        modified_at,
    ) = row
    out: dict[str, Any] = {
        "id": id_,
        "key": key,
        "status": status,
        "next_action": None,
        "checksum": checksum,
        "chunks_count": chunks_count,
        "file_size": file_size,
        "created_at": created_at,
        "last_seen_at": modified_at,
        "namespace": namespace,
        "source_id": source_id,
        "metadata": metadata_dict(metadata),
        "timestamp": ts_ms,
        "_pk": pk,
    }
    if error:
        out["error"] = error
    return out


JOB_COLUMNS = "id, source, description, started_at, ended_at, end_reason, last_seen_at, log"


def job_row(row: tuple[Any, ...]) -> dict[str, Any]:
    """A job row (:data:`JOB_COLUMNS`) as its wire dict, plus the private ``_log``."""
    id_, source, description, started, ended, reason, seen, log = row
    return {
        "id": id_,
        "source": source,
        "description": description,
        "started_at": started,
        "ended_at": ended,
        "end_reason": reason,
        "last_seen_at": seen,
        "_log": _log_list(log),
    }


@dataclass
class ImportedItem:
    """An item of a snapshot, as the store keeps it (:meth:`Store.import_instances`).

    ``chunks`` are in ``seq`` order; ``embeddings`` holds one float32 row per chunk.
    """

    key: str
    status: str
    error: str | None
    checksum: str
    metadata: dict[str, Any]
    timestamp_ms: int | None
    source_id: str | None
    created_at: str
    modified_at: str
    data: bytes
    chunks: list[NewChunk]
    embeddings: np.ndarray


@dataclass
class ImportedInstance:
    """An instance of a snapshot: where it goes, its configuration, embedder and items."""

    namespace: str
    id: str
    namespace_description: str | None
    config: dict[str, Any]
    embedder: str
    dim: int
    created_at: str
    modified_at: str
    items: list[ImportedItem]
