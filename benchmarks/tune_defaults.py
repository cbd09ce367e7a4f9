"""Retrieval quality of the local server's defaults on BEIR SciFact (train): nDCG@10.

Run: ``.venv/bin/python benchmarks/tune_defaults.py [--data DIR] [--embedder hashing]
[--embedder wordllama] [--limit N] [--config NAME ...] [--index-dir DIR]``; ``--sample`` runs
20 questions written for the bundled sample corpus instead (MRR and top-1).

What it measures, exactly as a user meets the server:

* an instance created with **no retrieval options** (``create_instance("scifact")``);
* every abstract uploaded through the items API: key ``<doc id>.txt``, body ``title`` + a
  blank line + ``text``;
* every train claim sent to the ordinary search API (over HTTP, through :class:`AISearchClient`),
  with the options of each configuration in :data:`CONFIGS` (``default`` sends none);
* nDCG@10 with binary relevance and a log2 discount (as BEIR; :mod:`aisearch_eval.metrics`)
  over the distinct item keys of the returned chunks, in order; also recall@10 and the number
  of claims answered with nothing. Claims judged with no relevant document are left out.

The data (CC BY-NC) is read from ``../shared/data/scifact`` (next to the repository) or
``--data``; it is never copied. Without it the script says so and exits 0.

``--set NAME=VALUE`` overrides a tuning constant of :mod:`aisearch_local.search` in this
process (the server runs in a thread here), for exploring; the defaults are what ships.
"""

from __future__ import annotations

import os

# the server (aisearch-local serve) runs numpy's BLAS single-threaded unless told otherwise; in
# this process a multi-threaded BLAS fights the FTS5 worker thread (hybrid: 2 to 10 times slower)
if "OMP_NUM_THREADS" not in os.environ:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import gzip
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from aisearch import AISearchClient
from aisearch_eval.metrics import ndcg_at_k, recall_at_k
from aisearch_local import search as search_module
from aisearch_local.testing import LocalServer

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "scifact"
INSTANCE = "scifact"
K = 10

CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},
    "hybrid-or": {"retrieval": {"keyword_match_mode": "or"}},
    "hybrid-max": {"retrieval": {"fusion_method": "max"}},
    "hybrid-max-or": {"retrieval": {"fusion_method": "max", "keyword_match_mode": "or"}},
    "keyword-and": {"retrieval": {"retrieval_type": "keyword"}},
    "keyword-or": {"retrieval": {"retrieval_type": "keyword", "keyword_match_mode": "or"}},
    "vector": {"retrieval": {"retrieval_type": "vector"}},
}
"""Named ``ai_search_options`` (``max_num_results`` is added: :data:`K`)."""


SAMPLE_QUESTIONS = {
    "How long should a pour-over brew take?": "brewing/pour-over-v60.md",
    "What causes a slow drawdown in a V60?": "troubleshooting/slow-drawdown-pour-over.md",
    "Why does my espresso taste sour and thin?": "troubleshooting/sour-espresso.md",
    "How long should cold brew steep in the fridge?": "brewing/cold-brew.md",
    "How should I store coffee beans to keep them fresh?": "roasting/storage-and-freshness.md",
    "Which roast level is the most acidic?": "roasting/roast-levels.md",
    "How do I stop my grinder from clumping?": "troubleshooting/grinder-clumping-and-static.md",
    "What water temperature for a French press?": "brewing/french-press.md",
    "How do I descale an espresso machine?": "equipment/machine-maintenance.md",
    "How does a cortado differ from a gibraltar?": "recipes/cortado-and-gibraltar.txt",
    "Why does my milk not foam when steaming?": "troubleshooting/milk-steaming-problems.md",
    "How are decaf beans made?": "beans/decaf-methods.html",
    "What happens at first crack during roasting?": "roasting/first-crack-and-maillard.txt",
    "How long should beans rest after roasting?": "roasting/resting-and-degassing.md",
    "Why is my coffee weak and watery?": "troubleshooting/weak-or-watery-coffee.txt",
    "What does a natural process coffee taste like?": "beans/washed-vs-natural-processing.md",
    "How do I make an affogato?": "recipes/affogato.md",
    "How do I brew with an AeroPress?": "brewing/aeropress.txt",
    "What is channeling in espresso?": "troubleshooting/channeling.md",
    "Which minerals in water matter for brewing?": "brewing/water-chemistry.md",
}
"""20 questions written for the bundled sample corpus, each with the one document answering it
(``--sample``: MRR and top-1 over distinct item keys)."""


def sample(embedders: Sequence[str]) -> Iterator[str]:
    """Upload the sample corpus through the items API; yield MRR / top-1 per configuration."""
    from aisearch_local.sample_corpus import CUSTOM_METADATA, iter_sample_documents

    yield f"Sample corpus: {len(SAMPLE_QUESTIONS)} questions; MRR and top-1 over item keys"
    yield ""
    yield "| embedder | configuration | MRR | top-1 |"
    yield "|---|---|---|---|"
    for embedder in embedders:
        with LocalServer(token="t", embedder=embedder) as server:
            client = AISearchClient(
                account_id=server.account_id, api_token="t", base_url=server.base_url
            )
            with client:
                client.create_instance(INSTANCE, custom_metadata=CUSTOM_METADATA)
                for doc in iter_sample_documents():
                    client.upload_item(INSTANCE, doc.key, doc.data, metadata=doc.metadata)
                for name in ("default", "keyword-or", "vector"):
                    ranks = []
                    for question, want in SAMPLE_QUESTIONS.items():
                        options = {"retrieval": {**CONFIGS[name].get("retrieval", {})}}
                        result = client.search(INSTANCE, question, options=options)
                        keys = list(dict.fromkeys(c.item.key for c in result.chunks))
                        ranks.append(keys.index(want) + 1 if want in keys else 0)
                    mrr = statistics.fmean(1 / r if r else 0.0 for r in ranks)
                    top1 = sum(r == 1 for r in ranks)
                    yield f"| {embedder} | {name} | {mrr:.3f} | {top1} of {len(ranks)} |"


def load(data: Path) -> tuple[list[dict[str, str]], dict[str, str], dict[str, set[str]]]:
    """Return (corpus rows, claims by id, relevant doc ids by claim id).

    A claim judged with no relevant document is left out (no ranking can score on it), as
    :mod:`aisearch_eval` leaves out queries without judgements.
    """
    with gzip.open(data / "corpus.jsonl.gz", "rt", encoding="utf-8") as fh:
        corpus = [json.loads(line) for line in fh]
    with (data / "queries.jsonl").open(encoding="utf-8") as fh:
        queries = {q["_id"]: q["text"] for q in map(json.loads, fh)}
    judged = json.loads((data / "qrels.json").read_text())
    qrels = {qid: set(docs) for qid, docs in judged.items() if docs and qid in queries}
    return corpus, {qid: queries[qid] for qid in qrels}, qrels


def distinct_keys(chunks: Sequence[Any]) -> list[str]:
    """The doc ids of the returned chunks, in order, each once."""
    out: dict[str, None] = {}
    for chunk in chunks:
        out.setdefault(chunk.item.key.removesuffix(".txt"), None)
    return list(out)


def index_corpus(client: AISearchClient, corpus: Sequence[Mapping[str, str]]) -> float:
    """Create the instance (no retrieval options) and upload every abstract; return seconds."""
    started = time.perf_counter()
    client.create_instance(INSTANCE)
    for i, doc in enumerate(corpus, 1):
        body = f"{doc['title']}\n\n{doc['text']}".strip()
        client.upload_item(INSTANCE, f"{doc['_id']}.txt", body)
        if i % 1000 == 0:
            print(f"  uploaded {i}/{len(corpus)}", file=sys.stderr)
    return time.perf_counter() - started


def evaluate(
    client: AISearchClient,
    queries: Mapping[str, str],
    qrels: Mapping[str, set[str]],
    options: Mapping[str, Any],
) -> dict[str, float]:
    """Run every claim with ``options``; return nDCG@10, recall@10, empty answers, ms/query."""
    opts = json.loads(json.dumps(options))
    opts.setdefault("retrieval", {}).setdefault("max_num_results", K)
    scores: list[float] = []
    recalls: list[float] = []
    empty = 0
    times: list[float] = []
    for qid, text in queries.items():
        started = time.perf_counter()
        result = client.search(INSTANCE, text, options=opts)
        times.append(time.perf_counter() - started)
        keys = distinct_keys(result.chunks)
        empty += not keys
        judgements = dict.fromkeys(qrels[qid], 1.0)  # binary relevance
        scores.append(ndcg_at_k(keys, judgements, K))
        recalls.append(recall_at_k(keys, judgements, K))
    return {
        "ndcg@10": statistics.fmean(scores) if scores else 0.0,
        "recall@10": statistics.fmean(recalls) if recalls else 0.0,
        "empty": float(empty),
        "ms": statistics.median(times) * 1000 if times else 0.0,
    }


def _apply_overrides(pairs: Sequence[str]) -> None:
    for pair in pairs:
        name, _, value = pair.partition("=")
        if not hasattr(search_module, name):
            raise SystemExit(f"--set: aisearch_local.search has no constant {name!r}")
        current = getattr(search_module, name)
        setattr(search_module, name, type(current)(json.loads(value)))


def run(args: argparse.Namespace) -> Iterator[str]:
    """Index once per embedder, run every configuration, yield the table's lines."""
    corpus, queries, qrels = load(args.data)
    if not queries:
        raise SystemExit(f"{args.data}: no claim has a relevant document in qrels.json")
    if args.limit:
        queries = dict(list(queries.items())[: args.limit])
    names = args.config or list(CONFIGS)
    yield f"SciFact train: {len(corpus)} abstracts, {len(queries)} claims; nDCG@{K}"
    yield ""
    yield "| embedder | configuration | nDCG@10 | recall@10 | empty answers | median ms/query |"
    yield "|---|---|---|---|---|---|"
    for embedder in args.embedder or ["hashing"]:
        base = args.index_dir / embedder if args.index_dir else None
        with tempfile.TemporaryDirectory(prefix="aisearch-tune-") as tmp:
            data_dir = base or Path(tmp)
            fresh = not (data_dir / "aisearch-local.sqlite3").exists()
            with LocalServer(data_dir=data_dir, token="t", embedder=embedder) as server:
                client = AISearchClient(
                    account_id=server.account_id, api_token="t", base_url=server.base_url
                )
                with client:
                    if fresh:
                        seconds = index_corpus(client, corpus)
                        print(f"  {embedder}: indexed in {seconds:.0f} s", file=sys.stderr)
                    for name in names:
                        m = evaluate(client, queries, qrels, CONFIGS[name])
                        yield (
                            f"| {embedder} | {name} | {m['ndcg@10']:.3f} | {m['recall@10']:.3f}"
                            f" | {int(m['empty'])} | {m['ms']:.1f} |"
                        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="BEIR SciFact folder")
    parser.add_argument(
        "--embedder", action="append", help="hashing (default) and/or wordllama; repeatable"
    )
    parser.add_argument("--config", action="append", choices=list(CONFIGS), help="repeatable")
    parser.add_argument("--limit", type=int, default=0, help="only the first N claims")
    parser.add_argument("--index-dir", type=Path, help="keep the indexed databases here")
    parser.add_argument("--set", action="append", default=[], help="NAME=JSON (exploring)")
    parser.add_argument(
        "--sample", action="store_true", help="the bundled sample corpus instead of SciFact"
    )
    args = parser.parse_args(argv)
    if args.sample:
        _apply_overrides(args.set)
        for line in sample(args.embedder or ["hashing"]):
            print(line, flush=True)
        return 0
    if not (args.data / "corpus.jsonl.gz").exists():
        print(f"SciFact not found at {args.data}: skipped (pass --data DIR)")
        return 0
    _apply_overrides(args.set)
    for line in run(args):
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
