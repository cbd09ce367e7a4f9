"""The pipeline reads item rows for the returned chunks only, with the same result."""

from __future__ import annotations

from typing import Any

import pytest

from aisearch_local.options import resolve_options
from aisearch_local.service import LocalService


@pytest.fixture
def svc(tmp_path):
    service = LocalService(tmp_path, embedder="hashing", generator="extractive")
    yield service
    service.close()


def _fill(svc: LocalService) -> Any:
    inst = svc.create_instance("default", {"id": "items"})
    for n in range(40):
        text = f"espresso grinder burr number {n} with crema {'bloom ' * (n % 5)}"
        svc.index_document(inst, key=f"d{n}.md", data=text.encode(), metadata={"n": n})
    return inst


def _opts(**retrieval: Any) -> Any:
    base = {"retrieval_type": "hybrid", "match_threshold": 0, "keyword_match_mode": "or"}
    return resolve_options({"retrieval": {**base, **retrieval}}, {})


def test_items_read_for_returned_chunks_only(svc, monkeypatch):
    inst = _fill(svc)
    asked: list[set[int]] = []
    real = svc.store.items_by_pk

    def spy(pks):
        asked.append(set(pks))
        return real(pks)

    monkeypatch.setattr(svc.store, "items_by_pk", spy)
    found = svc.searcher.search(inst, "espresso crema bloom", _opts(max_num_results=3))
    assert len(found) == 3
    assert sum(len(a) for a in asked) == 3  # not one per candidate (40 here)


def test_item_deleted_meanwhile_is_skipped_in_order(svc, monkeypatch):
    inst = _fill(svc)
    opts = _opts(max_num_results=5)
    full = svc.searcher.search(inst, "espresso crema bloom", _opts(max_num_results=40))
    gone = {full[1]["item"]["key"], full[3]["item"]["key"]}
    real = svc.store.items_by_pk

    def without(pks):
        return {pk: it for pk, it in real(pks).items() if it["key"] not in gone}

    monkeypatch.setattr(svc.store, "items_by_pk", without)
    found = svc.searcher.search(inst, "espresso crema bloom", opts)
    expected = [c for c in full if c["item"]["key"] not in gone][:5]
    assert [c["id"] for c in found] == [c["id"] for c in expected]
    assert found == expected
