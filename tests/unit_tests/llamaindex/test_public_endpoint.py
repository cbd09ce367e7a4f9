"""``public_endpoint=`` on the LlamaIndex connection: choosing it, checking it, hiding secrets.

The adapters' calls through a public endpoint run against the local server over real HTTP
(``tests/integration_tests/llamaindex/test_public_endpoint.py``); here only what a server
cannot show: which client a connection builds, and the request an injected transport sees.
"""

from __future__ import annotations

import json
import pickle
from typing import Any

import httpx
import pytest

from aisearch import AISearchError, AISearchPublicClient, InvalidRequestError
from llamaindex_aisearch import (
    AISearchChatEngine,
    AISearchConnection,
    AISearchIndex,
    AISearchLLM,
    AISearchMultiRetriever,
    AISearchQueryEngine,
    AISearchRetriever,
    AISearchToolSpec,
)

ENDPOINT = "https://0123abcd.search.ai.cloudflare.com"
ACCESS_ID = "access-id-1a2b3c4d5e6f.access"
ACCESS_SECRET = "access-secret-SECRET-6f5e4d3c2b1a"


def test_the_connection_builds_a_public_client() -> None:
    conn = AISearchConnection(public_endpoint=ENDPOINT + "/")
    assert conn.uses_public_endpoint and conn.public_endpoint == ENDPOINT
    assert isinstance(conn.public_client, AISearchPublicClient)
    assert conn.public_client is conn.public_client
    assert repr(AISearchRetriever(connection=conn)).startswith(
        f"AISearchRetriever(public_endpoint={ENDPOINT!r}, "
    )
    assert repr(AISearchQueryEngine(connection=conn)).startswith(
        f"AISearchQueryEngine({ENDPOINT!r}, "
    )
    # management needs an account: a clear error, not a missing-account one
    with pytest.raises(AISearchError, match=r"a public endpoint serves search and chat"):
        _ = conn.client


@pytest.mark.parametrize(
    "build",
    [
        lambda c: AISearchRetriever(connection=c),
        lambda c: AISearchMultiRetriever(connection=c),
        lambda c: AISearchMultiRetriever(["docs", "blog"], connection=c),
        lambda c: AISearchQueryEngine(connection=c),
        lambda c: AISearchChatEngine(connection=c),
        lambda c: AISearchLLM(connection=c),
        lambda c: AISearchToolSpec(connection=c),
    ],
)
def test_no_instance_is_needed_with_a_public_endpoint(build: Any) -> None:
    build(AISearchConnection(public_endpoint=ENDPOINT))


def test_without_a_public_endpoint_an_instance_is_still_needed() -> None:
    conn = AISearchConnection(account_id="acct", api_token="tok-123")
    with pytest.raises(InvalidRequestError, match=r"instance_id: must be a non-empty string \(it"):
        AISearchRetriever(connection=conn)
    with pytest.raises(InvalidRequestError, match=r"instance_ids: must name at least one"):
        AISearchMultiRetriever(connection=conn)
    with pytest.raises(InvalidRequestError, match=r"or neither with public_endpoint"):
        AISearchQueryEngine(connection=conn)
    with pytest.raises(TypeError, match=r"or neither with public_endpoint"):
        AISearchToolSpec(connection=conn)


def test_environment_and_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AISEARCH_PUBLIC_ENDPOINT", ENDPOINT)
    monkeypatch.setenv("CF_ACCESS_CLIENT_ID", ACCESS_ID)
    monkeypatch.setenv("CF_ACCESS_CLIENT_SECRET", ACCESS_SECRET)
    conn = AISearchConnection()
    assert conn.public_endpoint == ENDPOINT
    assert conn.public_client._config.auth_headers()["CF-Access-Client-Secret"] == ACCESS_SECRET
    # an account given as arguments wins over the environment variable
    assert not AISearchConnection(account_id="acct", api_token="tok-123").uses_public_endpoint
    with pytest.raises(InvalidRequestError, match=r"pass either public_endpoint .* not both"):
        AISearchConnection(public_endpoint=ENDPOINT, account_id="acct", api_token="tok-123")
    monkeypatch.setenv("AISEARCH_PUBLIC_ENDPOINT", "http://example.com")
    with pytest.raises(InvalidRequestError, match=r"AISEARCH_PUBLIC_ENDPOINT: must use https"):
        AISearchConnection()


def test_a_bad_endpoint_names_the_field() -> None:
    with pytest.raises(InvalidRequestError, match=r"public_endpoint: .*must use https"):
        AISearchRetriever(public_endpoint="http://search.example.com")
    with pytest.raises(InvalidRequestError, match=r"public_endpoint: .*no SearchTarget"):
        AISearchMultiRetriever(public_endpoint=ENDPOINT, mode="fan_out")


def test_access_secrets_never_show() -> None:
    conn = AISearchConnection(
        public_endpoint=ENDPOINT, access_client_id=ACCESS_ID, access_client_secret=ACCESS_SECRET
    )
    views = [repr(conn), str(conn), conn.model_dump_json(), str(conn.model_dump())]
    views += [repr(conn.public_client), repr(AISearchRetriever(connection=conn))]
    for view in views:
        assert ACCESS_SECRET not in view
        assert ACCESS_ID not in view
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(conn)
    with pytest.raises(InvalidRequestError) as info:
        AISearchConnection(public_endpoint=ENDPOINT, access_client_secrt=ACCESS_SECRET)
    assert ACCESS_SECRET not in str(info.value)


def _recording_connection(seen: list[httpx.Request], **kwargs: Any) -> AISearchConnection:
    chunks = [{"id": "c1", "score": 0.7, "text": "Grind fine.", "item": {"key": "e.md"}}]
    body = {"success": True, "errors": [], "result": {"search_query": "q", "chunks": chunks}}

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return httpx.Response(200, content=json.dumps(body).encode())

    async def ahandler(request: httpx.Request) -> httpx.Response:
        return handler(request)

    return AISearchConnection(
        public_endpoint="http://127.0.0.1:9/_public/abc",
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        async_http_client=httpx.AsyncClient(transport=httpx.MockTransport(ahandler)),
        **kwargs,
    )


async def test_the_request_goes_to_the_endpoint_without_a_token_or_namespace() -> None:
    seen: list[httpx.Request] = []
    conn = _recording_connection(seen, access_client_id=ACCESS_ID, access_client_secret="s" * 20)
    retriever = AISearchMultiRetriever(["docs"], namespace="other", connection=conn)
    nodes = retriever.retrieve("espresso")
    anodes = await retriever.aretrieve("espresso")
    assert [n.node.node_id for n in nodes] == [n.node.node_id for n in anodes] == ["c1"]
    for request in seen:
        assert str(request.url) == "http://127.0.0.1:9/_public/abc/search"
        assert "authorization" not in request.headers
        assert request.headers["cf-access-client-id"] == ACCESS_ID
        assert json.loads(request.content) == {
            "query": "espresso",
            "ai_search_options": {"instance_ids": ["docs"]},
        }
    index = AISearchIndex("docs", connection=conn)
    with pytest.raises(AISearchError, match=r"needs an account and an API token"):
        index.delete_ref_doc("x")
