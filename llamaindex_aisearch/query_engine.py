"""A LlamaIndex query engine answered by AI Search's own retrieval and generation."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Generator
from typing import Any

from llama_index.core.base.base_query_engine import BaseQueryEngine
from llama_index.core.base.response.schema import (
    RESPONSE_TYPE,
    AsyncStreamingResponse,
    Response,
    StreamingResponse,
)
from llama_index.core.callbacks import CallbackManager
from llama_index.core.prompts.mixin import PromptMixinType
from llama_index.core.schema import QueryBundle
from typing_extensions import Unpack

from aisearch import InvalidRequestError

from ._chat import ChatKwargs, ChatTarget, TargetOwner, check_text
from ._streams import (
    AsyncDeltas,
    Deltas,
    acollect_sources,
    collect_sources,
    completion_metadata,
)

__all__ = ["AISearchQueryEngine"]


class AISearchQueryEngine(TargetOwner, BaseQueryEngine):
    """Answer queries with AI Search chat completions (server-side retrieval + generation).

    ``query`` / ``aquery`` return a ``Response`` whose ``source_nodes`` are the retrieved
    chunks (same nodes as :class:`AISearchRetriever`) and whose ``metadata`` holds
    ``search_query``, ``model``, ``usage``, ``finish_reason`` and, for several instances,
    ``errors``. With ``streaming=True``, ``query`` returns a ``StreamingResponse`` and
    ``aquery`` an ``AsyncStreamingResponse``; their ``source_nodes`` are set before the first
    token is read, and ``metadata`` gains ``usage`` / ``finish_reason`` once the stream ends.
    Query start/end instrumentation events fire as for any LlamaIndex query engine.

    Args:
        instance_id: The instance to ask (or ``instance_ids`` for up to 10 in a namespace).
        instance_ids: Several instances of one namespace (namespace chat completions).
        model: Generation model (default: the instance's).
        system_prompt: Optional system message sent before the query.
        streaming: Return streaming responses.
        namespace: The instances' namespace (default: the connection's).
        extra_body: Raw top-level request fields merged last.
        connection: A shared :class:`AISearchConnection`.
        callback_manager: LlamaIndex (legacy) callback manager.
        **kwargs: Search options (``similarity_top_k``, ``filters``, ``retrieval_type`` ...,
            as for :class:`AISearchRetriever`) and connection settings. The search
            options are attributes too: assigning one (``engine.similarity_top_k = 3``)
            validates it at once and the next query sends it.

    Example:
        .. code-block:: python

            engine = AISearchQueryEngine("docs", streaming=True)
            response = engine.query("How fine should I grind for espresso?")
            print(response.source_nodes[0].node.metadata["filename"])
            for token in response.response_gen:
                print(token, end="")
    """

    def __init__(
        self,
        instance_id: str | None = None,
        *,
        system_prompt: str | None = None,
        streaming: bool = False,
        callback_manager: CallbackManager | None = None,
        **kwargs: Unpack[ChatKwargs],
    ) -> None:
        self._set_target(ChatTarget(instance_id, kwargs, owner=type(self)))
        check_text(system_prompt, "system_prompt")
        if not isinstance(streaming, bool):
            raise InvalidRequestError(
                f"streaming: must be True or False (got {type(streaming).__name__})"
            )
        self.system_prompt = system_prompt
        """System message sent before each query (``None``: the instance's own prompt)."""
        self.streaming = streaming
        """Whether ``query`` / ``aquery`` return streaming responses."""
        super().__init__(callback_manager=callback_manager)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self._target.label!r}, model={self._target.model!r}, "
            f"streaming={self.streaming!r})"
        )

    def _get_prompt_modules(self) -> PromptMixinType:
        return {}

    def _messages(self, query: str) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        if self.system_prompt:
            messages.append({"role": "system", "content": self.system_prompt})
        messages.append({"role": "user", "content": query})
        return messages

    def _query(self, query_bundle: QueryBundle) -> RESPONSE_TYPE:
        query = query_bundle.query_str
        messages = self._messages(query)
        if not self.streaming:
            completion = self._target.complete(messages)
            nodes, metadata = completion_metadata(
                completion, query=query, instance_id=self._target.instance_id
            )
            return Response(response=completion.content, source_nodes=nodes, metadata=metadata)
        state, events = collect_sources(
            self._target.stream(messages), instance_id=self._target.instance_id, query=query
        )
        return StreamingResponse(
            response_gen=_tokens(events),
            source_nodes=state.nodes,
            metadata=state.metadata,
        )

    async def _aquery(self, query_bundle: QueryBundle) -> RESPONSE_TYPE:
        query = query_bundle.query_str
        messages = self._messages(query)
        if not self.streaming:
            completion = await self._target.acomplete(messages)
            nodes, metadata = completion_metadata(
                completion, query=query, instance_id=self._target.instance_id
            )
            return Response(response=completion.content, source_nodes=nodes, metadata=metadata)
        state, events = await acollect_sources(
            self._target.astream(messages), instance_id=self._target.instance_id, query=query
        )
        return AsyncStreamingResponse(
            response_gen=_atokens(events),
            source_nodes=state.nodes,
            metadata=state.metadata,
        )


def _tokens(deltas: Deltas) -> Generator[str, None, None]:
    with contextlib.closing(deltas):
        yield from (text for text in deltas if text)


async def _atokens(deltas: AsyncDeltas) -> AsyncGenerator[str, None]:
    async with contextlib.aclosing(deltas):
        async for text in deltas:
            if text:
                yield text
