"""LazyClients: one sync client, one async client per event loop, close and aclose."""

from __future__ import annotations

import asyncio

from aisearch import AISearchClient, AsyncAISearchClient
from aisearch._lazy import LazyClients

SETTINGS = {"account_id": "acc", "api_token": "tok", "base_url": "http://127.0.0.1:9/client/v4"}


def _sync() -> AISearchClient:
    return AISearchClient(**SETTINGS)


def _async() -> AsyncAISearchClient:
    return AsyncAISearchClient(**SETTINGS)


def test_the_sync_client_is_built_once_and_closed_on_request() -> None:
    clients = LazyClients()
    first = clients.sync(_sync)
    assert clients.sync(_sync) is first
    clients.close()
    assert first._client.is_closed
    assert clients.sync(_sync) is not first
    clients.reset()
    clients.close()  # nothing built since the reset: nothing to close


def test_one_async_client_per_event_loop() -> None:
    clients = LazyClients()

    async def get() -> AsyncAISearchClient:
        client = clients.async_(_async)
        assert clients.async_(_async) is client
        return client

    first = asyncio.run(get())
    second = asyncio.run(get())  # the first loop is gone: its client is let go
    assert first is not second
    assert first._client.is_closed and second._client.is_closed  # closed at loop shutdown
    assert len(clients._by_loop) == 1


def test_without_a_running_loop_one_client_serves_every_caller() -> None:
    clients = LazyClients()
    loopless = clients.async_(_async)
    assert clients.async_(_async) is loopless

    async def close() -> None:
        await clients.aclose()

    asyncio.run(close())
    assert loopless._client.is_closed


def test_reset_retires_async_clients_and_aclose_closes_them_in_their_loop() -> None:
    clients = LazyClients()

    async def scenario() -> None:
        old = clients.async_(_async)
        clients.reset()
        new = clients.async_(_async)
        assert new is not old
        assert not old._client.is_closed  # a request may still run on it
        await clients.aclose()
        assert old._client.is_closed and new._client.is_closed
        assert clients.async_(_async) is not new

    asyncio.run(scenario())


def test_aclose_keeps_the_clients_of_other_running_loops() -> None:
    clients = LazyClients()
    runner = asyncio.Runner()
    other = runner.run(_built(clients))
    old_loop = runner.get_loop()

    async def close_here() -> None:
        clients.reset()  # other's entry becomes retired: still kept for its loop
        clients.async_(_async)
        await clients.aclose()

    asyncio.run(close_here())
    assert not other._client.is_closed
    assert any(loop is old_loop for loop, _, _ in clients._retired)
    runner.close()  # the loop's shutdown closes its client
    assert other._client.is_closed


async def _built(clients: LazyClients) -> AsyncAISearchClient:
    return clients.async_(_async)
