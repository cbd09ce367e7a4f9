"""Ranking metrics, defined once and exactly (the definitions ``trec_eval`` and BEIR use).

A *ranking* is a list of document keys, best first, without repeats. *Judgements* map a key to
its grade: a grade above 0 is relevant, 0 or less (or an absent key) is not. Every metric is
computed on one query; the report averages them over the queries that did not fail.

* ``ndcg@k``: DCG@k / IDCG@k, with DCG@k = sum over ranks i = 1..k of grade(i) / log2(i + 1)
  (linear gain, as ``trec_eval``'s ``ndcg_cut`` and BEIR), and IDCG@k the DCG@k of the judged
  grades sorted best first. With binary judgements the gain is 1 per relevant document.
* ``recall@k``: relevant documents in the first k / all relevant documents.
* ``mrr``: 1 / the rank of the first relevant document in the whole ranking (0 if none):
  ``trec_eval``'s ``recip_rank``.
* ``hit@k``: 1 if a relevant document is in the first k, else 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = ["hit_at_k", "mrr", "ndcg_at_k", "recall_at_k", "score_query"]


def _relevant(judgements: Mapping[str, float]) -> set[str]:
    return {key for key, grade in judgements.items() if grade > 0}


def ndcg_at_k(ranking: Sequence[str], judgements: Mapping[str, float], k: int) -> float:
    """Normalised discounted cumulative gain at ``k`` (linear gain, log2 discount).

    Args:
        ranking: Document keys, best first.
        judgements: Key to grade (> 0 is relevant).
        k: The cut-off.

    Returns:
        A number in [0, 1]; 0 when nothing is relevant.
    """
    dcg = sum(
        max(judgements.get(key, 0.0), 0.0) / math.log2(rank + 1)
        for rank, key in enumerate(ranking[:k], 1)
    )
    ideal = sorted((g for g in judgements.values() if g > 0), reverse=True)[:k]
    idcg = sum(grade / math.log2(rank + 1) for rank, grade in enumerate(ideal, 1))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranking: Sequence[str], judgements: Mapping[str, float], k: int) -> float:
    """Share of the relevant documents found in the first ``k`` (0 when nothing is relevant)."""
    relevant = _relevant(judgements)
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranking[:k])) / len(relevant)


def mrr(ranking: Sequence[str], judgements: Mapping[str, float]) -> float:
    """Reciprocal rank of the first relevant document (0 when none is returned)."""
    relevant = _relevant(judgements)
    for rank, key in enumerate(ranking, 1):
        if key in relevant:
            return 1.0 / rank
    return 0.0


def hit_at_k(ranking: Sequence[str], judgements: Mapping[str, float], k: int) -> float:
    """1.0 if a relevant document is among the first ``k``, else 0.0."""
    relevant = _relevant(judgements)
    return 1.0 if any(key in relevant for key in ranking[:k]) else 0.0


def score_query(
    ranking: Sequence[str], judgements: Mapping[str, float], ks: Sequence[int]
) -> dict[str, float]:
    """Every metric for one query: ``ndcg@10``, ``mrr``, and ``recall@k`` and ``hit@k`` per k.

    Args:
        ranking: Document keys, best first.
        judgements: Key to grade.
        ks: The cut-offs of recall and hit.

    Returns:
        Metric name to value, in a stable order.
    """
    scores = {"ndcg@10": ndcg_at_k(ranking, judgements, 10), "mrr": mrr(ranking, judgements)}
    for k in ks:
        scores[f"recall@{k}"] = recall_at_k(ranking, judgements, k)
    for k in ks:
        scores[f"hit@{k}"] = hit_at_k(ranking, judgements, k)
    return scores
