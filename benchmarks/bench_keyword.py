"""Keyword engines side by side: SQLite FTS5 against tantivy (docs/DEPS-keyword.md).

The corpus is bench_scale.py's: synthetic 100-word chunks over a Zipf vocabulary of 30,000
words; queries are 3 words of the mid-frequency band, as there. Each engine runs in its own
child process (so that its RSS is its own) on the same corpus file, and reports:

* build: index every chunk once (FTS5: one transaction, as ``Store.bulk_insert``; tantivy: one
  writer thread, one commit, merges waited for);
* ``or`` / ``and`` top-50 medians, chunk ids included (FTS5 ``ORDER BY rank LIMIT 50``;
  tantivy: a boolean query of term queries, the ids read from a fast field);
* one small write's latency until a search sees it (FTS5: insert + COMMIT; tantivy: add +
  commit + reload), median of 20;
* RSS of the process after build and queries (the corpus text not held), and the reopen time
  (open the files + first query). ``tantivy`` is the index as the server keeps it, in memory
  (a restart rebuilds it: its reopen time is its build time); ``tantivy-disk`` the same index
  in a directory, for comparison;
* GIL release: 2 threads running the queries against the same total serially (speed-up, 2.0
  is perfect on 2 cores).

Usage: ``.venv/bin/python benchmarks/bench_keyword.py --sizes 100000 1000000`` (the 1M build
takes minutes: run it under ``flock /work/wt/heavy.lock``). Medians everywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scale import make_texts, make_vocab, rss_mb

from aisearch_local.keyword import TantivyIndex
from aisearch_local.search import fts_expression, keyword_terms

TOKENIZER = "porter unicode61 remove_diacritics 2"
ENGINES = ("fts5", "tantivy", "tantivy-disk")


def _medians(run: Callable[[str], object], queries: list[str]) -> float:
    for q in queries[:10]:
        run(q)
    times = []
    for q in queries:
        t0 = time.perf_counter()
        run(q)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def _gil(run: Callable[[str], object], queries: list[str]) -> float:
    """Serial time over 2 threads' time for the same queries (2.0: the GIL is released)."""
    work = queries * 4
    t0 = time.perf_counter()
    for q in work:
        run(q)
    serial = time.perf_counter() - t0
    half = len(work) // 2
    threads = [
        threading.Thread(target=lambda part=part: [run(q) for q in part])
        for part in (work[:half], work[half:])
    ]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return serial / (time.perf_counter() - t0)


def child_fts5(corpus: Path, queries: list[str], work: Path) -> dict[str, Any]:
    db = work / "fts.sqlite3"
    out: dict[str, Any] = {"rss_start_mb": rss_mb(os.getpid())}
    conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(f"CREATE VIRTUAL TABLE fts USING fts5(text, tokenize='{TOKENIZER}')")
    t0 = time.perf_counter()
    conn.execute("BEGIN")
    with corpus.open() as f:
        conn.executemany(
            "INSERT INTO fts(rowid, text) VALUES (?, ?)",
            ((i + 1, line.rstrip("\n")) for i, line in enumerate(f)),
        )
    conn.execute("COMMIT")
    out["build_s"] = time.perf_counter() - t0
    local = threading.local()

    def search(q: str, mode: str = "or") -> list[tuple[int, float]]:
        c = getattr(local, "conn", None)
        if c is None:
            c = local.conn = sqlite3.connect(db, check_same_thread=False)
        expr = fts_expression(keyword_terms(q, trigram=False), mode)
        rows = c.execute(
            "SELECT rowid, rank FROM fts WHERE fts MATCH ? ORDER BY rank LIMIT 50", (expr,)
        ).fetchall()
        return [(int(a), -float(b)) for a, b in rows]

    out["or_ms"] = _medians(search, queries)
    out["and_ms"] = _medians(lambda q: search(q, "and"), queries)
    writes = []
    for i in range(20):
        t0 = time.perf_counter()
        conn.execute("BEGIN")
        conn.execute("INSERT INTO fts(rowid, text) VALUES (?, ?)", (10**9 + i, f"zzfresh{i} word"))
        conn.execute("COMMIT")
        assert search(f"zzfresh{i}"), "the write is not visible"
        writes.append(time.perf_counter() - t0)
    out["write_ms"] = statistics.median(writes) * 1000
    out["gil_speedup"] = _gil(search, queries)
    out["rss_mb"] = rss_mb(os.getpid())
    conn.close()
    local.conn = None
    t0 = time.perf_counter()
    conn = sqlite3.connect(db)
    conn.execute(
        "SELECT rowid FROM fts WHERE fts MATCH ? ORDER BY rank LIMIT 50",
        (fts_expression(keyword_terms(queries[0], trigram=False), "or"),),
    ).fetchall()
    out["reopen_s"] = time.perf_counter() - t0
    out["disk_mb"] = sum(p.stat().st_size for p in work.iterdir()) / 1e6
    return out


def child_tantivy(corpus: Path, queries: list[str], work: Path, *, disk: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"rss_start_mb": rss_mb(os.getpid())}
    directory = work / "tantivy"
    t0 = time.perf_counter()
    directory.mkdir()
    index = TantivyIndex(str(directory) if disk else None)
    with corpus.open() as f:
        index.add_many((i + 1, line.rstrip("\n")) for i, line in enumerate(f))
    index.commit()
    out["build_s"] = time.perf_counter() - t0

    def search(q: str, mode: str = "or") -> list[tuple[int, float]]:
        return index.search(keyword_terms(q, trigram=False), mode, 50)

    out["or_ms"] = _medians(search, queries)
    out["and_ms"] = _medians(lambda q: search(q, "and"), queries)
    writes = []
    for i in range(20):
        t0 = time.perf_counter()
        index.add_many([(10**9 + i, f"zzfresh{i} word")])
        index.commit()
        assert search(f"zzfresh{i}"), "the write is not visible"
        writes.append(time.perf_counter() - t0)
    out["write_ms"] = statistics.median(writes) * 1000
    out["gil_speedup"] = _gil(search, queries)
    out["rss_mb"] = rss_mb(os.getpid())
    index.close()
    if not disk:  # in memory: a restart is a build
        out["reopen_s"] = out["build_s"]
        out["disk_mb"] = 0.0
        return out
    t0 = time.perf_counter()
    reopened = TantivyIndex(str(directory))
    reopened.search(keyword_terms(queries[0], trigram=False), "or", 50)
    out["reopen_s"] = time.perf_counter() - t0
    out["disk_mb"] = sum(p.stat().st_size for p in directory.rglob("*") if p.is_file()) / 1e6
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    parser.add_argument("--child", nargs=3, metavar=("ENGINE", "CORPUS", "WORK"))
    args = parser.parse_args()
    if args.child:
        engine, corpus, work = args.child
        queries = json.loads((Path(corpus).with_suffix(".json")).read_text())
        if engine == "fts5":
            row = child_fts5(Path(corpus), queries, Path(work))
        else:
            row = child_tantivy(Path(corpus), queries, Path(work), disk=engine == "tantivy-disk")
        print(json.dumps(row))
        return 0
    rng = np.random.default_rng(16)
    vocab = make_vocab(rng)
    results: list[dict[str, Any]] = []
    for size in args.sizes:
        with tempfile.TemporaryDirectory(prefix="bench-keyword-") as tmp:
            corpus = Path(tmp) / "corpus.txt"
            print(f"corpus of {size:,} chunks ...", file=sys.stderr, flush=True)
            corpus.write_text("\n".join(make_texts(size, vocab, rng)) + "\n")
            queries = [" ".join(rng.choice(vocab[200:3000], 3)) for _ in range(200)]
            corpus.with_suffix(".json").write_text(json.dumps(queries))
            for engine in args.engines:
                work = Path(tmp) / engine
                work.mkdir()
                print(f"{engine} at {size:,} ...", file=sys.stderr, flush=True)
                done = subprocess.run(
                    [sys.executable, __file__, "--child", engine, str(corpus), str(work)],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                row = json.loads(done.stdout.strip().splitlines()[-1])
                results.append({"size": size, "engine": engine, **row})
    cols = [
        ("size", "{:,}"),
        ("engine", "{}"),
        ("build_s", "{:.1f}"),
        ("or_ms", "{:.2f}"),
        ("and_ms", "{:.2f}"),
        ("write_ms", "{:.1f}"),
        ("rss_mb", "{:.0f}"),
        ("disk_mb", "{:.0f}"),
        ("reopen_s", "{:.3f}"),
        ("gil_speedup", "{:.2f}"),
    ]
    print("| " + " | ".join(c for c, _ in cols) + " |")
    print("|" + "---|" * len(cols))
    for r in results:
        print("| " + " | ".join(fmt.format(r[c]) for c, fmt in cols) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
