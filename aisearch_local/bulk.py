"""Batched ingestion: many items in one request, one embedding call, one transaction.

Two users:

* the local-only bulk route ``POST /client/v4/_local/bulk/{ns}/{instance_id}/items``
  (:mod:`aisearch_local.routes_bulk`): a JSON body of up to :data:`MAX_BULK_ITEMS` items
  (``key``, ``text`` or base64 ``data``, ``metadata``) answered with one result per item;
* ``aisearch-local ingest`` and ``serve --source`` (:func:`sync_folder`): a folder synced in
  batches instead of one transaction per file.

Every item passes the checks of the items API (``validate_key``, ``validate_item_metadata``,
the per-format size limit). An item that fails them is refused on its own (its result says why,
nothing is stored for it); an item whose text cannot be extracted is stored with status
``error``, as an upload would be. The items that pass are written in one transaction, committed
(fsynced) before the answer: an item the answer acknowledges survives ``kill -9``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aisearch_local.errors import APIError, ValidationError, bad_request, json_type
from aisearch_local.ingest import IngestError, SourceFile, extract_text, size_problem
from aisearch_local.records import InstanceRecord, NewChunk, now_ms
from aisearch_local.service import LocalService, uses_ocr
from aisearch_local.validation import metadata_warnings, validate_item_metadata, validate_key

__all__ = [
    "BULK_PATH",
    "MAX_BULK_BYTES",
    "MAX_BULK_ITEMS",
    "BulkEntry",
    "ingest_entries",
    "parse_bulk_body",
    "sync_folder",
]

BULK_PATH = "/client/v4/_local/bulk/{ns}/{instance_id}/items"
MAX_BULK_ITEMS = 1000
"""Most items in one bulk request."""
MAX_BULK_BYTES = 32 * 1024 * 1024
"""Most document bytes (decoded ``text`` or ``data``) in one bulk request; the body itself may
be up to 48 MiB (base64, JSON framing: :data:`aisearch_local.guard.MAX_BULK_BODY_BYTES`)."""
_ITEM_FIELDS = ("key", "text", "data", "metadata")
# files per transaction when syncing a folder, and most bytes read ahead of a write
_SYNC_BATCH_FILES = 256
_SYNC_BATCH_BYTES = 16 * 1024 * 1024


@dataclass
class BulkEntry:
    """One item to write: its place in the request, key, bytes and metadata.

    ``error`` set: the item is stored with status ``error`` and that message (a sidecar that
    is not valid metadata, as :meth:`LocalService.sync_source` does).
    """

    index: int
    key: str
    data: bytes
    metadata: dict[str, Any]
    timestamp_ms: int | None = None
    error: str | None = None
    warnings: list[dict[str, str]] = field(default_factory=list)


def _refused(index: int, key: Any, exc: ValidationError | APIError) -> dict[str, Any]:
    return {
        "index": index,
        "key": key if isinstance(key, str) else None,
        "success": False,
        "errors": [{"code": 7001, "message": str(exc)}],
    }


def _parse_item(index: int, raw: Any, use_ocr: bool) -> BulkEntry:
    where = f"items[{index}]"
    if not isinstance(raw, dict):
        raise bad_request(
            where, f"must be an object with key and text or data (got {json_type(raw)})"
        )
    unknown = sorted(k for k in raw if k not in _ITEM_FIELDS)
    if unknown:
        raise bad_request(
            f"{where}.{unknown[0]}", f"unknown field; an item has {', '.join(_ITEM_FIELDS)}"
        )
    key = validate_key(raw.get("key"), f"{where}.key")
    has_text, has_data = raw.get("text") is not None, raw.get("data") is not None
    if has_text == has_data:
        raise bad_request(where, "give exactly one of text (a string) or data (base64 bytes)")
    if has_text:
        text = raw["text"]
        if not isinstance(text, str):
            raise bad_request(f"{where}.text", f"must be a string (got {json_type(text)})")
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:
            raise bad_request(f"{where}.text", "contains a lone UTF-16 surrogate") from None
    else:
        encoded = raw["data"]
        if not isinstance(encoded, str):
            raise bad_request(
                f"{where}.data", f"must be a base64 string (got {json_type(encoded)})"
            )
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise bad_request(
                f"{where}.data", "must be standard base64 (A-Z a-z 0-9 + /, = padding)"
            ) from None
    problem = size_problem(key, len(data), use_ocr=use_ocr)
    if problem is not None:
        raise bad_request(f"{where}.data", problem)
    metadata = validate_item_metadata(raw.get("metadata"), f"{where}.metadata")
    return BulkEntry(index=index, key=key, data=data, metadata=metadata)


def parse_bulk_body(
    body: dict[str, Any], inst: InstanceRecord
) -> tuple[list[BulkEntry], list[dict[str, Any]]]:
    """Check a bulk body: the items to write, and the results of those refused one by one.

    Raises:
        ValidationError: 400 / 7001 when the body itself is wrong (no ``items`` list, more than
            :data:`MAX_BULK_ITEMS` of them, an unknown top-level field).
        APIError: 413 / 7001 when the items' bytes total more than :data:`MAX_BULK_BYTES`.
    """
    unknown = sorted(k for k in body if k != "items")
    if unknown:
        raise bad_request(unknown[0], "unknown field; a bulk body has only items")
    items = body.get("items")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BULK_ITEMS:
        got = len(items) if isinstance(items, list) else json_type(items)
        raise bad_request("items", f"must be a list of 1 to {MAX_BULK_ITEMS} items (got {got})")
    use_ocr = uses_ocr(inst.config)
    entries: list[BulkEntry] = []
    refused: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    total = 0
    for index, raw in enumerate(items):
        try:
            entry = _parse_item(index, raw, use_ocr)
            if entry.key in seen:
                raise bad_request(
                    f"items[{index}].key",
                    f"{entry.key!r} is also items[{seen[entry.key]}] (one item per key)",
                )
        except (ValidationError, APIError) as exc:
            refused.append(_refused(index, raw.get("key") if isinstance(raw, dict) else None, exc))
            continue
        seen[entry.key] = index
        total += len(entry.data)
        if total > MAX_BULK_BYTES:
            raise APIError(
                413,
                7001,
                f"items: the documents total more than the {MAX_BULK_BYTES} byte (32 MiB) limit "
                f"of one bulk request (over it at items[{index}]); send fewer items per request",
            )
        entry.warnings = metadata_warnings(entry.metadata, inst.config)
        entries.append(entry)
    return entries, refused


def _chunks(svc: LocalService, inst: InstanceRecord, entry: BulkEntry) -> list[NewChunk]:
    problem = size_problem(entry.key, len(entry.data), use_ocr=uses_ocr(inst.config))
    if problem is not None:
        raise IngestError(problem)
    chunks = svc._chunk(inst, extract_text(entry.key, entry.data))
    if not chunks:
        raise IngestError(f"{entry.key}: the document has no text to index")
    return chunks


def ingest_entries(
    svc: LocalService,
    inst: InstanceRecord,
    entries: list[BulkEntry],
    *,
    source_id: str = "builtin",
) -> list[dict[str, Any]]:
    """Extract, chunk, embed (one call) and write ``entries`` (one transaction).

    Returns:
        One stored item per entry (as :meth:`Store.get_item_by_key` returns it), in order.
    """
    svc.check_embedder(inst)
    good: list[tuple[BulkEntry, list[NewChunk]]] = []
    failed: list[tuple[BulkEntry, str]] = []
    for entry in entries:
        if entry.error is not None:
            failed.append((entry, entry.error))
            continue
        try:
            good.append((entry, _chunks(svc, inst, entry)))
        except IngestError as exc:
            failed.append((entry, str(exc)))
    texts = [c.text for _, chunks in good for c in chunks]
    matrix = (
        np.asarray(svc.embedder.embed(texts), dtype=np.float32)
        if texts
        else np.zeros((0, inst.dim), dtype=np.float32)
    )
    docs = []
    row = 0
    for entry, chunks in good:
        ts = entry.timestamp_ms if entry.timestamp_ms is not None else now_ms()
        docs.append(
            (entry.key, entry.data, entry.metadata, ts, chunks, matrix[row : row + len(chunks)])
        )
        row += len(chunks)
    if docs:
        svc.store.bulk_insert(inst, docs, source_id=source_id)
    for entry, error in failed:
        svc.store.write_item(
            inst,
            key=entry.key,
            data=entry.data,
            metadata=entry.metadata if entry.error is None else {},
            timestamp_ms=entry.timestamp_ms if entry.timestamp_ms is not None else now_ms(),
            source_id=source_id,
            chunks=[],
            embeddings=None,
            error=error,
        )
    out = []
    for entry in entries:
        item = svc.store.get_item_by_key(inst, entry.key)
        if item is None:  # pragma: no cover - written above, in this thread
            raise RuntimeError(f"{entry.key}: not found after the write")
        out.append(item)
    return out


def _batches(files: Iterable[SourceFile]) -> Iterator[list[SourceFile]]:
    batch: list[SourceFile] = []
    size = 0
    for sf in files:
        batch.append(sf)
        size += len(sf.data)
        if len(batch) >= _SYNC_BATCH_FILES or size >= _SYNC_BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def sync_folder(
    svc: LocalService,
    inst: InstanceRecord,
    *,
    on_progress: Callable[[int, int, str], None] | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """Sync an instance from its source folder (what :meth:`LocalService.sync_source` runs).

    Unchanged files are skipped, files gone from the folder removed, new and changed ones
    written at the bulk path's speed: one embedding call and one transaction per batch of files.
    A changed file keeps its item id and ``created_at``.
    """
    if not inst.source_dir:
        return "no source folder configured; nothing to sync", []
    source_id = f"local:{inst.source_dir}"
    files = list(svc.iter_source_files(Path(inst.source_dir)))
    existing = {it["key"]: it for it in svc.store.list_items(inst)}
    log: list[dict[str, Any]] = []
    indexed = errors = unchanged = done = 0
    for batch in _batches(files):
        todo: list[BulkEntry] = []
        for sf in batch:
            old = existing.pop(sf.key, None)
            if (
                old is not None
                and old["checksum"] == hashlib.sha256(sf.data).hexdigest()
                and old["metadata"] == sf.metadata
                and old["status"] == "completed"
            ):
                unchanged += 1
                continue
            todo.append(
                BulkEntry(
                    index=len(todo),
                    key=sf.key,
                    data=sf.data,
                    metadata=sf.metadata,
                    timestamp_ms=sf.timestamp_ms,
                    error=sf.metadata_error,
                )
            )
        for item in ingest_entries(svc, inst, todo, source_id=source_id) if todo else []:
            if item["status"] == "error":
                errors += 1
                message = str(item.get("error"))
                if not message.startswith(f"{item['key']}:"):
                    message = f"{item['key']}: {message}"
                log.append({"message": message, "message_type": 2})
            else:
                indexed += 1
                log.append(
                    {
                        "message": f"{item['key']}: indexed {item['chunks_count']} chunks",
                        "message_type": 1,
                    }
                )
        done += len(batch)
        if on_progress:
            on_progress(done, len(files), batch[-1].key)
    removed = 0
    for key, old in existing.items():
        if old.get("source_id") == source_id:
            svc.store.delete_item(inst, old["_pk"])
            removed += 1
            log.append(
                {"message": f"{key}: removed (no longer in the source folder)", "message_type": 1}
            )
    reason = (
        f"completed: {indexed} indexed, {unchanged} unchanged, {removed} removed, {errors} errors"
    )
    return reason, log
