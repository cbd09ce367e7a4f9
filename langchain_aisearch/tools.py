"""Agent tools: search an AI Search instance, or ask it for a cited answer."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForToolRun, CallbackManagerForToolRun
from langchain_core.documents import Document
from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import BaseTool, ToolException
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from aisearch import AISearchError, InvalidRequestError
from aisearch._filters import validate_filters
from aisearch._names import printable
from langchain_aisearch._common import (
    AISearchConnection,
    ClosesOnExit,
    HidesSecretsInErrors,
    hide_secrets,
    setting_names,
)
from langchain_aisearch._mapping import find_citations, sources_to_documents
from langchain_aisearch.chat_models import ChatAISearch
from langchain_aisearch.retrievers import AISearchMultiRetriever, AISearchRetriever

__all__ = [
    "AISearchAnswerTool",
    "AISearchQueryInput",
    "AISearchSearchInput",
    "AISearchSearchTool",
    "check_folder",
    "format_documents",
]

MAX_FOLDER_BYTES = 64
"""Longest folder value: only the first 64 bytes of a metadata value are filterable."""


def check_folder(value: Any, field: str = "folder") -> str:
    """Check a folder filter value: a key prefix ending in '/', at most 64 UTF-8 bytes.

    Raises:
        InvalidRequestError: Naming `field`: not a string, no trailing '/', control
            characters or lone surrogates, or longer than 64 bytes.
    """
    if not isinstance(value, str):
        msg = f"{field}: must be a string (got {type(value).__name__})"
        raise InvalidRequestError(msg)
    if not value.endswith("/"):
        shown = printable(value)[:80]
        msg = f"{field}: a folder ends with '/', e.g. 'docs/guides/' (got {shown!r})"
        raise InvalidRequestError(msg)
    if any(ord(c) < 32 or 0xD800 <= ord(c) <= 0xDFFF for c in value):
        msg = f"{field}: must not hold control characters or lone surrogates"
        raise InvalidRequestError(msg)
    if len(value.encode("utf-8")) > MAX_FOLDER_BYTES:
        msg = f"{field}: at most {MAX_FOLDER_BYTES} bytes (only those are filterable)"
        raise InvalidRequestError(msg)
    return value


class AISearchQueryInput(BaseModel):
    """Input of the AI Search answer tool."""

    query: str = Field(min_length=1, description="What to look for, in natural language.")


class AISearchSearchInput(BaseModel):
    """Input of the AI Search search tool: a query, optionally limited to a folder or filter."""

    query: str = Field(
        min_length=1,
        description="What to look for, in natural language: the question or the fact you need.",
    )
    folder: str | None = Field(
        default=None,
        description=(
            "Only search documents in this folder: a path ending in '/', e.g. 'docs/guides/'. "
            "Omit to search everything."
        ),
    )
    filters: dict[str, Any] | None = Field(
        default=None,
        description=(
            "Optional metadata filter, one condition per field, e.g. "
            '{"timestamp": {"$gte": 1735689600000}} or {"filename": "guide.md"}; operators: '
            "$eq $ne $lt $lte $gt $gte $in $nin. Omit unless the user asks to narrow the search."
        ),
    )

    @field_validator("folder")
    @classmethod
    def _check_folder(cls, value: str | None) -> str | None:
        return None if value is None else check_folder(value)

    @field_validator("filters")
    @classmethod
    def _check_filters(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else validate_filters(value)


def format_documents(docs: Sequence[Document], *, start: int = 1) -> str:
    """Render documents as numbered, readable text for a model: key, score, content.

    Args:
        docs: Documents from an AI Search retriever.
        start: The number of the first document (the next ones follow).

    Returns:
        One `[n] source (score, instance)` header plus text per document, or a short
        note when there are none.
    """
    if not docs:
        return "No matching documents found."
    parts = []
    for n, doc in enumerate(docs, start=start):
        meta = doc.metadata
        details = []
        if isinstance(meta.get("score"), (int, float)):
            details.append(f"score {meta['score']:.3f}")
        if meta.get("instance_id"):
            details.append(f"instance {meta['instance_id']}")
        suffix = f" ({', '.join(details)})" if details else ""
        parts.append(f"[{n}] {meta.get('source') or doc.id}{suffix}\n{doc.page_content}")
    return "\n\n".join(parts)


@contextlib.contextmanager
def _tool_errors() -> Iterator[None]:
    """Raise AI Search errors as `ToolException`s (shown to the model)."""
    try:
        yield
    except AISearchError as exc:
        raise ToolException(f"AI Search error: {exc}") from exc


def _config(
    run_manager: CallbackManagerForToolRun | AsyncCallbackManagerForToolRun | None,
) -> RunnableConfig:
    return {"callbacks": run_manager.get_child() if run_manager else None}


class _AISearchTool(ClosesOnExit, HidesSecretsInErrors, BaseTool):
    """Runs a retriever or chat model on the query; AI Search errors become tool errors."""

    model_config = ConfigDict(
        extra="forbid",
        arbitrary_types_allowed=True,
        hide_input_in_errors=True,
        validate_assignment=True,
    )

    def __setattr__(self, name: str, value: Any) -> None:
        error: ValidationError | None = None
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:  # `tool.retriever = 5`: the error every class raises
            error = hide_secrets(exc, {name: value}, known=setting_names(type(self)))
        if error is not None:
            raise error

    args_schema: type[BaseModel] = AISearchQueryInput
    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"

    def _runnable(self) -> Runnable[str, Any]:
        raise NotImplementedError

    def _connection(self) -> AISearchConnection:
        """The retriever or chat model whose built core clients the tool closes."""
        raise NotImplementedError

    def close(self) -> None:
        """Close the sync core client its retriever or chat model built (not injected ones).

        The tool stays usable: its next call opens a new pool.
        """
        self._connection().close()

    async def aclose(self) -> None:
        """Close the core clients its retriever or chat model built (not injected ones)."""
        await self._connection().aclose()

    def _output(self, result: Any) -> tuple[str, list[Document]]:
        raise NotImplementedError

    def _run(
        self, query: str, run_manager: CallbackManagerForToolRun | None = None
    ) -> tuple[str, list[Document]]:
        with _tool_errors():
            result = self._runnable().invoke(query, config=_config(run_manager))
        return self._output(result)

    async def _arun(
        self, query: str, run_manager: AsyncCallbackManagerForToolRun | None = None
    ) -> tuple[str, list[Document]]:
        with _tool_errors():
            result = await self._runnable().ainvoke(query, config=_config(run_manager))
        return self._output(result)


class AISearchSearchTool(_AISearchTool):
    """Search tool: returns readable passages to the model and the Documents as artifact.

    The model may narrow a search with `folder` (`'docs/guides/'`) or `filters` (a metadata
    filter): both are checked before any request, and are added to the retriever's own
    `filters`, never replacing them: a key the retriever fixes (say a tenant's `folder`)
    cannot be set by the model (a `ToolException` says so).

    Example:
        ```python
        from langchain_aisearch import AISearchRetriever, AISearchSearchTool

        tool = AISearchSearchTool(retriever=AISearchRetriever(instance_id="docs", k=4))
        message = tool.invoke(
            {"type": "tool_call", "id": "1", "name": tool.name, "args": {"query": "grind size"}}
        )
        message.artifact  # list[Document]
        ```
    """

    name: str = "aisearch_search"
    description: str = (
        "Search the knowledge base (Cloudflare AI Search). Returns the most relevant passages, "
        "numbered, each with its source key, relevance score and text. Use it when you will "
        "write the answer yourself from the passages (cite them by number, e.g. [1]) or need "
        "to check a fact; prefer aisearch_answer when a short ready-made answer is enough. "
        "Optional: folder limits the search to one folder, filters to matching metadata."
    )
    args_schema: type[BaseModel] = AISearchSearchInput

    retriever: AISearchRetriever | AISearchMultiRetriever
    """The retriever the tool searches with."""

    def _runnable(self) -> Runnable[str, list[Document]]:
        return self.retriever

    def _connection(self) -> AISearchConnection:
        return self.retriever

    def _output(self, result: list[Document]) -> tuple[str, list[Document]]:
        return format_documents(result), result

    def _filters(self, folder: str | None, filters: dict[str, Any] | None) -> dict[str, Any] | None:
        """The retriever's filters plus the model's; a key both set is refused."""
        asked = dict(filters or {})
        if folder is not None:
            if "folder" in asked:
                msg = "give folder or filters['folder'], not both"
                raise ToolException(msg)
            asked["folder"] = folder
        if not asked:
            return None
        fixed = self.retriever.filters or {}
        for key in asked:
            if key in fixed:
                msg = (
                    f"filters: {printable(key)!r} is fixed by this tool's configuration "
                    f"({fixed[key]!r}); search again without it"
                )
                raise ToolException(msg)
        return {**fixed, **asked}

    def _run(  # type: ignore[override]
        self,
        query: str,
        folder: str | None = None,
        filters: dict[str, Any] | None = None,
        run_manager: CallbackManagerForToolRun | None = None,
    ) -> tuple[str, list[Document]]:
        merged = self._filters(folder, filters)
        call = {} if merged is None else {"filters": merged}
        with _tool_errors():
            result = self.retriever.invoke(query, config=_config(run_manager), **call)
        return self._output(result)

    async def _arun(  # type: ignore[override]
        self,
        query: str,
        folder: str | None = None,
        filters: dict[str, Any] | None = None,
        run_manager: AsyncCallbackManagerForToolRun | None = None,
    ) -> tuple[str, list[Document]]:
        merged = self._filters(folder, filters)
        call = {} if merged is None else {"filters": merged}
        with _tool_errors():
            result = await self.retriever.ainvoke(query, config=_config(run_manager), **call)
        return self._output(result)


def _answer_content(message: BaseMessage, docs: Sequence[Document]) -> str:
    """The answer, then its sources: those the answer cites first, marked, then the rest.

    Each source keeps the number its `[n]` markers use (the service's order).
    """
    text = message.text
    if not docs:
        return text
    sources = message.response_metadata.get("sources") or []
    cited = {c["extras"]["source_index"] for c in find_citations(text, sources)}
    order = sorted(range(1, len(docs) + 1), key=lambda n: n not in cited)  # stable
    lines = "\n".join(
        f"[{n}]{' (cited)' if n in cited else ''} {docs[n - 1].metadata.get('source')}"
        for n in order
    )
    return f"{text}\n\nSources:\n{lines}"


class AISearchAnswerTool(_AISearchTool):
    """Answer tool: asks AI Search for a cited answer; the sources travel as artifact.

    The model reads the answer, then `Sources:`: the ones the answer cites (its `[n]`
    markers) first, marked `(cited)`, then the others, each under the number its markers
    use. The artifact keeps the service's order (`artifact[n - 1]` is source `[n]`).

    Example:
        ```python
        from langchain_aisearch import AISearchAnswerTool, ChatAISearch

        tool = AISearchAnswerTool(chat=ChatAISearch(instance_id="docs"))
        tool.invoke({"query": "How fine should I grind for espresso?"})
        ```
    """

    name: str = "aisearch_answer"
    description: str = (
        "Ask the knowledge base (Cloudflare AI Search) a question and get a short answer it "
        "writes from its documents, with numbered sources. Use it when the documents alone "
        "answer the question and you do not need to read the passages; use aisearch_search "
        "to read them and write the answer yourself. Input: the question."
    )

    chat: ChatAISearch
    """The chat model that retrieves and answers."""

    def _runnable(self) -> Runnable[str, BaseMessage]:
        return self.chat

    def _connection(self) -> AISearchConnection:
        return self.chat

    def _output(self, result: BaseMessage) -> tuple[str, list[Document]]:
        docs = sources_to_documents(result)
        return _answer_content(result, docs), docs
