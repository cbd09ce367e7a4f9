"""Exact vs ANN (HNSW, usearch) vector search on real-text dense vectors.

Run: ``OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_ann.py [--sizes 10000,100000]``
(single-threaded BLAS, as ``aisearch-local serve`` runs it; ``--ef 64,128`` picks the HNSW ``ef``)

The vectors are wordllama embeddings (the ``[semantic]`` extra, bundled weights, offline) of
BEIR SciFact (``../shared/data/scifact`` or ``--data``): its abstracts' sentences first, then
windows of 20 to 120 words cut at random places in the corpus with a tenth of their words
dropped, until there are as many as the largest size; the queries are SciFact's. ``--vectors``
and ``--queries`` take ``.npy`` files instead (float32, unit rows), e.g. to reuse 1M vectors.

For every size it prints, for the exact scan (numpy, what the server does without a graph)
and for the graph through :class:`aisearch_local.ann.AnnManager` (what the server does with
one; candidates re-scored exactly) at each ``ef``: the median query latency, recall@10 and
recall@50 against the exact top (the server takes 50 vector candidates); the build time, the
graph's memory (RSS growth) and its save and load times; the latency of adding and removing
1,000 rows; and a 10 % and a 50 % metadata-filtered search (a random subset of rows).

:func:`run` returns the figures (one dict per size) for ``benchmarks/bench_scale.py``.
Builds above 100k rows take minutes: run them under ``flock /work/wt/heavy.lock`` on a shared
machine. Target at 1M: <= 20 ms with recall@10 >= 0.95 (issue #16).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from aisearch_local.ann import EXPANSION_SEARCH, AnnManager
from aisearch_local.records import InstanceIndex, InstanceRecord
from aisearch_local.search import vector_candidates
from aisearch_local.vectors import VectorChange, VectorTable, new_nonce

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "scifact"
N_QUERIES = 200


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:  # Linux; elsewhere the memory column reads 0
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def rss_mib() -> float:
    """The process's resident memory in MiB (0 where /proc is missing)."""
    try:
        return _rss_mib()
    except OSError:
        return 0.0


def corpus_texts(data: Path, n: int, seed: int = 0) -> list[str]:
    """``n`` distinct real-text chunks from SciFact: sentences, then perturbed windows."""
    with gzip.open(data / "corpus.jsonl.gz", "rt", encoding="utf-8") as fh:
        docs = [json.loads(line) for line in fh]
    sentences = [s for d in docs for s in re.split(r"(?<=[.!?])\s+", d["text"]) if len(s) > 20]
    texts = list(dict.fromkeys(sentences))[:n]
    words = " ".join(d["title"] + " " + d["text"] for d in docs).split()
    rng = np.random.default_rng(seed)
    while len(texts) < n:
        start = int(rng.integers(0, len(words) - 130))
        window = words[start : start + int(rng.integers(20, 120))]
        keep = rng.random(len(window)) > 0.1
        texts.append(" ".join(w for w, k in zip(window, keep, strict=True) if k))
    return texts


def embed_corpus(data: Path, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (``n`` corpus vectors, query vectors), wordllama, offline."""
    from aisearch_local.embed import WordLlamaEmbedder

    embedder = WordLlamaEmbedder()
    texts = corpus_texts(data, n)
    vecs = np.concatenate(
        [embedder.embed(texts[i : i + 20_000]) for i in range(0, len(texts), 20_000)]
    )
    with (data / "queries.jsonl").open(encoding="utf-8") as fh:
        queries = [json.loads(line)["text"] for line in fh][:N_QUERIES]
    return vecs, embedder.embed(queries)


WRITES = 30
"""Small writes timed one by one (each followed by one search, as an upload then a query)."""
WRITE_ROWS = 10
"""Rows each small write removes and adds (an item of 10 chunks re-indexed)."""


def _table(matrix: np.ndarray) -> VectorTable:
    """A vector table (the server's, in memory) over ``matrix`` with room for the writes."""
    n, dim = matrix.shape
    cap = n + 1_000 + WRITES * WRITE_ROWS + 1_024
    buf = np.empty((cap, dim), dtype=np.float32)
    buf[:n] = matrix
    cids = np.zeros(cap, dtype=np.int64)
    cids[:n] = np.arange(1, n + 1)
    return VectorTable(dim, new_nonce(), 0, buf, cids, np.ones(cap, dtype=np.int64), n)


def _write(table: VectorTable, dead: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, float]:
    """Tombstone the chunks ``dead`` and append ``vectors``: (new chunk ids, seconds taken)."""
    first = int(table.head()["rows"]) + 1  # the table holds cids 1..rows: ids only grow
    cids = np.arange(first, first + len(vectors), dtype=np.int64)
    change = VectorChange(nonce=table.nonce, gen=table.gen + 1, dead_cids=dead.tolist())
    change.add(cids, np.ones(len(cids), dtype=np.int64), vectors)
    t0 = time.perf_counter()
    assert table.apply(change) is not None
    return cids, time.perf_counter() - t0


def _moved(matrix: np.ndarray, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The vectors of ``rows`` moved a little (re-indexed content), unit length."""
    out = matrix[rows] + rng.standard_normal((len(rows), matrix.shape[1])).astype(np.float32) * 0.01
    moved: np.ndarray = out / np.linalg.norm(out, axis=1, keepdims=True)
    return moved


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1e3


def _recall(got: np.ndarray, want: np.ndarray) -> float:
    return len(set(got.tolist()) & set(want.tolist())) / max(len(want), 1)


def measure(
    matrix: np.ndarray, queries: np.ndarray, efs: list[int], directory: Path
) -> dict[str, Any]:
    """Every figure for one size (see the module docstring)."""
    n, dim = matrix.shape
    inst = InstanceRecord(
        pk=n, namespace="bench", id=f"ann-{n}", config={}, embedder="wordllama", dim=dim,
        source_dir=None, created_at="bench", modified_at="bench",
    )  # fmt: skip
    table = _table(matrix)
    idx = table.snapshot(1)
    out: dict[str, Any] = {"rows": n, "dim": dim}
    exact: list[tuple[np.ndarray, np.ndarray]] = []
    times: list[float] = []
    for q in queries:
        t0 = time.perf_counter()
        exact.append(vector_candidates(idx, q, None, 50))
        times.append(time.perf_counter() - t0)
    out["exact_ms"] = _median_ms(times)

    rss0 = rss_mib()
    manager = AnnManager(directory, mode="ann", min_rows=0)
    t0 = time.perf_counter()
    manager.warm(inst, idx)
    manager.wait(inst)
    out["build_s"] = time.perf_counter() - t0
    out["graph_mib"] = rss_mib() - rss0
    out["ef"] = {}
    for ef in efs:
        manager.expansion = ef
        times, r10, r50 = [], [], []
        for q, (rows, _) in zip(queries, exact, strict=True):
            t0 = time.perf_counter()
            found = manager.candidates(inst, idx, q, 50, None)
            times.append(time.perf_counter() - t0)
            assert found is not None
            r10.append(_recall(found[0][:10], rows[:10]))
            r50.append(_recall(found[0], rows))
        out["ef"][ef] = {
            "ms": _median_ms(times),
            "recall@10": float(np.mean(r10)),
            "recall@50": float(np.mean(r50)),
        }
    manager.expansion = EXPANSION_SEARCH

    rng = np.random.default_rng(1)
    out["filtered"] = {}
    for share in (0.1, 0.5):
        allowed = np.asarray(rng.random(n) < share, dtype=bool)
        times_exact, times_ann, r10 = [], [], []
        for q in queries:
            t0 = time.perf_counter()
            want, _ = vector_candidates(idx, q, allowed, 50)
            times_exact.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            found = manager.candidates(inst, idx, q, 50, allowed)
            if found is None:  # the server's fallback: exact over the allowed rows
                found = vector_candidates(idx, q, allowed, 50)
            times_ann.append(time.perf_counter() - t0)
            r10.append(_recall(found[0][:10], want[:10]))
        out["filtered"][share] = {
            "exact_ms": _median_ms(times_exact),
            "ann_ms": _median_ms(times_ann),
            "recall@10": float(np.mean(r10)),
        }

    # writes through the vector table (its listeners hear them), each followed by a search
    exact_after = [0]

    def search_after(idx: InstanceIndex, q: np.ndarray) -> tuple[np.ndarray, float]:
        t0 = time.perf_counter()
        found = manager.candidates(inst, idx, q, 50, None)
        if found is None:  # the server's fallback: the exact scan
            exact_after[0] += 1
            found = vector_candidates(idx, q, None, 50)
        return idx.cids[found[0]], time.perf_counter() - t0

    version = 2
    applies, firsts = [], []
    for w in range(WRITES):
        snap = table.snapshot(version)
        live = snap.cids if snap.alive is None else snap.cids[snap.alive]
        dead = rng.choice(live[: n // 2], WRITE_ROWS, replace=False)
        new, took = _write(table, dead, _moved(matrix, rng.integers(0, n, WRITE_ROWS), rng))
        applies.append(took)
        version += 1
        after = table.snapshot(version)
        found, took = search_after(after, after.matrix[len(after.cids) - 1 - w % WRITE_ROWS])
        firsts.append(took)
        assert found[0] == new[-1 - w % WRITE_ROWS], "a new row is not found by its own vector"
        assert not np.isin(found, dead).any(), "a deleted row was returned"
    t0 = time.perf_counter()
    manager.wait(inst)
    out["small_writes"] = {
        "apply_ms": _median_ms(applies),
        "first_search_ms": _median_ms(firsts),
        "in_step_ms": (time.perf_counter() - t0) * 1e3,
        "exact": exact_after[0],
        "p90_ms": float(np.percentile(firsts, 90)) * 1e3,
    }

    # a big write: 1,000 rows gone and 1,000 new (vectors of other rows, moved a little)
    k = min(1_000, n // 10)
    snap = table.snapshot(version)
    dead = (snap.cids if snap.alive is None else snap.cids[snap.alive])[:k]
    new, took = _write(table, dead, _moved(matrix, np.arange(k), rng))
    version += 1
    changed = table.snapshot(version)
    found, took = search_after(changed, queries[0])
    assert not np.isin(found, dead).any(), "a deleted row was returned"
    out["first_search_after_write_ms"] = took * 1e3
    t0 = time.perf_counter()
    manager.wait(inst)
    out["apply_write_ms"] = (time.perf_counter() - t0) * 1e3
    times = []
    for q in queries[:50]:
        times.append(search_after(changed, q)[1])
    out["after_writes_ms"] = _median_ms(times)

    base = directory / str(n)
    t0 = time.perf_counter()
    manager.close()  # saves
    out["save_s"] = time.perf_counter() - t0
    out["file_mib"] = sum(p.stat().st_size for p in directory.glob(f"{n}.*")) / 2**20
    reloaded = AnnManager(directory, mode="ann", min_rows=0)
    t0 = time.perf_counter()
    reloaded.warm(inst, changed)
    reloaded.wait(inst)
    out["load_s"] = time.perf_counter() - t0
    reloaded.close()
    assert base.with_name(f"{n}.json").exists()
    return out


def run(
    sizes: list[int],
    efs: list[int] | None = None,
    *,
    data: Path = DEFAULT_DATA,
    vectors: Path | None = None,
    queries: Path | None = None,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Measure each size; return one dict of figures per size (see :func:`measure`).

    ``on_result`` is called with each size's figures as soon as they are measured.
    """
    efs = efs or sorted({64, 128, EXPANSION_SEARCH, 256})
    if vectors is not None and queries is not None:
        matrix = np.load(vectors, mmap_mode="r")
        qvecs = np.load(queries)[:N_QUERIES]
    else:
        matrix, qvecs = embed_corpus(data, max(sizes))
    results = []
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-ann-") as tmp:
            sub = np.ascontiguousarray(matrix[:n], dtype=np.float32)
            results.append(measure(sub, np.asarray(qvecs, dtype=np.float32), efs, Path(tmp)))
        if on_result is not None:
            on_result(results[-1])
    return results


def report(results: list[dict[str, Any]]) -> None:
    """Print the figures, one block per size."""
    for r in results:
        print(
            f"\n{r['rows']:>9,} rows x {r['dim']}: exact {r['exact_ms']:.2f} ms | build "
            f"{r['build_s']:.1f} s, graph +{r['graph_mib']:.0f} MiB RSS, files "
            f"{r['file_mib']:.0f} MiB, save {r['save_s']:.2f} s, load {r['load_s']:.2f} s"
        )
        for ef, f in r["ef"].items():
            print(
                f"  ann ef={ef:<4} {f['ms']:7.2f} ms  recall@10 {f['recall@10']:.4f}  "
                f"recall@50 {f['recall@50']:.4f}  ({r['exact_ms'] / f['ms']:.0f}x exact)"
            )
        for share, f in r["filtered"].items():
            print(
                f"  filter {share:.0%}: exact {f['exact_ms']:.2f} ms, ann {f['ann_ms']:.2f} ms, "
                f"recall@10 {f['recall@10']:.4f}"
            )
        sw = r["small_writes"]
        print(
            f"  {WRITES} writes of {WRITE_ROWS} removed + {WRITE_ROWS} added rows, each then "
            f"one search: write {sw['apply_ms']:.2f} ms, next search {sw['first_search_ms']:.2f} "
            f"ms (medians; p90 {sw['p90_ms']:.2f} ms; {sw['exact']} of them exact); graph in "
            f"step {sw['in_step_ms']:.0f} ms after the last"
        )
        print(
            f"  write of 1,000 removed + 1,000 added rows: first search "
            f"{r['first_search_after_write_ms']:.1f} ms, graph in step after "
            f"{r['apply_write_ms']:.0f} ms; then {r['after_writes_ms']:.2f} ms a search",
            flush=True,
        )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000", help="comma-separated row counts")
    parser.add_argument("--ef", default=None, help="comma-separated HNSW ef values")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the SciFact folder")
    parser.add_argument("--vectors", type=Path, help=".npy corpus vectors (with --queries)")
    parser.add_argument("--queries", type=Path, help=".npy query vectors (with --vectors)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    efs = [int(s) for s in args.ef.split(",")] if args.ef else None
    if (args.vectors is None) != (args.queries is None):
        parser.error("--vectors and --queries go together")
    if args.vectors is None and not (args.data / "corpus.jsonl.gz").exists():
        parser.error(f"no SciFact corpus in {args.data}: pass --data or --vectors/--queries")
    run(
        sizes,
        efs,
        data=args.data,
        vectors=args.vectors,
        queries=args.queries,
        on_result=lambda result: report([result]),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
