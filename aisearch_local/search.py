"""The retrieval pipeline of the local AI Search server (API.md section 9).

For one instance: metadata filter -> up to 50 candidates from vector (numpy), keyword (BM25,
``and``/``or``: SQLite FTS5, or tantivy for large ``porter`` instances, see
:mod:`aisearch_local.keyword`) or both -> fusion (``rrf`` or ``max``) -> ``match_threshold`` on the
vector score -> ``boost_by`` -> reranking -> ``max_num_results`` -> ``context_expansion``.

Scores, as returned in ``scoring_details``:

* ``vector_score`` = ``(1 + cosine) / 2`` (0..1). Workers AI embedding models rarely score a
  pair below 0.4, so this keeps the documented default ``match_threshold`` of 0.4 meaningful
  for the local embedders, whose raw cosines are much lower.
* ``keyword_score`` = raw BM25, FTS5's or tantivy's (positive, higher is better).
* hybrid's vector side (a local stand-in for Cloudflare's embedding model, which finds a
  passage about a question without all its words; see :func:`blend_vector_side`): the
  embedder's top 50 and the top 50 of an FTS5 BM25 ``or`` query over the query's words, ranked
  by ``0.7 * bm25 / best bm25 + 0.3 * vector_score``; its top 50 get ``vector_rank``. The keyword
  side keeps ``keyword_match_mode`` exactly (``and`` is AND).
* ``rrf``: ``sum(1 / (60 + rank))`` over the two lists, divided by its maximum ``2 / 61``.
* ``max``: the higher of ``vector_score`` and ``keyword_score / best keyword_score``.
* boosting adds up to 0.15 per ``boost_by`` entry and renormalises to 0..1.
* reranking (a local approximation, see :func:`rerank_scores`) replaces
  the score by ``reranking_score``.
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Collection, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from aisearch_local.ann import AnnManager
from aisearch_local.embed import Embedder, HashingEmbedder
from aisearch_local.filters import Filter
from aisearch_local.keyword import fts_expression
from aisearch_local.nowait import WouldWait, hold, no_waiting
from aisearch_local.options import ResolvedOptions
from aisearch_local.records import ChunkRow, InstanceIndex, InstanceRecord
from aisearch_local.store import Store
from aisearch_local.text import KEYWORD_STOPWORDS, bm25_idf, bm25_tf, content_terms
from aisearch_local.vectors import Columns, column_scales, quantize_into, top_k

__all__ = [
    "CANDIDATES",
    "LEXICAL_MAX_TERMS",
    "LEXICAL_WEIGHT",
    "Searcher",
    "blend_vector_side",
    "fts_expression",
    "keyword_terms",
    "rerank_scores",
    "vector_candidates",
]

CANDIDATES = 50
RRF_K = 60
BOOST_WEIGHT = 0.15
LEXICAL_WEIGHT = 0.7
"""Weight of BM25 (``or``) in hybrid's local vector side; the embedder's ``vector_score`` gets
the rest. Tuned on BEIR SciFact train (``benchmarks/tune_defaults.py``, docs/local-server.md)."""
LEXICAL_MAX_TERMS = 64
"""Most query terms (the first distinct ones) in the vector side's ``or`` query: an FTS5 ``OR``
costs about 0.3 ms per term on 6,600 chunks, and a pasted document should not cost seconds."""

_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="aisearch-local-keyword")


class _InFlight:
    """How many searches are running (every :class:`Searcher` of the process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    @contextlib.contextmanager
    def running(self) -> Iterator[int]:
        """Count one search while the block runs; yield how many others were running."""
        with self._lock:
            others = self.count
            self.count += 1
        try:
            yield others
        finally:
            with self._lock:
                self.count -= 1


_SEARCHES = _InFlight()

CPU_SLOTS = 1
"""Searches computing at once in this process (the rest wait, asleep, for a slot).

A search is mostly Python under the GIL: sixteen of them at once only take turns at it, and
each hand-over costs more than it saves (16 clients on 100k chunks: 250 req/s with every
search thread computing, 460 with one; docs/request-path.md). The numpy and keyword-engine
parts of the computing search release the GIL, and the event loop uses that core meanwhile.
An upstream embedder's round trip happens before a search takes its slot.
"""
_CPU = threading.BoundedSemaphore(CPU_SLOTS)

INLINE_MAX_MS = 4.0
"""A search may run on the event loop when the recent searches of its kind on its instance
took less than this (ms; :meth:`Searcher.cheap`). A local choice, easy to change: the event
loop answers nothing else meanwhile, so this bounds what one search adds to the wait of every
other request of the process (health, admin, streams). 100k chunks, hashing embedder: a hybrid
search takes about 1.4 ms; 1M chunks about 8 ms, which stays on the search thread
(docs/request-path.md, "Searches on the event loop")."""

_Kind = tuple[int, str, bool, int, int]  # what a search cost estimate is kept by: Searcher._kind

INLINE_MAX_CHARS = 160
INLINE_MAX_WORDS = 16
"""The longest query (characters, whitespace-separated words) that may run on the event loop.

A search's cost grows with its query's terms (a 600-term query took 145 ms on 3,000 chunks,
one 3,500-character trigram term 103 ms), and the estimate of :data:`INLINE_MAX_MS` is kept
per instance, type and query size (:meth:`Searcher._kind`), so cheap short queries cannot make
a long one of the same instance look cheap. Longer queries run on the search thread. A local
choice, easy to change."""


# -- the pipeline ----------------------------------------------------------------------------


def keyword_terms(query: str, *, trigram: bool) -> list[str]:
    """Split a query into FTS5-safe terms (stopwords dropped unless nothing else is left)."""
    terms = [t for t in re.findall(r"\w+", query.lower()) if t]
    if trigram:
        terms = [t for t in terms if len(t) >= 3]
    content = [t for t in terms if t not in KEYWORD_STOPWORDS]
    chosen = content or terms
    seen: dict[str, None] = {}
    for t in chosen:
        seen.setdefault(t, None)
    return list(seen)


_BLOCKS = (4, 8, 16)  # rows re-scored together: multiples of the BLAS kernel's row grouping
_COLUMNS_LOCK = threading.Lock()
_EPS = float(np.finfo(np.float32).eps)


def _sparse_columns(idx: InstanceIndex) -> Columns | None:
    """Return the compact column copy of the matrix (:class:`~aisearch_local.vectors.Columns`).

    Built once per index, and only when re-scoring aligned row blocks reproduces the full
    product bit for bit on this BLAS (checked on a probe query), so the pruned path below
    returns exactly what the full product returns. None when not (yet) built.
    """
    if idx.table is not None:  # kept by the vector table, appended to on every write
        from_table: Columns | None = idx.table.columns(idx, _exact_on_probe)
        return from_table
    if "columns" in idx.cache:
        built: Columns | None = idx.cache["columns"]
        return built
    with _COLUMNS_LOCK:  # one build at a time: concurrent first queries share the copy
        if "columns" not in idx.cache:
            idx.cache["columns"] = _build_columns(idx.matrix)
        cached: Columns | None = idx.cache["columns"]
    return cached


def _exact_on_probe(matrix: np.ndarray) -> int:
    """The smallest row block whose re-scoring reproduces the full product on this BLAS, or 0."""
    n = matrix.shape[0]
    if n < 4 * _BLOCKS[-1]:
        return 0
    probe = np.random.default_rng(0).standard_normal((matrix.shape[1],), dtype=np.float32)
    full = matrix @ probe
    edge = _BLOCKS[-1]
    rows = np.unique(np.r_[0:edge, n - edge : n, np.linspace(0, n - 1, 64).astype(int)])
    for block in _BLOCKS:
        if np.array_equal(_rescore(matrix, rows, probe, block), full[rows]):
            return block
    return 0


def _build_columns(matrix: np.ndarray) -> Columns | None:
    block = _exact_on_probe(matrix)
    scale = column_scales(matrix) if block else None
    if scale is None:
        return None
    n = matrix.shape[0]
    codes = np.empty((matrix.shape[1], n), dtype=np.int8)
    error, outliers = quantize_into(codes, matrix, 0, n, scale)
    max_norm = float(np.sqrt(np.max(np.einsum("ij,ij->i", matrix, matrix))))
    return Columns(codes, scale, error, max_norm, block, outliers)


def _rescore(matrix: np.ndarray, rows: np.ndarray, qvec: np.ndarray, block: int) -> np.ndarray:
    """Exact similarities of ``rows`` (sorted, unique), computed in aligned row blocks.

    BLAS groups rows in fixed-size blocks with their own summation order; multiplying whole
    aligned blocks keeps that grouping, so each value equals ``(matrix @ qvec)[row]``.
    """
    n = matrix.shape[0]
    blocks = rows // block  # non-decreasing: each block once
    if len(blocks) > 1:
        blocks = blocks[np.r_[True, blocks[1:] != blocks[:-1]]]
    full_rows = (blocks[:, None] * block + np.arange(block)).ravel()
    full_rows = full_rows[full_rows < n]
    sims = matrix[full_rows] @ qvec
    out: np.ndarray = sims[np.searchsorted(full_rows, rows)]
    return out


_SCRATCH = threading.local()
_BLOCK_MAX = 64  # values per group in _within's first pass
_STAGE1_FLOATS = 1 << 19  # the int8 codes of a block of rows, as float32: 2 MiB per thread
_STAGE1_ROWS = 32_768  # rows per block (fewer for long queries)
_ROW_BY_ROW = 32  # query terms up to which the first stage copies the code rows one by one


def _scratch(n: int) -> tuple[np.ndarray, np.ndarray]:
    """A float32 buffer of ``n`` values and one of :data:`_STAGE1_FLOATS`, kept per thread."""
    bufs: tuple[np.ndarray, np.ndarray] | None = getattr(_SCRATCH, "bufs", None)
    if bufs is None or len(bufs[0]) < n:
        size = max(n, 1024) * 5 // 4  # room for appends
        bufs = (np.empty(size, dtype=np.float32), np.empty(_STAGE1_FLOATS, dtype=np.float32))
        _SCRATCH.bufs = bufs
    return bufs[0][:n], bufs[1]


def _approx_scores(codes: np.ndarray, nz: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``weights @ codes[nz]`` in float32 (a thread's scratch buffer: valid until its next call).

    Block by block: the query's code rows are gathered and cast to float32 (cache-sized; a
    short query's one row at a time, with no int8 copy in between), then one BLAS product per
    block (a third faster than a multiply and an add per column).
    """
    n = codes.shape[1]
    out, block = _scratch(n)
    k = len(nz)
    rows = min(_STAGE1_ROWS, _STAGE1_FLOATS // k)  # k <= dim / 4 <= 1024
    columns = nz.tolist() if k <= _ROW_BY_ROW else None
    for lo in range(0, n, rows):
        hi = min(lo + rows, n)
        part = block[: k * (hi - lo)].reshape(k, hi - lo)
        if columns is None:
            np.copyto(part, codes[nz, lo:hi])
        else:
            for j, col in enumerate(columns):
                part[j] = codes[col, lo:hi]
        np.matmul(weights, part, out=out[lo:hi])
    return out


def _within(values: np.ndarray, k: int, margin: float) -> np.ndarray:
    """The indices (ascending) of ``values`` at least ``kth - margin``, kth the k-th largest.

    Equal to ``np.flatnonzero(values >= np.partition(values, n - k)[n - k] - margin)``
    without partitioning or comparing all ``n`` values. The values are cut into groups of
    :data:`_BLOCK_MAX` (strided: group ``j`` holds ``j, j + g, j + 2g, ...``, so that the
    maxima are one element-wise pass); the k-th largest group maximum is at most the k-th
    largest value (k groups each hold a value at least as large), so only the groups whose
    maximum reaches it, less the margin, can hold an index wanted, and they hold the exact
    kth too.
    """
    n = len(values)
    groups = n // _BLOCK_MAX
    if groups > 4 * k:
        head = values[: groups * _BLOCK_MAX].reshape(_BLOCK_MAX, groups)
        maxima = np.maximum.reduce(head, axis=0)
        low = float(np.partition(maxima, groups - k)[groups - k]) - margin
        chosen = np.flatnonzero(maxima >= low)
        sub = head[:, chosen]
        pos, col = np.nonzero(sub >= low)  # row-major: ascending indices
        some = pos * groups + chosen[col]
        sub = sub[pos, col]
        if groups * _BLOCK_MAX < n:
            tail = groups * _BLOCK_MAX + np.flatnonzero(values[groups * _BLOCK_MAX :] >= low)
            some = np.concatenate([some, tail])
            sub = np.concatenate([sub, values[tail]])
        kth = float(np.partition(sub, len(some) - k)[len(some) - k])
        out: np.ndarray = some[sub >= kth - margin]
        return out
    kth = float(np.partition(values, n - k)[n - k])
    return np.flatnonzero(values >= kth - margin)


def _pruned_vector(
    idx: InstanceIndex, qvec: np.ndarray, k: int, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """Exact top ``k`` for a sparse query (lexical embedders), or None to use the full product.

    Only the matrix columns where the query is non-zero can contribute. Three stages, each
    keeping every row that can still be in the full product's top ``k``:

    1. The int8 column copy (:class:`~aisearch_local.vectors.Columns`) scores every row,
       reading a byte per row and query term. Its sum differs from the exact one by at most
       ``E = sum |q_j| error_j`` (the codes' rounding) plus the float32 rounding of ``len(nz)
       + 2`` operations; a float32 sum of ``dim`` products (BLAS's) differs from the exact one
       by at most ``b = dim * eps * |q| * max|row|``. Every row within ``2 E + 2 bound``
       (``bound = 4 b``) of the k-th best approximation is kept, and every outlier (a row
       appended with a value beyond its column's scale, whose codes mean nothing).
    2. Those rows' float32 products over the query's columns (a gather from the matrix), and
       every row within ``2 bound`` of the k-th best of them.
    3. Those rows re-scored with the BLAS kernel (:func:`_rescore`): the full product's values.

    Rows outside ``mask`` (default: the live rows) never compete.
    """
    nz = np.flatnonzero(qvec)
    n, dim = idx.matrix.shape
    if not 0 < len(nz) * 4 <= dim or n < 20 * k:
        return None
    cols = _sparse_columns(idx)
    if cols is None:
        return None
    q = qvec[nz]
    abs_q = np.abs(q).astype(np.float64)
    l1 = float(abs_q.sum())
    norm = math.sqrt(float(abs_q @ abs_q))  # |qvec| (its zeros add nothing), in float64
    bound = 4.0 * dim * _EPS * norm * cols.max_norm
    worst = cols.max_norm + float(cols.error[nz].max())
    quant = float(abs_q @ cols.error[nz]) + (len(nz) + 2) * _EPS * l1 * worst
    margin = 2.0 * quant + 2.0 * bound
    if not math.isfinite(margin):  # a damaged row: the full product drops it
        return None
    approx = _approx_scores(cols.codes, nz, q * cols.scale[nz])
    outliers = cols.outliers
    if len(outliers):  # scored in stage 2 only: they never set the k-th best approximation
        approx[outliers] = -np.inf
    if mask is None:
        mask = idx.alive
    if mask is not None and np.count_nonzero(mask) < n // 2:  # a filter: select among its rows
        kept = np.flatnonzero(mask)
        if len(kept) <= k:
            return top_k(kept, _rescore(idx.matrix, kept, qvec, cols.block), k)
        sub = approx[kept]
        kth = float(np.partition(sub, len(kept) - k)[len(kept) - k])
        rows = kept[sub >= kth - margin]
    else:
        if mask is not None:  # tombstoned rows never compete
            approx[~mask] = -np.inf
        rows = _within(approx, k, margin)
        if mask is not None:
            rows = rows[mask[rows]]
    if len(outliers):
        rows = np.union1d(rows, outliers if mask is None else outliers[mask[outliers]])
    if len(rows) > n // 8:
        return None
    if len(rows) > k:  # stage 2: float32 products over the query's columns
        exact32 = idx.matrix.take(rows, axis=0).take(nz, axis=1) @ q
        kth = float(np.partition(exact32, len(rows) - k)[len(rows) - k])
        rows = rows[exact32 >= kth - 2.0 * bound]
    return top_k(rows, _rescore(idx.matrix, rows, qvec, cols.block), k)


def blend_vector_side(
    vector_scores: Mapping[int, float],
    lexical: Sequence[tuple[int, float]],
    k: int = CANDIDATES,
    weight: float = LEXICAL_WEIGHT,
) -> list[int]:
    """Rank hybrid's local vector side: the best ``k`` chunk ids, best first.

    The local embedders are much weaker than Cloudflare's embedding models at finding a
    passage about a question that lacks some of its words; a BM25 ``or`` ranking finds those
    passages. So the vector side of a local hybrid search ranks the union of the embedder's
    candidates and the ``or`` candidates by ``weight * bm25 / best bm25 + (1 - weight) *
    vector_score`` (both 0..1; a chunk missing from ``lexical`` has bm25 0). Ties break on the
    lower id.

    Args:
        vector_scores: ``vector_score`` of every candidate (chunk id -> 0..1), ``lexical``'s
            included.
        lexical: ``(chunk id, bm25)`` of the ``or`` query, best first (bm25 positive).
        k: How many to keep.
        weight: The weight of BM25.

    Returns:
        The chunk ids, best first, at most ``k``.
    """
    bm25 = dict(lexical)
    best = max(bm25.values(), default=0.0) or 1.0
    blended = {
        cid: weight * bm25.get(cid, 0.0) / best + (1.0 - weight) * score
        for cid, score in vector_scores.items()
    }
    return [cid for _, cid in sorted((-score, cid) for cid, score in blended.items())[:k]]


def vector_candidates(
    idx: InstanceIndex, qvec: np.ndarray, allowed: np.ndarray | None, k: int = CANDIDATES
) -> tuple[np.ndarray, np.ndarray]:
    """Return the exact top ``k`` (matrix rows, cosine similarities), best first.

    Brute force over the whole matrix; a sparse query (lexical embedders) reads only its
    non-zero columns first (see :func:`_pruned_vector`); else, with a filter that keeps at
    most a fifth of the rows, only the allowed rows are scored. Tombstoned rows
    (``idx.alive``) are never returned.
    """
    n = len(idx.cids)
    if allowed is not None and idx.alive is not None:
        allowed = allowed & idx.alive
    pruned = _pruned_vector(idx, qvec, k, allowed)
    if pruned is not None:
        return pruned
    if allowed is not None:
        kept = np.flatnonzero(allowed)
        if len(kept) <= n // 5:
            return top_k(kept, idx.matrix[kept] @ qvec, k)
    sims = idx.matrix @ qvec
    mask = allowed if allowed is not None else idx.alive
    if mask is not None:
        sims = np.where(mask, sims, -np.inf)
    return top_k(np.arange(n), sims, k)


@dataclass(slots=True)
class _Candidate:
    row: int
    cid: int
    item_pk: int
    vector_score: float | None = None
    vector_rank: int | None = None
    keyword_score: float | None = None
    keyword_rank: int | None = None
    score: float = 0.0
    reranking_score: float | None = None
    boost: float = 0.0


def _fuse(cands: Collection[_Candidate], opts: ResolvedOptions) -> None:
    """Set each candidate's ``score`` (see the module docstring)."""
    if opts.retrieval_type == "vector":
        for cand in cands:
            cand.score = cand.vector_score or 0.0
        return
    best_kw = max((c.keyword_score or 0.0 for c in cands), default=0.0) or 1.0
    if opts.retrieval_type == "keyword":
        for cand in cands:
            cand.score = (cand.keyword_score or 0.0) / best_kw
    elif opts.fusion_method == "max":
        for cand in cands:
            cand.score = max(cand.vector_score or 0.0, (cand.keyword_score or 0.0) / best_kw)
    else:
        top = 2.0 / (RRF_K + 1)
        for cand in cands:
            rrf = 0.0
            if cand.vector_rank:
                rrf += 1.0 / (RRF_K + cand.vector_rank)
            if cand.keyword_rank:
                rrf += 1.0 / (RRF_K + cand.keyword_rank)
            cand.score = rrf / top


@dataclass(frozen=True, slots=True)
class _Hits:
    """Keyword hits, best first: chunk ids, BM25 scores (float64) and matrix rows, aligned."""

    cids: np.ndarray
    scores: np.ndarray
    rows: np.ndarray


_NO_HITS = _Hits(np.zeros(0, np.int64), np.zeros(0, np.float64), np.zeros(0, np.int64))


class _Ranking:
    """Fused candidates, best first (ties: lower id), as arrays; objects made on demand.

    ``ints`` holds the rows ``cid, row, vector_rank, keyword_rank`` (rank 0: none), ``floats``
    ``vector_score, keyword_score, score``, one column per candidate.
    """

    __slots__ = ("floats", "has_vector", "ints", "item_pks")

    def __init__(
        self, ints: np.ndarray, floats: np.ndarray, item_pks: np.ndarray, has_vector: bool
    ) -> None:
        self.ints = ints
        self.floats = floats
        self.item_pks = item_pks
        self.has_vector = has_vector

    def __len__(self) -> int:
        return int(self.ints.shape[1])

    def candidates(self, limit: int | None = None) -> list[_Candidate]:
        """The first ``limit`` (default: all) as :class:`_Candidate` objects."""
        cids, rows, vranks, kranks = self.ints[:, :limit].tolist()
        vscores, kscores, scores = self.floats[:, :limit].tolist()
        pks = self.item_pks[rows].tolist()
        has_v = self.has_vector
        return [
            _Candidate(
                row, cid, pk, vs if has_v else None, vr or None, ks if kr else None, kr or None, sc
            )
            for cid, row, pk, vs, vr, ks, kr, sc in zip(
                cids, rows, pks, vscores, vranks, kscores, kranks, scores, strict=True
            )
        ]


def _ranked(
    idx: InstanceIndex,
    qvec: np.ndarray | None,
    vector: tuple[np.ndarray, np.ndarray] | None,
    hits: _Hits | None,
    lexical: _Hits | None,
    opts: ResolvedOptions,
) -> _Ranking:
    """The candidates of both sides, fused, past ``match_threshold``, best first (ties: lower id).

    What :func:`blend_vector_side` and :func:`_fuse` compute over :class:`_Candidate` objects,
    computed over arrays (the same float64 operations, so the same values), a few operations
    per search instead of a few per candidate: ``vector`` is the vector side's ``(rows,
    similarities)``, best first; ``hits`` the keyword side's; ``lexical`` hybrid's ``or`` hits
    (its vector side is the blend of the two). A candidate whose vector score is not a number
    (only a damaged row's) ranks last in the blend.
    """
    vcids = idx.cids[vector[0]] if vector is not None else _NO_HITS.cids
    if hits is None or vector is None:  # one side: its ids are the candidates', once each
        one = hits if vector is None else _Hits(vcids, vector[1], vector[0])
        assert one is not None
        n = len(one.cids)
        ints = np.empty((4, n), dtype=np.int64)
        floats = np.zeros((3, n))
        ints[0], ints[1] = one.cids, one.rows
        ranks = np.arange(1, n + 1)
        if vector is None:
            ints[2], ints[3] = 0, ranks
            floats[1] = one.scores
        else:
            ints[2], ints[3] = ranks, 0
            # (1 + sim) / 2 in the dtype of the similarities (float32), as per element
            floats[0] = (1.0 + vector[1]) / 2.0
    else:
        parts = [hits] if lexical is None or lexical is hits else [hits, lexical]
        every = np.concatenate([vcids, *(h.cids for h in parts)])
        order = every.argsort(kind="stable")
        every = every[order]
        first = np.ones(len(every), dtype=bool)
        np.not_equal(every[1:], every[:-1], out=first[1:])  # one candidate per chunk id
        cids = every[first]
        n = len(cids)
        # cid, row, vector_rank, keyword_rank / vector_score, keyword_score, score
        ints = np.zeros((4, n), dtype=np.int64)
        floats = np.zeros((3, n))
        ints[0] = cids
        ints[1] = np.concatenate([vector[0], *(h.rows for h in parts)])[order[first]]
        pos = cids.searchsorted(vcids)
        floats[0, pos] = (1.0 + vector[1]) / 2.0  # as above
        ints[2, pos] = np.arange(1, len(pos) + 1)
        pos = cids.searchsorted(hits.cids)
        floats[1, pos] = hits.scores
        ints[3, pos] = np.arange(1, len(pos) + 1)
    if lexical is not None and n:  # hybrid: its vector side is the blend (see blend_vector_side)
        assert qvec is not None
        missing = ints[2] == 0
        if missing.any():  # a keyword-only candidate: BLAS ``sdot`` per row, as ``ndarray.dot``
            extra = idx.matrix[ints[1, missing]]
            dots = np.matmul(extra[:, None, :], qvec[:, None])[:, 0, 0]
            floats[0, missing] = (1.0 + dots.astype(np.float64)) / 2.0
        bm25 = np.zeros(n)
        bm25[ints[0].searchsorted(lexical.cids)] = lexical.scores
        best = float(lexical.scores.max()) if len(lexical.scores) else 0.0
        blended = LEXICAL_WEIGHT * bm25 / (best or 1.0) + (1.0 - LEXICAL_WEIGHT) * floats[0]
        key = np.negative(blended, out=blended)
        key[np.isnan(key)] = np.inf
        top = np.lexsort((ints[0], key))[:CANDIDATES]
        ints[2] = 0
        ints[2, top] = np.arange(1, len(top) + 1)
        keep = (ints[2] > 0) | (ints[3] > 0)
        ints, floats = ints[:, keep], floats[:, keep]
    kind = opts.retrieval_type
    vscore, kscore, score = floats
    if kind == "vector":
        score[:] = vscore
    else:
        best_kw = float(kscore.max()) if len(kscore) else 0.0
        by_kw = kscore / (best_kw or 1.0)
        if kind == "keyword":
            score[:] = by_kw
        elif opts.fusion_method == "max":  # Python's max(a, b): b only when b > a
            np.copyto(score, np.where(by_kw > vscore, by_kw, vscore))
        else:
            vrank, krank = ints[2:]
            rrf = np.where(vrank > 0, 1.0 / (RRF_K + vrank), 0.0)
            rrf += np.where(krank > 0, 1.0 / (RRF_K + krank), 0.0)
            np.divide(rrf, 2.0 / (RRF_K + 1), out=score)
    if kind != "keyword":
        passed = vscore >= opts.match_threshold
        if not passed.all():
            ints, floats = ints[:, passed], floats[:, passed]
    order = np.lexsort((ints[0], -floats[2]))
    return _Ranking(ints[:, order], floats[:, order], idx.item_pks, kind != "keyword")


class Searcher:
    """Runs the retrieval pipeline over a :class:`Store` with one embedder.

    Args:
        store: The storage.
        embedder: The embedder (its ``name`` must match the instance's).
        ann: The HNSW graphs and when to use them (None: always exact).
    """

    def __init__(self, store: Store, embedder: Embedder, ann: AnnManager | None = None) -> None:
        self.store = store
        self.embedder = embedder
        self.ann = ann
        # the hashing embedder's sparse vectors keep their exact pruned scan (_pruned_vector)
        self.dense = not isinstance(embedder, HashingEmbedder)
        self._qcache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._qlock = threading.Lock()
        # a moving estimate of recent searches' time (seconds), by instance, retrieval type
        # and whether a filter applies (:meth:`cheap`); races between threads lose a sample
        self._costs: dict[_Kind, float] = {}

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one query (small LRU cache)."""
        with self._qlock:
            hit = self._qcache.get(text)
            if hit is not None:
                self._qcache.move_to_end(text)
                return hit
        vec: np.ndarray = np.asarray(self.embedder.embed([text]), dtype=np.float32)[0]
        with self._qlock:
            self._qcache[text] = vec
            if len(self._qcache) > 256:
                self._qcache.popitem(last=False)
        return vec

    @staticmethod
    def _kind(inst: InstanceRecord, opts: ResolvedOptions, query: str) -> _Kind:
        """What a search's cost estimate is kept by: instance, type, filtered, query size.

        The query's size as the bit lengths of its word and character counts (0, 1, 2-3,
        4-7, ...): a longer query has its own estimate.
        """
        filtered = opts.predicate is not None and not opts.predicate.matches_all
        size = min(len(query), INLINE_MAX_CHARS + 1)
        words = len(query.split()) if size <= INLINE_MAX_CHARS else INLINE_MAX_WORDS + 1
        return inst.pk, opts.retrieval_type, filtered, words.bit_length(), size.bit_length()

    def _note(self, kind: _Kind, seconds: float) -> None:
        """Take one search's CPU time into the estimate (a moving average).

        CPU time, not wall time: on a shared machine another process's turn would count
        (measured: single searches of 10-40 ms wall among 1.2-1.5 ms ones on 100k chunks).
        Up by a quarter of the difference, down by half: one slow search (the first one of an
        instance loads its indexes: 38 ms on 100k chunks) keeps the next few off the event loop.
        """
        old = self._costs.get(kind)
        if old is None:
            self._costs[kind] = seconds
        else:
            self._costs[kind] = old + (seconds - old) / (4 if seconds > old else 2)

    def cheap(self, inst: InstanceRecord, opts: ResolvedOptions, query: str) -> bool:
        """Whether this search may run on the event loop (:meth:`search` ``inline``).

        When the recent searches of its kind (:meth:`_kind`) took less than
        :data:`INLINE_MAX_MS` (none yet: not cheap), its query is short
        (:data:`INLINE_MAX_CHARS`, :data:`INLINE_MAX_WORDS`), and it has no reranking (a
        model).
        """
        if opts.reranking or len(query) > INLINE_MAX_CHARS:
            return False
        if len(query.split()) > INLINE_MAX_WORDS:
            return False
        cost = self._costs.get(self._kind(inst, opts, query))
        return cost is not None and cost * 1000 < INLINE_MAX_MS

    def search(
        self,
        inst: InstanceRecord,
        query: str,
        opts: ResolvedOptions,
        *,
        heavy: bool = False,
        inline: bool = False,
    ) -> list[dict[str, Any]]:
        """Return the chunks for ``query`` on ``inst``, best first, in the wire format.

        ``heavy``: a search that may take long (a huge query or filter) computes without
        waiting for a CPU slot, taking turns at the GIL with the others instead of holding
        them all up (:data:`CPU_SLOTS`).

        ``inline``: the caller is the event loop, which must never wait. The search runs only
        when it is :meth:`cheap`, the CPU slot is free, and nothing on its way waits (a lock
        held, an index to load or build, an HNSW graph: :mod:`aisearch_local.nowait`);
        otherwise it raises :class:`~aisearch_local.nowait.WouldWait`, and the caller runs it
        on a search thread.
        """
        kind = self._kind(inst, opts, query)
        if inline:
            if not self.cheap(inst, opts, query):
                raise WouldWait("not known to be cheap")
            if not _CPU.acquire(blocking=False):
                raise WouldWait("another search computes")
            try:
                with _SEARCHES.running(), no_waiting():
                    start = time.thread_time()
                    idx = self.store.index(inst)
                    if self.ann is not None and self.ann.applies(idx.live_count, dense=self.dense):
                        raise WouldWait("an HNSW graph is searched on a thread")
                    qvec: np.ndarray | None = None
                    if opts.retrieval_type != "keyword" and query.strip() and idx.live_count:
                        qvec = self.embed_query(query)
                    found = self._search(inst, query, opts, qvec, side_by_side=False)
                    self._note(kind, time.thread_time() - start)
                    return found
            finally:
                _CPU.release()
        # the query's vector first: an upstream embedder is a network round trip, not CPU;
        # none for an empty instance (nothing to compare with; an upstream's trip is paid)
        qvec = None
        if opts.retrieval_type != "keyword" and query.strip() and self.store.index(inst).live_count:
            qvec = self.embed_query(query)
        with _SEARCHES.running() as others, contextlib.nullcontext() if heavy else _CPU:
            start = time.thread_time()  # this thread's CPU: its waits for the GIL excluded
            found = self._search(inst, query, opts, qvec, side_by_side=others == 0)
            if not heavy:  # a heavy search never runs inline: it says nothing of the others
                self._note(kind, time.thread_time() - start)
            return found

    def _search(
        self,
        inst: InstanceRecord,
        query: str,
        opts: ResolvedOptions,
        qvec: np.ndarray | None,
        *,
        side_by_side: bool,
    ) -> list[dict[str, Any]]:
        """:meth:`search`; ``side_by_side``: hybrid's keyword queries may run on another thread.

        That thread hop pays when this search has the cores to itself and FTS5 answers them
        (FTS5 and the numpy product both release the GIL, so the two halves overlap); when
        other searches run, they keep the cores busy, and the hop is only a cost (a thread
        handoff is tens of microseconds under load, twice per search). tantivy's query is
        short and its Python around it holds the GIL: the hop never pays (100k chunks, alone:
        1,190 us with it, 1,125 without; docs/request-path.md). The result is the same either
        way.
        """
        idx = self.store.index(inst)
        if idx.live_count == 0 or not query.strip():
            return []
        allowed: np.ndarray | None = None
        if opts.predicate is not None and not opts.predicate.matches_all:
            allowed = self.filter_rows(inst, idx, opts.predicate)
            if not allowed.any():
                return []
        use_vector = opts.retrieval_type in ("vector", "hybrid")
        use_keyword = opts.retrieval_type in ("keyword", "hybrid")
        mode = opts.keyword_match_mode
        keyword_hits: Future[_Hits] | None = None
        lexical_hits: Future[_Hits] | None = None
        if use_keyword and use_vector and side_by_side and self._fts5_answers(inst, idx):
            # FTS5 (sqlite3) and the numpy product both release the GIL: run them side by side
            keyword_hits = _POOL.submit(self._keyword, inst, idx, query, mode, allowed)
            if mode != "or":  # the vector side's lexical half (see blend_vector_side)
                lexical_hits = _POOL.submit(
                    self._keyword, inst, idx, query, "or", allowed, LEXICAL_MAX_TERMS
                )
        vector: tuple[np.ndarray, np.ndarray] | None = None
        if use_vector:
            if qvec is None:  # the instance had no chunk a moment ago, in search()
                qvec = self.embed_query(query)
            vector = self._vector(inst, idx, qvec, allowed)
        hits: _Hits | None = None
        if use_keyword:
            hits = (
                keyword_hits.result()
                if keyword_hits is not None
                else self._keyword(inst, idx, query, mode, allowed)
            )
        lexical: _Hits | None = None
        if opts.retrieval_type == "hybrid":
            if lexical_hits is not None:
                lexical = lexical_hits.result()
            elif mode != "or":  # the vector side's lexical half (see blend_vector_side)
                lexical = self._keyword(inst, idx, query, "or", allowed, LEXICAL_MAX_TERMS)
            else:
                lexical = hits
        ranking = _ranked(idx, qvec, vector, hits, lexical, opts)
        if not len(ranking):
            return []
        if opts.boost_by or opts.reranking:
            ranked = ranking.candidates()
            items = self.store.items_by_pk({c.item_pk for c in ranked})
            ranked = [c for c in ranked if c.item_pk in items]  # an item deleted meanwhile
            if opts.boost_by:
                self._boost(ranked, items, opts.boost_by)
            ranked.sort(key=lambda c: (-c.score, c.cid))
            chunks_by_cid = self.store.chunks_by_cid([c.cid for c in ranked])
            # a write committed since the index was read may have deleted some rows: skip them
            ranked = [c for c in ranked if c.cid in chunks_by_cid]
        else:  # the order needs no item: read item and text for the returned rows only
            n = opts.max_num_results
            ranked, chunks_by_cid, items = self._with_rows(ranking.candidates(n), n)
            if len(ranked) < n < len(ranking):  # a chunk deleted since the index was read
                ranked, chunks_by_cid, items = self._with_rows(ranking.candidates(), n)
        if opts.reranking and ranked:
            texts = [chunks_by_cid[c.cid].text for c in ranked]
            for cand, rs in zip(ranked, rerank_scores(query, texts), strict=True):
                cand.reranking_score = float(rs)
                cand.score = float(rs)
            ranked = [c for c in ranked if (c.reranking_score or 0.0) >= opts.reranking_threshold]
            ranked.sort(key=lambda c: (-c.score, c.cid))
        ranked = ranked[: opts.max_num_results]
        return [self._to_wire(c, chunks_by_cid[c.cid], items, opts) for c in ranked]

    def _fts5_answers(self, inst: InstanceRecord, idx: InstanceIndex) -> bool:
        """Whether FTS5 answers the instance's keyword queries (not the tantivy engine)."""
        store = self.store
        return store.uses_fts5(inst) or not store.keywords.wants(inst.pk, idx.live_count)

    def _with_rows(
        self, ranked: list[_Candidate], n: int
    ) -> tuple[list[_Candidate], dict[int, ChunkRow], dict[int, dict[str, Any]]]:
        """The first ``n`` of ``ranked`` whose chunk and item still exist, with their rows.

        Reads the chunk and item rows of the returned candidates only, in one query (a batch
        more when some chunk or item was deleted meanwhile): the same result as filtering every
        candidate first.
        """
        chunks: dict[int, ChunkRow] = {}
        items: dict[int, dict[str, Any]] = {}
        kept: list[_Candidate] = []
        pos = 0
        while len(kept) < n and pos < len(ranked):
            batch = ranked[pos : pos + n - len(kept)]
            pos += len(batch)
            found, their_items = self.store.result_rows([c.cid for c in batch])
            chunks.update(found)
            items.update(their_items)
            kept.extend(c for c in batch if c.cid in found)
        return kept, chunks, items

    def filter_rows(self, inst: InstanceRecord, idx: InstanceIndex, flt: Filter) -> np.ndarray:
        """The live rows of ``idx`` whose item ``flt`` keeps: one numpy mask, no per-row work.

        The filter is evaluated over the instance's columnar item attributes
        (:meth:`Store.item_attributes_table`), then gathered over the rows' item keys.
        """
        table = self.store.item_attributes_table(inst, idx)
        lock = hold(idx.table.lock) if idx.table is not None else contextlib.nullcontext()
        with lock:
            item_mask = flt.mask(table)
        pks = idx.item_pks
        if len(item_mask) == 0:
            return np.zeros(len(pks), dtype=bool)
        allowed: np.ndarray = np.take(item_mask, pks, mode="clip") & (pks < len(item_mask))
        if idx.alive is not None:
            allowed &= idx.alive
        return allowed

    def _vector(
        self,
        inst: InstanceRecord,
        idx: InstanceIndex,
        qvec: np.ndarray,
        allowed: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The vector candidates: through the instance's HNSW graph when it pays, else exact."""
        if self.ann is not None and self.ann.applies(idx.live_count, dense=self.dense):
            found = self.ann.candidates(inst, idx, qvec, CANDIDATES, allowed)
            if found is not None:
                return found
        return vector_candidates(idx, qvec, allowed)

    def _keyword(
        self,
        inst: InstanceRecord,
        idx: InstanceIndex,
        query: str,
        mode: str,
        allowed: np.ndarray | None,
        max_terms: int | None = None,
    ) -> _Hits:
        """The keyword hits (live rows in ``allowed``), best first, at most :data:`CANDIDATES`."""
        trigram = (inst.config.get("indexing_options") or {}).get("keyword_tokenizer") == "trigram"
        terms = keyword_terms(query, trigram=trigram)[:max_terms]
        if not terms:
            return _NO_HITS
        limit = CANDIDATES
        if allowed is not None:  # enough hits for CANDIDATES to pass the filter, usually
            share = max(float(np.count_nonzero(allowed)) / max(len(allowed), 1), 1e-6)
            limit = min(max(CANDIDATES * 10, int(2 * CANDIDATES / share)), 1_000_000)
        while True:
            found = self.store.keyword_hits(inst, terms, mode, limit, idx.live_count)
            rows = idx.rows_of([cid for cid, _ in found]).tolist()
            kept = [
                (cid, bm25, row)
                for (cid, bm25), row in zip(found, rows, strict=True)
                if row >= 0 and (allowed is None or allowed[row])
            ][:CANDIDATES]
            if len(kept) == CANDIDATES or len(found) < limit or limit >= 1_000_000:
                if not kept:
                    return _NO_HITS
                cids, scores, at = zip(*kept, strict=True)
                return _Hits(
                    np.array(cids, dtype=np.int64),
                    np.array(scores, dtype=np.float64),
                    np.array(at, dtype=np.int64),
                )
            limit *= 10

    @staticmethod
    def _boost(
        ranked: list[_Candidate],
        items: Mapping[int, dict[str, Any]],
        boost_by: list[dict[str, str]],
    ) -> None:
        for spec in boost_by:
            name, direction = spec["field"], spec["direction"]
            values = {c.cid: items[c.item_pk]["attrs"].get(name) for c in ranked}
            if direction in ("exists", "not_exists"):
                for c in ranked:
                    present = values[c.cid] is not None
                    if present == (direction == "exists"):
                        c.boost += BOOST_WEIGHT
                continue
            nums = {
                cid: float(v)
                for cid, v in values.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)
            }
            if not nums:
                continue
            lo, hi = min(nums.values()), max(nums.values())
            span = hi - lo
            for c in ranked:
                if c.cid not in nums:
                    continue
                frac = 1.0 if span == 0 else (nums[c.cid] - lo) / span
                c.boost += BOOST_WEIGHT * (frac if direction == "desc" else 1.0 - frac)
        total = 1.0 + BOOST_WEIGHT * len(boost_by)
        for c in ranked:
            c.score = (c.score + c.boost) / total

    def _to_wire(
        self,
        cand: _Candidate,
        chunk: Any,
        items: Mapping[int, dict[str, Any]],
        opts: ResolvedOptions,
    ) -> dict[str, Any]:
        item = items[cand.item_pk]
        text = chunk.text
        if opts.context_expansion and not opts.metadata_only:
            text = self._expand(chunk, opts.context_expansion)
        details: dict[str, Any] = {}
        if cand.vector_score is not None:
            details["vector_score"] = round(cand.vector_score, 6)
            if cand.vector_rank is not None:
                details["vector_rank"] = cand.vector_rank
        if opts.retrieval_type in ("keyword", "hybrid"):
            details["keyword_score"] = round(cand.keyword_score or 0.0, 6)
            if cand.keyword_rank is not None:
                details["keyword_rank"] = cand.keyword_rank
        if opts.retrieval_type == "hybrid":
            details["fusion_method"] = opts.fusion_method
        if cand.boost:
            details["boost"] = round(cand.boost, 6)
        if cand.reranking_score is not None:
            details["reranking_score"] = round(cand.reranking_score, 6)
        out: dict[str, Any] = {
            "id": chunk.id,
            "type": "text",
            "score": round(min(max(cand.score, 0.0), 1.0), 6),
            "text": "" if opts.metadata_only else text,
            "item": {
                "key": item["key"],
                "timestamp": item["timestamp"],
                "metadata": item["metadata"],
            },
            "scoring_details": details,
        }
        return out

    def _expand(self, chunk: Any, n: int) -> str:
        rows = self.store.neighbours(chunk.item_pk, chunk.seq - n, chunk.seq + n)
        parts: list[str] = []
        prev_end: int | None = None
        for r in rows:
            text = r.text
            if prev_end is not None and r.start_byte < prev_end:
                # spans are character offsets in the extracted text: drop the overlap
                overlap = prev_end - r.start_byte
                if len(text) == r.end_byte - r.start_byte and overlap < len(text):
                    text = text[overlap:]
                parts.append(text)
            else:
                if parts:
                    parts.append("\n")
                parts.append(text)
            prev_end = r.end_byte
        return "".join(parts)


# -- reranking (local approximation) ----------------------------------------------------------


def _min_window(positions: dict[str, list[int]]) -> int:
    """Length of the smallest token window holding one occurrence of every key."""
    events = sorted((p, t) for t, ps in positions.items() for p in ps)
    need = len(positions)
    have: Counter[str] = Counter()
    best = math.inf
    left = 0
    covered = 0
    for pos, term in events:
        if have[term] == 0:
            covered += 1
        have[term] += 1
        while covered == need:
            best = min(best, pos - events[left][0] + 1)
            lterm = events[left][1]
            have[lterm] -= 1
            if have[lterm] == 0:
                covered -= 1
            left += 1
    return int(best) if best != math.inf else 0


def rerank_scores(query: str, texts: Sequence[str]) -> list[float]:
    """Relevance of each text to the query in 0..1 (a local cross-encoder approximation).

    Deterministic and lexical, over stemmed content words:

    * ``coverage``: share of the query's distinct terms present in the text (weight 0.5);
    * ``bm25``: BM25 (k1=1.2, b=0.75, IDF over ``texts``) squashed with ``s / (s + 2)``
      (weight 0.3);
    * ``proximity``: ``matched / smallest window holding all matched terms`` (weight 0.2;
      1.0 for a single matched term).

    A text with no query term scores 0.0; an empty query gives 0.0 for every text.

    Args:
        query: The search query.
        texts: Candidate texts.

    Returns:
        One score per text, in the same order.
    """
    q_terms = list(dict.fromkeys(content_terms(query)))
    if not texts:
        return []
    if not q_terms:
        return [0.0] * len(texts)
    docs = [content_terms(t) for t in texts]
    n = len(docs)
    avg_len = (sum(len(d) for d in docs) / n) or 1.0
    df = Counter(t for d in docs for t in set(d) & set(q_terms))
    scores: list[float] = []
    for doc in docs:
        tf = Counter(doc)
        matched = [t for t in q_terms if tf[t]]
        if not matched:
            scores.append(0.0)
            continue
        coverage = len(matched) / len(q_terms)
        bm25 = 0.0
        for t in matched:
            bm25 += bm25_idf(n, df[t]) * bm25_tf(tf[t], len(doc), avg_len, 1.2, 0.75)
        bm25_norm = bm25 / (bm25 + 2.0)
        if len(matched) == 1:
            proximity = 1.0
        else:
            positions: dict[str, list[int]] = {t: [] for t in matched}
            for i, t in enumerate(doc):
                if t in positions:
                    positions[t].append(i)
            proximity = len(matched) / max(_min_window(positions), len(matched))
        score = 0.5 * coverage + 0.3 * bm25_norm + 0.2 * proximity
        scores.append(round(min(1.0, max(0.0, score)), 6))
    return scores
