"""The metrics against values computed by hand from their definitions (trec_eval's)."""

from __future__ import annotations

import math

import pytest

from aisearch_eval.metrics import hit_at_k, mrr, ndcg_at_k, recall_at_k, score_query

# Graded judgements; d9 is relevant but never retrieved, d5 is judged not relevant (0).
RANKING = ["d1", "d2", "d3", "d4", "d5"]
GRADED = {"d2": 2.0, "d4": 1.0, "d9": 1.0, "d5": 0.0}


def test_ndcg_graded_by_hand() -> None:
    # DCG@10 = 2/log2(3) + 1/log2(5); IDCG@10 = 2/log2(2) + 1/log2(3) + 1/log2(4)
    dcg = 2 / math.log2(3) + 1 / math.log2(5)
    idcg = 2 / 1 + 1 / math.log2(3) + 1 / 2
    assert ndcg_at_k(RANKING, GRADED, 10) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(RANKING, GRADED, 10) == pytest.approx(0.540586, abs=1e-6)


def test_ndcg_binary_matches_trec_eval_ndcg_cut() -> None:
    # trec_eval ndcg_cut.10 for ranking a b c with b and c relevant:
    # (1/log2 3 + 1/log2 4) / (1 + 1/log2 3) = 0.693426
    assert ndcg_at_k(["a", "b", "c"], {"b": 1, "c": 1}, 10) == pytest.approx(0.693426, abs=1e-6)
    # the cut: at k=2 only b counts, and the ideal has two relevant documents
    assert ndcg_at_k(["a", "b", "c"], {"b": 1, "c": 1}, 2) == pytest.approx(
        (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    )


def test_ndcg_perfect_and_empty() -> None:
    assert ndcg_at_k(["d2", "d4", "d9"], GRADED, 10) == pytest.approx(1.0)
    assert ndcg_at_k([], GRADED, 10) == 0.0
    assert ndcg_at_k(RANKING, {"d1": 0, "d2": -1}, 10) == 0.0


def test_recall_by_hand() -> None:
    assert recall_at_k(RANKING, GRADED, 1) == 0.0
    assert recall_at_k(RANKING, GRADED, 2) == pytest.approx(1 / 3)
    assert recall_at_k(RANKING, GRADED, 5) == pytest.approx(2 / 3)
    assert recall_at_k(RANKING, {"x": 0}, 5) == 0.0


def test_mrr_uses_the_whole_ranking() -> None:
    assert mrr(RANKING, GRADED) == 0.5
    long = [f"n{i}" for i in range(10)] + ["d2"]
    assert mrr(long, GRADED) == pytest.approx(1 / 11)
    assert ndcg_at_k(long, GRADED, 10) == 0.0
    assert mrr(["d5"], GRADED) == 0.0  # grade 0 is not relevant


def test_hit_by_hand() -> None:
    assert hit_at_k(RANKING, GRADED, 1) == 0.0
    assert hit_at_k(RANKING, GRADED, 2) == 1.0
    assert hit_at_k(["d5", "d1"], GRADED, 10) == 0.0


def test_score_query_names_every_metric_in_order() -> None:
    scores = score_query(RANKING, GRADED, [1, 5])
    assert list(scores) == ["ndcg@10", "mrr", "recall@1", "recall@5", "hit@1", "hit@5"]
    assert scores["recall@5"] == pytest.approx(2 / 3)
    assert scores["hit@5"] == 1.0
