"""Streaming edge cases a real server does not easily produce (httpx.MockTransport SSE)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from llama_index.core.base.response.schema import AsyncStreamingResponse, StreamingResponse

from llamaindex_aisearch import AISearchConnection, AISearchLLM, AISearchQueryEngine


def _delta(content: str | None, finish: str | None = None, usage: Any = None) -> bytes:
    body: dict[str, Any] = {
        "id": "cmpl-1",
        "object": "chat.completion.chunk",
        "model": "@cf/test",
        "choices": [
            {"index": 0, "delta": {} if content is None else {"content": content}}
            | ({"finish_reason": finish} if finish else {})
        ],
    }
    if usage is not None:
        body["usage"] = usage
    return f"data: {json.dumps(body)}\n\n".encode()


CHUNKS = [{"id": "c1", "score": 0.7, "text": "Grind fine.", "item": {"key": "espresso.md"}}]
USAGE = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}


def _sse(with_sources: bool) -> bytes:
    parts = [f"event: chunks\ndata: {json.dumps(CHUNKS)}\n\n".encode()] if with_sources else []
    parts += [_delta("Hel"), _delta("lo"), _delta(None, "stop", USAGE), b"data: [DONE]\n\n"]
    return b"".join(parts)


def _conn(body: bytes) -> AISearchConnection:
    def handler(request: httpx.Request) -> httpx.Response:
        assert json.loads(request.content)["stream"] is True
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    async def ahandler(request: httpx.Request) -> httpx.Response:
        return handler(request)

    return AISearchConnection(
        account_id="acct",
        api_token="tok",
        base_url="https://example.invalid/client/v4",
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        async_http_client=httpx.AsyncClient(transport=httpx.MockTransport(ahandler)),
    )


@pytest.mark.parametrize("with_sources", [True, False])
def test_query_stream_keeps_the_first_token(with_sources: bool) -> None:
    engine = AISearchQueryEngine("docs", streaming=True, connection=_conn(_sse(with_sources)))
    response = engine.query("espresso")
    assert isinstance(response, StreamingResponse)
    assert [n.node.node_id for n in response.source_nodes] == (["c1"] if with_sources else [])
    assert list(response.response_gen) == ["Hel", "lo"]
    assert response.metadata is not None
    assert response.metadata["usage"] == USAGE
    assert response.metadata["model"] == "@cf/test"
    assert response.metadata["finish_reason"] == "stop"


@pytest.mark.parametrize("with_sources", [True, False])
async def test_async_query_stream_keeps_the_first_token(with_sources: bool) -> None:
    engine = AISearchQueryEngine("docs", streaming=True, connection=_conn(_sse(with_sources)))
    response = await engine.aquery("espresso")
    assert isinstance(response, AsyncStreamingResponse)
    assert len(response.source_nodes) == (1 if with_sources else 0)
    assert [t async for t in response.async_response_gen()] == ["Hel", "lo"]
    assert response.metadata is not None and response.metadata["usage"] == USAGE


def test_llm_stream_carries_sources_from_the_first_chunk_and_usage_last() -> None:
    llm = AISearchLLM("docs", connection=_conn(_sse(True)))
    chunks = list(llm.stream_complete("espresso"))
    assert [c.delta for c in chunks] == ["Hel", "lo", ""]
    assert chunks[0].additional_kwargs["sources"][0]["id"] == "c1"
    assert chunks[0].additional_kwargs["source_nodes"][0].node.metadata["instance_id"] == "docs"
    assert chunks[-1].text == "Hello"
    assert chunks[-1].additional_kwargs["usage"] == USAGE
    assert chunks[0].additional_kwargs["usage"] is None
