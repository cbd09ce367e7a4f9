"""AISearchMultiRetriever: namespace search, client fan-out, per-instance failures."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pytest

from aisearch import AllInstancesFailedError, InternalServerError, SearchTarget
from aisearch_local.testing import LocalServer
from llamaindex_aisearch import (
    AISearchConnection,
    AISearchInstanceErrorEvent,
    AISearchInstanceWarning,
    AISearchMultiRetriever,
    InstanceFailureError,
)

from .conftest import EventCollector

TEA = "Green tea steeping: water at 80 degrees, three minutes, loose Sencha leaves."


@pytest.fixture(scope="module")
def tea_instance(make_instance: Callable[..., str], local_server: LocalServer) -> str:
    from aisearch import AISearchClient

    iid = make_instance()
    with AISearchClient(
        account_id=local_server.account_id,
        api_token=local_server.token,
        base_url=local_server.base_url,
    ) as client:
        client.upload_item(iid, "tea/sencha.txt", TEA, wait_for_completion=True)
    return iid


def _pair(
    conn: AISearchConnection, docs: str, tea: str, mode: str, **options: Any
) -> AISearchMultiRetriever:
    """Both instances, searched in ``mode``."""
    return AISearchMultiRetriever([docs, tea], mode=mode, connection=conn, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["namespace", "fan_out"])
async def test_results_from_every_instance_carry_instance_id(
    conn: AISearchConnection, docs_instance: str, tea_instance: str, mode: str
) -> None:
    retriever = _pair(conn, docs_instance, tea_instance, mode, similarity_top_k=10)
    for nodes in (
        retriever.retrieve("sencha tea steeping water espresso"),
        await retriever.aretrieve("sencha tea steeping water espresso"),
    ):
        instances = {n.node.metadata["instance_id"] for n in nodes}
        assert instances == {docs_instance, tea_instance}
        assert len(nodes) <= 10
        tea = [n for n in nodes if n.node.metadata["instance_id"] == tea_instance]
        assert tea[0].node.metadata["filename"] == "tea/sencha.txt"


@pytest.fixture
def tea_fails(local_server: LocalServer, tea_instance: str) -> str:
    """The tea instance, failing with 500 / Cloudflare code 7017 during the test."""
    local_server.set_fault(tea_instance, status=500, code=7017)
    return tea_instance


def test_partial_failure_warns_and_dispatches_an_event(
    conn: AISearchConnection,
    local_server: LocalServer,
    docs_instance: str,
    tea_fails: str,
    collector: EventCollector,
) -> None:
    tea_instance = tea_fails
    retriever = AISearchMultiRetriever([docs_instance, tea_instance], connection=conn)
    with pytest.warns(AISearchInstanceWarning, match=tea_instance):
        nodes = retriever.retrieve("espresso")
    assert nodes
    assert {n.node.metadata["instance_id"] for n in nodes} == {docs_instance}
    events = collector.of(AISearchInstanceErrorEvent)
    assert [e.instance_id for e in events] == [tea_instance]
    assert events[0].query == "espresso"
    assert events[0].message
    assert local_server.token not in events[0].model_dump_json()


def test_fan_out_partial_failure_keeps_the_typed_error(
    conn: AISearchConnection, docs_instance: str, tea_fails: str, collector: EventCollector
) -> None:
    tea_instance = tea_fails
    retriever = AISearchMultiRetriever(
        [docs_instance, tea_instance], mode="fan_out", on_instance_error="ignore", connection=conn
    )
    result = retriever.retrieve_with_errors("espresso")
    assert result.nodes
    assert [e.instance_id for e in result.errors] == [tea_instance]
    assert isinstance(result.errors[0].error, InternalServerError)
    event = collector.of(AISearchInstanceErrorEvent)[0]
    assert event.error_type == "InternalServerError"
    assert event.status_code == 500
    assert event.code == 7017
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert retriever.retrieve("espresso")  # "ignore": no warning


async def test_aretrieve_with_errors(
    conn: AISearchConnection, local_server: LocalServer, docs_instance: str, tea_instance: str
) -> None:
    local_server.set_fault(docs_instance, status=500)
    retriever = AISearchMultiRetriever([docs_instance, tea_instance], connection=conn)
    result = await retriever.aretrieve_with_errors("tea")
    assert {n.node.metadata["instance_id"] for n in result.nodes} == {tea_instance}
    assert [e.instance_id for e in result.errors] == [docs_instance]


@pytest.mark.parametrize("mode", ["namespace", "fan_out"])
async def test_raise_policy(
    conn: AISearchConnection, docs_instance: str, tea_fails: str, mode: str
) -> None:
    tea_instance = tea_fails
    retriever = _pair(conn, docs_instance, tea_instance, mode, on_instance_error="raise")
    with pytest.raises(InstanceFailureError, match=tea_instance) as info:
        retriever.retrieve("espresso")
    assert info.value.nodes
    assert [e.instance_id for e in info.value.errors] == [tea_instance]
    with pytest.raises(InstanceFailureError):
        await retriever.aretrieve("espresso")


@pytest.mark.parametrize("mode", ["namespace", "fan_out"])
async def test_all_failing_raises_listing_each(
    conn: AISearchConnection,
    local_server: LocalServer,
    docs_instance: str,
    tea_instance: str,
    mode: str,
) -> None:
    local_server.set_fault(docs_instance, status=500)
    local_server.set_fault(tea_instance, status=503)
    retriever = _pair(conn, docs_instance, tea_instance, mode, on_instance_error="ignore")
    with pytest.raises(AllInstancesFailedError) as info:
        retriever.retrieve("espresso")
    assert {e.instance_id for e in info.value.errors} == {docs_instance, tea_instance}
    assert docs_instance in str(info.value) and tea_instance in str(info.value)
    with pytest.raises(AllInstancesFailedError):
        await retriever.aretrieve("espresso")


def test_more_than_ten_instances_fan_out(
    conn: AISearchConnection,
    make_instance: Callable[..., str],
    docs_instance: str,
    tea_instance: str,
) -> None:
    empties = [make_instance() for _ in range(10)]
    retriever = AISearchMultiRetriever(
        [docs_instance, tea_instance, *empties], similarity_top_k=6, connection=conn
    )
    assert not retriever.use_namespace_endpoint
    nodes = retriever.retrieve("sencha espresso")
    assert len(nodes) == 6
    assert {n.node.metadata["instance_id"] for n in nodes} <= {docs_instance, tea_instance}
    assert tea_instance in {n.node.metadata["instance_id"] for n in nodes}


def test_search_targets_across_namespaces(
    conn: AISearchConnection, local_server: LocalServer, docs_instance: str
) -> None:
    from aisearch import AISearchClient

    with AISearchClient(
        account_id=local_server.account_id,
        api_token=local_server.token,
        base_url=local_server.base_url,
    ) as client:
        client.create_namespace("team-li")
        client.create_instance("notes", namespace="team-li")
        client.upload_item(
            "notes",
            "notes/grinder.txt",
            "Burr grinder cleaning schedule: weekly.",
            namespace="team-li",
            wait_for_completion=True,
        )
    retriever = AISearchMultiRetriever(
        [docs_instance, SearchTarget("notes", namespace="team-li")], connection=conn
    )
    assert not retriever.use_namespace_endpoint
    nodes = retriever.retrieve("burr grinder cleaning")
    assert "notes" in {n.node.metadata["instance_id"] for n in nodes}


@pytest.mark.parametrize("mode", ["namespace", "fan_out"])
async def test_extra_options_reach_every_instance(
    conn: AISearchConnection, docs_instance: str, tea_instance: str, mode: str
) -> None:
    # the raw escape hatch carries a filter the typed fields do not set
    retriever = _pair(
        conn,
        docs_instance,
        tea_instance,
        mode,
        similarity_top_k=10,
        extra_options={"retrieval": {"filters": {"folder": "tea/"}}},
    )
    for nodes in (
        retriever.retrieve("sencha tea steeping water espresso"),
        await retriever.aretrieve("sencha tea steeping water espresso"),
    ):
        assert nodes
        assert {n.node.metadata["filename"] for n in nodes} == {"tea/sencha.txt"}
