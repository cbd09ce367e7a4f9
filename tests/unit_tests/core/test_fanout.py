"""Client-side fan-out: concurrency, merge by score / RRF, errors kept per instance."""

from __future__ import annotations

import asyncio
import json
import threading

import httpx
import pytest

from aisearch import (
    AsyncAISearchClient,
    FanOutResult,
    InvalidRequestError,
    NotFoundError,
    SearchResult,
    SearchTarget,
)
from aisearch._fanout import merge_results
from tests.unit_tests.core.payloads import ACCOUNT, TOKEN, envelope, error_body

SCORES = {
    "alpha": [0.9, 0.5],
    "beta": [0.95, 0.2],
    "gamma": [0.6],
}


def chunk(instance, rank, score):
    return {
        "id": f"{instance}-{rank}",
        "score": score,
        "text": f"{instance} {rank}",
        "item": {"key": f"{instance}.md"},
    }


def handler(request):
    parts = request.url.path.split("/")
    instance = parts[parts.index("instances") + 1]
    if instance not in SCORES:
        return httpx.Response(404, json=error_body(7002, f"{instance} not found"))
    chunks = [chunk(instance, r, s) for r, s in enumerate(SCORES[instance], start=1)]
    return httpx.Response(200, json=envelope({"search_query": "q", "chunks": chunks}))


def test_merge_by_score_keeps_errors(harness):
    h = harness(handler)
    result = h.call(
        "fan_out_search",
        ["alpha", "beta", "gamma", "missing"],
        "q",
        options={"retrieval": {"max_num_results": 2}},
    )
    assert isinstance(result, FanOutResult)
    assert [c.id for c in result.chunks] == ["beta-1", "alpha-1", "gamma-1", "alpha-2", "beta-2"]
    assert [c.instance_id for c in result.chunks] == ["beta", "alpha", "gamma", "alpha", "beta"]
    (err,) = result.errors
    assert err.instance_id == "missing"
    assert isinstance(err.error, NotFoundError)
    assert "missing not found" in err.message
    assert len(h.requests) == 4
    for request in h.requests:
        assert json.loads(request.content) == {
            "query": "q",
            "ai_search_options": {"retrieval": {"max_num_results": 2}},
        }


def test_extra_options_reach_every_target(harness):
    h = harness(handler)
    h.call(
        "fan_out_search",
        ["alpha", "beta"],
        "q",
        options={"retrieval": {"max_num_results": 2}},
        extra_options={"retrieval": {"future_knob": 7}, "new_stage": {"on": True}},
    )
    assert len(h.requests) == 2
    for request in h.requests:
        assert json.loads(request.content)["ai_search_options"] == {
            "retrieval": {"max_num_results": 2, "future_knob": 7},
            "new_stage": {"on": True},
        }


def test_merge_by_rrf_and_top_k(harness):
    h = harness(handler)
    result = h.call("fan_out_search", ["alpha", "beta", "gamma"], "q", merge="rrf", top_k=4)
    # rank 1 of every target first (target order breaks ties), then rank 2
    assert [c.id for c in result.chunks] == ["alpha-1", "beta-1", "gamma-1", "alpha-2"]
    assert result.chunks[0].rrf_score == pytest.approx(1 / 61)
    assert result.chunks[3].rrf_score == pytest.approx(1 / 62)
    assert result.chunks[1].score == 0.95  # service score untouched


def test_targets_with_namespaces_and_invalid_ids(harness):
    h = harness(handler)
    result = h.call(
        "fan_out_search", [SearchTarget("alpha", namespace="team-a"), "gamma", "Bad Id"], "q"
    )
    paths = sorted(r.url.path for r in h.requests)
    assert any("/namespaces/team-a/instances/alpha/search" in p for p in paths)
    assert any("/namespaces/default/instances/gamma/search" in p for p in paths)
    assert [e.instance_id for e in result.errors] == ["Bad Id"]
    assert isinstance(result.errors[0].error, InvalidRequestError)
    assert result.errors[0].namespace is None


def test_target_with_its_own_client(mode):
    other_requests = []

    def other(request):
        other_requests.append(request)
        return httpx.Response(200, json=envelope({"chunks": [chunk("remote", 1, 0.99)]}))

    from tests.unit_tests.core.conftest import Harness

    main = Harness(mode, handler)
    remote = Harness(mode, other, account_id="other-acc")
    result = main.call(
        "fan_out_search", ["alpha", SearchTarget("remote", client=remote.client)], "q"
    )
    assert result.chunks[0].id == "remote-1" and result.chunks[0].instance_id == "remote"
    assert "/accounts/other-acc/" in str(other_requests[0].url)
    assert len(main.requests) == 1


def test_single_target(harness):
    h = harness(handler)
    assert [c.id for c in h.call("fan_out_search", ["gamma"], "q").chunks] == ["gamma-1"]


def test_sync_fan_out_runs_concurrently():
    from aisearch import AISearchClient

    barrier = threading.Barrier(3, timeout=5)

    def blocking(request):
        barrier.wait()  # deadlocks (BrokenBarrierError) unless 3 searches are in flight at once
        return handler(request)

    client = AISearchClient(
        account_id=ACCOUNT,
        api_token=TOKEN,
        http_client=httpx.Client(transport=httpx.MockTransport(blocking)),
    )
    result = client.fan_out_search(["alpha", "beta", "gamma"], "q", max_concurrency=3)
    assert len(result.chunks) == 5 and result.errors == []


def test_async_fan_out_respects_max_concurrency():
    in_flight = {"now": 0, "max": 0}

    async def slow(request):
        in_flight["now"] += 1
        in_flight["max"] = max(in_flight["max"], in_flight["now"])
        await asyncio.sleep(0.01)
        in_flight["now"] -= 1
        return handler(request)

    async def run():
        async with AsyncAISearchClient(
            account_id=ACCOUNT,
            api_token=TOKEN,
            http_client=httpx.AsyncClient(transport=httpx.MockTransport(slow)),
        ) as client:
            return await client.fan_out_search(
                ["alpha", "beta", "gamma", "alpha", "beta"], "q", max_concurrency=2
            )

    result = asyncio.run(run())
    assert in_flight["max"] == 2
    assert len(result.chunks) == 9


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (([], "q"), {}, "targets: must be a non-empty list"),
        (("alpha", "q"), {}, "targets: must be a non-empty list"),
        (([3], "q"), {}, "targets[0]: must be an instance id or a SearchTarget (got int)"),
        ((["alpha"], ""), {}, "query: must be a non-empty string"),
        ((["alpha"], "q"), {"merge": "max"}, "merge: must be one of 'score', 'rrf' (got 'max')"),
        ((["alpha"], "q"), {"top_k": 0}, "top_k: must be a positive integer or None (got 0)"),
        (
            (["alpha"], "q"),
            {"max_concurrency": 0},
            "max_concurrency: must be an integer between 1 and 64 (got 0)",
        ),
        (
            (["alpha"], "q"),
            {"options": {"retrieval": {"max_num_results": 99}}},
            "ai_search_options.retrieval.max_num_results",
        ),
    ],
)
def test_bad_fan_out_arguments(harness, args, kwargs, message):
    h = harness(handler)
    with pytest.raises(InvalidRequestError) as info:
        h.call("fan_out_search", *args, **kwargs)
    assert message in str(info.value)
    assert h.requests == []


def test_merge_results_pure():
    r1 = SearchResult.model_validate(
        {"chunks": [chunk("x", 1, 0.3), {**chunk("x", 2, 0.1), "instance_id": "keep"}]}
    )
    merged = merge_results([(SearchTarget("x"), r1)], merge="score")
    assert [c.instance_id for c in merged.chunks] == ["x", "keep"]
    assert merge_results([], merge="rrf").chunks == []
