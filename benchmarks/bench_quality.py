"""Retrieval quality on BEIR SciFact (train split): the local server's configurations beside BM25.

For every local embedder (``hashing``, and ``wordllama`` when installed) a fresh local server
runs in a child process; an instance is created with **no retrieval options**, the 5,183
abstracts are uploaded through the items API (timed), and ``aisearch-eval`` scores the default
configuration and a few alternatives (nDCG@10, recall@k, MRR, hit@k). A BM25 reference (bm25s,
English stop words and Snowball stemming, title + text) is scored on the same queries, so the
figures have a fixed point. bm25s is in the ``bench`` dependency group:
``uv pip install --group bench``.

The data is read from ``../shared/data/scifact`` (relative to the project root) or ``--data``;
it is CC BY-NC, so it is never copied into the project. Without it the script says so and
exits 0.

    python benchmarks/bench_quality.py [--data PATH] [--embedders hashing,wordllama]
        [--limit N] [--markdown OUT.md]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import multiprocessing
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aisearch import AsyncAISearchClient
from aisearch_eval import (
    EvalReport,
    GoldenSet,
    build_grid,
    evaluate,
    load_golden_set,
    score_query,
    upload_corpus,
)
from aisearch_eval.grid import Config
from aisearch_eval.report import table_rows

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "scifact"
INSTANCE = "scifact"
TOKEN = "bench-token"
KS = (1, 5, 10, 50)


def _retrieval(**options: Any) -> dict[str, Any]:
    return {"retrieval": options}


CONFIGS = [
    Config("keyword and", _retrieval(retrieval_type="keyword", keyword_match_mode="and")),
    Config("keyword or", _retrieval(retrieval_type="keyword", keyword_match_mode="or")),
    Config("vector", _retrieval(retrieval_type="vector")),
    Config("hybrid or, rrf", _retrieval(retrieval_type="hybrid", keyword_match_mode="or")),
    Config(
        "hybrid or, max",
        _retrieval(retrieval_type="hybrid", keyword_match_mode="or", fusion_method="max"),
    ),
]


def _serve(conn: Any, data_dir: str, embedder: str) -> None:
    from aisearch_local.testing import LocalServer

    with LocalServer(data_dir=Path(data_dir), token=TOKEN, embedder=embedder) as server:
        conn.send((server.base_url, server.account_id))
        conn.recv()  # "stop"


@contextmanager
def child_server(embedder: str) -> Iterator[tuple[str, str]]:
    """A local server in a child process (the client and the indexer do not share a GIL)."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    with tempfile.TemporaryDirectory() as tmp:
        proc = ctx.Process(target=_serve, args=(child, tmp, embedder), daemon=True)
        proc.start()
        try:
            yield parent.recv()
        finally:
            parent.send("stop")
            proc.join(timeout=60)


def bm25_reference(golden: GoldenSet) -> dict[str, float] | None:
    """Mean metrics of bm25s on the same queries (None when bm25s is not installed)."""
    if importlib.util.find_spec("bm25s") is None:
        return None
    import bm25s

    stemmer = None
    if importlib.util.find_spec("Stemmer") is not None:
        import Stemmer

        stemmer = Stemmer.Stemmer("english")
    docs = list(golden.documents())
    corpus_tokens = bm25s.tokenize(
        [d.content() for d in docs], stopwords="en", stemmer=stemmer, show_progress=False
    )
    retriever = bm25s.BM25()
    retriever.index(corpus_tokens, show_progress=False)
    qids = list(golden.queries)
    query_tokens = bm25s.tokenize(
        [golden.queries[q] for q in qids], stopwords="en", stemmer=stemmer, show_progress=False
    )
    hits, _ = retriever.retrieve(query_tokens, k=min(max(KS), len(docs)), show_progress=False)
    totals: dict[str, float] = {}
    for qid, row in zip(qids, hits, strict=True):
        ranking = [docs[int(i)].key for i in row]
        for name, value in score_query(ranking, golden.judgements[qid], KS).items():
            totals[name] = totals.get(name, 0.0) + value
    return {name: total / len(qids) for name, total in totals.items()}


async def run_embedder(
    embedder: str, golden: GoldenSet, concurrency: int
) -> tuple[EvalReport, float, int, list[tuple[str, str]]]:
    with child_server(embedder) as (base_url, account_id):
        async with AsyncAISearchClient(
            account_id=account_id, api_token=TOKEN, base_url=base_url, max_retries=5, timeout=120
        ) as client:
            await client.create_instance(INSTANCE)
            up = await upload_corpus(client, INSTANCE, golden, concurrency=concurrency)
            started = time.perf_counter()
            report = await evaluate(
                client,
                INSTANCE,
                golden,
                build_grid(configs=CONFIGS),
                ks=KS,
                concurrency=concurrency,
                depth=50,
            )
            elapsed = time.perf_counter() - started
    print(
        f"{embedder}: uploaded {up.uploaded} documents in {up.seconds:.1f} s "
        f"({up.uploaded / up.seconds:.0f} docs/s, concurrency {concurrency}), "
        f"{len(up.failures)} failed; {len(report.results)} configurations x {len(golden)} "
        f"queries in {elapsed:.1f} s",
        flush=True,
    )
    return report, up.seconds, up.uploaded, up.failures


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="a BEIR folder")
    parser.add_argument("--split", default="train")
    parser.add_argument("--embedders", default="hashing,wordllama")
    parser.add_argument("--limit", type=int, default=None, help="only the first N queries")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--markdown", type=Path, default=None, help="also write the table")
    args = parser.parse_args(argv)
    if not (args.data / "queries.jsonl").is_file():
        print(
            f"skipped: no BEIR SciFact at {args.data} (pass --data PATH); the data is "
            "CC BY-NC and is never copied into the project"
        )
        return 0
    golden = load_golden_set(args.data, split=args.split).limit(args.limit)
    print(f"{args.data.name} {args.split}: {len(golden)} queries", flush=True)
    metric_names = EvalReport("", "", 0, KS, []).metric_names
    header = ["embedder", "configuration", *metric_names, "empty", "failed"]
    rows: list[list[str]] = []
    bm25 = bm25_reference(golden)
    if bm25 is None:
        print("bm25s is not installed (uv pip install --group bench): no BM25 reference")
    else:
        rows.append(["-", "bm25s (reference)", *(f"{bm25[m]:.3f}" for m in metric_names), "-", "-"])
    for embedder in args.embedders.split(","):
        if embedder == "wordllama" and importlib.util.find_spec("wordllama") is None:
            print("wordllama is not installed (pip install 'aisearch-py[semantic]'): skipped")
            continue
        report, _, _, failures = asyncio.run(run_embedder(embedder, golden, args.concurrency))
        for key, error in failures[:5]:
            print(f"  upload failed: {key}: {error}")
        _, config_rows = table_rows(report)
        for row in config_rows:
            rows.append([embedder, row[0], *row[1:-3], row[-2], row[-1]])
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---", "---"] + ["---:"] * (len(header) - 2)) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
    table = "\n".join(lines)
    print()
    print(table)
    if args.markdown:
        args.markdown.write_text(table + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
