"""AISearchLLM: chat completions as a LlamaIndex LLM, sync and async, streamed or not."""

from __future__ import annotations

import pytest
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.instrumentation.events.llm import (
    LLMChatEndEvent,
    LLMChatStartEvent,
    LLMCompletionEndEvent,
)
from llama_index.core.schema import NodeWithScore

from aisearch import NotFoundError
from llamaindex_aisearch import AISearchConnection, AISearchLLM

from .conftest import EventCollector

MESSAGES = [ChatMessage(role=MessageRole.USER, content="How should I store roasted beans?")]


def _check_sources(extra: dict, instance: str) -> None:
    nodes = extra["source_nodes"]
    assert nodes and all(isinstance(n, NodeWithScore) for n in nodes)
    assert all(n.node.metadata["instance_id"] == instance for n in nodes)
    assert [s["id"] for s in extra["sources"]] == [n.node.node_id for n in nodes]
    assert extra["model"]


def test_chat_and_complete(
    conn: AISearchConnection, docs_instance: str, collector: EventCollector
) -> None:
    llm = AISearchLLM(docs_instance, connection=conn, system_prompt="Be concise.")
    response = llm.chat(MESSAGES)
    assert response.message.role == MessageRole.ASSISTANT
    assert response.message.content
    _check_sources(response.additional_kwargs, docs_instance)
    assert response.additional_kwargs["usage"]["total_tokens"] > 0
    assert response.raw["choices"][0]["message"]["content"] == response.message.content
    completion = llm.complete("What is a cupping session?")
    assert completion.text
    _check_sources(completion.additional_kwargs, docs_instance)
    assert collector.of(LLMChatStartEvent) and collector.of(LLMChatEndEvent)
    assert collector.of(LLMCompletionEndEvent)


async def test_achat_and_acomplete(conn: AISearchConnection, docs_instance: str) -> None:
    llm = AISearchLLM(docs_instance, connection=conn)
    response = await llm.achat(MESSAGES)
    assert response.message.content
    _check_sources(response.additional_kwargs, docs_instance)
    completion = await llm.acomplete("What is a cupping session?")
    assert completion.text


def test_stream_chat_and_stream_complete(conn: AISearchConnection, docs_instance: str) -> None:
    llm = AISearchLLM(docs_instance, cache=False, connection=conn)
    chunks = list(llm.stream_chat(MESSAGES))
    assert len(chunks) > 2
    _check_sources(chunks[0].additional_kwargs, docs_instance)  # sources from the first chunk
    assert chunks[-1].message.content == "".join(c.delta or "" for c in chunks)
    assert chunks[-1].additional_kwargs["usage"]["completion_tokens"] > 0
    completions = list(llm.stream_complete("What is a cupping session?"))
    assert completions[-1].text == "".join(c.delta or "" for c in completions)
    _check_sources(completions[0].additional_kwargs, docs_instance)


async def test_astream_chat_and_astream_complete(
    conn: AISearchConnection, docs_instance: str
) -> None:
    llm = AISearchLLM(docs_instance, cache=False, connection=conn)
    chunks = [c async for c in await llm.astream_chat(MESSAGES)]
    assert len(chunks) > 2
    _check_sources(chunks[0].additional_kwargs, docs_instance)
    assert chunks[-1].message.content == "".join(c.delta or "" for c in chunks)
    completions = [c async for c in await llm.astream_complete("What is a cupping session?")]
    assert completions[-1].text


def test_errors_propagate_typed(conn: AISearchConnection) -> None:
    llm = AISearchLLM("missing", connection=conn)
    with pytest.raises(NotFoundError):
        llm.complete("x")
    with pytest.raises(NotFoundError):
        llm.stream_chat(MESSAGES)


async def test_generation_settings_reach_the_server(
    conn: AISearchConnection, docs_instance: str
) -> None:
    full = AISearchLLM(docs_instance, connection=conn).complete("How should I store beans?")
    short = AISearchLLM(docs_instance, connection=conn, temperature=0.0, max_tokens=5)
    for response in (
        short.complete("How should I store beans?"),
        await short.acomplete("How should I store beans?"),
    ):
        assert response.additional_kwargs["finish_reason"] == "length"
        assert response.additional_kwargs["usage"]["completion_tokens"] <= 5
        assert len(response.text) < len(full.text)
    word = full.text.split()[3]
    stopped = AISearchLLM(docs_instance, connection=conn, stop=[word])
    text = "".join(r.delta or "" for r in stopped.stream_complete("How should I store beans?"))
    assert word not in text and len(text) < len(full.text)
