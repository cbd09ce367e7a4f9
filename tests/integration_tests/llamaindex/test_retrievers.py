"""AISearchRetriever end to end against aisearch_local (real HTTP on 127.0.0.1)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from llama_index.core.instrumentation.events.retrieval import (
    RetrievalEndEvent,
    RetrievalStartEvent,
)
from llama_index.core.instrumentation.span_handlers import SimpleSpanHandler
from llama_index.core.schema import MetadataMode, QueryBundle
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)
from pydantic import Field

from aisearch import AuthenticationError, InternalServerError, NotFoundError, PermissionDeniedError
from aisearch_local.testing import LocalServer
from llamaindex_aisearch import AISearchConnection, AISearchRetriever
from llamaindex_aisearch._mapping import CANONICAL_KEYS

from .._sockets import client_sockets
from .conftest import EventCollector, installed

QUERY = "espresso extraction time and grind size"


def test_retrieve_maps_chunks_to_nodes(conn: AISearchConnection, docs_instance: str) -> None:
    retriever = AISearchRetriever(docs_instance, similarity_top_k=4, connection=conn)
    nodes = retriever.retrieve(QUERY)
    assert 1 <= len(nodes) <= 4
    scores = [n.score for n in nodes]
    assert scores == sorted(scores, reverse=True)
    for nws in nodes:
        meta = nws.node.metadata
        assert set(CANONICAL_KEYS) <= set(meta)
        assert nws.node.node_id == meta["id"]
        assert nws.score == meta["score"]
        assert meta["instance_id"] == docs_instance
        assert meta["filename"] == meta["source"] and meta["filename"]
        assert meta["search_query"]
        assert {"difficulty", "rating", "author"} <= set(meta)  # the item's custom metadata
        assert nws.node.get_content()
        assert "scoring_details" not in nws.node.get_content(metadata_mode=MetadataMode.LLM)
    assert any("espresso" in n.node.get_content().lower() for n in nodes)


async def test_aretrieve_matches_retrieve(conn: AISearchConnection, docs_instance: str) -> None:
    retriever = AISearchRetriever(docs_instance, similarity_top_k=5, connection=conn)
    sync_ids = [n.node.node_id for n in retriever.retrieve(QUERY)]
    async_ids = [n.node.node_id for n in await retriever.aretrieve(QUERY)]
    assert async_ids == sync_ids
    assert async_ids


@pytest.mark.parametrize("top_k", [1, 3, 7])
def test_similarity_top_k_is_honoured(
    conn: AISearchConnection, docs_instance: str, top_k: int
) -> None:
    nodes = AISearchRetriever(docs_instance, similarity_top_k=top_k, connection=conn).retrieve(
        "coffee"
    )
    assert len(nodes) == top_k


def test_typed_options_reach_the_service(conn: AISearchConnection, docs_instance: str) -> None:
    keyword = AISearchRetriever(
        docs_instance, retrieval_type="keyword", similarity_top_k=5, connection=conn
    ).retrieve("Nyeri")
    assert keyword
    for n in keyword:
        details = n.node.metadata["scoring_details"]
        assert details is not None and "keyword_score" in details
        assert "vector_score" not in details

    # match_threshold cuts on the vector score: take the median of an unfiltered run as the
    # threshold, so the strict run is neither empty nor everything
    def vector_run(threshold: float) -> dict[str, float]:
        nodes = AISearchRetriever(
            docs_instance,
            retrieval_type="vector",
            match_threshold=threshold,
            similarity_top_k=50,
            connection=conn,
        ).retrieve(QUERY)
        return {n.node.node_id: n.node.metadata["scoring_details"]["vector_score"] for n in nodes}

    loose = vector_run(0.0)
    cut = sorted(loose.values())[len(loose) // 2]
    strict = vector_run(cut)
    assert 0 < len(strict) < len(loose)
    assert strict == {cid: v for cid, v in loose.items() if v >= cut}
    meta_only = AISearchRetriever(
        docs_instance, metadata_only=True, similarity_top_k=3, connection=conn
    ).retrieve("Nyeri")
    assert meta_only and all(n.node.get_content() == "" for n in meta_only)


def _filters(*items: MetadataFilter, condition: str = "and") -> MetadataFilters:
    return MetadataFilters(filters=list(items), condition=FilterCondition(condition))


FILTER_CASES: list[tuple[MetadataFilters, Callable[[dict[str, Any]], bool]]] = [
    (
        _filters(MetadataFilter(key="difficulty", value="beginner")),
        lambda m: m["difficulty"] == "beginner",
    ),
    (
        _filters(MetadataFilter(key="difficulty", value="beginner", operator=FilterOperator.NE)),
        lambda m: m["difficulty"] != "beginner",
    ),
    (
        _filters(MetadataFilter(key="rating", value=4.5, operator=FilterOperator.GT)),
        lambda m: m["rating"] > 4.5,
    ),
    (
        _filters(MetadataFilter(key="rating", value=4.5, operator=FilterOperator.GTE)),
        lambda m: m["rating"] >= 4.5,
    ),
    (
        _filters(MetadataFilter(key="rating", value=4.0, operator=FilterOperator.LT)),
        lambda m: m["rating"] < 4.0,
    ),
    (
        _filters(MetadataFilter(key="rating", value=4.0, operator=FilterOperator.LTE)),
        lambda m: m["rating"] <= 4.0,
    ),
    (
        _filters(
            MetadataFilter(
                key="difficulty", value=["advanced", "intermediate"], operator=FilterOperator.IN
            )
        ),
        lambda m: m["difficulty"] in ("advanced", "intermediate"),
    ),
    (
        _filters(
            MetadataFilter(
                key="difficulty", value=["advanced", "intermediate"], operator=FilterOperator.NIN
            )
        ),
        lambda m: m["difficulty"] not in ("advanced", "intermediate"),
    ),
    (
        _filters(
            MetadataFilter(key="difficulty", value="advanced"),
            MetadataFilter(key="difficulty", value="beginner"),
            condition="or",
        ),
        lambda m: m["difficulty"] in ("advanced", "beginner"),
    ),
    (
        _filters(
            MetadataFilter(key="rating", value=3.5, operator=FilterOperator.GTE),
            MetadataFilter(key="rating", value=4.6, operator=FilterOperator.LT),
            MetadataFilter(key="difficulty", value="beginner", operator=FilterOperator.NE),
        ),
        lambda m: 3.5 <= m["rating"] < 4.6 and m["difficulty"] != "beginner",
    ),
]


@pytest.mark.parametrize(("filters", "check"), FILTER_CASES)
def test_each_filter_is_applied_by_the_service(
    conn: AISearchConnection,
    docs_instance: str,
    filters: MetadataFilters,
    check: Callable[[dict[str, Any]], bool],
) -> None:
    unfiltered = AISearchRetriever(
        docs_instance, similarity_top_k=50, match_threshold=0.0, connection=conn
    ).retrieve("coffee")
    filtered = AISearchRetriever(
        docs_instance, similarity_top_k=50, match_threshold=0.0, filters=filters, connection=conn
    ).retrieve("coffee")
    assert filtered, "the filter should match some chunks of the sample corpus"
    assert all(check(n.node.metadata) for n in filtered)
    assert any(not check(n.node.metadata) for n in unfiltered)


def test_raw_dict_filters(conn: AISearchConnection, docs_instance: str) -> None:
    nodes = AISearchRetriever(
        docs_instance,
        similarity_top_k=20,
        filters={"verified": True, "rating": {"$gte": 4}},
        connection=conn,
    ).retrieve("coffee")
    assert nodes
    assert all(n.node.metadata["verified"] is True for n in nodes)
    assert all(n.node.metadata["rating"] >= 4 for n in nodes)


def test_retrieval_events_fire(
    conn: AISearchConnection, docs_instance: str, collector: EventCollector
) -> None:
    AISearchRetriever(docs_instance, connection=conn).retrieve(QUERY)
    end = collector.once(RetrievalStartEvent, RetrievalEndEvent)
    assert end.nodes and end.nodes[0].node.metadata["instance_id"] == docs_instance


class _SpanRecorder(SimpleSpanHandler):
    """Records (span id, bound arguments) at every span's entry."""

    entered: list[tuple[str, dict[str, Any]]] = Field(default_factory=list)

    def new_span(self, id_: str, bound_args: Any, *args: Any, **kwargs: Any) -> Any:
        self.entered.append((id_, dict(bound_args.arguments)))
        return super().new_span(id_, bound_args, *args, **kwargs)


@pytest.fixture
def spans() -> Iterator[_SpanRecorder]:
    yield from installed(_SpanRecorder())


async def test_retrieve_spans_carry_bound_arguments(
    conn: AISearchConnection, docs_instance: str, spans: _SpanRecorder
) -> None:
    # _retrieve carries a precomputed __signature__ (llamaindex_aisearch._common.presigned):
    # the span LlamaIndex opens around it must still bind the real arguments. (LlamaIndex
    # opens no span around _aretrieve: it is not abstract in BaseRetriever.)
    retriever = AISearchRetriever(docs_instance, connection=conn)
    retriever.retrieve(QUERY)
    await retriever.aretrieve(QUERY)
    names = [span_id.rsplit("-", 5)[0] for span_id, _ in spans.entered]
    assert names == [
        "AISearchRetriever.retrieve",
        "AISearchRetriever._retrieve",
        "AISearchRetriever.aretrieve",
    ]
    assert [args["str_or_query_bundle"] for _, args in spans.entered[::2]] == [QUERY, QUERY]
    inner = spans.entered[1][1]
    assert list(inner) == ["query_bundle"]
    assert isinstance(inner["query_bundle"], QueryBundle)
    assert inner["query_bundle"].query_str == QUERY


def test_asyncio_run_per_call_does_not_leak_clients_or_sockets(
    local_server: LocalServer, docs_instance: str
) -> None:
    # asyncio.run per request (scripts, Celery tasks, Lambda handlers): each run has a new
    # loop; clients of closed loops must be let go, with their sockets. Only this process's
    # client sockets to the server's port are counted (not every fd: the server runs in a
    # thread of this process and its own sockets come and go with keep-alive timeouts).
    import asyncio
    import gc
    import weakref

    conn = AISearchConnection(
        account_id=local_server.account_id,
        api_token=local_server.token,
        base_url=local_server.base_url,
    )
    retriever = AISearchRetriever(docs_instance, similarity_top_k=2, connection=conn)
    clients: list[weakref.ref[Any]] = []

    async def once() -> list[Any]:
        nodes = await retriever.aretrieve(QUERY)
        clients.append(weakref.ref(conn.async_client))
        return nodes

    before = client_sockets(local_server.port)
    for _ in range(40):
        assert asyncio.run(once())
    gc.collect()
    # one client per run (weakref.ref returns the same reference for the same object), and
    # the clients of finished runs are let go (at most the last one is held until another
    # loop asks)
    assert len({id(ref) for ref in clients}) == 40
    assert sum(ref() is not None for ref in clients) <= 1
    # each run's loop closed its client's sockets at its shutdown (no garbage collection
    # needed); the leak this guards against kept one client and socket per run (40)
    opened = client_sockets(local_server.port) - before
    assert opened == set(), sorted(opened)
    asyncio.run(conn.aclose())
    conn.close()


def test_unknown_instance_raises_not_found(conn: AISearchConnection) -> None:
    retriever = AISearchRetriever("no-such-instance", connection=conn)
    with pytest.raises(NotFoundError) as info:
        retriever.retrieve("x")
    assert info.value.status_code == 404


async def test_unknown_instance_raises_not_found_async(conn: AISearchConnection) -> None:
    with pytest.raises(NotFoundError):
        await AISearchRetriever("no-such-instance", connection=conn).aretrieve("x")


def test_bad_token_raises_typed_and_hides_token(
    local_server: LocalServer, docs_instance: str
) -> None:
    conn = AISearchConnection(
        account_id=local_server.account_id,
        api_token="wrong-token-abcdef",
        base_url=local_server.base_url,
        max_retries=0,
    )
    with pytest.raises((AuthenticationError, PermissionDeniedError)) as info:
        AISearchRetriever(docs_instance, connection=conn).retrieve("x")
    assert "wrong-token-abcdef" not in str(info.value)
    assert "wrong-token-abcdef" not in repr(info.value)


@pytest.mark.parametrize("use_async", [False, True])
async def test_server_errors_propagate_typed(
    conn: AISearchConnection, local_server: LocalServer, docs_instance: str, use_async: bool
) -> None:
    local_server.set_fault(docs_instance, status=503, code=7017)
    retriever = AISearchRetriever(docs_instance, connection=conn)
    with pytest.raises(InternalServerError) as info:
        if use_async:
            await retriever.aretrieve("x")
        else:
            retriever.retrieve("x")
    assert info.value.status_code == 503
    assert info.value.code == 7017


def test_node_folder_is_what_a_folder_filter_matches(
    conn: AISearchConnection, docs_instance: str
) -> None:
    nodes = AISearchRetriever(
        docs_instance, similarity_top_k=50, match_threshold=0.0, connection=conn
    ).retrieve("V60 pour over")
    v60 = next(n for n in nodes if n.node.metadata["filename"] == "brewing/pour-over-v60.md")
    folder = v60.node.metadata["folder"]
    assert folder == "brewing/"
    assert "folder: " not in v60.node.get_content(metadata_mode=MetadataMode.LLM)
    filters = MetadataFilters(filters=[MetadataFilter(key="folder", value=folder)])
    filtered = AISearchRetriever(
        docs_instance, similarity_top_k=50, match_threshold=0.0, filters=filters, connection=conn
    ).retrieve("V60 pour over")
    assert v60.node.node_id in {n.node.node_id for n in filtered}
    assert {n.node.metadata["folder"] for n in filtered} == {folder}
    assert any(n.node.metadata["folder"] != folder for n in nodes)
