"""LlamaIndex quickstart: a retriever, MetadataFilters, a query engine (streaming), a chat engine.

Mirrors notebooks/02_llamaindex_quickstart.ipynb. Runs on a local server seeded with the sample
corpus, or on Cloudflare when CLOUDFLARE_ACCOUNT_ID, CLOUDFLARE_API_TOKEN and
AISEARCH_DEMO_INSTANCE are set.

Needs `pip install "aisearch-py[llamaindex,local]"` (or `[examples]`): LlamaIndex and the local
server. Nothing to start first: without Cloudflare credentials the script starts its own local
AI Search server (`aisearch_local` on 127.0.0.1, a free port, a temporary data directory) and
stops it at the end; `make serve` is not needed.

    python examples/llamaindex_quickstart.py
"""

from __future__ import annotations

import asyncio

from _target import coffee_target
from llama_index.core.vector_stores import FilterOperator, MetadataFilter, MetadataFilters

from llamaindex_aisearch import (
    AISearchChatEngine,
    AISearchConnection,
    AISearchQueryEngine,
    AISearchRetriever,
)


def show(nodes: list) -> None:
    for hit in nodes:
        meta = hit.node.metadata
        print(f"  {hit.score:.3f}  {meta['source']:<44} {meta.get('author', '')}")


def main() -> None:
    with coffee_target() as target:
        # One connection shared by every adapter: one pooled HTTP client.
        conn = AISearchConnection(**target.connection)

        # 1. A retriever: NodeWithScore(TextNode(text, metadata), score).
        retriever = AISearchRetriever(target.instance, similarity_top_k=4, connection=conn)
        question = "Which grinder burrs are best for espresso?"
        print(f"retriever.retrieve({question!r})")
        show(retriever.retrieve(question))

        # 2. LlamaIndex MetadataFilters are translated into AI Search filters.
        filters = MetadataFilters(
            filters=[
                MetadataFilter(key="folder", value="equipment/"),
                MetadataFilter(key="difficulty", value="intermediate"),
                MetadataFilter(key="rating", value=4.0, operator=FilterOperator.GTE),
            ]
        )
        filtered = AISearchRetriever(
            target.instance, similarity_top_k=3, filters=filters, connection=conn
        )
        print("\nintermediate equipment/ documents rated 4.0 or more:")
        show(filtered.retrieve("cleaning"))

        # 3. A query engine: the service retrieves and answers; source_nodes are the chunks.
        engine = AISearchQueryEngine(target.instance, similarity_top_k=4, connection=conn)
        response = engine.query("What water temperature for a V60 pour-over?")
        print("\nquery ->", response.response)
        print("  source_nodes:", [n.node.metadata["source"] for n in response.source_nodes])
        print(
            "  metadata:",
            {k: response.metadata[k] for k in ("model", "usage") if k in response.metadata},
        )

        # 4. Streaming: source_nodes are set before the first token is read.
        streaming = AISearchQueryEngine(
            target.instance, streaming=True, similarity_top_k=4, connection=conn
        )
        response = streaming.query("What causes a slow drawdown in a V60?")
        print(
            "\nstreaming query, sources first:",
            [n.node.metadata["source"] for n in response.source_nodes],
        )
        print("  ", end="")
        for token in response.response_gen:
            print(token, end="", flush=True)
        print()

        # 5. Async.
        async def ask() -> str:
            result = await engine.aquery("How much caffeine is in cold brew?")
            return str(result)

        print("\naquery ->", asyncio.run(ask()))

        # 6. A chat engine: multi-turn, the service retrieves with the conversation.
        chat = AISearchChatEngine(target.instance, connection=conn)
        first = chat.chat("What is a cortado?")
        print("\nchat 1 ->", first.response)
        second = chat.chat("And how does it differ from a flat white?")
        print("chat 2 ->", second.response)
        print("  history:", [m.role.value for m in chat.chat_history])


if __name__ == "__main__":
    main()
