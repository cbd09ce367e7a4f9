"""The adapters' built clients are closed: at their loop's shutdown, or when their owner goes."""

from __future__ import annotations

import asyncio
import gc
import weakref

import httpx

from aisearch import AISearchClient
from aisearch._lazy import _PENDING, close_at_loop_shutdown, close_when_collected


class FakeAsyncClient:
    """Counts its closes (the helpers only call ``aclose``)."""

    def __init__(self) -> None:
        self.closed = 0

    async def aclose(self) -> None:
        self.closed += 1


class Owner:
    """Stands for a retriever or a connection."""


def test_a_client_is_closed_at_the_shutdown_of_its_loop():
    client, owner = FakeAsyncClient(), Owner()

    async def use() -> None:
        close_at_loop_shutdown(client, owner)
        assert client.closed == 0

    asyncio.run(use())
    assert client.closed == 1  # asyncio.run finalised the generator in the loop
    assert not _PENDING


def test_closing_the_returned_generator_closes_the_client_now():
    client, owner = FakeAsyncClient(), Owner()

    async def use() -> None:
        closer = close_at_loop_shutdown(client, owner)
        await closer.aclose()
        assert client.closed == 1

    asyncio.run(use())
    assert client.closed == 1  # not closed twice


def test_a_client_is_closed_soon_after_its_owner_is_collected_while_the_loop_runs():
    client = FakeAsyncClient()

    async def use() -> None:
        owner = Owner()
        close_at_loop_shutdown(client, owner)
        del owner
        gc.collect()
        for _ in range(5):  # call_soon_threadsafe, then the task
            await asyncio.sleep(0)
        assert client.closed == 1

    asyncio.run(use())
    assert client.closed == 1


def test_finished_loops_are_not_kept_alive_by_a_long_lived_owner():
    owner = Owner()
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []
    clients = [FakeAsyncClient() for _ in range(5)]

    async def use(client: FakeAsyncClient) -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        close_at_loop_shutdown(client, owner)

    for client in clients:
        asyncio.run(use(client))
    gc.collect()
    assert [c.closed for c in clients] == [1] * 5
    assert [ref() for ref in loops] == [None] * 5  # the owner's finalizers were detached


def test_a_sync_client_pool_is_closed_when_the_client_is_collected():
    client = AISearchClient(account_id="acc", api_token="tok")
    pool = client._client
    close_when_collected(client)
    assert not pool.is_closed
    del client
    gc.collect()
    assert pool.is_closed


def test_an_injected_http_client_is_never_closed():
    http = httpx.Client()
    client = AISearchClient(account_id="acc", api_token="tok", http_client=http)
    close_when_collected(client)
    del client
    gc.collect()
    assert not http.is_closed
    http.close()


def test_closers_of_a_loop_closed_without_shutdown_are_dropped_later():
    # a hand-run loop closed without shutdown_asyncgens never runs its closers: the next
    # registration drops them instead of keeping that loop forever
    loop = asyncio.new_event_loop()
    client, owner = FakeAsyncClient(), Owner()

    async def register() -> None:
        close_at_loop_shutdown(client, owner)

    loop.run_until_complete(register())
    loop.close()
    assert any(pending is loop for pending in _PENDING.values())
    asyncio.run(register())
    assert not any(pending is loop for pending in _PENDING.values())
    assert not _PENDING


def test_a_close_without_stack_left_is_deferred_to_the_next_call():
    # a finalizer may run deep in a recursion (the garbage collector runs wherever it must)
    from aisearch import _lazy

    calls: list[str] = []
    depth = {"fail": 2}

    def close(name: str) -> None:
        if depth["fail"]:
            depth["fail"] -= 1
            raise RecursionError("maximum recursion depth exceeded")
        calls.append(name)

    _lazy._safely(close, "pool")  # no exception escapes the finalizer
    assert calls == []
    assert list(_lazy._DEFERRED) == [(close, ("pool",))]
    _lazy._run_deferred()  # still no stack: kept for later, no endless retry
    assert calls == []
    assert list(_lazy._DEFERRED) == [(close, ("pool",))]
    close_when_collected(AISearchClient(account_id="acc", api_token="tok"))  # drains it
    assert calls == ["pool"]
    assert _lazy._DEFERRED == []
