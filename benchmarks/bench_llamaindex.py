"""LlamaIndex adapter overhead against a local AI Search server, printed as ratios.

Three comparisons, one run, one local server (hashing embedder, sample corpus). The server
runs in a child process: in-process (a uvicorn thread) the client and the server fight for
one GIL, and the thread hand-offs, not the adapter, dominate the timings.

1. ``AISearchRetriever.retrieve`` median vs a raw pooled ``httpx.Client`` POST of the same
   body, parsed to JSON (target: within 10 %);
2. 200 concurrent ``AISearchRetriever.aretrieve`` calls (``asyncio.gather``) vs 200
   concurrent raw ``httpx.AsyncClient`` POSTs with the same connection limits (target:
   within 15 %);
3. ``AISearchMultiRetriever`` over 8 instances, each with 100 ms of injected latency, vs
   one instance (target: at most 1.3x), through the namespace endpoint and through the
   client-side fan-out.

Usage::

    .venv/bin/python benchmarks/bench_llamaindex.py [--rounds N] [--repeats N]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from aisearch import AISearchClient
from aisearch_local.sample_corpus import CUSTOM_METADATA, iter_sample_documents
from aisearch_local.testing import LocalServer
from llamaindex_aisearch import AISearchConnection, AISearchMultiRetriever, AISearchRetriever
from llamaindex_aisearch._common import presigned

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
# Both sides use the same pool settings. Idle connections expire after 2 s, before
# uvicorn's 5 s keep-alive timeout closes them: otherwise a reused, server-closed
# connection fails (the raw client raises ReadError; the core client retries it).
LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=2.0)


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def _ratio_line(name: str, ours: float, base: float, target: float) -> str:
    ratio = ours / base
    verdict = "ok" if ratio <= target else "OVER TARGET"
    return (
        f"{name:<44} ours {ours:8.2f} ms   baseline {base:8.2f} ms   "
        f"ratio {ratio:5.3f}  (target <= {target:.2f}: {verdict})"
    )


def _floor_line(name: str, ours: float, base: float) -> str:
    return (
        f"{name:<44} ours {ours:8.2f} ms   baseline {base:8.2f} ms   "
        f"ratio {ours / base:5.3f}  (informative)"
    )


def _cpu_line(name: str, cpu: dict[str, float], calls: int) -> str:
    ours = cpu["ours"] / calls * 1000
    base = cpu["base"] / calls * 1000
    return (
        f"{name:<44} ours {ours:8.3f} ms   baseline {base:8.3f} ms   "
        f"adapter overhead {ours - base:+.3f} ms/call (informative)"
    )


def _connection(server: ServerInfo, **http: Any) -> AISearchConnection:
    return AISearchConnection(
        account_id=server.account_id, api_token=server.token, base_url=server.base_url, **http
    )


def _search_url(server: ServerInfo, instance_id: str) -> str:
    account = f"{server.base_url}/accounts/{server.account_id}"
    return f"{account}/ai-search/namespaces/default/instances/{instance_id}/search"


def _body(q: str) -> dict[str, Any]:
    return {"query": q, "ai_search_options": {"retrieval": {"max_num_results": TOP_K}}}


class ServerInfo:
    """What the benchmarks need of the server running in the child process."""

    def __init__(self, base_url: str, account_id: str, token: str, conn: Any) -> None:
        self.base_url = base_url
        self.account_id = account_id
        self.token = token
        self._conn = conn

    def set_fault(self, instance_id: str, **fault: Any) -> None:
        self._conn.send(("set_fault", instance_id, fault))
        self._conn.recv()

    def clear_faults(self) -> None:
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


def setup(server: ServerInfo) -> tuple[str, list[str]]:
    with AISearchClient(
        account_id=server.account_id, api_token=server.token, base_url=server.base_url
    ) as client:
        client.create_instance("li-bench-docs", custom_metadata=CUSTOM_METADATA)
        docs = list(iter_sample_documents())
        ids = [
            client.upload_item("li-bench-docs", d.key, d.data, metadata=d.metadata).id for d in docs
        ]
        client.wait_until_indexed("li-bench-docs", ids, timeout=300)
        shards = []
        for n in range(8):
            iid = f"li-bench-shard-{n}"
            client.create_instance(iid)
            up = [client.upload_item(iid, d.key, d.data).id for d in docs[n::8]]
            client.wait_until_indexed(iid, up, timeout=300)
            shards.append(iid)
    return "li-bench-docs", shards


class _FloorRetriever(BaseRetriever):
    """The least any LlamaIndex retriever over this API can do: a raw pooled POST, one
    ``TextNode`` per chunk, no validation, no options, no metadata mapping. Its ratio to the
    raw POST is LlamaIndex's own per-call cost (``BaseRetriever.retrieve`` instrumentation
    spans, callback manager, events), which every retriever pays. ``_retrieve`` gets the same
    precomputed signature as ours, so the floor is the real minimum."""

    def __init__(self, http: httpx.Client, url: str, headers: dict[str, str]) -> None:
        self._http, self._url, self._headers = http, url, headers
        super().__init__()

    @presigned
    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        response = self._http.post(
            self._url, json=_body(query_bundle.query_str), headers=self._headers
        )
        response.raise_for_status()
        return [
            NodeWithScore(node=TextNode(id_=c["id"], text=c["text"]), score=c["score"])
            for c in response.json()["result"]["chunks"]
        ]


def bench_retrieve(server: ServerInfo, instance_id: str, rounds: int) -> list[str]:
    ours_http = httpx.Client(timeout=30.0, limits=LIMITS)
    retriever = AISearchRetriever(
        instance_id, similarity_top_k=TOP_K, connection=_connection(server, http_client=ours_http)
    )
    url = _search_url(server, instance_id)
    headers = {"Authorization": f"Bearer {server.token}"}
    raw = httpx.Client(timeout=30.0, limits=LIMITS)
    floor_http = httpx.Client(timeout=30.0, limits=LIMITS)
    floor_retriever = _FloorRetriever(floor_http, url, headers)

    def ours(q: str) -> Any:
        return retriever.retrieve(q)

    def floor(q: str) -> Any:
        return floor_retriever.retrieve(q)

    def base(q: str) -> Any:
        response = raw.post(url, json=_body(q), headers=headers)
        response.raise_for_status()
        return response.json()["result"]["chunks"]

    for q in QUERIES:  # warm up the pools and the server's caches
        assert len(ours(q)) == len(base(q)) == len(floor(q))
    t_ours: list[float] = []
    t_base: list[float] = []
    t_floor: list[float] = []
    cpu = {"ours": 0.0, "base": 0.0, "floor": 0.0}
    for i in range(rounds):
        q = QUERIES[i % len(QUERIES)]
        trio: list[tuple[str, Callable[[str], Any], list[float]]] = [
            ("ours", ours, t_ours),
            ("base", base, t_base),
            ("floor", floor, t_floor),
        ]
        shift = i % 3  # rotate the order so no side always goes first
        for name, fn, sink in trio[shift:] + trio[:shift]:
            cpu0 = time.process_time()
            started = time.perf_counter()
            fn(q)
            sink.append(time.perf_counter() - started)
            cpu[name] += time.process_time() - cpu0
    raw.close()
    floor_http.close()
    retriever.connection.close()
    ours_http.close()
    floor_cpu = {"ours": cpu["floor"], "base": cpu["base"]}
    return [
        _ratio_line(
            f"retrieve median ({rounds} calls each)", _median_ms(t_ours), _median_ms(t_base), 1.10
        ),
        _cpu_line("retrieve client CPU per call", cpu, rounds),
        _floor_line("floor: bare BaseRetriever, raw POST", _median_ms(t_floor), _median_ms(t_base)),
        _cpu_line("floor client CPU per call", floor_cpu, rounds),
        _floor_line("retrieve vs the floor", _median_ms(t_ours), _median_ms(t_floor)),
    ]


async def bench_aretrieve(server: ServerInfo, instance_id: str, repeats: int) -> list[str]:
    queries = [QUERIES[i % len(QUERIES)] + f" #{i}" for i in range(200)]
    ours_http = httpx.AsyncClient(timeout=30.0, limits=LIMITS)
    conn = _connection(server, async_http_client=ours_http)
    retriever = AISearchRetriever(instance_id, similarity_top_k=TOP_K, connection=conn)
    url = _search_url(server, instance_id)
    headers = {"Authorization": f"Bearer {server.token}"}

    async with ours_http, httpx.AsyncClient(timeout=30.0, limits=LIMITS) as raw:

        async def one(q: str) -> Any:
            response = await raw.post(url, json=_body(q), headers=headers)
            response.raise_for_status()
            return response.json()["result"]["chunks"]

        async def base() -> None:
            await asyncio.gather(*(one(q) for q in queries))

        async def ours() -> None:
            await asyncio.gather(*(retriever.aretrieve(q) for q in queries))

        await base()  # warm up
        await ours()
        t_ours: list[float] = []
        t_base: list[float] = []
        cpu = {"ours": 0.0, "base": 0.0}
        for i in range(repeats):
            pair = [("ours", ours, t_ours), ("base", base, t_base)]
            if i % 2:
                pair.reverse()
            for name, fn, sink in pair:
                cpu0 = time.process_time()
                started = time.perf_counter()
                await fn()
                sink.append(time.perf_counter() - started)
                cpu[name] += time.process_time() - cpu0
    await conn.aclose()
    return [
        _ratio_line(
            f"200 concurrent aretrieve, median ({repeats} runs)",
            _median_ms(t_ours),
            _median_ms(t_base),
            1.15,
        ),
        _cpu_line("aretrieve client CPU per call", cpu, repeats * len(queries)),
    ]


def bench_multi(server: ServerInfo, shards: list[str], rounds: int) -> list[str]:
    conn = _connection(server)
    for iid in shards:
        server.set_fault(iid, latency_ms=100)
    single = AISearchRetriever(shards[0], similarity_top_k=8, connection=conn)
    via_ns = AISearchMultiRetriever(shards, similarity_top_k=8, connection=conn)
    via_fan = AISearchMultiRetriever(shards, similarity_top_k=8, mode="fan_out", connection=conn)
    q = QUERIES[0]
    for r in (single, via_ns, via_fan):
        r.retrieve(q)
    samples: dict[str, list[float]] = {"single": [], "ns": [], "fan": []}
    for _ in range(rounds):
        for name, r in (("single", single), ("ns", via_ns), ("fan", via_fan)):
            started = time.perf_counter()
            nodes = r.retrieve(q)
            samples[name].append(time.perf_counter() - started)
            assert nodes
    server.clear_faults()
    conn.close()
    base = _median_ms(samples["single"])
    return [
        _ratio_line("multi x8 @100ms, namespace endpoint", _median_ms(samples["ns"]), base, 1.3),
        _ratio_line("multi x8 @100ms, client fan-out", _median_ms(samples["fan"]), base, 1.3),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300, help="retrieve calls per side")
    parser.add_argument("--repeats", type=int, default=7, help="200-call async runs per side")
    parser.add_argument("--multi-rounds", type=int, default=15, help="multi retriever calls")
    args = parser.parse_args()
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    with tempfile.TemporaryDirectory() as tmp:
        proc = ctx.Process(target=_serve, args=(child, tmp), daemon=True)
        proc.start()
        server = ServerInfo(*parent.recv(), parent)
        print(f"local server {server.base_url} (child process); indexing ...", flush=True)
        instance_id, shards = setup(server)
        lines: list[str] = []
        for line in [
            *bench_retrieve(server, instance_id, args.rounds),
            *asyncio.run(bench_aretrieve(server, instance_id, args.repeats)),
            *bench_multi(server, shards, args.multi_rounds),
        ]:
            lines.append(line)
            print(line, flush=True)
        parent.send(("stop", None, None))
        proc.join(timeout=30)
    print("\nsummary (LlamaIndex adapter vs raw httpx, same server, same run)")
    for line in lines:
        print("  " + line)


if __name__ == "__main__":
    main()
