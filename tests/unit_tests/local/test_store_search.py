"""Store and retrieval pipeline of aisearch_local, in process (no sockets)."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from aisearch_local.cache import ChatCache
from aisearch_local.errors import APIError, ValidationError
from aisearch_local.options import (
    Query,
    query_from_messages,
    resolve_options,
    validate_messages,
)
from aisearch_local.search import fts_expression, keyword_terms
from aisearch_local.service import LocalService
from aisearch_local.store import NewChunk


@pytest.fixture
def svc(tmp_path):
    service = LocalService(tmp_path, embedder="hashing", generator="extractive")
    yield service
    service.close()


def test_index_document_is_atomic_and_upserts(svc):
    inst = svc.create_instance("default", {"id": "a"})
    item = svc.index_document(
        inst, key="x.md", data=b"Espresso crema forms under pressure.", metadata={}
    )
    assert item["status"] == "completed" and item["chunks_count"] == 1
    again = svc.index_document(inst, key="x.md", data=b"Now about kettles.", metadata={"k": 1})
    assert again["id"] == item["id"]
    assert [c.text for c in svc.store.item_chunks(inst, again["_pk"], 10, 0)] == [
        "Now about kettles."
    ]
    assert svc.store.keyword(inst, '"espresso"', 10) == []
    bad = svc.index_document(inst, key="x.md", data=b"\xff\xfe\xfa", metadata={})
    assert bad["status"] == "error" and bad["chunks_count"] == 0
    assert (
        svc.store.item_chunks(inst, bad["_pk"], 10, 0) == []
    )  # old chunks gone, none half-written


def test_failed_transaction_leaves_nothing(svc, monkeypatch):
    inst = svc.create_instance("default", {"id": "tx"})

    def boom(*_args, **_kwargs):
        raise sqlite3.OperationalError("disk full")

    monkeypatch.setattr(svc.store, "_insert_chunks", boom)
    with pytest.raises(sqlite3.OperationalError):
        svc.index_document(inst, key="y.md", data=b"Some text.", metadata={})
    assert svc.store.list_items(inst) == []


def test_index_cache_invalidated_on_write(svc):
    inst = svc.create_instance("default", {"id": "c"})
    svc.index_document(inst, key="1.md", data=b"one espresso", metadata={})
    first = svc.store.index(inst)
    assert svc.store.index(inst) is first  # cached
    svc.index_document(inst, key="2.md", data=b"two espresso", metadata={})
    second = svc.store.index(inst)
    assert second is not first and len(second.cids) == 2
    assert second.matrix.dtype == np.float32 and second.matrix.shape == (2, svc.embedder.dim)


def test_bulk_insert_and_search(svc):
    inst = svc.create_instance("default", {"id": "bulk"})
    texts = [f"document {n} about grinder burr {n}" for n in range(30)]
    emb = svc.embedder.embed(texts)
    docs = [
        (f"d{n}.txt", t.encode(), {"n": n}, 1000 + n, [NewChunk(t, 0, len(t))], emb[n : n + 1])
        for n, t in enumerate(texts)
    ]
    assert svc.store.bulk_insert(inst, docs) == 30
    opts = resolve_options({"retrieval": {"match_threshold": 0, "max_num_results": 5}}, inst.config)
    chunks = svc.searcher.search(inst, "document 7 about grinder burr 7", opts)
    assert len(chunks) == 5
    assert chunks[0]["item"]["key"] == "d7.txt"
    assert chunks[0]["item"]["metadata"] == {"n": 7}


def test_embedder_mismatch(svc, tmp_path):
    inst = svc.create_instance("default", {"id": "m"})
    svc.close()
    from aisearch_local.embed import HashingEmbedder

    other = LocalService(tmp_path, embedder=HashingEmbedder(dim=64), generator="extractive")
    try:
        inst = other.store.get_instance("default", "m")
        assert inst is not None
        with pytest.raises(APIError) as info:
            other.check_embedder(inst)
        assert info.value.code == 7030 and "hashing-v1-64" in info.value.message
    finally:
        other.close()


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"retrieval": {"max_num_results": 0}}, "ai_search_options.retrieval.max_num_results"),
        ({"retrieval": {"match_threshold": True}}, "ai_search_options.retrieval.match_threshold"),
        ({"retrieval": {"context_expansion": -1}}, "ai_search_options.retrieval.context_expansion"),
        ({"retrieval": {"boost_by": [{"field": "a"}, {"field": "A"}]}}, "boost_by[1].field"),
        ({"retrieval": {"boost_by": [{"field": "x" * 65}]}}, "boost_by[0].field"),
        ({"query_rewrite": {"enabled": 1}}, "query_rewrite.enabled"),
        ({"reranking": {"model": 5}}, "reranking.model"),
    ],
)
def test_resolve_options_errors(raw, field):
    with pytest.raises(ValidationError) as info:
        resolve_options(raw, {})
    assert field in str(info.value)


def test_resolve_options_defaults_from_instance():
    cfg = {
        "max_num_results": 4,
        "score_threshold": 0.1,
        "fusion_method": "max",
        "index_method": {"vector": True, "keyword": False},
        "retrieval_options": {"keyword_match_mode": "or", "boost_by": [{"field": "timestamp"}]},
        "reranking": True,
        "cache": False,
    }
    opts = resolve_options(None, cfg)
    assert (opts.max_num_results, opts.match_threshold, opts.fusion_method) == (4, 0.1, "max")
    assert opts.retrieval_type == "vector" and opts.keyword_match_mode == "or"
    assert opts.boost_by == [{"field": "timestamp", "direction": "asc"}]
    assert opts.reranking is True and opts.cache is False
    assert resolve_options({"retrieval": {"boost_by": []}}, cfg).boost_by == []
    assert (
        resolve_options({"retrieval": {"keyword_match_mode": "exact_match"}}, {}).keyword_match_mode
        == "and"
    )


def test_keyword_terms_and_expression():
    assert keyword_terms("What's RAG? e-mail", trigram=False) == ["rag", "e", "mail"]
    assert keyword_terms("how do I", trigram=False) == ["how", "do", "i"]  # only stopwords: kept
    assert keyword_terms("ab abc", trigram=True) == ["abc"]
    assert fts_expression(["a", 'b"c'], "and") == '"a" AND "b""c"'
    assert fts_expression(["a", "b"], "or") == '"a" OR "b"'


def test_messages_validation_and_query():
    msgs = validate_messages(
        [
            {"role": "system", "content": "s"},
            {"role": "user", "content": [{"type": "text", "text": "hi there"}]},
        ]
    )
    assert query_from_messages(msgs) == Query("hi there", "text", 0)
    image = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    later = [*msgs, {"role": "user", "content": [image]}]
    assert query_from_messages(validate_messages(later)) == Query("", "image", 1)
    later[-1] = {"role": "user", "content": [image, {"type": "text", "text": "this?"}, image]}
    assert query_from_messages(validate_messages(later)) == Query("this?", "multimodal", 2)
    with pytest.raises(ValidationError):
        validate_messages([{"role": "assistant", "content": "x"}])


def test_chat_cache_thresholds():
    cache = ChatCache()
    cache.put("ctx", "how long should cold brew steep in the fridge", "v1")
    assert (
        cache.get("ctx", "how long should cold brew steep in the fridge", "super_strict_match")
        == "v1"
    )
    near = "how long should cold brew steep in the fridge overnight"
    assert cache.get("ctx", near, "super_strict_match") is None
    assert cache.get("ctx", near, "anything_goes") == "v1"
    assert cache.get("other", near, "anything_goes") is None


def test_vector_candidates_exact_with_and_without_filter(svc):
    from aisearch_local.search import vector_candidates

    inst = svc.create_instance("default", {"id": "vc"})
    rng = np.random.default_rng(3)
    words = [f"w{n}" for n in range(300)]
    texts = [" ".join(rng.choice(words, 12)) for _ in range(300)]
    emb = svc.embedder.embed(texts)
    docs = [
        (f"d{n}.txt", t.encode(), {}, 1, [NewChunk(t, 0, len(t))], emb[n : n + 1])
        for n, t in enumerate(texts)
    ]
    svc.store.bulk_insert(inst, docs)
    idx = svc.store.index(inst)
    qv = svc.searcher.embed_query(texts[5])
    rows, sims = vector_candidates(idx, qv, None, k=10)
    assert rows.tolist() == np.argsort(-(idx.matrix @ qv))[:10].tolist()
    assert list(sims) == sorted(sims, reverse=True)
    for share in (10, 200):  # selective (scored on the subset) and broad (masked)
        allowed = np.zeros(len(idx.cids), dtype=bool)
        allowed[:share] = True
        rows, _ = vector_candidates(idx, qv, allowed, k=10)
        exact = np.argsort(-np.where(allowed, idx.matrix @ qv, -np.inf))[:10]
        assert rows.tolist() == exact.tolist()
    assert idx.row_of(int(idx.cids[42])) == 42
    assert idx.row_of(10**9) is None
