"""The retrieval pipeline of the local AI Search server (API.md section 9).

For one instance: metadata filter -> up to 50 candidates from vector (numpy), keyword (SQLite
FTS5 BM25, ``and``/``or``) or both -> fusion (``rrf`` or ``max``) -> ``match_threshold`` on the
vector score -> ``boost_by`` -> reranking -> ``max_num_results`` -> ``context_expansion``.

Scores, as returned in ``scoring_details``:

* ``vector_score`` = ``(1 + cosine) / 2`` (0..1). Workers AI embedding models rarely score a
  pair below 0.4, so this keeps the documented default ``match_threshold`` of 0.4 meaningful
  for the local embedders, whose raw cosines are much lower.
* ``keyword_score`` = raw FTS5 BM25 (positive, higher is better).
* ``rrf``: ``sum(1 / (60 + rank))`` over the two lists, divided by its maximum ``2 / 61``.
* ``max``: the higher of ``vector_score`` and ``keyword_score / best keyword_score``.
* boosting adds up to 0.15 per ``boost_by`` entry and renormalises to 0..1.
* reranking (a local approximation, see :func:`aisearch_local.generate.rerank_scores`) replaces
  the score by ``reranking_score``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aisearch_local.embed import Embedder
from aisearch_local.filters import FilterError, Predicate, compile_filter
from aisearch_local.store import InstanceIndex, InstanceRecord, Store

__all__ = [
    "CANDIDATES",
    "ChatCache",
    "OptionsError",
    "ResolvedOptions",
    "Searcher",
    "message_text",
    "query_from_messages",
    "resolve_options",
]

CANDIDATES = 50
RRF_K = 60
BOOST_WEIGHT = 0.15
ROLES = ("system", "developer", "user", "assistant", "tool")
CACHE_THRESHOLDS = {
    "super_strict_match": 1.0,
    "close_enough": 0.8,
    "flexible_friend": 0.6,
    "anything_goes": 0.4,
}
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "how",
        "i",
        "in",
        "is",
        "it",
        "me",
        "my",
        "of",
        "on",
        "or",
        "should",
        "so",
        "that",
        "the",
        "their",
        "this",
        "to",
        "was",
        "we",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
        # contraction tails: what's -> what, s
        "s",
        "t",
        "d",
        "ll",
        "re",
        "ve",
        "m",
    ]
)


_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="aisearch-local-keyword")


class OptionsError(ValueError):
    """A request field outside its allowed values; ``field`` is its JSON path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


# -- option resolution -----------------------------------------------------------------------


@dataclass
class ResolvedOptions:
    """``ai_search_options`` merged with the instance defaults and validated."""

    retrieval_type: str = "hybrid"
    match_threshold: float = 0.4
    max_num_results: int = 10
    filters: Any = None
    context_expansion: int = 0
    fusion_method: str = "rrf"
    keyword_match_mode: str = "and"
    boost_by: list[dict[str, str]] = field(default_factory=list)
    metadata_only: bool = False
    return_on_failure: bool = True
    rewrite: bool = False
    reranking: bool = False
    reranking_threshold: float = 0.4
    cache: bool = False
    cache_threshold: str = "close_enough"
    predicate: Predicate | None = None

    def cache_key(self) -> str:
        """Return a JSON string of every option that changes the result."""
        skip = ("predicate", "cache", "cache_threshold")
        data = {k: v for k, v in self.__dict__.items() if k not in skip}
        return json.dumps(data, sort_keys=True, default=str)


def _obj(raw: Any, path: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise OptionsError(path, f"must be an object (got {type(raw).__name__})")
    return raw


def _number(value: Any, path: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise OptionsError(path, f"must be a number between {lo:g} and {hi:g} (got {value!r})")
    return float(value)


def _integer(value: Any, path: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise OptionsError(path, f"must be an integer between {lo} and {hi} (got {value!r})")
    return value


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise OptionsError(path, f"must be a boolean (got {value!r})")
    return value


def _enum(value: Any, path: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise OptionsError(path, f"must be one of {', '.join(allowed)} (got {value!r})")
    return str(value)


def _index_method(config: Mapping[str, Any]) -> tuple[bool, bool]:
    im = config.get("index_method") or {}
    return bool(im.get("vector", True)), bool(im.get("keyword", True))


def field_types(config: Mapping[str, Any]) -> dict[str, str]:
    """Return the declared custom metadata field types (lowercase names) plus ``timestamp``."""
    out = {"timestamp": "datetime"}
    for entry in config.get("custom_metadata") or []:
        if isinstance(entry, dict) and isinstance(entry.get("field_name"), str):
            out[entry["field_name"].lower()] = str(entry.get("data_type", "text"))
    return out


def _boost_by(raw: Any, path: str, types: Mapping[str, str]) -> list[dict[str, str]]:
    if not isinstance(raw, list):
        raise OptionsError(path, "must be a list of {field, direction} objects")
    if len(raw) > 3:
        raise OptionsError(path, f"must have at most 3 entries (got {len(raw)})")
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    for i, entry in enumerate(raw):
        epath = f"{path}[{i}]"
        entry = _obj(entry, epath)
        name = entry.get("field")
        if not isinstance(name, str) or not 1 <= len(name) <= 64:
            raise OptionsError(f"{epath}.field", "must be a string of 1 to 64 characters")
        key = name.lower()
        if key in seen:
            raise OptionsError(f"{epath}.field", f"duplicate field {name!r}")
        seen.add(key)
        kind = types.get(key)
        numeric = kind in (None, "number", "datetime")
        default = "asc" if kind in ("number", "datetime") else "exists"
        direction = entry.get("direction", default) or default
        _enum(direction, f"{epath}.direction", ("asc", "desc", "exists", "not_exists"))
        if direction in ("asc", "desc") and not numeric:
            raise OptionsError(
                f"{epath}.direction",
                f"{direction!r} needs a number or datetime field; {name!r} is {kind}, "
                "use exists or not_exists",
            )
        out.append({"field": key, "direction": direction})
    return out


def resolve_options(
    raw: Any, config: Mapping[str, Any], *, path: str = "ai_search_options"
) -> ResolvedOptions:
    """Validate ``ai_search_options`` and fill the gaps from the instance configuration.

    Args:
        raw: The request's ``ai_search_options`` (or None).
        config: The instance configuration.
        path: Field path prefix for error messages.

    Returns:
        The merged options.

    Raises:
        OptionsError: A field is outside its documented range.
    """
    opts = _obj(raw, path)
    retrieval = _obj(opts.get("retrieval"), f"{path}.retrieval")
    rpath = f"{path}.retrieval"
    res = ResolvedOptions()
    has_vector, has_keyword = _index_method(config)
    default_type = (
        "hybrid" if has_vector and has_keyword else ("vector" if has_vector else "keyword")
    )
    rt = retrieval.get("retrieval_type")
    res.retrieval_type = (
        default_type
        if rt is None
        else _enum(rt, f"{rpath}.retrieval_type", ("vector", "keyword", "hybrid"))
    )
    needs_vector = res.retrieval_type in ("vector", "hybrid")
    needs_keyword = res.retrieval_type in ("keyword", "hybrid")
    if (needs_vector and not has_vector) or (needs_keyword and not has_keyword):
        raise OptionsError(
            f"{rpath}.retrieval_type",
            f"{res.retrieval_type!r} is not compatible with the instance's index_method "
            f"(vector={str(has_vector).lower()}, keyword={str(has_keyword).lower()})",
        )
    mt = retrieval.get("match_threshold", config.get("score_threshold"))
    res.match_threshold = 0.4 if mt is None else _number(mt, f"{rpath}.match_threshold", 0, 1)
    mn = retrieval.get("max_num_results", config.get("max_num_results"))
    res.max_num_results = 10 if mn is None else _integer(mn, f"{rpath}.max_num_results", 1, 50)
    if "filters" in retrieval and retrieval["filters"] is not None:
        try:
            res.predicate = compile_filter(retrieval["filters"], path=f"{rpath}.filters")
        except FilterError as exc:
            where, _, why = str(exc).partition(": ")
            raise OptionsError(where, why) from exc
        res.filters = retrieval["filters"]
    ce = retrieval.get("context_expansion")
    res.context_expansion = 0 if ce is None else _integer(ce, f"{rpath}.context_expansion", 0, 3)
    fm = retrieval.get("fusion_method", config.get("fusion_method"))
    res.fusion_method = "rrf" if fm is None else _enum(fm, f"{rpath}.fusion_method", ("rrf", "max"))
    instance_retrieval = config.get("retrieval_options") or {}
    km = retrieval.get("keyword_match_mode", instance_retrieval.get("keyword_match_mode"))
    km = {"exact_match": "and", "fuzzy_match": "or"}.get(km, km) if isinstance(km, str) else km
    res.keyword_match_mode = (
        "and" if km is None else _enum(km, f"{rpath}.keyword_match_mode", ("and", "or"))
    )
    types = field_types(config)
    if "boost_by" in retrieval and retrieval["boost_by"] is not None:
        res.boost_by = _boost_by(retrieval["boost_by"], f"{rpath}.boost_by", types)
    elif instance_retrieval.get("boost_by"):
        res.boost_by = _boost_by(
            instance_retrieval["boost_by"], "retrieval_options.boost_by", types
        )
    if "metadata_only" in retrieval:
        res.metadata_only = _bool(retrieval["metadata_only"], f"{rpath}.metadata_only")
    if "return_on_failure" in retrieval:
        res.return_on_failure = _bool(retrieval["return_on_failure"], f"{rpath}.return_on_failure")

    rewrite = _obj(opts.get("query_rewrite"), f"{path}.query_rewrite")
    en = rewrite.get("enabled", config.get("rewrite_query", False))
    res.rewrite = _bool(en if en is not None else False, f"{path}.query_rewrite.enabled")
    for name in ("model", "rewrite_prompt"):
        if rewrite.get(name) is not None and not isinstance(rewrite[name], str):
            raise OptionsError(f"{path}.query_rewrite.{name}", "must be a string")

    rerank = _obj(opts.get("reranking"), f"{path}.reranking")
    en = rerank.get("enabled", config.get("reranking", False))
    res.reranking = _bool(en if en is not None else False, f"{path}.reranking.enabled")
    if rerank.get("match_threshold") is not None:
        res.reranking_threshold = _number(
            rerank["match_threshold"], f"{path}.reranking.match_threshold", 0, 1
        )
    if rerank.get("model") is not None and not isinstance(rerank["model"], str):
        raise OptionsError(f"{path}.reranking.model", "must be a string")

    cache = _obj(opts.get("cache"), f"{path}.cache")
    en = cache.get("enabled", config.get("cache", True))
    res.cache = _bool(en if en is not None else True, f"{path}.cache.enabled")
    ct = cache.get("cache_threshold", config.get("cache_threshold"))
    res.cache_threshold = (
        "close_enough"
        if ct is None
        else _enum(ct, f"{path}.cache.cache_threshold", tuple(CACHE_THRESHOLDS))
    )

    cm = opts.get("custom_metadata")
    if cm is not None:
        cm = _obj(cm, f"{path}.custom_metadata")
        if len(cm) > 2:
            raise OptionsError(
                f"{path}.custom_metadata", f"must have at most 2 entries (got {len(cm)})"
            )
        for k, v in cm.items():
            if isinstance(v, (dict, list)) or v is None:
                raise OptionsError(
                    f"{path}.custom_metadata.{k}", "must be a string, number or boolean"
                )
    return res


# -- messages --------------------------------------------------------------------------------


def message_text(content: Any) -> str:
    """Return the text of a message content (string, null, or a list of parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            str(p.get("text", ""))
            for p in content
            if isinstance(p, dict) and p.get("type") == "text"
        ]
        return " ".join(parts)
    return str(content)


def validate_messages(messages: Any, path: str = "messages") -> list[dict[str, Any]]:
    """Validate an OpenAI-style message list; return it as plain dicts."""
    if not isinstance(messages, list) or not messages:
        raise OptionsError(path, "must be a non-empty list of {role, content} objects")
    out: list[dict[str, Any]] = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise OptionsError(f"{path}[{i}]", "must be an object with role and content")
        role = msg.get("role")
        if role not in ROLES:
            raise OptionsError(
                f"{path}[{i}].role", f"must be one of {', '.join(ROLES)} (got {role!r})"
            )
        content = msg.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise OptionsError(f"{path}[{i}].content", "must be a string, a list of parts or null")
        out.append(dict(msg))
    if not any(m["role"] == "user" and message_text(m.get("content")).strip() for m in out):
        raise OptionsError(path, "must contain at least one user message with non-empty content")
    return out


def query_from_messages(messages: Sequence[Mapping[str, Any]]) -> str:
    """Return the last user message's text: the search query when rewriting is off."""
    for msg in reversed(messages):
        if msg.get("role") == "user":
            text = message_text(msg.get("content")).strip()
            if text:
                return text
    return ""


# -- the pipeline ----------------------------------------------------------------------------


def keyword_terms(query: str, *, trigram: bool) -> list[str]:
    """Split a query into FTS5-safe terms (stopwords dropped unless nothing else is left)."""
    terms = [t for t in re.findall(r"\w+", query.lower()) if t]
    if trigram:
        terms = [t for t in terms if len(t) >= 3]
    content = [t for t in terms if t not in _STOPWORDS]
    chosen = content or terms
    seen: dict[str, None] = {}
    for t in chosen:
        seen.setdefault(t, None)
    return list(seen)


def fts_expression(terms: Sequence[str], mode: str) -> str:
    """Build an FTS5 MATCH expression joining quoted terms with AND or OR."""
    joiner = " AND " if mode == "and" else " OR "
    return joiner.join('"' + t.replace('"', '""') + '"' for t in terms)


def _top(rows: np.ndarray, sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the ``k`` best (rows, sims), best first, dropping -inf (filtered) rows."""
    if len(sims) > k:
        part = np.argpartition(-sims, k - 1)[:k]
        rows, sims = rows[part], sims[part]
    order = np.argsort(-sims, kind="stable")
    rows, sims = rows[order], sims[order]
    keep = np.isfinite(sims)
    return rows[keep], sims[keep]


_BLOCK = 16  # rows re-scored together: a multiple of the BLAS kernel's row grouping
_COLUMNS_LOCK = threading.Lock()


def _sparse_columns(idx: InstanceIndex) -> tuple[np.ndarray, float] | None:
    """Return the column-major copy of the matrix and the largest row norm, or None.

    Built once per index, and only when re-scoring aligned row blocks reproduces the full
    product bit for bit on this BLAS (checked on a probe query), so the pruned path below
    returns exactly what the full product returns.
    """
    if "columns" in idx.cache:
        built: tuple[np.ndarray, float] | None = idx.cache["columns"]
        return built
    with _COLUMNS_LOCK:  # one build at a time: concurrent first queries share the copy
        if "columns" not in idx.cache:
            idx.cache["columns"] = _build_columns(idx)
        cached: tuple[np.ndarray, float] | None = idx.cache["columns"]
    return cached


def _build_columns(idx: InstanceIndex) -> tuple[np.ndarray, float] | None:
    matrix = idx.matrix
    n = matrix.shape[0]
    out: tuple[np.ndarray, float] | None = None
    if n >= 4 * _BLOCK:
        probe = np.random.default_rng(0).standard_normal((matrix.shape[1],), dtype=np.float32)
        full = matrix @ probe
        rows = np.unique(np.r_[0:_BLOCK, n - _BLOCK : n, np.linspace(0, n - 1, 64).astype(int)])
        if np.array_equal(_rescore(matrix, rows, probe), full[rows]):
            max_norm = float(np.sqrt(np.max(np.einsum("ij,ij->i", matrix, matrix))))
            out = (np.ascontiguousarray(matrix.T), max_norm)
    return out


def _rescore(matrix: np.ndarray, rows: np.ndarray, qvec: np.ndarray) -> np.ndarray:
    """Exact similarities of ``rows`` (sorted, unique), computed in aligned row blocks.

    BLAS groups rows in fixed-size blocks with their own summation order; multiplying whole
    aligned blocks keeps that grouping, so each value equals ``(matrix @ qvec)[row]``.
    """
    n = matrix.shape[0]
    blocks = np.unique(rows // _BLOCK)
    full_rows = (blocks[:, None] * _BLOCK + np.arange(_BLOCK)).ravel()
    full_rows = full_rows[full_rows < n]
    sims = matrix[full_rows] @ qvec
    out: np.ndarray = sims[np.searchsorted(full_rows, rows)]
    return out


def _pruned_vector(
    idx: InstanceIndex, qvec: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Exact top ``k`` for a sparse query (lexical embedders), or None to use the full product.

    Only the matrix columns where the query is non-zero can contribute, so a column-major copy
    scores every row reading a fraction of the matrix. That float32 sum differs from the BLAS
    one by at most ``dim * eps * |q| * max|row|`` (both are float32 sums of ``dim`` products);
    every row within 8 times that of the k-th best approximation is re-scored with the BLAS
    kernel, so the result is the full product's.
    """
    nz = np.flatnonzero(qvec)
    n, dim = idx.matrix.shape
    if not 0 < len(nz) * 4 <= dim or n < 20 * k:
        return None
    cols = _sparse_columns(idx)
    if cols is None:
        return None
    columns, max_norm = cols
    approx = columns[nz[0]] * qvec[nz[0]]
    tmp = np.empty_like(approx)
    for j in nz[1:]:
        np.multiply(columns[j], qvec[j], out=tmp)
        approx += tmp
    bound = 4.0 * dim * float(np.finfo(np.float32).eps) * float(np.linalg.norm(qvec)) * max_norm
    kth = float(np.partition(approx, n - k)[n - k])
    rows = np.flatnonzero(approx >= kth - 2.0 * bound)
    if len(rows) > n // 8:
        return None
    return _top(rows, _rescore(idx.matrix, rows, qvec), k)


def vector_candidates(
    idx: InstanceIndex, qvec: np.ndarray, allowed: np.ndarray | None, k: int = CANDIDATES
) -> tuple[np.ndarray, np.ndarray]:
    """Return the exact top ``k`` (matrix rows, cosine similarities), best first.

    Brute force over the whole matrix; with a filter that keeps at most a fifth of the rows,
    only the allowed rows are scored; without a filter, a sparse query (lexical embedders)
    reads only its non-zero columns first (see :func:`_pruned_vector`).
    """
    n = len(idx.cids)
    if allowed is not None:
        kept = np.flatnonzero(allowed)
        if len(kept) <= n // 5:
            return _top(kept, idx.matrix[kept] @ qvec, k)
    else:
        pruned = _pruned_vector(idx, qvec, k)
        if pruned is not None:
            return pruned
    sims = idx.matrix @ qvec
    if allowed is not None:
        sims = np.where(allowed, sims, -np.inf)
    return _top(np.arange(n), sims, k)


@dataclass
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


class Searcher:
    """Runs the retrieval pipeline over a :class:`Store` with one embedder.

    Args:
        store: The storage.
        embedder: The embedder (its ``name`` must match the instance's).
    """

    def __init__(self, store: Store, embedder: Embedder) -> None:
        self.store = store
        self.embedder = embedder
        self._qcache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._qlock = threading.Lock()

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

    def search(
        self, inst: InstanceRecord, query: str, opts: ResolvedOptions
    ) -> list[dict[str, Any]]:
        """Return the chunks for ``query`` on ``inst``, best first, in the wire format."""
        idx = self.store.index(inst)
        n = len(idx.cids)
        if n == 0 or not query.strip():
            return []
        allowed: np.ndarray | None = None
        if opts.predicate is not None:
            ok_pks = [pk for pk, item in idx.items.items() if opts.predicate(item["attrs"])]
            allowed = np.isin(idx.item_pks, np.asarray(ok_pks, dtype=np.int64))
            if not allowed.any():
                return []
        cands: dict[int, _Candidate] = {}
        use_vector = opts.retrieval_type in ("vector", "hybrid")
        use_keyword = opts.retrieval_type in ("keyword", "hybrid")
        qvec: np.ndarray | None = None
        keyword_hits: Future[list[tuple[int, float, int]]] | None = None
        if use_keyword and use_vector:
            # FTS5 (sqlite3) and the numpy product both release the GIL: run them side by side
            keyword_hits = _POOL.submit(self._keyword, inst, idx, query, opts, allowed)
        if use_vector:
            qvec = self.embed_query(query)
            rows, sims = vector_candidates(idx, qvec, allowed)
            for rank, (row, sim) in enumerate(zip(rows, sims, strict=True), start=1):
                cid = int(idx.cids[row])
                cands[cid] = _Candidate(
                    row=int(row),
                    cid=cid,
                    item_pk=int(idx.item_pks[row]),
                    vector_score=float((1.0 + sim) / 2.0),
                    vector_rank=rank,
                )
        if use_keyword:
            hits = (
                keyword_hits.result()
                if keyword_hits is not None
                else self._keyword(inst, idx, query, opts, allowed)
            )
            for rank, (cid, bm25, row) in enumerate(hits, 1):
                cand = cands.get(cid)
                if cand is None:
                    cand = cands[cid] = _Candidate(row=row, cid=cid, item_pk=int(idx.item_pks[row]))
                cand.keyword_score = bm25
                cand.keyword_rank = rank
        if not cands:
            return []
        if opts.retrieval_type == "hybrid":
            if qvec is None:  # pragma: no cover - hybrid always embeds
                qvec = self.embed_query(query)
            for cand in cands.values():
                if cand.vector_score is None:
                    cand.vector_score = float((1.0 + float(idx.matrix[cand.row] @ qvec)) / 2.0)
        best_kw = max((c.keyword_score or 0.0 for c in cands.values()), default=0.0) or 1.0
        for cand in cands.values():
            kw_norm = (cand.keyword_score or 0.0) / best_kw
            if opts.retrieval_type == "vector":
                cand.score = cand.vector_score or 0.0
            elif opts.retrieval_type == "keyword":
                cand.score = kw_norm
            elif opts.fusion_method == "max":
                cand.score = max(cand.vector_score or 0.0, kw_norm)
            else:
                rrf = sum(1.0 / (RRF_K + r) for r in (cand.vector_rank, cand.keyword_rank) if r)
                cand.score = rrf / (2.0 / (RRF_K + 1))
        ranked = list(cands.values())
        if use_vector:
            ranked = [c for c in ranked if (c.vector_score or 0.0) >= opts.match_threshold]
        if opts.boost_by:
            self._boost(ranked, idx.items, opts.boost_by)
        ranked.sort(key=lambda c: (-c.score, c.cid))
        if not opts.reranking:
            ranked = ranked[: opts.max_num_results]  # fetch text for the returned rows only
        chunks_by_cid = self.store.chunks_by_cid([c.cid for c in ranked])
        if opts.reranking and ranked:
            from aisearch_local.generate import rerank_scores

            texts = [chunks_by_cid[c.cid].text for c in ranked]
            for cand, rs in zip(ranked, rerank_scores(query, texts), strict=True):
                cand.reranking_score = float(rs)
                cand.score = float(rs)
            ranked = [c for c in ranked if (c.reranking_score or 0.0) >= opts.reranking_threshold]
            ranked.sort(key=lambda c: (-c.score, c.cid))
        ranked = ranked[: opts.max_num_results]
        return [self._to_wire(c, chunks_by_cid[c.cid], idx.items, opts) for c in ranked]

    def _keyword(
        self,
        inst: InstanceRecord,
        idx: InstanceIndex,
        query: str,
        opts: ResolvedOptions,
        allowed: np.ndarray | None,
    ) -> list[tuple[int, float, int]]:
        trigram = (inst.config.get("indexing_options") or {}).get("keyword_tokenizer") == "trigram"
        terms = keyword_terms(query, trigram=trigram)
        if not terms:
            return []
        expr = fts_expression(terms, opts.keyword_match_mode)
        limit = CANDIDATES if allowed is None else CANDIDATES * 10
        out: list[tuple[int, float, int]] = []
        while True:
            hits = self.store.keyword(inst, expr, limit)
            out = []
            rows = idx.rows_of([cid for cid, _ in hits])
            for (cid, bm25), row in zip(hits, rows, strict=True):
                if row < 0 or (allowed is not None and not allowed[row]):
                    continue
                out.append((cid, bm25, row))
                if len(out) == CANDIDATES:
                    return out
            if len(hits) < limit or limit >= 1_000_000:
                return out
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


# -- similarity cache --------------------------------------------------------------------------


def _shingles(text: str) -> frozenset[str]:
    words = re.findall(r"\w+", text.lower())
    if len(words) < 3:
        return frozenset([" ".join(words)])
    return frozenset(" ".join(words[i : i + 3]) for i in range(len(words) - 2))


class ChatCache:
    """The similarity cache of chat completions (word 3-shingle Jaccard, not MinHash).

    An entry matches when everything but the prompt is identical (instance versions, model,
    options, limits) and the prompts' Jaccard similarity reaches the threshold of the
    requested ``cache_threshold``. Writes to an instance change its version and so invalidate
    its entries.
    """

    def __init__(self, max_entries: int = 512, ttl_s: float = 30 * 24 * 3600) -> None:
        self._entries: OrderedDict[tuple[str, str], tuple[frozenset[str], float, Any]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()
        self._max = max_entries
        self._ttl = ttl_s

    def get(self, context: str, prompt: str, threshold: str) -> Any | None:
        """Return a cached value for a similar prompt in the same context, or None."""
        need = CACHE_THRESHOLDS[threshold]
        sh = _shingles(prompt)
        now = time.monotonic()
        with self._lock:
            exact = self._entries.get((context, prompt))
            if exact is not None and now - exact[1] < self._ttl:
                return exact[2]
            if need >= 1.0:
                return None
            for (ctx, _p), (other, ts, value) in reversed(self._entries.items()):
                if ctx != context or now - ts >= self._ttl:
                    continue
                inter = len(sh & other)
                union = len(sh | other) or 1
                if inter / union >= need:
                    return value
        return None

    def put(self, context: str, prompt: str, value: Any) -> None:
        """Store a value."""
        with self._lock:
            self._entries[(context, prompt)] = (_shingles(prompt), time.monotonic(), value)
            self._entries.move_to_end((context, prompt))
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
