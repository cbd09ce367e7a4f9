"""The pipeline reads chunk and item rows for the returned chunks only, with the same result."""

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


def test_rows_read_for_returned_chunks_only(svc, monkeypatch):
    inst = _fill(svc)
    asked: list[list[int]] = []
    real = svc.store.result_rows

    def spy(cids):
        asked.append(list(cids))
        return real(cids)

    monkeypatch.setattr(svc.store, "result_rows", spy)
    found = svc.searcher.search(inst, "espresso crema bloom", _opts(max_num_results=3))
    assert len(found) == 3
    assert len(asked) == 1  # one query for the chunks and their items
    assert len(asked[0]) == 3  # not one per candidate (40 here)


def _without(svc, monkeypatch, gone_items=(), gone_chunks=()):
    real = svc.store.result_rows

    def without(cids):
        chunks, items = real(cids)
        items = {pk: it for pk, it in items.items() if it["key"] not in gone_items}
        chunks = {
            cid: c for cid, c in chunks.items() if c.item_pk in items and c.id not in gone_chunks
        }
        return chunks, items

    monkeypatch.setattr(svc.store, "result_rows", without)


def test_item_deleted_meanwhile_is_skipped_in_order(svc, monkeypatch):
    inst = _fill(svc)
    opts = _opts(max_num_results=5)
    full = svc.searcher.search(inst, "espresso crema bloom", _opts(max_num_results=40))
    gone = {full[1]["item"]["key"], full[3]["item"]["key"]}
    _without(svc, monkeypatch, gone_items=gone)
    found = svc.searcher.search(inst, "espresso crema bloom", opts)
    expected = [c for c in full if c["item"]["key"] not in gone][:5]
    assert [c["id"] for c in found] == [c["id"] for c in expected]
    assert found == expected


def test_chunk_deleted_meanwhile_is_replaced_by_the_next(svc, monkeypatch):
    # the chunk row is gone (its item re-indexed since the index was read): the answer still
    # holds max_num_results chunks, the next ones in order
    inst = _fill(svc)
    full = svc.searcher.search(inst, "espresso crema bloom", _opts(max_num_results=40))
    gone = {full[0]["id"], full[2]["id"]}
    _without(svc, monkeypatch, gone_chunks=gone)
    found = svc.searcher.search(inst, "espresso crema bloom", _opts(max_num_results=5))
    expected = [c for c in full if c["id"] not in gone][:5]
    assert found == expected


@pytest.mark.parametrize("retrieval", [{}, {"retrieval_type": "keyword"}, {"fusion_method": "max"}])
def test_rows_read_together_answer_as_before(svc, retrieval):
    # the rows read in one query give the answer the boost path builds from its two queries
    inst = _fill(svc)
    for query in ("espresso crema bloom", "grinder 7", "burr number 12 bloom"):
        opts = _opts(max_num_results=8, **retrieval)
        plain = svc.searcher.search(inst, query, opts)
        assert plain
        zero_boost = _opts(
            max_num_results=8, boost_by=[{"field": "absent", "direction": "exists"}], **retrieval
        )
        boosted = svc.searcher.search(inst, query, zero_boost)
        for a, b in zip(plain, boosted, strict=True):
            assert a["id"] == b["id"]
            assert a["item"] == b["item"]
            assert a["text"] == b["text"]
