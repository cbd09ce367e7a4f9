"""LlamaIndex adapter overhead against a local AI Search server, printed as ratios.

Three comparisons, one run, one local server in a child process (hashing embedder, sample
corpus; see ``_harness.py``):

1. ``AISearchRetriever.retrieve`` median vs a raw pooled ``httpx.Client`` POST of the same
   body, parsed to JSON (target: within 10 %). Also printed: the floor, a bare LlamaIndex
   ``BaseRetriever`` whose ``_retrieve`` does the raw POST and builds plain ``TextNode``
   objects. Its ratio to the raw POST is what LlamaIndex's own ``retrieve`` machinery
   (instrumentation spans, events, callback manager) costs any retriever.
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

import asyncio
from typing import Any

import httpx
from _harness import (
    BATCH,
    LIMITS,
    TOP_K,
    ServerInfo,
    against_raw_and_floor,
    ainterleaved,
    cpu_line,
    multi_lines,
    ratio_line,
    raw_batch,
    run_benchmarks,
    search_body,
)
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from llamaindex_aisearch import AISearchConnection, AISearchMultiRetriever, AISearchRetriever
from llamaindex_aisearch._common import presigned


def _connection(server: ServerInfo, **http: Any) -> AISearchConnection:
    return AISearchConnection(
        account_id=server.account_id, api_token=server.token, base_url=server.base_url, **http
    )


class _FloorRetriever(BaseRetriever):
    """The least any LlamaIndex retriever over this API can do: a raw pooled POST, one
    ``TextNode`` per chunk, no validation, no options, no metadata mapping. ``_retrieve``
    gets the same precomputed signature as ours, so the floor is the real minimum."""

    def __init__(self, http: httpx.Client, url: str, headers: dict[str, str]) -> None:
        self._http, self._url, self._headers = http, url, headers
        super().__init__()

    @presigned
    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        response = self._http.post(
            self._url, json=search_body(query_bundle.query_str), headers=self._headers
        )
        response.raise_for_status()
        return [
            NodeWithScore(node=TextNode(id_=c["id"], text=c["text"]), score=c["score"])
            for c in response.json()["result"]["chunks"]
        ]


def bench_retrieve(server: ServerInfo, instance_id: str, rounds: int) -> list[str]:
    def ours(http: httpx.Client) -> Any:
        connection = _connection(server, http_client=http)
        return AISearchRetriever(
            instance_id, similarity_top_k=TOP_K, connection=connection
        ).retrieve

    def floor(http: httpx.Client, url: str) -> Any:
        return _FloorRetriever(http, url, server.headers).retrieve

    return against_raw_and_floor(server, instance_id, "retrieve", ours, floor, rounds)


async def bench_aretrieve(server: ServerInfo, instance_id: str, repeats: int) -> list[str]:
    ours_http = httpx.AsyncClient(timeout=30.0, limits=LIMITS)
    conn = _connection(server, async_http_client=ours_http)
    retriever = AISearchRetriever(instance_id, similarity_top_k=TOP_K, connection=conn)
    url = server.search_url(instance_id)

    async with ours_http, httpx.AsyncClient(timeout=30.0, limits=LIMITS) as raw:
        base = raw_batch(raw, server, url)

        async def ours() -> None:
            await asyncio.gather(*(retriever.aretrieve(q) for q in BATCH))

        wall, cpu = await ainterleaved({"ours": ours, "base": base}, repeats)
    await conn.aclose()
    return [
        ratio_line(
            f"200 concurrent aretrieve, median ({repeats} runs)",
            wall["ours"],
            wall["base"],
            1.15,
        ),
        cpu_line("aretrieve client CPU per call", cpu["ours"], cpu["base"], repeats * len(BATCH)),
    ]


def bench_multi(server: ServerInfo, shards: list[str], rounds: int) -> list[str]:
    conn = _connection(server)
    for iid in shards:
        server.set_fault(iid, latency_ms=100)
    single = AISearchRetriever(shards[0], similarity_top_k=8, connection=conn)
    via_ns = AISearchMultiRetriever(shards, similarity_top_k=8, connection=conn)
    via_fan = AISearchMultiRetriever(shards, similarity_top_k=8, mode="fan_out", connection=conn)
    lines = multi_lines(single.retrieve, via_ns.retrieve, via_fan.retrieve, rounds)
    server.clear_faults()
    conn.close()
    return lines


def main() -> None:
    run_benchmarks(
        "LlamaIndex", "li-bench", bench_retrieve, bench_aretrieve, bench_multi, repeats=7
    )


if __name__ == "__main__":
    main()
