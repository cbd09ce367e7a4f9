"""The pruned sparse-query vector scan returns exactly what the full product returns."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aisearch_local.embed import HashingEmbedder
from aisearch_local.search import (
    _exact_on_probe,
    _pruned_vector,
    _rescore,
    _sparse_columns,
    vector_candidates,
)
from aisearch_local.store import InstanceIndex
from aisearch_local.vectors import Columns, column_scales, quantize_into

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
@pytest.mark.parametrize("n", [50, 3000, 20_000, 20_011])
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


def _top_equals_full(index: InstanceIndex, qvec: np.ndarray, k: int) -> None:
    rows, sims = vector_candidates(index, qvec, None, k)
    full = index.matrix @ qvec
    order = np.argsort(-full, kind="stable")[:k]
    np.testing.assert_array_equal(np.sort(sims)[::-1], full[order])
    np.testing.assert_array_equal(full[rows], sims)


@pytest.mark.parametrize("k", [1, 10])
def test_int8_rounding_that_flips_the_order_at_the_kth_place_is_within_the_bound(k):
    # Two query columns. Rows "a" sit just below half a step of both columns' int8 codes
    # (both round down), rows "b" just above half a step in one and just below in the other:
    # every "a" scores higher than every "b", but every "b"'s int8 approximation is one step
    # higher than every "a"'s. A bound too tight for the codes' rounding returns the "b"s.
    dim, n = 16, 3000
    rng = np.random.default_rng(5)
    matrix = (rng.standard_normal((n, dim)) * 0.01).astype(np.float32)
    matrix[:, :2] = rng.uniform(-0.2, 0.2, (n, 2))
    matrix[0, 0] = matrix[1, 1] = -0.9  # the columns' scale: 0.9 / 127
    step = np.float32(0.9) / np.float32(127)
    c = 50
    matrix[2 : 2 + k, :2] = (c + 0.49) * step
    matrix[100:140, 0] = (c + 0.51) * step
    matrix[100:140, 1] = (c - 0.49) * step
    index = InstanceIndex(
        version=1,
        matrix=matrix,
        cids=np.arange(1, n + 1, dtype=np.int64),
        item_pks=np.ones(n, dtype=np.int64),
    )
    columns = _sparse_columns(index)
    if columns is None:
        pytest.skip("this BLAS does not reproduce block re-scoring bit for bit")
    qvec = np.zeros(dim, dtype=np.float32)
    qvec[:2] = np.float32(1 / np.sqrt(2))
    approx = columns.codes[:2].T.astype(np.float64) @ (qvec[:2] * columns.scale[:2])
    assert approx[100:140].min() > approx[2 : 2 + k].max()  # the int8 order is flipped
    assert _pruned_vector(index, qvec, k) is not None
    rows, _ = vector_candidates(index, qvec, None, k)
    assert sorted(rows) == list(range(2, 2 + k))
    _top_equals_full(index, qvec, k)


def _table(matrix: np.ndarray):
    from aisearch_local.vectors import VectorTable

    n = len(matrix)
    cap = 2 * n
    buf = np.zeros((cap, matrix.shape[1]), dtype=np.float32)
    buf[:n] = matrix
    cids = np.zeros(cap, dtype=np.int64)
    cids[:n] = np.arange(1, n + 1)
    items = np.ones(cap, dtype=np.int64)
    return VectorTable(matrix.shape[1], "0" * 32, 1, buf, cids, items, n)


def _columns_of(table, version: int):
    snap = table.snapshot(version)
    for _ in range(500):  # built in a background thread
        cols = table.columns(snap, _exact_on_probe)
        if cols is not None:
            return snap, cols
        if table._columns_ok is False:
            pytest.skip("this BLAS does not reproduce block re-scoring bit for bit")
        time.sleep(0.01)
    raise AssertionError("the columns were never built")


def _append(table, gen: int, vecs: np.ndarray) -> InstanceIndex:
    from aisearch_local.vectors import VectorChange

    n = table.n
    change = VectorChange(nonce=table.nonce, gen=gen)
    cids = np.arange(n + 1, n + 1 + len(vecs), dtype=np.int64)
    change.add(cids, np.ones(len(vecs), dtype=np.int64), vecs)
    assert table.apply(change) is not None
    return table.snapshot(gen)


def test_the_tables_column_copy_follows_appends_and_outliers_stay_exact(index):
    embedder = HashingEmbedder()
    table = _table(index.matrix)
    _columns_of(table, 1)
    n = len(index.cids)
    rng = np.random.default_rng(11)
    snap = _append(table, 2, embedder.embed([" ".join(rng.choice(WORDS, 40)) for _ in range(5)]))
    grown = table.columns(snap, _exact_on_probe)
    assert grown is not None and grown.codes.shape[1] == n + 5
    for query in QUERIES[:4]:
        qvec = embedder.embed([query])[0]
        assert _pruned_vector(snap, qvec, 10) is not None
        _top_equals_full(snap, qvec, 10)
    # one-word chunks: values beyond the scales of the 40-word chunks, scored from the matrix
    snap = _append(table, 3, embedder.embed(["espresso", "grind grind grind", "tamp"]))
    peaked = table.columns(snap, _exact_on_probe)
    assert peaked is not None and {n + 5, n + 6, n + 7} <= set(peaked.outliers.tolist())
    assert peaked.error.max() <= grown.error.max()  # outliers do not widen the bound
    for query in ["espresso", "grind", "milk steam crema", "tamp puck"]:
        qvec = embedder.embed([query])[0]
        assert _pruned_vector(snap, qvec, 10) is not None
        _top_equals_full(snap, qvec, 10)
    # once the rows doubled since the copy was built, a new one is built while the old serves
    snap = _append(table, 4, index.matrix)
    assert table.columns(snap, _exact_on_probe) is not None
    for _ in range(500):
        rebuilt = table.columns(snap, _exact_on_probe)
        if rebuilt is not None and not len(rebuilt.outliers):
            break
        time.sleep(0.01)
    assert rebuilt is not None and rebuilt.codes.shape[1] == 2 * n + 8
    assert not len(rebuilt.outliers)  # the new scales cover the one-word chunks
    _top_equals_full(snap, embedder.embed(["espresso"])[0], 10)


def test_a_non_finite_row_disables_the_pruned_path(index):
    matrix = index.matrix.copy()
    matrix[7, 3] = np.nan
    damaged = InstanceIndex(version=1, matrix=matrix, cids=index.cids, item_pks=index.item_pks)
    qvec = HashingEmbedder().embed(["espresso grind"])[0]
    assert _sparse_columns(damaged) is None
    assert _pruned_vector(damaged, qvec, 10) is None


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    k=st.integers(1, 12),
    nnz=st.integers(1, 8),
    density=st.floats(0.05, 0.6),
    peaked=st.floats(0.0, 0.2),
)
def test_pruned_scan_with_outliers_equals_the_full_product(seed, k, nnz, density, peaked):
    # scales taken from the first half of the rows: the second half holds outliers (peaked
    # rows, a short chunk among long ones) that the search must score from the matrix
    rng = np.random.default_rng(seed)
    dim, n = 32, 1200
    matrix = rng.standard_normal((n, dim)) * (rng.random((n, dim)) < density)
    spikes = rng.random(n) < peaked
    matrix[spikes, rng.integers(0, dim, int(spikes.sum()))] += 6.0
    matrix[:, 0] += 1e-3  # no zero row
    matrix = (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)
    block = _exact_on_probe(matrix)
    if not block:
        pytest.skip("this BLAS does not reproduce block re-scoring bit for bit")
    scale = column_scales(matrix[: n // 2])
    assert scale is not None
    codes = np.empty((dim, n), dtype=np.int8)
    error, outliers = quantize_into(codes, matrix, 0, n, scale)
    max_norm = float(np.linalg.norm(matrix, axis=1).max())
    index = InstanceIndex(
        version=1,
        matrix=matrix,
        cids=np.arange(1, n + 1, dtype=np.int64),
        item_pks=np.ones(n, dtype=np.int64),
    )
    index.cache["columns"] = Columns(codes, scale, error, max_norm, block, outliers)
    qvec = np.zeros(dim, dtype=np.float32)
    qvec[rng.choice(dim, nnz, replace=False)] = rng.standard_normal(nnz)
    qvec /= np.linalg.norm(qvec)
    _top_equals_full(index, qvec, k)


_TIE_WORDS = WORDS[:12]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("k", [5, 10, 50])
def test_rows_tied_at_the_kth_place_are_the_same_on_both_paths(seed, k):
    """Duplicate chunks embed to one vector: the pruned scan and the full product must pick
    the same rows among those tied at the k-th place (ties by the lower row)."""
    from aisearch_local.embed import HashingEmbedder
    from aisearch_local.records import InstanceIndex
    from aisearch_local.search import _pruned_vector
    from aisearch_local.vectors import top_k

    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(_TIE_WORDS, size=30)) for _ in range(3000)]
    dup = "espresso grind espresso grind crema"
    for pos in rng.choice(3000, size=3 * k, replace=False):  # 3k copies of one text
        texts[pos] = dup
    matrix = np.asarray(HashingEmbedder().embed(texts), dtype=np.float32)
    n = len(texts)
    idx = InstanceIndex(1, matrix, np.arange(1, n + 1, dtype=np.int64), np.ones(n, np.int64))
    qvec = np.asarray(HashingEmbedder().embed([dup])[0], dtype=np.float32)
    pruned = _pruned_vector(idx, qvec, k)
    assert pruned is not None  # the pruned path was taken
    full = top_k(np.arange(n), matrix @ qvec, k)
    assert pruned[0].tolist() == full[0].tolist()
    assert np.all(np.diff(full[0][full[1] == full[1][-1]]) > 0)  # the tied: lower rows first


@pytest.mark.parametrize("k", [1, 12, 32, 33, 96])
def test_approx_scores_equal_one_product_of_the_gathered_codes(k):
    # short queries copy the code rows one by one, long ones gather them at once: both give
    # the product of the float32 codes, block by block (the scratch buffer is reused)
    from aisearch_local.search import _STAGE1_FLOATS, _approx_scores

    rng = np.random.default_rng(k)
    n = _STAGE1_FLOATS // k + 1_001  # a full block and a short one
    codes = rng.integers(-127, 128, size=(384, n), dtype=np.int8)
    nz = np.sort(rng.choice(384, size=k, replace=False))
    weights = rng.standard_normal(k).astype(np.float32)
    got = _approx_scores(codes, nz, weights).copy()
    rows = min(32_768, _STAGE1_FLOATS // k)
    want = np.concatenate(
        [weights @ codes[nz, lo : lo + rows].astype(np.float32) for lo in range(0, n, rows)]
    )
    assert np.array_equal(got, want)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 700),
    share=st.floats(0.0, 1.0),
    block=st.sampled_from([4, 8, 16]),
)
def test_rescoring_multiplies_each_block_of_the_rows_once(seed, n, share, block):
    # rows close together share a block, rows far apart do not, runs of rows span blocks
    rng = np.random.default_rng(seed)
    matrix = rng.standard_normal((n, 48)).astype(np.float32)
    qvec = rng.standard_normal(48).astype(np.float32)
    rows = np.flatnonzero(rng.random(n) < share * share)
    blocks = np.unique(rows // block)  # the definition: every aligned block holding a row
    full = (blocks[:, None] * block + np.arange(block)).ravel()
    full = full[full < n]
    want = (matrix[full] @ qvec)[np.searchsorted(full, rows)]
    assert np.array_equal(_rescore(matrix, rows, qvec, block), want)
