"""Per-call overhead of the core client against raw httpx, on one local HTTP server.

A tiny starlette app served by uvicorn in a subprocess on 127.0.0.1 (free port) answers every
``POST .../search`` with the same canned, realistic search response (10 chunks with item
metadata and scoring details, ~6 KB). Then, in one run:

* sync: ``AISearchClient.search(...)`` (request model validation, envelope + result model
  parsing) against a raw pooled ``httpx.Client.post(url, json=body).json()`` with the same
  body, interleaved call by call (the order alternates every iteration), median per call;
* async: ``AsyncAISearchClient.search`` against raw ``httpx.AsyncClient.post(...).json()`` at
  concurrency 16 (16 tasks, each making sequential calls), rounds interleaved, median per-call
  time of each round (wall time / calls).

Prints the medians and the ratios (targets: sync within 10%, async within 15%).

Usage::

    .venv/bin/python benchmarks/bench_client.py
    .venv/bin/python benchmarks/bench_client.py --sync-calls 3000 --async-rounds 40
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

import httpx

from aisearch import AISearchClient, AsyncAISearchClient

ACCOUNT = "bench-account"
TOKEN = "bench-token"
INSTANCE = "bench"
QUERY = "How do I dial in espresso grind size?"
OPTIONS = {"retrieval": {"max_num_results": 10, "retrieval_type": "hybrid"}}
CONCURRENCY = 16
SYNC_TARGET = 1.10
ASYNC_TARGET = 1.15


def canned_response() -> bytes:
    """A search envelope with 10 realistic chunks."""
    chunks = []
    for n in range(10):
        chunks.append(
            {
                "id": f"c0ffee{n:02d}-5f0a-4b7e-9d1c-2a3b4c5d6e7f-{n}",
                "type": "text",
                "score": round(0.92 - n * 0.04, 4),
                "text": (
                    f"Section {n}. Grind finer when the shot runs fast; coarser when it chokes. "
                    "Keep the dose constant (18 g in a double basket) and change one variable "
                    "at a time, tasting for sourness (under-extraction) or bitterness "
                    "(over-extraction). A 1:2 ratio in 25-30 seconds is a good starting point. "
                )
                * 2,
                "item": {
                    "key": f"brewing/espresso-dial-in-{n}.md",
                    "timestamp": 1735689600 + n,
                    "metadata": {
                        "difficulty": "intermediate",
                        "rating": 4.5,
                        "author": "Lena Fischer",
                        "verified": True,
                    },
                },
                "scoring_details": {
                    "vector_score": 0.8,
                    "keyword_score": 3.2,
                    "vector_rank": n + 1,
                    "keyword_rank": n + 2,
                    "fusion_method": "rrf",
                },
            }
        )
    body = {
        "success": True,
        "errors": [],
        "messages": [],
        "result": {"search_query": QUERY, "query_kind": "text", "chunks": chunks},
    }
    return json.dumps(body).encode()


def serve(port: int) -> None:
    """Run the canned server (subprocess entry point)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    payload = canned_response()

    async def search(request: Request) -> Response:
        await request.body()
        return Response(payload, media_type="application/json")

    path = "/client/v4/accounts/{account}/ai-search/namespaces/{ns}/instances/{instance}/search"
    app = Starlette(routes=[Route(path, search, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    base = f"http://127.0.0.1:{port}/client/v4"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, base
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("benchmark server did not start")


def bench_sync(base: str, calls: int) -> tuple[float, float, float, float]:
    url = f"{base}/accounts/{ACCOUNT}/ai-search/namespaces/default/instances/{INSTANCE}/search"
    body = {"query": QUERY, "ai_search_options": OPTIONS}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    raw_times: list[float] = []
    client_times: list[float] = []
    raw_cpu: list[float] = []
    client_cpu: list[float] = []
    with (
        httpx.Client() as raw,
        AISearchClient(account_id=ACCOUNT, api_token=TOKEN, base_url=base) as client,
    ):

        def raw_call() -> Any:
            return raw.post(url, json=body, headers=headers).json()

        def client_call() -> Any:
            return client.search(INSTANCE, QUERY, options=OPTIONS)

        for _ in range(200):  # warm-up: connections, caches
            raw_call()
            client_call()
        assert len(client_call().chunks) == len(raw_call()["result"]["chunks"]) == 10
        clock, cpu = time.perf_counter, time.thread_time
        for i in range(calls):
            pair = ((raw_call, raw_times, raw_cpu), (client_call, client_times, client_cpu))
            for fn, sink, cpu_sink in pair if i % 2 == 0 else reversed(pair):
                start, start_cpu = clock(), cpu()
                fn()
                cpu_sink.append(cpu() - start_cpu)
                sink.append(clock() - start)
    med = statistics.median
    return med(raw_times), med(client_times), med(raw_cpu), med(client_cpu)


async def bench_async(base: str, rounds: int, calls_per_task: int) -> tuple[float, float]:
    url = f"{base}/accounts/{ACCOUNT}/ai-search/namespaces/default/instances/{INSTANCE}/search"
    body = {"query": QUERY, "ai_search_options": OPTIONS}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
    raw_rounds: list[float] = []
    client_rounds: list[float] = []
    async with (
        httpx.AsyncClient(limits=limits) as raw,
        AsyncAISearchClient(account_id=ACCOUNT, api_token=TOKEN, base_url=base) as client,
    ):

        async def raw_task() -> None:
            for _ in range(calls_per_task):
                (await raw.post(url, json=body, headers=headers)).json()

        async def client_task() -> None:
            for _ in range(calls_per_task):
                await client.search(INSTANCE, QUERY, options=OPTIONS)

        async def round_of(task: Any) -> float:
            start = time.perf_counter()
            await asyncio.gather(*(task() for _ in range(CONCURRENCY)))
            return (time.perf_counter() - start) / (CONCURRENCY * calls_per_task)

        for _ in range(3):  # warm-up
            await round_of(raw_task)
            await round_of(client_task)
        for i in range(rounds):
            pair = ((raw_task, raw_rounds), (client_task, client_rounds))
            for task, sink in pair if i % 2 == 0 else reversed(pair):
                sink.append(await round_of(task))
    return statistics.median(raw_rounds), statistics.median(client_rounds)


def verdict(ratio: float, target: float) -> str:
    return "OK" if ratio <= target else "MISSED"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--sync-calls", type=int, default=2000)
    parser.add_argument("--async-rounds", type=int, default=30)
    parser.add_argument("--calls-per-task", type=int, default=10)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0

    proc, base = start_server()
    try:
        raw_s, client_s, raw_cpu, client_cpu = bench_sync(base, args.sync_calls)
        raw_a, client_a = asyncio.run(bench_async(base, args.async_rounds, args.calls_per_task))
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    sync_ratio = client_s / raw_s
    async_ratio = client_a / raw_a
    print(f"server: uvicorn+starlette subprocess on {base} (canned 10-chunk response)")
    print(f"cpus: {os.cpu_count()}  python: {sys.version.split()[0]}  httpx: {httpx.__version__}")
    print()
    print(f"{'case':<38}{'raw httpx':>12}{'aisearch':>12}{'ratio':>8}  target")
    print(
        f"{'sync search, median per call':<38}{raw_s * 1e6:>10.0f}us{client_s * 1e6:>10.0f}us"
        f"{sync_ratio:>8.3f}  <= {SYNC_TARGET:.2f} {verdict(sync_ratio, SYNC_TARGET)}"
    )
    print(
        f"{'  (client-side CPU per call, sync)':<38}{raw_cpu * 1e6:>10.0f}us"
        f"{client_cpu * 1e6:>10.0f}us{client_cpu / raw_cpu:>8.3f}  (information)"
    )
    print(
        f"{f'async search, concurrency {CONCURRENCY}':<38}{raw_a * 1e6:>10.0f}us"
        f"{client_a * 1e6:>10.0f}us{async_ratio:>8.3f}  <= {ASYNC_TARGET:.2f} "
        f"{verdict(async_ratio, ASYNC_TARGET)}"
    )
    print(
        f"\nsync: {args.sync_calls} interleaved calls each; async: {args.async_rounds} rounds of "
        f"{CONCURRENCY} tasks x {args.calls_per_task} calls (per-call = round wall time / calls)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
