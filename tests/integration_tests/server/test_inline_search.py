"""Searches on the event loop, over real HTTP: the same bytes as on the search thread, and
nothing that takes long or waits (a slow search, a write applying its change) holds up the
other requests of the server (docs/request-path.md, "Searches on the event loop")."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from aisearch_local import search
from aisearch_local.search import Searcher
from aisearch_local.vectors import VectorTable
from tests.integration_tests.server._helpers import upload

pytestmark = pytest.mark.integration

WORDS = ("espresso", "grinder", "burr", "kettle", "crema", "tamping", "portafilter", "bloom")


def _make(http: httpx.Client, name: str, n: int = 12) -> str:
    r = http.get(f"/ai-search/instances/{name}")
    if r.status_code == 404:
        assert http.post("/ai-search/instances", json={"id": name}).status_code == 201
        for i in range(n):
            text = " ".join(WORDS[(i + j) % len(WORDS)] for j in range(4 + i % 3))
            upload(http, name, f"d{i}.md", f"Note {i}: {text}.", {"rating": i % 4})
    return name


def _search(http: httpx.Client, name: str, query: str, **retrieval: Any) -> httpx.Response:
    body = {"query": query, "ai_search_options": {"retrieval": {"match_threshold": 0, **retrieval}}}
    return http.post(f"/ai-search/instances/{name}/search", json=body)


def _steady(local_server: Any) -> None:
    with httpx.Client(headers=local_server.headers, timeout=30) as http:
        while http.get(f"{local_server.base_url}/_local/health").json()["result"]["indexing"]:
            time.sleep(0.01)


def _loop_answers(local_server: Any, path: str = "/_local/health") -> bool:
    """Whether ``path`` answers within 10 s (the event loop is not held)."""
    try:
        r = httpx.get(f"{local_server.base_url}{path}", headers=local_server.headers, timeout=10)
    except httpx.TimeoutException:
        return False
    return r.status_code == 200


@pytest.fixture
def on_loop(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The threads each search of the test computed on (Searcher._search)."""
    threads: list[str] = []
    real = Searcher._search

    def spy(self: Searcher, *args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Searcher, "_search", spy)
    yield threads


CASES: list[dict[str, Any]] = [
    {"retrieval_type": kind, "keyword_match_mode": mode}
    for kind in ("hybrid", "keyword", "vector")
    for mode in ("and", "or")
] + [
    {"filters": {"rating": {"$gte": 2}}},
    {"boost_by": [{"field": "rating", "direction": "desc"}]},
    {"context_expansion": 1, "max_num_results": 3},
    {"fusion_method": "max"},
]


def test_the_same_bytes_on_the_event_loop_and_on_the_search_thread(
    server_http, local_server, monkeypatch, on_loop
):
    name = _make(server_http, "inline-same")
    queries = ("espresso burr", "kettle crema bloom", "portafilter")
    monkeypatch.setattr(search, "INLINE_MAX_MS", 0.0)  # every search on the thread
    for case in CASES:
        for q in queries:
            _search(server_http, name, q, **case)
    _steady(local_server)
    on_loop.clear()
    threaded = [_search(server_http, name, q, **case).content for case in CASES for q in queries]
    assert all(t.startswith("aisearch-local-search") for t in on_loop), set(on_loop)
    monkeypatch.setattr(search, "INLINE_MAX_MS", 1000.0)  # every known kind is cheap
    on_loop.clear()
    inline = [_search(server_http, name, q, **case).content for case in CASES for q in queries]
    assert set(on_loop) == {"aisearch-local"}  # the server's event loop thread
    assert inline == threaded
    assert sum(b'"chunks":[]' not in a for a in inline) > len(inline) // 2


def test_a_slow_search_stays_off_the_event_loop(server_http, local_server, monkeypatch, on_loop):
    # a search measured slow (here: 30 ms of CPU, as on a large instance) runs on the search
    # thread: the event loop answers the health check while it computes
    name = _make(server_http, "inline-slow")
    entered, release = threading.Event(), threading.Event()
    hold = threading.Event()
    real = Searcher._search

    def slow(self: Searcher, inst: Any, *args: Any, **kwargs: Any) -> Any:
        if inst.id == name:
            start = time.thread_time()
            while time.thread_time() - start < 0.03:  # CPU, as a big instance's search
                pass
            if hold.is_set():
                entered.set()
                while not release.is_set():  # computing until the health check answered
                    time.sleep(0.001)
        return real(self, inst, *args, **kwargs)

    monkeypatch.setattr(Searcher, "_search", slow)
    for _ in range(3):  # measured: 30 ms, above INLINE_MAX_MS
        assert _search(server_http, name, "espresso").status_code == 200
    hold.set()
    answers: list[httpx.Response] = []
    t = threading.Thread(target=lambda: answers.append(_search(server_http, name, "espresso")))
    t.start()
    try:
        assert entered.wait(30)
        assert _loop_answers(local_server)
    finally:
        release.set()
        t.join(60)
    assert answers[0].status_code == 200 and answers[0].json()["result"]["chunks"]


def test_a_search_during_a_write_does_not_hold_the_event_loop_and_sees_it(
    server_http, local_server, monkeypatch, on_loop
):
    name = _make(server_http, "inline-write")
    for _ in range(3):
        _search(server_http, name, "zeppelin quokka", retrieval_type="keyword")
        _steady(local_server)
    monkeypatch.setattr(search, "INLINE_MAX_MS", 1000.0)
    on_loop.clear()
    # a query of the warm-up's size (its kind: search.Searcher._kind)
    assert _search(server_http, name, "espresso crema", retrieval_type="keyword").status_code == 200
    assert on_loop == ["aisearch-local"]  # inline now
    # the upload commits, then applies its change to the vector table and its file while
    # holding the store's locks: here it stops there until the test lets it go
    persisting, release = threading.Event(), threading.Event()
    real = VectorTable.persist

    def persist(self: VectorTable, *args: Any, **kwargs: Any) -> Any:
        if not persisting.is_set():
            persisting.set()
            release.wait(30)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(VectorTable, "persist", persist)
    uploads: list[dict[str, Any]] = []
    writer = threading.Thread(
        target=lambda: uploads.append(
            upload(server_http, name, "new.md", "Zeppelin quokka.", {"rating": 9})
        )
    )
    writer.start()
    found: list[httpx.Response] = []
    searcher = threading.Thread(
        target=lambda: found.append(
            _search(server_http, name, "zeppelin quokka", retrieval_type="keyword")
        )
    )
    try:
        assert persisting.wait(30)
        on_loop.clear()
        searcher.start()
        while not on_loop and searcher.is_alive():  # the search started (on its thread)
            time.sleep(0.005)
        # the event loop does not wait for the write, nor does the health check
        assert _loop_answers(local_server, "/_local/openapi.json")
        assert _loop_answers(local_server)
    finally:
        release.set()
        writer.join(60)
        searcher.join(60)
    assert uploads and found
    keys = [c["item"]["key"] for c in found[0].json()["result"]["chunks"]]
    assert keys == ["new.md"]
    assert on_loop and on_loop[-1].startswith("aisearch-local-search")


def test_errors_of_a_search_on_the_event_loop(server_http, local_server, monkeypatch, on_loop):
    name = _make(server_http, "inline-errors")
    _search(server_http, name, "espresso")
    _steady(local_server)
    monkeypatch.setattr(search, "INLINE_MAX_MS", 1000.0)

    def broken(self: Searcher, *args: Any, **kwargs: Any) -> Any:
        on_loop.append(threading.current_thread().name)
        raise RuntimeError("the pipeline broke")

    monkeypatch.setattr(Searcher, "_search", broken)
    on_loop.clear()
    r = _search(server_http, name, "espresso", return_on_failure=False)
    # what the search thread answers too: the envelope of an internal error
    assert r.status_code == 500 and r.json()["success"] is False
    assert r.json()["errors"][0]["code"] == 7000
    r = _search(server_http, name, "espresso")  # return_on_failure: no chunks
    assert r.status_code == 200 and r.json()["result"]["chunks"] == []
    assert on_loop == ["aisearch-local", "aisearch-local"]
    # an image query the embedder cannot search: 400 / 7089, from the event loop too
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    body = {
        "messages": [{"role": "user", "content": [{"type": "text", "text": "espresso"}, image]}]
    }
    r = server_http.post(f"/ai-search/instances/{name}/search", json=body)
    assert (r.status_code, r.json()["errors"][0]["code"]) == (400, 7089), r.text
