"""The pruned sparse-query vector scan returns exactly what the full product returns."""

from __future__ import annotations

import numpy as np
import pytest

from aisearch_local.embed import HashingEmbedder
from aisearch_local.search import _pruned_vector, _sparse_columns, vector_candidates
from aisearch_local.store import InstanceIndex

WORDS = [
    "espresso",
    "grind",
    "roast",
    "bean",
    "water",
    "kettle",
    "ratio",
    "bloom",
    "crema",
    "milk",
    "steam",
    "burr",
    "acidity",
    "sweetness",
    "body",
    "origin",
    "washed",
    "natural",
    "honey",
    "anaerobic",
    "filter",
    "paper",
    "chemex",
    "aeropress",
    "temperature",
    "extraction",
    "channeling",
    "tamp",
    "puck",
    "dose",
    "yield",
    "scale",
    "timer",
]


@pytest.fixture(scope="module")
def index() -> InstanceIndex:
    rng = np.random.default_rng(7)
    texts = [" ".join(rng.choice(WORDS, size=40)) for _ in range(3000)]
    matrix = HashingEmbedder().embed(texts)
    n = len(texts)
    return InstanceIndex(
        version=1,
        matrix=matrix,
        cids=np.arange(1, n + 1, dtype=np.int64),
        item_pks=np.ones(n, dtype=np.int64),
    )


QUERIES = ["espresso grind", "milk steam crema", "washed natural honey origin", "tamp", "zzz"]


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("k", [1, 10, 50])
def test_pruned_scan_equals_full_product(index, query, k):
    qvec = HashingEmbedder().embed([query])[0]
    rows, sims = vector_candidates(index, qvec, None, k)
    full = index.matrix @ qvec
    order = np.argsort(-full, kind="stable")[:k]
    # identical scores bit for bit; rows identical wherever scores are distinct
    np.testing.assert_array_equal(np.sort(sims)[::-1], full[order])
    np.testing.assert_array_equal(full[rows], sims)


def test_the_pruned_path_is_taken_for_sparse_queries(index):
    if _sparse_columns(index) is None:
        pytest.skip("this BLAS does not reproduce block re-scoring bit for bit")
    qvec = HashingEmbedder().embed(["espresso grind"])[0]
    assert _pruned_vector(index, qvec, 10) is not None
    dense = np.ones_like(qvec) / np.sqrt(len(qvec))
    assert _pruned_vector(index, dense, 10) is None  # dense queries use the full product


@pytest.mark.parametrize("share", [0.003, 0.1, 0.6])
@pytest.mark.parametrize("query", QUERIES[:3])
def test_pruned_scan_under_a_mask_equals_the_masked_full_product(index, query, share):
    # a filter (or tombstones) masks rows: the pruned scan selects among the kept rows only
    keep = np.random.default_rng(3).random(len(index.cids)) < share
    qvec = HashingEmbedder().embed([query])[0]
    pruned = _pruned_vector(index, qvec, 10, keep)
    rows, sims = vector_candidates(index, qvec, keep, 10)
    full = np.where(keep, index.matrix @ qvec, -np.inf)
    order = np.argsort(-full, kind="stable")[: min(10, int(keep.sum()))]
    np.testing.assert_array_equal(np.sort(sims)[::-1], full[order])
    assert keep[rows].all()
    if _sparse_columns(index) is not None:
        assert pruned is not None


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n", [50, 3000, 20_000])
def test_within_equals_a_full_partition(seed, n):
    from aisearch_local.search import _within

    rng = np.random.default_rng(seed)
    kind = seed % 3
    if kind == 0:
        values = rng.standard_normal(n).astype(np.float32)
    elif kind == 1:  # many ties, as sparse queries give (most rows score 0)
        values = np.where(rng.random(n) < 0.9, 0.0, rng.random(n)).astype(np.float32)
    else:  # tombstoned rows at -inf
        values = rng.random(n).astype(np.float32)
        values[rng.random(n) < 0.5] = -np.inf
    for k in (1, 10, 50):
        for margin in (0.0, 1e-6, 0.01):
            kth = float(np.partition(values, n - k)[n - k])
            expected = np.flatnonzero(values >= kth - margin)
            assert np.array_equal(_within(values, k, margin), expected)
