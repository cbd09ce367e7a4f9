"""The one BM25 idf and tf the local reranker and the extractive answerer share."""

from __future__ import annotations

import math

import pytest

from aisearch_local.text import bm25_idf, bm25_tf


def test_idf_is_the_non_negative_lucene_form() -> None:
    assert bm25_idf(10, 1) == pytest.approx(math.log(1 + 9.5 / 1.5))
    assert bm25_idf(3, 3) == pytest.approx(math.log(1 + 0.5 / 3.5))  # every document: still > 0
    assert bm25_idf(100, 1) > bm25_idf(100, 10) > bm25_idf(100, 100) > 0


def test_tf_saturates_and_normalises_length() -> None:
    assert bm25_tf(1, 10, 10, 1.2, 0.75) == pytest.approx(1.0)  # average length, one occurrence
    assert bm25_tf(10**6, 10, 10, 1.2, 0.75) == pytest.approx(2.2, rel=1e-5)  # -> k1 + 1
    assert bm25_tf(2, 20, 10, 1.2, 0.75) < bm25_tf(2, 10, 10, 1.2, 0.75)  # longer: less
    assert bm25_tf(2, 20, 10, 1.2, 0.0) == bm25_tf(2, 10, 10, 1.2, 0.0)  # b = 0: no length
