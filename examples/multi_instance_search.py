"""Multi-instance search with per-instance error reporting (core, LangChain, LlamaIndex).

Mirrors notebooks/04_multi_instance_search.ipynb. Locally the sample corpus is split by folder
into three instances and faults are injected into the local server. Against Cloudflare
(CLOUDFLARE_ACCOUNT_ID, CLOUDFLARE_API_TOKEN, AISEARCH_DEMO_INSTANCE and optionally
AISEARCH_DEMO_INSTANCES=a,b,c) the failing instance is one that does not exist.

Needs `pip install "aisearch-py[langchain,llamaindex,local]"` (or `[examples]`): both frameworks
and the local server. Nothing to start first: without Cloudflare credentials the script starts
its own local AI Search server (`aisearch_local` on 127.0.0.1, a free port, a temporary data
directory) and stops it at the end; `make serve` is not needed.

    python examples/multi_instance_search.py
"""

from __future__ import annotations

import warnings

from _target import SPLIT, coffee_target, live_instances

from aisearch import AllInstancesFailedError, SearchTarget
from langchain_aisearch import AISearchInstanceWarning, AISearchMultiRetriever, InstanceSearchError
from llamaindex_aisearch import AISearchMultiRetriever as LlamaMultiRetriever

QUERY = "How long should coffee rest after roasting before I brew espresso?"


def show(docs: list) -> None:
    for doc in docs:
        meta = doc.metadata
        print(f"  {meta['instance_id']:<20} {meta['score']:.3f}  {meta['source']}")


def main() -> None:
    with coffee_target(instances=SPLIT) as target:
        client = target.client
        healthy = list(SPLIT) if not target.live else live_instances()

        # 1. One namespace request over several instances: merged, ranked, each chunk tagged.
        result = client.namespace_search(healthy, QUERY)
        print(f"namespace_search over {healthy}: {len(result.chunks)} chunks")
        print("  errors:", result.errors)
        for chunk in result.chunks[:5]:
            print(f"  {chunk.instance_id:<20} {chunk.score:.3f}  {chunk.item.key}")

        # 2. Make one instance fail. Locally: inject HTTP 503 into `cafe-menu`. Live: ask for an
        #    instance that does not exist. The others still answer; the failure is reported.
        if target.server is not None:
            target.server.set_fault("cafe-menu", status=503, code=7017)
            instance_ids = healthy
        else:
            instance_ids = [*healthy, "no-such-instance"]
        result = client.namespace_search(instance_ids, QUERY)
        print(f"\nwith a failing instance: {len(result.chunks)} chunks from the others")
        for error in result.errors:
            print(f"  error: {error.instance_id}: {error.message}")

        # 3. LangChain: documents and errors together...
        retriever = AISearchMultiRetriever(instance_ids=instance_ids, k=4, **target.connection)
        docs, errors = retriever.search_with_errors(QUERY)
        print("\nLangChain search_with_errors:")
        show(docs)
        print("  errors:", [(e.instance_id, e.message) for e in errors])

        # ... or, with invoke(), a warning (the default), an exception, or silence.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            docs = retriever.invoke(QUERY)
        warned = [w for w in caught if issubclass(w.category, AISearchInstanceWarning)]
        print(f"  invoke(): {len(docs)} documents and {len(warned)} warning: {warned[0].message}")
        strict = retriever.model_copy(update={"on_instance_error": "raise"})
        try:
            strict.invoke(QUERY)
        except InstanceSearchError as exc:
            print(f"  on_instance_error='raise': InstanceSearchError: {exc}")

        # 4. Every instance failing is always an error, listing each one.
        if target.server is not None:
            for name in healthy:
                target.server.set_fault(name, status=503, code=7017)
            try:
                retriever.invoke(QUERY)
            except AllInstancesFailedError as exc:
                print(f"\nall failing: {type(exc).__name__} with {len(exc.errors)} errors")
            target.server.clear_faults()
            target.server.set_fault("cafe-menu", status=503, code=7017)

        # 5. Client-side fan-out: more than 10 instances, other namespaces or accounts
        #    (SearchTarget(instance_id, namespace=..., client=...)), merged by score or RRF.
        targets = [SearchTarget(name) for name in instance_ids]
        fan = client.fan_out_search(targets, QUERY, merge="rrf", top_k=4)
        print("\nfan_out_search(merge='rrf'):")
        for chunk in fan.chunks:
            print(f"  {chunk.instance_id:<20} {chunk.score:.3f}  {chunk.item.key}")
        print("  errors:", [(e.instance_id, e.message) for e in fan.errors])

        # 6. LlamaIndex: the same semantics.
        llama = LlamaMultiRetriever(instance_ids, similarity_top_k=4, **target.connection)
        found = llama.retrieve_with_errors(QUERY)
        print("\nLlamaIndex retrieve_with_errors:")
        for hit in found.nodes:
            meta = hit.node.metadata
            print(f"  {meta['instance_id']:<20} {hit.score:.3f}  {meta['source']}")
        print("  errors:", [(e.instance_id, e.message) for e in found.errors])


if __name__ == "__main__":
    main()
