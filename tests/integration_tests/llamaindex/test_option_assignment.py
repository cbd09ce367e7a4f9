"""Search options assigned after construction reach aisearch_local (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import pytest

from aisearch import InvalidRequestError
from llamaindex_aisearch import (
    AISearchConnection,
    AISearchMultiRetriever,
    AISearchQueryEngine,
    AISearchRetriever,
)

QUERY = "espresso extraction time and grind size"


@pytest.mark.parametrize("kind", ["single", "namespace", "fan_out"])
def test_match_threshold_assignment_filters_every_result(
    conn: AISearchConnection, docs_instance: str, kind: str
) -> None:
    if kind == "single":
        retriever: AISearchRetriever | AISearchMultiRetriever = AISearchRetriever(
            docs_instance, similarity_top_k=5, connection=conn
        )
    else:
        retriever = AISearchMultiRetriever(
            [docs_instance], similarity_top_k=5, mode=kind, connection=conn
        )
    assert retriever.retrieve(QUERY)  # results without a threshold
    retriever.match_threshold = 1.0  # no chunk scores a perfect 1.0
    assert retriever.retrieve(QUERY) == []
    retriever.match_threshold = None
    assert retriever.retrieve(QUERY)


def test_rejected_assignment_keeps_searching_with_the_old_value(
    conn: AISearchConnection, docs_instance: str
) -> None:
    retriever = AISearchRetriever(
        docs_instance, similarity_top_k=5, match_threshold=1.0, connection=conn
    )
    with pytest.raises(InvalidRequestError, match="match_threshold"):
        retriever.match_threshold = 2.0
    assert retriever.retrieve(QUERY) == []


def test_retrieval_type_and_context_options_assignment_reach_the_server(
    conn: AISearchConnection, docs_instance: str
) -> None:
    retriever = AISearchRetriever(docs_instance, similarity_top_k=3, connection=conn)
    retriever.retrieval_type = "keyword"
    # keyword search keeps the instance's "and": every word in one chunk
    nodes = retriever.retrieve("espresso grind time")
    assert nodes
    for node in nodes:  # keyword only: no vector score
        details = node.node.metadata["scoring_details"] or {}
        assert details.get("vector_score") is None
        assert details.get("keyword_score") is not None
    retriever.similarity_top_k = 1
    assert len(retriever.retrieve("espresso grind time")) == 1


def test_query_engine_match_threshold_assignment(
    conn: AISearchConnection, docs_instance: str
) -> None:
    engine = AISearchQueryEngine(docs_instance, similarity_top_k=3, connection=conn)
    assert engine.query(QUERY).source_nodes
    engine.match_threshold = 1.0
    assert engine.query(QUERY).source_nodes == []
