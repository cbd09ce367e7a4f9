"""Tuning retrieval: hybrid vs vector vs keyword, fusion, match modes, thresholds, boosts, filters.

Mirrors notebooks/05_tuning_retrieval.ipynb and saves a plot of `scoring_details` as a PNG.
Runs on a local server seeded with the sample corpus, or on Cloudflare when
CLOUDFLARE_ACCOUNT_ID, CLOUDFLARE_API_TOKEN and AISEARCH_DEMO_INSTANCE are set (the instance
must then have keyword indexing enabled for the keyword and hybrid parts).

Needs `pip install "aisearch-py[examples]"`: `matplotlib` (for the plot) and the local server.
Nothing to start first: without Cloudflare credentials the script starts its own local AI Search
server (`aisearch_local` on 127.0.0.1, a free port, a temporary data directory) and stops it at
the end; `make serve` is not needed.

    python examples/tuning_retrieval.py [PLOT.png]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt
from _target import coffee_target

from aisearch import AISearchClient, SearchResult

QUERY = "How long should coffee rest after roasting?"


def search(client: AISearchClient, instance: str, query: str, **retrieval: Any) -> SearchResult:
    options: dict[str, Any] = {"retrieval": {"max_num_results": 5, **retrieval}}
    if "reranking" in retrieval:
        options["reranking"] = options["retrieval"].pop("reranking")
    return client.search(instance, query, options=options)


def top(result: SearchResult, n: int = 3) -> str:
    return ", ".join(f"{c.item.key.split('/')[-1]} {c.score:.2f}" for c in result.chunks[:n])


def plot(result_rrf: SearchResult, result_max: SearchResult, path: Path) -> Path:
    """Vector vs keyword score of each hybrid hit, and the fused scores of rrf and max."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for rank, chunk in enumerate(result_rrf.chunks, 1):
        d = chunk.scoring_details
        if d is None or d.vector_score is None or d.keyword_score is None:
            continue
        left.scatter(d.vector_score, d.keyword_score, s=40 + 400 * chunk.score, alpha=0.6)
        left.annotate(
            f"{rank}. {chunk.item.key.split('/')[-1][:22]}",
            (d.vector_score, d.keyword_score),
            fontsize=7,
            xytext=(4, 3),
            textcoords="offset points",
        )
    left.set_xlabel("vector_score (cosine)")
    left.set_ylabel("keyword_score (BM25)")
    left.set_title("hybrid hits: the two signals (size = fused score)")
    labels = [f"{i}. {c.item.key.split('/')[-1][:18]}" for i, c in enumerate(result_rrf.chunks, 1)]
    by_id = {c.id: c.score for c in result_max.chunks}
    xs = range(len(labels))
    right.bar([x - 0.2 for x in xs], [c.score for c in result_rrf.chunks], 0.4, label="rrf")
    right.bar(
        [x + 0.2 for x in xs], [by_id.get(c.id, 0.0) for c in result_rrf.chunks], 0.4, label="max"
    )
    right.set_xticks(list(xs), labels, rotation=45, ha="right", fontsize=7)
    right.set_ylabel("score")
    right.set_title("fused score per hit (rrf order)")
    right.legend()
    fig.suptitle(f"scoring_details for {QUERY!r}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(plot_path: Path) -> None:
    with coffee_target() as target:
        client, instance = target.client, target.instance

        print(f"query: {QUERY!r}\n")
        print("retrieval_type (top 3):")
        for kind in ("vector", "keyword", "hybrid"):
            print(f"  {kind:<8} {top(search(client, instance, QUERY, retrieval_type=kind))}")

        print("\nfusion_method for hybrid (top 3):")
        for method in ("rrf", "max"):
            result = search(client, instance, QUERY, retrieval_type="hybrid", fusion_method=method)
            print(f"  {method:<8} {top(result)}")

        print("\nkeyword_match_mode (keyword search, how many chunks match):")
        for mode in ("and", "or"):
            result = search(
                client,
                instance,
                QUERY,
                retrieval_type="keyword",
                keyword_match_mode=mode,
                max_num_results=50,
            )
            print(f"  {mode:<8} {len(result.chunks)} chunk(s)")

        print("\nmatch_threshold (minimum vector similarity, out of 50 candidates):")
        for threshold in (0.0, 0.5, 0.6, 0.65):
            result = search(client, instance, QUERY, match_threshold=threshold, max_num_results=50)
            print(f"  {threshold:<8} {len(result.chunks)} chunk(s)")

        print("\nboost_by on custom metadata ('espresso', top 3 with the boosted field):")
        for boost in (
            None,
            {"field": "published", "direction": "desc"},
            {"field": "rating", "direction": "desc"},
        ):
            result = search(client, instance, "espresso", boost_by=[boost] if boost else [])
            names = [c.item.key.split("/")[-1] for c in result.chunks[:3]]
            if boost:
                values = [c.item.metadata.get(boost["field"]) for c in result.chunks[:3]]
                names = [f"{n} ({boost['field']}={v})" for n, v in zip(names, values, strict=True)]
            shown = ", ".join(names)
            print(f"  {boost or 'no boost'}: {shown}")

        print("\nfilters ('milk', top 3):")
        for filters in (
            {"folder": "recipes/"},
            {"difficulty": "advanced"},
            {"verified": False},
            {"rating": {"$gte": 4.5}, "author": "Tomás Reyes"},
            {"folder": {"$in": ["brewing/", "equipment/"]}},
        ):
            result = search(client, instance, "milk", filters=filters)
            print(f"  {filters}: {top(result) or '(nothing matches)'}")

        print("\ncontext_expansion (length of the top chunk's text):")
        for expansion in (0, 1, 2):
            result = search(client, instance, QUERY, context_expansion=expansion, max_num_results=1)
            print(f"  {expansion}: {len(result.chunks[0].text)} characters")

        print("\nreranking (top 3 with reranking_score):")
        result = search(client, instance, QUERY, reranking={"enabled": True})
        for chunk in result.chunks[:3]:
            score = chunk.scoring_details.reranking_score if chunk.scoring_details else None
            print(f"  {chunk.item.key:<40} reranking_score={score}")

        rrf = search(
            client,
            instance,
            QUERY,
            retrieval_type="hybrid",
            fusion_method="rrf",
            max_num_results=10,
        )
        mx = search(
            client,
            instance,
            QUERY,
            retrieval_type="hybrid",
            fusion_method="max",
            max_num_results=10,
        )
        print(f"\nplot saved to {plot(rrf, mx, plot_path)}")


if __name__ == "__main__":
    default = Path(tempfile.gettempdir()) / "aisearch_scoring_details.png"
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else default)
