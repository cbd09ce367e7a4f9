"""`with` / `async with`, `close()` / `aclose()`: the pools an object built are closed."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

import aisearch._async._transport
import aisearch._sync._transport
from langchain_aisearch import (
    AISearchAnswerTool,
    AISearchMultiRetriever,
    AISearchRetriever,
    AISearchSearchTool,
    ChatAISearch,
)

from .conftest import BASE_URL, TOKEN, Recorder, chunk, completion, make_clients, search_envelope

CONN: dict[str, Any] = {"account_id": "acc", "api_token": TOKEN, "base_url": BASE_URL}


@pytest.fixture
def built(monkeypatch):
    """Clients the objects build themselves (owned, so closable) answer through a fake."""

    def respond(request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        if request.url.path.endswith("/chat/completions"):
            return httpx.Response(200, json=completion())
        return httpx.Response(200, json=search_envelope([chunk(1, "docs"), chunk(2, "blog")]))

    recorder = Recorder(respond)
    transport = httpx.MockTransport(recorder)
    pools: list[httpx.Client | httpx.AsyncClient] = []

    def sync_pool(timeout: httpx.Timeout) -> httpx.Client:
        pools.append(httpx.Client(transport=transport, timeout=timeout))
        return pools[-1]  # type: ignore[return-value]

    def async_pool(timeout: httpx.Timeout) -> httpx.AsyncClient:
        pools.append(httpx.AsyncClient(transport=transport, timeout=timeout))
        return pools[-1]  # type: ignore[return-value]

    monkeypatch.setattr(aisearch._sync._transport, "new_client", sync_pool)
    monkeypatch.setattr(aisearch._async._transport, "new_async_client", async_pool)
    return pools


OBJECTS = {
    "retriever": lambda: AISearchRetriever(instance_id="docs", **CONN),
    "multi": lambda: AISearchMultiRetriever(instance_ids=["docs", "blog"], **CONN),
    "chat": lambda: ChatAISearch(instance_id="docs", **CONN),
    "search tool": lambda: AISearchSearchTool(
        retriever=AISearchRetriever(instance_id="docs", **CONN)
    ),
    "answer tool": lambda: AISearchAnswerTool(chat=ChatAISearch(instance_id="docs", **CONN)),
}
QUERY: dict[str, Any] = {"search tool": {"query": "grind"}, "answer tool": {"query": "grind"}}


@pytest.mark.parametrize("name", list(OBJECTS))
def test_with_closes_the_pool_the_object_built(name, built):
    with OBJECTS[name]() as obj:
        obj.invoke(QUERY.get(name, "grind"))
        (pool,) = built
        assert not pool.is_closed
    assert pool.is_closed
    obj.invoke(QUERY.get(name, "grind"))  # still usable: the next call opens a new pool
    assert len(built) == 2
    assert not built[1].is_closed
    obj.close()
    assert built[1].is_closed


@pytest.mark.parametrize("name", list(OBJECTS))
async def test_async_with_closes_the_pool_the_object_built(name, built):
    async with OBJECTS[name]() as obj:
        await obj.ainvoke(QUERY.get(name, "grind"))
        (pool,) = built
        assert not pool.is_closed
    assert pool.is_closed
    await obj.ainvoke(QUERY.get(name, "grind"))
    await obj.aclose()
    assert all(p.is_closed for p in built)


def test_injected_clients_stay_open():
    def respond(request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        return httpx.Response(200, json=search_envelope([chunk(1)]))

    sync, _ = make_clients(Recorder(respond))
    with AISearchRetriever(instance_id="docs", client=sync) as retriever:
        retriever.invoke("grind")
    assert not sync._client.is_closed  # the caller's client: the caller closes it
    assert retriever.invoke("grind")
    sync._client.close()


async def test_injected_async_clients_stay_open():
    def respond(request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        return httpx.Response(200, json=search_envelope([chunk(1)]))

    _, asyncc = make_clients(Recorder(respond))
    async with AISearchRetriever(instance_id="docs", async_client=asyncc) as retriever:
        await retriever.ainvoke("grind")
    assert not asyncc._client.is_closed
    await asyncc._client.aclose()
