"""LangChain adapter overhead against a local AI Search server, printed as ratios.

Three comparisons, one run, one local server in a child process (hashing embedder, sample
corpus; see ``_harness.py``):

1. ``AISearchRetriever.invoke`` median vs a raw pooled ``httpx.Client`` POST of the same
   body, parsed to JSON (target: within 10 %). Also printed: the floor, a bare LangChain
   ``BaseRetriever`` whose ``_get_relevant_documents`` does the raw POST and builds plain
   ``Document`` objects. Its ratio to the raw POST is what LangChain's own ``invoke``
   machinery (config, callback manager, run start/end) costs any retriever.
2. ``AISearchRetriever.abatch`` of 200 queries at ``max_concurrency=16`` vs raw
   ``asyncio`` + ``httpx.AsyncClient`` with a semaphore of 16 (target: within 15 %);
3. ``AISearchMultiRetriever`` over 8 instances, each with 100 ms of injected latency, vs
   one instance's latency (target: at most 1.3x), through the namespace endpoint and
   through the client-side fan-out.

Usage::

    .venv/bin/python benchmarks/bench_langchain.py [--rounds N] [--repeats N]
"""

from __future__ import annotations

from typing import Any

import httpx
from _harness import (
    BATCH,
    LIMITS,
    TOP_K,
    ServerInfo,
    against_raw_and_floor,
    ainterleaved,
    info_line,
    multi_lines,
    ratio_line,
    raw_batch,
    run_benchmarks,
    search_body,
)
from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from aisearch import AISearchClient, AsyncAISearchClient
from langchain_aisearch import AISearchMultiRetriever, AISearchRetriever


class _FloorRetriever(BaseRetriever):
    """The least any LangChain retriever over this API can do: a raw pooled POST and one
    ``Document`` per chunk, no validation, no options, no metadata mapping."""

    http: Any = None
    ahttp: Any = None
    url: str
    headers: dict[str, str]

    @staticmethod
    def _documents(response: httpx.Response) -> list[Document]:
        response.raise_for_status()
        return [
            Document(page_content=c["text"], id=c["id"], metadata={"score": c["score"]})
            for c in response.json()["result"]["chunks"]
        ]

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,  # noqa: ARG002
    ) -> list[Document]:
        response = await self.ahttp.post(self.url, json=search_body(query), headers=self.headers)
        return self._documents(response)

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,  # noqa: ARG002
    ) -> list[Document]:
        return self._documents(
            self.http.post(self.url, json=search_body(query), headers=self.headers)
        )


def _core_client(server: ServerInfo, http: httpx.Client) -> AISearchClient:
    return AISearchClient(
        account_id=server.account_id,
        api_token=server.token,
        base_url=server.base_url,
        http_client=http,
    )


def bench_invoke(server: ServerInfo, instance_id: str, rounds: int) -> list[str]:
    def ours(http: httpx.Client) -> Any:
        client = _core_client(server, http)
        return AISearchRetriever(instance_id=instance_id, k=TOP_K, client=client).invoke

    def floor(http: httpx.Client, url: str) -> Any:
        return _FloorRetriever(http=http, url=url, headers=server.headers).invoke

    return against_raw_and_floor(server, instance_id, "invoke", ours, floor, rounds)


async def bench_abatch(server: ServerInfo, instance_id: str, repeats: int) -> list[str]:
    url = server.search_url(instance_id)
    async with (
        httpx.AsyncClient(timeout=30.0, limits=LIMITS) as raw,
        httpx.AsyncClient(timeout=30.0, limits=LIMITS) as ours_http,
        httpx.AsyncClient(timeout=30.0, limits=LIMITS) as floor_http,
    ):
        core = AsyncAISearchClient(
            account_id=server.account_id,
            api_token=server.token,
            base_url=server.base_url,
            http_client=ours_http,
        )
        retriever = AISearchRetriever(instance_id=instance_id, k=TOP_K, async_client=core)
        floor_retriever = _FloorRetriever(ahttp=floor_http, url=url, headers=server.headers)
        base = raw_batch(raw, server, url, concurrency=16)

        async def ours() -> None:
            await retriever.abatch(BATCH, config={"max_concurrency": 16})

        async def floor() -> None:
            await floor_retriever.abatch(BATCH, config={"max_concurrency": 16})

        wall, _ = await ainterleaved({"ours": ours, "base": base, "floor": floor}, repeats)
    t_ours, t_base, t_floor = wall["ours"], wall["base"], wall["floor"]
    label = f"abatch 200 @16 median wall ({repeats} runs)"
    return [
        ratio_line(label, t_ours, t_base, 1.15),
        info_line("abatch floor: bare BaseRetriever, raw POST", t_floor, t_base),
    ]


def bench_multi(server: ServerInfo, shards: list[str], rounds: int) -> list[str]:
    conn = {"account_id": server.account_id, "api_token": server.token, "base_url": server.base_url}
    for iid in shards:
        server.set_fault(iid, latency_ms=100)
    single = AISearchRetriever(instance_id=shards[0], k=8, **conn)
    via_ns = AISearchMultiRetriever(instance_ids=shards, k=8, **conn)
    via_fan = AISearchMultiRetriever(instance_ids=shards, k=8, force_fan_out=True, **conn)
    lines = multi_lines(single.invoke, via_ns.invoke, via_fan.invoke, rounds)
    server.clear_faults()
    for r in (single, via_ns, via_fan):
        r.close()
    return lines


def main() -> None:
    run_benchmarks("LangChain", "lc-bench", bench_invoke, bench_abatch, bench_multi, repeats=21)


if __name__ == "__main__":
    main()
