"""Every LangChain class pointed at a public endpoint of the local server, over real HTTP.

No account and no token: only `public_endpoint=` (or `AISEARCH_PUBLIC_ENDPOINT`), sync and
async, streaming included.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from langchain_core.messages import AIMessageChunk

from aisearch import NotFoundError, PermissionDeniedError
from aisearch_local.testing import LocalServer
from langchain_aisearch import (
    AISearchAnswerTool,
    AISearchMultiRetriever,
    AISearchRetriever,
    AISearchSearchTool,
    ChatAISearch,
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


async def test_retriever_sync_and_async(setup: PublicSetup) -> None:
    retriever = AISearchRetriever(public_endpoint=setup.instance_url, k=2)
    docs = retriever.invoke(QUERY)
    adocs = await retriever.ainvoke(QUERY)
    assert [d.id for d in docs] == [d.id for d in adocs]
    assert docs and docs[0].metadata["source"] == "espresso.md"
    assert len(docs) <= 2
    assert docs[0].metadata["search_query"]
    await retriever.aclose()
    retriever.close()


def test_the_environment_variable_is_enough(
    setup: PublicSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AISEARCH_PUBLIC_ENDPOINT", setup.instance_url)
    with AISearchRetriever() as retriever:
        assert retriever.invoke(QUERY)[0].metadata["source"] == "espresso.md"


async def test_multi_retriever_on_a_namespace_endpoint(setup: PublicSetup) -> None:
    brew, tea = setup.instances["brew"], setup.instances["tea"]
    everything = AISearchMultiRetriever(public_endpoint=setup.namespace_url, k=8)
    docs = everything.invoke("water temperature for tea and coffee")
    assert {d.metadata["instance_id"] for d in docs} == {brew, tea}
    only_tea = AISearchMultiRetriever(public_endpoint=setup.namespace_url, instance_ids=[tea])
    adocs = await only_tea.ainvoke("water")
    assert adocs and {d.metadata["instance_id"] for d in adocs} == {tea}
    bad = AISearchMultiRetriever(public_endpoint=setup.namespace_url, instance_ids=["nope"])
    with pytest.raises(NotFoundError):  # 60013: outside the allowlist
        bad.invoke("water")


async def test_chat_model_invoke_and_streams(setup: PublicSetup) -> None:
    chat = ChatAISearch(public_endpoint=setup.instance_url, max_tokens=64)
    answer = chat.invoke(QUERY)
    assert answer.content
    assert answer.response_metadata["sources"][0]["item"]["key"] == "espresso.md"
    chunks = list(chat.stream(QUERY))
    assert chunks[0].response_metadata["sources"]  # sources before the text
    assert "".join(str(c.content) for c in chunks)
    achunks = [c async for c in chat.astream(QUERY)]
    assert isinstance(achunks[-1], AIMessageChunk)
    assert achunks[-1].response_metadata["finish_reason"]
    ns_chat = ChatAISearch(
        public_endpoint=setup.namespace_url, instance_ids=[setup.instances["brew"]]
    )
    ns_answer = await ns_chat.ainvoke(QUERY)
    sources = ns_answer.response_metadata["sources"]
    assert sources and {s["instance_id"] for s in sources} == {setup.instances["brew"]}


def test_tools(setup: PublicSetup) -> None:
    search = AISearchSearchTool(retriever=AISearchRetriever(public_endpoint=setup.instance_url))
    assert "espresso.md" in search.invoke({"query": QUERY})
    answer = AISearchAnswerTool(chat=ChatAISearch(public_endpoint=setup.namespace_url))
    assert answer.invoke({"query": QUERY})


def test_a_disabled_route_is_a_permission_error(setup: PublicSetup) -> None:
    url = setup.fresh_endpoint({"search_endpoint": {"disabled": True}})
    with pytest.raises(PermissionDeniedError) as info:
        AISearchRetriever(public_endpoint=url, max_retries=0).invoke(QUERY)
    assert info.value.code == 60008
    assert ChatAISearch(public_endpoint=url).invoke(QUERY).content  # chat is still on
