"""A LlamaIndex memory block that retrieves from AI Search for every turn.

``Memory.from_defaults(memory_blocks=[AISearchMemoryBlock(...)])`` gives a ``FunctionAgent``,
an ``AgentWorkflow`` or a chat engine numbered AI Search passages for each user message, in
the memory's system message; the passages used are the block's ``last_source_nodes``.
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import llama_index.core.instrumentation as instrument
from llama_index.core.base.llms.types import ChatMessage, MessageRole, TextBlock
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.memory.memory import BaseMemoryBlock
from llama_index.core.schema import NodeWithScore
from typing_extensions import Unpack

from aisearch import InstanceError, InvalidRequestError
from aisearch._names import closest_names, printable

from ._agents import check_folder, passages, with_folder
from ._common import AISearchConnection, resolve_connection
from ._options import (
    PLACE_KEYS,
    RETRIEVER_SEARCH_KEYS,
    RetrieverKwargs,
    build_search_options,
    check_option_keywords,
    check_top_k,
    split_kwargs,
)
from .events import AISearchMemoryRetrievalEvent
from .filters import to_aisearch_filters
from .retrievers import AISearchMultiRetriever, AISearchRetriever
from .tools import cited_numbers

__all__ = ["AISearchMemoryBlock", "AISearchMemoryRetrieval", "MemoryTargetRequest"]

dispatcher = instrument.get_dispatcher(__name__)  # type: ignore[attr-defined]

TARGET_KEYS = ("folder", "instance_id", "instance_ids")
"""What a per-run target may set."""

MAX_QUERY_CHARS = 4000
"""The longest query sent: the end of the user's text (the newest words) is kept."""

DEFAULT_HEADER = (
    "Passages AI Search retrieved for the user's latest message, best first. Cite the ones "
    "you use by their number, like [1]; if they do not answer the question, say so."
)

_MAX_SESSIONS = 256
_MAX_RETRIEVERS = 32


@dataclass(frozen=True)
class MemoryTargetRequest:
    """What a ``target=`` callable is given to choose the instance(s) for one retrieval."""

    session_id: str | None
    """The ``Memory``'s session id (one per conversation)."""
    messages: list[ChatMessage]
    """The messages the memory passed to the block (its chat history, then the new input)."""
    context: Any = None
    """The running workflow's ``Context`` inside an agent step (``None`` elsewhere)."""


TargetFunction = Callable[
    [MemoryTargetRequest], "Mapping[str, Any] | Awaitable[Mapping[str, Any] | None] | None"
]


@dataclass
class AISearchMemoryRetrieval:
    """One retrieval of the memory block: the query, where it searched, what it found."""

    query: str
    """The query sent (empty: no user text, nothing searched)."""
    source_nodes: list[NodeWithScore] = field(default_factory=list)
    """The passages shown to the model, in order: ``[n]`` is ``source_nodes[n - 1]``."""
    errors: list[InstanceError] = field(default_factory=list)
    """Instances that failed (several instances; ``on_instance_error`` other than ``raise``)."""
    instance_id: str | None = None
    """The instance searched (one instance, or a public endpoint's label)."""
    instance_ids: list[str] | None = None
    """The instances searched (several)."""
    folder: str | None = None
    """The folder the search was limited to."""
    session_id: str | None = None
    """The memory's session id."""
    cached: bool = False
    """Reused from this session's previous retrieval (same query, same target)."""
    context: str = ""
    """The text the block gave the memory (the numbered passages)."""

    def cited(self, text: str) -> list[NodeWithScore]:
        """The source nodes an answer cites with ``[n]`` markers, in number order."""
        numbers = sorted(cited_numbers(text, len(self.source_nodes)))
        return [self.source_nodes[n - 1] for n in numbers]


@dataclass(frozen=True)
class _Target:
    instance_id: str | None = None
    instance_ids: tuple[str, ...] | None = None
    folder: str | None = None


def _step_context() -> Any:
    """The workflow ``Context`` of the running agent step, or ``None`` outside one."""
    from workflows import Context
    from workflows.errors import WorkflowRuntimeError

    try:
        return Context.get_step_context()
    except WorkflowRuntimeError:
        return None


def _apply(values: dict[str, Any], given: Any, where: str) -> dict[str, Any]:
    """``values`` updated from a target mapping.

    ``instance_id`` and ``instance_ids`` exclude each other: setting one clears the other.
    """
    prefix = f"{where}: " if where else ""
    if not isinstance(given, Mapping):
        raise InvalidRequestError(
            f"{prefix}must be a mapping with any of {', '.join(TARGET_KEYS)} "
            f"(got {type(given).__name__})"
        )
    for key in given:
        if key not in TARGET_KEYS:
            name = printable(str(key))
            near = closest_names(name, TARGET_KEYS)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise InvalidRequestError(
                f"{prefix}unknown key {name!r}{hint}; the keys are: {', '.join(TARGET_KEYS)}"
            )
    if given.get("instance_id") is not None and given.get("instance_ids") is not None:
        raise InvalidRequestError(f"{prefix}pass instance_id or instance_ids, not both")
    out = dict(values)
    if given.get("instance_id") is not None:
        out["instance_id"], out["instance_ids"] = given["instance_id"], None
    elif given.get("instance_ids") is not None:
        out["instance_id"], out["instance_ids"] = None, given["instance_ids"]
    if "folder" in given:
        out["folder"] = given["folder"]
    return out


def _check_target(values: Mapping[str, Any], where: str) -> _Target:
    prefix = f"{where}: " if where else ""
    instance_id, instance_ids = values.get("instance_id"), values.get("instance_ids")
    if instance_id is not None and (not isinstance(instance_id, str) or not instance_id):
        raise InvalidRequestError(
            f"{prefix}instance_id must be a non-empty string (got {printable(repr(instance_id))})"
        )
    ids: tuple[str, ...] | None = None
    if instance_ids is not None:
        if isinstance(instance_ids, str) or not isinstance(instance_ids, Sequence):
            raise InvalidRequestError(
                f"{prefix}instance_ids must be a list of instance ids "
                f"(got {type(instance_ids).__name__}; use instance_id for one)"
            )
        if not 1 <= len(instance_ids) <= 50:
            raise InvalidRequestError(
                f"{prefix}instance_ids must hold 1 to 50 instance ids (got {len(instance_ids)})"
            )
        for i, value in enumerate(instance_ids):
            if not isinstance(value, str) or not value:
                raise InvalidRequestError(
                    f"{prefix}instance_ids[{i}] must be a non-empty string "
                    f"(got {printable(repr(value))})"
                )
        ids = tuple(instance_ids)
    folder = check_folder(values.get("folder"), f"{prefix}folder")
    return _Target(instance_id=instance_id, instance_ids=ids, folder=folder)


def query_from(messages: Sequence[ChatMessage], count: int = 1) -> str:
    """The search query: the text of the latest ``count`` user messages, oldest first.

    Only text blocks count (images and documents are left out); messages with no text are
    skipped; at most the last :data:`MAX_QUERY_CHARS` characters are kept.
    """
    texts: list[str] = []
    for message in reversed(messages):
        if len(texts) == count:
            break
        if message.role != MessageRole.USER:
            continue
        text = "\n".join(b.text for b in message.blocks if isinstance(b, TextBlock)).strip()
        if text:
            texts.append(text)
    return "\n".join(reversed(texts))[-MAX_QUERY_CHARS:].strip()


class AISearchMemoryBlock(BaseMemoryBlock[str]):
    """A memory block that retrieves from AI Search for each user turn.

    Add it to a LlamaIndex ``Memory``; each time the memory is read (an agent before each
    model call, a chat engine before each answer) the block searches AI Search with the
    latest user message and gives the memory numbered passages (``[1] key (score 0.812)``,
    then the text), which ``Memory`` puts in the system message under ``<name>``. The
    passages the model saw are :attr:`last_source_nodes` (``[n]`` is ``last_source_nodes[n -
    1]``), and every retrieval is dispatched as an :class:`AISearchMemoryRetrievalEvent`.

    The query is the text of the latest ``query_messages`` user messages (default 1), oldest
    first, the last 4,000 characters at most. Within one turn an agent reads its memory
    again after each tool call: the same query and target then reuse the session's last
    result, with no request.

    Where it searches is resolved for each retrieval; later sources override earlier ones:

    1. the constructor's ``instance_id`` / ``instance_ids`` / ``folder``;
    2. inside an agent workflow, the run's ``Context`` store key ``context_key`` (default
       ``"aisearch_target"``), else that key of the agent state (``initial_state=``; the
       agent shows its state to the model);
    3. ``Memory.aget(aisearch_target={...})`` (block keyword arguments, named ``context_key``);
    4. ``target(request)``: a callable (sync or async) given a :class:`MemoryTargetRequest`
       (session id, messages, workflow context) returning such a mapping, or ``None``.

    Each is a mapping with any of ``instance_id``, ``instance_ids`` (several instances:
    namespace search up to 10, fan-out beyond) and ``folder`` (only that folder, e.g.
    ``"tenant-a/"``), so one agent serves many tenants. Setting ``instance_id`` clears
    ``instance_ids`` and the reverse. With several instances, a failing one is handled as by
    :class:`AISearchMultiRetriever`: ``on_instance_error`` ``"warn"`` (default), ``"ignore"``
    or ``"raise"``, an ``AISearchInstanceErrorEvent`` each time, the errors in
    :attr:`last_retrieval`, and the passages say which instances could not be searched.

    Args:
        instance_id: The instance to search (or ``instance_ids``; neither with a public
            endpoint, or when every run supplies its target).
        instance_ids: Several instances of one namespace.
        folder: Only search this folder (``"docs/"``; the folder of a key is its directory).
        target: A callable choosing the target per retrieval (see above).
        context_key: The workflow store / agent state / block keyword key holding a target.
        similarity_top_k: Passages per retrieval, 1..50 (default 5).
        max_chars: Most characters of passages to add, 200..200,000 (default 6,000).
        query_messages: How many latest user messages form the query, 1..20 (default 1).
        on_instance_error: ``"warn"``, ``"ignore"`` or ``"raise"`` (several instances).
        header: The line before the passages (``""``: none).
        name: The block's name in the memory (default ``"aisearch_context"``).
        priority: ``Memory``'s truncation priority: 0 never truncates; otherwise the last
            passages are dropped first when the memory is over its token limit (default 1).
        **kwargs: Search options (as :class:`AISearchRetriever`: ``retrieval_type``,
            ``filters``, ``reranking`` ...), ``namespace``, ``connection`` or connection
            settings.

    Example:
        .. code-block:: python

            block = AISearchMemoryBlock("docs", similarity_top_k=4)
            memory = Memory.from_defaults(session_id="user-1", memory_blocks=[block])
            response = await FunctionAgent(tools=tools, llm=llm).run("...", memory=memory)
            sources = block.last_source_nodes
    """

    name: str = Field(default="aisearch_context", description="The block's name in the memory.")
    description: str | None = Field(
        default="Passages AI Search retrieved for the user's latest message.",
        description="What the block holds.",
    )
    priority: int = Field(
        default=1, description="Truncation priority (0: never truncated; passages drop last)."
    )
    accept_short_term_memory: bool = Field(
        default=False,
        description="AI Search is read here, never written: flushed messages are not kept.",
    )

    _connection: AISearchConnection = PrivateAttr()
    _search: dict[str, Any] = PrivateAttr()
    _filters: dict[str, Any] | None = PrivateAttr()
    _namespace: str | None = PrivateAttr()
    _defaults: dict[str, Any] = PrivateAttr()
    _target_fn: TargetFunction | None = PrivateAttr()
    _context_key: str = PrivateAttr()
    _max_chars: int = PrivateAttr()
    _query_messages: int = PrivateAttr()
    _on_instance_error: Literal["raise", "warn", "ignore"] = PrivateAttr()
    _header: str = PrivateAttr()
    _retrievers: OrderedDict[_Target, AISearchRetriever | AISearchMultiRetriever] = PrivateAttr()
    _sessions: OrderedDict[str | None, AISearchMemoryRetrieval] = PrivateAttr()
    _keys: dict[str | None, tuple[str, _Target]] = PrivateAttr()
    _last: AISearchMemoryRetrieval | None = PrivateAttr()

    def __init__(
        self,
        instance_id: str | None = None,
        *,
        instance_ids: Sequence[str] | None = None,
        folder: str | None = None,
        target: TargetFunction | None = None,
        context_key: str = "aisearch_target",
        max_chars: int = 6000,
        query_messages: int = 1,
        on_instance_error: Literal["raise", "warn", "ignore"] = "warn",
        header: str = DEFAULT_HEADER,
        name: str = "aisearch_context",
        description: str | None = "Passages AI Search retrieved for the user's latest message.",
        priority: int = 1,
        **kwargs: Unpack[RetrieverKwargs],
    ) -> None:
        check_option_keywords(type(self), kwargs, RETRIEVER_SEARCH_KEYS)
        super().__init__(name=name, description=description, priority=priority)
        search, rest = split_kwargs(kwargs, RETRIEVER_SEARCH_KEYS)
        place, connection_kwargs = split_kwargs(rest, PLACE_KEYS)
        search.setdefault("similarity_top_k", 5)
        check_top_k(search["similarity_top_k"])
        self._filters = to_aisearch_filters(search.pop("filters", None))
        build_search_options({k: v for k, v in search.items() if k != "extra_options"})
        self._search = search
        self._namespace = place.get("namespace")
        self._connection = resolve_connection(place.get("connection"), connection_kwargs)
        values = _apply(
            {}, {"instance_id": instance_id, "instance_ids": instance_ids, "folder": folder}, ""
        )
        defaults = _check_target(values, "")
        with_folder(self._filters, defaults.folder)  # a folder must not widen `filters`
        self._defaults = {
            "instance_id": defaults.instance_id,
            "instance_ids": defaults.instance_ids,
            "folder": defaults.folder,
        }
        if target is not None and not callable(target):
            raise InvalidRequestError(
                f"target: must be a callable or None (got {type(target).__name__})"
            )
        self._target_fn = target
        if not isinstance(context_key, str) or not context_key:
            raise InvalidRequestError("context_key: must be a non-empty string")
        self._context_key = context_key
        self._max_chars = _check_int(max_chars, "max_chars", 200, 200_000)
        self._query_messages = _check_int(query_messages, "query_messages", 1, 20)
        if on_instance_error not in ("raise", "warn", "ignore"):
            raise InvalidRequestError(
                "on_instance_error: must be one of 'raise', 'warn', 'ignore' "
                f"(got {printable(repr(on_instance_error))})"
            )
        self._on_instance_error = on_instance_error
        if not isinstance(header, str):
            raise InvalidRequestError(f"header: must be a string (got {type(header).__name__})")
        self._header = header
        self._retrievers = OrderedDict()
        self._sessions = OrderedDict()
        self._keys = {}
        self._last = None

    @property
    def connection(self) -> AISearchConnection:
        """The connection (shared pooled clients) this block searches through."""
        return self._connection

    @property
    def max_chars(self) -> int:
        """Most characters of passages added per retrieval."""
        return self._max_chars

    @property
    def query_messages(self) -> int:
        """How many latest user messages form the query."""
        return self._query_messages

    @property
    def last_retrieval(self) -> AISearchMemoryRetrieval | None:
        """The latest retrieval (any session), or ``None`` before the first."""
        return self._last

    @property
    def last_source_nodes(self) -> list[NodeWithScore]:
        """The passages of the latest retrieval, in ``[n]`` order (empty before the first)."""
        return list(self._last.source_nodes) if self._last is not None else []

    def retrieval_for(self, session_id: str | None) -> AISearchMemoryRetrieval | None:
        """The latest retrieval of one memory session (one block may serve several)."""
        return self._sessions.get(session_id)

    async def _aget(self, messages: list[ChatMessage] | None = None, **block_kwargs: Any) -> str:
        messages = list(messages or [])
        session_id = block_kwargs.get("session_id")
        target = await self._resolve(messages, session_id, block_kwargs)
        query = query_from(messages, self._query_messages)
        previous = self._keys.get(session_id)
        last = self._sessions.get(session_id)
        if previous == (query, target) and last is not None:
            retrieval = replace(last, cached=True)
        else:
            retrieval = await self._retrieve(query, target, session_id)
        self._remember(session_id, (query, target), retrieval)
        dispatcher.event(
            AISearchMemoryRetrievalEvent(
                query=retrieval.query,
                session_id=session_id,
                instance_id=retrieval.instance_id,
                instance_ids=retrieval.instance_ids,
                folder=retrieval.folder,
                nodes=retrieval.source_nodes,
                failed_instances=[e.instance_id for e in retrieval.errors],
                cached=retrieval.cached,
            )
        )
        return retrieval.context

    async def _aput(self, messages: list[ChatMessage]) -> None:
        """Nothing to store: the block reads AI Search, it never writes to it."""

    async def atruncate(self, content: str, tokens_to_truncate: int) -> str | None:
        """Drop passages from the end (about 4 characters a token); ``None`` when none is left."""
        goal = len(content) - 4 * max(tokens_to_truncate, 0)
        cut = content
        while len(cut) > goal:
            at = cut.rfind("\n\n[")
            if at < 0:
                return None
            cut = cut[:at]
        return cut if cut.startswith("[1] ") or "\n\n[1] " in cut else None

    def _remember(
        self, session_id: str | None, key: tuple[str, _Target], retrieval: AISearchMemoryRetrieval
    ) -> None:
        self._last = retrieval
        self._sessions[session_id] = retrieval
        self._sessions.move_to_end(session_id)
        self._keys[session_id] = key
        while len(self._sessions) > _MAX_SESSIONS:
            oldest, _ = self._sessions.popitem(last=False)
            self._keys.pop(oldest, None)

    async def _resolve(
        self, messages: list[ChatMessage], session_id: str | None, block_kwargs: Mapping[str, Any]
    ) -> _Target:
        key = self._context_key
        values = dict(self._defaults)
        context = _step_context()
        if context is not None:
            given = await context.store.get(key, default=None)
            where = f"workflow context store {key!r}"
            if given is None:
                state = await context.store.get("state", default=None)
                given = state.get(key) if isinstance(state, Mapping) else None
                where = f"agent state {key!r}"
            if given is not None:
                values = _apply(values, given, where)
        if block_kwargs.get(key) is not None:
            values = _apply(values, block_kwargs[key], f"Memory.aget({key}=...)")
        if self._target_fn is not None:
            request = MemoryTargetRequest(session_id=session_id, messages=messages, context=context)
            given = self._target_fn(request)
            if inspect.isawaitable(given):
                given = await given
            if given is not None:
                values = _apply(values, given, "target(...)")
        target = _check_target(values, "target")
        if (
            target.instance_id is None
            and target.instance_ids is None
            and not self._connection.uses_public_endpoint
        ):
            raise InvalidRequestError(
                "AISearchMemoryBlock has no instance to search: pass instance_id=... or "
                f"instance_ids=[...], a target=... callable, or set {key!r} in the workflow "
                f"context store (await ctx.store.set({key!r}, {{'instance_id': ...}}))"
            )
        return target

    def _retriever(self, target: _Target) -> AISearchRetriever | AISearchMultiRetriever:
        retriever = self._retrievers.get(target)
        if retriever is not None:
            self._retrievers.move_to_end(target)
            return retriever
        filters = with_folder(self._filters, target.folder, "target: folder")
        options: dict[str, Any] = {**self._search, "filters": filters}
        common: dict[str, Any] = {"namespace": self._namespace, "connection": self._connection}
        if target.instance_ids is not None:
            retriever = AISearchMultiRetriever(
                list(target.instance_ids),
                on_instance_error=self._on_instance_error,
                **common,
                **options,
            )
        else:
            retriever = AISearchRetriever(target.instance_id, **common, **options)
        self._retrievers[target] = retriever
        while len(self._retrievers) > _MAX_RETRIEVERS:
            self._retrievers.popitem(last=False)
        return retriever

    async def _retrieve(
        self, query: str, target: _Target, session_id: str | None
    ) -> AISearchMemoryRetrieval:
        retrieval = AISearchMemoryRetrieval(
            query=query,
            instance_id=target.instance_id,
            instance_ids=list(target.instance_ids) if target.instance_ids else None,
            folder=target.folder,
            session_id=session_id,
        )
        if not query:
            return retrieval
        retriever = self._retriever(target)
        if isinstance(retriever, AISearchMultiRetriever):
            result = await retriever.aretrieve_with_errors(query)
            nodes = retriever._apply_policy(result)
            retrieval.errors = list(result.errors)
        else:
            nodes = await retriever.aretrieve(query)
        retrieval.context, shown = self._render(
            nodes, retrieval.errors, multi=bool(target.instance_ids)
        )
        retrieval.source_nodes = list(nodes[:shown])
        return retrieval

    def _render(
        self, nodes: list[NodeWithScore], errors: list[InstanceError], *, multi: bool
    ) -> tuple[str, int]:
        parts = [self._header] if self._header else []
        budget = self._max_chars
        failed = ""
        if errors:
            names = ", ".join(printable(e.instance_id)[:100] for e in errors)
            failed = f"Could not be searched (failed): {names}."
            budget -= len(failed) + 2
        if nodes:
            text, shown = passages(nodes, max(budget, 100), multi=multi)
            parts.append(text)
        else:
            shown = 0
            parts.append("No passages matched.")
        if failed:
            parts.append(failed)
        return "\n\n".join(parts), shown


def _check_int(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequestError(
            f"{name}: must be an integer between {low:,} and {high:,} "
            f"(got {printable(repr(value))})"
        )
    if not low <= value <= high:
        raise InvalidRequestError(f"{name}: must be between {low:,} and {high:,} (got {value:,})")
    return value
