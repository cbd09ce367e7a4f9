"""Client-side fan-out: search many instances concurrently and merge the results.

Useful beyond the 10 instances a namespace search allows, or across namespaces and
accounts. Each target's failure is kept as an ``InstanceError``; it never hides the
results of the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar, cast, runtime_checkable

from aisearch._exceptions import AISearchError, InvalidRequestError
from aisearch._models import Chunk, FanOutResult, InstanceError, SearchResult
from aisearch._options import SearchOptions
from aisearch._params import Options, coerce_options, query_or_messages

__all__ = [
    "RRF_K",
    "SearchClient",
    "SearchTarget",
    "merge_results",
    "normalize_targets",
    "prepare",
]

RRF_K = 60
"""The constant ``k`` of reciprocal rank fusion: ``score = sum(1 / (k + rank))``."""

MergeMode = Literal["score", "rrf"]


@runtime_checkable
class SearchClient(Protocol):
    """What a fan-out needs of a client: ``search`` (sync, or async returning an awaitable).

    ``AISearchClient`` and ``AsyncAISearchClient`` are such clients; this module imports
    neither. Runtime-checkable, so that a model holding a ``SearchTarget`` can check it.
    """

    def search(
        self,
        instance_id: str,
        query: str | None = None,
        *,
        options: SearchOptions | None = None,
        namespace: str | None = None,
        extra_options: Mapping[str, Any] | None = None,
    ) -> SearchResult | Awaitable[SearchResult]: ...


_C = TypeVar("_C", bound=SearchClient)


@dataclass(frozen=True)
class SearchTarget:
    """One instance to search in a fan-out.

    Args:
        instance_id: The instance id.
        namespace: Its namespace (the client's default when ``None``).
        client: A client for another account or base URL (the calling client when ``None``).
            In ``AsyncAISearchClient.fan_out_search`` it must be an ``AsyncAISearchClient``.

    Example:
        >>> SearchTarget("docs", namespace="team-a")
        SearchTarget(instance_id='docs', namespace='team-a', client=None)
    """

    instance_id: str
    namespace: str | None = None
    client: SearchClient | None = None


def normalize_targets(targets: Sequence[str | SearchTarget]) -> list[SearchTarget]:
    """Turn instance ids and ``SearchTarget`` objects (a non-empty sequence) into targets."""
    if isinstance(targets, str) or not isinstance(targets, Sequence) or not targets:
        raise InvalidRequestError(
            "targets: must be a non-empty list of instance ids or SearchTarget"
        )
    out = []
    for i, target in enumerate(targets):
        if isinstance(target, str):
            out.append(SearchTarget(target))
        elif isinstance(target, SearchTarget):
            out.append(target)
        else:
            raise InvalidRequestError(
                f"targets[{i}]: must be an instance id or a SearchTarget "
                f"(got {type(target).__name__})"
            )
    return out


def prepare(
    targets: Sequence[str | SearchTarget],
    query: str,
    options: Options,
    merge: MergeMode,
    top_k: int | None,
    max_concurrency: int,
) -> tuple[list[SearchTarget], SearchOptions | None]:
    """Check every argument of a fan-out before the first search (messages name the argument).

    Returns the targets and the validated options, built once and shared by every search.
    """
    if merge not in ("score", "rrf"):
        raise InvalidRequestError(f"merge: must be one of 'score', 'rrf' (got {merge!r})")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise InvalidRequestError(f"top_k: must be a positive integer or None (got {top_k!r})")
    if (
        isinstance(max_concurrency, bool)
        or not isinstance(max_concurrency, int)
        or not 1 <= max_concurrency <= 64
    ):
        raise InvalidRequestError(
            f"max_concurrency: must be an integer between 1 and 64 (got {max_concurrency!r})"
        )
    query_or_messages(query, None)
    return normalize_targets(targets), coerce_options(options)


Outcome = tuple[SearchTarget, "SearchResult | AISearchError"]


def merge_results(
    outcomes: Sequence[Outcome], *, merge: MergeMode = "score", top_k: int | None = None
) -> FanOutResult:
    """Merge ``(target, result or error)`` outcomes, in target order, into one ranked result.

    ``score`` sorts every chunk by its own score (ties keep target order). ``rrf`` ranks
    by reciprocal rank fusion over each target's ranking and stores the fused value in
    the chunk's extra field ``rrf_score``; the service ``score`` is left untouched. Each
    chunk gets its ``instance_id``; each failed target one error.
    """
    errors: list[InstanceError] = []
    ranked: list[tuple[float, int, Chunk]] = []
    order = 0
    for target, outcome in outcomes:
        if isinstance(outcome, AISearchError):
            errors.append(
                InstanceError(
                    instance_id=target.instance_id,
                    message=str(outcome),
                    error=outcome,
                    namespace=target.namespace,
                )
            )
            continue
        for rank, chunk in enumerate(outcome.chunks, start=1):
            update: dict[str, Any] = {}
            if chunk.instance_id is None:
                update["instance_id"] = target.instance_id
            if merge == "rrf":
                key = 1.0 / (RRF_K + rank)
                update["rrf_score"] = key
            else:
                key = chunk.score
            ranked.append((key, order, chunk.model_copy(update=update) if update else chunk))
            order += 1
    ranked.sort(key=lambda entry: (-entry[0], entry[1]))
    chunks = [chunk for _, _, chunk in ranked]
    if top_k is not None:
        chunks = chunks[:top_k]
    return FanOutResult(chunks=chunks, errors=errors)


def _client_of(target: SearchTarget, default: _C) -> _C:
    """The client searching ``target``: its own (of the calling client's kind), else ``default``."""
    return default if target.client is None else cast("_C", target.client)


def run_sync(
    client: _C,
    targets: list[SearchTarget],
    search: Callable[[_C, SearchTarget], SearchResult],
    max_concurrency: int,
) -> list[Outcome]:
    """Run one search per target in a thread pool, keeping failures, in target order."""

    def one(target: SearchTarget) -> Outcome:
        try:
            return target, search(_client_of(target, client), target)
        except AISearchError as exc:
            return target, exc

    if len(targets) == 1:
        return [one(targets[0])]
    with ThreadPoolExecutor(max_workers=min(max_concurrency, len(targets))) as pool:
        return list(pool.map(one, targets))


async def run_async(
    client: _C,
    targets: list[SearchTarget],
    search: Callable[[_C, SearchTarget], Awaitable[SearchResult]],
    max_concurrency: int,
) -> list[Outcome]:
    """Run one search per target with ``asyncio.gather``, at most ``max_concurrency`` at once."""
    semaphore = asyncio.Semaphore(max_concurrency)

    async def one(target: SearchTarget) -> Outcome:
        async with semaphore:
            try:
                return target, await search(_client_of(target, client), target)
            except AISearchError as exc:
                return target, exc

    return list(await asyncio.gather(*(one(t) for t in targets)))
