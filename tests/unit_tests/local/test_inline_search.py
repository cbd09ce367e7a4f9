"""A cheap search runs on the event loop, with the same answer; what would wait goes to a thread.

``QueryService`` runs a search on the event loop when the searcher finds it cheap (a moving
estimate of its kind's recent searches under ``search.INLINE_MAX_MS``) and nothing on its way
waits (``aisearch_local.nowait``); otherwise on the search thread, as before. Over real HTTP:
tests/integration_tests/server/test_inline_search.py.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from aisearch_local import nowait, query, search
from aisearch_local.options import resolve_options
from aisearch_local.query import QueryService
from aisearch_local.service import LocalService

DOCS = {
    f"d{n}.md": f"Espresso grinder number {n}: burr {n % 3}, kettle {n % 5}, crema and tamping."
    for n in range(30)
}


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[LocalService]:
    service = LocalService(tmp_path, embedder="hashing", generator="extractive")
    inst = service.create_instance("default", {"id": "inline"})
    for n, (key, text) in enumerate(DOCS.items()):
        service.index_document(
            inst, key=key, data=text.encode(), metadata={"rating": n % 4, "group": f"g{n % 3}"}
        )
    yield service
    service.close()


class _Hops:
    """Counts the calls handed to a search thread (query.Threads.run)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = query.Threads.run

        async def run(pool: query.Threads, fn: Any, *args: Any) -> Any:
            self.calls += 1
            return await real(pool, fn, *args)

        monkeypatch.setattr(query.Threads, "run", run)


def _body(query_text: str, **retrieval: Any) -> bytes:
    options: dict[str, Any] = {"retrieval": {"match_threshold": 0, **retrieval}}
    return json.dumps({"query": query_text, "ai_search_options": options}).encode()


BODIES = [
    _body(q, retrieval_type=kind, keyword_match_mode=mode, **extra)
    for q in ("espresso burr", "kettle crema tamping", "grinder 7")
    for kind in ("hybrid", "keyword", "vector")
    for mode in ("and", "or")
    for extra in (
        {},
        {"filters": {"group": "g1"}},
        {"boost_by": [{"field": "rating", "direction": "desc"}]},
    )
] + [
    json.dumps(
        {"query": "espresso kettle", "ai_search_options": {"retrieval": {"context_expansion": 1}}}
    ).encode(),
    json.dumps(
        {"query": "espresso", "ai_search_options": {"retrieval": {"fusion_method": "max"}}}
    ).encode(),
]


async def _answers(qs: QueryService, bodies: list[bytes]) -> list[str]:
    out = []
    for body in bodies:
        _, _, _, found = await qs.search_request("default", "inline", body)
        assert found is not None
        out.append(json.dumps(found.chunks, sort_keys=True))
    return out


async def _steady(svc: LocalService) -> None:
    while svc.store.indexing():  # the column copy is built in the background
        await asyncio.sleep(0.01)


async def _hops_of(qs: QueryService, hops: _Hops, body: bytes, n: int) -> list[int]:
    """The thread hops of each of ``n`` searches of ``body`` (background builds done after each)."""
    out = []
    for _ in range(n):
        before = hops.calls
        await qs.search_request("default", "inline", body)
        out.append(hops.calls - before)
        await _steady(qs._svc)
    return out


def test_a_cheap_search_runs_on_the_event_loop_with_the_same_answer(svc, monkeypatch):
    qs = QueryService(svc)
    hops = _Hops(monkeypatch)

    async def run() -> tuple[list[str], list[str], int]:
        monkeypatch.setattr(search, "INLINE_MAX_MS", 0.0)  # every search on the thread
        await _answers(qs, BODIES)  # loads the indexes, notes the costs
        await _steady(svc)
        on_thread = await _answers(qs, BODIES)
        monkeypatch.setattr(search, "INLINE_MAX_MS", 1000.0)  # any known search is cheap
        before = hops.calls
        inline = await _answers(qs, BODIES)
        return on_thread, inline, hops.calls - before

    on_thread, inline, hops_inline = asyncio.run(run())
    assert hops_inline == 0  # not one search went to a thread
    assert inline == on_thread
    assert sum(1 for a in inline if a != "[]") > len(BODIES) // 2


def test_only_a_search_known_to_be_cheap_runs_inline(svc, monkeypatch):
    qs = QueryService(svc)
    hops = _Hops(monkeypatch)
    body = _body("espresso burr")

    def hops_of(n: int) -> Coroutine[Any, Any, list[int]]:
        return _hops_of(qs, hops, body, n)

    # the first search of a kind is not known: on the thread (it also loads the indexes)
    assert asyncio.run(hops_of(1)) == [1]
    costs = svc.searcher._costs
    (kind,) = costs
    assert kind[1:3] == ("hybrid", False)
    costs[kind] = 0.001
    assert asyncio.run(hops_of(3)) == [0, 0, 0]
    # measured slow (a big instance): on the thread, until it is measured cheap again
    costs[kind] = search.INLINE_MAX_MS / 1000 * 2
    assert asyncio.run(hops_of(1)) == [1]
    assert costs[kind] < search.INLINE_MAX_MS / 1000 * 2  # measured on the thread, lower


def test_the_cost_estimate_rises_by_a_quarter_and_falls_by_half(svc):
    searcher = svc.searcher
    kind = (1, "hybrid", False)
    searcher._note(kind, 0.008)
    assert searcher._costs[kind] == 0.008
    searcher._note(kind, 0.002)
    assert searcher._costs[kind] == pytest.approx(0.005)
    searcher._note(kind, 0.013)
    assert searcher._costs[kind] == pytest.approx(0.007)


def test_a_reranked_or_large_search_never_runs_inline(svc, monkeypatch):
    qs = QueryService(svc)
    hops = _Hops(monkeypatch)
    monkeypatch.setattr(search, "INLINE_MAX_MS", 1000.0)
    reranked = json.dumps(
        {"query": "espresso", "ai_search_options": {"reranking": {"enabled": True}}}
    ).encode()
    large = _body("espresso " + "crema " * (query.INLINE_MAX_SIZE // 5))  # not heavy
    assert query.INLINE_MAX_SIZE < len(large) < query.HEAVY_SIZE

    async def run() -> list[int]:
        out = []
        for body in (reranked, large):
            for _ in range(3):
                before = hops.calls
                await qs.search_request("default", "inline", body)
                out.append(hops.calls - before)
        return out

    assert asyncio.run(run()) == [1] * 6


def test_a_search_that_would_wait_for_a_lock_goes_to_the_thread(svc, monkeypatch):
    # a write applying its change holds the store's vector lock: the search on the event
    # loop does not wait for it; the search thread does, and sees the write
    qs = QueryService(svc)
    hops = _Hops(monkeypatch)
    monkeypatch.setattr(search, "INLINE_MAX_MS", 1000.0)
    body = _body("zeppelin quokka", retrieval_type="keyword")
    inst = svc.require_instance("default", "inline")

    async def run() -> tuple[int, list[str]]:
        await qs.search_request("default", "inline", body)
        await _steady(svc)
        await qs.search_request("default", "inline", body)  # cheap now
        held, release = threading.Event(), threading.Event()
        released: list[bool] = []

        def writer() -> None:
            with svc.store._vlock:
                held.set()
                # set by the event loop below: a loop waiting for this lock never sets it
                released.append(release.wait(10))
                svc.index_document(inst, key="new.md", data=b"Zeppelin quokka.", metadata={})

        t = threading.Thread(target=writer)
        t.start()
        assert held.wait(30)
        before = hops.calls
        search_task = asyncio.ensure_future(qs.search_request("default", "inline", body))
        await asyncio.sleep(0)  # the search started: on the thread, waiting for the lock
        assert not search_task.done()
        release.set()
        _, _, _, found = await search_task
        t.join(30)
        assert found is not None
        assert released == [True]
        return hops.calls - before, [c["item"]["key"] for c in found.chunks]

    hopped, keys = asyncio.run(run())
    assert hopped == 1
    assert keys == ["new.md"]  # the write, applied once the search thread had the lock


def test_a_search_after_another_process_wrote_reloads_on_the_thread(tmp_path, monkeypatch):
    # two services on one folder stand for two `serve --workers` workers: after the other's
    # write, this one's indexes are behind SQLite and reload; not on the event loop
    a = LocalService(tmp_path, embedder="hashing", keyword_engine="tantivy")
    b = LocalService(tmp_path, embedder="hashing", keyword_engine="tantivy")
    try:
        inst = a.create_instance("default", {"id": "two"})
        a.index_document(inst, key="base.md", data=b"Kettles boil water.", metadata={})
        qs = QueryService(a)
        hops = _Hops(monkeypatch)
        monkeypatch.setattr(search, "INLINE_MAX_MS", 1000.0)

        async def one(text: str, kind: str) -> tuple[int, list[str]]:
            before = hops.calls
            _, _, _, found = await qs.search_request("default", "two", _body(text, **kind))
            assert found is not None
            return hops.calls - before, [c["item"]["key"] for c in found.chunks]

        async def run(kind: dict[str, str]) -> list[tuple[int, list[str]]]:
            out = [await one("kettles boil", kind)]
            await _steady(a)
            out.append(await one("kettles boil", kind))
            b.index_document(
                b.require_instance("default", "two"),
                key=f"theirs-{kind['retrieval_type']}.md",
                data=f"Quokkas smile at zeppelins {kind['retrieval_type']}.".encode(),
                metadata={},
            )
            out.append(await one(f"quokkas zeppelins {kind['retrieval_type']}", kind))
            await _steady(a)
            out.append(await one(f"quokkas zeppelins {kind['retrieval_type']}", kind))
            return out

        for kind in ("keyword", "vector"):
            got = asyncio.run(run({"retrieval_type": kind}))
            hopped = [h for h, _ in got]
            # the second search inline; the one after b's write reloads on the thread
            assert hopped[1:3] == [0, 1], (kind, hopped)
            assert got[2][1][:1] == [f"theirs-{kind}.md"], (kind, got)
            assert got[3] == (0, got[2][1]), (kind, got)
    finally:
        a.close()
        b.close()


def test_errors_of_an_inline_search_are_those_of_the_thread(svc, monkeypatch):
    qs = QueryService(svc)
    hops = _Hops(monkeypatch)
    monkeypatch.setattr(search, "INLINE_MAX_MS", 1000.0)
    body = _body("espresso", return_on_failure=False)
    lenient = _body("espresso")

    async def run() -> None:
        await qs.search_request("default", "inline", body)
        await _steady(svc)

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("the pipeline broke")

        monkeypatch.setattr(svc.searcher, "_search", broken)
        before = hops.calls
        with pytest.raises(RuntimeError, match="the pipeline broke"):
            await qs.search_request("default", "inline", body)
        # return_on_failure (the default): no chunks, as on the thread
        _, _, _, found = await qs.search_request("default", "inline", lenient)
        assert found is not None and found.chunks == []
        assert hops.calls == before  # both ran on the event loop

    asyncio.run(run())


def test_hold_never_waits_in_a_no_waiting_span():
    lock = threading.Lock()
    with nowait.hold(lock):  # outside a span: a plain lock
        assert lock.locked()
    assert not lock.locked()
    taken, release = threading.Event(), threading.Event()

    def holder() -> None:
        with lock:
            taken.set()
            release.wait(30)

    t = threading.Thread(target=holder)
    t.start()
    assert taken.wait(30)
    try:
        with nowait.no_waiting():
            assert nowait.active()
            with pytest.raises(nowait.WouldWait), nowait.hold(lock):
                pass
            with pytest.raises(nowait.WouldWait, match="an index"):
                nowait.refuse("an index")
        assert not nowait.active()
        nowait.refuse("nothing: outside a span")
    finally:
        release.set()
        t.join(30)
    with nowait.no_waiting(), nowait.hold(lock):  # free: taken at once
        assert lock.locked()
    assert not lock.locked()


def test_a_long_query_never_runs_inline_even_after_cheap_ones(svc, monkeypatch):
    # review: cheap searches of a kind made a 600-term query of the same kind run on the loop
    # (145 ms on 3,000 chunks); the query's size now bounds it and has its own estimate
    qs = QueryService(svc)
    hops = _Hops(monkeypatch)
    monkeypatch.setattr(search, "INLINE_MAX_MS", 1000.0)  # any known kind is cheap
    short = _body("espresso burr", retrieval_type="keyword")
    many_words = _body(
        " ".join(["espresso"] * (search.INLINE_MAX_WORDS + 1)), retrieval_type="keyword"
    )
    long_word = _body("e" * (search.INLINE_MAX_CHARS + 1), retrieval_type="keyword")

    assert asyncio.run(_hops_of(qs, hops, short, 3))[1:] == [0, 0]  # known and cheap: on the loop
    assert asyncio.run(_hops_of(qs, hops, many_words, 3)) == [1, 1, 1]
    assert asyncio.run(_hops_of(qs, hops, long_word, 3)) == [1, 1, 1]
    # a query of another size is another kind: not known from the short ones
    inst = svc.require_instance("default", "inline")
    opts = resolve_options({"retrieval": {"retrieval_type": "keyword"}}, inst.config)
    ten = " ".join(["espresso"] * 10)
    assert svc.searcher._kind(inst, opts, ten) != svc.searcher._kind(inst, opts, "espresso burr")
    assert not svc.searcher.cheap(inst, opts, ten)


def test_a_small_request_on_an_in_memory_store_never_waits_for_a_writer(monkeypatch):
    # review: the instance lookup on the event loop waited for the in-memory store's lock
    # held by a writer's transaction (992 ms for a 1 s transaction); it now goes to a thread
    service = LocalService(None, embedder="hashing", generator="extractive")
    try:
        inst = service.create_instance("default", {"id": "m"})
        service.index_document(inst, key="a.md", data=b"espresso crema", metadata={})
        qs = QueryService(service)
        hops = _Hops(monkeypatch)
        body = _body("espresso")
        held, release = threading.Event(), threading.Event()
        released: list[bool] = []

        def writer() -> None:
            with service.store.transaction():
                held.set()
                # set by the event loop below: a loop waiting for the store never sets it
                released.append(release.wait(10))

        async def run() -> list[dict[str, Any]]:
            await qs.search_request("default", "m", body)
            service.index_document(inst, key="b.md", data=b"kettle", metadata={})  # a commit
            t = threading.Thread(target=writer)
            t.start()
            assert held.wait(30)
            before = hops.calls
            task = asyncio.create_task(qs.search_request("default", "m", body))
            await asyncio.sleep(0.05)
            release.set()
            _, _, _, found = await task
            t.join()
            assert hops.calls > before  # computed on a thread
            assert found is not None
            return found.chunks

        chunks = asyncio.run(run())
        assert released == [True]
        assert chunks[0]["item"]["key"] == "a.md"
    finally:
        service.close()


def test_a_chat_search_reads_its_messages_on_a_thread(svc, monkeypatch):
    # review: a query rewrite over a long chat history ran on the event loop (is_heavy counts
    # the query and the options, not the messages): 572 ms for 2 MB
    from aisearch_local.models import SearchRequest

    qs = QueryService(svc)
    hops = _Hops(monkeypatch)
    monkeypatch.setattr(search, "INLINE_MAX_MS", 1000.0)
    inst = svc.require_instance("default", "inline")
    plain = SearchRequest.parse({"query": "espresso burr"})
    chat = SearchRequest.parse(
        {
            "messages": [
                {"role": "user", "content": "tamping " * 50},
                {"role": "user", "content": "espresso burr"},
            ]
        }
    )
    assert chat.messages is not None

    async def run() -> list[int]:
        out = []
        for req in (plain, plain, plain, chat, chat):
            before = hops.calls
            await qs.search_instance(inst, req)
            out.append(hops.calls - before)
            await _steady(svc)
        return out

    assert asyncio.run(run())[1:] == [0, 0, 1, 1]


def test_a_counted_shared_fault_is_not_used_by_a_search_that_must_not_wait(tmp_path):
    from aisearch_local.service import Fault, _counted
    from aisearch_local.shared import SharedState

    state = SharedState.create(tmp_path)
    try:
        state.set_fault("default", "k", Fault(status=503, times=2).as_dict())
        with nowait.no_waiting(), pytest.raises(nowait.WouldWait):
            state.take_fault("default", "k", _counted)  # a write transaction: may wait
        fault = state.fault_of("default", "k")
        assert fault is not None and fault["times"] == 2  # not used: the thread uses it
        taken = state.take_fault("default", "k", _counted)
        assert taken is not None and taken["times"] == 1
    finally:
        state.close()
