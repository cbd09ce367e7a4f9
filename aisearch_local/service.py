"""The local AI Search service: namespaces, instances, items, jobs and faults, without HTTP.

:class:`LocalService` owns the store, the embedder, the generator, the searcher, the chat cache
and the injected faults. The admin routes (:mod:`aisearch_local.routes_admin`) parse requests,
call it and shape responses; search and chat go through :class:`aisearch_local.query.QueryService`,
which wraps it; the CLI uses it directly for ``ingest`` and ``inspect``.
"""

from __future__ import annotations

import difflib
import logging
import os
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aisearch_local.ann import ANN_MIN_ROWS, AnnManager
from aisearch_local.ann import MODE_ENV as ANN_MODE_ENV
from aisearch_local.cache import ChatCache
from aisearch_local.embed import Embedder, make_embedder
from aisearch_local.errors import APIError, bad_request, not_found
from aisearch_local.generate import Generation, Generator, make_generator
from aisearch_local.guard import source_outside_roots
from aisearch_local.ingest import (
    MAX_CHUNK_SIZE,
    MIN_CHUNK_SIZE,
    IngestError,
    SourceFile,
    chunk_text,
    extract_text,
    scan_source_dir,
    size_problem,
)
from aisearch_local.public_params import FIELD as PUBLIC_PARAMS
from aisearch_local.public_params import apply_public_params, effective_params
from aisearch_local.records import ChunkRow, InstanceRecord, NewChunk, now_ms
from aisearch_local.sample_corpus import SAMPLE_CORPUS_DIR, iter_sample_documents
from aisearch_local.search import Searcher
from aisearch_local.shared import MemoryState, SharedState, State
from aisearch_local.store import Store
from aisearch_local.validation import (
    INSTANCE_ID_RE,
    check_searchable,
    checked_source_file,
    validate_instance_config,
)

__all__ = ["DEFAULT_MODEL", "Fault", "LocalService", "infer_type", "uses_ocr"]

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"


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


def _counted(fault: dict[str, Any]) -> bool:
    """Whether a fault with ``times`` counts a request (a status, malformed or truncated one)."""
    return bool(fault["status"] or fault["malformed_body"] or fault["truncate_stream"])


def _cooldown(wait: int) -> APIError:
    """429 / 7020 ``sync_in_cooldown``, ``Retry-After: wait``."""
    return APIError(429, 7020, "sync_in_cooldown", headers={"Retry-After": str(wait)}, result={})


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
        "indexing_options": {"keyword_tokenizer": "porter", "use_ocr": False},
        "retrieval_options": {"keyword_match_mode": "and", "boost_by": []},
        "custom_metadata": [],
        "metadata": {},
        "paused": False,
        "summarization": False,
        "sync_interval": 21600,
    }


class LocalService:
    """State and operations of one local AI Search server.

    Args:
        data_dir: Directory of the SQLite database, or None to keep it in memory (nothing is
            written to disk).
        embedder: An embedder spec (``"hashing"``, ``"wordllama"``, ``"openai:MODEL@URL"``) or
            an :class:`~aisearch_local.embed.Embedder` object.
        generator: A generator spec (``"extractive"``, ``"openai:MODEL@URL"``) or object.
        vector_search: ``auto`` (an HNSW graph for a dense embedder from ``ann_min_rows``
            rows), ``exact`` or ``ann`` (docs/local-server.md); None reads
            ``AISEARCH_LOCAL_VECTOR_SEARCH`` (default ``auto``).
        ann_min_rows: Rows from which ``auto`` uses the graph (None: ``ANN_MIN_ROWS``).
        keyword_engine: ``auto``, ``tantivy`` or ``fts5``: the keyword engine of ``porter``
            instances (docs/DEPS-keyword.md); None reads ``AISEARCH_LOCAL_KEYWORD_ENGINE``.
        state: Where the injected faults, the sync starts and the public endpoints' rate-limit
            counters are kept: a :class:`~aisearch_local.shared.SharedState` for ``serve
            --workers N``; None keeps them in this process (a new
            :class:`~aisearch_local.shared.MemoryState`).
    """

    def __init__(
        self,
        data_dir: Path | str | None,
        *,
        embedder: str | Embedder | None = None,
        generator: str | Generator | None = None,
        vector_search: str | None = None,
        ann_min_rows: int | None = None,
        keyword_engine: str | None = None,
        state: State | None = None,
    ) -> None:
        mode = vector_search or os.environ.get(ANN_MODE_ENV) or "auto"
        ann = AnnManager(
            None if data_dir is None else Path(data_dir) / "ann",
            mode=mode,
            min_rows=ANN_MIN_ROWS if ann_min_rows is None else ann_min_rows,
        )
        self.store = Store(data_dir, keyword_engine=keyword_engine)
        self.embedder: Embedder = (
            make_embedder(embedder) if embedder is None or isinstance(embedder, str) else embedder
        )
        self.generator: Generator = (
            make_generator(generator)
            if generator is None or isinstance(generator, str)
            else generator
        )
        self.searcher = Searcher(self.store, self.embedder, ann)
        self.cache: ChatCache[tuple[Generation, list[dict[str, Any]]]] = ChatCache()
        self.state: State = MemoryState() if state is None else state
        # folders that instances created over HTTP may index (None: any; see guard.py)
        self.source_roots: tuple[str, ...] | None = None
        # seconds between two sync jobs of one instance (Cloudflare: 30; 0 here by default)
        self.sync_cooldown_s: float = 0.0
        # refuse unknown instance fields and ai_search_options keys (``--strict``)
        self.strict: bool = False

    @property
    def shared(self) -> SharedState | None:
        """The state ``serve --workers`` processes share (None: it is this process's own).

        Read-only: the state is chosen when the service is built (``state=``).
        """
        return self.state if isinstance(self.state, SharedState) else None

    @property
    def faults(self) -> dict[tuple[str, str], Fault]:
        """The faults kept in this process, by ``(namespace, instance_id)`` (copies).

        Empty when they are in a :attr:`shared` state: :meth:`list_faults` lists them all.
        """
        if not isinstance(self.state, MemoryState):
            return {}
        return {(ns, iid): Fault(**f) for ns, iid, f in self.state.list_faults()}

    def close(self) -> None:
        """Save the HNSW graphs and close the store."""
        if self.searcher.ann is not None:  # not the graph of an instance deleted meanwhile
            try:
                live: list[InstanceRecord] | None = self.store.list_instances()
            except sqlite3.Error:  # closed already: as before, every graph that changed
                live = None
            self.searcher.ann.close(live)
        self.store.close()

    # -- faults (kept in ``self.state``) --------------------------------------------------

    def set_fault(self, namespace: str, instance_id: str, fault: Fault) -> None:
        """Install (replace) the fault of an instance."""
        self.state.set_fault(namespace, instance_id, fault.as_dict())

    def clear_fault(self, namespace: str, instance_id: str) -> None:
        """Remove the fault of an instance."""
        self.state.clear_fault(namespace, instance_id)

    def fault_of(self, namespace: str, instance_id: str) -> Fault | None:
        """Return a copy of the instance's fault (None: none installed), counting nothing."""
        values = self.state.fault_of(namespace, instance_id)
        return None if values is None else Fault(**values)

    def list_faults(self) -> list[tuple[str, str, Fault]]:
        """Every installed fault as ``(namespace, instance_id, fault)``, sorted by name."""
        return [(ns, iid, Fault(**f)) for ns, iid, f in self.state.list_faults()]

    def clear_faults(self) -> None:
        """Remove every fault."""
        self.state.clear_faults()

    def take_fault(self, namespace: str, instance_id: str) -> Fault | None:
        """Return the instance's fault for one request, counting down ``times``."""
        values = self.state.take_fault(namespace, instance_id, _counted)
        return None if values is None else Fault(**values)

    # -- namespaces -------------------------------------------------------------------------

    def namespaces(self) -> list[dict[str, Any]]:
        """Every namespace, in the wire format."""
        return self.store.list_namespaces()

    def create_namespace(
        self, name: str, description: str | None, extra: dict[str, Any]
    ) -> dict[str, Any]:
        """Create a namespace (409 / 7009 when it exists)."""
        apply_public_params(extra, None, namespace=True)
        self._check_domains_free(extra, ("namespace", name))
        created = self.store.create_namespace(name, description, extra)
        if created is None:
            raise APIError(409, 7009, f"namespace {name!r} already exists")
        return created

    def _check_domains_free(self, patch: dict[str, Any], owner: tuple[str, str]) -> None:
        """Refuse a custom domain another instance or namespace already serves (400 / 7001).

        ``owner`` is ``("instance", "<namespace>/<id>")`` or ``("namespace", "<name>")``: the
        object being written, whose own domains do not count.
        """
        params = patch.get(PUBLIC_PARAMS)
        wanted = params.get("custom_domains") if isinstance(params, dict) else None
        if not wanted:
            return
        taken: dict[str, tuple[str, str]] = {}
        for inst in self.store.list_instances():
            stored = effective_params(inst.config.get(PUBLIC_PARAMS), namespace=False)
            for domain in stored["custom_domains"]:
                taken[domain] = ("instance", f"{inst.namespace}/{inst.id}")
        for ns in self.namespaces():
            stored = effective_params(ns.get(PUBLIC_PARAMS), namespace=True)
            for domain in stored["custom_domains"]:
                taken[domain] = ("namespace", str(ns["name"]))
        for i, domain in enumerate(wanted):
            holder = taken.get(domain)
            if holder is not None and holder != owner:
                raise bad_request(
                    f"{PUBLIC_PARAMS}.custom_domains[{i}]",
                    f"{domain!r} is already a custom domain of {holder[0]} {holder[1]!r}",
                )

    def update_namespace(
        self, namespace: str, description: str | None, extra: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Update a namespace's description and extra fields (not the default's description).

        Returns:
            The namespace, or None when it no longer exists.
        """
        if namespace == "default" and description is not None:
            raise bad_request(
                "description", "the description of the default namespace cannot be changed"
            )
        names = {i.id for i in self.store.list_instances(namespace)}
        apply_public_params(
            extra, self.store.get_namespace(namespace), namespace=True, instances=names
        )
        self._check_domains_free(extra, ("namespace", namespace))
        return self.store.update_namespace(namespace, description, extra)

    def delete_namespace(self, namespace: str) -> dict[str, Any]:
        """Delete an empty namespace other than ``default``; return what it was."""
        found = self.require_namespace(namespace)
        if namespace == "default":
            raise bad_request("name", "the default namespace cannot be deleted")
        n = self.store.count_instances(namespace)
        if n:
            raise bad_request(
                "name", f"namespace {namespace!r} still holds {n} instance(s); delete them first"
            )
        self.store.delete_namespace(namespace)
        return found

    # -- lookups ----------------------------------------------------------------------------

    def require_namespace(self, namespace: str) -> dict[str, Any]:
        """Return a namespace or raise 404 / 7002."""
        ns = self.store.get_namespace(namespace)
        if ns is None:
            raise not_found(f"namespace {namespace!r} not found")
        return ns

    def require_instance(self, namespace: str, instance_id: str) -> InstanceRecord:
        """Return an instance or raise 404 / 7002."""
        found, inst = self.store.find_instance(namespace, instance_id)
        if not found:
            raise not_found(f"namespace {namespace!r} not found")
        if inst is None:
            raise not_found(self.unknown_instance(namespace, instance_id))
        return inst

    def unknown_instance(self, namespace: str, instance_id: str) -> str:
        """The message of a 404 for an instance: what was asked, and the closest existing ids.

        It names other instances of the namespace: only for callers who may list them (the
        authenticated routes), never a public endpoint (whose misses all read the same, by
        design) nor namespace search's per-instance errors.
        """
        ids = [inst.id for inst in self.store.list_instances(namespace)]
        near = difflib.get_close_matches(instance_id, ids, n=3, cutoff=0.6)
        hint = f" (did you mean {' or '.join(map(repr, near))}?)" if near else ""
        return f"instance {instance_id!r} not found in namespace {namespace!r}{hint}"

    def require_item(self, inst: InstanceRecord, item_id: str) -> dict[str, Any]:
        """Return an item of the instance or raise 404 / 7002."""
        return _found(self.store.get_item(inst, item_id), f"item {item_id!r}", inst)

    def require_job(self, inst: InstanceRecord, job_id: str) -> dict[str, Any]:
        """Return a job of the instance or raise 404 / 7002."""
        return _found(self.store.get_job(inst, job_id), f"job {job_id!r}", inst)

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
        if not 1 <= len(iid) <= 64:
            raise bad_request("id", "must be a string of 1 to 64 characters")
        if not INSTANCE_ID_RE.fullmatch(iid):
            raise bad_request(
                "id",
                f"must be lowercase letters, digits, '_' and single '-' between them (got {iid!r})",
            )
        given = apply_public_params(
            validate_instance_config(body, creating=True, strict=self.strict), None, namespace=False
        )
        self._check_domains_free(given, ("instance", f"{namespace}/{iid}"))
        defaults = _defaults(self.embedder)
        cfg = {**defaults, **given}
        cfg["indexing_options"] = {
            **defaults["indexing_options"],
            **(given.get("indexing_options") or {}),
        }
        if "type" not in body:
            cfg["type"] = infer_type(cfg.get("source"))
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
        patch = apply_public_params(
            validate_instance_config(body, creating=False, strict=self.strict),
            inst.config,
            namespace=False,
        )
        self._check_domains_free(patch, ("instance", f"{inst.namespace}/{inst.id}"))
        if isinstance(patch.get("indexing_options"), dict):  # members not sent are kept
            patch["indexing_options"] = {
                **(inst.config.get("indexing_options") or {}),
                **patch["indexing_options"],
            }
        cfg = {**inst.config, **patch}
        check_searchable(cfg)
        return self.store.update_instance(inst, cfg)

    def purge_cache(self, inst: InstanceRecord) -> None:
        """Orphan every similarity-cache entry of the instance (``POST .../purge_cache``).

        Cache entries are keyed on the instance's version (:meth:`Store.version`): a new
        version makes every earlier entry unreachable; the cache's LRU bound drops them later.
        """
        self.store.bump_version(inst.pk)

    def instances(self, namespace: str) -> list[InstanceRecord]:
        """The instances of a namespace, oldest first."""
        return self.store.list_instances(namespace)

    def delete_instance(self, inst: InstanceRecord) -> None:
        """Delete an instance, all its indexed data and its fault (blocking)."""
        self.store.delete_instance(inst)
        if self.searcher.ann is not None:
            self.searcher.ann.drop(inst)
        self.clear_fault(inst.namespace, inst.id)
        # a deleted instance leaves its namespace's public allowlist (API.md section 18.2)
        ns = self.store.get_namespace(inst.namespace) or {}
        params = ns.get(PUBLIC_PARAMS)
        allowed = params.get("instances_allowed") if isinstance(params, dict) else None
        if isinstance(params, dict) and isinstance(allowed, list) and inst.id in allowed:
            kept = [i for i in allowed if i != inst.id]
            self.store.update_namespace(
                inst.namespace, None, {PUBLIC_PARAMS: {**params, "instances_allowed": kept}}
            )

    def stats(self, inst: InstanceRecord) -> dict[str, Any]:
        """Item counts by status, chunk and payload totals, last activity."""
        return self.store.stats(inst)

    # -- items and jobs ---------------------------------------------------------------------

    def items(self, inst: InstanceRecord) -> list[dict[str, Any]]:
        """The items of an instance, by key."""
        return self.store.list_items(inst)

    def delete_item(self, inst: InstanceRecord, item: dict[str, Any]) -> None:
        """Delete an item and its chunks (blocking)."""
        self.store.delete_item(inst, item["_pk"])

    def item_chunks(
        self, inst: InstanceRecord, item: dict[str, Any], limit: int, offset: int
    ) -> list[ChunkRow]:
        """A page of an item's chunks, in order."""
        return self.store.item_chunks(inst, item["_pk"], limit, offset)

    def item_data(self, item: dict[str, Any]) -> bytes:
        """The stored bytes of an item (empty when none are kept)."""
        return self.store.item_data(item["_pk"]) or b""

    def jobs(self, inst: InstanceRecord) -> list[dict[str, Any]]:
        """The sync jobs of an instance, newest first."""
        return self.store.list_jobs(inst)

    def run_sync_job(self, inst: InstanceRecord, description: str | None) -> dict[str, Any]:
        """Run a sync job to its end (blocking); a failure ends the job, it is not raised.

        Raises:
            APIError: 429 / 7020 ``sync_in_cooldown`` (``result: {}``, ``Retry-After``) when
                the instance's last sync started less than ``sync_cooldown_s`` seconds ago.
        """
        self._check_cooldown(inst)
        job = self.store.create_job(inst, description)
        try:
            reason, log = self.sync_source(inst)
        except Exception as exc:  # a job failure is reported in the job, not as a 500
            logger.exception("sync job failed")
            reason, log = f"error: {exc}", []
        self.store.finish_job(inst, job["id"], reason, log)
        return self.store.get_job(inst, job["id"]) or job

    def _check_cooldown(self, inst: InstanceRecord) -> None:
        wait = self.state.start_sync(inst.pk, self.sync_cooldown_s)
        if wait is not None:
            raise _cooldown(wait)

    # -- ingestion --------------------------------------------------------------------------

    def _chunk(self, inst: InstanceRecord, text: str) -> list[NewChunk]:
        cfg = inst.config
        if cfg.get("chunk") is False:
            return [NewChunk(text=text, start=0, end=len(text))]
        # chunk_size is stored as sent (no documented bound); the local chunker counts words
        # and takes 16..4096 of them
        size = min(max(int(cfg.get("chunk_size", 256)), MIN_CHUNK_SIZE), MAX_CHUNK_SIZE)
        spans = chunk_text(text, size, int(cfg.get("chunk_overlap", 10)))
        return [NewChunk(text=s.text, start=s.start, end=s.end) for s in spans]

    def prepare(
        self, inst: InstanceRecord, key: str, data: bytes
    ) -> tuple[list[NewChunk], np.ndarray]:
        """Extract, chunk and embed a document (raises IngestError on bad input)."""
        problem = size_problem(key, len(data), use_ocr=uses_ocr(inst.config))
        if problem is not None:
            raise IngestError(problem)
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

    def reindex(self, inst: InstanceRecord, key: str) -> dict[str, Any]:
        """Re-index an item by key, from its source folder file or else its stored bytes.

        Raises:
            APIError: 404 / 7002 when neither exists.
        """
        existing = self.store.get_item_by_key(inst, key)
        if inst.source_dir:
            root = Path(inst.source_dir).resolve()
            path = (root / key).resolve()
            if path.is_relative_to(root) and path.is_file():
                for sf in self.iter_source_files(Path(inst.source_dir)):
                    if sf.key == key:
                        return self.index_document(
                            inst,
                            key=key,
                            data=sf.data,
                            metadata=sf.metadata,
                            timestamp_ms=sf.timestamp_ms,
                            source_id=f"local:{inst.source_dir}",
                            metadata_error=sf.metadata_error,
                        )
        if existing is None:
            raise not_found(f"item with key {key!r} not found in instance {inst.id!r}")
        data = self.store.item_data(existing["_pk"]) or b""
        return self.index_document(
            inst,
            key=key,
            data=data,
            metadata=existing["metadata"],
            timestamp_ms=existing.get("timestamp"),
            source_id=existing.get("source_id"),
        )

    def sync_source(
        self,
        inst: InstanceRecord,
        *,
        on_progress: Callable[[int, int, str], None] | None = None,
    ) -> tuple[str, list[dict[str, Any]]]:
        """Re-sync an instance from its source folder: new/changed files indexed, gone ones deleted.

        Files are written in batches (:func:`aisearch_local.bulk.sync_folder`: one embedding
        call and one transaction per batch); unchanged files are skipped.

        Returns:
            ``(end_reason, log)`` where log lines are ``{message, message_type}`` dicts.
        """
        from aisearch_local.bulk import sync_folder  # bulk builds on this module

        return sync_folder(self, inst, on_progress=on_progress)

    def iter_source_files(self, folder: Path) -> Iterable[SourceFile]:
        """Yield the documents of a folder (see :func:`aisearch_local.ingest.scan_source_dir`).

        The bundled sample corpus folder is also a Python package: its documents come from
        :func:`aisearch_local.sample_corpus.iter_sample_documents`, which skips the code.
        """
        if folder.resolve() == SAMPLE_CORPUS_DIR:
            return iter_sample_documents()
        return (checked_source_file(sf) for sf in scan_source_dir(folder))


def infer_type(source: object) -> str | None:
    """The ``type`` of an instance created without one (API.md 18.1).

    An http(s) ``source`` is a ``web-crawler``, any other source an ``r2`` bucket name (or,
    locally, a folder path), no source an upload-only instance (``None``).
    """
    if not isinstance(source, str) or not source:
        return None
    if source.lower().startswith(("http://", "https://")):
        return "web-crawler"
    return "r2"


def uses_ocr(config: dict[str, Any]) -> bool:
    """The instance's ``indexing_options.use_ocr`` (false when unset)."""
    io = config.get("indexing_options")
    return isinstance(io, dict) and io.get("use_ocr") is True


def _found(row: dict[str, Any] | None, what: str, inst: InstanceRecord) -> dict[str, Any]:
    if row is None:
        raise not_found(f"{what} not found in instance {inst.id!r}")
    return row
