"""AISearchChatEngine: multi-turn chat where the service retrieves with the conversation."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.chat_engine.types import AgentChatResponse, StreamingAgentChatResponse

from aisearch import NotFoundError, StreamInterruptedError
from aisearch_local.testing import LocalServer
from llamaindex_aisearch import AISearchChatEngine, AISearchConnection


def _recording_connection(
    local_server: LocalServer, bodies: list[dict[str, Any]], request: pytest.FixtureRequest
) -> AISearchConnection:
    def record(req: httpx.Request) -> None:
        if req.url.path.endswith("/chat/completions"):
            bodies.append(json.loads(req.content))

    http = httpx.Client(event_hooks={"request": [record]})
    request.addfinalizer(http.close)  # an injected client is never closed by the connection
    return AISearchConnection(
        account_id=local_server.account_id,
        api_token=local_server.token,
        base_url=local_server.base_url,
        max_retries=0,
        http_client=http,
    )


def test_multi_turn_sends_the_conversation_and_remembers(
    local_server: LocalServer, docs_instance: str, request: pytest.FixtureRequest
) -> None:
    bodies: list[dict[str, Any]] = []
    chat = AISearchChatEngine(
        docs_instance,
        system_prompt="You are a barista.",
        query_rewrite=True,
        cache=False,
        connection=_recording_connection(local_server, bodies, request),
    )
    first = chat.chat("Tell me about the Kenya Nyeri coffee")
    assert isinstance(first, AgentChatResponse)
    assert first.response
    assert first.source_nodes
    assert first.metadata is not None and first.metadata["usage"]["total_tokens"] > 0
    second = chat.chat("How is it processed?")
    # The service retrieved with the conversation: the follow-up alone says nothing of Kenya.
    assert any("kenya" in n.node.metadata["filename"] for n in second.source_nodes)
    assert [m["role"] for m in bodies[1]["messages"]] == ["system", "user", "assistant", "user"]
    assert bodies[1]["messages"][1]["content"] == "Tell me about the Kenya Nyeri coffee"
    assert bodies[1]["messages"][2]["content"] == first.response
    history = chat.chat_history
    assert [m.role for m in history] == [
        MessageRole.USER,
        MessageRole.ASSISTANT,
        MessageRole.USER,
        MessageRole.ASSISTANT,
    ]
    assert history[-1].content == second.response
    chat.reset()
    assert chat.chat_history == []


async def test_achat(conn: AISearchConnection, docs_instance: str) -> None:
    chat = AISearchChatEngine(docs_instance, connection=conn)
    reply = await chat.achat("What is a washed process?")
    assert reply.response and reply.source_nodes
    reply2 = await chat.achat("And a natural one?")
    assert reply2.response
    assert len(chat.chat_history) == 4


def test_stream_chat_sources_first_and_memory_after(
    conn: AISearchConnection, docs_instance: str
) -> None:
    chat = AISearchChatEngine(docs_instance, cache=False, connection=conn)
    response = chat.stream_chat("How do I dial in espresso?")
    assert isinstance(response, StreamingAgentChatResponse)
    assert response.source_nodes  # before any token is read
    tokens = list(response.response_gen)
    assert len(tokens) > 1
    text = "".join(tokens).strip()
    history = chat.chat_history
    assert [m.role for m in history] == [MessageRole.USER, MessageRole.ASSISTANT]
    assert history[1].content == text == response.response


async def test_astream_chat(conn: AISearchConnection, docs_instance: str) -> None:
    chat = AISearchChatEngine(docs_instance, cache=False, connection=conn)
    response = await chat.astream_chat("How do I clean a burr grinder?")
    assert response.source_nodes
    tokens = [t async for t in response.async_response_gen()]
    assert len(tokens) > 1
    history = chat.chat_history
    assert len(history) == 2
    assert history[1].content == "".join(tokens).strip()


def test_explicit_chat_history_replaces_memory(
    conn: AISearchConnection, docs_instance: str
) -> None:
    chat = AISearchChatEngine(docs_instance, connection=conn)
    chat.chat("first question about espresso")
    history = [
        ChatMessage(role=MessageRole.USER, content="Tell me about moka pots"),
        ChatMessage(role=MessageRole.ASSISTANT, content="Moka pots brew on the stove."),
    ]
    chat.chat("How fine should the grind be?", chat_history=history)
    assert [m.content for m in chat.chat_history[:2]] == [m.content for m in history]
    assert len(chat.chat_history) == 4


def test_errors_propagate_typed(
    conn: AISearchConnection, local_server: LocalServer, docs_instance: str
) -> None:
    with pytest.raises(NotFoundError):
        AISearchChatEngine("missing", connection=conn).chat("x")
    with pytest.raises(NotFoundError):
        AISearchChatEngine("missing", connection=conn).stream_chat("x")
    local_server.set_fault(docs_instance, truncate_stream=True)
    response = AISearchChatEngine(docs_instance, cache=False, connection=conn).stream_chat(
        "How do I dial in espresso?"
    )
    with pytest.raises(StreamInterruptedError):
        list(response.response_gen)


async def test_async_stream_error_propagates(
    conn: AISearchConnection, local_server: LocalServer, docs_instance: str
) -> None:
    local_server.set_fault(docs_instance, truncate_stream=True)
    chat = AISearchChatEngine(docs_instance, cache=False, connection=conn)
    response = await chat.astream_chat("How do I dial in espresso?")
    with pytest.raises(StreamInterruptedError):
        async for _ in response.async_response_gen():
            pass
