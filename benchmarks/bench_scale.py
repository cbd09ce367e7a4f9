"""The local server at scale: every figure of issue #16's table, at 10k, 100k and 1M chunks.

For each size: build an instance of synthetic 100-word chunks (Zipf vocabulary, 10 chunks an
item, metadata ``group`` g0..g9, hashing embedder) through the public Store API
(``Store.bulk_insert``), then start ``aisearch-local serve`` on it as a separate process and
measure through HTTP only:

* restart to first search (process start to the first answered search), and the server's RSS;
* one upload's latency (the multipart items API) and the first search after it;
* search medians: hybrid, keyword ``or``, vector (dense), hybrid with a 10 % metadata filter;
* ingest over HTTP: the local bulk route, 1,000-word documents on an instance with
  ``chunk_size`` 100 (about 11 chunks each), one request of 100 documents at a time;
* 16-client hybrid throughput (16 concurrent keep-alive connections for a few seconds).

With ``--workers 1 2``: the 16-client hybrid throughput again per ``serve --workers`` count
(docs/workers.md), each on a fresh server next to the canned endpoint (``--repeats`` runs,
medians), with the cores and the CPU a request the workers used and their RSS.

Side by side, in the same run: bare numpy (``matrix @ query`` + top 50 on the same vectors),
bare FTS5 (the same ``or`` MATCH on the instance's own FTS5 table, read-only, no server) and a
canned Starlette endpoint (uvicorn, a fixed search answer) under the same 16-client load.

ANN: when an ANN module is present (``aisearch_local.ann``), dense search is also measured with
``"exact": true`` if the server accepts it; otherwise the line says ANN is not available.

Sizes: ``--sizes`` (default 10,000 so that ``make bench`` stays short). The 1M run builds a
1.5 GB matrix in this process and the server holds its own: run it alone, e.g.
``flock /work/wt/heavy.lock .venv/bin/python benchmarks/bench_scale.py --sizes 10000 100000
1000000`` (about 15 minutes on the 2-core machine). Medians everywhere.
"""

from __future__ import annotations

import os

if "OMP_NUM_THREADS" not in os.environ:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import asyncio
import importlib.util
import json
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from aisearch_local.embed import make_embedder
from aisearch_local.models import SearchRequest
from aisearch_local.options import resolve_options
from aisearch_local.search import fts_expression, keyword_terms
from aisearch_local.service import LocalService
from aisearch_local.store import DB_FILENAME, NewChunk

VOCAB = 30_000
WORDS = 100
PER_ITEM = 10
TOKEN = "bench-scale"
INSTANCE = "scale"
TARGETS = {
    "first_search_after_upload": ("<=", 0.1, "s"),
    "upload_latency": ("<=", 50.0, "ms"),
    "restart_to_first_search": ("<=", 3.0, "s"),
    "filtered_hybrid": ("<=", 50.0, "ms"),
    "ingest": (">=", 2000.0, "chunks/s"),
}


def make_vocab(rng: np.random.Generator) -> list[str]:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words: set[str] = set()
    while len(words) < VOCAB:
        words.add("".join(rng.choice(letters, int(rng.integers(3, 10)))))
    return sorted(words, key=lambda w: (len(w), w))


def make_texts(n: int, vocab: list[str], rng: np.random.Generator) -> list[str]:
    p = 1.0 / np.arange(1, VOCAB + 1) ** 1.07
    p /= p.sum()
    arr = np.array(vocab, dtype=object)
    out: list[str] = []
    for start in range(0, n, 50_000):  # bounded working arrays at 1M
        ids = rng.choice(VOCAB, size=(min(50_000, n - start), WORDS), p=p)
        out.extend(" ".join(row) for row in arr[ids])
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time of these processes so far (seconds)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def median_ms(times: list[float]) -> float:
    return statistics.median(times) * 1000


# -- building ----------------------------------------------------------------------------------


def build(data_dir: Path, texts: list[str]) -> np.ndarray:
    """Write the instance through the Store API; return its vectors (for bare numpy)."""
    svc = LocalService(data_dir, embedder=make_embedder("hashing"), generator="extractive")
    try:
        inst = svc.create_instance("default", {"id": INSTANCE, "chunk_size": 100})
        vectors = np.zeros((len(texts), svc.embedder.dim), dtype=np.float32)
        batch: list[Any] = []
        for start in range(0, len(texts), PER_ITEM * 500):
            group = texts[start : start + PER_ITEM * 500]
            emb = np.asarray(svc.embedder.embed(group), dtype=np.float32)
            vectors[start : start + len(group)] = emb
            for j in range(0, len(group), PER_ITEM):
                n = (start + j) // PER_ITEM
                part = group[j : j + PER_ITEM]
                chunks, pos = [], 0
                for t in part:
                    chunks.append(NewChunk(text=t, start=pos, end=pos + len(t)))
                    pos += len(t) + 2
                meta = {"group": f"g{n % 10}", "rating": n % 5}
                data = "\n\n".join(part).encode()
                key = f"folder{n % 20}/doc-{n}.txt"
                batch.append(
                    (key, data, meta, 1_700_000_000_000 + n, chunks, emb[j : j + PER_ITEM])
                )
            svc.store.bulk_insert(inst, batch)
            batch = []
    finally:
        svc.close()
    return vectors


# -- the server --------------------------------------------------------------------------------


def search_body(query: str, mode: str = "hybrid", filters: Any = None) -> dict[str, Any]:
    retrieval: dict[str, Any] = {
        "retrieval_type": mode,
        "match_threshold": 0,
        "keyword_match_mode": "or",
    }
    if filters is not None:
        retrieval["filters"] = filters
    return {"query": query, "ai_search_options": {"retrieval": retrieval}}


class Server:
    """``aisearch-local serve`` on a data folder, as a separate process (``--workers N``)."""

    def __init__(self, data_dir: Path, workers: int = 1) -> None:
        self.data_dir = data_dir
        self.workers = workers
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.port}/client/v4"
        self.search_url = f"{self.url}/accounts/a/ai-search/instances/{INSTANCE}/search"
        self.headers = {"Authorization": f"Bearer {TOKEN}"}

    def start(self, query: str) -> float:
        """Start; return the seconds from process start to the first answered search."""
        cmd = [sys.executable, "-m", "aisearch_local.cli", "serve", "--data-dir"]
        cmd += [str(self.data_dir), "--port", str(self.port), "--log-level", "warning"]
        if self.workers > 1:
            cmd += ["--workers", str(self.workers)]
        env = {**os.environ, "AISEARCH_LOCAL_TOKEN": TOKEN}
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
        )
        with httpx.Client(headers=self.headers, timeout=600) as http:
            while True:
                if self.proc.poll() is not None:
                    err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                    raise RuntimeError(f"the server exited: {err[-2000:]}")
                try:
                    r = http.post(self.search_url, json=search_body(query))
                except httpx.TransportError:
                    time.sleep(0.02)
                    continue
                r.raise_for_status()
                return time.perf_counter() - t0

    def wait_steady(self, queries: list[str]) -> float:
        """Search until ``/_local/health`` reports no index being built; return the time."""
        with httpx.Client(headers=self.headers, timeout=600) as http:
            for mode in ("hybrid", "keyword", "vector"):
                http.post(self.search_url, json=search_body(queries[2], mode)).raise_for_status()
            while True:
                health = http.get(f"{self.url}/_local/health").json()["result"]
                if not health.get("indexing"):
                    return time.perf_counter()
                time.sleep(0.1)

    def worker_pids(self) -> list[int]:
        """The worker processes (``--workers``: the supervisor's spawned children)."""
        assert self.proc is not None
        if self.workers == 1:
            return [self.proc.pid]
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
                cmdline = (stat.parent / "cmdline").read_bytes()
            except (OSError, ValueError, IndexError):
                continue
            if ppid == self.proc.pid and b"spawn_main" in cmdline:
                pids.append(int(stat.parent.name))
        return sorted(pids)

    def warm_workers(self, queries: list[str]) -> None:
        """Search on new connections until every worker answered and built its indexes.

        A new connection lands on any worker; each worker builds its own in-memory indexes on
        its first searches, then reports ``indexing: 0`` in its health answer.
        """
        steady: dict[int, bool] = {}
        deadline = time.monotonic() + 600
        i = 0
        while time.monotonic() < deadline:
            i += 1
            with httpx.Client(headers=self.headers, timeout=600) as http:
                for mode in ("hybrid", "keyword", "vector"):
                    body = search_body(queries[i % len(queries)], mode)
                    http.post(self.search_url, json=body).raise_for_status()
                health = http.get(f"{self.url}/_local/health").json()["result"]
            steady[int(health.get("worker_pid", self.proc.pid if self.proc else 0))] = not health[
                "indexing"
            ]
            if len(steady) >= self.workers and all(steady.values()):
                return
            if i > 20 * self.workers:
                time.sleep(0.1)
        raise RuntimeError(f"the workers did not reach the steady state: {steady}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()


def http_medians(server: Server, queries: list[str], rounds: int) -> dict[str, float]:
    out: dict[str, float] = {}
    cases = {
        "hybrid": lambda q: search_body(q),
        "keyword": lambda q: search_body(q, "keyword"),
        "vector": lambda q: search_body(q, "vector"),
        "filtered_hybrid": lambda q: search_body(q, filters={"group": "g3"}),
    }
    with httpx.Client(headers=server.headers, timeout=600) as http:
        for name, body in cases.items():
            http.post(server.search_url, json=body(queries[0])).raise_for_status()
            times = []
            for q in queries[:rounds]:
                t0 = time.perf_counter()
                http.post(server.search_url, json=body(q)).raise_for_status()
                times.append(time.perf_counter() - t0)
            out[name] = median_ms(times)
        if importlib.util.find_spec("aisearch_local.ann") is not None:
            body = search_body(queries[0], "vector")
            body["ai_search_options"]["retrieval"]["exact"] = True
            if http.post(server.search_url, json=body).status_code == 200:
                times = []
                for q in queries[:rounds]:
                    body = search_body(q, "vector")
                    body["ai_search_options"]["retrieval"]["exact"] = True
                    t0 = time.perf_counter()
                    http.post(server.search_url, json=body).raise_for_status()
                    times.append(time.perf_counter() - t0)
                out["vector_exact"] = median_ms(times)
    return out


def upload_then_search(server: Server, queries: list[str], rounds: int) -> tuple[float, float]:
    """Medians of one upload's latency (ms) and of the first search after it (s)."""
    up, first = [], []
    items = f"{server.url}/accounts/a/ai-search/instances/{INSTANCE}/items"
    with httpx.Client(headers=server.headers, timeout=600) as http:
        for i in range(rounds):
            text = f"fresh upload number {i} " + queries[i % len(queries)] * 5
            t0 = time.perf_counter()
            r = http.post(items, files={"file": (f"fresh/up-{i}.txt", text.encode())})
            up.append(time.perf_counter() - t0)
            r.raise_for_status()
            t0 = time.perf_counter()
            http.post(server.search_url, json=search_body(queries[i % len(queries)]))
            first.append(time.perf_counter() - t0)
    return median_ms(up), statistics.median(first)


def http_ingest(server: Server, vocab: list[str], rng: np.random.Generator, docs: int) -> float:
    """Chunks/s of the bulk route: 1,000-word documents, 100 a request."""
    path = f"{server.url}/_local/bulk/default/{INSTANCE}/items"
    texts = make_texts(docs * PER_ITEM, vocab, rng)
    bodies = [
        {
            "items": [
                {
                    "key": f"ingest/{d}.txt",
                    "text": "\n\n".join(texts[d * PER_ITEM : (d + 1) * PER_ITEM]),
                    "metadata": {"group": f"g{d % 10}"},
                }
                for d in range(start, min(docs, start + 100))
            ]
        }
        for start in range(0, docs, 100)
    ]
    chunks = 0
    with httpx.Client(headers=server.headers, timeout=600) as http:
        t0 = time.perf_counter()
        for body in bodies:
            r = http.post(path, json=body)
            r.raise_for_status()
            chunks += sum(x["result"]["chunks_count"] for x in r.json()["result"]["items"])
        return chunks / (time.perf_counter() - t0)


async def _client(
    host: str,
    port: int,
    path: str,
    bodies: list[bytes],
    headers: dict[str, str],
    n: int,
    until: list[float],
    counts: list[int],
) -> None:
    """One keep-alive HTTP/1.1 connection posting ``bodies`` in turn until ``until[0]``.

    Raw asyncio streams, not httpx: the load generator shares the 2 cores with the server, and
    httpx's per-request cost made it, not the server, the bound (both ran at the same rate).
    """
    reader, writer = await asyncio.open_connection(host, port)
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    i = n
    try:
        while time.perf_counter() < until[0]:
            body = bodies[i % len(bodies)]
            i += 16
            head = (
                f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            writer.write(head.encode() + body)
            status = await reader.readline()
            if b" 200 " not in status:
                raise RuntimeError(f"load: {status!r}")
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            counts[0] += 1
    finally:
        writer.close()


async def _load(url: str, bodies: list[bytes], headers: dict[str, str], seconds: float) -> float:
    """Requests per second that 16 concurrent keep-alive clients get answered."""
    parts = httpx.URL(url)
    host, port, path = parts.host, parts.port or 80, parts.raw_path.decode()
    warm = [time.perf_counter() + min(1.0, seconds / 2)]
    ignored = [0]
    await asyncio.gather(
        *(_client(host, port, path, bodies, headers, n, warm, ignored) for n in range(16))
    )
    counts = [0]
    t0 = time.perf_counter()
    until = [t0 + seconds]
    await asyncio.gather(
        *(_client(host, port, path, bodies, headers, n, until, counts) for n in range(16))
    )
    return counts[0] / (time.perf_counter() - t0)


def throughput(url: str, queries: list[str], headers: dict[str, str], seconds: float) -> float:
    bodies = [json.dumps(search_body(q)).encode() for q in queries]
    return asyncio.run(_load(url, bodies, headers, seconds))


# -- the references ----------------------------------------------------------------------------


def bare_numpy(vectors: np.ndarray, queries: list[str], rounds: int) -> float:
    embedder = make_embedder("hashing")
    times = []
    for q in queries[:rounds]:
        qvec = np.asarray(embedder.embed([q])[0], dtype=np.float32)
        t0 = time.perf_counter()
        sims = vectors @ qvec
        top = np.argpartition(-sims, 49)[:50]
        top[np.argsort(-sims[top])]
        times.append(time.perf_counter() - t0)
    return median_ms(times)


def bare_fts5(data_dir: Path, inst_pk: int, queries: list[str], rounds: int) -> float:
    uri = f"file:{data_dir / DB_FILENAME}?mode=ro"
    conn = sqlite3.connect(uri, uri=True)
    try:
        table = f"fts_{inst_pk}"
        times = []
        for q in queries[:rounds]:
            expr = fts_expression(keyword_terms(q, trigram=False), "or")
            t0 = time.perf_counter()
            conn.execute(
                f"SELECT rowid, rank FROM {table} WHERE {table} MATCH ? ORDER BY rank LIMIT 50",
                (expr,),
            ).fetchall()
            times.append(time.perf_counter() - t0)
        return median_ms(times)
    finally:
        conn.close()


def in_process_hybrid(data_dir: Path, queries: list[str], rounds: int) -> float:
    """The CPU (ms, this thread's) of one hybrid search in process, median: no HTTP, no thread.

    The search as the server runs it (``Searcher.search``, the request's options resolved
    first), after the background index builds are done. Every core computing such searches
    and no request costing anything else would serve ``cores / this`` requests a second: the
    ceiling of the 16-client throughput with this ranking.
    """
    svc = LocalService(data_dir, embedder="hashing", generator="extractive")
    try:
        inst = svc.store.get_instance("default", INSTANCE)
        assert inst is not None
        reqs = [SearchRequest.parse(search_body(q), strict=False) for q in queries]
        for req in reqs[:20]:  # start the background builds, then wait for them
            svc.searcher.search(inst, req.query, resolve_options(req.options, inst.config))
        while svc.store.indexing():
            time.sleep(0.2)
        times = []
        for _ in range(2):
            for req in reqs[:rounds]:
                t0 = time.thread_time()
                opts = resolve_options(req.options, inst.config)
                svc.searcher.search(inst, req.query, opts)
                times.append(time.thread_time() - t0)
        return median_ms(times)
    finally:
        svc.close()


def canned_app(body: bytes) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def search(request: Request) -> Response:
        await request.body()
        return Response(body, media_type="application/json")

    return Starlette(routes=[Route("/search", search, methods=["POST"])])


def serve_canned(port: int, body_file: str) -> None:
    import uvicorn

    body = Path(body_file).read_bytes()
    uvicorn.run(canned_app(body), host="127.0.0.1", port=port, log_level="warning")


def canned_throughput(answer: bytes, queries: list[str], seconds: float) -> float:
    port = free_port()
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        fh.write(answer)
    cmd = [sys.executable, __file__, "--canned-server", str(port), fh.name]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/search"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.post(url, json={}, timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        return throughput(url, queries, {}, seconds)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        os.unlink(fh.name)


# -- one size ----------------------------------------------------------------------------------


def run(size: int, args: argparse.Namespace, vocab: list[str], rng: np.random.Generator) -> dict:
    queries = [" ".join(rng.choice(vocab[200:3000], 3)) for _ in range(200)]
    row: dict[str, Any] = {"size": size}
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        data_dir = Path(tmp)
        print(f"building {size:,} chunks ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        vectors = build(data_dir, make_texts(size, vocab, rng))
        row["build_s"] = time.perf_counter() - t0
        row["bare_numpy"] = bare_numpy(vectors, queries, args.rounds)
        row["matrix_mb"] = vectors.nbytes / 1e6
        del vectors
        svc = LocalService(data_dir, embedder="hashing", generator="extractive")
        inst = svc.store.get_instance("default", INSTANCE)
        assert inst is not None
        svc.close()
        row["bare_fts5"] = bare_fts5(data_dir, inst.pk, queries, args.rounds)
        server = Server(data_dir)
        try:
            print("  first start ...", file=sys.stderr, flush=True)
            server.start(queries[0])
            server.stop()
            t_start = time.perf_counter()
            row["restart_to_first_search"] = server.start(queries[1])
            assert server.proc is not None
            # the first searches start background builds (the keyword engine's index, the
            # vector column copy) and are answered meanwhile; measure the steady state
            row["restart_to_steady"] = server.wait_steady(queries) - t_start
            row.update(http_medians(server, queries, args.rounds))
            row["rss_mb"] = rss_mb(server.proc.pid)
            row["upload_latency"], row["first_search_after_upload"] = upload_then_search(
                server, queries, args.upload_rounds
            )
            print("  16-client load ...", file=sys.stderr, flush=True)
            row["throughput"] = throughput(server.search_url, queries, server.headers, args.seconds)
            with httpx.Client(headers=server.headers, timeout=600) as http:
                answer = http.post(server.search_url, json=search_body(queries[0])).content
            print("  ingest over HTTP ...", file=sys.stderr, flush=True)
            row["ingest"] = http_ingest(server, vocab, rng, args.ingest_docs)
            row["rss_end_mb"] = rss_mb(server.proc.pid)
        finally:
            server.stop()
        row["canned"] = canned_throughput(answer, queries, args.seconds)
        print("  hybrid in process ...", file=sys.stderr, flush=True)
        row["in_process_hybrid"] = in_process_hybrid(data_dir, queries, args.rounds)
        if args.workers:
            row["by_workers"] = by_workers(data_dir, args, queries, answer)
    return row


def by_workers(
    data_dir: Path, args: argparse.Namespace, queries: list[str], answer: bytes
) -> list[dict[str, Any]]:
    """16-client hybrid throughput per ``--workers`` count, each next to the canned endpoint.

    Each count gets a fresh server, warmed until every worker built its indexes; then
    ``--repeats`` load runs alternate between it and the canned endpoint (medians), and the
    RSS of every worker (and of the supervisor) is read after the load. The CPU time the
    workers used during each run says how many cores they got (other work on the machine takes
    the rest) and what a request costs, which does not depend on that.
    """
    rows = []
    for n in args.workers:
        print(f"  16-client load, {n} worker(s) ...", file=sys.stderr, flush=True)
        server = Server(data_dir, workers=n)
        served: list[float] = []
        canned: list[float] = []
        cores: list[float] = []
        try:
            server.start(queries[0])
            server.warm_workers(queries)
            pids = server.worker_pids()
            for _ in range(args.repeats):
                cpu0, t0 = cpu_seconds(pids), time.perf_counter()
                served.append(throughput(server.search_url, queries, server.headers, args.seconds))
                cores.append((cpu_seconds(pids) - cpu0) / (time.perf_counter() - t0))
                canned.append(canned_throughput(answer, queries, args.seconds))
            assert server.proc is not None
            rss = [rss_mb(pid) for pid in pids]
            supervisor = rss_mb(server.proc.pid) if n > 1 else 0.0
        finally:
            server.stop()
        rows.append(
            {
                "workers": n,
                "throughput": statistics.median(served),
                "canned": statistics.median(canned),
                "runs": served,
                "cores": statistics.median(cores),
                "cpu_ms": statistics.median(
                    c / r * 1000 for c, r in zip(cores, served, strict=True)
                ),
                "rss_workers": rss,
                "rss_supervisor": supervisor,
            }
        )
    return rows


MEASURES = [
    ("first search after one upload (s)", "first_search_after_upload", "{:.3f}"),
    ("restart to first search (s)", "restart_to_first_search", "{:.2f}"),
    ("restart to steady state: no index being built (s)", "restart_to_steady", "{:.2f}"),
    ("one upload's latency (ms)", "upload_latency", "{:.1f}"),
    ("server RSS (MB)", "rss_mb", "{:,.0f}"),
    ("server RSS after the load and the ingest (MB)", "rss_end_mb", "{:,.0f}"),
    ("vector matrix (MB)", "matrix_mb", "{:,.0f}"),
    ("dense (vector) search, served (ms)", "vector", "{:.2f}"),
    ("dense search, exact (ms)", "vector_exact", "{:.2f}"),
    ("hybrid search (ms)", "hybrid", "{:.2f}"),
    ("keyword `or` search (ms)", "keyword", "{:.2f}"),
    ("10 % filtered hybrid (ms)", "filtered_hybrid", "{:.2f}"),
    ("ingest over HTTP (chunks/s)", "ingest", "{:,.0f}"),
    ("16-client hybrid (req/s)", "throughput", "{:,.0f}"),
    ("bare numpy: matrix @ q + top 50 (ms)", "bare_numpy", "{:.2f}"),
    ("bare FTS5: the same `or` MATCH (ms)", "bare_fts5", "{:.2f}"),
    ("canned Starlette endpoint, 16 clients (req/s)", "canned", "{:,.0f}"),
    ("hybrid search in process, CPU (ms)", "in_process_hybrid", "{:.2f}"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=100, help="queries per search median")
    parser.add_argument("--upload-rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each load run")
    parser.add_argument("--ingest-docs", type=int, default=1000, help="documents sent in bulk")
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[],
        metavar="N",
        help="also measure the 16-client hybrid throughput with serve --workers N (e.g. 1 2), "
        "each next to the canned endpoint, and the workers' RSS",
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="load runs per --workers count (medians)"
    )
    parser.add_argument(
        "--canned-server", nargs=2, metavar=("PORT", "BODY"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.canned_server:
        serve_canned(int(args.canned_server[0]), args.canned_server[1])
        return 0
    rng = np.random.default_rng(args.seed)
    vocab = make_vocab(rng)
    rows = [run(size, args, vocab, rng) for size in args.sizes]
    print()
    header = "| measure | " + " | ".join(f"{r['size']:,}" for r in rows)
    growth = len(rows) > 1
    print(header + (" | growth |" if growth else " |"))
    print("|---|" + "---:|" * (len(rows) + (1 if growth else 0)))
    for label, key, fmt in MEASURES:
        cells = [fmt.format(r[key]) if key in r else "n/a" for r in rows]
        line = f"| {label} | " + " | ".join(cells) + " |"
        if growth:
            a, b = rows[0].get(key), rows[-1].get(key)
            line += f" x{b / a:.1f} |" if a and b else " |"
        print(line)
    print()
    for r in rows:
        ratio = r["throughput"] / r["canned"] if r["canned"] else float("nan")
        print(
            f"{r['size']:,} chunks: 16-client hybrid = {ratio:.0%} of the canned endpoint "
            f"(target >= 25 %); served hybrid {r['hybrid']:.2f} ms vs bare numpy "
            f"{r['bare_numpy']:.2f} ms + bare FTS5 {r['bare_fts5']:.2f} ms; keyword `or` "
            f"{r['keyword']:.2f} ms vs bare FTS5 {r['bare_fts5']:.2f} ms; built in "
            f"{r['build_s']:.0f} s"
        )
    cores = os.cpu_count() or 1
    for r in rows:
        ceiling = cores * 1000 / r["in_process_hybrid"]
        # the canned endpoint's median over this size's runs (one alone is noisy)
        canned = statistics.median([r["canned"]] + [w["canned"] for w in r.get("by_workers", [])])
        print(
            f"{r['size']:,} chunks: ceiling of the 16-client hybrid throughput with this ranking "
            f"= {ceiling:,.0f} req/s = {ceiling / canned:.0%} of the canned endpoint's "
            f"{canned:,.0f} req/s "
            f"({cores} cores each computing a {r['in_process_hybrid']:.2f} ms hybrid search in "
            "process, no request costing anything else, no load generator)"
        )
    for r in rows:
        for w in r.get("by_workers", []):
            rss = " + ".join(f"{mb:,.0f}" for mb in w["rss_workers"])
            print(
                f"{r['size']:,} chunks, serve --workers {w['workers']}: 16-client hybrid "
                f"{w['throughput']:,.0f} req/s = {w['throughput'] / w['canned']:.0%} of the "
                f"canned endpoint's {w['canned']:,.0f} req/s (medians of "
                f"{len(w['runs'])}: {', '.join(f'{x:,.0f}' for x in w['runs'])}); the workers "
                f"used {w['cores']:.2f} cores, {w['cpu_ms']:.2f} ms of CPU a request; RSS of the "
                f"workers {rss} MB"
                + (f", supervisor {w['rss_supervisor']:,.0f} MB" if w["workers"] > 1 else "")
            )
    last = rows[-1]
    for key, (op, target, unit) in TARGETS.items():
        value = last[key]
        ok = value <= target if op == "<=" else value >= target
        print(
            f"  {key}: {'meets' if ok else 'MISSES'} the issue's target at {last['size']:,} "
            f"({value:,.3f} {unit}, target {op} {target:,} {unit})"
        )
    if importlib.util.find_spec("aisearch_local.ann") is None:
        print("ANN: not available in this tree (no aisearch_local.ann): dense search is exact")
    print(
        "medians; hashing embedder; BLAS threads:",
        os.environ.get("OPENBLAS_NUM_THREADS", "default"),
        "| load average:",
        " ".join(Path("/proc/loadavg").read_text().split()[:3]),
        f"on {os.cpu_count()} cores (other work on the machine makes the figures noisy)",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
