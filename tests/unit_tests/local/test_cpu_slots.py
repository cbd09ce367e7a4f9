"""Searches compute one at a time (CPU_SLOTS); an upstream embedder's wait is outside the slot."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from aisearch_local import query, search
from aisearch_local.embed import EmbedderError, HashingEmbedder
from aisearch_local.models import SearchRequest
from aisearch_local.options import resolve_options
from aisearch_local.query import QueryService
from aisearch_local.service import LocalService


class _Watch:
    """Wraps Searcher._search: counts how many run at once (each lasts 20 ms)."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            time.sleep(0.02)  # long enough for the others to start, were they allowed to
            return self.real(*args, **kwargs)
        finally:
            with self.lock:
                self.now -= 1


def _fill(svc: LocalService) -> Any:
    inst = svc.create_instance("default", {"id": "slots"})
    for n in range(8):
        text = f"espresso grinder burr kettle number {n}"
        svc.index_document(inst, key=f"d{n}.md", data=text.encode(), metadata={})
    return inst


async def _many(qs: QueryService, inst: Any, n: int) -> list[Any]:
    req = SearchRequest.parse({"query": "espresso burr"}, strict=True)
    return await asyncio.gather(*(qs.search_instance(inst, req) for _ in range(n)))


@pytest.mark.parametrize("embedder", ["hashing", "upstream"])
def test_searches_compute_one_at_a_time(tmp_path, monkeypatch, embedder):
    # "upstream": an embedder of no known local kind, whose searches get the 40-thread pool
    # (a wait on the network); the CPU slot still lets one compute at a time
    emb = HashingEmbedder() if embedder == "hashing" else _Upstream(None)
    svc = LocalService(tmp_path, embedder=emb, generator="extractive")
    try:
        inst = _fill(svc)
        qs = QueryService(svc)
        assert qs._pool is (query._CPU_THREADS if embedder == "hashing" else query._WAIT_THREADS)
        watch = _Watch(svc.searcher._search)
        monkeypatch.setattr(svc.searcher, "_search", watch)
        results = asyncio.run(_many(qs, inst, 8))
        assert [len(r.chunks) for r in results] == [len(results[0].chunks)] * 8
        assert results[0].chunks
        assert watch.most == search.CPU_SLOTS == 1
    finally:
        svc.close()


class _Upstream:
    """An embedder of no local kind (as an OpenAI-compatible one): hashing vectors, and each
    call waits at ``barrier`` (two calls must be in flight together to pass it)."""

    def __init__(self, barrier: threading.Barrier | None) -> None:
        self._inner = HashingEmbedder()
        self.name, self.dim = self._inner.name, self._inner.dim
        self.barrier = barrier

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if self.barrier is not None and texts and texts[0].startswith("query"):
            self.barrier.wait(timeout=10)  # BrokenBarrierError if the other call never comes
        return self._inner.embed(texts)


def test_an_upstream_embedders_wait_is_outside_the_cpu_slot(tmp_path):
    barrier = threading.Barrier(2)
    svc = LocalService(tmp_path, embedder=_Upstream(barrier), generator="extractive")
    try:
        inst = _fill(svc)
        qs = QueryService(svc)

        async def two() -> list[Any]:
            reqs = [
                SearchRequest.parse({"query": f"query {w} espresso"}, strict=True)
                for w in ("one", "two")
            ]
            return await asyncio.gather(*(qs.search_instance(inst, r) for r in reqs))

        # with the embedding inside the slot the second search could not embed while the
        # first one waits, and the barrier would break after 10 s
        results = asyncio.run(two())
        assert all(r.chunks for r in results)
        assert not barrier.broken
    finally:
        svc.close()


class _Down:
    """An upstream embedder that is down for queries (documents still embed)."""

    def __init__(self) -> None:
        self._inner = HashingEmbedder()
        self.name, self.dim = self._inner.name, self._inner.dim
        self.queries = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if texts and texts[0].startswith("query"):
            self.queries += 1
            raise EmbedderError("embedding upstream http://127.0.0.1:9/v1/embeddings timed out")
        return self._inner.embed(texts)


def test_an_empty_instance_answers_without_an_upstream_round_trip(tmp_path):
    # an instance with no chunk has nothing to compare the query with: its search answers []
    # without embedding the query (a paid, possibly failing round trip to the upstream)
    emb = _Down()
    svc = LocalService(tmp_path, embedder=emb, generator="extractive")
    try:
        inst = svc.create_instance("default", {"id": "empty"})
        qs = QueryService(svc)
        options = {"retrieval": {"return_on_failure": False}}
        for kind in ("vector", "hybrid"):
            options["retrieval"]["retrieval_type"] = kind
            req = SearchRequest.parse(
                {"query": "query espresso", "ai_search_options": options}, strict=True
            )
            assert asyncio.run(qs.search_instance(inst, req)).chunks == []
        assert emb.queries == 0
    finally:
        svc.close()


def test_a_search_embeds_in_the_slot_when_the_instance_filled_meanwhile(tmp_path):
    # search() embeds no query for an empty instance; a write landing before the search
    # computes leaves _search without a vector: it embeds the query itself
    svc = LocalService(tmp_path, embedder=HashingEmbedder(), generator="extractive")
    try:
        inst = _fill(svc)
        for kind in ("vector", "hybrid"):
            opts = resolve_options({"retrieval": {"retrieval_type": kind}}, inst.config)
            got = svc.searcher._search(inst, "espresso burr", opts, None, side_by_side=False)
            assert got == svc.searcher.search(inst, "espresso burr", opts)
            assert got
    finally:
        svc.close()


def test_is_heavy_counts_the_query_and_the_options():
    def req(query: str, options: Any = None) -> SearchRequest:
        body: dict[str, Any] = {"query": query}
        if options is not None:
            body["ai_search_options"] = options
        return SearchRequest.parse(body, strict=False)

    assert not query.is_heavy(req("espresso " * 100))
    assert query.is_heavy(req("x" * (query.HEAVY_SIZE + 1)))
    values = [f"v{n}" for n in range(query.HEAVY_SIZE // 4)]
    filters = {"retrieval": {"filters": {"type": "in", "key": "k", "value": values}}}
    assert query.is_heavy(req("espresso", filters))
    small = {"retrieval": {"filters": {"type": "in", "key": "k", "value": values[:50]}}}
    assert not query.is_heavy(req("espresso", small))
    assert query.is_heavy(req("espresso", {"x": "y" * query.HEAVY_SIZE}))


@pytest.mark.parametrize("route", ["search_instance", "search_request"])
def test_a_heavy_search_does_not_hold_up_the_others(tmp_path, monkeypatch, route):
    # a huge query (5 s for 1 MB on 2,000 chunks) runs beside the other searches, not before
    svc = LocalService(tmp_path, embedder=HashingEmbedder(), generator="extractive")
    release, held = threading.Event(), threading.Event()
    try:
        insts = []
        for name in ("slow", "fast"):
            inst = svc.create_instance("default", {"id": name})
            svc.index_document(inst, key="a.md", data=b"espresso grinder burr", metadata={})
            insts.append(inst)
        real = svc.searcher._keyword

        def keyword(inst: Any, *args: Any, **kwargs: Any) -> Any:
            if inst.id == "slow":
                held.set()
                assert release.wait(30)
            return real(inst, *args, **kwargs)

        monkeypatch.setattr(svc.searcher, "_keyword", keyword)
        qs = QueryService(svc)
        huge = "espresso " + "burr " * (query.HEAVY_SIZE // 5)
        small = SearchRequest.parse({"query": "espresso"}, strict=True)

        async def both() -> Any:
            if route == "search_instance":
                big = SearchRequest.parse({"query": huge}, strict=True)
                slow = asyncio.ensure_future(qs.search_instance(insts[0], big))
            else:
                body = json.dumps({"query": huge}).encode()
                slow = asyncio.ensure_future(qs.search_request("default", "slow", body))
            while not held.is_set():
                await asyncio.sleep(0.01)
            try:  # held inside the heavy search: this one must still be answered
                fast = await asyncio.wait_for(qs.search_instance(insts[1], small), 20)
            finally:
                release.set()
            await slow
            return fast

        assert asyncio.run(both()).chunks
    finally:
        release.set()
        svc.close()
