"""The fusion and the blend compute what their plain formulas compute, to the last bit.

The pipeline computes them with fewer Python operations per candidate (docs/request-path.md,
"A hybrid search's CPU"); these pin the values and orders to the formulas of the module
docstring, ties included.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from aisearch_local.options import resolve_options
from aisearch_local.search import RRF_K, _Candidate, _fuse, blend_vector_side

ranks = st.none() | st.integers(1, 120)
scores = st.none() | st.floats(0.0, 1.0) | st.sampled_from([0.25, 0.5])
bm25s = st.none() | st.floats(0.0, 40.0) | st.sampled_from([1.5, 3.0])


def _opts(**retrieval: Any) -> Any:
    return resolve_options({"retrieval": {"match_threshold": 0, **retrieval}}, {})


@given(st.lists(st.tuples(ranks, ranks, scores, bm25s), min_size=1, max_size=60))
def test_fused_scores_are_the_formulas(rows):
    cands = [_Candidate(i, i, i, vs, vr, kw, kr) for i, (vr, kr, vs, kw) in enumerate(rows)]
    best_kw = max((c.keyword_score or 0.0 for c in cands), default=0.0) or 1.0
    cases = {
        ("hybrid", "rrf"): lambda c: (
            sum(1.0 / (RRF_K + r) for r in (c.vector_rank, c.keyword_rank) if r)
            / (2.0 / (RRF_K + 1))
        ),
        ("hybrid", "max"): lambda c: max(c.vector_score or 0.0, (c.keyword_score or 0.0) / best_kw),
        ("vector", "rrf"): lambda c: c.vector_score or 0.0,
        ("keyword", "rrf"): lambda c: (c.keyword_score or 0.0) / best_kw,
    }
    for (kind, fusion), formula in cases.items():
        _fuse(cands, _opts(retrieval_type=kind, fusion_method=fusion))
        for cand in cands:
            assert cand.score == formula(cand)
            assert type(cand.score) is float


@given(
    st.dictionaries(st.integers(0, 80), st.floats(0.0, 1.0) | st.sampled_from([0.5]), max_size=80),
    st.dictionaries(
        st.integers(0, 80), st.floats(0.01, 30.0) | st.sampled_from([2.0]), max_size=50
    ),
    st.integers(1, 60),
)
def test_blend_orders_as_the_formula_ties_on_the_lower_id(vector, lexical, k):
    vector = {**{cid: 0.0 for cid in lexical}, **vector}
    hits = sorted(lexical.items(), key=lambda h: -h[1])
    best = max(lexical.values(), default=0.0) or 1.0
    blended = {
        cid: 0.7 * lexical.get(cid, 0.0) / best + (1.0 - 0.7) * s for cid, s in vector.items()
    }
    want = sorted(blended, key=lambda cid: (-blended[cid], cid))[:k]
    assert blend_vector_side(vector, hits, k) == want
