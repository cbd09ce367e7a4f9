"""LangChain adapter overhead against a local AI Search server, printed as ratios.

Three comparisons, one run, one local server (hashing embedder, sample corpus):

1. ``AISearchRetriever.invoke`` median vs a raw pooled ``httpx.Client`` POST of the same
   body (target: within 10 %);
2. ``AISearchRetriever.abatch`` of 200 queries at ``max_concurrency=16`` vs raw
   ``asyncio`` + ``httpx.AsyncClient`` with a semaphore of 16 (target: within 15 %);
3. ``AISearchMultiRetriever`` over 8 instances, each with 100 ms of injected latency, vs
   one instance's latency (target: at most 1.3x), through the namespace endpoint and
   through the client-side fan-out.

Usage::

    .venv/bin/python benchmarks/bench_langchain.py [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from aisearch import AISearchClient
from aisearch_local.sample_corpus import CUSTOM_METADATA, iter_sample_documents
from aisearch_local.testing import LocalServer
from langchain_aisearch import AISearchMultiRetriever, AISearchRetriever

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


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def _ratio_line(name: str, ours: float, base: float, target: float, unit: str = "ms") -> str:
    ratio = ours / base
    verdict = "ok" if ratio <= target else "OVER TARGET"
    return (
        f"{name:<46} ours {ours:8.2f} {unit}   baseline {base:8.2f} {unit}   "
        f"ratio {ratio:5.3f}  (target <= {target:.2f}: {verdict})"
    )


def _search_url(server: LocalServer, instance_id: str) -> str:
    account = f"{server.base_url}/accounts/{server.account_id}"
    return f"{account}/ai-search/namespaces/default/instances/{instance_id}/search"


def setup(server: LocalServer) -> tuple[AISearchClient, str, list[str]]:
    client = AISearchClient(
        account_id=server.account_id, api_token=server.token, base_url=server.base_url
    )
    client.create_instance("bench-docs", custom_metadata=CUSTOM_METADATA)
    ids = [
        client.upload_item("bench-docs", d.key, d.data, metadata=d.metadata).id
        for d in iter_sample_documents()
    ]
    client.wait_until_indexed("bench-docs", ids, timeout=300)
    small = []
    docs = list(iter_sample_documents())
    for n in range(8):
        iid = f"bench-shard-{n}"
        client.create_instance(iid)
        shard = docs[n::8]
        up = [client.upload_item(iid, d.key, d.data).id for d in shard]
        client.wait_until_indexed(iid, up, timeout=300)
        small.append(iid)
    return client, "bench-docs", small


def bench_invoke(server: LocalServer, instance_id: str, rounds: int) -> str:
    retriever = AISearchRetriever(
        instance_id=instance_id,
        k=4,
        account_id=server.account_id,
        api_token=server.token,
        base_url=server.base_url,
    )
    url = _search_url(server, instance_id)
    headers = {"Authorization": f"Bearer {server.token}"}
    raw = httpx.Client(timeout=30.0)

    def ours(q: str) -> Any:
        return retriever.invoke(q)

    def base(q: str) -> Any:
        body = {"query": q, "ai_search_options": {"retrieval": {"max_num_results": 4}}}
        response = raw.post(url, json=body, headers=headers)
        response.raise_for_status()
        return response.json()["result"]["chunks"]

    for q in QUERIES:  # warm up both pools and the server's caches
        ours(q)
        base(q)
    t_ours: list[float] = []
    t_base: list[float] = []
    for i in range(rounds):
        q = QUERIES[i % len(QUERIES)]
        pair: list[tuple[Callable[[str], Any], list[float]]] = [(ours, t_ours), (base, t_base)]
        if i % 2:
            pair.reverse()  # alternate the order so neither side always goes first
        for fn, sink in pair:
            started = time.perf_counter()
            fn(q)
            sink.append(time.perf_counter() - started)
    raw.close()
    return _ratio_line(
        f"invoke median ({rounds} calls each)", _median_ms(t_ours), _median_ms(t_base), 1.10
    )


async def bench_abatch(server: LocalServer, instance_id: str, repeats: int) -> str:
    queries = [QUERIES[i % len(QUERIES)] + f" #{i}" for i in range(200)]
    retriever = AISearchRetriever(
        instance_id=instance_id,
        k=4,
        account_id=server.account_id,
        api_token=server.token,
        base_url=server.base_url,
    )
    url = _search_url(server, instance_id)
    headers = {"Authorization": f"Bearer {server.token}"}
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)

    async with httpx.AsyncClient(timeout=30.0, limits=limits) as raw:
        sem = asyncio.Semaphore(16)

        async def one(q: str) -> Any:
            async with sem:
                body = {"query": q, "ai_search_options": {"retrieval": {"max_num_results": 4}}}
                response = await raw.post(url, json=body, headers=headers)
                response.raise_for_status()
                return response.json()["result"]["chunks"]

        async def base() -> None:
            await asyncio.gather(*(one(q) for q in queries))

        async def ours() -> None:
            await retriever.abatch(queries, config={"max_concurrency": 16})

        await base()
        await ours()
        t_ours: list[float] = []
        t_base: list[float] = []
        for i in range(repeats):
            pair = [(ours, t_ours), (base, t_base)]
            if i % 2:
                pair.reverse()
            for fn, sink in pair:
                started = time.perf_counter()
                await fn()
                sink.append(time.perf_counter() - started)
    return _ratio_line(
        f"abatch 200 @16 median wall ({repeats} runs)",
        _median_ms(t_ours),
        _median_ms(t_base),
        1.15,
    )


def bench_multi(server: LocalServer, shards: list[str], rounds: int) -> list[str]:
    conn = {"account_id": server.account_id, "api_token": server.token, "base_url": server.base_url}
    for iid in shards:
        server.set_fault(iid, latency_ms=100)
    single = AISearchRetriever(instance_id=shards[0], k=8, **conn)
    via_ns = AISearchMultiRetriever(instance_ids=shards, k=8, **conn)
    via_fan = AISearchMultiRetriever(instance_ids=shards, k=8, force_fan_out=True, **conn)
    q = QUERIES[0]
    for r in (single, via_ns, via_fan):
        r.invoke(q)
    samples: dict[str, list[float]] = {"single": [], "ns": [], "fan": []}
    for _ in range(rounds):
        for name, r in (("single", single), ("ns", via_ns), ("fan", via_fan)):
            started = time.perf_counter()
            docs = r.invoke(q)
            samples[name].append(time.perf_counter() - started)
            assert docs
    server.clear_faults()
    base = _median_ms(samples["single"])
    return [
        _ratio_line("multi x8 @100ms, namespace endpoint", _median_ms(samples["ns"]), base, 1.3),
        _ratio_line("multi x8 @100ms, client fan-out", _median_ms(samples["fan"]), base, 1.3),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300, help="invoke calls per side")
    parser.add_argument("--repeats", type=int, default=5, help="abatch runs per side")
    parser.add_argument("--multi-rounds", type=int, default=15, help="multi-instance calls")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        LocalServer(data_dir=Path(tmp), token="bench-token") as server,
    ):
        print(f"local server {server.base_url}; indexing the sample corpus ...", flush=True)
        client, docs, shards = setup(server)
        lines = [bench_invoke(server, docs, args.rounds)]
        print(lines[-1], flush=True)
        lines.append(asyncio.run(bench_abatch(server, docs, args.repeats)))
        print(lines[-1], flush=True)
        for line in bench_multi(server, shards, args.multi_rounds):
            lines.append(line)
            print(line, flush=True)
        client.close()
    print("\nsummary")
    for line in lines:
        print("  " + line)


if __name__ == "__main__":
    main()
