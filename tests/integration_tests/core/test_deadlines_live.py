"""Deadlines against real hostile servers on 127.0.0.1 (sync and async).

The server (``hostile.py``) trickles a valid answer, sends a body that never ends, keeps a
stream alive with comments only, or holds connections until the pool is exhausted. Each
call must end with ``APITimeoutError`` near its configured time. The time bound asserted is
generous (the machine is shared); pytest-timeout guards the calls that would never end.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from aisearch import (
    AISearchClient,
    APIConnectionError,
    APITimeoutError,
    AsyncAISearchClient,
)
from tests.integration_tests.core.hostile import SEARCH_BODY, HostileServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

TIMEOUT = 0.5
BOUND = 5.0  # seconds: ten times TIMEOUT, far below what the hostile servers would take
MESSAGES = [{"role": "user", "content": "q"}]


@pytest.fixture(scope="module")
def server() -> Iterator[HostileServer]:
    with HostileServer(interval=0.05, step=4) as srv:
        yield srv


def sync_client(server: HostileServer, **kwargs: Any) -> AISearchClient:
    args: dict[str, Any] = {"timeout": TIMEOUT, "max_retries": 0, **kwargs}
    return AISearchClient(account_id="acc", api_token="t", base_url=server.base_url, **args)


def async_client(server: HostileServer, **kwargs: Any) -> AsyncAISearchClient:
    args: dict[str, Any] = {"timeout": TIMEOUT, "max_retries": 0, **kwargs}
    return AsyncAISearchClient(account_id="acc", api_token="t", base_url=server.base_url, **args)


def timed_sync(call: Any) -> tuple[BaseException, float]:
    started = time.monotonic()
    with pytest.raises(APITimeoutError) as info:
        call()
    return info.value, time.monotonic() - started


async def timed_async(call: Any) -> tuple[BaseException, float]:
    started = time.monotonic()
    with pytest.raises(APITimeoutError) as info:
        await call()
    return info.value, time.monotonic() - started


def drain_sync(iterator: Iterator[Any]) -> None:
    for _ in iterator:
        pass


async def drain_async(iterator: Any) -> None:
    async for _ in iterator:
        pass


def test_the_trickle_answer_is_valid_and_takes_long(server):
    # the premise of the trickle tests: the answer is good, and takes ~4 s to arrive
    assert len(SEARCH_BODY) / server.step * server.interval > 3.0
    with sync_client(server) as client:
        assert client.search("ok", "q").chunks[0].id == "c1"


# ---------------------------------------------------------------------- plain calls


@pytest.mark.parametrize("instance", ["trickle", "endless", "slowheaders"])
def test_sync_search_ends_at_the_timeout(server, instance):
    with sync_client(server) as client:
        _, took = timed_sync(lambda: client.search(instance, "q"))
    assert took < BOUND


@pytest.mark.parametrize("instance", ["trickle", "endless", "slowheaders"])
async def test_async_search_ends_at_the_timeout(server, instance):
    async with async_client(server) as client:
        _, took = await timed_async(lambda: client.search(instance, "q"))
    assert took < BOUND


def test_sync_total_timeout_caps_the_retries(server):
    with sync_client(server, max_retries=10, total_timeout=1.0) as client:
        _, took = timed_sync(lambda: client.search("trickle", "q"))
    assert took < BOUND


async def test_async_total_timeout_caps_the_retries(server):
    async with async_client(server, max_retries=10, total_timeout=1.0) as client:
        _, took = await timed_async(lambda: client.search("trickle", "q"))
    assert took < BOUND


# ---------------------------------------------------------------------- streams


@pytest.mark.parametrize("instance", ["comments", "silent"])
def test_sync_stream_without_events_ends_at_the_idle_timeout(server, instance):
    with sync_client(server, timeout=30.0, stream_idle_timeout=TIMEOUT) as client:
        _, took = timed_sync(lambda: drain_sync(client.stream_chat_completions(instance, MESSAGES)))
    assert took < BOUND


@pytest.mark.parametrize("instance", ["comments", "silent"])
async def test_async_stream_without_events_ends_at_the_idle_timeout(server, instance):
    async with async_client(server, timeout=30.0, stream_idle_timeout=TIMEOUT) as client:
        _, took = await timed_async(
            lambda: drain_async(client.stream_chat_completions(instance, MESSAGES))
        )
    assert took < BOUND


def test_sync_comment_stream_ends_at_the_default_idle_timeout(server):
    with sync_client(server) as client:  # idle limit: the timeout, 0.5 s
        _, took = timed_sync(
            lambda: drain_sync(client.stream_chat_completions("comments", MESSAGES))
        )
    assert took < BOUND


async def test_async_comment_stream_ends_at_the_default_idle_timeout(server):
    async with async_client(server) as client:
        _, took = await timed_async(
            lambda: drain_async(client.stream_chat_completions("comments", MESSAGES))
        )
    assert took < BOUND


def test_sync_stream_total_timeout(server):
    with sync_client(server, timeout=30.0, total_timeout=TIMEOUT) as client:
        _, took = timed_sync(
            lambda: drain_sync(client.stream_chat_completions("comments", MESSAGES))
        )
    assert took < BOUND


async def test_async_stream_total_timeout(server):
    async with async_client(server, timeout=30.0, total_timeout=TIMEOUT) as client:
        _, took = await timed_async(
            lambda: drain_async(client.stream_chat_completions("comments", MESSAGES))
        )
    assert took < BOUND


# ---------------------------------------------------------------------- a full pool


def test_sync_full_pool_times_out_once_without_retry(server):
    http = httpx.Client(limits=httpx.Limits(max_connections=2))
    client = sync_client(server, http_client=http, max_retries=3)
    holder = client.with_options(timeout=20.0, max_retries=0)
    outcomes: list[BaseException] = []

    def hold() -> None:
        try:
            holder.search("hold", "q")
        except APIConnectionError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=hold) for _ in range(2)]
    for thread in threads:
        thread.start()
    sleeps: list[float] = []
    try:
        server.wait_held(2)
        client._sleep = sleeps.append
        error, took = timed_sync(lambda: client.search("ok", "q"))
    finally:
        server.release()
        for thread in threads:
            thread.join(10)
        http.close()
    assert isinstance(error.__cause__, httpx.PoolTimeout)
    assert sleeps == []  # not retried
    assert took < BOUND
    assert len(outcomes) == 2  # the holders were answered by the release, not left hanging


async def test_async_full_pool_times_out_once_without_retry(server):
    http = httpx.AsyncClient(limits=httpx.Limits(max_connections=2))
    client = async_client(server, http_client=http, max_retries=3)
    holder = client.with_options(timeout=20.0, max_retries=0)
    sleeps: list[float] = []

    async def sleep(delay: float) -> None:
        sleeps.append(delay)

    async def hold() -> BaseException | None:
        try:
            await holder.search("hold", "q")
        except APIConnectionError as exc:
            return exc
        return None

    holders = [asyncio.create_task(hold()) for _ in range(2)]
    try:
        await asyncio.to_thread(server.wait_held, 2)
        client._sleep = sleep
        error, took = await timed_async(lambda: client.search("ok", "q"))
    finally:
        server.release()
        outcomes = await asyncio.gather(*holders)
        await http.aclose()
    assert isinstance(error.__cause__, httpx.PoolTimeout)
    assert sleeps == []
    assert took < BOUND
    assert all(isinstance(o, APIConnectionError) for o in outcomes)
