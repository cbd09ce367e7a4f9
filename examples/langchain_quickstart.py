"""LangChain quickstart: retrieval with scores and sources, filters, chat with citations, streaming.

Mirrors notebooks/01_langchain_quickstart.ipynb. Runs on a local server seeded with the sample
corpus, or on Cloudflare when CLOUDFLARE_ACCOUNT_ID, CLOUDFLARE_API_TOKEN and
AISEARCH_DEMO_INSTANCE are set.

Needs `pip install "aisearch-py[langchain,local]"` (or `[examples]`): LangChain and the local
server. Nothing to start first: without Cloudflare credentials the script starts its own local
AI Search server (`aisearch_local` on 127.0.0.1, a free port, a temporary data directory) and
stops it at the end; `make serve` is not needed.

    python examples/langchain_quickstart.py
"""

from __future__ import annotations

import asyncio

from _target import coffee_target

from langchain_aisearch import AISearchRetriever, ChatAISearch


def show(docs: list) -> None:
    for doc in docs:
        meta = doc.metadata
        print(f"  {meta['score']:.3f}  {meta['source']:<44} {meta.get('difficulty', '')}")


def main() -> None:
    with coffee_target() as target:
        # 1. A retriever: Documents with the chunk text, a score and the source item.
        retriever = AISearchRetriever(instance_id=target.instance, k=4, **target.connection)
        question = "What grind size and steep time for a French press?"
        print(f"retriever.invoke({question!r})")
        docs = retriever.invoke(question)
        show(docs)
        print("metadata keys:", sorted(docs[0].metadata))

        # 2. Per call: fewer results, and a metadata filter (folder or custom metadata).
        print("\nk=2, only the troubleshooting/ folder:")
        show(retriever.invoke("bitter coffee", k=2, filters={"folder": "troubleshooting/"}))
        print("\nonly documents rated 4.5 or more and written for beginners:")
        show(
            retriever.invoke(
                "espresso", filters={"rating": {"$gte": 4.5}, "difficulty": "beginner"}
            )
        )

        # 3. Async and batch.
        async def ask_many() -> list[list]:
            return await retriever.abatch(["cold brew ratio", "descaling a kettle"])

        for query, found in zip(
            ["cold brew ratio", "descaling a kettle"], asyncio.run(ask_many()), strict=True
        ):
            print(f"\nabatch {query!r} -> {found[0].metadata['source']}")

        # 4. Chat: a generated answer with its sources and citations.
        chat = ChatAISearch(instance_id=target.instance, k=4, **target.connection)
        answer = chat.invoke("How should I store coffee beans at home?")
        print("\nChatAISearch.invoke ->")
        print(" ", answer.content)
        for i, source in enumerate(answer.response_metadata["sources"], 1):
            print(f"  [{i}] {source['item']['key']}")
        print("  usage:", answer.usage_metadata)
        citations = [
            ann
            for block in answer.content_blocks
            if block.get("type") == "text"
            for ann in block.get("annotations", [])
        ]
        for c in citations:
            span = answer.content[c["start_index"] : c["end_index"]]
            print(f"  citation -> {c['title']}: {span[:60]!r}")

        # 5. Streaming: the sources arrive first, then the text, token by token.
        print("\nChatAISearch.stream ->")
        sources = None
        for chunk in chat.stream("What is the recipe for a flat white?"):
            if sources is None and chunk.response_metadata.get("sources"):
                sources = [s["item"]["key"] for s in chunk.response_metadata["sources"]]
                print("  sources first:", sources)
                print("  ", end="")
            print(chunk.content, end="", flush=True)
        print()


if __name__ == "__main__":
    main()
