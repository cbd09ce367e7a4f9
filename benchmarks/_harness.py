"""Shared harness of the adapter benchmarks: a local server in a child process, the sample
corpus indexed into it, and the printed ratio lines.

The server runs in a child process: in-process (a uvicorn thread) the client and the server
fight for one GIL, and the thread hand-offs, not the adapter, dominate the timings. Both sides
of every comparison use the same ``httpx`` pool settings (``LIMITS``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from aisearch import AISearchClient
from aisearch_local.sample_corpus import CUSTOM_METADATA, iter_sample_documents
from aisearch_local.testing import LocalServer

QUERIES = [
    "How fine should I grind for espresso?",
    "cold brew steeping time",
    "why is my pour-over bitter",
    "light versus dark roast acidity",
    "how to steam milk for a flat white",
    "storing beans after roasting",
    "natural process flavour notes",
    "moka pot heat control",
]
TOP_K = 4
# Idle connections expire after 2 s, before uvicorn's 5 s keep-alive timeout closes them:
# otherwise a reused, server-closed connection fails (the raw client raises ReadError; the
# core client retries it).
LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=2.0)


def median_ms(samples: list[float]) -> float:
    """Median of samples in seconds, as milliseconds."""
    return statistics.median(samples) * 1000


def ratio_line(name: str, ours: float, base: float, target: float) -> str:
    """One line: both medians, the ratio and whether it meets the target."""
    ratio = ours / base
    verdict = "ok" if ratio <= target else "OVER TARGET"
    return (
        f"{name:<44} ours {ours:8.2f} ms   baseline {base:8.2f} ms   "
        f"ratio {ratio:5.3f}  (target <= {target:.2f}: {verdict})"
    )


def info_line(name: str, ours: float, base: float) -> str:
    """One line: both medians and the ratio, with no target."""
    return (
        f"{name:<44} ours {ours:8.2f} ms   baseline {base:8.2f} ms   "
        f"ratio {ours / base:5.3f}  (informative)"
    )


def cpu_line(name: str, ours_s: float, base_s: float, calls: int) -> str:
    """Client-process CPU per call on both sides, and the difference."""
    ours = ours_s / calls * 1000
    base = base_s / calls * 1000
    return (
        f"{name:<44} ours {ours:8.3f} ms   baseline {base:8.3f} ms   "
        f"adapter overhead {ours - base:+.3f} ms/call (informative)"
    )


def interleaved(
    sides: dict[str, Callable[[str], Any]], rounds: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Call every side once per round with the same query, rotating which goes first.

    Returns:
        Each side's median wall time per call (ms) and its total client CPU time (s).
    """
    for q in QUERIES:  # warm up the pools and the server's caches
        results = [len(fn(q)) for fn in sides.values()]
        assert len(set(results)) == 1, f"the sides disagree on {q!r}: {results}"
    samples: dict[str, list[float]] = {name: [] for name in sides}
    cpu = dict.fromkeys(sides, 0.0)
    order = list(sides.items())
    for i in range(rounds):
        q = QUERIES[i % len(QUERIES)]
        shift = i % len(order)
        for name, fn in order[shift:] + order[:shift]:
            cpu0 = time.process_time()
            started = time.perf_counter()
            fn(q)
            samples[name].append(time.perf_counter() - started)
            cpu[name] += time.process_time() - cpu0
    return {name: median_ms(s) for name, s in samples.items()}, cpu


def search_body(query: str, k: int = TOP_K) -> dict[str, Any]:
    """The body both sides send."""
    return {"query": query, "ai_search_options": {"retrieval": {"max_num_results": k}}}


async def ainterleaved(
    sides: dict[str, Callable[[], Awaitable[None]]], repeats: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Run every side once per repeat, rotating which goes first (after one warm-up each).

    Returns:
        Each side's median wall time per run (ms) and its total client CPU time (s).
    """
    for fn in sides.values():  # warm up
        await fn()
    samples: dict[str, list[float]] = {name: [] for name in sides}
    cpu = dict.fromkeys(sides, 0.0)
    order = list(sides.items())
    for i in range(repeats):
        shift = i % len(order)
        for name, fn in order[shift:] + order[:shift]:
            cpu0 = time.process_time()
            started = time.perf_counter()
            await fn()
            samples[name].append(time.perf_counter() - started)
            cpu[name] += time.process_time() - cpu0
    return {name: median_ms(s) for name, s in samples.items()}, cpu


BATCH = [QUERIES[i % len(QUERIES)] + f" #{i}" for i in range(200)]
"""200 distinct queries for the concurrent benchmarks."""


def raw_batch(
    raw: httpx.AsyncClient, server: ServerInfo, url: str, concurrency: int | None = None
) -> Callable[[], Awaitable[None]]:
    """The async baseline: every query of ``BATCH`` as a raw POST, all at once.

    Args:
        raw: The baseline's pooled client.
        server: The running server.
        url: The search URL.
        concurrency: At most this many requests in flight (``None``: no limit).

    Returns:
        A coroutine function sending the whole batch.
    """
    limit = asyncio.Semaphore(concurrency) if concurrency else contextlib.nullcontext()

    async def one(q: str) -> Any:
        async with limit:
            response = await raw.post(url, json=search_body(q), headers=server.headers)
            response.raise_for_status()
            return response.json()["result"]["chunks"]

    async def base() -> None:
        await asyncio.gather(*(one(q) for q in BATCH))

    return base


def against_raw_and_floor(
    server: ServerInfo,
    instance_id: str,
    verb: str,
    make_ours: Callable[[httpx.Client], Callable[[str], Any]],
    make_floor: Callable[[httpx.Client, str], Callable[[str], Any]],
    rounds: int,
) -> list[str]:
    """Time an adapter's sync retrieval against a raw pooled POST and a bare framework floor.

    Args:
        server: The running server.
        instance_id: The instance searched.
        verb: The adapter's method name, used in the printed lines (``invoke``, ``retrieve``).
        make_ours: Builds the adapter's call from its own pooled ``httpx.Client``.
        make_floor: Builds the floor's call from its pooled client and the search URL.
        rounds: Interleaved calls per side.

    Returns:
        The ratio line against the 10 % target, then the CPU and floor lines.
    """
    url = server.search_url(instance_id)
    ours_http, floor_http, raw = (httpx.Client(timeout=30.0, limits=LIMITS) for _ in range(3))

    def base(q: str) -> Any:
        response = raw.post(url, json=search_body(q), headers=server.headers)
        response.raise_for_status()
        return response.json()["result"]["chunks"]

    try:
        sides = {"ours": make_ours(ours_http), "base": base, "floor": make_floor(floor_http, url)}
        wall, cpu = interleaved(sides, rounds)
    finally:
        for http in (raw, floor_http, ours_http):
            http.close()
    t_ours, t_base, t_floor = wall["ours"], wall["base"], wall["floor"]
    return [
        ratio_line(f"{verb} median ({rounds} calls each)", t_ours, t_base, 1.10),
        cpu_line(f"{verb} client CPU per call", cpu["ours"], cpu["base"], rounds),
        info_line("floor: bare BaseRetriever, raw POST", t_floor, t_base),
        cpu_line("floor client CPU per call", cpu["floor"], cpu["base"], rounds),
        info_line(f"{verb} vs the floor", t_ours, t_floor),
    ]


class ServerInfo:
    """What the benchmarks need of the server running in the child process."""

    def __init__(self, base_url: str, account_id: str, token: str, conn: Any) -> None:
        self.base_url = base_url
        self.account_id = account_id
        self.token = token
        self._conn = conn

    @property
    def headers(self) -> dict[str, str]:
        """The raw side's auth header."""
        return {"Authorization": f"Bearer {self.token}"}

    def search_url(self, instance_id: str) -> str:
        """The instance search URL the raw side posts to."""
        account = f"{self.base_url}/accounts/{self.account_id}"
        return f"{account}/ai-search/namespaces/default/instances/{instance_id}/search"

    def set_fault(self, instance_id: str, **fault: Any) -> None:
        """Inject a fault (e.g. ``latency_ms=100``) into one instance."""
        self._conn.send(("set_fault", instance_id, fault))
        self._conn.recv()

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        self._conn.send(("clear_faults", None, None))
        self._conn.recv()


def _serve(conn: Any, data_dir: str) -> None:
    with LocalServer(data_dir=Path(data_dir), token="bench-token") as server:
        conn.send((server.base_url, server.account_id, server.token))
        while True:
            op, instance_id, fault = conn.recv()
            if op == "stop":
                break
            if op == "set_fault":
                server.set_fault(instance_id, **fault)
            else:
                server.clear_faults()
            conn.send("ok")


@contextmanager
def child_server() -> Iterator[ServerInfo]:
    """Run ``aisearch_local`` in a child process for the duration of the block."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    with tempfile.TemporaryDirectory() as tmp:
        proc = ctx.Process(target=_serve, args=(child, tmp), daemon=True)
        proc.start()
        try:
            yield ServerInfo(*parent.recv(), parent)
        finally:
            parent.send(("stop", None, None))
            proc.join(timeout=30)


def index_sample(server: ServerInfo, prefix: str) -> tuple[str, list[str]]:
    """Index the sample corpus into one instance, and into 8 small shards.

    Returns:
        The instance id and the 8 shard ids.
    """
    with AISearchClient(
        account_id=server.account_id, api_token=server.token, base_url=server.base_url
    ) as client:
        docs_id = f"{prefix}-docs"
        client.create_instance(docs_id, custom_metadata=CUSTOM_METADATA)
        docs = list(iter_sample_documents())
        ids = [client.upload_item(docs_id, d.key, d.data, metadata=d.metadata).id for d in docs]
        client.wait_until_indexed(docs_id, ids, timeout=300)
        shards = []
        for n in range(8):
            iid = f"{prefix}-shard-{n}"
            client.create_instance(iid)
            up = [client.upload_item(iid, d.key, d.data).id for d in docs[n::8]]
            client.wait_until_indexed(iid, up, timeout=300)
            shards.append(iid)
    return docs_id, shards


def multi_lines(
    single: Callable[[str], Any], ns: Callable[[str], Any], fan: Callable[[str], Any], rounds: int
) -> list[str]:
    """Time one instance against eight (namespace endpoint, client fan-out), interleaved.

    Each callable runs one query (a retriever's ``invoke`` or ``retrieve``); the shards are
    expected to have 100 ms of injected latency each.
    """
    q = QUERIES[0]
    sides = {"single": single, "ns": ns, "fan": fan}
    for call in sides.values():
        call(q)
    samples: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, call in sides.items():
            started = time.perf_counter()
            assert call(q)
            samples[name].append(time.perf_counter() - started)
    base = median_ms(samples["single"])
    return [
        ratio_line("multi x8 @100ms, namespace endpoint", median_ms(samples["ns"]), base, 1.3),
        ratio_line("multi x8 @100ms, client fan-out", median_ms(samples["fan"]), base, 1.3),
    ]


def run_benchmarks(
    framework: str,
    prefix: str,
    single: Callable[[ServerInfo, str, int], list[str]],
    concurrent: Callable[[ServerInfo, str, int], Awaitable[list[str]]],
    multi: Callable[[ServerInfo, list[str], int], list[str]],
    *,
    repeats: int,
) -> None:
    """Parse the common options, start the child server, index, run, print a summary.

    Args:
        framework: Named in the summary.
        prefix: Instance id prefix of the indexed sample.
        single: Sequential calls against the raw POST (``--rounds`` calls).
        concurrent: Concurrent calls against raw asyncio (``--repeats`` runs).
        multi: Eight slowed instances against one (``--multi-rounds`` calls).
        repeats: Default of ``--repeats``.
    """
    parser = argparse.ArgumentParser(description=f"{framework} adapter overhead, as ratios")
    parser.add_argument("--rounds", type=int, default=1000, help="sequential calls per side")
    parser.add_argument("--repeats", type=int, default=repeats, help="concurrent runs per side")
    parser.add_argument("--multi-rounds", type=int, default=15, help="multi-instance calls")
    args = parser.parse_args()
    lines: list[str] = []
    with child_server() as server:
        print(f"local server {server.base_url} (child process); indexing ...", flush=True)
        instance_id, shards = index_sample(server, prefix)
        for line in [
            *single(server, instance_id, args.rounds),
            *asyncio.run(concurrent(server, instance_id, args.repeats)),
            *multi(server, shards, args.multi_rounds),
        ]:
            lines.append(line)
            print(line, flush=True)
    print(f"\nsummary ({framework} adapter vs raw httpx, same server, same run)")
    for line in lines:
        print("  " + line)
