"""How long a call lasts against a hostile server, with ``timeout=2`` (target: under 6 s each).

A raw HTTP server on 127.0.0.1 (``tests/integration_tests/core/hostile.py``, in a thread)
trickles a valid 334-byte search answer 4 bytes every 50 ms (4.2 s in all), sends a
chunked body that never ends, keeps an SSE stream alive with ``: keep-alive`` comments and
no event, or trickles the response headers (``slowheaders``: a status line, then one header
byte per 50 ms, forever). Each case is run with ``AISearchClient`` and ``AsyncAISearchClient``
(``timeout=2``, ``max_retries=0``: one attempt) and must end with ``APITimeoutError``; the
median wall time of ``--runs`` runs is printed. A last pair of rows shows the trickle with
the default retries (2) capped by ``total_timeout=3``.

Issue #11 measured before the deadlines (answer trickled at 4 bytes/s): the search took 51 s and
succeeded, an endless body held a call 46 s, a comment-only stream 45 s. Before the sync
client bounded each socket read by the attempt's deadline (review F5), headers trickled at
2 bytes/s held a sync call 24.5 s (``timeout=2, total_timeout=3``), forever if never done.

Usage::

    .venv/bin/python benchmarks/bench_deadlines.py
    .venv/bin/python benchmarks/bench_deadlines.py --runs 5
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aisearch import AISearchClient, APITimeoutError, AsyncAISearchClient
from tests.integration_tests.core.hostile import HostileServer

TIMEOUT = 2.0
TARGET = 6.0
MESSAGES = [{"role": "user", "content": "q"}]


def sync_case(client: AISearchClient, case: str) -> Callable[[], Any]:
    if case == "comments":
        return lambda: list(client.stream_chat_completions(case, MESSAGES))
    return lambda: client.search(case, "q")


def async_case(client: AsyncAISearchClient, case: str) -> Callable[[], Awaitable[Any]]:
    async def drain() -> None:
        async for _ in client.stream_chat_completions(case, MESSAGES):
            pass

    if case == "comments":
        return drain
    return lambda: client.search(case, "q")


def time_sync(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    try:
        call()
    except APITimeoutError:
        return time.perf_counter() - started
    raise SystemExit("the call did not time out")


async def time_async(call: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    try:
        await call()
    except APITimeoutError:
        return time.perf_counter() - started
    raise SystemExit("the call did not time out")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows: list[tuple[str, list[float]]] = []
    with HostileServer(interval=0.05, step=4) as server:
        common: dict[str, Any] = {
            "account_id": "bench",
            "api_token": "bench-token",
            "base_url": server.base_url,
            "timeout": TIMEOUT,
        }
        configs = [
            ({"max_retries": 0}, case) for case in ("trickle", "endless", "comments", "slowheaders")
        ]
        configs.append(({"total_timeout": 3.0}, "trickle"))
        for extra, case in configs:
            label = case if "total_timeout" not in extra else f"{case}, 2 retries, total 3 s"
            with AISearchClient(**common, **extra) as client:
                rows.append(
                    (
                        f"sync  {label}",
                        [time_sync(sync_case(client, case)) for _ in range(args.runs)],
                    )
                )

            async def run_async(extra: dict[str, Any] = extra, case: str = case) -> list[float]:
                async with AsyncAISearchClient(**common, **extra) as client:
                    return [await time_async(async_case(client, case)) for _ in range(args.runs)]

            rows.append((f"async {label}", asyncio.run(run_async())))
    print(f"timeout={TIMEOUT:g} s; median of {args.runs} runs; every call ended in APITimeoutError")
    print(f"{'case':<38}{'median':>9}{'max':>9}  target")
    ok = True
    for label, times in rows:
        median = statistics.median(times)
        ok = ok and median < TARGET
        verdict = "OK" if median < TARGET else "MISSED"
        print(f"{label:<38}{median:>8.2f}s{max(times):>8.2f}s  < {TARGET:g} s {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
