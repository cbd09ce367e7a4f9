"""Streams are objects: iterate, close, ``with``; closing releases the connection."""

from __future__ import annotations

import asyncio
import gc
import warnings
from typing import Any

import httpcore
import httpx
import pytest

from aisearch import (
    AISearchClient,
    APITimeoutError,
    AsyncAISearchClient,
    AsyncEventStream,
    EventStream,
    SourcesEvent,
    StreamEndEvent,
    TextDeltaEvent,
)
from tests.unit_tests.core.conftest import stream_content
from tests.unit_tests.core.payloads import ACCOUNT, STREAM_NEW, TOKEN

MESSAGES = [{"role": "user", "content": "What does the document say?"}]
SSE = {"content-type": "text/event-stream; charset=utf-8"}
KINDS = [SourcesEvent, TextDeltaEvent, TextDeltaEvent, StreamEndEvent]
STREAMS = [
    ("stream_chat_completions", ("docs", MESSAGES)),
    ("stream_namespace_chat_completions", (["docs"], MESSAGES)),
    ("stream_legacy_ai_search", ("docs", "How?")),
]


def sse_handler(mode: str):
    return lambda request: httpx.Response(
        200, headers=SSE, content=stream_content(mode, [STREAM_NEW.encode()])
    )


@pytest.mark.parametrize(("name", "args"), STREAMS)
def test_every_stream_method_returns_a_stream_object(harness, mode, name, args):
    h = harness(sse_handler(mode))
    stream = getattr(h.client, name)(*args)
    assert isinstance(stream, EventStream if mode == "sync" else AsyncEventStream)
    assert h.requests == []  # sent on first iteration


def test_iterate_then_the_stream_is_exhausted(harness, mode):
    h = harness(sse_handler(mode))
    stream = h.client.stream_chat_completions("docs", MESSAGES)
    if mode == "sync":
        assert iter(stream) is stream
        events = list(stream)
        assert list(stream) == []
    else:

        async def run() -> list[Any]:
            assert stream.__aiter__() is stream
            got = [event async for event in stream]
            assert [event async for event in stream] == []
            return got

        events = asyncio.run(run())
    assert [type(e) for e in events] == KINDS
    assert len(h.requests) == 1


def test_with_block_closes_the_stream(harness, mode):
    h = harness(sse_handler(mode))
    stream = h.client.stream_chat_completions("docs", MESSAGES)
    if mode == "sync":
        with stream as events:
            assert events is stream
            first = next(events)
        assert list(stream) == []
    else:

        async def run() -> Any:
            async with stream as events:
                assert events is stream
                event = await events.__anext__()
            assert [event async for event in stream] == []
            return event

        first = asyncio.run(run())
    assert isinstance(first, SourcesEvent)


@pytest.mark.parametrize("how", ["close", "with"])
def test_closed_before_iteration_sends_nothing(harness, mode, how):
    h = harness(sse_handler(mode))
    stream = h.client.stream_chat_completions("docs", MESSAGES)
    if mode == "sync":
        if how == "close":
            stream.close()
        else:
            with stream:
                pass
        assert list(stream) == []
    else:

        async def run() -> list[Any]:
            if how == "close":
                await stream.aclose()
            else:
                async with stream:
                    pass
            return [event async for event in stream]

        assert asyncio.run(run()) == []
    assert h.requests == []


# ----------------------------------------------------------- closing releases the connection

PIECES = [
    b"HTTP/1.1 200 OK\r\n",
    b"Content-Type: text/event-stream\r\n",
    b"Transfer-Encoding: chunked\r\n\r\n",
    *(
        b"%x\r\n%s\r\n" % (len(line), line)
        for line in STREAM_NEW.encode().splitlines(keepends=True)
    ),
    b"0\r\n\r\n",
]


def _one_connection_clients() -> tuple[AISearchClient, AsyncAISearchClient, list[Any]]:
    """Clients whose pool holds ONE connection (mock sockets): a leaked one blocks the next."""
    limits = {"max_connections": 1, "max_keepalive_connections": 1}
    sync_http = httpx.Client()
    sync_http._transport._pool = httpcore.ConnectionPool(  # type: ignore[attr-defined]
        network_backend=httpcore.MockBackend(PIECES), **limits
    )
    async_http = httpx.AsyncClient()
    async_http._transport._pool = httpcore.AsyncConnectionPool(  # type: ignore[attr-defined]
        network_backend=httpcore.AsyncMockBackend(PIECES), **limits
    )
    kwargs: dict[str, Any] = {
        "account_id": ACCOUNT,
        "api_token": TOKEN,
        "max_retries": 0,
        "timeout": httpx.Timeout(5.0, pool=0.1),  # a leaked connection: PoolTimeout at once
    }
    pools = [sync_http._transport._pool, async_http._transport._pool]  # type: ignore[attr-defined]
    return (
        AISearchClient(http_client=sync_http, **kwargs),
        AsyncAISearchClient(http_client=async_http, **kwargs),
        pools,
    )


def test_closing_mid_stream_releases_the_connection(mode):
    sync_client, async_client, pools = _one_connection_clients()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        if mode == "sync":
            for _ in range(3):  # the one connection serves stream after stream
                stream = sync_client.stream_chat_completions("docs", MESSAGES)
                assert isinstance(next(stream), SourcesEvent)
                stream.close()
                assert pools[0].connections == []  # half-read: closed, not kept
            with sync_client.stream_chat_completions("docs", MESSAGES) as stream:
                assert [type(e) for e in stream] == KINDS
        else:

            async def run() -> None:
                for _ in range(3):
                    stream = async_client.stream_chat_completions("docs", MESSAGES)
                    assert isinstance(await stream.__anext__(), SourcesEvent)
                    await stream.aclose()
                    assert pools[1].connections == []
                async with async_client.stream_chat_completions("docs", MESSAGES) as stream:
                    assert [type(e) async for e in stream] == KINDS

            asyncio.run(run())
        gc.collect()


def test_a_leaked_stream_holds_its_connection():
    # the check above can fail: a stream left open keeps the only connection
    sync_client, _, _ = _one_connection_clients()
    stream = sync_client.stream_chat_completions("docs", MESSAGES)
    assert isinstance(next(stream), SourcesEvent)
    with pytest.raises(APITimeoutError):
        sync_client.chat_completions("docs", MESSAGES)
    stream.close()


# ------------------------------------------------------ a plain TimeoutError within an attempt


def test_a_timeout_error_inside_an_async_attempt_is_an_api_timeout():
    def handler(request: httpx.Request) -> httpx.Response:
        raise TimeoutError("raised by the transport itself")

    async def run() -> None:
        http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        client = AsyncAISearchClient(
            account_id=ACCOUNT, api_token=TOKEN, http_client=http, max_retries=0
        )
        with pytest.raises(APITimeoutError, match="no complete response within"):
            await client.search("docs", "q")
        await http.aclose()

    asyncio.run(run())
