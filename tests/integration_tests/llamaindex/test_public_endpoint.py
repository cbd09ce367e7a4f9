"""Every LlamaIndex class pointed at a public endpoint of the local server, over real HTTP.

No account and no token: only ``public_endpoint=`` (or ``AISEARCH_PUBLIC_ENDPOINT``), sync
and async, streaming included.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.base.response.schema import AsyncStreamingResponse, StreamingResponse

from aisearch import NotFoundError, PermissionDeniedError
from aisearch_local.testing import LocalServer
from llamaindex_aisearch import (
    AISearchChatEngine,
    AISearchConnection,
    AISearchLLM,
    AISearchMultiRetriever,
    AISearchQueryEngine,
    AISearchRetriever,
    AISearchToolSpec,
)
from tests.integration_tests.public_support import QUERY, PublicSetup, make_public_setup

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def setup(local_server: LocalServer) -> Iterator[PublicSetup]:
    with httpx.Client(
        base_url=local_server.account_url, headers=local_server.headers, timeout=60
    ) as admin:
        yield make_public_setup(local_server, admin)


@pytest.fixture(autouse=True)
def _no_account(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing but the endpoint: no account, token or base URL in the environment."""
    for name in ("CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_API_TOKEN", "AISEARCH_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest_asyncio.fixture
async def public(setup: PublicSetup) -> AsyncIterator[AISearchConnection]:
    connection = AISearchConnection(public_endpoint=setup.instance_url, max_retries=0)
    yield connection
    connection.close()
    await connection.aclose()


@pytest_asyncio.fixture
async def public_ns(setup: PublicSetup) -> AsyncIterator[AISearchConnection]:
    connection = AISearchConnection(public_endpoint=setup.namespace_url, max_retries=0)
    yield connection
    connection.close()
    await connection.aclose()


async def test_retriever_sync_and_async(public: AISearchConnection) -> None:
    retriever = AISearchRetriever(connection=public, similarity_top_k=2)
    nodes = retriever.retrieve(QUERY)
    anodes = await retriever.aretrieve(QUERY)
    assert [n.node.node_id for n in nodes] == [n.node.node_id for n in anodes]
    assert nodes and nodes[0].node.metadata["filename"] == "espresso.md"
    assert nodes[0].score is not None and len(nodes) <= 2


def test_keywords_and_the_environment_variable(
    setup: PublicSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    nodes = AISearchRetriever(public_endpoint=setup.instance_url).retrieve(QUERY)
    assert nodes[0].node.metadata["filename"] == "espresso.md"
    monkeypatch.setenv("AISEARCH_PUBLIC_ENDPOINT", setup.instance_url)
    engine = AISearchQueryEngine()
    assert str(engine.query(QUERY))
    engine.connection.close()


async def test_multi_retriever_on_a_namespace_endpoint(
    setup: PublicSetup, public_ns: AISearchConnection
) -> None:
    brew, tea = setup.instances["brew"], setup.instances["tea"]
    result = AISearchMultiRetriever(connection=public_ns).retrieve_with_errors(
        "water temperature for tea and coffee"
    )
    assert {n.node.metadata["instance_id"] for n in result.nodes} == {brew, tea}
    assert result.errors == []
    anodes = await AISearchMultiRetriever([tea], connection=public_ns).aretrieve("water")
    assert anodes and {n.node.metadata["instance_id"] for n in anodes} == {tea}
    with pytest.raises(NotFoundError):  # 60013: outside the allowlist
        AISearchMultiRetriever(["nope"], connection=public_ns).retrieve("water")


async def test_query_engine_plain_and_streaming(public: AISearchConnection) -> None:
    engine = AISearchQueryEngine(connection=public)
    response = engine.query(QUERY)
    assert str(response)
    assert response.source_nodes[0].node.metadata["filename"] == "espresso.md"
    streaming = AISearchQueryEngine(connection=public, streaming=True)
    stream = streaming.query(QUERY)
    assert isinstance(stream, StreamingResponse)
    assert stream.source_nodes  # before the text
    assert "".join(stream.response_gen)
    astream = await streaming.aquery(QUERY)
    assert isinstance(astream, AsyncStreamingResponse)
    assert "".join([t async for t in astream.async_response_gen()])


async def test_chat_engine_and_llm(
    setup: PublicSetup, public: AISearchConnection, public_ns: AISearchConnection
) -> None:
    chat = AISearchChatEngine(connection=public)
    assert str(chat.chat(QUERY))
    assert str(await chat.achat("And how fine is the grind?"))
    llm = AISearchLLM(connection=public_ns, instance_ids=[setup.instances["tea"]])
    reply = llm.chat([ChatMessage(role="user", content="How hot for green tea?")])
    assert reply.message.content
    sources = reply.additional_kwargs["sources"]
    assert sources and {s["metadata"]["instance_id"] for s in sources} == {setup.instances["tea"]}
    pieces = [c async for c in await llm.astream_complete("How hot for green tea?")]
    assert pieces[0].additional_kwargs["sources"] and pieces[-1].text


async def test_tool_spec(public_ns: AISearchConnection) -> None:
    spec = AISearchToolSpec(connection=public_ns)
    assert "espresso.md" in str(spec.search(QUERY))
    assert str(await spec.aanswer(QUERY))


def test_a_disabled_route_is_a_permission_error(setup: PublicSetup) -> None:
    url = setup.fresh_endpoint({"chat_completions_endpoint": {"disabled": True}})
    connection = AISearchConnection(public_endpoint=url, max_retries=0)
    with pytest.raises(PermissionDeniedError) as info:
        AISearchQueryEngine(connection=connection).query(QUERY)
    assert info.value.code == 60009
    assert AISearchRetriever(connection=connection).retrieve("tea")  # search is still on
    connection.close()
