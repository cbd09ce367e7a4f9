"""Evaluate an AI Search instance's retrieval on a golden set: ``aisearch-eval``.

Works against Cloudflare or a local server through the ordinary client. Install with
``pip install "aisearch-py[eval]"`` (rich for the progress bar and table, matplotlib for the
plot); importing ``aisearch`` never imports this package.

Example:
    >>> from aisearch_eval import SAMPLE_GOLDEN_SET, build_grid, load_golden_set
    >>> golden = load_golden_set(SAMPLE_GOLDEN_SET)
    >>> configs = build_grid([("retrieval.retrieval_type", ["vector", "hybrid"])])
"""

from __future__ import annotations

from pathlib import Path

from aisearch_eval.golden import Document, GoldenSet, GoldenSetError, load_golden_set
from aisearch_eval.grid import Config, GridError, build_grid, load_grid_file, parse_assignment
from aisearch_eval.metrics import hit_at_k, mrr, ndcg_at_k, recall_at_k, score_query
from aisearch_eval.report import figure, plot, to_markdown
from aisearch_eval.runner import (
    ConfigResult,
    EvalReport,
    QueryFailure,
    UploadReport,
    evaluate,
    evaluate_sync,
    ranking,
    upload_corpus,
)

SAMPLE_GOLDEN_SET: Path = Path(__file__).resolve().parent / "data" / "coffee_questions.jsonl"
"""Questions about ``aisearch_local``'s sample corpus, with the items that answer them."""

__all__ = [
    "SAMPLE_GOLDEN_SET",
    "Config",
    "ConfigResult",
    "Document",
    "EvalReport",
    "GoldenSet",
    "GoldenSetError",
    "GridError",
    "QueryFailure",
    "UploadReport",
    "build_grid",
    "evaluate",
    "evaluate_sync",
    "figure",
    "hit_at_k",
    "load_golden_set",
    "load_grid_file",
    "mrr",
    "ndcg_at_k",
    "parse_assignment",
    "plot",
    "ranking",
    "recall_at_k",
    "score_query",
    "to_markdown",
    "upload_corpus",
]
