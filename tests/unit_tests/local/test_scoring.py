"""Exact scores of the local server's retrieval pipeline, from the documented formulas.

docs/local-server.md ("Retrieval") and aisearch_local/search.py document them:

* ``rrf`` (hybrid) = ``sum(1 / (60 + rank))`` over the vector and keyword lists, divided by
  its maximum ``2 / 61``;
* ``max`` (hybrid) = the higher of ``vector_score`` and ``keyword_score / best keyword_score``;
* ``boost_by`` (<= 3 entries): ``desc`` / ``asc`` add up to 0.15 by the min-max normalised
  value of a number field (``desc``: the highest value gets 0.15, ``asc``: the lowest),
  ``exists`` / ``not_exists`` add 0.15; the score is then divided by
  ``1 + 0.15 * len(boost_by)``; ``asc`` / ``desc`` on a declared text or boolean field is an
  error;
* the returned ``score`` is clamped to 0..1 and rounded to 6 decimals.

Each expected value is computed here from an unboosted search's ``scoring_details`` (rounded
to 6 decimals on the wire, hence the 1e-5 tolerance) and the formulas above, never read back
from the server's own ``boost``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pytest

from aisearch_local.embed import HashingEmbedder
from aisearch_local.errors import ValidationError
from aisearch_local.options import resolve_options
from aisearch_local.service import LocalService
from aisearch_local.store import InstanceRecord

W = 0.15
TOL = 1e-5
QUERY = "espresso"

# key -> (text, custom metadata); every text holds the query word, so every item is a
# vector and keyword candidate
DOCS: dict[str, tuple[str, dict[str, Any]]] = {
    "a.md": ("espresso grind size for a fine espresso", {"rating": 1, "tag": "x"}),
    "b.md": ("espresso crema and pressure", {"rating": 3}),
    "c.md": ("espresso tamp pressure and puck prep", {"rating": 5, "tag": "y", "iced": True}),
    "d.md": ("espresso dose in grams on a scale", {}),
}
CUSTOM_METADATA = [
    {"field_name": "rating", "data_type": "number"},
    {"field_name": "tag", "data_type": "text"},
    {"field_name": "iced", "data_type": "boolean"},
]


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalService]:
    service = LocalService(
        tmp_path_factory.mktemp("scoring"), embedder="hashing", generator="extractive"
    )
    inst = service.create_instance("default", {"id": "s", "custom_metadata": CUSTOM_METADATA})
    for key, (text, meta) in DOCS.items():
        item = service.index_document(inst, key=key, data=text.encode(), metadata=meta)
        assert item["status"] == "completed"
    yield service
    service.close()


@pytest.fixture(scope="module")
def inst(svc: LocalService) -> InstanceRecord:
    record = svc.store.get_instance("default", "s")
    assert record is not None
    return record


def search(
    svc: LocalService, inst: InstanceRecord, retrieval: dict[str, Any], query: str = QUERY
) -> dict[str, dict[str, Any]]:
    opts = resolve_options(
        {"retrieval": {"match_threshold": 0, "max_num_results": 50, **retrieval}}, inst.config
    )
    chunks = svc.searcher.search(inst, query, opts)
    return {c["item"]["key"]: c for c in chunks}


def boosted(
    svc: LocalService,
    inst: InstanceRecord,
    boost_by: Sequence[dict[str, str]],
    boosts: dict[str, float],
) -> None:
    """Search with ``boost_by`` and check every score against the formula."""
    plain = search(svc, inst, {"retrieval_type": "vector"})
    assert set(plain) == set(DOCS)
    got = search(svc, inst, {"retrieval_type": "vector", "boost_by": list(boost_by)})
    assert set(got) == set(DOCS)
    total = 1.0 + W * len(boost_by)
    for key, chunk in got.items():
        base = plain[key]["scoring_details"]["vector_score"]
        assert plain[key]["score"] == pytest.approx(base, abs=TOL)
        expected = (base + boosts.get(key, 0.0)) / total
        assert chunk["score"] == pytest.approx(expected, abs=TOL), (key, boost_by)
        assert chunk["scoring_details"].get("boost", 0.0) == pytest.approx(
            boosts.get(key, 0.0), abs=TOL
        ), key
    order = [k for k, _ in sorted(got.items(), key=lambda kv: -kv[1]["score"])]
    assert list(got) == order  # best first


def test_boost_desc_gives_the_highest_value_the_full_amount(svc, inst):
    # ratings 1, 3, 5 -> min-max 0, 0.5, 1; d has no rating and gets nothing
    boosted(svc, inst, [{"field": "rating", "direction": "desc"}], {"b.md": W / 2, "c.md": W})


def test_boost_asc_gives_the_lowest_value_the_full_amount(svc, inst):
    boosted(svc, inst, [{"field": "rating", "direction": "asc"}], {"a.md": W, "b.md": W / 2})


def test_boost_number_field_defaults_to_asc(svc, inst):
    boosted(svc, inst, [{"field": "rating"}], {"a.md": W, "b.md": W / 2})


def test_boost_exists_and_not_exists(svc, inst):
    boosted(svc, inst, [{"field": "tag", "direction": "exists"}], {"a.md": W, "c.md": W})
    boosted(svc, inst, [{"field": "tag", "direction": "not_exists"}], {"b.md": W, "d.md": W})
    # a text field defaults to exists
    boosted(svc, inst, [{"field": "tag"}], {"a.md": W, "c.md": W})


def test_several_boost_entries_add_up_and_divide_by_their_count(svc, inst):
    boosted(
        svc,
        inst,
        [
            {"field": "rating", "direction": "desc"},
            {"field": "tag", "direction": "not_exists"},
        ],
        {"b.md": W / 2 + W, "c.md": W, "d.md": W},
    )
    boosted(
        svc,
        inst,
        [
            {"field": "rating", "direction": "asc"},
            {"field": "tag", "direction": "exists"},
            {"field": "iced", "direction": "not_exists"},
        ],
        {"a.md": W + W + W, "b.md": W / 2 + W, "c.md": W, "d.md": W},
    )


def test_boost_can_reorder_results(svc, inst):
    # a strong enough boost moves an item above a better vector match
    plain = search(svc, inst, {"retrieval_type": "vector"}, query="dose grams scale")
    assert max(plain, key=lambda k: plain[k]["score"]) == "d.md"
    got = search(
        svc,
        inst,
        {
            "retrieval_type": "vector",
            "boost_by": [
                {"field": "rating", "direction": "desc"},
                {"field": "tag", "direction": "exists"},
                {"field": "iced", "direction": "exists"},
            ],
        },
        query="dose grams scale",
    )
    assert next(iter(got)) == "c.md"


@pytest.mark.parametrize("direction", ["asc", "desc"])
@pytest.mark.parametrize("field", ["tag", "iced"])
def test_boost_asc_or_desc_on_a_text_or_boolean_field_is_an_error(inst, field, direction):
    with pytest.raises(ValidationError) as info:
        resolve_options(
            {"retrieval": {"boost_by": [{"field": field, "direction": direction}]}}, inst.config
        )
    message = str(info.value)
    assert "ai_search_options.retrieval.boost_by[0].direction" in message
    assert "exists or not_exists" in message


def test_rrf_is_normalised_by_its_maximum(svc, inst):
    got = search(svc, inst, {"retrieval_type": "hybrid", "fusion_method": "rrf"})
    assert set(got) == set(DOCS)
    for key, chunk in got.items():
        details = chunk["scoring_details"]
        assert details["fusion_method"] == "rrf"
        ranks = [details.get("vector_rank"), details.get("keyword_rank")]
        assert all(ranks), (key, details)  # every item is in both lists here
        expected = sum(1.0 / (60 + r) for r in ranks) / (2.0 / 61)
        assert chunk["score"] == pytest.approx(expected, abs=TOL), (key, details)
    # the item first in both lists scores exactly 1
    top = [c for c in got.values() if c["scoring_details"]["vector_rank"] == 1]
    if top[0]["scoring_details"]["keyword_rank"] == 1:
        assert top[0]["score"] == 1.0


def test_rrf_of_an_item_in_one_list_only(svc, inst):
    # keyword "and" on two words only a.md holds; the vector side ranks every item
    got = search(svc, inst, {"retrieval_type": "hybrid"}, query="grind size")
    for key, chunk in got.items():
        details = chunk["scoring_details"]
        ranks = [r for r in (details.get("vector_rank"), details.get("keyword_rank")) if r]
        expected = sum(1.0 / (60 + r) for r in ranks) / (2.0 / 61)
        assert chunk["score"] == pytest.approx(expected, abs=TOL), (key, details)
    assert got["a.md"]["scoring_details"]["keyword_rank"] == 1
    assert "keyword_rank" not in got["d.md"]["scoring_details"]


def test_max_fusion_takes_the_higher_of_vector_and_normalised_keyword(svc, inst):
    # "crema" is in b only, "tamp" in c only (a word in half the items or more has an FTS5
    # BM25 of about 1e-6)
    got = search(
        svc,
        inst,
        {"retrieval_type": "hybrid", "fusion_method": "max", "keyword_match_mode": "or"},
        "crema tamp",
    )
    keyword_hits = {k for k, c in got.items() if c["scoring_details"].get("keyword_rank")}
    assert keyword_hits == {"b.md", "c.md"}
    best_kw = max(c["scoring_details"]["keyword_score"] for c in got.values())
    assert best_kw > 0
    for key, chunk in got.items():
        details = chunk["scoring_details"]
        expected = max(details["vector_score"], details["keyword_score"] / best_kw)
        assert chunk["score"] == pytest.approx(expected, abs=TOL), (key, details)
    assert max(c["score"] for c in got.values()) == pytest.approx(1.0, abs=TOL)


class _LongVectors:
    """A plug-in embedder breaking the unit-length contract (vectors of length 2)."""

    name = "long-vectors"
    dim = 32

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return 2.0 * HashingEmbedder(dim=self.dim).embed(texts)


def test_the_returned_score_is_clamped_to_one(tmp_path):
    svc = LocalService(tmp_path, embedder=_LongVectors(), generator="extractive")
    try:
        inst = svc.create_instance("default", {"id": "long"})
        svc.index_document(inst, key="e.md", data=b"espresso crema", metadata={})
        (chunk,) = search(svc, inst, {"retrieval_type": "vector"}, query="espresso crema").values()
        assert chunk["scoring_details"]["vector_score"] > 1.0  # (1 + 4) / 2
        assert chunk["score"] == 1.0
    finally:
        svc.close()
