"""Benchmark of the local server's vector index lifecycle (issue #16): writes, restart, filters.

For each size: build an instance through the store's bulk path (the synthetic corpus of
``bench_server.py``: ~100-word chunks, 10 chunks per item, metadata ``group`` g0..g9 and
``rating`` 0..4), then measure, in process:

* **upload**: one ``index_document`` (one item, embedding + SQLite transaction + in-memory
  append + vector file append), median over the uploads;
* **first search after an upload**: the hybrid search right after each upload (the index is
  updated, not rebuilt), median;
* **delete / re-index**: the same for a delete and a re-upload of an existing key;
* **filtered hybrid**: hybrid search with a 10 % filter (``{"group": "g3"}``), median over the
  queries, and the filter mask alone (columnar attributes -> numpy mask over the rows);

and, in a fresh subprocess on the same data directory (what ``aisearch-local serve`` does after
a restart): **restart to first search** (open the store, load the vector file, run one hybrid
search), then the first filtered search (builds the item attribute columns), and the process's
RSS against the size of the vector matrix.

Usage::

    .venv/bin/python benchmarks/bench_index.py                  # 10k and 100k
    flock /work/wt/heavy.lock .venv/bin/python benchmarks/bench_index.py --sizes 1000000

``measure(size)`` returns the figures as a dict (``benchmarks/bench_scale.py`` can call it).
"""

from __future__ import annotations

import os

if "OMP_NUM_THREADS" not in os.environ:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_server import ingest, make_chunks, make_queries, make_vocab, rss_mb

from aisearch_local.embed import make_embedder
from aisearch_local.options import resolve_options
from aisearch_local.service import LocalService

TARGETS = {
    "upload_ms": 50.0,
    "search_after_upload_ms": 100.0,
    "restart_s": 3.0,
    "filtered_hybrid_ms": 50.0,
    "rss_ratio": 1.5,
}
LIVE_WRITES = 15
FILTER = {"group": "g3"}


def _opts(inst: Any, **retrieval: Any) -> Any:
    retrieval = {"retrieval_type": "hybrid", "match_threshold": 0, **retrieval}
    return resolve_options({"retrieval": retrieval}, inst.config)


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return (time.perf_counter() - t0) * 1000, out


def live(svc: LocalService, iid: str, queries: list[str], texts: list[str]) -> dict[str, float]:
    """Upload, delete and re-index latencies and the search right after each (ms, medians)."""
    inst = svc.store.get_instance("default", iid)
    assert inst is not None
    opts = _opts(inst)
    svc.searcher.search(inst, queries[0], opts)  # the table is loaded
    _wait_for_columns(svc, inst)  # a server that has been up a while
    up, after, delete, after_delete, reindex, after_reindex = [], [], [], [], [], []
    for i in range(LIVE_WRITES):
        data = texts[i].encode()
        meta = {"group": f"g{i % 10}", "rating": i % 5}
        ms, _ = _timed(svc.index_document, inst, key=f"live/{i}.txt", data=data, metadata=meta)
        up.append(ms)
        svc.searcher._qcache.clear()
        after.append(_timed(svc.searcher.search, inst, queries[i + 1], opts)[0])
    for i in range(LIVE_WRITES):
        item = svc.store.get_item_by_key(inst, f"live/{i}.txt")
        assert item is not None
        if i % 2:
            delete.append(_timed(svc.delete_item, inst, item)[0])
            after_delete.append(_timed(svc.searcher.search, inst, queries[i + 30], opts)[0])
        else:
            data = texts[i + 100].encode()
            key = f"live/{i}.txt"
            reindex.append(_timed(svc.index_document, inst, key=key, data=data, metadata={})[0])
            after_reindex.append(_timed(svc.searcher.search, inst, queries[i + 60], opts)[0])
    med = statistics.median
    return {
        "upload_ms": med(up),
        "search_after_upload_ms": med(after),
        "delete_ms": med(delete),
        "search_after_delete_ms": med(after_delete),
        "reindex_ms": med(reindex),
        "search_after_reindex_ms": med(after_reindex),
    }


def _wait_for_columns(svc: LocalService, inst: Any, limit: float = 300.0) -> float:
    """Wait until the column copy (sparse embedders' pruned scan) is built; return seconds."""
    t0 = time.perf_counter()
    idx = svc.store.index(inst)
    while idx.table is not None and idx.table.columns(idx, lambda _m: True) is None:
        if time.perf_counter() - t0 > limit:
            break
        time.sleep(0.05)
    return time.perf_counter() - t0


def filtered(svc: LocalService, iid: str, queries: list[str]) -> dict[str, float]:
    """Hybrid with and without a 10 % filter, and the filter mask alone (ms, medians)."""
    inst = svc.store.get_instance("default", iid)
    assert inst is not None
    plain, flt = _opts(inst), _opts(inst, filters=FILTER)
    assert flt.predicate is not None
    svc.searcher.search(inst, queries[0], flt)  # builds the attribute columns once
    idx = svc.store.index(inst)
    share = float(svc.searcher.filter_rows(inst, idx, flt.predicate).mean())
    times: dict[str, list[float]] = {"hybrid": [], "filtered": [], "mask": []}
    for q in queries[:60]:
        svc.searcher._qcache.clear()
        times["hybrid"].append(_timed(svc.searcher.search, inst, q, plain)[0])
        svc.searcher._qcache.clear()
        times["filtered"].append(_timed(svc.searcher.search, inst, q, flt)[0])
        times["mask"].append(_timed(svc.searcher.filter_rows, inst, idx, flt.predicate)[0])
    return {
        "hybrid_ms": statistics.median(times["hybrid"]),
        "filtered_hybrid_ms": statistics.median(times["filtered"]),
        "filter_mask_ms": statistics.median(times["mask"]),
        "filter_share": share,
    }


def restart_probe(
    data_dir: str, iid: str, query: str, embedder: str, launched: float
) -> dict[str, float]:
    """In a fresh process: open, load, first search; first filtered search; RSS."""
    base = rss_mb()
    t0 = time.perf_counter()
    svc = LocalService(data_dir, embedder=make_embedder(embedder), generator="extractive")
    inst = svc.store.get_instance("default", iid)
    assert inst is not None
    svc.searcher.search(inst, query, _opts(inst))
    restart = time.perf_counter() - t0
    from_launch = time.time() - launched
    t1 = time.perf_counter()
    svc.searcher.search(inst, query + " x", _opts(inst, filters=FILTER))
    first_filtered = time.perf_counter() - t1
    idx = svc.store.index(inst)
    rss_first = rss_mb() - base
    _wait_for_columns(svc, inst)
    out = {
        "restart_s": restart,
        "process_start_to_first_search_s": from_launch,
        "first_filtered_s": first_filtered,
        "columns_ready_s": time.perf_counter() - t0,
        "rss_mb": rss_mb(),
        "rss_first_mb": rss_first,
        "rss_growth_mb": rss_mb() - base,
        "matrix_mb": idx.matrix.nbytes / 2**20,
    }
    svc.close()
    return out


def _probe(data_dir: str, iid: str, query: str, embedder: str) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--probe", data_dir, iid, query, "--embedder", embedder]
    cmd += ["--launched", repr(time.time())]
    proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
    probe: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return probe


def measure(
    size: int, *, seed: int = 7, embedder: str = "hashing", data_dir: str | None = None
) -> dict[str, float]:
    """Build a ``size``-chunk instance and return every figure.

    In a temporary directory, or in ``data_dir`` (kept; an instance built there by an earlier
    run is reused, its ingest rate then reported as NaN).
    """
    rng = np.random.default_rng(seed)
    vocab = make_vocab(rng)
    queries = make_queries(vocab, rng)
    extra = make_chunks(200, vocab, rng)
    with contextlib.ExitStack() as stack:
        tmp = data_dir or stack.enter_context(tempfile.TemporaryDirectory())
        if data_dir is not None:
            tmp = str(Path(data_dir) / str(size))
        svc = LocalService(tmp, embedder=make_embedder(embedder), generator="extractive")
        iid = f"bench-{size}"
        rate = float("nan")
        if svc.store.get_instance("default", iid) is None:
            rate, iid = ingest(svc, make_chunks(size, vocab, np.random.default_rng(seed + 1)))
        row: dict[str, float] = {"size": size, "ingest": rate}
        row.update(live(svc, iid, queries, extra))
        row.update(filtered(svc, iid, queries))
        svc.close()
        del svc
        probes = [_probe(tmp, iid, queries[150 + i], embedder) for i in range(3)]
        for key in probes[0]:
            row[key] = statistics.median(p[key] for p in probes)
        row["rss_ratio"] = row["rss_growth_mb"] / row["matrix_mb"]
        row["rss_first_ratio"] = row["rss_first_mb"] / row["matrix_mb"]
        row["disk_vectors_mb"] = (
            sum(p.stat().st_size for p in Path(tmp, "vectors").rglob("*") if p.is_file()) / 2**20
        )
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--embedder", default="hashing")
    parser.add_argument("--probe", nargs=3, metavar=("DATA_DIR", "INSTANCE", "QUERY"))
    parser.add_argument("--launched", type=float, default=0.0)
    parser.add_argument("--data-dir", help="build (or reuse) the instances here and keep them")
    args = parser.parse_args()
    if args.probe:
        data_dir, iid, query = args.probe
        print(json.dumps(restart_probe(data_dir, iid, query, args.embedder, args.launched)))
        return 0
    rows = []
    for size in args.sizes:
        print(f"running {size:,} chunks ...", file=sys.stderr, flush=True)
        rows.append(measure(size, seed=args.seed, embedder=args.embedder, data_dir=args.data_dir))
    print()
    print(
        "| chunks | ingest (chunks/s) | upload (ms) | search after upload (ms) "
        "| delete / search after (ms) | re-index / search after (ms) | hybrid (ms) "
        "| 10 % filtered hybrid (ms) | filter mask (ms) "
        "| restart to first search (s; from process start) "
        "| first filtered search after restart (s) | RSS growth at first search / with the "
        "column copy / matrix (MB) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {int(r['size']):,} | {r['ingest']:,.0f} | {r['upload_ms']:.1f} "
            f"| {r['search_after_upload_ms']:.1f} "
            f"| {r['delete_ms']:.1f} / {r['search_after_delete_ms']:.1f} "
            f"| {r['reindex_ms']:.1f} / {r['search_after_reindex_ms']:.1f} "
            f"| {r['hybrid_ms']:.1f} | {r['filtered_hybrid_ms']:.1f} | {r['filter_mask_ms']:.2f} "
            f"| {r['restart_s']:.2f} ({r['process_start_to_first_search_s']:.2f}) "
            f"| {r['first_filtered_s']:.2f} "
            f"| {r['rss_first_mb']:,.0f} / {r['rss_growth_mb']:,.0f} / {r['matrix_mb']:,.0f} "
            f"({r['rss_first_ratio']:.2f}x / {r['rss_ratio']:.2f}x) |"
        )
    print()
    print(f"medians: {LIVE_WRITES} uploads, 60 queries, 3 restarts (fresh processes);")
    print(
        "RSS growth: the restarted process after its first search, then once the column copy "
        "(sparse embedders' pruned scan) is built;"
    )
    print(f"filter {FILTER} keeps {rows[-1]['filter_share']:.1%} of the rows;")
    print(
        "load average while running:",
        Path("/proc/loadavg").read_text().split()[:3],
        f"on {os.cpu_count()} cores",
    )
    last = rows[-1]
    for key, target in TARGETS.items():
        ok = last[key] <= target
        print(
            f"  {key:24s} {'meets' if ok else 'MISSES'} the target at {int(last['size']):,} "
            f"chunks ({last[key]:,.2f} vs {target:,.2f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
