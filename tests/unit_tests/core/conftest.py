"""Harness running the same scenario against AISearchClient and AsyncAISearchClient.

No sockets: every client gets an ``httpx.MockTransport``; retries sleep through a recorder.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from aisearch import AISearchClient, AsyncAISearchClient, InvalidRequestError
from aisearch._config import ACCOUNT_ID_ENV, API_EMAIL_ENV, API_KEY_ENV, API_TOKEN_ENV, BASE_URL_ENV
from tests.unit_tests.core.payloads import ACCOUNT, TOKEN

Handler = Callable[[httpx.Request], httpx.Response]


def raising(error: Exception) -> Handler:
    """A handler failing every request with ``error`` (a transport failure)."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    return handler


def body_of(request: httpx.Request) -> Any:
    return json.loads(request.content)


def stream_content(mode: str, pieces: list[bytes]) -> Any:
    """Response content yielding ``pieces`` one by one (sync or async iterator)."""
    if mode == "sync":

        def gen() -> Iterator[bytes]:
            yield from pieces

        return gen()

    async def agen() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    return agen()


class Harness:
    def __init__(self, mode: str, handler: Handler, **client_kwargs: Any) -> None:
        self.mode = mode
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []

        def wrapped(request: httpx.Request) -> httpx.Response:
            request.read()
            self.requests.append(request)
            return handler(request)

        transport = httpx.MockTransport(wrapped)
        kwargs: dict[str, Any] = {"account_id": ACCOUNT, "api_token": TOKEN, **client_kwargs}
        if mode == "sync":
            self.client: Any = AISearchClient(
                http_client=httpx.Client(transport=transport), **kwargs
            )
            self.client._sleep = self.sleeps.append
        else:
            self.client = AsyncAISearchClient(
                http_client=httpx.AsyncClient(transport=transport), **kwargs
            )

            async def sleep(delay: float) -> None:
                self.sleeps.append(delay)

            self.client._sleep = sleep

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self.client, name)(*args, **kwargs)
        if self.mode == "sync":
            return result
        return asyncio.run(result)

    def rejects(self, name: str, *args: Any, **kwargs: Any) -> str:
        """The message of the ``InvalidRequestError`` a call raises before sending anything."""
        with pytest.raises(InvalidRequestError) as info:
            self.call(name, *args, **kwargs)
        assert self.requests == []
        return str(info.value)

    def collect(self, name: str, *args: Any, **kwargs: Any) -> list[Any]:
        """Run a streaming method to the end and return its events."""
        events: list[Any] = []
        iterator = getattr(self.client, name)(*args, **kwargs)
        if self.mode == "sync":
            for event in iterator:
                events.append(event)
            return events

        async def run() -> list[Any]:
            async for event in iterator:
                events.append(event)
            return events

        return asyncio.run(run())

    def collect_into(self, events: list[Any], name: str, *args: Any, **kwargs: Any) -> None:
        """Like ``collect`` but fills ``events`` so a test can inspect them after an exception."""
        iterator = getattr(self.client, name)(*args, **kwargs)
        if self.mode == "sync":
            for event in iterator:
                events.append(event)
            return

        async def run() -> None:
            async for event in iterator:
                events.append(event)

        asyncio.run(run())

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def harness(mode: str) -> Callable[..., Harness]:
    def make(handler: Handler, **client_kwargs: Any) -> Harness:
        return Harness(mode, handler, **client_kwargs)

    return make


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*ACCOUNT_ID_ENV, *API_TOKEN_ENV, *API_EMAIL_ENV, *API_KEY_ENV, *BASE_URL_ENV):
        monkeypatch.delenv(name, raising=False)
