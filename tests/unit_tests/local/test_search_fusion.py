"""The fusion and the blend compute what their plain formulas compute, to the last bit.

The pipeline computes them with fewer Python operations per candidate (docs/request-path.md,
"A hybrid search's CPU"); these pin the values and orders to the formulas of the module
docstring, ties included.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from aisearch_local.options import resolve_options
from aisearch_local.records import InstanceIndex
from aisearch_local.search import (
    CANDIDATES,
    RRF_K,
    _Candidate,
    _fuse,
    _Hits,
    _ranked,
    blend_vector_side,
)

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


def _reference_ranking(idx, qvec, vector, hits, lexical, opts):
    """The pipeline's ranking as it was written over candidate objects (session 9)."""
    cands: dict[int, _Candidate] = {}
    if vector is not None:
        rows, sims = vector
        vscores = ((1.0 + sims) / 2.0).tolist()
        for rank, (row, score) in enumerate(zip(rows.tolist(), vscores, strict=True), 1):
            cid = int(idx.cids[row])
            cands[cid] = _Candidate(row, cid, int(idx.item_pks[row]), score, rank)
    for rank, (cid, bm25, row) in enumerate(hits or [], 1):
        cand = cands.get(cid)
        if cand is None:
            cand = cands[cid] = _Candidate(row, cid, int(idx.item_pks[row]))
        cand.keyword_score = bm25
        cand.keyword_rank = rank
    if lexical is not None:
        for cid, _, row in lexical:
            if cid not in cands:
                cands[cid] = _Candidate(row, cid, int(idx.item_pks[row]))
        for cand in cands.values():
            cand.vector_rank = None
            if cand.vector_score is None:
                cand.vector_score = float((1.0 + float(idx.matrix[cand.row].dot(qvec))) / 2.0)
        scores = {cid: c.vector_score or 0.0 for cid, c in cands.items()}
        ranked_ids = blend_vector_side(scores, [(cid, bm25) for cid, bm25, _ in lexical])
        for rank, cid in enumerate(ranked_ids, 1):
            cands[cid].vector_rank = rank
        cands = {cid: c for cid, c in cands.items() if c.vector_rank or c.keyword_rank}
    _fuse(cands.values(), opts)
    ranked = list(cands.values())
    if vector is not None:
        ranked = [c for c in ranked if (c.vector_score or 0.0) >= opts.match_threshold]
    ranked.sort(key=lambda c: (-c.score, c.cid))
    return ranked


def _hits(idx, rows, scores):
    order = sorted(range(len(rows)), key=lambda i: -scores[i])
    rows = [rows[i] for i in order]
    scores = [scores[i] for i in order]
    hits = _Hits(idx.cids[rows], np.asarray(scores, dtype=np.float64), np.asarray(rows, np.int64))
    return hits, [(int(idx.cids[r]), s, r) for r, s in zip(rows, scores, strict=True)]


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    kind=st.sampled_from(["hybrid", "vector", "keyword"]),
    fusion=st.sampled_from(["rrf", "max"]),
    threshold=st.sampled_from([0.0, 0.5, 0.52]),
    same_lexical=st.booleans(),
    n_vector=st.integers(0, 60),
    n_hits=st.integers(0, 60),
    n_lexical=st.integers(0, 60),
)
def test_the_ranking_over_arrays_equals_the_one_over_candidates(
    seed, kind, fusion, threshold, same_lexical, n_vector, n_hits, n_lexical
):
    # few distinct rows and scores: ties everywhere (duplicate chunks, equal BM25 scores)
    rng = np.random.default_rng(seed)
    n, dim = 120, 24
    distinct = rng.standard_normal((6, dim)).astype(np.float32)
    matrix = distinct[rng.integers(0, 6, n)] * (rng.random((n, 1)) < 0.9)
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    cids = np.cumsum(rng.integers(1, 4, n)).astype(np.int64)
    idx = InstanceIndex(1, matrix, cids, rng.integers(0, 30, n).astype(np.int64))
    qvec = rng.standard_normal(dim).astype(np.float32) / np.float32(5)
    vector = None
    if kind != "keyword":
        vrows = rng.choice(n, min(n_vector, CANDIDATES), replace=False)
        sims = (matrix[vrows] @ qvec).astype(np.float32)
        order = np.lexsort((vrows, -sims))
        vector = (vrows[order], sims[order])
    hits = lexical = None
    ref_hits = ref_lexical = None
    if kind != "vector":
        bm25 = [1.5, 3.0, 7.25, 0.5]
        krows = rng.choice(n, min(n_hits, CANDIDATES), replace=False).tolist()
        hits, ref_hits = _hits(idx, krows, [bm25[i] for i in rng.integers(0, 4, len(krows))])
        if kind == "hybrid":
            if same_lexical:
                lexical, ref_lexical = hits, ref_hits
            else:
                lrows = rng.choice(n, min(n_lexical, CANDIDATES), replace=False).tolist()
                scores = rng.choice(bm25, len(lrows)).tolist()
                lexical, ref_lexical = _hits(idx, lrows, scores)
    opts = _opts(retrieval_type=kind, fusion_method=fusion, match_threshold=threshold)
    ranking = _ranked(idx, qvec, vector, hits, lexical, opts)
    got = ranking.candidates()
    assert ranking.candidates(5) == got[:5]
    want = _reference_ranking(idx, qvec, vector, ref_hits, ref_lexical, opts)
    assert got == want
    for g in got:
        for value in (g.score, g.vector_score, g.keyword_score):
            assert value is None or type(value) is float


def test_a_keyword_only_candidate_scores_with_the_dot_of_its_row():
    # the batched product is BLAS ``sdot`` per row, as ``ndarray.dot``: not ``sgemv``'s value
    rng = np.random.default_rng(3)
    matrix = rng.standard_normal((4000, 384)).astype(np.float32)
    qvec = rng.standard_normal(384).astype(np.float32)
    rows = np.arange(4000)
    dots = np.matmul(matrix[rows][:, None, :], qvec[:, None])[:, 0, 0]
    assert dots.tolist() == [float(matrix[r].dot(qvec)) for r in rows]
