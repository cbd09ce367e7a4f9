"""A multi-turn LlamaIndex chat engine where AI Search retrieves with the whole conversation."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Generator, Sequence
from threading import Thread
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, ChatResponse, MessageRole
from llama_index.core.chat_engine.types import (
    AgentChatResponse,
    BaseChatEngine,
    StreamingAgentChatResponse,
)
from llama_index.core.memory import BaseMemory, ChatMemoryBuffer
from typing_extensions import Unpack

from aisearch import InvalidRequestError

from ._chat import ChatKwargs, ChatTarget, TargetOwner, check_text
from ._mapping import to_aisearch_messages
from ._streams import (
    AsyncDeltas,
    Deltas,
    acollect_sources,
    collect_sources,
    completion_metadata,
)

__all__ = ["AISearchChatEngine"]

DEFAULT_TOKEN_LIMIT = 6000
"""Default memory budget (tokens of history sent with each turn)."""


class AISearchChatEngine(TargetOwner, BaseChatEngine):
    """Multi-turn chat over AI Search: the service retrieves with the conversation.

    Each turn sends the system prompt, the history kept in ``memory`` and the new user
    message to chat completions, so AI Search retrieves with the conversation (follow-up
    questions such as "and how long should it steep?" find the right chunks). Replies are
    written back to memory, after a stream completes too.

    ``chat`` / ``achat`` return ``AgentChatResponse``; ``stream_chat`` / ``astream_chat``
    return ``StreamingAgentChatResponse`` (consume ``response_gen`` or
    ``async_response_gen()``). Both carry ``source_nodes`` (set before the first token when
    streaming). ``AgentChatResponse.metadata`` holds ``search_query``, ``model``, ``usage``.

    Args:
        instance_id: The instance to chat with (or ``instance_ids``, up to 10).
        instance_ids: Several instances of one namespace.
        model: Generation model (default: the instance's).
        system_prompt: Optional system message sent first on every turn.
        memory: A LlamaIndex memory; default ``ChatMemoryBuffer`` (``token_limit``).
        chat_history: Initial history (ignored when ``memory`` is given).
        token_limit: Token budget of the default memory.
        namespace: The instances' namespace (default: the connection's).
        extra_body: Raw top-level request fields merged last.
        connection: A shared :class:`AISearchConnection`.
        **kwargs: Search options and connection settings, as for the query engine (the
            search options are attributes too, as there).

    Example:
        .. code-block:: python

            chat = AISearchChatEngine("docs")
            chat.chat("What is a good ratio for pour-over?")
            reply = chat.chat("And the water temperature?")
            print(reply.response, reply.source_nodes[0].node.metadata["filename"])
    """

    def __init__(
        self,
        instance_id: str | None = None,
        *,
        system_prompt: str | None = None,
        memory: BaseMemory | None = None,
        chat_history: Sequence[ChatMessage] | None = None,
        token_limit: int = DEFAULT_TOKEN_LIMIT,
        **kwargs: Unpack[ChatKwargs],
    ) -> None:
        self._set_target(ChatTarget(instance_id, kwargs, owner=type(self)))
        check_text(system_prompt, "system_prompt")
        if isinstance(token_limit, bool) or not isinstance(token_limit, int) or token_limit < 1:
            raise InvalidRequestError(
                f"token_limit: must be a positive integer (got {token_limit!r})"
            )
        self.system_prompt = system_prompt
        """System message sent first on every turn."""
        self._memory: BaseMemory = memory or ChatMemoryBuffer.from_defaults(
            chat_history=list(chat_history) if chat_history else None, token_limit=token_limit
        )

    @property
    def memory(self) -> BaseMemory:
        """The conversation memory."""
        return self._memory

    @property
    def chat_history(self) -> list[ChatMessage]:
        """Every message of the conversation so far."""
        return list(self._memory.get_all())

    def reset(self) -> None:
        """Forget the conversation."""
        self._memory.reset()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._target.label!r}, model={self._target.model!r})"

    def _prefix(self) -> list[ChatMessage]:
        if self.system_prompt:
            return [ChatMessage(role=MessageRole.SYSTEM, content=self.system_prompt)]
        return []

    def _start_turn(self, message: str, chat_history: Sequence[ChatMessage] | None) -> list[Any]:
        if chat_history is not None:
            self._memory.set(list(chat_history))
        self._memory.put(ChatMessage(role=MessageRole.USER, content=message))
        return to_aisearch_messages(self._prefix() + list(self._memory.get()))

    async def _astart_turn(
        self, message: str, chat_history: Sequence[ChatMessage] | None
    ) -> list[Any]:
        if chat_history is not None:
            await self._memory.aset(list(chat_history))
        await self._memory.aput(ChatMessage(role=MessageRole.USER, content=message))
        return to_aisearch_messages(self._prefix() + list(await self._memory.aget()))

    def chat(
        self, message: str, chat_history: list[ChatMessage] | None = None
    ) -> AgentChatResponse:
        """Send one user message; return the reply with its sources."""
        messages = self._start_turn(message, chat_history)
        completion = self._target.complete(messages)
        nodes, metadata = completion_metadata(
            completion, query=message, instance_id=self._target.instance_id
        )
        self._memory.put(ChatMessage(role=MessageRole.ASSISTANT, content=completion.content))
        return AgentChatResponse(response=completion.content, source_nodes=nodes, metadata=metadata)

    async def achat(
        self, message: str, chat_history: list[ChatMessage] | None = None
    ) -> AgentChatResponse:
        """Async form of :meth:`chat`."""
        messages = await self._astart_turn(message, chat_history)
        completion = await self._target.acomplete(messages)
        nodes, metadata = completion_metadata(
            completion, query=message, instance_id=self._target.instance_id
        )
        await self._memory.aput(ChatMessage(role=MessageRole.ASSISTANT, content=completion.content))
        return AgentChatResponse(response=completion.content, source_nodes=nodes, metadata=metadata)

    def stream_chat(
        self, message: str, chat_history: list[ChatMessage] | None = None
    ) -> StreamingAgentChatResponse:
        """Stream the reply; ``source_nodes`` are set before the first token.

        Errors the server reports before streaming raise here; an error mid-stream is
        raised from ``response_gen``. The reply is written to memory when the stream ends.
        """
        messages = self._start_turn(message, chat_history)
        state, events = collect_sources(
            self._target.stream(messages), instance_id=self._target.instance_id, query=message
        )
        response = StreamingAgentChatResponse(
            chat_stream=_chat_stream(events), source_nodes=state.nodes
        )
        thread = Thread(target=_write_to_memory, args=(response, self._memory), daemon=True)
        response.write_response_to_history_thread = thread
        thread.start()
        return response

    async def astream_chat(
        self, message: str, chat_history: list[ChatMessage] | None = None
    ) -> StreamingAgentChatResponse:
        """Async form of :meth:`stream_chat` (consume ``async_response_gen()``)."""
        messages = await self._astart_turn(message, chat_history)
        state, events = await acollect_sources(
            self._target.astream(messages), instance_id=self._target.instance_id, query=message
        )
        response = StreamingAgentChatResponse(
            achat_stream=_achat_stream(events), source_nodes=state.nodes
        )
        response.awrite_response_to_history_task = asyncio.create_task(
            response.awrite_response_to_history(self._memory)
        )
        return response


def _write_to_memory(response: StreamingAgentChatResponse, memory: BaseMemory) -> None:
    # The error is stored on the response and re-raised to the reader of response_gen;
    # swallowing it here keeps the thread from dying with an unhandled exception.
    with contextlib.suppress(Exception):
        response.write_response_to_history(memory)


def _reply(text: str, delta: str | None = None) -> ChatResponse:
    return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=text), delta=delta)


def _chat_stream(deltas: Deltas) -> Generator[ChatResponse, None, None]:
    text = ""
    with contextlib.closing(deltas):
        for delta in deltas:
            if delta:
                text += delta
                yield _reply(text, delta)
    if not text:
        yield _reply("")


async def _achat_stream(deltas: AsyncDeltas) -> AsyncGenerator[ChatResponse, None]:
    text = ""
    async with contextlib.aclosing(deltas):
        async for delta in deltas:
            if delta:
                text += delta
                yield _reply(text, delta)
    if not text:
        yield _reply("")
