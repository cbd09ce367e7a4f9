"""Hybrid search's local vector side (``blend_vector_side``) and the fidelity of ``and``.

The local embedders cannot find a passage about a question that lacks some of its words, as
Cloudflare's embedding models do; so hybrid's vector side ranks the embedder's candidates and
those of a BM25 ``or`` query by ``0.7 * bm25 / best bm25 + 0.3 * vector_score``
(docs/local-server.md, "Retrieval"). The keyword side keeps ``keyword_match_mode`` exactly.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aisearch_local.options import resolve_options
from aisearch_local.search import (
    CANDIDATES,
    LEXICAL_MAX_TERMS,
    LEXICAL_WEIGHT,
    blend_vector_side,
)
from aisearch_local.service import LocalService
from aisearch_local.store import InstanceRecord

# -- the fusion math ---------------------------------------------------------------------------


def test_the_blend_weights_normalised_bm25_and_the_vector_score() -> None:
    assert LEXICAL_WEIGHT == 0.7
    vector = {1: 0.9, 2: 0.5, 3: 0.6}
    lexical = [(2, 8.0), (3, 2.0)]  # best bm25 8.0: chunk 2 -> 1.0, chunk 3 -> 0.25
    # 1: 0.7 * 0 + 0.3 * 0.9 = 0.27; 2: 0.7 * 1 + 0.3 * 0.5 = 0.85; 3: 0.175 + 0.18 = 0.355
    assert blend_vector_side(vector, lexical) == [2, 3, 1]
    # with BM25 weighted 0.1 the vector scores lead: 1: 0.81, 2: 0.55, 3: 0.565
    assert blend_vector_side(vector, lexical, weight=0.1) == [1, 3, 2]


def test_the_blend_without_lexical_hits_keeps_the_embedder_order() -> None:
    vector = {4: 0.2, 7: 0.8, 5: 0.5}
    assert blend_vector_side(vector, []) == [7, 5, 4]


def test_the_blend_breaks_ties_on_the_lower_id_and_keeps_k() -> None:
    vector = {9: 0.5, 3: 0.5, 6: 0.5}
    assert blend_vector_side(vector, [], k=2) == [3, 6]
    many = {cid: 0.5 for cid in range(2 * CANDIDATES)}
    assert len(blend_vector_side(many, [])) == CANDIDATES


def test_a_chunk_missing_from_the_lexical_list_has_bm25_zero() -> None:
    # chunk 2 has the best vector score but no term: 0.3 * 1.0 = 0.3 < 0.7 * 0.5 + 0.3 * 0.0
    assert blend_vector_side({1: 0.0, 2: 1.0}, [(3, 4.0), (1, 2.0)], k=5) == [1, 2]


# -- behaviour on a small instance ------------------------------------------------------------

# The question's words are never all in one document, so a keyword ``and`` finds nothing; the
# hashing embedder (lexical: words and character 3-grams) ranks the distractors, which repeat
# the question's common words, above the passage that answers it.
DOCS = {
    "moka.md": "Sputtering in a moka pot comes from too much heat: the water boils through the "
    "coffee bed in a rush. Lower the flame.",
    "makes.md": "What makes a good cafe? What makes the loudest machines so loud? It makes sense "
    "to ask what makes people return.",
    "noise.md": "Loudly hissing steam wands make the most noise in the cafe; loudly banging "
    "knock boxes too.",
    "pots.md": "Teapots and potters: what makes a pot of tea taste good is loose leaf.",
}
QUESTION = "What makes the moka pot sputter so loudly?"


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalService]:
    service = LocalService(tmp_path_factory.mktemp("hybrid"), embedder="hashing")
    inst = service.create_instance("default", {"id": "h"})
    for key, text in DOCS.items():
        item = service.index_document(inst, key=key, data=text.encode(), metadata={})
        assert item["status"] == "completed"
    yield service
    service.close()


@pytest.fixture(scope="module")
def inst(svc: LocalService) -> InstanceRecord:
    record = svc.store.get_instance("default", "h")
    assert record is not None
    return record


def search(
    svc: LocalService, inst: InstanceRecord, query: str, **retrieval: Any
) -> list[dict[str, Any]]:
    opts = resolve_options({"retrieval": retrieval} if retrieval else None, inst.config)
    return svc.searcher.search(inst, query, opts)


def test_the_embedder_alone_ranks_a_distractor_first(svc, inst):
    # the premise of the next test: vector search alone gets this question wrong
    got = search(svc, inst, QUESTION, retrieval_type="vector")
    assert got[0]["item"]["key"] != "moka.md"


def test_default_hybrid_answers_a_question_whose_words_no_document_holds_all(svc, inst):
    assert inst.config["retrieval_options"]["keyword_match_mode"] == "and"  # the default
    got = search(svc, inst, QUESTION)
    assert got, "the default search answered a question with nothing"
    assert got[0]["item"]["key"] == "moka.md"
    # the keyword side is exactly AND: no document holds every word, so no keyword rank
    assert all("keyword_rank" not in c["scoring_details"] for c in got)


def test_keyword_only_and_is_exactly_and(svc, inst):
    assert search(svc, inst, QUESTION, retrieval_type="keyword") == []
    both = search(svc, inst, "moka sputtering", retrieval_type="keyword")
    assert [c["item"]["key"] for c in both] == ["moka.md"]
    # "makes" + "pot": pots.md holds both words; makes.md holds only one
    got = search(svc, inst, "makes pot", retrieval_type="keyword")
    assert [c["item"]["key"] for c in got] == ["pots.md"]
    for chunk in got:
        words = set(re.findall(r"\w+", chunk["text"].lower()))
        assert {"makes", "pot"} <= words


def test_keyword_only_or_matches_any_word(svc, inst):
    got = search(svc, inst, QUESTION, retrieval_type="keyword", keyword_match_mode="or")
    assert {c["item"]["key"] for c in got} == set(DOCS)
    assert got[0]["item"]["key"] == "moka.md"


def test_hybrid_keyword_ranks_only_chunks_holding_every_term(svc, inst):
    got = search(svc, inst, "what makes a pot")
    ranked = [c["item"]["key"] for c in got if "keyword_rank" in c["scoring_details"]]
    assert ranked == ["pots.md"]
    assert got[0]["item"]["key"] == "pots.md"


def test_hybrid_scores_are_the_rrf_of_the_reported_ranks(svc, inst):
    got = search(svc, inst, QUESTION, match_threshold=0)
    assert {c["item"]["key"] for c in got} == set(DOCS)
    ranks = sorted(c["scoring_details"]["vector_rank"] for c in got)
    assert ranks == list(range(1, len(DOCS) + 1))
    for chunk in got:
        details = chunk["scoring_details"]
        rrf = sum(
            1 / (60 + r) for r in (details.get("vector_rank"), details.get("keyword_rank")) if r
        )
        assert chunk["score"] == pytest.approx(rrf / (2 / 61), abs=1e-5)


def test_the_vector_sides_or_query_keeps_the_first_64_terms(svc, inst, monkeypatch):
    # a pasted document must not turn the default search into a thousand-term FTS5 OR; the
    # keyword side still gets every term (``or`` asked for explicitly is not capped)
    seen: list[tuple[str, list[str]]] = []
    real = svc.store.keyword_hits

    def spy(
        record: InstanceRecord, terms: Sequence[str], mode: str, limit: int, rows: int
    ) -> list[tuple[int, float]]:
        seen.append((mode, list(terms)))
        return real(record, terms, mode, limit, rows)

    monkeypatch.setattr(svc.store, "keyword_hits", spy)
    query = " ".join(f"word{i}" for i in range(200)) + " moka"
    assert search(svc, inst, query)  # hybrid, and
    (_, and_terms), (_, or_terms) = sorted(seen, key=lambda e: e[0] == "and", reverse=True)
    assert len(and_terms) == 201
    assert len(or_terms) == LEXICAL_MAX_TERMS
    assert "word0" in or_terms and "word63" in or_terms and "word64" not in or_terms
    seen.clear()
    search(svc, inst, query, retrieval_type="keyword", keyword_match_mode="or")
    assert [len(terms) for _, terms in seen] == [201]


@given(
    vector=st.dictionaries(st.integers(0, 200), st.floats(0, 1), max_size=60),
    bm25=st.lists(st.floats(1e-6, 1e3), max_size=60),
    weight=st.floats(0, 1),
)
def test_the_blend_is_a_sorted_prefix_of_its_candidates(
    vector: dict[int, float], bm25: list[float], weight: float
) -> None:
    lexical = list(zip(sorted(vector), sorted(bm25, reverse=True), strict=False))
    got = blend_vector_side(vector, lexical, weight=weight)
    assert len(got) == min(len(vector), CANDIDATES)
    assert len(set(got)) == len(got) and set(got) <= set(vector)
    best = max((b for _, b in lexical), default=0.0) or 1.0
    scores = dict(lexical)
    key = [(-(weight * scores.get(c, 0.0) / best + (1 - weight) * vector[c]), c) for c in got]
    assert key == sorted(key)
