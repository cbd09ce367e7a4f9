"""AISearchRetriever / AISearchMultiRetriever end to end over real HTTP."""

from __future__ import annotations

import pytest

from aisearch import AllInstancesFailedError, InternalServerError, NotFoundError
from langchain_aisearch import (
    AISearchInstanceWarning,
    AISearchMultiRetriever,
    AISearchRetriever,
    InstanceSearchError,
)

from .._sockets import client_sockets
from .conftest import QUERY

CANONICAL = {"id", "score", "type", "filename", "source", "timestamp", "scoring_details"}


def _check_docs(docs, instance_id=None):
    assert docs
    for doc in docs:
        assert set(doc.metadata) >= CANONICAL
        assert doc.id == doc.metadata["id"]
        assert doc.page_content
        assert isinstance(doc.metadata["score"], float)
        assert doc.metadata["search_query"]
        if instance_id is not None:
            assert doc.metadata["instance_id"] == instance_id
    scores = [d.metadata["score"] for d in docs]
    assert scores == sorted(scores, reverse=True)


def test_lazy_client_built_once_and_shared_by_batch(local, lc_target):
    # one pooled client serves every call: one connection carries every request
    retriever = AISearchRetriever(instance_id=lc_target.instance_id, k=2)
    before = client_sockets(local.port)
    results = retriever.batch([QUERY] * 4, config={"max_concurrency": 1})
    assert [len(docs) for docs in results] == [2, 2, 2, 2]
    assert retriever.invoke(QUERY)
    assert len(client_sockets(local.port) - before) == 1
    retriever.close()
    assert client_sockets(local.port) - before == set()


def test_invoke_maps_documents(lc_target):
    retriever = AISearchRetriever(instance_id=lc_target.instance_id, k=5)
    docs = retriever.invoke(QUERY)
    assert len(docs) == 5
    _check_docs(docs, lc_target.instance_id)
    assert len(retriever.invoke(QUERY, k=2)) == 2


async def test_ainvoke_and_abatch(lc_target):
    retriever = AISearchRetriever(instance_id=lc_target.instance_id, k=3)
    docs = await retriever.ainvoke(QUERY)
    _check_docs(docs, lc_target.instance_id)
    batches = await retriever.abatch([QUERY, "cold brew ratio", "roast levels"], k=2)
    assert [len(b) for b in batches] == [2, 2, 2]
    assert retriever._get_async_client() is retriever._get_async_client()


def test_batch_matches_invoke(lc_target):
    retriever = AISearchRetriever(instance_id=lc_target.instance_id, k=3)
    single = [d.id for d in retriever.invoke("french press steep time")]
    batched = retriever.batch(["french press steep time", QUERY])
    assert [d.id for d in batched[0]] == single


def test_folder_filter_per_call(lc_target):
    if lc_target.live:
        pytest.skip("the live test instance need not have a brewing/ folder")
    retriever = AISearchRetriever(instance_id=lc_target.instance_id, k=10)
    docs = retriever.invoke(QUERY, filters={"folder": "brewing/"})
    assert docs
    assert all(d.metadata["source"].startswith("brewing/") for d in docs)


def test_retrieval_types(lc_target):
    for retrieval_type in ("vector", "keyword", "hybrid"):
        retriever = AISearchRetriever(
            instance_id=lc_target.instance_id, k=3, retrieval_type=retrieval_type
        )
        docs = retriever.invoke(QUERY)
        assert docs, retrieval_type
        if retrieval_type == "hybrid":
            assert docs[0].metadata["scoring_details"]


def test_missing_instance_raises_not_found(lc_target):
    retriever = AISearchRetriever(instance_id="no-such-instance-xyz", max_retries=0)
    with pytest.raises(NotFoundError):
        retriever.invoke(QUERY)


def test_server_error_propagates_typed(local, lc_target):
    local.set_fault(lc_target.instance_id, status=500)
    retriever = AISearchRetriever(instance_id=lc_target.instance_id, max_retries=0)
    with pytest.raises(InternalServerError):
        retriever.invoke(QUERY)


# --------------------------------------------------------------------------- multi


@pytest.fixture
def two_instances(lc_target, request):
    if lc_target.live:
        pytest.skip("needs two instances")
    second = request.getfixturevalue("lc_second_instance")
    return [lc_target.instance_id, second]


@pytest.mark.parametrize("force_fan_out", [False, True])
def test_multi_returns_documents_from_both(two_instances, force_fan_out):
    retriever = AISearchMultiRetriever(
        instance_ids=two_instances, k=10, force_fan_out=force_fan_out
    )
    docs = retriever.invoke("microfoam milk for espresso drinks")
    _check_docs(docs)
    assert {d.metadata["instance_id"] for d in docs} == set(two_instances)


async def test_multi_async_rrf_fan_out(two_instances):
    retriever = AISearchMultiRetriever(
        instance_ids=two_instances, k=6, force_fan_out=True, merge="rrf"
    )
    docs = await retriever.ainvoke("microfoam milk for espresso drinks")
    assert len(docs) == 6
    assert {d.metadata["instance_id"] for d in docs} == set(two_instances)


@pytest.mark.parametrize("force_fan_out", [False, True])
def test_multi_partial_failure_warns(local, two_instances, force_fan_out):
    good, bad = two_instances
    local.set_fault(bad, status=500)
    retriever = AISearchMultiRetriever(
        instance_ids=two_instances, k=4, force_fan_out=force_fan_out, max_retries=0
    )
    with pytest.warns(AISearchInstanceWarning, match=bad):
        docs = retriever.invoke(QUERY)
    assert docs
    assert {d.metadata["instance_id"] for d in docs} == {good}
    docs, errors = retriever.search_with_errors(QUERY)
    assert [e.instance_id for e in errors] == [bad]
    assert docs
    strict = retriever.model_copy(update={"on_instance_error": "raise"})
    with pytest.raises(InstanceSearchError, match=bad):
        strict.invoke(QUERY)


async def test_multi_partial_failure_custom_event_in_astream_events(local, two_instances):
    good, bad = two_instances
    local.set_fault(bad, status=503)
    retriever = AISearchMultiRetriever(instance_ids=two_instances, k=3, max_retries=0)
    events = []
    with pytest.warns(AISearchInstanceWarning):
        async for event in retriever.astream_events(QUERY, version="v2"):
            events.append(event)
    custom = [e for e in events if e["event"] == "on_custom_event"]
    assert [e["name"] for e in custom] == ["aisearch_instance_error"]
    assert custom[0]["data"]["instance_id"] == bad
    end = next(e for e in events if e["event"] == "on_retriever_end")
    assert {d.metadata["instance_id"] for d in end["data"]["output"]} == {good}


@pytest.mark.parametrize("force_fan_out", [False, True])
async def test_multi_all_failed_raises_listing_each(local, two_instances, force_fan_out):
    for instance_id in two_instances:
        local.set_fault(instance_id, status=500)
    retriever = AISearchMultiRetriever(
        instance_ids=two_instances, force_fan_out=force_fan_out, max_retries=0
    )
    with pytest.raises(AllInstancesFailedError) as info:
        await retriever.ainvoke(QUERY)
    assert sorted(e.instance_id for e in info.value.errors) == sorted(two_instances)
    for instance_id in two_instances:
        assert instance_id in str(info.value)


@pytest.mark.parametrize("force_fan_out", [False, True])
async def test_multi_extra_options_reach_every_instance(two_instances, force_fan_out):
    # the raw escape hatch carries a filter the typed fields do not set
    retriever = AISearchMultiRetriever(
        instance_ids=two_instances,
        k=10,
        force_fan_out=force_fan_out,
        extra_options={"retrieval": {"filters": {"folder": "beans/"}}},
    )
    for docs in (
        retriever.invoke("coffee origin processing"),
        await retriever.ainvoke("coffee origin processing"),
    ):
        assert docs
        assert all(d.metadata["filename"].startswith("beans/") for d in docs)
    await retriever.aclose()


def test_with_closes_each_per_request_retriever(local, lc_target):
    # objects made per request: `with` closes each one's pool on the way out
    before = client_sockets(local.port)
    for _ in range(20):
        with AISearchRetriever(instance_id=lc_target.instance_id, k=1) as retriever:
            assert retriever.invoke(QUERY)
            assert len(client_sockets(local.port) - before) == 1
    assert client_sockets(local.port) - before == set()


@pytest.mark.parametrize("force_fan_out", [False, True])
def test_with_closes_the_multi_retriever_pool(local, two_instances, force_fan_out):
    before = client_sockets(local.port)
    with AISearchMultiRetriever(
        instance_ids=two_instances, k=4, force_fan_out=force_fan_out
    ) as retriever:
        assert retriever.invoke(QUERY)
        assert client_sockets(local.port) - before
    assert client_sockets(local.port) - before == set()
    assert retriever.invoke(QUERY)  # still usable: a new pool, closed by close()
    retriever.close()
    assert client_sockets(local.port) - before == set()


async def test_async_with_closes_the_pools(local, two_instances):
    before = client_sockets(local.port)
    async with AISearchRetriever(instance_id=two_instances[0], k=2) as retriever:
        assert await retriever.ainvoke(QUERY)
    async with AISearchMultiRetriever(instance_ids=two_instances, force_fan_out=True) as multi:
        assert await multi.ainvoke(QUERY)
        assert client_sockets(local.port) - before
    assert client_sockets(local.port) - before == set()
