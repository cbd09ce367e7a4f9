"""Search and chat orchestration: what the query routes do, without HTTP.

:class:`QueryService` wraps a :class:`~aisearch_local.service.LocalService` and runs one request:
options resolved per instance, query rewrite, retrieval (``return_on_failure``), the namespace
fan-out with per-instance errors, injected faults, the chat model, the similarity cache and
generation. The routes in :mod:`aisearch_local.routes_query` parse bodies into
:mod:`aisearch_local.models` and shape the answers (envelope, completion, SSE).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import queue
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aisearch_local.embed import HashingEmbedder, WordLlamaEmbedder
from aisearch_local.errors import APIError, ValidationError, bad_request
from aisearch_local.filters import compile_filter, compile_legacy_filter
from aisearch_local.generate import Generation, word_pieces
from aisearch_local.models import ChatRequest, ChatSettings, SearchRequest
from aisearch_local.nowait import WouldWait, no_waiting
from aisearch_local.options import OptionsResolver, ResolvedOptions, resolve_options
from aisearch_local.records import InstanceRecord, item_attributes
from aisearch_local.search import CPU_SLOTS
from aisearch_local.service import DEFAULT_MODEL, Fault, LocalService
from aisearch_local.text import message_text, rewrite_query
from aisearch_local.validation import parse_json_object

__all__ = [
    "IMAGE_QUERY_CODE",
    "ChatPlan",
    "QueryService",
    "Retrieval",
    "check_image_query",
    "fault_error",
]

logger = logging.getLogger("aisearch_local.app")

Chunks = list[dict[str, Any]]
T = TypeVar("T")


class Threads:
    """Threads that run calls for the event loop: one hop there, one back, nothing more.

    ``loop.run_in_executor`` on a ``ThreadPoolExecutor`` builds a ``concurrent.futures.Future``
    (a ``Condition``), takes the executor's locks and chains it to an asyncio future: under
    16 clients that was about a fifth of the event loop's time on a no-hit search
    (docs/request-path.md). Here a call is a tuple on a ``SimpleQueue`` and its outcome comes
    back in one ``call_soon_threadsafe``. Threads start on demand, up to ``size``, and are kept
    (each keeps its SQLite reader open); they are daemons, as nothing runs on them once the
    server has answered its last request.

    Args:
        size: The most threads that run calls at once.
        name: The threads' name prefix.
    """

    def __init__(self, size: int, name: str) -> None:
        self.size = size
        self._name = name
        self._calls: queue.SimpleQueue[_Call] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0  # threads waiting for a call that no call has claimed yet

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on one of the threads; the event loop serves others meanwhile.

        A call whose awaiting task was cancelled before a thread took it is not run.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            if self._idle:
                self._idle -= 1
                name = None
            elif self._threads < self.size:
                self._threads += 1
                name = f"{self._name}_{self._threads}"
            else:
                name = None  # all busy: the call waits for the first free thread
        if name is not None:
            try:
                threading.Thread(target=self._work, name=name, daemon=True).start()
            except BaseException:
                with self._lock:
                    self._threads -= 1
                raise
        self._calls.put((loop, future, fn, args))
        return await future

    def _work(self) -> None:
        while True:
            loop, future, fn, args = self._calls.get()
            if not future.cancelled():
                try:
                    outcome: tuple[Any, BaseException | None] = (fn(*args), None)
                except BaseException as exc:  # handed to the awaiting task, as an executor does
                    outcome = (None, exc)
                with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits for it
                    loop.call_soon_threadsafe(_settle, future, *outcome)
                del outcome
            del loop, future, fn, args  # no reference kept while waiting for the next call
            with self._lock:
                self._idle += 1


_Call = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]


def _settle(future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if future.cancelled():
        return
    if isinstance(exc, StopIteration):  # a future refuses it (TypeError): the call would hang
        err = RuntimeError(f"StopIteration raised on a search thread: {exc!r}")
        err.__cause__ = exc
        exc = err
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


# The searches' threads. With an embedder in this process (hashing, wordllama) a search is all
# CPU, mostly under the GIL: as many threads as searches may compute at once (CPU_SLOTS), so
# that the others wait in the queue instead of taking turns at the GIL (16 clients on 100k
# chunks: 250 req/s with 40 threads, 430-470 with one; docs/request-path.md). An upstream
# embedder's round trip is a wait, not CPU: then as many threads as anyio's default limit, and
# the search takes a CPU slot after its query is embedded (Searcher.search).
_CPU_THREADS = Threads(CPU_SLOTS, "aisearch-local-search")
_WAIT_THREADS = Threads(40, "aisearch-local-search")
_LOCAL_EMBEDDERS = (HashingEmbedder, WordLlamaEmbedder)

HEAVY_SIZE = 16_384
"""A search whose query, filters and options hold more characters than this (or whose body
has more bytes) may take long (a 1 MB query took 5 s on 2,000 chunks): it runs on the
40 threads, without a CPU slot, taking turns at the GIL with the other searches instead of
holding every one of them up. No limit is documented for the query (API.md), so none is set."""


INLINE_MAX_SIZE = 4_096
"""The most characters (query and options; bytes of a body) of a search that may run on the
event loop (:meth:`QueryService.search_instance`): a search's cost grows with its input."""


def is_heavy(req: SearchRequest, size: int = HEAVY_SIZE) -> bool:
    """Whether ``req`` holds more than ``size`` characters (query and options)."""
    budget = size - len(req.query)
    stack: list[Any] = [req.raw_options]
    while stack and budget >= 0:
        value = stack.pop()
        budget -= 1
        if isinstance(value, str):
            budget -= len(value)
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return budget < 0


async def _off_loop(pool: Threads, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` on ``pool``; the event loop serves other requests meanwhile."""
    return await pool.run(fn, *args)


class _Turns:
    """One search computing at a time per event loop, on it or on the search thread.

    With an embedder in the process, a search either runs on the event loop (cheap, nothing
    to wait for) or on the search thread. While one runs on the thread, the next waits here
    for its turn, asleep, instead of queueing behind it on the thread: queued there, every
    later search would find the thread busy and queue too, and the searches would never come
    back to the event loop.
    """

    def __init__(self) -> None:
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def get(self) -> asyncio.Lock:
        """The running event loop's turn (an ``asyncio.Lock`` is bound to one loop)."""
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock


_TURNS = _Turns()


@dataclass
class Retrieval:
    """The result of a search over one instance or several.

    Attributes:
        query: The query actually searched (after rewriting).
        query_kind: ``text``, ``image`` or ``multimodal`` (the parts of the query message).
        chunks: The chunks, best first (with ``instance_id`` when several instances).
        options: The resolved options (of the first searched instance for a namespace).
        errors: Per-instance failures of a namespace search (None for one instance).
        instances: The instances that answered.
    """

    query: str
    chunks: Chunks
    options: ResolvedOptions
    errors: list[dict[str, str]] | None = None
    instances: list[InstanceRecord] = field(default_factory=list)
    query_kind: str = "text"


@dataclass
class ChatPlan:
    """Everything needed to answer a chat once the chunks are known.

    Attributes:
        model: The model named in the answer.
        messages: The conversation.
        chunks: The chunks to answer from (a cache hit brings its own).
        errors: Per-instance failures of a namespace chat (None for one instance).
        settings: ``max_tokens``, ``stop``, ``stream``.
        cached: The cached answer, or None.
        headers: ``cf-aig-cache-status`` when the cache is on.
        remember: Stores a fresh answer in the cache (a no-op when it must not).
    """

    model: str
    messages: list[dict[str, Any]]
    chunks: Chunks
    errors: list[dict[str, str]] | None
    settings: ChatSettings
    cached: Generation | None
    headers: dict[str, str]
    remember: Callable[[Generation], None]


IMAGE_QUERY_CODE = 7089
"""The code of an image query the instance cannot search (API.md 18.1)."""


def check_image_query(req: SearchRequest, opts: ResolvedOptions) -> None:
    """Refuse (400 / 7089) an image query that this server cannot search.

    The local embedders take text only, so a vector or hybrid search of a query with an
    image answers as the real service does without an image-capable embedding model. Keyword
    retrieval searches the text parts of a ``multimodal`` query (a local choice); an
    ``image``-only query has nothing to search by keyword.
    """
    if not req.images:
        return
    if opts.retrieval_type != "keyword":
        hint = (
            "; retrieval_type 'keyword' searches its text parts"
            if req.query_kind == "multimodal"
            else ""
        )
        raise APIError(
            400,
            IMAGE_QUERY_CODE,
            f"the query has an image (query_kind {req.query_kind!r}) but the embedding model "
            f"cannot embed images: the embedders of aisearch-local take text only{hint}",
        )
    if req.query_kind == "image":
        raise APIError(
            400,
            IMAGE_QUERY_CODE,
            "an image-only query needs a vector index with an image-capable embedding model; "
            "keyword retrieval searches text only",
        )


def fault_error(fault: Fault) -> APIError | None:
    """The error an injected fault answers with, or None when it sets no status."""
    if fault.status is None:
        return None
    headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
    code = fault.code if fault.code is not None else (7017 if fault.status >= 500 else 7000)
    return APIError(fault.status, code, f"injected fault: HTTP {fault.status}", headers=headers)


class QueryService:
    """Search and chat over the instances of a :class:`LocalService`.

    Args:
        svc: The service owning the store, searcher, generator, cache and faults.
    """

    def __init__(self, svc: LocalService) -> None:
        self._svc = svc
        self._local = isinstance(svc.embedder, _LOCAL_EMBEDDERS)
        self._pool = _CPU_THREADS if self._local else _WAIT_THREADS

    # -- faults -----------------------------------------------------------------------------

    async def take_fault(self, namespace: str, instance_id: str) -> Fault | None:
        """Take the instance's fault for one request, after its injected latency."""
        fault = self._svc.take_fault(namespace, instance_id)
        if fault is not None and fault.latency_ms:
            await asyncio.sleep(fault.latency_ms / 1000)
        return fault

    # -- search -----------------------------------------------------------------------------

    def _prepare(
        self, inst: InstanceRecord, req: SearchRequest, resolver: OptionsResolver | None
    ) -> tuple[ResolvedOptions, str]:
        """The options and the text searched (400s for what the instance cannot search)."""
        self._svc.check_embedder(inst)
        if resolver is None:
            opts = resolve_options(req.options, inst.config)
        else:
            opts = resolver.resolve(inst.config)
        check_image_query(req, opts)
        text = req.query
        if req.messages is not None and opts.rewrite:
            rewritten = rewrite_query(req.messages)
            if rewritten.strip():
                text = rewritten
        return opts, text

    def _retrieve(
        self,
        inst: InstanceRecord,
        opts: ResolvedOptions,
        text: str,
        heavy: bool = False,
        inline: bool = False,
    ) -> Chunks:
        """The chunks (``return_on_failure``: none on an error).

        ``inline``: may raise :class:`~aisearch_local.nowait.WouldWait` (:meth:`Searcher.search
        <aisearch_local.search.Searcher.search>`).
        """
        try:
            return self._svc.searcher.search(inst, text, opts, heavy=heavy, inline=inline)
        except WouldWait:
            raise
        except Exception:
            if not opts.return_on_failure:
                raise
            logger.exception("retrieval failed on %s; returning no chunks", inst.id)
            return []

    def _search(
        self,
        inst: InstanceRecord,
        req: SearchRequest,
        resolver: OptionsResolver | None,
        heavy: bool = False,
    ) -> Retrieval:
        opts, text = self._prepare(inst, req, resolver)
        chunks = self._retrieve(inst, opts, text, heavy)
        return Retrieval(text, chunks, opts, instances=[inst], query_kind=req.query_kind)

    async def _compute(
        self, inst: InstanceRecord, req: SearchRequest, resolver: OptionsResolver | None
    ) -> Retrieval:
        """A search (not heavy): on the event loop when it may, else on a search thread.

        With an embedder in the process, a small search (:data:`INLINE_MAX_SIZE`) is
        prepared on the event loop, then waits for its turn (:class:`_Turns`) and runs there
        when the searcher finds it cheap and nothing on its way waits
        (:meth:`Searcher.search <aisearch_local.search.Searcher.search>` ``inline``);
        otherwise on the search thread, as every search did before.
        """
        if not self._local or req.messages is not None or is_heavy(req, INLINE_MAX_SIZE):
            # a chat's messages (a query rewrite reads them all) are not in is_heavy's count
            return await _off_loop(self._pool, self._search, inst, req, resolver)
        opts, text = self._prepare(inst, req, resolver)
        async with _TURNS.get():
            try:
                chunks = self._retrieve(inst, opts, text, inline=True)
            except WouldWait:
                chunks = None
            if chunks is None:
                chunks = await _off_loop(self._pool, self._retrieve, inst, opts, text)
        return Retrieval(text, chunks, opts, instances=[inst], query_kind=req.query_kind)

    async def search_instance(self, inst: InstanceRecord, req: SearchRequest) -> Retrieval:
        """Search one instance (on the event loop when cheap, else off it: :meth:`_compute`)."""
        if is_heavy(req):
            return await _off_loop(_WAIT_THREADS, self._search, inst, req, None, True)
        return await self._compute(inst, req, None)

    async def search_request(
        self, namespace: str, instance_id: str, body: bytes
    ) -> tuple[InstanceRecord, SearchRequest, Fault | None, Retrieval | None]:
        """Everything a search route does before its answer, in one trip off the event loop.

        In order: the instance (404 / 7002), the body (400 / 7001), the instance's fault;
        then, when it has no fault, the search. With a fault, the route applies it and calls
        :meth:`search_instance` (the fault's latency is waited on the event loop).

        Returns:
            The instance, the parsed request, the fault taken (or None) and the result
            (None when there is a fault).
        """
        if len(body) > HEAVY_SIZE:  # may be a heavy search (is_heavy): not on the CPU slots
            return await _off_loop(
                _WAIT_THREADS, self._search_request, namespace, instance_id, body, True
            )
        if not self._local or len(body) > INLINE_MAX_SIZE:
            return await _off_loop(self._pool, self._search_request, namespace, instance_id, body)
        # a small body: the instance (a cached record), the body and the fault on the event
        # loop, then the search where _compute runs it
        svc = self._svc
        try:
            with no_waiting():  # the catalog or a fault behind a writer's lock: on a thread
                inst = svc.require_instance(namespace, instance_id)
                req = SearchRequest.parse(parse_json_object(body), strict=svc.strict)
                fault = svc.take_fault(namespace, instance_id)
        except WouldWait:
            return await _off_loop(self._pool, self._search_request, namespace, instance_id, body)
        if fault is not None:
            return inst, req, fault, None
        return inst, req, None, await self._compute(inst, req, None)

    def _search_request(
        self, namespace: str, instance_id: str, body: bytes, big: bool = False
    ) -> tuple[InstanceRecord, SearchRequest, Fault | None, Retrieval | None]:
        svc = self._svc
        inst = svc.require_instance(namespace, instance_id)
        req = SearchRequest.parse(parse_json_object(body), strict=svc.strict)
        fault = svc.take_fault(namespace, instance_id)
        if fault is not None:
            return inst, req, fault, None
        return inst, req, None, self._search(inst, req, None, big and is_heavy(req))

    async def search_namespace(self, namespace: str, req: SearchRequest) -> Retrieval:
        """Search the ``instance_ids`` of a namespace side by side; failures go to ``errors``.

        The options are validated once against the default configuration (a bad field is a
        400) and resolved once per distinct instance configuration.
        """
        svc = self._svc
        ids = req.instance_ids()
        resolver = OptionsResolver(req.options)
        heavy = is_heavy(req)

        async def one(iid: str) -> tuple[str, Retrieval | str]:
            inst = svc.store.get_instance(namespace, iid)
            if inst is None:
                return iid, f"instance {iid!r} not found in namespace {namespace!r}"
            fault = await self.take_fault(namespace, iid)
            if fault is not None:
                err = fault_error(fault)
                if err is not None:
                    return iid, f"HTTP {err.status}: {err.message}"
                if fault.malformed_body:
                    return iid, "malformed response from instance"
            try:
                if heavy:
                    return iid, await _off_loop(
                        _WAIT_THREADS, self._search, inst, req, resolver, True
                    )
                return iid, await self._compute(inst, req, resolver)
            except APIError as exc:
                if exc.code == IMAGE_QUERY_CODE:
                    image_errors.append(exc)
                return iid, str(exc)
            except ValidationError as exc:
                return iid, str(exc)

        image_errors: list[APIError] = []
        results = await asyncio.gather(*(one(i) for i in ids))
        if image_errors and all(isinstance(res, str) for _, res in results):
            raise image_errors[0]  # the image query itself is what no instance can search
        errors: list[dict[str, str]] = []
        out = Retrieval(req.query, [], resolver.defaults, errors=errors, query_kind=req.query_kind)
        for iid, res in results:
            if isinstance(res, str):
                errors.append({"instance_id": iid, "message": res})
                continue
            if not out.instances:
                out.options = res.options
            out.instances.extend(res.instances)
            out.query = res.query
            out.chunks.extend({**c, "instance_id": iid} for c in res.chunks)
        out.chunks.sort(key=lambda c: -float(c["score"]))
        del out.chunks[req.max_results() :]
        return out

    # -- chat -------------------------------------------------------------------------------

    def chat_model(self, settings: ChatSettings, inst: InstanceRecord | None) -> str:
        """The model of an answer: the requested one, the instance's, or the default."""
        if settings.model:
            return str(settings.model)
        if inst is not None and inst.config.get("ai_search_model"):
            return str(inst.config["ai_search_model"])
        return DEFAULT_MODEL

    def plan_chat(self, req: ChatRequest, found: Retrieval) -> ChatPlan:
        """Pick the model and look the prompt up in the similarity cache."""
        svc, opts, settings = self._svc, found.options, req.settings
        insts = found.instances
        model = self.chat_model(settings, insts[0] if insts else None)
        messages = req.search.messages or []
        raw = req.search.raw_options
        scope = "instance" if found.errors is None else json.dumps(raw.get("instance_ids"))
        versions = [(i.namespace, i.id, i.pk, svc.store.version(i.pk)) for i in insts]
        media = [
            p
            for m in messages
            if isinstance(m.get("content"), list)
            for p in m["content"]
            if isinstance(p, dict) and p.get("type") != "text"
        ]
        context = json.dumps(
            [
                versions,
                # images and files are not in the prompt text: an answer about another image
                # is no cache hit
                hashlib.sha256(json.dumps(media, sort_keys=True).encode()).hexdigest()
                if media
                else None,
                model,
                settings.max_tokens,
                settings.stop,
                opts.cache_key() + scope,
                svc.generator.name,
            ],
            sort_keys=True,
        )
        prompt = "\n".join(f"{m['role']}: {message_text(m.get('content'))}" for m in messages)
        chunks, errors = found.chunks, found.errors
        cached: Generation | None = None
        if opts.cache:
            hit = svc.cache.get(context, prompt, opts.cache_threshold)
            if hit is not None:
                cached, chunks = hit
        headers = {"cf-aig-cache-status": "HIT" if cached is not None else "MISS"}

        def remember(gen: Generation) -> None:
            if opts.cache and cached is None and not errors:
                svc.cache.put(context, prompt, (gen, chunks))

        return ChatPlan(
            model=model,
            messages=messages,
            chunks=chunks,
            errors=errors,
            settings=settings,
            cached=cached,
            headers=headers if opts.cache else {},
            remember=remember,
        )

    def answer(self, plan: ChatPlan) -> Generation:
        """The whole answer of a plan (cached or generated and remembered); blocking."""
        if plan.cached is not None:
            return plan.cached
        gen = self.generate(plan.messages, plan.chunks, plan.settings, plan.model)
        plan.remember(gen)
        return gen

    def answer_stream(self, plan: ChatPlan) -> Iterator[str | Generation]:
        """The answer of a plan as text pieces, then its :class:`Generation`; blocking.

        A cached answer (a similarity-cache hit) streams word by word too, as a fresh one does,
        not as one piece.
        """
        if plan.cached is not None:
            return iter([*word_pieces(plan.cached.text), plan.cached])
        return self.stream(plan.messages, plan.chunks, plan.settings, plan.model)

    def generate(
        self, messages: list[dict[str, Any]], chunks: Chunks, settings: ChatSettings, model: str
    ) -> Generation:
        """Generate an answer from chunks (blocking)."""
        return self._svc.generator.generate(
            messages, chunks, max_tokens=settings.max_tokens, stop=settings.stop, model=model
        )

    def stream(
        self, messages: list[dict[str, Any]], chunks: Chunks, settings: ChatSettings, model: str
    ) -> Iterator[str | Generation]:
        """Stream an answer from chunks: text pieces, then the :class:`Generation`."""
        return self._svc.generator.stream(
            messages, chunks, max_tokens=settings.max_tokens, stop=settings.stop, model=model
        )

    # -- legacy AutoRAG ---------------------------------------------------------------------

    def legacy_options(
        self, body: dict[str, Any], inst: InstanceRecord
    ) -> tuple[str, ResolvedOptions]:
        """Translate a legacy body into the query and resolved options (legacy field names)."""
        query = body.get("query")
        if not isinstance(query, str) or not query.strip():
            raise bad_request("query", "must be a non-empty string")
        retrieval: dict[str, Any] = {}
        if body.get("max_num_results") is not None:
            retrieval["max_num_results"] = body["max_num_results"]
        ranking = body.get("ranking_options")
        if ranking is not None:
            if not isinstance(ranking, dict):
                raise bad_request("ranking_options", "must be an object")
            if ranking.get("score_threshold") is not None:
                retrieval["match_threshold"] = ranking["score_threshold"]
        raw: dict[str, Any] = {"retrieval": retrieval}
        rerank = body.get("reranking")
        if rerank is not None:
            if not isinstance(rerank, dict):
                raise bad_request("reranking", "must be an object")
            raw["reranking"] = {
                k: v for k, v in rerank.items() if k in ("enabled", "model", "match_threshold")
            }
        if body.get("rewrite_query") is not None:
            raw["query_rewrite"] = {"enabled": body["rewrite_query"]}
        try:
            opts = resolve_options(raw, inst.config)
        except ValidationError as exc:
            raise ValidationError(_legacy_name(exc.field), _legacy_name(exc.message)) from exc
        flt = body.get("filters")
        if flt is not None:
            if isinstance(flt, dict) and "type" in flt:
                opts.predicate = compile_legacy_filter(flt)
            else:
                opts.predicate = compile_filter(flt)
            opts.filters = flt
        return query, opts

    def legacy_search(
        self, inst: InstanceRecord, query: str, opts: ResolvedOptions
    ) -> tuple[str, Chunks]:
        """Search one instance for a legacy request (blocking): the query used and the chunks."""
        svc = self._svc
        svc.check_embedder(inst)
        text = query
        if opts.rewrite:
            text = rewrite_query([{"role": "user", "content": query}]) or query
        return text, svc.searcher.search(inst, text, opts)

    def legacy_data(self, chunks: Chunks, inst: InstanceRecord) -> list[dict[str, Any]]:
        """The ``data`` list of a legacy answer: one entry per chunk, with its file."""
        data = []
        for c in chunks:
            item = c["item"]
            attrs = {
                "modified_date": item.get("timestamp"),
                "folder": item_attributes(item["key"], None, {})["folder"],
                **item.get("metadata", {}),
            }
            stored = self._svc.store.get_item_by_key(inst, item["key"])
            data.append(
                {
                    "file_id": stored["id"] if stored else c["id"],
                    "filename": item["key"],
                    "score": c["score"],
                    "attributes": attrs,
                    "content": [{"id": c["id"], "type": "text", "text": c["text"]}],
                }
            )
        return data


def _legacy_name(text: str) -> str:
    """Rename the fields of a validation message to the legacy body's names."""
    text = text.replace(
        "ai_search_options.retrieval.match_threshold", "ranking_options.score_threshold"
    )
    return text.replace("ai_search_options.retrieval.", "").replace("ai_search_options.", "")
