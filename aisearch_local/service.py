"""The local AI Search service: everything the HTTP routes do, without HTTP.

:class:`LocalService` owns the store, the embedder, the generator, the searcher, the chat cache
and the injected faults. The routes in :mod:`aisearch_local.app` parse requests, call it and
shape responses; the CLI uses it directly for ``ingest`` and ``inspect``.
"""

from __future__ import annotations

import copy
import logging
import math
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aisearch_local.embed import Embedder, make_embedder
from aisearch_local.generate import Generator, make_generator
from aisearch_local.ingest import (
    MAX_FILE_BYTES,
    IngestError,
    SourceFile,
    chunk_text,
    extract_text,
    scan_source_dir,
)
from aisearch_local.jsonsafe import MAX_INT, JSONValueError, check_text, loads_strict, scrub_text
from aisearch_local.search import (
    ChatCache,
    OptionsError,
    Searcher,
    resolve_options,
)
from aisearch_local.store import InstanceRecord, NewChunk, Store, now_ms

__all__ = [
    "DEFAULT_MODEL",
    "APIError",
    "Fault",
    "LocalService",
    "bad_request",
    "not_found",
]

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
MAX_KEY_LENGTH = 128
INSTANCE_ID_RE = re.compile(r"^[a-z0-9_]+(?:-[a-z0-9_]+)*$")
NAMESPACE_RE = re.compile(r"^[a-z0-9_]+(?:-[a-z0-9_]+)*$")
RESERVED_FIELDS = frozenset({"timestamp", "folder", "filename"})
DATA_TYPES = ("text", "number", "boolean", "datetime")
SYNC_INTERVALS = (900, 1800, 3600, 7200, 14400, 21600, 43200, 86400)
CACHE_TTLS = (600, 1800, 3600, 7200, 21600, 43200, 86400, 172800, 259200, 518400)
CACHE_THRESHOLDS = ("super_strict_match", "close_enough", "flexible_friend", "anything_goes")


class APIError(Exception):
    """An error answered with the Cloudflare envelope.

    Args:
        status: HTTP status.
        code: Cloudflare error code (``errors[0].code``).
        message: Human-readable message naming the field or object.
        headers: Extra response headers (``Retry-After``...).
        error_chain: Optional nested errors (auth header errors).
    """

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        error_chain: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.error_chain = error_chain


def bad_request(field: str, message: str) -> APIError:
    """Return a 400 / 7001 validation error naming ``field``."""
    return APIError(400, 7001, f"{field}: {message}")


def not_found(message: str) -> APIError:
    """Return a 404 / 7002 error."""
    return APIError(404, 7002, message)


@dataclass
class Fault:
    """A fault injected on one instance's search and chat routes.

    Attributes:
        latency_ms: Delay added before answering.
        status: HTTP status to answer with instead (e.g. 429, 503); None for none.
        code: Cloudflare error code of that answer (default 7000 + status-specific).
        retry_after: ``Retry-After`` header value in seconds.
        truncate_stream: End SSE streams after the first delta, without ``[DONE]``.
        malformed_body: Answer 200 with a body that is not valid JSON.
        times: Apply the status/malformed fault this many times, then clear it (None: always).
    """

    latency_ms: int = 0
    status: int | None = None
    code: int | None = None
    retry_after: int | None = None
    truncate_stream: bool = False
    malformed_body: bool = False
    times: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the fault as a JSON-able dict."""
        return asdict(self)


def _defaults(embedder: Embedder) -> dict[str, Any]:
    return {
        "type": None,
        "source": None,
        "source_params": None,
        "token_id": None,
        "ai_gateway_id": None,
        "ai_search_model": DEFAULT_MODEL,
        "embedding_model": embedder.name,
        "rewrite_model": DEFAULT_MODEL,
        "reranking_model": "@cf/baai/bge-reranker-base",
        "rewrite_query": False,
        "reranking": False,
        "cache": True,
        "cache_threshold": "close_enough",
        "cache_ttl": 86400,
        "chunk": True,
        "chunk_size": 256,
        "chunk_overlap": 10,
        "max_num_results": 10,
        "score_threshold": 0.4,
        "fusion_method": "rrf",
        "hybrid_search_enabled": True,
        "index_method": {"vector": True, "keyword": True},
        "indexing_options": {"keyword_tokenizer": "porter"},
        "retrieval_options": {"keyword_match_mode": "and", "boost_by": []},
        "custom_metadata": [],
        "metadata": {},
        "paused": False,
        "summarization": False,
        "sync_interval": 21600,
    }


def _check(cond: bool, field: str, message: str) -> None:
    if not cond:
        raise bad_request(field, message)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


_STRING_FIELDS = (
    "source",
    "token_id",
    "ai_gateway_id",
    "ai_search_model",
    "embedding_model",
    "rewrite_model",
    "reranking_model",
    "summarization_model",
    "system_prompt_ai_search",
    "system_prompt_index_summarization",
    "system_prompt_rewrite_query",
)
_OBJECT_FIELDS = ("source_params", "metadata", "public_endpoint_params")
_BOOLEAN_FIELDS = (
    "chunk",
    "rewrite_query",
    "reranking",
    "cache",
    "hybrid_search_enabled",
    "paused",
    "summarization",
)


def check_searchable(config: dict[str, Any]) -> None:
    """Check that a complete instance configuration resolves into search options.

    Run on the merged configuration of every create and update, so a stored configuration can
    always be searched (``retrieval_options.boost_by`` entries, thresholds, enums).

    Raises:
        APIError: 400 / 7001 naming the configuration field.
    """
    try:
        resolve_options(None, config, path="")
    except OptionsError as exc:
        raise bad_request(exc.field.lstrip("."), str(exc).partition(": ")[2]) from None


def validate_instance_config(body: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    """Validate the configuration fields of an instance create/update body (API.md section 10).

    Unknown fields are kept (the API grows); documented ones are checked.

    Raises:
        APIError: 400 / 7001 naming the field and the allowed values.
    """
    cfg = dict(body)
    cfg.pop("id", None)
    if not creating:
        for name in ("type", "hybrid_search_enabled"):
            cfg.pop(name, None)
    t = cfg.get("type")
    _check(t in (None, "r2", "web-crawler"), "type", "must be r2, web-crawler or null")
    for names, kind, label in (
        (_STRING_FIELDS, str, "a string"),
        (_OBJECT_FIELDS, dict, "an object"),
    ):
        for name in names:
            if cfg.get(name) is not None:
                _check(
                    isinstance(cfg[name], kind),
                    name,
                    f"must be {label} or null (got {_json_type(cfg[name])})",
                )
    for name in _BOOLEAN_FIELDS:
        if name in cfg:
            _check(isinstance(cfg[name], bool), name, f"must be a boolean (got {cfg[name]!r})")
    if "chunk_size" in cfg:
        v = cfg["chunk_size"]
        _check(
            _is_int(v) and 16 <= v <= 4096,
            "chunk_size",
            f"must be an integer between 16 and 4096 (got {v!r})",
        )
    if "chunk_overlap" in cfg:
        v = cfg["chunk_overlap"]
        _check(
            _is_int(v) and 0 <= v <= 30,
            "chunk_overlap",
            f"must be an integer between 0 and 30 (got {v!r})",
        )
    if "max_num_results" in cfg:
        v = cfg["max_num_results"]
        _check(
            _is_int(v) and 1 <= v <= 50,
            "max_num_results",
            f"must be an integer between 1 and 50 (got {v!r})",
        )
    if "score_threshold" in cfg:
        v = cfg["score_threshold"]
        _check(
            _is_num(v) and 0 <= v <= 1,
            "score_threshold",
            f"must be a number between 0 and 1 (got {v!r})",
        )
    if "fusion_method" in cfg:
        _check(cfg["fusion_method"] in ("rrf", "max"), "fusion_method", "must be rrf or max")
    if "cache_threshold" in cfg:
        _check(
            cfg["cache_threshold"] in CACHE_THRESHOLDS,
            "cache_threshold",
            f"must be one of {', '.join(CACHE_THRESHOLDS)}",
        )
    if "cache_ttl" in cfg:
        _check(cfg["cache_ttl"] in CACHE_TTLS, "cache_ttl", f"must be one of {CACHE_TTLS}")
    if "sync_interval" in cfg:
        _check(
            cfg["sync_interval"] in SYNC_INTERVALS,
            "sync_interval",
            f"must be one of {SYNC_INTERVALS}",
        )
    if cfg.get("index_method") is not None:
        im = cfg["index_method"]
        _check(isinstance(im, dict), "index_method", "must be an object {vector, keyword}")
        vec, kw = im.get("vector", True), im.get("keyword", True)
        _check(isinstance(vec, bool), "index_method.vector", "must be a boolean")
        _check(isinstance(kw, bool), "index_method.keyword", "must be a boolean")
        _check(vec or kw, "index_method", "at least one of vector and keyword must be true")
        cfg["index_method"] = {"vector": vec, "keyword": kw}
    elif "hybrid_search_enabled" in cfg and creating:
        cfg["index_method"] = {"vector": True, "keyword": bool(cfg["hybrid_search_enabled"])}
    if cfg.get("indexing_options") is not None:
        io = cfg["indexing_options"]
        _check(isinstance(io, dict), "indexing_options", "must be an object")
        tok = io.get("keyword_tokenizer", "porter")
        _check(
            tok in ("porter", "trigram"),
            "indexing_options.keyword_tokenizer",
            "must be porter or trigram",
        )
    if cfg.get("retrieval_options") is not None:
        ro = cfg["retrieval_options"]
        _check(isinstance(ro, dict), "retrieval_options", "must be an object")
        km = ro.get("keyword_match_mode")
        if km is not None:
            if isinstance(km, str):
                km = {"exact_match": "and", "fuzzy_match": "or"}.get(km, km)
            _check(km in ("and", "or"), "retrieval_options.keyword_match_mode", "must be and or or")
            ro = {**ro, "keyword_match_mode": km}
            cfg["retrieval_options"] = ro
        bb = ro.get("boost_by")
        if bb is not None:
            _check(
                isinstance(bb, list) and len(bb) <= 3,
                "retrieval_options.boost_by",
                "must be a list of at most 3 entries",
            )
    if cfg.get("custom_metadata") is not None:
        cm = cfg["custom_metadata"]
        _check(
            isinstance(cm, list) and len(cm) <= 5,
            "custom_metadata",
            "must be a list of at most 5 fields",
        )
        seen: set[str] = set()
        for i, entry in enumerate(cm):
            path = f"custom_metadata[{i}]"
            _check(isinstance(entry, dict), path, "must be an object {field_name, data_type}")
            name = entry.get("field_name")
            _check(
                isinstance(name, str) and 1 <= len(name) <= 64,
                f"{path}.field_name",
                "must be a string of 1 to 64 characters",
            )
            _check(
                name.lower() not in RESERVED_FIELDS,
                f"{path}.field_name",
                f"{name!r} is reserved (timestamp, folder, filename)",
            )
            _check(name.lower() not in seen, f"{path}.field_name", f"duplicate field {name!r}")
            seen.add(name.lower())
            _check(
                entry.get("data_type") in DATA_TYPES,
                f"{path}.data_type",
                f"must be one of {', '.join(DATA_TYPES)}",
            )
    return cfg


def validate_item_metadata(raw: Any, field: str = "metadata") -> dict[str, Any]:
    """Validate custom item metadata: an object of strings (<= 500 chars), numbers, booleans.

    Field names are 1 to 64 characters; numbers are finite and integers within +-(2^53 - 1);
    strings are valid Unicode (no lone surrogate). Everything accepted can be stored and served
    back as JSON.
    """
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise bad_request(field, "must be a JSON object of string, number or boolean values")
    for k, v in raw.items():
        path = f"{field}.{k}"
        if not isinstance(k, str) or not 1 <= len(k) <= 64 or not _encodable(k):
            raise bad_request(path, "field names must be strings of 1 to 64 characters")
        if not isinstance(v, (str, int, float, bool)):
            raise bad_request(path, f"must be a string, number or boolean (got {_json_type(v)})")
        if isinstance(v, float) and not math.isfinite(v):
            raise bad_request(path, "must be a finite number")
        if isinstance(v, int) and not isinstance(v, bool) and abs(v) > MAX_INT:
            raise bad_request(path, f"integers must be between -{MAX_INT} and {MAX_INT}")
        if isinstance(v, str):
            if len(v) > 500:
                raise bad_request(path, f"text values are limited to 500 characters (got {len(v)})")
            if not _encodable(v):
                raise bad_request(path, "contains a lone UTF-16 surrogate")
    return dict(raw)


def _encodable(text: str) -> bool:
    try:
        check_text(text, "")
    except JSONValueError:
        return False
    return True


_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def validate_key(key: Any, field: str = "key") -> str:
    """Validate an item key: 1 to 128 characters, a relative POSIX path without dot segments.

    Refused: control characters, lone surrogates, a leading ``/``, and ``.`` or ``..`` as a
    path segment (a key names a file under an instance's source folder, never outside it).

    Raises:
        APIError: 400 / 7001 naming ``field``.
    """
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_LENGTH:
        n = len(key) if isinstance(key, str) else _json_type(key)
        raise bad_request(field, f"must be a string of 1 to {MAX_KEY_LENGTH} characters (got {n})")
    if _CONTROL_RE.search(key) or not _encodable(key):
        raise bad_request(field, "must not contain control characters or lone surrogates")
    if key.startswith("/") or any(part in (".", "..") for part in key.split("/")):
        raise bad_request(
            field, f"must be a relative path without '.' or '..' segments (got {key!r})"
        )
    return key


def _checked_source_file(sf: SourceFile) -> SourceFile:
    """Apply the upload rules to a source file's key and sidecar metadata (errors: the item's)."""
    if not _encodable(sf.key):  # a file name that is not valid UTF-8 (surrogate-escaped)
        sf.key = scrub_text(sf.key)
        sf.metadata, sf.metadata_error = {}, f"{sf.key}: the file name is not valid UTF-8"
    if sf.metadata_error is not None:
        return sf
    try:
        validate_key(sf.key)
        sf.metadata = validate_item_metadata(sf.metadata)
    except APIError as exc:
        sf.metadata = {}
        sf.metadata_error = f"{sf.key}: {exc.message}"
    return sf


class LocalService:
    """State and operations of one local AI Search server.

    Args:
        data_dir: Directory of the SQLite database.
        embedder: An embedder spec (``"hashing"``, ``"wordllama"``, ``"openai:MODEL@URL"``) or
            an :class:`~aisearch_local.embed.Embedder` object.
        generator: A generator spec (``"extractive"``, ``"openai:MODEL@URL"``) or object.
    """

    def __init__(
        self,
        data_dir: Path | str,
        *,
        embedder: str | Embedder | None = None,
        generator: str | Generator | None = None,
    ) -> None:
        self.store = Store(data_dir)
        self.embedder: Embedder = (
            make_embedder(embedder) if embedder is None or isinstance(embedder, str) else embedder
        )
        self.generator: Generator = (
            make_generator(generator)
            if generator is None or isinstance(generator, str)
            else generator
        )
        self.searcher = Searcher(self.store, self.embedder)
        self.cache = ChatCache()
        self.faults: dict[tuple[str, str], Fault] = {}
        self._fault_lock = threading.Lock()
        # folders that instances created over HTTP may index (None: any; see guard.py)
        self.source_roots: tuple[str, ...] | None = None

    def close(self) -> None:
        """Close the store."""
        self.store.close()

    # -- faults -----------------------------------------------------------------------------

    def set_fault(self, namespace: str, instance_id: str, fault: Fault) -> None:
        """Install (replace) the fault of an instance."""
        with self._fault_lock:
            self.faults[(namespace, instance_id)] = fault

    def clear_fault(self, namespace: str, instance_id: str) -> None:
        """Remove the fault of an instance."""
        with self._fault_lock:
            self.faults.pop((namespace, instance_id), None)

    def clear_faults(self) -> None:
        """Remove every fault."""
        with self._fault_lock:
            self.faults.clear()

    def take_fault(self, namespace: str, instance_id: str) -> Fault | None:
        """Return the instance's fault for one request, counting down ``times``."""
        with self._fault_lock:
            fault = self.faults.get((namespace, instance_id))
            if fault is None:
                return None
            if fault.times is not None and (
                fault.status or fault.malformed_body or fault.truncate_stream
            ):
                fault.times -= 1
                if fault.times <= 0:
                    del self.faults[(namespace, instance_id)]
            return copy.copy(fault)

    # -- lookups ----------------------------------------------------------------------------

    def require_namespace(self, namespace: str) -> dict[str, Any]:
        """Return a namespace or raise 404 / 7002."""
        ns = self.store.get_namespace(namespace)
        if ns is None:
            raise not_found(f"namespace {namespace!r} not found")
        return ns

    def require_instance(self, namespace: str, instance_id: str) -> InstanceRecord:
        """Return an instance or raise 404 / 7002."""
        self.require_namespace(namespace)
        inst = self.store.get_instance(namespace, instance_id)
        if inst is None:
            raise not_found(f"instance {instance_id!r} not found in namespace {namespace!r}")
        return inst

    def check_embedder(self, inst: InstanceRecord) -> None:
        """Raise a clear error when the instance was indexed with another embedder."""
        if inst.embedder != self.embedder.name:
            raise APIError(
                400,
                7030,
                f"instance {inst.id!r} was indexed with embedder {inst.embedder!r} but this "
                f"server runs {self.embedder.name!r}; restart aisearch-local with the same "
                "--embedder, or delete and re-create the instance to re-index it",
            )

    # -- instances --------------------------------------------------------------------------

    def instance_dict(self, inst: InstanceRecord) -> dict[str, Any]:
        """Return an instance in the wire format of read/list."""
        out: dict[str, Any] = {"id": inst.id}
        out.update(inst.config)
        out.update(
            {
                "namespace": inst.namespace,
                "created_at": inst.created_at,
                "modified_at": inst.modified_at,
                "created_by": "aisearch-local",
                "modified_by": "aisearch-local",
                "enable": True,
                "status": "active",
                "engine_version": 2,
                "local_embedder": inst.embedder,
            }
        )
        if inst.source_dir:
            out["local_source_dir"] = inst.source_dir
        return out

    def create_instance(
        self, namespace: str, body: dict[str, Any], *, source_dir: str | None = None
    ) -> InstanceRecord:
        """Validate a create body and create the instance (409 when it exists)."""
        self.require_namespace(namespace)
        iid = body.get("id")
        if not isinstance(iid, str):
            raise bad_request("id", "is required: a string of 1 to 64 characters")
        _check(
            isinstance(iid, str) and 1 <= len(iid) <= 64,
            "id",
            "must be a string of 1 to 64 characters",
        )
        _check(
            bool(INSTANCE_ID_RE.fullmatch(iid)),
            "id",
            f"must be lowercase letters, digits, '_' and single '-' between them (got {iid!r})",
        )
        cfg = {**_defaults(self.embedder), **validate_instance_config(body, creating=True)}
        check_searchable(cfg)
        src = cfg.get("source")
        try:
            source_dir = self._source_folder(cfg, src, source_dir)
        except (OSError, ValueError) as exc:  # NUL byte, name too long, ...: not a folder path
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise bad_request("source", f"is not a usable folder path ({reason})") from None
        inst = self.store.create_instance(
            namespace,
            iid,
            cfg,
            embedder=self.embedder.name,
            dim=self.embedder.dim,
            source_dir=source_dir,
        )
        if inst is None:
            raise APIError(409, 7009, f"instance {iid!r} already exists in namespace {namespace!r}")
        return inst

    def _source_folder(self, cfg: dict[str, Any], src: Any, source_dir: str | None) -> str | None:
        """Return the folder an instance indexes: ``source_dir`` or its ``source`` path.

        Raises:
            APIError: 400 naming ``source`` when the folder lies outside the source roots.
            OSError: ``source`` cannot be resolved (e.g. a name too long).
            ValueError: ``source`` holds a NUL byte.
        """
        if isinstance(src, str) and "\x00" in src:
            raise ValueError("embedded null byte")  # never a folder, nor a bucket name
        if (
            source_dir is None
            and self.source_roots is not None
            and cfg.get("type") in (None, "r2")
            and isinstance(src, str)
            and Path(src).is_absolute()
        ):
            from aisearch_local.guard import source_outside_roots

            refusal = source_outside_roots(src, self.source_roots)
            if refusal is not None:
                raise bad_request("source", refusal)
        # local stand-in for an R2 bucket: `source` is an absolute path to an existing folder
        if (
            source_dir is None
            and cfg.get("type") in (None, "r2")
            and isinstance(src, str)
            and Path(src).is_absolute()
            and Path(src).is_dir()
        ):
            source_dir = str(Path(src).resolve())
        return source_dir

    def update_instance(self, inst: InstanceRecord, body: dict[str, Any]) -> InstanceRecord:
        """Merge a partial update into the instance configuration."""
        patch = validate_instance_config(body, creating=False)
        cfg = {**inst.config, **patch}
        check_searchable(cfg)
        return self.store.update_instance(inst, cfg)

    # -- ingestion --------------------------------------------------------------------------

    def _chunk(self, inst: InstanceRecord, text: str) -> list[NewChunk]:
        cfg = inst.config
        if cfg.get("chunk") is False:
            return [NewChunk(text=text, start=0, end=len(text))]
        spans = chunk_text(text, int(cfg.get("chunk_size", 256)), int(cfg.get("chunk_overlap", 10)))
        return [NewChunk(text=s.text, start=s.start, end=s.end) for s in spans]

    def prepare(
        self, inst: InstanceRecord, key: str, data: bytes
    ) -> tuple[list[NewChunk], np.ndarray]:
        """Extract, chunk and embed a document (raises IngestError on bad input)."""
        if len(data) > MAX_FILE_BYTES:
            raise IngestError(f"{key}: file is larger than the {MAX_FILE_BYTES} byte (4 MB) limit")
        text = extract_text(key, data)
        chunks = self._chunk(inst, text)
        if not chunks:
            raise IngestError(f"{key}: the document has no text to index")
        emb = np.asarray(self.embedder.embed([c.text for c in chunks]), dtype=np.float32)
        return chunks, emb

    def index_document(
        self,
        inst: InstanceRecord,
        *,
        key: str,
        data: bytes,
        metadata: dict[str, Any],
        timestamp_ms: int | None = None,
        source_id: str | None = "builtin",
        metadata_error: str | None = None,
    ) -> dict[str, Any]:
        """Index one document atomically; a bad document becomes an item with status error."""
        self.check_embedder(inst)
        ts = timestamp_ms if timestamp_ms is not None else now_ms()
        error: str | None = metadata_error
        chunks: list[NewChunk] = []
        emb: np.ndarray | None = None
        if error is None:
            try:
                chunks, emb = self.prepare(inst, key, data)
            except IngestError as exc:
                error = str(exc)
        return self.store.write_item(
            inst,
            key=key,
            data=data,
            metadata=metadata,
            timestamp_ms=ts,
            source_id=source_id,
            chunks=chunks,
            embeddings=emb,
            error=error,
        )

    def sync_source(
        self,
        inst: InstanceRecord,
        *,
        on_progress: Callable[[int, int, str], None] | None = None,
    ) -> tuple[str, list[dict[str, Any]]]:
        """Re-sync an instance from its source folder: new/changed files indexed, gone ones deleted.

        Returns:
            ``(end_reason, log)`` where log lines are ``{message, created_at}``-like dicts.
        """
        import hashlib

        if not inst.source_dir:
            return "no source folder configured; nothing to sync", []
        source_id = f"local:{inst.source_dir}"
        files = list(self.iter_source_files(Path(inst.source_dir)))
        existing = {it["key"]: it for it in self.store.list_items(inst)}
        log: list[dict[str, Any]] = []
        indexed = errors = unchanged = 0
        for n, sf in enumerate(files, start=1):
            old = existing.pop(sf.key, None)
            checksum = hashlib.sha256(sf.data).hexdigest()
            if (
                old is not None
                and old["checksum"] == checksum
                and old["metadata"] == sf.metadata
                and old["status"] == "completed"
            ):
                unchanged += 1
            else:
                item = self.index_document(
                    inst,
                    key=sf.key,
                    data=sf.data,
                    metadata=sf.metadata,
                    timestamp_ms=sf.timestamp_ms,
                    source_id=source_id,
                    metadata_error=sf.metadata_error,
                )
                if item["status"] == "error":
                    errors += 1
                    message = str(item.get("error"))
                    if not message.startswith(f"{sf.key}:"):  # ingest errors name the key
                        message = f"{sf.key}: {message}"
                    log.append({"message": message, "message_type": 2})
                else:
                    indexed += 1
                    log.append(
                        {
                            "message": f"{sf.key}: indexed {item['chunks_count']} chunks",
                            "message_type": 1,
                        }
                    )
            if on_progress:
                on_progress(n, len(files), sf.key)
        removed = 0
        for key, old in existing.items():
            if old.get("source_id") == source_id:
                self.store.delete_item(inst, old["_pk"])
                removed += 1
                log.append(
                    {
                        "message": f"{key}: removed (no longer in the source folder)",
                        "message_type": 1,
                    }
                )
        reason = (
            f"completed: {indexed} indexed, {unchanged} unchanged, "
            f"{removed} removed, {errors} errors"
        )
        return reason, log

    def iter_source_files(self, folder: Path) -> Iterable[SourceFile]:
        """Yield the documents of a folder (see :func:`aisearch_local.ingest.scan_source_dir`).

        The bundled sample corpus folder is also a Python package: its documents come from
        :func:`aisearch_local.sample_corpus.iter_sample_documents`, which skips the code.
        """
        from aisearch_local.sample_corpus import SAMPLE_CORPUS_DIR, iter_sample_documents

        if folder.resolve() == SAMPLE_CORPUS_DIR:
            return iter_sample_documents()
        return (_checked_source_file(sf) for sf in scan_source_dir(folder))

    def options_error(self, exc: OptionsError) -> APIError:
        """Turn an options validation error into a 400 / 7001 API error."""
        return APIError(400, 7001, str(exc))


def parse_json(raw: bytes | str, what: str = "request body") -> Any:
    """Parse JSON with :func:`aisearch_local.jsonsafe.loads_strict` or raise 400 / 7001.

    The error names the path of the refused value: bare for a request body (``query``), under
    ``what`` otherwise (``metadata.note``).
    """
    try:
        return loads_strict(raw, what=what, prefix="" if what == "request body" else what)
    except JSONValueError as exc:
        raise bad_request(exc.field, exc.message) from None


def parse_json_object(raw: bytes, what: str = "request body") -> dict[str, Any]:
    """Parse a JSON object body (strictly, see :func:`parse_json`) or raise 400 / 7001."""
    if not raw.strip():
        raise bad_request(what, "must be a JSON object (got an empty body)")
    value = parse_json(raw, what)
    if not isinstance(value, dict):
        raise bad_request(what, f"must be a JSON object (got {_json_type(value)})")
    return value


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
