"""Pure mapping: AI Search chunks -> LlamaIndex nodes, messages -> AI Search messages."""

from __future__ import annotations

import pytest
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.schema import MetadataMode

from aisearch import Chunk
from llamaindex_aisearch._mapping import (
    CANONICAL_KEYS,
    chunk_to_node,
    chunks_to_nodes,
    to_aisearch_messages,
)

CHUNK = {
    "id": "chunk-1",
    "type": "text",
    "score": 0.82,
    "text": "Grind fine for espresso.",
    "item": {
        "key": "brewing/espresso.md",
        "timestamp": 1735689600,
        "metadata": {"author": "Lena", "score": "user value", "rating": 4.5},
    },
    "scoring_details": {"vector_score": 0.7, "keyword_score": 2.1, "fusion_method": "rrf"},
}


def test_node_carries_id_text_score_and_canonical_metadata() -> None:
    nws = chunk_to_node(
        Chunk.model_validate(CHUNK), search_query="espresso grind", instance_id="docs"
    )
    node = nws.node
    assert node.node_id == "chunk-1"
    assert node.get_content() == "Grind fine for espresso."
    assert nws.score == pytest.approx(0.82)
    meta = node.metadata
    assert list(meta)[:2] == ["author", "score"]  # item metadata first ...
    assert set(CANONICAL_KEYS) <= set(meta)
    assert meta["score"] == pytest.approx(0.82)  # ... canonical keys win
    assert meta["author"] == "Lena"
    assert meta["rating"] == 4.5
    assert meta["filename"] == meta["source"] == "brewing/espresso.md"
    assert meta["timestamp"] == 1735689600
    assert meta["scoring_details"] == {
        "vector_score": 0.7,
        "keyword_score": 2.1,
        "fusion_method": "rrf",
    }
    assert meta["instance_id"] == "docs"
    assert meta["search_query"] == "espresso grind"
    assert meta["type"] == "text"
    assert meta["id"] == "chunk-1"


def test_long_fields_are_hidden_from_llm_and_embedder() -> None:
    node = chunk_to_node(Chunk.model_validate(CHUNK), search_query="espresso grind").node
    for mode in (MetadataMode.LLM, MetadataMode.EMBED):
        content = node.get_content(metadata_mode=mode)
        assert "scoring_details" not in content
        assert "search_query" not in content
        assert "vector_score" not in content
        assert "filename: brewing/espresso.md" in content
        assert "Grind fine for espresso." in content
    assert "scoring_details" in node.get_content(metadata_mode=MetadataMode.ALL)


def test_chunk_instance_id_wins_over_fallback() -> None:
    chunk = Chunk.model_validate({**CHUNK, "instance_id": "blog"})
    assert chunk_to_node(chunk, instance_id="docs").node.metadata["instance_id"] == "blog"


def test_minimal_chunk_maps_with_none_values() -> None:
    chunk = Chunk.model_validate({"id": "c", "score": 0.1, "item": {"key": "a.txt"}})
    node = chunk_to_node(chunk).node
    assert node.get_content() == ""
    assert node.metadata["scoring_details"] is None
    assert node.metadata["timestamp"] is None
    assert node.metadata["instance_id"] is None
    assert node.metadata["search_query"] is None


def test_mapping_does_not_mutate_the_chunk() -> None:
    chunk = Chunk.model_validate(CHUNK)
    before = chunk.model_dump()
    chunk_to_node(chunk, search_query="q", instance_id="docs")
    assert chunk.model_dump() == before


def test_chunks_to_nodes_keeps_order() -> None:
    chunks = [Chunk.model_validate({**CHUNK, "id": f"c{i}", "score": 1 - i / 10}) for i in range(3)]
    assert [n.node.node_id for n in chunks_to_nodes(chunks)] == ["c0", "c1", "c2"]


def test_messages_map_roles_and_text() -> None:
    messages = [
        ChatMessage(role=MessageRole.SYSTEM, content="be brief"),
        ChatMessage(role=MessageRole.USER, content="hi"),
        ChatMessage(role=MessageRole.CHATBOT, content="hello"),
        ChatMessage(role=MessageRole.MODEL, content="again"),
        ChatMessage(role=MessageRole.FUNCTION, content="42"),
        ChatMessage(role=MessageRole.DEVELOPER, content="dev"),
        ChatMessage(role=MessageRole.ASSISTANT, content=None),
    ]
    assert to_aisearch_messages(messages) == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "assistant", "content": "again"},
        {"role": "tool", "content": "42"},
        {"role": "developer", "content": "dev"},
        {"role": "assistant", "content": ""},
    ]
