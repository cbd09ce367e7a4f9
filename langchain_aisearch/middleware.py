"""Retrieval middleware for LangChain agents (`langchain.agents.create_agent`).

`AISearchContextMiddleware` retrieves from AI Search before the model is called, adds the
chunks to that call's system message as numbered context (`[1]`, `[2]` ...), and gives the
final answer standard `Citation` annotations for the `[n]` markers it writes. Which instance,
instances or folder to search comes from the agent's runtime context, so one agent serves
many tenants.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, cast

from aisearch._extras import require_extra as _require_extra

_require_extra("langchain.agents", "langchain-agents", "langchain_aisearch.middleware")

from langchain.agents.middleware import (
    AgentMiddleware,
    AgentState,
    ModelRequest,
    ModelResponse,
)
from langchain.agents.middleware.types import ExtendedModelResponse, PrivateStateAttr
from langchain.tools import ToolRuntime
from langchain_core.callbacks import adispatch_custom_event, dispatch_custom_event
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages import content as types
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.types import Command
from typing_extensions import NotRequired

from aisearch import InstanceError, InvalidRequestError
from aisearch._config import validate_instance_id
from aisearch._models import chunk_metadata
from aisearch._names import citation_markers, closest_names, printable
from langchain_aisearch._mapping import find_citations
from langchain_aisearch.retrievers import (
    INSTANCE_ERROR_EVENT,
    AISearchMultiRetriever,
    AISearchRetriever,
)
from langchain_aisearch.tools import _tool_errors as tool_errors
from langchain_aisearch.tools import check_folder, format_documents

__all__ = [
    "AISearchAgentState",
    "AISearchContextMiddleware",
    "AISearchTarget",
    "add_citations",
    "format_context",
    "target_from_context",
]

RetrieveWhen = Literal["every_turn", "first_turn", "on_request"]
_WHEN: tuple[str, ...] = ("every_turn", "first_turn", "on_request")

CONTEXT_HEADER = (
    "Context from the knowledge base (Cloudflare AI Search). Answer from it when it is "
    "relevant, and cite each passage you use by its number in square brackets, e.g. [1], "
    "right after the claim it supports. If it does not answer the question, say so."
)
"""The line above the numbered passages in the system message."""

REWRITE_PROMPT = (
    "Rewrite the conversation's latest request as one standalone search query for a "
    "knowledge base. Answer with the query only."
)
"""The instruction a `rewrite_query` chat model gets, followed by the conversation."""


class AISearchAgentState(AgentState[Any]):
    """The agent state keys the middleware adds.

    `aisearch_documents`: the sources of the latest model call, in the order the model saw
    them (`aisearch_documents[n - 1]` is `[n]`): the retrieved context first, then the
    Documents of this turn's AI Search tool results. `aisearch_errors`: the instances that
    failed in the latest retrieval (one dict each: `instance_id`, `message`, `error_type`,
    `status_code`), empty when none did.
    """

    aisearch_documents: NotRequired[list[Document]]
    aisearch_errors: NotRequired[list[dict[str, Any]]]
    aisearch_context: NotRequired[Annotated[list[Document], PrivateStateAttr]]


@dataclass(frozen=True)
class AISearchTarget:
    """What one retrieval searches: an instance or several, a namespace, a folder.

    Fields left `None` keep the middleware retriever's own setting.
    """

    instance_id: str | None = None
    instance_ids: tuple[str, ...] | None = None
    namespace: str | None = None
    folder: str | None = None


_TARGET_FIELDS = ("instance_id", "instance_ids", "namespace", "folder")


def _bad(field: str, message: str) -> InvalidRequestError:
    return InvalidRequestError(f"{field}: {message}")


def check_target(value: Any, where: str = "context") -> AISearchTarget | None:
    """Validate what a target callable returned.

    Args:
        value: An `AISearchTarget`, a mapping with its field names, or `None`.
        where: How messages name the source of the value (`context.instance_id`).

    Returns:
        The target, with every field checked, or `None`.

    Raises:
        InvalidRequestError: A field is of the wrong type or an invalid id, a folder does
            not end with '/', or the mapping holds an unknown key; the message names it.
    """
    if value is None:
        return None
    if isinstance(value, Mapping):
        unknown = sorted(str(k) for k in value if k not in _TARGET_FIELDS)
        if unknown:
            near = closest_names(unknown[0], _TARGET_FIELDS)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            allowed = ", ".join(_TARGET_FIELDS)
            msg = f"unknown target key {printable(unknown[0])!r}{hint}; allowed: {allowed}"
            raise _bad(where, msg)
        value = AISearchTarget(**{k: value.get(k) for k in _TARGET_FIELDS})
    if not isinstance(value, AISearchTarget):
        kind = type(value).__name__
        msg = f"the target must be an AISearchTarget, a mapping or None (got {kind})"
        raise _bad(where, msg)
    instance_id, ids, namespace, folder = (
        value.instance_id,
        value.instance_ids,
        value.namespace,
        value.folder,
    )
    if instance_id is not None and ids is not None:
        raise _bad(where, "name instance_id or instance_ids, not both")
    if instance_id is not None:
        validate_instance_id(instance_id, f"{where}.instance_id")
    if ids is not None:
        if isinstance(ids, str) or not isinstance(ids, Sequence) or not ids:
            raise _bad(f"{where}.instance_ids", "must be a non-empty list of instance ids")
        for i, ident in enumerate(ids):
            validate_instance_id(ident, f"{where}.instance_ids[{i}]")
        ids = tuple(ids)
    if namespace is not None:
        validate_instance_id(namespace, f"{where}.namespace")
    if folder is not None:
        check_folder(folder, f"{where}.folder")
    return AISearchTarget(instance_id, ids, namespace, folder)


def target_from_context(context: Any) -> AISearchTarget | None:
    """The default target: `instance_id`, `instance_ids`, `namespace`, `folder` of the context.

    Reads them as attributes (a dataclass or pydantic `context_schema`) or keys (a dict,
    a `TypedDict`); missing ones are `None`. A context that names none of them (or no
    context) means the middleware retriever's own instance(s).
    """
    if context is None:
        return None
    if isinstance(context, Mapping):
        found = {k: context.get(k) for k in _TARGET_FIELDS}
    else:
        found = {k: getattr(context, k, None) for k in _TARGET_FIELDS}
    if all(v is None for v in found.values()):
        return None
    return check_target(found)


# ------------------------------------------------------------------------ pure parts


def format_context(
    docs: Sequence[Document], *, max_chars: int | None = None, header: str = CONTEXT_HEADER
) -> tuple[str, list[Document]]:
    """Number the documents as context for a system message, within a character budget.

    Args:
        docs: The retrieved documents, best first.
        max_chars: Most characters of passage text in all (None: no limit). A passage
            that would overflow is cut to what is left; the ones after it are left out.
        header: The instruction above the passages.

    Returns:
        The text (`header`, then `[n] source (score, instance)` and the passage per
        document) and the documents it shows, in their numbered order.
    """
    shown: list[Document] = []
    rendered: list[Document] = []
    left = max_chars
    for doc in docs:
        text = doc.page_content
        if left is not None:
            if left <= 0:
                break
            if len(text) > left:
                text = text[:left].rstrip() + " ..."
            left -= len(doc.page_content)
        shown.append(doc)
        rendered.append(Document(page_content=text, metadata=doc.metadata, id=doc.id))
    if not shown:
        return f"{header}\n\nNo matching documents found.", []
    return f"{header}\n\n{format_documents(rendered)}", shown


def _as_source(doc: Document) -> dict[str, Any]:
    """A Document in the shape `find_citations` reads (the API's chunk JSON)."""
    meta = doc.metadata
    source: dict[str, Any] = {"text": doc.page_content}
    key = meta.get("url") or meta.get("source")
    if key:
        source["item"] = {"key": str(key)}
    for name, value in (
        ("id", doc.id or meta.get("id")),
        ("score", meta.get("score")),
        ("instance_id", meta.get("instance_id")),
    ):
        if value is not None:
            source[name] = value
    return source


def add_citations(message: AIMessage, docs: Sequence[Document]) -> AIMessage:
    """The message with `Citation` annotations for each `[n]` marker pointing at `docs`.

    `[n]` is `docs[n - 1]`; markers outside `1..len(docs)` are ignored. A string content
    becomes one text block carrying the annotations; in list content each text block gets
    those of its own text. The message is not modified (a copy is returned); without any
    citation it is returned as it is.

    Args:
        message: The model's answer.
        docs: The sources in the order the model saw them numbered.

    Returns:
        The annotated copy, or `message` itself.
    """
    if not docs:
        return message
    sources = [_as_source(d) for d in docs]
    content = message.content
    blocks: list[str | dict[str, Any]] = (
        [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
    )
    changed = False
    out: list[str | dict[str, Any]] = []
    for block in blocks:
        if isinstance(block, str):
            block = {"type": "text", "text": block}
        text = block.get("text") if block.get("type") == "text" else None
        citations: list[types.Citation] = find_citations(text, sources) if text else []
        if citations:
            block = {**block, "annotations": [*(block.get("annotations") or []), *citations]}
            changed = True
        out.append(block)
    if not changed:
        return message
    return message.model_copy(update={"content": out})


def _shift_markers(text: str, offset: int, count: int) -> str:
    """`text` with its `[n]` markers for n in 1..count renumbered to `[n + offset]`."""
    parts: list[str] = []
    last = 0
    for marker in citation_markers(text):
        if not all(1 <= n <= count for n in marker.numbers):
            continue
        parts.append(text[last : marker.start])
        parts.append("[" + ", ".join(str(n + offset) for n in marker.numbers) + "]")
        last = marker.end
    parts.append(text[last:])
    return "".join(parts)


def _mcp_documents(artifact: Mapping[str, Any]) -> list[Document] | None:
    """The chunks of an AI Search MCP `search` result (langchain-mcp-adapters' artifact).

    Its structured content is `{"search_query": ..., "chunks": [...]}` with the chunks as
    `/search` returns them (the local server's shape; Cloudflare does not document one).
    """
    structured = artifact.get("structured_content")
    if not isinstance(structured, Mapping):
        return None
    chunks = structured.get("chunks")
    if not isinstance(chunks, list) or not chunks:
        return None
    query = structured.get("search_query")
    docs = []
    for chunk in chunks:
        if not isinstance(chunk, Mapping) or not isinstance(chunk.get("item") or {}, Mapping):
            return None
        item = chunk.get("item") or {}
        if not isinstance(item.get("metadata") or {}, Mapping):
            return None
        docs.append(
            Document(
                page_content=str(chunk.get("text") or ""),
                metadata=chunk_metadata(
                    chunk, search_query=query if isinstance(query, str) else None
                ),
                id=chunk.get("id") if isinstance(chunk.get("id"), str) else None,
            )
        )
    return docs


def _tool_documents(message: BaseMessage) -> list[Document] | None:
    """The sources a tool result carries: a list of Documents, or an MCP search's chunks."""
    if not isinstance(message, ToolMessage):
        return None
    artifact = message.artifact
    if isinstance(artifact, list) and artifact and all(isinstance(d, Document) for d in artifact):
        return cast("list[Document]", artifact)
    if isinstance(artifact, Mapping):
        return _mcp_documents(artifact)
    return None


def _renumbered(content: Any, docs: list[Document], offset: int) -> Any:
    """A tool result's content with its sources numbered from `offset + 1`."""
    if content == format_documents(docs):
        return format_documents(docs, start=offset + 1)
    if isinstance(content, str):
        return _shift_markers(content, offset, len(docs))
    if isinstance(content, list):
        out: list[Any] = []
        for block in content:
            if isinstance(block, str):
                out.append(_shift_markers(block, offset, len(docs)))
            elif isinstance(block, dict) and block.get("type") == "text":
                text = str(block.get("text") or "")
                out.append({**block, "text": _shift_markers(text, offset, len(docs))})
            else:
                out.append(block)
        return out
    return content


def number_sources(
    messages: Sequence[AnyMessage], context: Sequence[Document]
) -> tuple[list[AnyMessage], list[Document]]:
    """Give every source of this turn one number: context first, then tool results.

    The tool results since the latest user message whose artifact is a list of Documents
    (the AI Search tools, `create_retriever_tool(..., response_format="content_and_artifact")`)
    or an AI Search MCP `search` result (langchain-mcp-adapters) number their sources from 1;
    here they continue after the context and the earlier results. A search tool's text is
    re-rendered; another tool's `[n]` markers are shifted (in each text block of a list).

    Args:
        messages: The model request's messages.
        context: The documents of the system message's context.

    Returns:
        The messages as the model gets them (the state keeps the originals) and every
        source in number order.
    """
    start = max((i for i, m in enumerate(messages) if isinstance(m, HumanMessage)), default=-1)
    sources = list(context)
    out = list(messages)
    for i in range(start + 1, len(out)):
        docs = _tool_documents(out[i])
        if docs is None:
            continue
        offset = len(sources)
        sources.extend(docs)
        if offset == 0:
            continue
        content = _renumbered(out[i].content, docs, offset)
        if content != out[i].content:
            out[i] = out[i].model_copy(update={"content": content})
    return out, sources


def _with_context(system: SystemMessage | None, context: str) -> SystemMessage:
    if system is None:
        return SystemMessage(content=context)
    if isinstance(system.content, str):
        text = f"{system.content}\n\n{context}" if system.content else context
        return system.model_copy(update={"content": text})
    blocks = [*system.content, {"type": "text", "text": context}]
    return system.model_copy(update={"content": blocks})


def _latest_user(messages: Sequence[AnyMessage]) -> int | None:
    for i in range(len(messages) - 1, -1, -1):
        if isinstance(messages[i], HumanMessage):
            return i
    return None


def default_query(messages: Sequence[AnyMessage]) -> str | None:
    """The search query without a rewriter.

    The latest user message's text; when the agent has called tools since, followed by
    the string arguments of the latest tool calls (what the model went looking for; each
    once, and not those the message already contains), so that a later step searches for
    what the conversation is now about.

    Returns:
        The query, or `None` when there is no user message with text.
    """
    index = _latest_user(messages)
    if index is None:
        return None
    query = messages[index].text.strip()
    if not query:
        return None
    asks: list[str] = []
    for message in reversed(messages[index + 1 :]):
        if isinstance(message, AIMessage) and message.tool_calls:
            for call in message.tool_calls:
                asks += [v.strip() for v in call["args"].values() if isinstance(v, str)]
            break
    extra = [a for a in dict.fromkeys(asks) if a and a.lower() not in query.lower()]
    return " ".join([query, *extra])


def _transcript(messages: Sequence[AnyMessage]) -> str:
    lines = []
    for message in messages:
        text = message.text.strip()
        if isinstance(message, AIMessage) and message.tool_calls:
            calls = ", ".join(f"{c['name']}({c['args']})" for c in message.tool_calls)
            text = f"{text} [calls {calls}]".strip()
        if text:
            lines.append(f"{message.type}: {text}")
    return "\n".join(lines)


def _needs_rewrite(messages: Sequence[AnyMessage]) -> bool:
    """Whether anything besides the one user message is in the conversation."""
    return sum(1 for m in messages if not isinstance(m, SystemMessage)) > 1


def _check_int(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        shown = printable(repr(value))[:80]
        msg = f"must be an integer between {low} and {high} (got {shown})"
        raise _bad(field, msg)
    return value


def _event(error: InstanceError) -> dict[str, Any]:
    return {
        "instance_id": error.instance_id,
        "message": error.message,
        "error_type": type(error.error).__name__ if error.error is not None else None,
        "status_code": getattr(error.error, "status_code", None),
    }


# ------------------------------------------------------------------------ middleware


class AISearchContextMiddleware(AgentMiddleware[AISearchAgentState, Any]):
    """Retrieve from AI Search before model calls and cite the sources in the answer.

    Before a model call (see `retrieve`), it searches with the latest user message (after
    tool calls or earlier turns: a rewritten query, see `rewrite_query`) and appends the
    chunks to **that call's** system message as numbered passages `[1]`, `[2]` ...: the
    context is not written to the persisted messages, so the history never holds it twice.
    The Documents go to the state key `aisearch_documents` (the sources in number order).

    The answer (an AI message without tool calls) gets standard `Citation` annotations
    (`message.content_blocks`) for its `[n]` markers: `title`/`url` from the item key,
    `cited_text` from the chunk, the chunk id, score and instance under `extras`. Results of
    AI Search tools in the same turn (their Documents artifact) are numbered after the
    context in the model's view, so one `[n]` means one source everywhere.

    Where to search comes from the runtime context (`create_agent(...,
    context_schema=...)`, `agent.invoke(..., context=...)`): `target(context)` returns an
    `AISearchTarget` (or a mapping, or `None` for the retriever's own instance(s)); the
    default reads `instance_id`, `instance_ids`, `namespace` and `folder` from the context.
    Several instances need an `AISearchMultiRetriever`, whose `on_instance_error` policy
    applies (warn, raise or ignore); failed instances also go to `aisearch_errors`.

    Example:
        ```python
        from langchain.agents import create_agent
        from langchain_aisearch import AISearchContextMiddleware, AISearchRetriever

        middleware = AISearchContextMiddleware(
            AISearchRetriever(instance_id="docs", k=4), require_target=True
        )
        agent = create_agent(model, middleware=[middleware])
        agent.invoke({"messages": [("user", "grind size?")]}, context={"instance_id": "acme"})
        ```
    """

    state_schema = AISearchAgentState

    def __init__(
        self,
        retriever: AISearchRetriever | AISearchMultiRetriever,
        *,
        retrieve: RetrieveWhen = "every_turn",
        target: Callable[[Any], AISearchTarget | Mapping[str, Any] | None] = target_from_context,
        require_target: bool = False,
        rewrite_query: Callable[[Sequence[AnyMessage]], str] | BaseChatModel | None = None,
        max_chunks: int | None = None,
        max_chars: int | None = 12_000,
        tool_name: str = "search_knowledge_base",
        tool_description: str | None = None,
    ) -> None:
        """Configure the middleware.

        Args:
            retriever: Searches: its connection, `k`, search options, filters and (multi)
                error policy are used; its instance(s) are the default target.
            retrieve: `"every_turn"`: before every model call (after tool calls, with a
                rewritten query); `"first_turn"`: before the first model call after a user
                message only, later calls of the turn reuse its context; `"on_request"`:
                never by itself, the model gets a `tool_name` tool to search when it wants.
            target: Maps the runtime context to where to search (see the class doc).
            require_target: Refuse to run when the target is `None` (a multi-tenant agent
                must not fall back to the retriever's instance).
            rewrite_query: Forms the query when the conversation holds more than the one
                user message: a function of the messages returning the query, or a chat
                model prompted with `REWRITE_PROMPT` and the transcript. Default
                (`None`): `default_query` (the user message plus the latest tool-call
                arguments).
            max_chunks: Most passages in the context (1..50; None: all `k`).
            max_chars: Most characters of passage text in the context (100..1,000,000;
                None: no limit).
            tool_name: The tool's name with `retrieve="on_request"`.
            tool_description: The tool's description (a default says when to use it).

        Raises:
            InvalidRequestError: An option is out of range; the message names it.
        """
        super().__init__()
        if not isinstance(retriever, (AISearchRetriever, AISearchMultiRetriever)):
            msg = (
                "must be an AISearchRetriever or AISearchMultiRetriever "
                f"(got {type(retriever).__name__})"
            )
            raise _bad("retriever", msg)
        if retrieve not in _WHEN:
            allowed = ", ".join(repr(w) for w in _WHEN)
            raise _bad("retrieve", f"must be one of {allowed} (got {printable(repr(retrieve))})")
        if not callable(target):
            raise _bad("target", "must be a callable mapping the runtime context to a target")
        if rewrite_query is not None and not (
            isinstance(rewrite_query, BaseChatModel) or callable(rewrite_query)
        ):
            raise _bad("rewrite_query", "must be a chat model, a callable or None")
        self.retriever = retriever
        self.retrieve: RetrieveWhen = retrieve
        self.target = target
        self.require_target = require_target
        self.rewrite_query = rewrite_query
        self.max_chunks = (
            None if max_chunks is None else _check_int(max_chunks, "max_chunks", 1, 50)
        )
        self.max_chars = (
            None if max_chars is None else _check_int(max_chars, "max_chars", 100, 1_000_000)
        )
        self.tools: Sequence[BaseTool] = (
            [self._make_tool(tool_name, tool_description)] if retrieve == "on_request" else []
        )

    # ----------------------------------------------------------------- target, query

    def _retriever_for(
        self, context: Any
    ) -> tuple[AISearchRetriever | AISearchMultiRetriever, dict[str, Any] | None]:
        """The retriever for this context's target (sharing the connection pool) and filters."""
        found = check_target(self.target(context))
        if found is None:
            if self.require_target:
                msg = (
                    "names no AI Search instance (set instance_id or instance_ids, or a "
                    "`target` callable); require_target=True refuses the default instance"
                )
                raise _bad("context", msg)
            found = AISearchTarget()
        base = self.retriever
        update: dict[str, Any] = {}
        if found.namespace is not None:
            update["namespace"] = found.namespace
        if isinstance(base, AISearchRetriever):
            ids = found.instance_ids
            if ids is not None and len(ids) > 1:
                msg = "several instances need an AISearchMultiRetriever as the retriever"
                raise _bad("context.instance_ids", msg)
            instance = found.instance_id or (ids[0] if ids else None)
            if instance is not None:
                update["instance_id"] = instance
        else:
            ids = found.instance_ids or (
                (found.instance_id,) if found.instance_id is not None else None
            )
            if ids is not None:
                update["instance_ids"] = list(ids)
        retriever = base.model_copy(update=update) if update else base
        filters = None
        if found.folder is not None:
            filters = {**(base.filters or {}), "folder": found.folder}
        return retriever, filters

    def _query(self, messages: Sequence[AnyMessage]) -> str | None:
        rewriter = self.rewrite_query
        if rewriter is None or not _needs_rewrite(messages):
            return default_query(messages)
        if isinstance(rewriter, BaseChatModel):
            prompt = [SystemMessage(REWRITE_PROMPT), HumanMessage(_transcript(messages))]
            return rewriter.invoke(prompt).text.strip() or default_query(messages)
        return str(rewriter(messages)).strip() or default_query(messages)

    async def _aquery(self, messages: Sequence[AnyMessage]) -> str | None:
        rewriter = self.rewrite_query
        if isinstance(rewriter, BaseChatModel) and _needs_rewrite(messages):
            prompt = [SystemMessage(REWRITE_PROMPT), HumanMessage(_transcript(messages))]
            answer = await rewriter.ainvoke(prompt)
            return answer.text.strip() or default_query(messages)
        return self._query(messages)

    # ----------------------------------------------------------------- retrieval

    def _trim(self, docs: list[Document]) -> list[Document]:
        return docs[: self.max_chunks] if self.max_chunks is not None else docs

    def _report(
        self, retriever: AISearchMultiRetriever, docs: list[Document], errors: list[InstanceError]
    ) -> list[dict[str, Any]]:
        retriever._check_errors(docs, errors)  # raises per the policy
        if errors and retriever.on_instance_error == "warn":
            retriever._warn(errors)
        return [_event(e) for e in errors]

    def search(
        self, query: str, context: Any = None
    ) -> tuple[list[Document], list[dict[str, Any]]]:
        """Search the context's target: the documents and the failed instances.

        Args:
            query: The search query.
            context: The agent's runtime context (selects the target).

        Returns:
            `(documents, errors)`, each error a dict (`instance_id`, `message`, ...).
        """
        return self._search(query, *self._retriever_for(context))

    def _search(
        self,
        query: str,
        retriever: AISearchRetriever | AISearchMultiRetriever,
        filters: dict[str, Any] | None,
    ) -> tuple[list[Document], list[dict[str, Any]]]:
        if isinstance(retriever, AISearchRetriever):
            return self._trim(retriever.invoke(query, filters=filters)), []
        docs, errors = retriever.search_with_errors(query, filters=filters)
        reported = self._report(retriever, docs, errors)
        if errors and retriever.on_instance_error == "warn":
            for error in reported:
                _dispatch(error)
        return self._trim(docs), reported

    async def asearch(
        self, query: str, context: Any = None
    ) -> tuple[list[Document], list[dict[str, Any]]]:
        """Async `search`, on the client's async path."""
        return await self._asearch(query, *self._retriever_for(context))

    async def _asearch(
        self,
        query: str,
        retriever: AISearchRetriever | AISearchMultiRetriever,
        filters: dict[str, Any] | None,
    ) -> tuple[list[Document], list[dict[str, Any]]]:
        if isinstance(retriever, AISearchRetriever):
            return self._trim(await retriever.ainvoke(query, filters=filters)), []
        docs, errors = await retriever.asearch_with_errors(query, filters=filters)
        reported = self._report(retriever, docs, errors)
        if errors and retriever.on_instance_error == "warn":
            for error in reported:
                await _adispatch(error)
        return self._trim(docs), reported

    def _should_retrieve(self, request: ModelRequest[Any]) -> bool:
        if self.retrieve == "on_request":
            return False
        if self.retrieve == "every_turn":
            return True
        messages = request.messages
        return bool(messages) and isinstance(messages[-1], HumanMessage)

    # ----------------------------------------------------------------- model call

    def _prepare(
        self,
        request: ModelRequest[Any],
        retrieved: tuple[list[Document], list[dict[str, Any]]] | None,
    ) -> tuple[ModelRequest[Any], list[Document], dict[str, Any]]:
        update: dict[str, Any] = {}
        if retrieved is not None:
            context_docs, errors = retrieved
            update["aisearch_errors"] = errors
        elif self.retrieve == "first_turn":
            state = cast("Mapping[str, Any]", request.state)
            context_docs = list(state.get("aisearch_context") or [])
        else:
            context_docs = []
        overrides: dict[str, Any] = {}
        if self.retrieve != "on_request":
            text, context_docs = format_context(context_docs, max_chars=self.max_chars)
            overrides["system_message"] = _with_context(request.system_message, text)
            update["aisearch_context"] = context_docs
        messages, sources = number_sources(request.messages, context_docs)
        if messages != request.messages:
            overrides["messages"] = messages
        update["aisearch_documents"] = sources
        return request.override(**overrides) if overrides else request, sources, update

    @staticmethod
    def _finish(
        response: ModelResponse[Any] | AIMessage | ExtendedModelResponse[Any],
        sources: list[Document],
        update: dict[str, Any],
    ) -> ExtendedModelResponse[Any]:
        if isinstance(response, ExtendedModelResponse):
            inner, command = response.model_response, response.command
        elif isinstance(response, AIMessage):
            inner, command = ModelResponse(result=[response]), None
        else:
            inner, command = response, None
        result = [
            add_citations(m, sources) if isinstance(m, AIMessage) and not m.tool_calls else m
            for m in inner.result
        ]
        if command is not None and isinstance(command.update, Mapping):
            update = {**update, **command.update}
        return ExtendedModelResponse(
            model_response=ModelResponse(
                result=result, structured_response=inner.structured_response
            ),
            command=Command(update=update),
        )

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ExtendedModelResponse[Any]:
        """Retrieve (when due), add the numbered context, call the model, cite the answer."""
        retrieved = None
        if self._should_retrieve(request):
            query = self._query(request.messages)
            context = request.runtime.context if request.runtime is not None else None
            retrieved = self.search(query, context) if query else ([], [])
        new_request, sources, update = self._prepare(request, retrieved)
        return self._finish(handler(new_request), sources, update)

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ExtendedModelResponse[Any]:
        """Async `wrap_model_call`: retrieval on the client's async path."""
        retrieved = None
        if self._should_retrieve(request):
            query = await self._aquery(request.messages)
            context = request.runtime.context if request.runtime is not None else None
            retrieved = await self.asearch(query, context) if query else ([], [])
        new_request, sources, update = self._prepare(request, retrieved)
        return self._finish(await handler(new_request), sources, update)

    # ----------------------------------------------------------------- on_request tool

    def _make_tool(self, name: str, description: str | None) -> BaseTool:
        def search_tool(query: str, runtime: ToolRuntime[Any, Any]) -> tuple[str, list[Document]]:
            target = self._retriever_for(runtime.context)  # a bad context raises
            with tool_errors():  # the service's errors go to the model
                docs, errors = self._search(query, *target)
            return _tool_text(docs, errors), docs

        async def asearch_tool(
            query: str, runtime: ToolRuntime[Any, Any]
        ) -> tuple[str, list[Document]]:
            target = self._retriever_for(runtime.context)
            with tool_errors():
                docs, errors = await self._asearch(query, *target)
            return _tool_text(docs, errors), docs

        return StructuredTool.from_function(
            func=search_tool,
            coroutine=asearch_tool,
            name=name,
            description=description or TOOL_DESCRIPTION,
            response_format="content_and_artifact",
            handle_tool_error=True,  # "AI Search error: ..." to the model, which may retry
        )


TOOL_DESCRIPTION = (
    "Search the knowledge base for passages relevant to a question. Use it before answering "
    "anything about the knowledge base's subject, and again with a more specific query when "
    "the passages do not answer the question. Returns numbered passages with their source "
    "and score; cite them by number, e.g. [1]. Input: a short natural-language query."
)
"""The default description of the `retrieve="on_request"` tool."""


def _tool_text(docs: list[Document], errors: list[dict[str, Any]]) -> str:
    text = format_documents(docs)
    if errors:
        failed = ", ".join(str(e["instance_id"]) for e in errors)
        text += f"\n\n(Some instances failed and are missing from the results: {failed}.)"
    return text


def _dispatch(error: dict[str, Any]) -> None:
    # outside any run (no parent run id) there is no one to send it to: the warning and
    # the state still report the failure
    with contextlib.suppress(RuntimeError):
        dispatch_custom_event(INSTANCE_ERROR_EVENT, error)


async def _adispatch(error: dict[str, Any]) -> None:
    with contextlib.suppress(RuntimeError):
        await adispatch_custom_event(INSTANCE_ERROR_EVENT, error)
