"""`public_endpoint=` on every LangChain class: choosing it, checking it, hiding its secrets.

The calls themselves run against the local server's public endpoints over real HTTP
(`tests/integration_tests/langchain/test_public_endpoint.py`); these need no network.
"""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from aisearch import AISearchPublicClient, AsyncAISearchPublicClient, InvalidRequestError
from langchain_aisearch import (
    AISearchAnswerTool,
    AISearchMultiRetriever,
    AISearchRetriever,
    AISearchSearchTool,
    ChatAISearch,
)

ENDPOINT = "https://0123abcd.search.ai.cloudflare.com"
NS_ENDPOINT = "https://ns-42.search.ai.cloudflare.com"
ACCESS_ID = "access-id-5e6f7a8b9c0d.access"
ACCESS_SECRET = "access-secret-SECRET-0f1e2d3c4b5a"

CLASSES: list[tuple[type, dict[str, Any]]] = [
    (AISearchRetriever, {}),
    (AISearchMultiRetriever, {}),
    (ChatAISearch, {}),
]


@pytest.mark.parametrize(("cls", "extra"), CLASSES)
def test_a_public_endpoint_needs_no_account_token_or_instance(
    cls: type, extra: dict[str, Any]
) -> None:
    obj = cls(public_endpoint=ENDPOINT + "/", **extra)
    assert obj.uses_public_endpoint
    assert obj.public_endpoint == ENDPOINT
    client = obj._get_public_client()
    assert isinstance(client, AISearchPublicClient)
    assert client.endpoint == ENDPOINT
    assert obj._get_public_client() is client  # built once


def test_without_a_public_endpoint_the_instance_is_still_required() -> None:
    with pytest.raises(ValidationError, match=r"instance_id: required, unless public_endpoint"):
        AISearchRetriever()
    with pytest.raises(ValidationError, match=r"instance_ids: required, unless public_endpoint"):
        AISearchMultiRetriever()
    chat = ChatAISearch()  # checked at the call, as before
    with pytest.raises(InvalidRequestError, match=r"instance_id or instance_ids \(or public"):
        chat.invoke("hi")


def test_the_environment_variable_chooses_the_public_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AISEARCH_PUBLIC_ENDPOINT", NS_ENDPOINT)
    monkeypatch.setenv("CF_ACCESS_CLIENT_ID", ACCESS_ID)
    monkeypatch.setenv("CF_ACCESS_CLIENT_SECRET", ACCESS_SECRET)
    retriever = AISearchRetriever()
    assert retriever.public_endpoint == NS_ENDPOINT
    headers = retriever._get_public_client()._config.auth_headers()
    assert headers == {"CF-Access-Client-Id": ACCESS_ID, "CF-Access-Client-Secret": ACCESS_SECRET}
    # an account given as arguments wins over the environment variable
    account = AISearchRetriever(instance_id="docs", account_id="acc", api_token="tok")
    assert not account.uses_public_endpoint
    data = {"instance_id": "docs", "account_id": "acc", "api_token": "tok"}
    assert not AISearchRetriever.model_validate(data).uses_public_endpoint
    assert AISearchRetriever.model_validate({}).public_endpoint == NS_ENDPOINT
    monkeypatch.setenv("AISEARCH_PUBLIC_ENDPOINT", "http://example.com")
    with pytest.raises(ValidationError, match=r"public_endpoint: must use https://"):
        AISearchRetriever()


def test_an_account_and_a_public_endpoint_together_are_refused() -> None:
    with pytest.raises(InvalidRequestError, match=r"pass either public_endpoint .* not both"):
        AISearchRetriever(public_endpoint=ENDPOINT, api_token="tok-123", account_id="a")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://search.example.com", r"public_endpoint: must use https://"),
        ("https://search.example.com/?q=1", r"public_endpoint: must have no query"),
        ("https://u:pw@search.example.com", r"public_endpoint: must not carry credentials"),
    ],
)
def test_a_bad_endpoint_names_the_field(url: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as info:
        ChatAISearch(public_endpoint=url)
    assert isinstance(info.value, InvalidRequestError)
    assert "pw" not in str(info.value)
    retriever = AISearchRetriever(public_endpoint=ENDPOINT)
    with pytest.raises(ValidationError, match=message):
        retriever.public_endpoint = url
    assert retriever.public_endpoint == ENDPOINT  # a refused assignment changes nothing


def test_a_public_multi_retriever_searches_in_one_request() -> None:
    multi = AISearchMultiRetriever(public_endpoint=NS_ENDPOINT, instance_ids=["docs", "blog"])
    assert multi.uses_namespace_endpoint
    for bad in (
        {"force_fan_out": True},
        {"instance_ids": [f"i{n}" for n in range(11)]},
    ):
        with pytest.raises(ValidationError, match=r"public_endpoint: a public endpoint searches"):
            AISearchMultiRetriever(public_endpoint=NS_ENDPOINT, **bad)


def test_access_secrets_never_show(monkeypatch: pytest.MonkeyPatch) -> None:
    chat = ChatAISearch(
        public_endpoint=ENDPOINT, access_client_id=ACCESS_ID, access_client_secret=ACCESS_SECRET
    )
    assert isinstance(chat.access_client_secret, SecretStr)
    views = [repr(chat), str(chat), str(chat.model_dump()), chat.model_dump_json()]
    views.append(repr(chat._get_public_client()))
    tool = AISearchAnswerTool(chat=chat)
    views += [repr(tool), str(tool.model_dump())]
    for view in views:
        assert ACCESS_SECRET not in view
        assert ACCESS_ID not in view
    assert chat.lc_secrets["access_client_secret"] == "CF_ACCESS_CLIENT_SECRET"
    # a bad assignment next to the secret does not echo it
    with pytest.raises(ValidationError) as info:
        chat.access_client_secret = 5  # type: ignore[assignment]
    assert ACCESS_SECRET not in str(info.value)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(chat)
    # a misspelt secret argument is hidden too
    with pytest.raises(ValidationError) as bad:
        AISearchRetriever(public_endpoint=ENDPOINT, access_client_secrt=ACCESS_SECRET)  # type: ignore[call-arg]
    assert ACCESS_SECRET not in str(bad.value)
    assert ACCESS_SECRET not in repr(bad.value.errors())


def test_changing_the_endpoint_drops_the_built_clients() -> None:
    retriever = AISearchRetriever(public_endpoint=ENDPOINT)
    first = retriever._get_public_client()
    retriever.public_endpoint = NS_ENDPOINT
    second = retriever._get_public_client()
    assert second is not first and second.endpoint == NS_ENDPOINT
    retriever.close()
    tool = AISearchSearchTool(retriever=retriever)
    tool.close()


async def test_the_async_public_client_is_built_per_loop() -> None:
    retriever = AISearchRetriever(public_endpoint=ENDPOINT)
    client = retriever._get_async_public_client()
    assert isinstance(client, AsyncAISearchPublicClient)
    assert retriever._public_for(retriever._get_async_client) is client
    assert isinstance(retriever._public_for(retriever._get_client), AISearchPublicClient)
    await retriever.aclose()
