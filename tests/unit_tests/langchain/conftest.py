"""MockTransport fakes of the AI Search wire format for the LangChain unit tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from aisearch import AISearchClient, AsyncAISearchClient

BASE_URL = "http://aisearch.test/client/v4"
TOKEN = "tok-SECRET-123"


def chunk(n: int, instance_id: str | None = None, score: float | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": f"chunk-{n}",
        "type": "text",
        "score": score if score is not None else round(0.9 - n * 0.05, 3),
        "text": f"Passage {n} about espresso.",
        "item": {"key": f"doc-{n}.md", "timestamp": 1735689600 + n, "metadata": {"n": n}},
        "scoring_details": {"vector_score": 0.8},
    }
    if instance_id is not None:
        data["instance_id"] = instance_id
    return data


def search_envelope(chunks: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "success": True,
        "errors": [],
        "messages": [],
        "result": {"search_query": "rewritten", "query_kind": "text", "chunks": chunks, **extra},
    }


def completion(text: str = "Grind fine [1].", chunks: list[dict[str, Any]] | None = None):
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "@cf/test/model",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16},
        "chunks": chunks if chunks is not None else [chunk(1), chunk(2)],
    }


def sse_body(pieces: list[str], *, done: bool = True, chunks: list[dict[str, Any]] | None = None):
    lines = [f"event: chunks\ndata: {json.dumps(chunks or [chunk(1)])}\n\n"]
    for piece in pieces:
        delta = {
            "id": "id-1",
            "object": "chat.completion.chunk",
            "model": "@cf/test/model",
            "choices": [{"index": 0, "delta": {"content": piece}}],
        }
        lines.append(f"data: {json.dumps(delta)}\n\n")
    if done:
        final = {
            "id": "id-1",
            "object": "chat.completion.chunk",
            "model": "@cf/test/model",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
        }
        lines.append(f"data: {json.dumps(final)}\n\n")
        lines.append("data: [DONE]\n\n")
    return "".join(lines).encode()


class Recorder:
    """Records requests and answers them with a user-provided function."""

    def __init__(self, respond: Callable[[httpx.Request, dict[str, Any]], httpx.Response]):
        self.respond = respond
        self.requests: list[tuple[httpx.Request, dict[str, Any]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else {}
        self.requests.append((request, body))
        return self.respond(request, body)

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [b for _, b in self.requests]

    @property
    def paths(self) -> list[str]:
        return [r.url.path for r, _ in self.requests]


def make_clients(recorder: Recorder) -> tuple[AISearchClient, AsyncAISearchClient]:
    transport = httpx.MockTransport(recorder)
    kwargs: dict[str, Any] = {
        "account_id": "acc",
        "api_token": TOKEN,
        "base_url": BASE_URL,
        "max_retries": 0,
    }
    sync = AISearchClient(**kwargs, http_client=httpx.Client(transport=transport))
    asyncc = AsyncAISearchClient(**kwargs, http_client=httpx.AsyncClient(transport=transport))
    return sync, asyncc


@pytest.fixture
def search_server():
    """A fake that answers any search with `body.max_num_results` chunks."""

    def respond(request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        n = body.get("ai_search_options", {}).get("retrieval", {}).get("max_num_results", 10)
        return httpx.Response(200, json=search_envelope([chunk(i) for i in range(1, n + 1)]))

    recorder = Recorder(respond)
    sync, asyncc = make_clients(recorder)
    return recorder, sync, asyncc
