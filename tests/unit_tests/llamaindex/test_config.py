"""Connection config, secrets, argument validation and request shape (no sockets)."""

from __future__ import annotations

import asyncio
import copy
import json
import pickle
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from llama_index.core.vector_stores.types import FilterOperator, MetadataFilter, MetadataFilters

import llamaindex_aisearch
from aisearch import AISearchClient, AISearchError, AsyncAISearchClient, InvalidRequestError
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

SECRET = "sk-very-secret-token-123"


def _conn(**kwargs: Any) -> AISearchConnection:
    return AISearchConnection(account_id="acct", api_token=SECRET, **kwargs)


def test_public_api_is_pinned() -> None:
    assert llamaindex_aisearch.__all__ == [
        "AISearchChatEngine",
        "AISearchConnection",
        "AISearchIndex",
        "AISearchInstanceErrorEvent",
        "AISearchInstanceWarning",
        "AISearchLLM",
        "AISearchMemoryBlock",
        "AISearchMemoryRetrieval",
        "AISearchMemoryRetrievalEvent",
        "AISearchMultiRetriever",
        "AISearchQueryEngine",
        "AISearchRetriever",
        "AISearchToolSpec",
        "InstanceFailureError",
        "MemoryTargetRequest",
        "MultiRetrievalResult",
        "to_aisearch_filters",
    ]
    assert llamaindex_aisearch.__all__ == sorted(llamaindex_aisearch.__all__)


# -- connection and secrets ------------------------------------------------------------


def test_env_fallbacks_in_documented_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CF_ACCOUNT_ID", "from-cf")
    monkeypatch.setenv("CF_API_TOKEN", "tok-3")
    monkeypatch.setenv("CF_AI_SEARCH_API_TOKEN", "tok-2")
    monkeypatch.setenv("AISEARCH_BASE_URL", "http://127.0.0.1:9/client/v4")
    conn = AISearchConnection()
    assert conn.account_id == "from-cf"
    assert conn.api_token is not None and conn.api_token.get_secret_value() == "tok-2"
    assert conn.base_url == "http://127.0.0.1:9/client/v4"
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", "from-cloudflare")
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "tok-1")
    conn = AISearchConnection()
    assert conn.account_id == "from-cloudflare"
    assert conn.api_token is not None and conn.api_token.get_secret_value() == "tok-1"
    conn = AISearchConnection(account_id="arg", api_token="tok-arg")
    assert conn.account_id == "arg"
    assert conn.api_token is not None and conn.api_token.get_secret_value() == "tok-arg"


def test_legacy_email_and_key_auth_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDFLARE_EMAIL", "me@example.com")
    monkeypatch.setenv("CLOUDFLARE_API_KEY", SECRET)
    conn = AISearchConnection(account_id="acct")
    assert conn.api_email == "me@example.com"
    assert SECRET not in repr(conn)


def test_missing_account_id_names_argument_and_env() -> None:
    with pytest.raises(AISearchError, match=r"account_id.*CLOUDFLARE_ACCOUNT_ID.*CF_ACCOUNT_ID"):
        AISearchConnection(api_token=SECRET)
    with pytest.raises(AISearchError, match="account_id"):
        AISearchRetriever("docs", api_token=SECRET)


def test_missing_credentials_names_arguments_and_env() -> None:
    with pytest.raises(AISearchError, match=r"api_token.*CLOUDFLARE_API_TOKEN.*api_email"):
        AISearchConnection(account_id="acct")


def test_token_never_in_repr_str_or_dumps() -> None:
    conn = _conn(api_email="me@example.com", api_key="global-" + SECRET)
    for text in (repr(conn), str(conn), conn.model_dump_json(), json.dumps(conn.model_dump())):
        assert SECRET not in text
    retriever = AISearchRetriever("docs", connection=conn)
    assert SECRET not in repr(retriever)
    engine = AISearchQueryEngine("docs", connection=conn)
    assert SECRET not in repr(engine)
    chat = AISearchChatEngine("docs", connection=conn)
    assert SECRET not in repr(chat)


def test_llm_serialisation_has_no_secret_and_round_trips() -> None:
    llm = AISearchLLM("docs", account_id="acct", api_token=SECRET, similarity_top_k=4, model="m")
    for text in (repr(llm), str(llm), llm.to_json(), json.dumps(llm.to_dict())):
        assert SECRET not in text
    data = llm.to_dict()
    assert data["instance_id"] == "docs"
    assert data["search_options"] == {"retrieval": {"max_num_results": 4}}
    again = AISearchLLM.from_dict(data, account_id="acct", api_token="other")
    assert again.instance_id == "docs"
    assert again.search_options == {"retrieval": {"max_num_results": 4}}
    assert SECRET not in str(pickle.dumps(llm.to_dict()))


def test_deepcopy_shares_the_connection_and_pickle_is_refused() -> None:
    conn = _conn()
    adapters: list[Any] = [
        AISearchRetriever("docs", similarity_top_k=3, connection=conn),
        AISearchMultiRetriever(["a", "b"], connection=conn),
        AISearchQueryEngine("docs", connection=conn),
        AISearchChatEngine("docs", connection=conn),
        AISearchLLM("docs", connection=conn),
    ]
    for adapter in adapters:
        twin = copy.deepcopy(adapter)
        assert twin is not adapter
        assert twin.connection is conn, type(adapter).__name__
        with pytest.raises(TypeError, match="cannot be pickled: it holds credentials") as info:
            pickle.dumps(adapter)
        assert SECRET not in str(info.value)
    assert copy.deepcopy(adapters[0]).similarity_top_k == 3


def test_llm_metadata() -> None:
    llm = AISearchLLM("docs", connection=_conn(), model="@cf/x", context_window=4096)
    meta = llm.metadata
    assert meta.is_chat_model is True
    assert meta.is_function_calling_model is False
    assert meta.context_window == 4096
    assert meta.model_name == "@cf/x"


def test_core_clients_are_built_once_and_reused() -> None:
    conn = _conn(base_url="http://127.0.0.1:9/client/v4")
    first = conn.client
    assert isinstance(first, AISearchClient)
    assert conn.client is first
    r1 = AISearchRetriever("a", connection=conn)
    r2 = AISearchRetriever("b", connection=conn)
    assert r1.connection.client is r2.connection.client is first
    conn.close()


def test_async_client_is_one_per_event_loop() -> None:
    conn = _conn(base_url="http://127.0.0.1:9/client/v4")

    async def get_twice() -> tuple[AsyncAISearchClient, AsyncAISearchClient]:
        return conn.async_client, conn.async_client

    a, b = asyncio.run(get_twice())
    c, _ = asyncio.run(get_twice())
    assert a is b
    assert isinstance(a, AsyncAISearchClient)
    assert c is not a


def test_injected_clients_are_used_and_not_closed() -> None:
    http = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    core = AISearchClient(account_id="acct", api_token=SECRET, http_client=http)
    conn = AISearchConnection(client=core)  # no credentials needed when a client is injected
    assert conn.client is core
    conn.close()
    assert conn.client is core
    core.close()


def test_connection_and_settings_are_exclusive() -> None:
    with pytest.raises(TypeError, match="either connection"):
        AISearchRetriever("docs", connection=_conn(), account_id="x")
    with pytest.raises(TypeError, match=r"unexpected keyword.*'top_k'"):
        AISearchRetriever("docs", account_id="a", api_token="t", top_k=3)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"unexpected keyword.*'top_k'.*similarity_top_k"):
        AISearchLLM("docs", account_id="a", api_token="t", top_k=3)  # type: ignore[call-arg]
    # max_tokens, temperature and stop are fields now; other raw fields go in extra_body
    with pytest.raises(TypeError, match=r"unexpected keyword.*'top_p'.*extra_body"):
        AISearchLLM("docs", account_id="a", api_token="t", top_p=0.5)  # type: ignore[call-arg]


_MISSPELT = [
    (
        lambda: AISearchRetriever(instance_id="x", similarity_topk=3),  # type: ignore[call-arg]
        "AISearchRetriever",
        "similarity_topk",
        "similarity_top_k",
    ),
    (
        lambda: AISearchRetriever("x", top_k=3),  # type: ignore[call-arg]
        "AISearchRetriever",
        "top_k",
        "similarity_top_k",
    ),
    (
        lambda: AISearchMultiRetriever(["x"], on_instance_eror="raise"),  # type: ignore[call-arg]
        "AISearchMultiRetriever",
        "on_instance_eror",
        "on_instance_error",
    ),
    (
        lambda: AISearchQueryEngine("x", retreival_type="hybrid"),  # type: ignore[call-arg]
        "AISearchQueryEngine",
        "retreival_type",
        "retrieval_type",
    ),
    (
        lambda: AISearchChatEngine("x", system_promt="hi"),  # type: ignore[call-arg]
        "AISearchChatEngine",
        "system_promt",
        "system_prompt",
    ),
    (
        lambda: AISearchLLM("x", temprature=0.5),  # type: ignore[call-arg]
        "AISearchLLM",
        "temprature",
        "temperature",
    ),
    (
        lambda: AISearchToolSpec("x", acount_id="a"),  # type: ignore[call-arg]
        "AISearchToolSpec",
        "acount_id",
        "account_id",
    ),
    (
        lambda: AISearchIndex("x", base_ur="http://x"),  # type: ignore[call-arg]
        "AISearchIndex",
        "base_ur",
        "base_url",
    ),
]


@pytest.mark.parametrize(("build", "owner", "bad", "near"), _MISSPELT)
def test_a_misspelt_keyword_names_the_closest_real_one(
    build: Any, owner: str, bad: str, near: str
) -> None:
    with pytest.raises(TypeError) as info:
        build()
    message = str(info.value)
    assert message.startswith(
        f"{owner}() got an unexpected keyword argument {bad!r} (did you mean {near!r}?); "
    )
    settings = "connection settings are: access_client_id, access_client_secret, account_id, "
    assert settings + "api_email," in message
    if owner != "AISearchIndex":
        assert "search options are: boost_by, cache," in message
        assert "similarity_top_k" in message
    else:
        assert "search options go to as_retriever()" in message


def test_an_unknown_keyword_with_no_close_match_lists_the_options() -> None:
    with pytest.raises(TypeError) as info:
        AISearchRetriever("x", zzz=1)  # type: ignore[call-arg]
    message = str(info.value)
    assert message.startswith("AISearchRetriever() got an unexpected keyword argument 'zzz'; ")
    assert (
        "other arguments are: callback_manager, connection, instance_id, namespace, verbose"
        in message
    )


# -- validation before any network call -----------------------------------------------


def _no_network() -> AISearchConnection:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"unexpected request {request.url}")

    http = httpx.Client(transport=httpx.MockTransport(handler))
    return AISearchConnection(
        client=AISearchClient(account_id="a", api_token="t", http_client=http)
    )


@pytest.mark.parametrize("value", [0, 51, -1, True, 2.5, "5"])
def test_similarity_top_k_range(value: Any) -> None:
    with pytest.raises(InvalidRequestError, match=r"similarity_top_k: .*1 and 50"):
        AISearchRetriever("docs", similarity_top_k=value, connection=_no_network())


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"match_threshold": 1.5}, "match_threshold"),
        ({"context_expansion": 4}, "context_expansion"),
        ({"retrieval_type": "semantic"}, "retrieval_type"),
        ({"fusion_method": "sum"}, "fusion_method"),
        ({"boost_by": [{"field": f"f{i}"} for i in range(4)]}, "boost_by"),
        ({"reranking": {"match_threshold": 2}}, "reranking.match_threshold"),
        ({"cache": {"cache_threshold": "nope"}}, "cache.cache_threshold"),
    ],
)
def test_bad_options_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequestError, match=field.replace(".", r"\.")):
        AISearchRetriever("docs", connection=_no_network(), **kwargs)
    with pytest.raises(InvalidRequestError, match=field.replace(".", r"\.")):
        AISearchQueryEngine("docs", connection=_no_network(), **kwargs)


def test_untranslatable_filters_fail_at_construction() -> None:
    bad = MetadataFilters(
        filters=[MetadataFilter(key="tags", value="x", operator=FilterOperator.CONTAINS)]
    )
    with pytest.raises(ValueError, match="'tags' contains 'x'"):
        AISearchRetriever("docs", filters=bad, connection=_no_network())
    with pytest.raises(ValueError, match="'tags' contains 'x'"):
        AISearchChatEngine("docs", filters=bad, connection=_no_network())


def test_setters_validate_and_keep_the_old_value() -> None:
    retriever = AISearchRetriever("docs", similarity_top_k=3, connection=_no_network())
    with pytest.raises(InvalidRequestError):
        retriever.similarity_top_k = 99
    assert retriever.similarity_top_k == 3
    retriever.filters = {"author": "Lena"}
    assert retriever.options is not None
    assert retriever.options.to_json_dict()["retrieval"] == {
        "max_num_results": 3,
        "filters": {"author": "Lena"},
    }


def test_empty_instance_id_rejected() -> None:
    with pytest.raises(InvalidRequestError, match="instance_id"):
        AISearchRetriever("", connection=_no_network())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "exactly one of instance_id"),
        ({"instance_id": "a", "instance_ids": ["b"]}, "exactly one of instance_id"),
        ({"instance_ids": [f"i{n}" for n in range(11)]}, "between 1 and 10"),
        ({"instance_ids": ["ok", ".."]}, r"instance_ids\[1\]: must be 1 to 64 characters"),
        ({"instance_id": ".."}, r"instance_id: must be 1 to 64 characters"),
        ({"instance_ids": "docs"}, "not a string"),
        ({"instance_ids": ["ok", ""]}, r"instance_ids\[1\]"),
    ],
)
def test_chat_targets_are_validated(kwargs: dict[str, Any], match: str) -> None:
    for cls in (AISearchQueryEngine, AISearchChatEngine, AISearchLLM):
        with pytest.raises(InvalidRequestError, match=match):
            cls(connection=_no_network(), **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"instance_ids": []}, "at least one"),
        ({"instance_ids": ["a", ""]}, r"instance_ids\[1\]"),
        ({"instance_ids": ["a"], "on_instance_error": "explode"}, "on_instance_error"),
        ({"instance_ids": ["a"], "mode": "magic"}, "mode"),
        ({"instance_ids": ["a"], "merge": "avg"}, "merge"),
        ({"instance_ids": ["a"], "max_concurrency": 0}, "max_concurrency"),
        ({"instance_ids": [f"i{n}" for n in range(11)], "mode": "namespace"}, "1 to 10"),
        ({"instance_ids": ["a"], "similarity_top_k": 0}, "similarity_top_k"),
    ],
)
def test_multi_retriever_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidRequestError, match=match):
        AISearchMultiRetriever(connection=_no_network(), **kwargs)


def test_multi_retriever_picks_the_endpoint() -> None:
    conn = _no_network()
    assert AISearchMultiRetriever(["a", "b"], connection=conn).use_namespace_endpoint
    many = [f"i{n}" for n in range(11)]
    assert not AISearchMultiRetriever(many, connection=conn).use_namespace_endpoint
    assert not AISearchMultiRetriever(["a"], mode="fan_out", connection=conn).use_namespace_endpoint


def test_index_arguments() -> None:
    with pytest.raises(InvalidRequestError, match="wait_timeout"):
        AISearchIndex("docs", wait_timeout=0, connection=_no_network())
    with pytest.raises(InvalidRequestError, match="instance_id"):
        AISearchIndex.from_documents([], connection=_no_network())


def test_tool_spec_offers_search_only_beyond_ten_instances() -> None:
    many = [f"i{n}" for n in range(12)]
    spec = AISearchToolSpec(instance_ids=many, connection=_no_network())
    assert [t.metadata.name for t in spec.to_tool_list()] == ["search"]
    with pytest.raises(ValueError, match="at most 10"):
        _ = spec.query_engine
    spec = AISearchToolSpec("docs", connection=_no_network())
    tools = spec.to_tool_list()
    assert [t.metadata.name for t in tools] == ["search", "answer"]
    assert "query" in tools[0].metadata.get_parameters_dict()["properties"]


# -- request shape (MockTransport) ------------------------------------------------------

SEARCH_RESULT = {
    "success": True,
    "errors": [],
    "messages": [],
    "result": {
        "search_query": "rewritten",
        "chunks": [
            {"id": "c1", "score": 0.9, "text": "t1", "item": {"key": "a.md"}},
            {"id": "c2", "score": 0.5, "text": "t2", "item": {"key": "b.md"}},
        ],
    },
}


def _recording(seen: list[dict[str, Any]]) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append({"path": request.url.path, "body": json.loads(request.content)})
        return httpx.Response(200, json=SEARCH_RESULT)

    return handler


def test_only_set_options_are_sent_and_nodes_are_mapped() -> None:
    seen: list[dict[str, Any]] = []
    conn = AISearchConnection(
        account_id="acct",
        api_token=SECRET,
        base_url="https://example.invalid/client/v4",
        http_client=httpx.Client(transport=httpx.MockTransport(_recording(seen))),
    )
    retriever = AISearchRetriever(
        "docs",
        similarity_top_k=2,
        filters=MetadataFilters(filters=[MetadataFilter(key="author", value="Lena")]),
        reranking=True,
        namespace="team",
        connection=conn,
    )
    nodes = retriever.retrieve("espresso")
    assert (
        seen[0]["path"]
        == "/client/v4/accounts/acct/ai-search/namespaces/team/instances/docs/search"
    )
    assert seen[0]["body"] == {
        "query": "espresso",
        "ai_search_options": {
            "retrieval": {"max_num_results": 2, "filters": {"author": {"$eq": "Lena"}}},
            "reranking": {"enabled": True},
        },
    }
    assert [n.node.node_id for n in nodes] == ["c1", "c2"]
    assert nodes[0].node.metadata["search_query"] == "rewritten"
    assert nodes[0].node.metadata["instance_id"] == "docs"


async def test_async_retrieve_uses_the_async_client() -> None:
    seen: list[dict[str, Any]] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, json=SEARCH_RESULT)

    conn = AISearchConnection(
        account_id="acct",
        api_token=SECRET,
        base_url="https://example.invalid/client/v4",
        async_http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        http_client=httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(500))),
    )
    retriever = AISearchRetriever(
        "docs", extra_options={"retrieval": {"future": 1}}, connection=conn
    )
    nodes = await retriever.aretrieve("espresso")
    assert [n.score for n in nodes] == [0.9, 0.5]
    assert seen == [{"query": "espresso", "ai_search_options": {"retrieval": {"future": 1}}}]
