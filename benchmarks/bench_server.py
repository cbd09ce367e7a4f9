"""Benchmark of the aisearch_local storage and retrieval pipeline at 10k and 100k chunks.

For each size: generate a synthetic corpus (Zipf vocabulary of 30,000 words, ~100 words per
chunk, 10 chunks per item), ingest it through the store's bulk path with the hashing embedder
(embedding + SQLite/FTS5 insert, one transaction), then time the server-side search pipeline
(``Searcher.search``: filter, candidates, fusion, threshold, ranking, chunk fetch) for hybrid,
keyword and vector retrieval over 200 three-word queries, plus an end-to-end HTTP median through
a real uvicorn server for reference. Prints one table; the server's RSS is read from /proc.

Usage::

    .venv/bin/python benchmarks/bench_server.py            # 10k and 100k
    .venv/bin/python benchmarks/bench_server.py --sizes 10000
"""

from __future__ import annotations

import os

# the server (aisearch-local serve) runs numpy's BLAS single-threaded unless told otherwise
if "OMP_NUM_THREADS" not in os.environ:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from aisearch_local.embed import make_embedder
from aisearch_local.options import resolve_options
from aisearch_local.search import CANDIDATES, Searcher
from aisearch_local.service import LocalService
from aisearch_local.store import NewChunk
from aisearch_local.testing import LocalServer

VOCAB = 30_000
WORDS_PER_CHUNK = 100
CHUNKS_PER_ITEM = 10
QUERIES = 200
TARGETS = {"ingest": 2000.0, "hybrid": 15.0, "keyword": 10.0, "vector": 10.0}


def rss_mb() -> float:
    """Resident set size of this process in MB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def make_vocab(rng: np.random.Generator) -> list[str]:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words: set[str] = set()
    while len(words) < VOCAB:
        n = int(rng.integers(3, 10))
        words.add("".join(rng.choice(letters, n)))
    return sorted(words, key=lambda w: (len(w), w))


def make_chunks(n: int, vocab: list[str], rng: np.random.Generator) -> list[str]:
    ranks = np.arange(1, VOCAB + 1)
    p = 1.0 / ranks**1.07
    p /= p.sum()
    ids = rng.choice(VOCAB, size=(n, WORDS_PER_CHUNK), p=p)
    arr = np.array(vocab, dtype=object)
    return [" ".join(row) for row in arr[ids]]


def make_queries(vocab: list[str], rng: np.random.Generator) -> list[str]:
    mid = vocab[200:3000]
    return [" ".join(rng.choice(mid, 3)) for _ in range(QUERIES)]


def ingest(svc: LocalService, texts: list[str]) -> tuple[float, str]:
    inst = svc.create_instance("default", {"id": f"bench-{len(texts)}"})
    t0 = time.perf_counter()
    batch: list[tuple[str, bytes, dict, int, list[NewChunk], np.ndarray]] = []
    embedder = svc.embedder
    for start in range(0, len(texts), CHUNKS_PER_ITEM * 100):
        group = texts[start : start + CHUNKS_PER_ITEM * 100]
        emb = embedder.embed(group)
        for j in range(0, len(group), CHUNKS_PER_ITEM):
            part = group[j : j + CHUNKS_PER_ITEM]
            n = (start + j) // CHUNKS_PER_ITEM
            chunks = []
            pos = 0
            for t in part:
                chunks.append(NewChunk(text=t, start=pos, end=pos + len(t)))
                pos += len(t) + 1
            data = "\n".join(part).encode()
            meta = {"rating": n % 5, "group": f"g{n % 10}"}
            batch.append(
                (
                    f"folder{n % 20}/doc-{n}.txt",
                    data,
                    meta,
                    1_700_000_000_000 + n,
                    chunks,
                    emb[j : j + len(part)],
                )
            )
        if len(batch) >= 1000:
            svc.store.bulk_insert(inst, batch)
            batch = []
    if batch:
        svc.store.bulk_insert(inst, batch)
    elapsed = time.perf_counter() - t0
    return len(texts) / elapsed, inst.id


def time_search(
    searcher: Searcher, inst, queries: list[str], mode: str, match: str = "or"
) -> tuple[float, float, float]:
    """Return (wall median, wall p95, CPU-time median) in ms over the queries."""
    retrieval = {"retrieval_type": mode, "match_threshold": 0, "keyword_match_mode": match}
    opts = resolve_options({"retrieval": retrieval}, inst.config)
    searcher.search(inst, queries[0], opts)  # warm the numpy index
    times, cpu = [], []
    for q in queries:
        searcher._qcache.clear()
        c0 = time.process_time()
        t0 = time.perf_counter()
        searcher.search(inst, q, opts)
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1], statistics.median(cpu)


def vector_recall(searcher: Searcher, inst, queries: list[str], k: int = 10) -> float:
    """Share of the exact (brute-force) top-k chunks that the served vector search returns."""
    idx = searcher.store.index(inst)
    retrieval = {"retrieval_type": "vector", "match_threshold": 0, "max_num_results": k}
    opts = resolve_options({"retrieval": retrieval}, inst.config)
    hits = 0
    for q in queries:
        served = {c["id"] for c in searcher.search(inst, q, opts)}
        sims = idx.matrix @ searcher.embed_query(q)
        exact_cids = [int(idx.cids[r]) for r in np.argsort(-sims)[:k]]
        rows = searcher.store.chunks_by_cid(exact_cids)
        hits += sum(1 for cid in exact_cids if rows[cid].id in served)
    return hits / (k * len(queries))


def full_scan_median(searcher: Searcher, inst, queries: list[str]) -> float:
    """Median ms of the unpruned scan (``matrix @ query`` + top 50): what a dense query costs."""
    idx = searcher.store.index(inst)
    times = []
    for q in queries:
        qvec = searcher.embed_query(q)
        t0 = time.perf_counter()
        sims = idx.matrix @ qvec
        np.argpartition(-sims, CANDIDATES - 1)[:CANDIDATES]
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def http_median(data_dir: Path, iid: str, queries: list[str], embedder: str) -> float:
    with (
        LocalServer(data_dir=data_dir, embedder=embedder) as server,
        httpx.Client(base_url=server.account_url, timeout=60) as http,
    ):
        http.post(
            f"/ai-search/instances/{iid}/search", json={"query": queries[0]}
        ).raise_for_status()
        times = []
        for q in queries[:100]:
            t0 = time.perf_counter()
            http.post(f"/ai-search/instances/{iid}/search", json={"query": q}).raise_for_status()
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def run(size: int, rng: np.random.Generator, vocab: list[str], embedder: str) -> dict[str, float]:
    texts = make_chunks(size, vocab, rng)
    queries = make_queries(vocab, rng)
    with tempfile.TemporaryDirectory() as tmp:
        svc = LocalService(tmp, embedder=make_embedder(embedder), generator="extractive")
        base_rss = rss_mb()
        rate, iid = ingest(svc, texts)
        inst = svc.store.get_instance("default", iid)
        assert inst is not None
        row: dict[str, float] = {"size": size, "ingest": rate}
        for mode in ("hybrid", "keyword", "vector"):
            med, p95, cpu = time_search(svc.searcher, inst, queries, mode)
            row[mode] = med
            row[f"{mode}_p95"] = p95
            row[f"{mode}_cpu"] = cpu
        row["keyword_and"], _, _ = time_search(svc.searcher, inst, queries, "keyword", "and")
        row["vector_full"] = full_scan_median(svc.searcher, inst, queries)
        row["recall"] = vector_recall(svc.searcher, inst, queries)
        row["rss_index_mb"] = rss_mb() - base_rss
        row["rss_mb"] = rss_mb()
        row["db_mb"] = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 1e6
        svc.close()
        del svc
        gc.collect()
        row["http"] = http_median(Path(tmp), iid, queries, embedder)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--embedder", default="hashing", help="e.g. hashing, hashing:128")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    vocab = make_vocab(rng)
    rows = []
    for size in args.sizes:
        print(f"running {size:,} chunks ...", file=sys.stderr, flush=True)
        rows.append(run(size, rng, vocab, args.embedder))
    print()
    print(
        "| chunks | ingest (chunks/s) | hybrid median / p95 / CPU (ms) "
        "| keyword median / p95 / CPU (ms) | keyword `and` median (ms) "
        "| vector median / p95 / CPU (ms) | full scan median (ms) | HTTP search median (ms) "
        "| vector recall@10 | RSS growth (MB) | DB on disk (MB) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {int(r['size']):,} | {r['ingest']:,.0f} "
            f"| {r['hybrid']:.2f} / {r['hybrid_p95']:.2f} / {r['hybrid_cpu']:.2f} "
            f"| {r['keyword']:.2f} / {r['keyword_p95']:.2f} / {r['keyword_cpu']:.2f} "
            f"| {r['keyword_and']:.2f} "
            f"| {r['vector']:.2f} / {r['vector_p95']:.2f} / {r['vector_cpu']:.2f} "
            f"| {r['vector_full']:.2f} "
            f"| {r['http']:.2f} | {r['recall']:.3f} | {r['rss_index_mb']:.0f} | {r['db_mb']:.0f} |"
        )
    print()
    print("hybrid and keyword use keyword_match_mode 'or' (every query has keyword hits);")
    print("CPU = process CPU time per query (what the search costs on an idle core);")
    print(
        "full scan = the unpruned matrix @ query + top 50 that dense (model) query vectors "
        "and filters keeping over a fifth of the rows pay;"
    )
    print(
        "embedder:",
        args.embedder,
        "| BLAS threads:",
        os.environ.get("OPENBLAS_NUM_THREADS", "default"),
    )
    print(
        "load average while running:",
        Path("/proc/loadavg").read_text().split()[:3],
        f"on {os.cpu_count()} cores",
    )
    print(
        "targets: ingest >= 2,000 chunks/s; hybrid <= 15 ms; keyword and vector <= 10 ms (medians)"
    )
    last = rows[-1]
    for key, target in TARGETS.items():
        ok = last[key] >= target if key == "ingest" else last[key] <= target
        print(
            f"  {key:8s} {'meets' if ok else 'MISSES'} the target at {int(last['size']):,} chunks "
            f"({last[key]:,.2f} vs {target:,.0f})"
        )
    if len(rows) > 1:
        a, b = rows[0], rows[-1]
        growth = b["size"] / a["size"]
        print(
            f"cost growth from {int(a['size']):,} to {int(b['size']):,} chunks "
            f"(x{growth:.0f} data): "
            + ", ".join(f"{m} x{b[m] / a[m]:.1f}" for m in ("hybrid", "keyword", "vector"))
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
