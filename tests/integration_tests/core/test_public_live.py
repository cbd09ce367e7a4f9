"""``AISearchPublicClient`` / ``AsyncAISearchPublicClient`` against the local server's public
endpoints over real HTTP: no token, the same typed results, streams and errors.
"""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from aisearch import (
    AISearchPublicClient,
    AsyncAISearchPublicClient,
    ChatCompletion,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    SearchResult,
    SourcesEvent,
    StreamEndEvent,
    TextDeltaEvent,
)
from aisearch_local.testing import LocalServer
from tests.integration_tests.public_support import QUERY, PublicSetup, make_public_setup

pytestmark = pytest.mark.integration

MSGS = [{"role": "user", "content": QUERY}]
ACCESS_ID = "access-id-live-0a9b8c7d.access"
ACCESS_SECRET = "access-secret-live-SECRET-5d6e7f"


@pytest.fixture(scope="module")
def setup(local_server: LocalServer) -> Iterator[PublicSetup]:
    with httpx.Client(
        base_url=local_server.account_url, headers=local_server.headers, timeout=60
    ) as admin:
        yield make_public_setup(local_server, admin)


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def call(mode: str, url: str, name: str, *args: Any, **kwargs: Any) -> Any:
    """Call a method of a fresh sync or async public client on ``url``."""
    if mode == "sync":
        with AISearchPublicClient(endpoint=url, max_retries=0) as client:
            return getattr(client, name)(*args, **kwargs)

    async def run() -> Any:
        async with AsyncAISearchPublicClient(endpoint=url, max_retries=0) as client:
            return await getattr(client, name)(*args, **kwargs)

    return asyncio.run(run())


def stream(mode: str, url: str, *args: Any, **kwargs: Any) -> list[Any]:
    if mode == "sync":
        with AISearchPublicClient(endpoint=url) as client:
            return list(client.stream_chat_completions(*args, **kwargs))

    async def run() -> list[Any]:
        async with AsyncAISearchPublicClient(endpoint=url) as client:
            return [e async for e in client.stream_chat_completions(*args, **kwargs)]

    return asyncio.run(run())


def test_instance_endpoint_search_without_a_token(mode: str, setup: PublicSetup) -> None:
    result = call(mode, setup.instance_url, "search", QUERY)
    assert isinstance(result, SearchResult)
    assert result.chunks and result.chunks[0].item.key == "espresso.md"
    assert {c.item.key for c in result.chunks} <= {"espresso.md", "pour-over.md"}


def test_instance_endpoint_chat_and_stream(mode: str, setup: PublicSetup) -> None:
    completion = call(mode, setup.instance_url, "chat_completions", MSGS, max_tokens=64)
    assert isinstance(completion, ChatCompletion)
    assert completion.content and completion.chunks
    events = stream(mode, setup.instance_url, MSGS)
    assert isinstance(events[0], SourcesEvent) and events[0].chunks
    assert any(isinstance(e, TextDeltaEvent) and e.text for e in events)
    assert isinstance(events[-1], StreamEndEvent)


def test_namespace_endpoint_instance_ids_are_optional(mode: str, setup: PublicSetup) -> None:
    brew, tea = setup.instances["brew"], setup.instances["tea"]
    whole = call(mode, setup.namespace_url, "search", "water temperature for tea and coffee")
    assert {c.instance_id for c in whole.chunks} == {brew, tea}
    one = call(mode, setup.namespace_url, "search", "water", instance_ids=[tea])
    assert one.chunks and {c.instance_id for c in one.chunks} == {tea}
    events = stream(mode, setup.namespace_url, MSGS, instance_ids=[brew])
    assert isinstance(events[-1], StreamEndEvent)
    assert {c.instance_id for c in events[0].chunks} == {brew}
    with pytest.raises(NotFoundError) as info:
        call(mode, setup.namespace_url, "search", "water", instance_ids=["not-allowed"])
    assert (info.value.status_code, info.value.code) == (404, 60013)


def test_public_error_codes_arrive_typed(mode: str, setup: PublicSetup) -> None:
    unknown = setup.instance_url.rsplit("/", 1)[0] + "/" + "0" * 32
    with pytest.raises(NotFoundError):
        call(mode, unknown, "search", QUERY)
    url = setup.fresh_endpoint({"chat_completions_endpoint": {"disabled": True}})
    with pytest.raises(PermissionDeniedError) as info:
        call(mode, url, "chat_completions", MSGS)
    assert (info.value.status_code, info.value.code) == (401, 60009)
    assert "the route is disabled" in str(info.value)
    assert call(mode, url, "search", "tea").chunks  # only that route is off


def test_rate_limit_is_a_rate_limit_error(setup: PublicSetup) -> None:
    url = setup.fresh_endpoint({"rate_limit": {"requests": 1, "period_ms": 3_600_000}})
    with AISearchPublicClient(endpoint=url, max_retries=0) as client:
        client.search("tea")
        with pytest.raises(RateLimitError) as info:
            client.search("tea")
    assert (info.value.status_code, info.value.code) == (429, 60005)


def test_access_headers_are_sent_and_never_leak(setup: PublicSetup) -> None:
    sent: list[httpx.Request] = []
    with httpx.Client(event_hooks={"request": [sent.append]}) as http:
        client = AISearchPublicClient(
            endpoint=setup.namespace_url,
            access_client_id=ACCESS_ID,
            access_client_secret=ACCESS_SECRET,
            http_client=http,
            max_retries=0,
        )
        assert client.search(QUERY).chunks
        with pytest.raises(NotFoundError) as info:
            client.search(QUERY, instance_ids=["nope"])
    assert sent[0].headers["cf-access-client-id"] == ACCESS_ID
    assert sent[0].headers["cf-access-client-secret"] == ACCESS_SECRET
    assert "authorization" not in sent[0].headers
    error = info.value
    views = [str(error), repr(error), repr(client), pickle.dumps(error).decode("latin-1")]
    assert error.response is not None
    views.append(str(error.response.request.headers))
    for view in views:
        assert ACCESS_SECRET not in view and ACCESS_ID not in view
