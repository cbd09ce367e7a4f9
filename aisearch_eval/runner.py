"""Run a golden set against an instance through the ordinary client, per configuration.

Queries run concurrently up to a bound; each search goes through the client's own retries
(``max_retries``, honouring ``Retry-After`` on 429 and 503), and a query that still fails is
reported with its error, never dropped: the metrics are averaged over the queries that were
answered, and the report says how many failed and why.

A search result is turned into a ranking of item keys: chunks in the service's order, each
item counted once, at the rank of its best chunk.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from aisearch import (
    AISearchClient,
    AISearchError,
    AsyncAISearchClient,
    IndexingError,
    IndexingTimeoutError,
    SearchResult,
)
from aisearch_eval.golden import GoldenSet
from aisearch_eval.grid import Config
from aisearch_eval.metrics import score_query

__all__ = [
    "DEFAULT_DEPTH",
    "DEFAULT_KS",
    "ConfigResult",
    "EvalReport",
    "QueryFailure",
    "UploadReport",
    "evaluate",
    "evaluate_sync",
    "ranking",
    "upload_corpus",
]

DEFAULT_KS = (1, 5, 10)
DEFAULT_DEPTH = 20
"""``retrieval.max_num_results`` sent when a configuration does not set it (chunks asked for:
enough for ten distinct documents when a document has a few chunks)."""

_DONE = frozenset({"completed", "skipped"})
_WAIT_BY_ID = 50
"""Up to this many items still indexing are polled one by one; more, through the item list."""

Progress = Callable[[str, int, int], None]
"""``on_progress(configuration name, done, total)``."""


@dataclass(frozen=True)
class QueryFailure:
    """A query that failed after the client's retries."""

    query_id: str
    query: str
    error: str


@dataclass
class ConfigResult:
    """The outcome of one configuration."""

    config: Config
    metrics: dict[str, float]
    """Metric means over the answered queries (``{}`` when none was)."""
    answered: int
    empty: int
    """Answered queries that returned no chunk at all."""
    failures: list[QueryFailure] = field(default_factory=list)
    per_query: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class EvalReport:
    """Every configuration's result, in the order they were run."""

    golden: str
    instance: str
    queries: int
    ks: tuple[int, ...]
    results: list[ConfigResult]

    @property
    def metric_names(self) -> list[str]:
        """The metric columns, in order."""
        return (
            ["ndcg@10"] + [f"recall@{k}" for k in self.ks] + ["mrr"] + [f"hit@{k}" for k in self.ks]
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (per-query scores included)."""
        return {
            "golden": self.golden,
            "instance": self.instance,
            "queries": self.queries,
            "configs": [
                {
                    "name": r.config.name,
                    "options": r.config.options,
                    "metrics": r.metrics,
                    "answered": r.answered,
                    "empty": r.empty,
                    "failed": [f.__dict__ for f in r.failures],
                    "seconds": round(r.seconds, 3),
                    "per_query": r.per_query,
                }
                for r in self.results
            ],
        }


@dataclass
class UploadReport:
    """What ``upload_corpus`` did."""

    uploaded: int
    """Documents uploaded and indexed."""
    seconds: float
    failures: list[tuple[str, str]] = field(default_factory=list)
    """``(key, error)`` of the documents that could not be uploaded."""


def ranking(result: SearchResult) -> list[str]:
    """Item keys in the order of their best chunk, each once."""
    return list(dict.fromkeys(chunk.item.key for chunk in result.chunks))


def _options(config: Config, depth: int) -> dict[str, Any]:
    options: dict[str, Any] = json.loads(json.dumps(dict(config.options)))
    retrieval = options.setdefault("retrieval", {})
    retrieval.setdefault("max_num_results", depth)
    return options


def _error(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def _summarise(
    config: Config,
    outcomes: Mapping[str, SearchResult | Exception],
    golden: GoldenSet,
    ks: Sequence[int],
    seconds: float,
) -> ConfigResult:
    per_query: dict[str, dict[str, float]] = {}
    failures: list[QueryFailure] = []
    empty = 0
    for qid in golden.queries:
        outcome = outcomes[qid]
        if isinstance(outcome, Exception):
            failures.append(QueryFailure(qid, golden.queries[qid], _error(outcome)))
            continue
        empty += not outcome.chunks
        per_query[qid] = score_query(ranking(outcome), golden.judgements[qid], ks)
    metrics: dict[str, float] = {}
    if per_query:
        for name in next(iter(per_query.values())):
            metrics[name] = sum(s[name] for s in per_query.values()) / len(per_query)
    return ConfigResult(config, metrics, len(per_query), empty, failures, per_query, seconds)


def _check(
    ks: Sequence[int], concurrency: int, depth: int, configs: Sequence[Config] = ()
) -> tuple[int, ...]:
    if not ks or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in ks):
        raise ValueError(f"ks: must be positive integers (got {list(ks)!r})")
    if (
        isinstance(concurrency, bool)
        or not isinstance(concurrency, int)
        or not 1 <= concurrency <= 64
    ):
        raise ValueError(f"concurrency: must be an integer between 1 and 64 (got {concurrency!r})")
    if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= 50:
        raise ValueError(f"depth: must be an integer between 1 and 50 (got {depth!r})")
    needed = max(10, *ks)  # ndcg@10 and every recall@k / hit@k look that deep
    if depth < needed:
        raise ValueError(
            f"depth: must be at least {needed}, the deepest metric asked (ndcg@10, k={max(ks)}); "
            f"got {depth} (a shorter ranking would report recall@{needed} as recall@{depth})"
        )
    for config in configs:
        retrieval = config.options.get("retrieval")
        asked = retrieval.get("max_num_results") if isinstance(retrieval, Mapping) else None
        if isinstance(asked, int) and not isinstance(asked, bool) and asked < needed:
            raise ValueError(
                f"{config.name}: retrieval.max_num_results must be at least {needed}, the deepest "
                f"metric asked (ndcg@10, k={max(ks)}); got {asked} (a shorter ranking would "
                f"report recall@{needed} as recall@{asked})"
            )
    return tuple(sorted(set(ks)))


async def evaluate(
    client: AsyncAISearchClient,
    instance_id: str,
    golden: GoldenSet,
    configs: Sequence[Config],
    *,
    ks: Sequence[int] = DEFAULT_KS,
    concurrency: int = 8,
    depth: int = DEFAULT_DEPTH,
    namespace: str | None = None,
    on_progress: Progress | None = None,
) -> EvalReport:
    """Run every query of ``golden`` once per configuration and score the rankings.

    Args:
        client: The client (Cloudflare or a local server: only its base URL differs).
        instance_id: The instance to search.
        golden: The golden set.
        configs: The configurations (``build_grid``).
        ks: Cut-offs of recall@k and hit@k (nDCG is always at 10).
        concurrency: Searches in flight at once (1 to 64).
        depth: ``retrieval.max_num_results`` when a configuration does not set it (1 to 50).
        namespace: The instance's namespace (the client's default when ``None``).
        on_progress: Called after every query as ``on_progress(config, done, total)``.

    Returns:
        The report.
    """
    ks = _check(ks, concurrency, depth, configs)
    gate = asyncio.Semaphore(concurrency)

    async def run(config: Config) -> ConfigResult:
        options = _options(config, depth)
        outcomes: dict[str, SearchResult | Exception] = {}

        async def one(qid: str) -> None:
            async with gate:
                try:
                    outcomes[qid] = await client.search(
                        instance_id, golden.queries[qid], options=options, namespace=namespace
                    )
                except AISearchError as exc:
                    outcomes[qid] = exc
            if on_progress is not None:
                on_progress(config.name, len(outcomes), len(golden))

        started = time.perf_counter()
        await asyncio.gather(*(one(qid) for qid in golden.queries))
        return _summarise(config, outcomes, golden, ks, time.perf_counter() - started)

    results = [await run(config) for config in configs]
    return EvalReport(golden.name, instance_id, len(golden), ks, results)


def evaluate_sync(
    client: AISearchClient,
    instance_id: str,
    golden: GoldenSet,
    configs: Sequence[Config],
    *,
    ks: Sequence[int] = DEFAULT_KS,
    concurrency: int = 8,
    depth: int = DEFAULT_DEPTH,
    namespace: str | None = None,
    on_progress: Progress | None = None,
) -> EvalReport:
    """``evaluate`` with the sync client: the same arguments, ``concurrency`` threads."""
    ks = _check(ks, concurrency, depth, configs)
    results = []
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for config in configs:
            options = _options(config, depth)

            def one(qid: str, options: dict[str, Any] = options) -> SearchResult | Exception:
                try:
                    return client.search(
                        instance_id, golden.queries[qid], options=options, namespace=namespace
                    )
                except AISearchError as exc:
                    return exc

            outcomes: dict[str, SearchResult | Exception] = {}
            started = time.perf_counter()
            futures = {qid: pool.submit(one, qid) for qid in golden.queries}
            for done, (qid, future) in enumerate(futures.items(), 1):
                outcomes[qid] = future.result()
                if on_progress is not None:
                    on_progress(config.name, done, len(golden))
            elapsed = time.perf_counter() - started
            results.append(_summarise(config, outcomes, golden, ks, elapsed))
    return EvalReport(golden.name, instance_id, len(golden), ks, results)


async def upload_corpus(
    client: AsyncAISearchClient,
    instance_id: str,
    golden: GoldenSet,
    *,
    concurrency: int = 8,
    namespace: str | None = None,
    wait_timeout: float = 600.0,
    on_progress: Callable[[int], None] | None = None,
) -> UploadReport:
    """Upload a BEIR corpus through the items API, then wait until it is indexed.

    Each document becomes the item ``golden.key_template.format(id=doc_id)`` holding its title,
    a blank line and its text. Uploads run ``concurrency`` at a time through the client's
    retries; a document that still fails is reported, not raised.

    Args:
        client: The client.
        instance_id: A built-in-storage instance.
        golden: A golden set with a corpus.
        concurrency: Uploads in flight at once (1 to 64).
        namespace: The instance's namespace.
        wait_timeout: Seconds to wait for indexing after the last upload.
        on_progress: Called with the number of documents uploaded so far.

    Returns:
        How many were uploaded, in how long, and the failures.

    Raises:
        ValueError: If the golden set has no corpus.
    """
    _check(DEFAULT_KS, concurrency, DEFAULT_DEPTH)
    if golden.corpus_path is None:
        raise ValueError(f"{golden.name}: has no corpus.jsonl to upload")
    gate = asyncio.Semaphore(concurrency)
    failures: list[tuple[str, str]] = []
    pending: list[str] = []  # ids of the items the service has not indexed yet
    done = 0

    async def one(key: str, content: str) -> None:
        nonlocal done
        try:
            item = await client.upload_item(instance_id, key, content, namespace=namespace)
        except AISearchError as exc:
            failures.append((key, _error(exc)))
        else:
            if item.status == "error":
                failures.append((key, f"indexing failed: {item.error or 'error'}"))
            elif item.status not in _DONE:
                pending.append(item.id)
        finally:
            gate.release()
        done += 1
        if on_progress is not None:
            on_progress(done)

    started = time.perf_counter()
    tasks = []
    for doc in golden.documents():
        await gate.acquire()  # bounded: at most `concurrency` documents are read ahead
        tasks.append(asyncio.ensure_future(one(doc.key, doc.content())))
    await asyncio.gather(*tasks)
    if pending:  # a local server indexes on upload; Cloudflare queues
        ids = pending if len(pending) <= _WAIT_BY_ID else None  # else: poll the item list
        try:
            await client.wait_until_indexed(
                instance_id, ids, timeout=wait_timeout, namespace=namespace
            )
        except (IndexingError, IndexingTimeoutError) as exc:
            failures.extend(
                (
                    item.key or item.id,
                    f"{type(exc).__name__}: {item.status} {item.error or ''}".strip(),
                )
                for item in exc.items
                if item.status not in _DONE
            )
    return UploadReport(done - len(failures), time.perf_counter() - started, failures)
