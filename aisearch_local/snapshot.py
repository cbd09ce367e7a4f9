"""Snapshots: instances written to one file, and loaded back without re-embedding anything.

``aisearch-local export FILE`` writes, and ``aisearch-local import FILE`` (or ``serve`` and
``exec --snapshot FILE``, or the pytest plugin's ``aisearch_instance(snapshot=FILE)``) reads, a
zip archive, format version 1::

    manifest.json                  {"format": "aisearch-local-snapshot", "version": 1,
                                    "created_at", "created_by", "instances": [{"namespace", "id"}]}
    instances/<n>/instance.json    {"namespace", "id", "namespace_description", "config",
                                    "embedder": {"name", "dim"}, "created_at", "modified_at",
                                    "items": <count>, "chunks": <count>}
    instances/<n>/items.jsonl      one item a line, by key: {"key", "status", "error", "checksum",
                                    "metadata", "timestamp_ms", "source_id", "created_at",
                                    "modified_at", "data" (base64), "chunk_text": [...],
                                    "chunk_start": [...], "chunk_end": [...]}
    instances/<n>/embeddings.npy   float32 little-endian (chunks, dim): the vectors of the chunks
                                    in the order of items.jsonl, then of each item's chunks

Why this format: every part opens with common tools (``unzip``, ``jq``, ``numpy.load``), the
vectors keep their exact float32 bits and load as one array (no decimal round trip, no Python
object per row), nothing in it runs code (a pickle does; a SQLite file can hold triggers and
views), and a reader can check every size before it reads. Item ids are not stored: they derive
from namespace, instance and key (as on upload), so an instance imported under another name gets
the ids an upload there would give. The local ``source`` folder is not kept (a snapshot from
someone else must not make this machine index one of its folders); a public endpoint gets a new
id.

A snapshot is untrusted input: :func:`read_snapshot` checks all of it (names, sizes and
compression ratios before reading, JSON shapes, ids and keys as the API checks them, checksums,
vector dtype, shape, finiteness and norm) and raises :class:`SnapshotError` naming the file, the
member and what is wrong; :func:`import_snapshot` then writes every instance in one transaction.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from aisearch_local.errors import APIError, ValidationError
from aisearch_local.jsonsafe import dumps_strict, loads_lenient, loads_strict
from aisearch_local.public_params import apply_public_params
from aisearch_local.records import ImportedInstance, ImportedItem, NewChunk, now_iso
from aisearch_local.validation import (
    INSTANCE_ID_RE,
    check_searchable,
    validate_instance_config,
    validate_item_metadata,
    validate_key,
)

if TYPE_CHECKING:
    from aisearch_local.records import InstanceRecord
    from aisearch_local.service import LocalService
    from aisearch_local.store import Store

__all__ = [
    "FORMAT",
    "VERSION",
    "Limits",
    "Snapshot",
    "SnapshotError",
    "embedder_hint",
    "export_snapshot",
    "import_snapshot",
    "parse_target",
    "read_snapshot",
]

FORMAT = "aisearch-local-snapshot"
VERSION = 1
_MANIFEST = "manifest.json"
_PARTS = ("instance.json", "items.jsonl", "embeddings.npy")
_NPY_DTYPE = np.dtype("<f4")
_MiB = 1 << 20
_STATUSES = ("completed", "error")
_PRINTABLE = re.compile(r"[!-~]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NORM_TOLERANCE = 1e-3  # embedders write unit rows (or zero rows: a text without words)


class SnapshotError(ValueError):
    """A snapshot that cannot be written or read; the message names the file and the reason.

    Control characters and lone surrogates in the message (a hostile file's field names end up
    in it) are written as escapes: printed on a terminal, the message cannot drive it.
    """

    def __init__(self, message: str) -> None:
        escaped = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", message)
        super().__init__(escaped.encode("utf-8", "backslashreplace").decode("utf-8"))


@dataclass(frozen=True)
class Limits:
    """What :func:`read_snapshot` accepts before reading a byte of a member.

    Attributes:
        max_total_bytes: Sum of the members' uncompressed sizes.
        max_ratio: Uncompressed / compressed size of a member larger than 1 MiB (a zip bomb
            expands 1000 times; JSON and vectors, 2 to 20 times).
        max_json_bytes: ``manifest.json`` and each ``instance.json``.
        max_line_bytes: One line of ``items.jsonl`` (an item with its data and chunks).
        max_instances: Instances in one snapshot.
    """

    max_total_bytes: int = 8 << 30
    max_ratio: int = 100
    max_json_bytes: int = 16 * _MiB
    max_line_bytes: int = 256 * _MiB
    max_instances: int = 10_000


@dataclass
class Snapshot:
    """A snapshot read and checked in full: its instances as the store will write them."""

    path: Path
    created_at: str
    created_by: str
    instances: list[ImportedInstance]


def parse_target(text: str, what: str = "--instance") -> tuple[str, str]:
    """``NAMESPACE/ID`` or ``ID`` (namespace ``default``) as a checked pair.

    Raises:
        ValueError: An id that the API would refuse, naming ``what``.
    """
    ns, sep, iid = text.rpartition("/")
    ns = ns if sep else "default"
    for name, value in (("namespace", ns), ("instance id", iid)):
        if not (1 <= len(value) <= 64 and INSTANCE_ID_RE.fullmatch(value)):
            raise ValueError(
                f"{what} {text!r}: the {name} must be 1 to 64 lowercase letters, digits, '_' "
                "and single '-' between them (NAMESPACE/ID, or ID in namespace default)"
            )
    return ns, iid


def embedder_hint(name: str) -> str:
    """The ``--embedder`` spec that gives the embedder called ``name`` (best effort)."""
    if name.startswith("hashing-v1-"):
        dim = name.removeprefix("hashing-v1-")
        return "hashing" if dim == "384" else f"hashing:{dim}"
    if name.startswith("wordllama-"):
        return "wordllama"
    return name  # openai:MODEL@URL is its own spec


# -- export -----------------------------------------------------------------------------------


def export_snapshot(
    store: Store, path: str | os.PathLike[str], targets: Sequence[tuple[str, str]] | None = None
) -> list[tuple[InstanceRecord, int, int]]:
    """Write instances (all when ``targets`` is None) to ``path`` as one snapshot.

    The file is written beside ``path`` and renamed over it at the end: a failed export leaves
    no partial file.

    Returns:
        ``(instance, items, chunks)`` per instance written.

    Raises:
        SnapshotError: An instance in ``targets`` does not exist, or there is none at all.
    """
    from aisearch_local import __version__

    path = Path(path)
    if targets is None:
        chosen = store.list_instances(None)
        if not chosen:
            raise SnapshotError(f"{path}: there is no instance to export")
    else:
        chosen = []
        for ns, iid in dict.fromkeys(targets):
            inst = store.get_instance(ns, iid)
            if inst is None:
                known = ", ".join(f"{i.namespace}/{i.id}" for i in store.list_instances(None))
                raise SnapshotError(
                    f"{path}: no instance {ns}/{iid} to export (instances: {known or 'none'})"
                )
            chosen.append(inst)
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "created_at": now_iso(),
        "created_by": f"aisearch-py {__version__}",
        "instances": [{"namespace": i.namespace, "id": i.id} for i in chosen],
    }
    done: list[tuple[InstanceRecord, int, int]] = []
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", allowZip64=True) as zf:
            zf.writestr(_MANIFEST, json.dumps(manifest, indent=1), zipfile.ZIP_DEFLATED)
            for n, inst in enumerate(chosen):
                done.append(_export_instance(store, inst, zf, f"instances/{n}/"))
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return done


def _export_instance(
    store: Store, inst: InstanceRecord, zf: zipfile.ZipFile, prefix: str
) -> tuple[InstanceRecord, int, int]:
    n_items = n_chunks = 0
    with tempfile.TemporaryFile() as vectors:
        with zf.open(prefix + "items.jsonl", "w", force_zip64=True) as out:
            for row, data, chunks, emb in store.export_items(inst):
                line = {
                    **row,
                    "metadata": loads_lenient(row["metadata"], {}, what="item metadata"),
                    "data": base64.b64encode(data).decode("ascii"),
                    "chunk_text": [c.text for c in chunks],
                    "chunk_start": [c.start for c in chunks],
                    "chunk_end": [c.end for c in chunks],
                }
                out.write(dumps_strict(line).encode("utf-8") + b"\n")
                vectors.write(np.ascontiguousarray(emb, dtype=_NPY_DTYPE).tobytes())
                n_items += 1
                n_chunks += len(chunks)
        ns = store.get_namespace(inst.namespace) or {}
        config = {k: v for k, v in inst.config.items() if k != "public_endpoint_id"}
        record = {
            "namespace": inst.namespace,
            "id": inst.id,
            "namespace_description": ns.get("description"),
            "config": config,
            "embedder": {"name": inst.embedder, "dim": inst.dim},
            "created_at": inst.created_at,
            "modified_at": inst.modified_at,
            "items": n_items,
            "chunks": n_chunks,
        }
        zf.writestr(prefix + "instance.json", dumps_strict(record), zipfile.ZIP_DEFLATED)
        header = {"descr": _NPY_DTYPE.str, "fortran_order": False, "shape": (n_chunks, inst.dim)}
        with zf.open(prefix + "embeddings.npy", "w", force_zip64=True) as out:
            np.lib.format.write_array_header_2_0(out, header)
            vectors.seek(0)
            while block := vectors.read(_MiB):
                out.write(block)
    return inst, n_items, n_chunks


# -- import -----------------------------------------------------------------------------------


def import_snapshot(
    svc: LocalService,
    path: str | os.PathLike[str],
    *,
    only: Sequence[tuple[str, str]] | None = None,
    target: tuple[str, str] | None = None,
    replace: bool = False,
    limits: Limits | None = None,
) -> list[tuple[InstanceRecord, int, int]]:
    """Load a snapshot's instances into a server's store, all or nothing, without embedding.

    Args:
        svc: The server (its embedder must be the one the snapshot was made with).
        path: The snapshot file.
        only: Import these instances of the snapshot (``(namespace, id)``); all when None.
        target: Import the one chosen instance under this ``(namespace, id)``.
        replace: Replace instances that exist (else an existing one refuses the import).
        limits: What the reader accepts (:class:`Limits`).

    Returns:
        ``(instance, items, chunks)`` per instance written.

    Raises:
        SnapshotError: The file is not a valid snapshot, its embedder is not the server's, an
            instance exists (without ``replace``) or its configuration is refused; nothing is
            written then.
    """
    snap = read_snapshot(path, limits=limits)
    chosen = snap.instances
    if only is not None:
        by_name = {(i.namespace, i.id): i for i in chosen}
        missing = [f"{ns}/{iid}" for ns, iid in only if (ns, iid) not in by_name]
        if missing:
            raise SnapshotError(
                f"{snap.path}: no instance {', '.join(missing)} in the snapshot (it holds "
                f"{_names(chosen)})"
            )
        chosen = [by_name[key] for key in dict.fromkeys(only)]
    if target is not None:
        if len(chosen) != 1:
            raise SnapshotError(
                f"{snap.path}: a target name takes one instance and the snapshot holds "
                f"{len(chosen)} ({_names(chosen)}): choose one (import --instance NAMESPACE/ID, or "
                "snapshot_instance= in the pytest fixture)"
            )
        chosen[0].namespace, chosen[0].id = target
    seen: set[tuple[str, str]] = set()
    for imp in chosen:
        where = (imp.namespace, imp.id)
        if where in seen:
            raise SnapshotError(f"{snap.path}: instance {imp.namespace}/{imp.id} appears twice")
        seen.add(where)
        _check_embedder(svc, snap.path, imp)
        imp.config = _checked_config(svc, snap.path, imp)
    try:
        written = svc.store.import_instances(chosen, replace=replace)
    except FileExistsError as exc:
        raise SnapshotError(
            f"{snap.path}: instance {exc} already exists: pass --replace to overwrite it, or "
            "import it under another name (import --as NAMESPACE/ID)"
        ) from None
    return [
        (inst, len(imp.items), sum(len(it.chunks) for it in imp.items))
        for inst, imp in zip(written, chosen, strict=True)
    ]


def _names(instances: Sequence[ImportedInstance]) -> str:
    return ", ".join(f"{i.namespace}/{i.id}" for i in instances) or "none"


def _check_embedder(svc: LocalService, path: Path, imp: ImportedInstance) -> None:
    mine = svc.embedder
    if imp.embedder == mine.name and imp.dim == mine.dim:
        return
    raise SnapshotError(
        f"{path}: instance {imp.namespace}/{imp.id} was embedded with {imp.embedder!r} "
        f"(dimension {imp.dim}) but this server's embedder is {mine.name!r} (dimension "
        f"{mine.dim}): its vectors would not match the queries'. Load it with --embedder "
        f"{embedder_hint(imp.embedder)} (import, serve or exec), or re-index its documents with "
        "this embedder instead"
    )


def _checked_config(svc: LocalService, path: Path, imp: ImportedInstance) -> dict[str, Any]:
    """The instance configuration as a create request would store it (the same checks)."""
    where = f"{path}: instance {imp.namespace}/{imp.id}: config"
    body = {k: v for k, v in imp.config.items() if k not in ("id", "public_endpoint_id")}
    try:
        given = apply_public_params(
            validate_instance_config(body, creating=True, strict=False), None, namespace=False
        )
        svc._check_domains_free(given, ("instance", f"{imp.namespace}/{imp.id}"))
        check_searchable(given)
    except (ValidationError, APIError) as exc:
        raise SnapshotError(f"{where}.{exc}") from None
    given["embedding_model"] = imp.embedder
    return given


# -- reading ----------------------------------------------------------------------------------


def read_snapshot(path: str | os.PathLike[str], *, limits: Limits | None = None) -> Snapshot:
    """Read and check a whole snapshot (see the module docstring for what is checked).

    Raises:
        SnapshotError: Naming the file, the member and what is wrong.
    """
    path = Path(path)
    limits = limits or Limits()
    try:
        zf = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise SnapshotError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SnapshotError(f"{path}: is a folder, not a snapshot file") from None
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        # NotImplementedError: a zip feature Python does not read (a later zip version)
        raise SnapshotError(f"{path}: not a snapshot (not a zip archive: {exc})") from None
    try:
        with zf:
            return _Reader(path, zf, limits).read()
    except SnapshotError:
        raise
    except (zipfile.BadZipFile, zlib_error(), EOFError, OSError, NotImplementedError) as exc:
        raise SnapshotError(f"{path}: the archive is damaged ({exc})") from None


def zlib_error() -> type[Exception]:
    """``zlib.error``, raised by a corrupt deflate stream."""
    import zlib

    return zlib.error


class _Reader:
    def __init__(self, path: Path, zf: zipfile.ZipFile, limits: Limits) -> None:
        self.path = path
        self.zf = zf
        self.limits = limits

    def fail(self, member: str, message: str) -> SnapshotError:
        return SnapshotError(f"{self.path}: {member}: {message}")

    def read(self) -> Snapshot:
        infos = self.zf.infolist()
        self._check_members(infos)
        if _MANIFEST not in {info.filename for info in infos}:
            raise self.fail("archive", f"no {_MANIFEST}: not an aisearch-local snapshot")
        manifest = self._json(_MANIFEST)
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise self.fail(_MANIFEST, f"not an aisearch-local snapshot (no format {FORMAT!r})")
        version = manifest.get("version")
        if version != VERSION:
            raise self.fail(
                _MANIFEST,
                f"format version {version!r}: this aisearch-local reads version {VERSION} "
                "(upgrade aisearch-py to read newer snapshots)",
            )
        listed = manifest.get("instances")
        if not isinstance(listed, list) or not all(isinstance(x, dict) for x in listed):
            raise self.fail(_MANIFEST, "instances must be a list of {namespace, id} objects")
        if len(listed) > self.limits.max_instances:
            raise self.fail(
                _MANIFEST, f"{len(listed)} instances (at most {self.limits.max_instances})"
            )
        expected = {_MANIFEST} | {
            f"instances/{n}/{part}" for n in range(len(listed)) for part in _PARTS
        }
        names = {info.filename for info in infos}
        if names != expected:
            extra = sorted(names - expected)
            missing = sorted(expected - names)
            what = f"unexpected member {extra[0]!r}" if extra else f"missing {missing[0]!r}"
            raise self.fail(
                "archive",
                f"{what} (a snapshot of {len(listed)} instance(s) holds exactly manifest.json "
                "and instances/<n>/instance.json, items.jsonl, embeddings.npy)",
            )
        instances = []
        for n, entry in enumerate(listed):
            imp = self._instance(f"instances/{n}/")
            if (entry.get("namespace"), entry.get("id")) != (imp.namespace, imp.id):
                raise self.fail(
                    _MANIFEST, f"instances[{n}] does not name instances/{n}/instance.json's"
                )
            instances.append(imp)
        return Snapshot(
            path=self.path,
            created_at=str(manifest.get("created_at", "")),
            created_by=str(manifest.get("created_by", "")),
            instances=instances,
        )

    def _check_members(self, infos: Sequence[zipfile.ZipInfo]) -> None:
        total = 0
        seen: set[str] = set()
        for info in infos:
            name = info.filename
            if name in seen:
                raise self.fail("archive", f"member {name!r} appears twice")
            seen.add(name)
            if info.flag_bits & 0x1:
                raise self.fail(name, "is encrypted")
            if info.flag_bits & 0x20:
                raise self.fail(name, "holds patched data (zip flag bit 5), which is not read")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise self.fail(name, "uses a compression other than stored or deflate")
            size = info.file_size
            if size > _MiB and size > self.limits.max_ratio * max(info.compress_size, 1):
                raise self.fail(
                    name,
                    f"expands {size // max(info.compress_size, 1)} times (at most "
                    f"{self.limits.max_ratio}): refused as a zip bomb",
                )
            total += size
        if total > self.limits.max_total_bytes:
            raise self.fail(
                "archive",
                f"expands to {total} bytes (at most {self.limits.max_total_bytes})",
            )

    def _open(self, name: str) -> IO[bytes]:
        return self.zf.open(name)

    def _json(self, name: str) -> Any:
        info = self.zf.getinfo(name)
        if info.file_size > self.limits.max_json_bytes:
            raise self.fail(
                name, f"is {info.file_size} bytes (at most {self.limits.max_json_bytes})"
            )
        with self._open(name) as fh:
            raw = fh.read(self.limits.max_json_bytes + 1)
        return self._loads(name, raw)

    def _loads(self, where: str, raw: bytes) -> Any:
        try:
            return loads_strict(raw, what="JSON")
        except ValidationError as exc:
            raise self.fail(where, str(exc)) from None

    def _instance(self, prefix: str) -> ImportedInstance:
        name = prefix + "instance.json"
        rec = self._json(name)
        if not isinstance(rec, dict):
            raise self.fail(name, "must be a JSON object")
        fields = _Fields(self, name, rec)
        ns = fields.ident("namespace")
        iid = fields.ident("id")
        description = fields.opt_str("namespace_description", 10_000)
        config = fields.get("config", dict)
        embedder = fields.get("embedder", dict)
        emb_fields = _Fields(self, f"{name}: embedder", embedder)
        emb_name = emb_fields.text("name", 1000)
        if not _PRINTABLE.fullmatch(emb_name):  # it is shown in messages, unquoted in a hint
            raise self.fail(name, "embedder.name must be printable ASCII without spaces")
        dim = emb_fields.count("dim", 1, 65_536)
        n_items = fields.count("items", 0, 1 << 40)
        n_chunks = fields.count("chunks", 0, 1 << 40)
        items = list(self._items(prefix + "items.jsonl", n_items))
        found = sum(len(it.chunks) for it in items)
        if found != n_chunks:
            raise self.fail(name, f"chunks is {n_chunks} but the items hold {found}")
        matrix = self._vectors(prefix + "embeddings.npy", n_chunks, dim)
        row = 0
        for it in items:
            it.embeddings = matrix[row : row + len(it.chunks)]
            row += len(it.chunks)
        return ImportedInstance(
            namespace=ns,
            id=iid,
            namespace_description=description,
            config=config,
            embedder=emb_name,
            dim=dim,
            created_at=fields.time("created_at"),
            modified_at=fields.time("modified_at"),
            items=items,
        )

    def _lines(self, name: str) -> Iterator[tuple[int, bytes]]:
        cap = self.limits.max_line_bytes
        with self._open(name) as fh:
            for n, line in enumerate(iter(lambda: fh.readline(cap + 1), b""), start=1):
                if len(line) > cap:
                    raise self.fail(f"{name} line {n}", f"is longer than {cap} bytes")
                yield n, line

    def _items(self, name: str, expected: int) -> Iterator[ImportedItem]:
        keys: set[str] = set()
        count = 0
        for n, line in self._lines(name):
            where = f"{name} line {n}"
            count += 1
            if count > expected:
                raise self.fail(name, f"holds more than the {expected} items instance.json says")
            value = self._loads(where, line)
            if not isinstance(value, dict):
                raise self.fail(where, "must be a JSON object (an item)")
            item = self._item(where, value)
            if item.key in keys:
                raise self.fail(where, f"key {item.key!r} appears twice")
            keys.add(item.key)
            yield item
        if count != expected:
            raise self.fail(name, f"holds {count} items but instance.json says {expected}")

    def _item(self, where: str, value: dict[str, Any]) -> ImportedItem:
        f = _Fields(self, where, value)
        try:
            key = validate_key(value.get("key"))
            metadata = validate_item_metadata(value.get("metadata"))
        except (ValidationError, APIError) as exc:
            raise self.fail(where, str(exc)) from None
        status = f.text("status", 32)
        if status not in _STATUSES:
            raise self.fail(where, f"status must be completed or error (got {status!r})")
        error = f.opt_str("error", 100_000)
        if (status == "error") != (error is not None):
            raise self.fail(where, "an item has an error exactly when its status is error")
        try:
            data = base64.b64decode(f.text("data", self.limits.max_line_bytes), validate=True)
        except ValueError:  # binascii.Error, or a character that is not ASCII
            raise self.fail(where, "data must be base64") from None
        checksum = f.text("checksum", 64)
        if hashlib.sha256(data).hexdigest() != checksum:
            raise self.fail(where, "checksum is not the SHA-256 of data")
        texts = f.get("chunk_text", list)
        starts = f.get("chunk_start", list)
        ends = f.get("chunk_end", list)
        if not len(texts) == len(starts) == len(ends):
            raise self.fail(where, "chunk_text, chunk_start and chunk_end differ in length")
        if status == "error" and texts:
            raise self.fail(where, "an item with status error has no chunks")
        chunks = []
        for i, (text, start, end) in enumerate(zip(texts, starts, ends, strict=True)):
            if not isinstance(text, str):
                raise self.fail(where, f"chunk_text[{i}] must be a string")
            if not (_is_int(start) and _is_int(end) and 0 <= start <= end <= len(data)):
                raise self.fail(
                    where,
                    f"chunk_start[{i}] and chunk_end[{i}] must be integers with "
                    f"0 <= start <= end <= {len(data)} (the data's size)",
                )
            chunks.append(NewChunk(text=text, start=start, end=end))
        ts = value.get("timestamp_ms")
        if ts is not None and not _is_int(ts):
            raise self.fail(where, "timestamp_ms must be an integer or null")
        return ImportedItem(
            key=key,
            status=status,
            error=error,
            checksum=checksum,
            metadata=metadata,
            timestamp_ms=ts,
            source_id=f.opt_str("source_id", 5000),
            created_at=f.time("created_at"),
            modified_at=f.time("modified_at"),
            data=data,
            chunks=chunks,
            embeddings=np.zeros((0, 0), dtype=np.float32),
        )

    def _vectors(self, name: str, rows: int, dim: int) -> np.ndarray:
        info = self.zf.getinfo(name)
        with self._open(name) as fh:
            try:
                major, minor = np.lib.format.read_magic(fh)
                if (major, minor) == (1, 0):
                    header = np.lib.format.read_array_header_1_0(fh)
                elif (major, minor) == (2, 0):
                    header = np.lib.format.read_array_header_2_0(fh)
                else:
                    raise ValueError(f"npy format version {major}.{minor}")
            except ValueError as exc:
                raise self.fail(name, f"not a .npy array ({exc})") from None
            shape, fortran, dtype = header
            if dtype != _NPY_DTYPE or fortran:
                raise self.fail(
                    name,
                    f"must hold little-endian float32 in C order (got {dtype.str}"
                    f"{', Fortran order' if fortran else ''})",
                )
            if tuple(shape) != (rows, dim):
                raise self.fail(
                    name,
                    f"shape {tuple(shape)} but the instance has {rows} chunks of dimension {dim}",
                )
            size = rows * dim * 4
            if info.file_size != fh.tell() + size:
                raise self.fail(
                    name, f"holds {info.file_size - fh.tell()} bytes of data, not {size}"
                )
            raw = fh.read(size)
        if len(raw) != size:
            raise self.fail(name, "is truncated")
        matrix = np.frombuffer(raw, dtype=_NPY_DTYPE).reshape(rows, dim).astype(np.float32)
        if not np.isfinite(matrix).all():
            bad = int(np.flatnonzero(~np.isfinite(matrix).all(axis=1))[0])
            raise self.fail(name, f"row {bad} holds NaN or infinity")
        norms = np.linalg.norm(matrix.astype(np.float64), axis=1)
        off = (np.abs(norms - 1) > _NORM_TOLERANCE) & (norms != 0)
        if off.any():
            bad = int(np.flatnonzero(off)[0])
            raise self.fail(
                name, f"row {bad} has norm {norms[bad]:.6g}: embeddings are unit vectors"
            )
        return matrix


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Fields:
    """Typed reads of one JSON object's fields, failing with the member and field names."""

    def __init__(self, reader: _Reader, where: str, obj: dict[str, Any]) -> None:
        self.reader = reader
        self.where = where
        self.obj = obj

    def get(self, key: str, kind: type) -> Any:
        value = self.obj.get(key)
        if not isinstance(value, kind):
            names: dict[type, str] = {dict: "an object", list: "a list", str: "a string"}
            want = names.get(kind, kind.__name__)
            raise self.reader.fail(self.where, f"{key} must be {want}")
        return value

    def text(self, key: str, limit: int) -> str:
        value: str = self.get(key, str)
        if len(value) > limit:
            raise self.reader.fail(self.where, f"{key} is longer than {limit} characters")
        return value

    def time(self, key: str) -> str:
        value = self.text(key, 64)
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise self.reader.fail(
                self.where, f"{key} must be an ISO 8601 time such as 2026-01-31T12:00:00.000Z"
            ) from None
        return value

    def opt_str(self, key: str, limit: int) -> str | None:
        return None if self.obj.get(key) is None else self.text(key, limit)

    def count(self, key: str, lo: int, hi: int) -> int:
        value = self.obj.get(key)
        if not (isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi):
            raise self.reader.fail(self.where, f"{key} must be an integer from {lo} to {hi}")
        return int(value)

    def ident(self, key: str) -> str:
        value = self.text(key, 64)
        if not (value and INSTANCE_ID_RE.fullmatch(value)):
            raise self.reader.fail(
                self.where,
                f"{key} {value!r} is not a valid id (lowercase letters, digits, '_' and single "
                "'-' between them)",
            )
        return value
