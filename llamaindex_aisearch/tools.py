"""Agent tools over AI Search: ``search`` (chunks) and ``answer`` (a grounded answer)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llama_index.core.base.response.schema import Response
from llama_index.core.schema import NodeWithScore
from llama_index.core.tools.tool_spec.base import SPEC_FUNCTION_TYPE, BaseToolSpec
from typing_extensions import Unpack

from aisearch._names import citation_markers

from ._agents import check_folder, node_result, with_folder
from ._chat import TARGET_KEYS, ChatKwargs
from ._common import resolve_connection
from ._options import check_option_keywords, split_kwargs
from .filters import to_aisearch_filters
from .query_engine import AISearchQueryEngine
from .retrievers import AISearchMultiRetriever, AISearchRetriever

__all__ = ["AISearchToolSpec"]

DEFAULT_TOP_K = 5
_MAX_FOLDERS = 32


def format_nodes(nodes: Sequence[NodeWithScore], *, max_chars: int = 1200) -> str:
    """Render nodes as numbered, attributed passages for an LLM."""
    if not nodes:
        return "No matching passages."
    parts = []
    for i, node in enumerate(nodes, start=1):
        meta = node.node.metadata
        source = meta.get("filename") or meta.get("source") or node.node.node_id
        where = f" (instance {meta['instance_id']})" if meta.get("instance_id") else ""
        score = f", score {node.score:.3f}" if node.score is not None else ""
        text = node.node.get_content()
        if len(text) > max_chars:
            text = text[:max_chars].rstrip() + " ..."
        parts.append(f"[{i}] {source}{where}{score}\n{text}")
    return "\n\n".join(parts)


def cited_numbers(answer: str, count: int) -> set[int]:
    """The source numbers an answer's ``[n]`` markers cite (``[1, 3]`` cites two), 1..count."""
    found = {n for marker in citation_markers(answer) for n in marker.numbers}
    return {n for n in found if 1 <= n <= count}


def _with_sources(answer: str, nodes: Sequence[NodeWithScore]) -> str:
    """The answer, then its sources: the cited ones first, marked, then the rest.

    Each source keeps the number its ``[n]`` markers use (the ``source_nodes`` order).
    """
    if not nodes:
        return answer
    cited = cited_numbers(answer, len(nodes))
    order = sorted(range(1, len(nodes) + 1), key=lambda n: n not in cited)  # stable
    sources = ", ".join(
        f"[{n}]{' (cited)' if n in cited else ''} "
        f"{nodes[n - 1].node.metadata.get('filename') or nodes[n - 1].node.node_id}"
        for n in order
    )
    return f"{answer}\n\nSources: {sources}"


def _search_response(nodes: Sequence[NodeWithScore], folder: str | None) -> Response:
    """The search tool's output: readable passages, the nodes, and the results as data."""
    metadata: dict[str, Any] = {"results": [node_result(n) for n in nodes]}
    text = format_nodes(nodes)
    if folder is not None:
        metadata["folder"] = folder = check_folder(folder)
        if not nodes:
            text = f"No matching passages in folder {folder!r}."
    return Response(response=text, source_nodes=list(nodes), metadata=metadata)


class AISearchToolSpec(BaseToolSpec):
    """Two agent tools over AI Search: ``search`` and ``answer`` (sync and async).

    ``search(query)`` returns the matching passages, numbered and attributed; ``answer(
    question)`` returns the service's grounded answer followed by its sources (those the
    answer cites first, marked ``(cited)``, then the rest, each under the number its ``[n]``
    markers use; ``source_nodes`` keep the service's order). Both return
    a ``Response`` whose text is what the agent's LLM reads and whose ``source_nodes`` are
    the chunks as nodes, so ``ToolOutput.raw_output.source_nodes`` (and an agent chat
    response's ``source_nodes``) carry the sources.

    Args:
        instance_id: The instance to search (or ``instance_ids``, several instances; neither
            with ``public_endpoint=...``, whose endpoint chooses).
        instance_ids: Several instances (namespace search up to 10, fan-out beyond).
        similarity_top_k: Passages per call (default 5).
        model: Generation model for ``answer``.
        system_prompt: System message for ``answer``.
        namespace: The instances' namespace.
        connection: A shared :class:`AISearchConnection`.
        **kwargs: Search options and connection settings, as for the query engine.

    Example:
        .. code-block:: python

            tools = AISearchToolSpec(instance_id="docs").to_tool_list()
            agent = FunctionAgent(tools=tools, llm=my_llm)
    """

    spec_functions: list[SPEC_FUNCTION_TYPE] = [  # noqa: RUF012 - BaseToolSpec's contract
        ("search", "asearch"),
        ("answer", "aanswer"),
    ]

    def __init__(
        self,
        instance_id: str | None = None,
        *,
        system_prompt: str | None = None,
        **kwargs: Unpack[ChatKwargs],
    ) -> None:
        check_option_keywords(type(self), kwargs, other=TARGET_KEYS)
        search, rest = split_kwargs(kwargs)
        target = {k: rest.pop(k) for k in TARGET_KEYS & set(rest)}
        instance_ids, namespace = target.get("instance_ids"), target.get("namespace")
        connection = resolve_connection(target.pop("connection", None), rest)
        similarity_top_k = search.pop("similarity_top_k", DEFAULT_TOP_K)
        retriever_options: dict[str, Any] = dict(search)
        if instance_id is not None and instance_ids is not None:
            raise TypeError("pass exactly one of instance_id=... or instance_ids=[...]")
        if instance_id is None and instance_ids is None and not connection.uses_public_endpoint:
            raise TypeError(
                "pass exactly one of instance_id=... or instance_ids=[...] (or neither with "
                "public_endpoint=... or AISEARCH_PUBLIC_ENDPOINT)"
            )

        def build(**options: Any) -> AISearchRetriever | AISearchMultiRetriever:
            common: dict[str, Any] = {
                "similarity_top_k": similarity_top_k,
                "namespace": namespace,
                "connection": connection,
                **retriever_options,
                **options,
            }
            if instance_id is not None or instance_ids is None:
                return AISearchRetriever(instance_id, **common)
            return AISearchMultiRetriever(instance_ids, on_instance_error="ignore", **common)

        self._build = build
        self._retriever = build()
        self._by_folder: dict[str, AISearchRetriever | AISearchMultiRetriever] = {}
        self._engine: AISearchQueryEngine | None = None
        if instance_ids is not None and len(instance_ids) > 10:
            # Namespace chat completions take at most 10 instances: offer search only.
            self.spec_functions = [("search", "asearch")]
            return
        self._engine = AISearchQueryEngine(
            instance_id,
            system_prompt=system_prompt,
            connection=connection,
            similarity_top_k=similarity_top_k,
            **target,
            **search,
        )

    @property
    def retriever(self) -> AISearchRetriever | AISearchMultiRetriever:
        """The retriever behind ``search``."""
        return self._retriever

    @property
    def query_engine(self) -> AISearchQueryEngine:
        """The query engine behind ``answer``.

        Raises:
            ValueError: With more than 10 instances (no ``answer`` tool then).
        """
        if self._engine is None:
            raise ValueError(
                "answer needs at most 10 instances (namespace chat completions); "
                "this tool spec offers search only"
            )
        return self._engine

    def _retriever_for(self, folder: Any) -> AISearchRetriever | AISearchMultiRetriever:
        """The search retriever, limited to ``folder`` when the model gives one.

        Raises:
            aisearch.InvalidRequestError: A bad folder, or one outside the configured
                ``filters`` (a model's folder only narrows the search), naming ``folder``.
        """
        folder = check_folder(folder)
        if folder is None:
            return self._retriever
        retriever = self._by_folder.get(folder)
        if retriever is None:
            filters = with_folder(to_aisearch_filters(self._retriever.filters), folder)
            retriever = self._build(filters=filters)
            self._by_folder[folder] = retriever
            while len(self._by_folder) > _MAX_FOLDERS:
                self._by_folder.pop(next(iter(self._by_folder)))
        return retriever

    def search(self, query: str, folder: str | None = None) -> Response:
        """Search the knowledge base for passages to answer from, with their sources.

        Use it when you write the answer yourself: it returns the most relevant passages,
        numbered, each with its document key and relevance score; cite them as [1], [2].
        Use ``answer`` instead for a ready answer written by the knowledge base.

        Args:
            query: What to look for: a question or keywords, self-contained (name the
                subject rather than saying "it").
            folder: Only search documents in this folder, such as "brewing/" (as the keys
                in earlier results show it); leave it out to search everything.
        """
        nodes = self._retriever_for(folder).retrieve(query)
        return _search_response(nodes, folder)

    async def asearch(self, query: str, folder: str | None = None) -> Response:
        """Search the knowledge base for passages to answer from, with their sources.

        Use it when you write the answer yourself: it returns the most relevant passages,
        numbered, each with its document key and relevance score; cite them as [1], [2].
        Use ``answer`` instead for a ready answer written by the knowledge base.

        Args:
            query: What to look for: a question or keywords, self-contained (name the
                subject rather than saying "it").
            folder: Only search documents in this folder, such as "brewing/" (as the keys
                in earlier results show it); leave it out to search everything.
        """
        nodes = await self._retriever_for(folder).aretrieve(query)
        return _search_response(nodes, folder)

    def answer(self, question: str) -> Response:
        """Get an answer written by the knowledge base itself, citing its sources.

        Use it when a ready, grounded answer is enough; use ``search`` instead when you
        need the passages themselves (to compare, quote or combine them).

        Args:
            question: The question to answer, self-contained.
        """
        response = self.query_engine.query(question)
        assert isinstance(response, Response)
        text = _with_sources(response.response or "", response.source_nodes)
        return Response(
            response=text, source_nodes=response.source_nodes, metadata=response.metadata
        )

    async def aanswer(self, question: str) -> Response:
        """Get an answer written by the knowledge base itself, citing its sources.

        Use it when a ready, grounded answer is enough; use ``search`` instead when you
        need the passages themselves (to compare, quote or combine them).

        Args:
            question: The question to answer, self-contained.
        """
        response = await self.query_engine.aquery(question)
        assert isinstance(response, Response)
        text = _with_sources(response.response or "", response.source_nodes)
        return Response(
            response=text, source_nodes=response.source_nodes, metadata=response.metadata
        )
