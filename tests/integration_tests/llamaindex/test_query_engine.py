"""AISearchQueryEngine: answers, sources, streaming order, events, errors."""

from __future__ import annotations

import pytest
from llama_index.core.base.response.schema import (
    AsyncStreamingResponse,
    Response,
    StreamingResponse,
)
from llama_index.core.instrumentation.events.query import QueryEndEvent, QueryStartEvent

from aisearch import InternalServerError, NotFoundError, StreamInterruptedError
from aisearch_local.testing import LocalServer
from llamaindex_aisearch import AISearchConnection, AISearchQueryEngine

from .conftest import EventCollector

QUESTION = "What grind size and ratio should I use for a French press?"


def _check_answer(response: Response, instance: str) -> None:
    assert isinstance(response, Response)
    assert response.response and len(response.response) > 20
    assert response.source_nodes
    assert all(n.node.metadata["instance_id"] == instance for n in response.source_nodes)
    meta = response.metadata or {}
    assert meta["model"]
    assert meta["usage"]["total_tokens"] > 0
    assert meta["search_query"]
    assert meta["finish_reason"] == "stop"


def test_query_returns_answer_sources_and_metadata(
    conn: AISearchConnection, docs_instance: str
) -> None:
    engine = AISearchQueryEngine(docs_instance, similarity_top_k=4, connection=conn)
    response = engine.query(QUESTION)
    _check_answer(response, docs_instance)  # type: ignore[arg-type]
    assert len(response.source_nodes) <= 4
    assert any("french" in n.node.get_content().lower() for n in response.source_nodes)


async def test_aquery(conn: AISearchConnection, docs_instance: str) -> None:
    engine = AISearchQueryEngine(docs_instance, connection=conn)
    response = await engine.aquery(QUESTION)
    _check_answer(response, docs_instance)  # type: ignore[arg-type]


def test_system_prompt_and_filters_are_sent(conn: AISearchConnection, docs_instance: str) -> None:
    engine = AISearchQueryEngine(
        docs_instance,
        system_prompt="Answer in one sentence.",
        filters={"difficulty": "advanced"},
        connection=conn,
    )
    response = engine.query("coffee")
    assert response.source_nodes
    assert all(n.node.metadata["difficulty"] == "advanced" for n in response.source_nodes)


def test_streaming_sets_sources_before_the_first_token(
    conn: AISearchConnection, docs_instance: str
) -> None:
    engine = AISearchQueryEngine(docs_instance, streaming=True, cache=False, connection=conn)
    response = engine.query(QUESTION)
    assert isinstance(response, StreamingResponse)
    # Nothing of the text has been read yet, and the sources are already there.
    assert response.response_txt is None
    assert response.source_nodes
    first_sources = list(response.source_nodes)
    tokens = list(response.response_gen)
    assert len(tokens) > 1
    assert response.source_nodes == first_sources
    assert response.metadata is not None
    assert response.metadata["usage"]["completion_tokens"] > 0  # filled at the end
    assert response.metadata["finish_reason"] == "stop"
    full = AISearchQueryEngine(docs_instance, connection=conn).query(QUESTION)
    assert "".join(tokens) == full.response


async def test_async_streaming_sets_sources_before_the_first_token(
    conn: AISearchConnection, docs_instance: str
) -> None:
    engine = AISearchQueryEngine(docs_instance, streaming=True, cache=False, connection=conn)
    response = await engine.aquery(QUESTION)
    assert isinstance(response, AsyncStreamingResponse)
    assert response.response_txt is None
    assert response.source_nodes
    tokens = [t async for t in response.async_response_gen()]
    assert len(tokens) > 1
    assert response.response_txt == "".join(tokens)
    assert response.metadata is not None and response.metadata["usage"] is not None


def test_query_events_fire(
    conn: AISearchConnection, docs_instance: str, collector: EventCollector
) -> None:
    AISearchQueryEngine(docs_instance, connection=conn).query(QUESTION)
    assert collector.once(QueryStartEvent, QueryEndEvent).response.source_nodes


async def test_query_events_fire_async(
    conn: AISearchConnection, docs_instance: str, collector: EventCollector
) -> None:
    await AISearchQueryEngine(docs_instance, streaming=True, connection=conn).aquery(QUESTION)
    collector.once(QueryStartEvent, QueryEndEvent)


def test_errors_propagate_typed(conn: AISearchConnection, local_server: LocalServer) -> None:
    with pytest.raises(NotFoundError):
        AISearchQueryEngine("missing-instance", connection=conn).query("x")
    with pytest.raises(NotFoundError):  # raised by query(), before any token is read
        AISearchQueryEngine("missing-instance", streaming=True, connection=conn).query("x")


async def test_stream_errors_propagate_typed(
    conn: AISearchConnection, local_server: LocalServer, docs_instance: str
) -> None:
    local_server.set_fault(docs_instance, status=500)
    with pytest.raises(InternalServerError):
        await AISearchQueryEngine(docs_instance, streaming=True, connection=conn).aquery("x")
    local_server.set_fault(docs_instance, truncate_stream=True)
    response = AISearchQueryEngine(docs_instance, streaming=True, connection=conn).query(QUESTION)
    with pytest.raises(StreamInterruptedError):
        list(response.response_gen)  # type: ignore[union-attr]
    response = await AISearchQueryEngine(docs_instance, streaming=True, connection=conn).aquery(
        QUESTION
    )
    with pytest.raises(StreamInterruptedError):
        async for _ in response.async_response_gen():  # type: ignore[union-attr]
            pass


def test_namespace_query_over_several_instances(
    conn: AISearchConnection, docs_instance: str, make_instance
) -> None:
    empty = make_instance()
    engine = AISearchQueryEngine(instance_ids=[docs_instance, empty], connection=conn)
    response = engine.query(QUESTION)
    assert response.source_nodes
    assert {n.node.metadata["instance_id"] for n in response.source_nodes} == {docs_instance}
    stream = AISearchQueryEngine(
        instance_ids=[docs_instance, empty], streaming=True, connection=conn
    ).query(QUESTION)
    assert stream.source_nodes
    assert "".join(stream.response_gen)  # type: ignore[union-attr]


async def test_namespace_stream_reports_a_missing_instance(
    conn: AISearchConnection, docs_instance: str
) -> None:
    ids = [docs_instance, "no-such-instance-xyz"]
    plain = AISearchQueryEngine(instance_ids=ids, connection=conn).query(QUESTION)
    streamed = AISearchQueryEngine(instance_ids=ids, streaming=True, connection=conn)
    sync = streamed.query(QUESTION)
    expected = [("no-such-instance-xyz")]
    for response in (plain, sync, await streamed.aquery(QUESTION)):
        assert [e["instance_id"] for e in response.metadata["errors"]] == expected
        assert response.source_nodes
