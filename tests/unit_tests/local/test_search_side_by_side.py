"""Hybrid's keyword half runs on another thread only when no other search runs; the answer
is the same either way."""

from __future__ import annotations

from typing import Any

import pytest

from aisearch_local import search
from aisearch_local.options import resolve_options
from aisearch_local.service import LocalService


@pytest.fixture
def svc(tmp_path):
    service = LocalService(tmp_path, embedder="hashing", generator="extractive")
    yield service
    service.close()


def _fill(svc: LocalService) -> Any:
    inst = svc.create_instance("default", {"id": "sbs"})
    for n in range(60):
        words = ["espresso", "grinder", "burr", "kettle", "crema", "bloom", "roast", "tamp"]
        text = " ".join(words[(n + k) % len(words)] for k in range(n % 6 + 2)) + f" doc {n}"
        svc.index_document(inst, key=f"g{n % 3}/d{n}.md", data=text.encode(), metadata={"n": n})
    return inst


CASES = [
    {"keyword_match_mode": "or"},
    {"keyword_match_mode": "and"},
    {"keyword_match_mode": "and", "fusion_method": "max"},
    {"keyword_match_mode": "or", "filters": {"folder": "g1/"}},
    {"keyword_match_mode": "and", "filters": {"n": {"$gte": 20}}},
]
QUERIES = ["espresso crema", "burr grinder bloom", "kettle", "roast tamp espresso doc"]


def _opts(extra: dict[str, Any]) -> Any:
    base = {"retrieval_type": "hybrid", "match_threshold": 0, "max_num_results": 50}
    return resolve_options({"retrieval": {**base, **extra}}, {})


def test_the_same_answer_with_and_without_the_keyword_thread(svc, monkeypatch):
    inst = _fill(svc)
    submitted: list[str] = []
    real_submit = search._POOL.submit

    def spy(fn: Any, *args: Any) -> Any:
        submitted.append(args[3])  # the match mode
        return real_submit(fn, *args)

    monkeypatch.setattr(search._POOL, "submit", spy)
    for extra in CASES:
        for q in QUERIES:
            opts = _opts(extra)
            submitted.clear()
            alone = svc.searcher.search(inst, q, opts)
            mode = extra["keyword_match_mode"]
            assert submitted == ([mode] if mode == "or" else [mode, "or"])
            submitted.clear()
            with search._SEARCHES.running():  # another search is running
                busy = svc.searcher.search(inst, q, opts)
            assert submitted == []
            assert busy == alone
    assert search._SEARCHES.count == 0


def test_a_failing_search_leaves_the_count(svc, monkeypatch):
    inst = _fill(svc)

    def boom(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("disk gone")

    monkeypatch.setattr(svc.store, "index", boom)
    with pytest.raises(RuntimeError):
        svc.searcher.search(inst, "espresso", _opts({}))
    assert search._SEARCHES.count == 0


def test_the_keyword_half_stays_on_the_thread_when_tantivy_answers(tmp_path, monkeypatch):
    # tantivy's query is short and the Python around it holds the GIL: the hop never pays
    service = LocalService(tmp_path, embedder="hashing", keyword_engine="tantivy")
    try:
        inst = _fill(service)
        submitted: list[Any] = []
        real_submit = search._POOL.submit

        def spy(fn: Any, *args: Any) -> Any:
            submitted.append(args[3])
            return real_submit(fn, *args)

        monkeypatch.setattr(search._POOL, "submit", spy)
        for extra in CASES:
            for q in QUERIES:
                alone = service.searcher.search(inst, q, _opts(extra))
                with search._SEARCHES.running():
                    busy = service.searcher.search(inst, q, _opts(extra))
                assert busy == alone
        assert inst.pk in service.store.keywords._live  # tantivy answered
        assert submitted == []
    finally:
        service.close()
