from __future__ import annotations

import pytest
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

import langchain_aisearch  # noqa: F401  (registers the content-block translator)
from aisearch import Chunk
from langchain_aisearch._mapping import (
    chunk_to_document,
    find_citations,
    message_to_api,
    sources_to_documents,
)

CHUNK = {
    "id": "c1",
    "type": "text",
    "score": 0.83,
    "text": "Espresso takes 25 to 30 seconds.",
    "item": {
        "key": "brewing/espresso.md",
        "timestamp": 1735689600,
        "metadata": {"title": "Espresso", "score": "custom", "source": "mine", "lang": "en"},
    },
    "scoring_details": {"vector_score": 0.83, "keyword_score": 2.5, "fusion_method": "rrf"},
}


def test_chunk_to_document_maps_every_canonical_key():
    chunk = Chunk.model_validate(CHUNK)
    doc = chunk_to_document(chunk, search_query="espresso time", instance_id="docs")
    assert doc.id == "c1"
    assert doc.page_content == "Espresso takes 25 to 30 seconds."
    assert doc.metadata == {
        "title": "Espresso",
        "lang": "en",
        "id": "c1",
        "score": 0.83,
        "type": "text",
        "filename": "brewing/espresso.md",
        "folder": "brewing/",
        "source": "brewing/espresso.md",
        "timestamp": 1735689600,
        "scoring_details": {"vector_score": 0.83, "keyword_score": 2.5, "fusion_method": "rrf"},
        "instance_id": "docs",
        "search_query": "espresso time",
    }


def test_canonical_keys_win_over_custom_metadata():
    doc = chunk_to_document(Chunk.model_validate(CHUNK))
    assert doc.metadata["score"] == 0.83
    assert doc.metadata["source"] == "brewing/espresso.md"
    assert doc.metadata["title"] == "Espresso"


def test_chunk_instance_id_wins_over_fallback():
    chunk = Chunk.model_validate({**CHUNK, "instance_id": "blog"})
    assert chunk_to_document(chunk, instance_id="docs").metadata["instance_id"] == "blog"


def test_mapper_does_not_mutate_the_chunk():
    chunk = Chunk.model_validate(CHUNK)
    before = chunk.model_dump()
    doc = chunk_to_document(chunk, search_query="q")
    doc.metadata["lang"] = "fr"
    assert chunk.model_dump() == before


def test_minimal_chunk_maps_with_none_values():
    doc = chunk_to_document(Chunk.model_validate({"id": "x", "score": 0.1}))
    assert doc.page_content == ""
    assert doc.metadata["scoring_details"] is None
    assert doc.metadata["timestamp"] is None
    assert doc.metadata["instance_id"] is None


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (SystemMessage("be brief"), {"role": "system", "content": "be brief"}),
        (
            SystemMessage("rules", additional_kwargs={"__openai_role__": "developer"}),
            {"role": "developer", "content": "rules"},
        ),
        (ChatMessage(role="developer", content="dev"), {"role": "developer", "content": "dev"}),
        (HumanMessage("hi", name="bob"), {"role": "user", "content": "hi"}),
        (AIMessage("hello"), {"role": "assistant", "content": "hello"}),
        (ToolMessage("42", tool_call_id="t1"), {"role": "tool", "content": "42"}),
        (
            HumanMessage(content=[{"type": "text", "text": "a"}, "b"]),
            {"role": "user", "content": "ab"},
        ),
        (
            HumanMessage(
                content=[
                    {"type": "text", "text": "what is this"},
                    {"type": "image", "url": "https://x/y.png"},
                ]
            ),
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this"},
                    {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                ],
            },
        ),
    ],
)
def test_message_roles(message, expected):
    assert message_to_api(message) == expected


def test_unknown_role_is_rejected_with_allowed_list():
    with pytest.raises(ValueError, match=r"role 'critic' is not supported \(allowed: assistant"):
        message_to_api(ChatMessage(role="critic", content="x"))


def test_unsupported_content_block_is_rejected():
    with pytest.raises(ValueError, match="'audio'"):
        message_to_api(HumanMessage(content=[{"type": "audio", "base64": "AAA"}]))


SOURCES = [
    {"id": "a", "score": 0.9, "text": "Grind fine.", "item": {"key": "grind.md"}},
    {
        "id": "b",
        "score": 0.7,
        "text": "Use 18 g.",
        "item": {"key": "https://example.com/dose"},
        "instance_id": "blog",
    },
]


def test_find_citations_spans_and_targets():
    text = "Grind fine for espresso [1]. Use 18 grams [2]. Unknown [7]."
    cites = find_citations(text, SOURCES)
    assert [c["extras"]["source_index"] for c in cites] == [1, 2]
    first, second = cites
    assert text[first["start_index"] : first["end_index"]] == "Grind fine for espresso [1]"
    assert text[second["start_index"] : second["end_index"]] == "Use 18 grams [2]"
    assert first["title"] == "grind.md"
    assert "url" not in first
    assert second["url"] == "https://example.com/dose"
    assert second["cited_text"] == "Use 18 g."
    assert second["extras"] == {
        "source_index": 2,
        "chunk_id": "b",
        "score": 0.7,
        "instance_id": "blog",
    }


@pytest.mark.parametrize(
    ("text", "spans"),
    [
        ("Grind fine [1] and use 18 grams [2].", ["Grind fine [1]", "and use 18 grams [2]"]),
        ("  \n Grind fine [1]", ["Grind fine [1]"]),
        ("Grind fine.\n\n  Use 18 grams [2]", ["Use 18 grams [2]"]),
        ("Grind fine [1] [2]", ["Grind fine [1]", "[2]"]),
        # a decimal point is not a sentence end (the demo cut "needles of 0.3 to 0.4 mm" at "0.")
        ("Rest it. Use needles of 0.3 to 0.4 mm [1]", ["Use needles of 0.3 to 0.4 mm [1]"]),
        ("Why? Dose 18.5 g!Then wait [2]", ["Dose 18.5 g!Then wait [2]"]),
    ],
)
def test_a_citation_span_starts_at_its_first_word(text, spans):
    cites = find_citations(text, SOURCES)
    assert [text[c["start_index"] : c["end_index"]] for c in cites] == spans


def test_multi_marker_cites_each_source():
    cites = find_citations("Both say so [1, 2].", SOURCES)
    assert [c["extras"]["chunk_id"] for c in cites] == ["a", "b"]
    assert cites[0]["start_index"] == 0


def test_content_blocks_carry_citations_via_translator():
    msg = AIMessage(
        "Grind fine [1].",
        response_metadata={"model_provider": "aisearch", "sources": SOURCES},
    )
    blocks = msg.content_blocks
    assert len(blocks) == 1
    assert blocks[0]["type"] == "text"
    assert blocks[0]["text"] == "Grind fine [1]."
    (citation,) = blocks[0]["annotations"]
    assert citation["type"] == "citation"
    assert citation["title"] == "grind.md"
    assert citation["end_index"] == len("Grind fine [1]")


def test_aggregated_chunks_yield_citations_single_chunks_plain_text():
    first = AIMessageChunk(
        content="", response_metadata={"model_provider": "aisearch", "sources": SOURCES}
    )
    text = AIMessageChunk(
        content="Grind fine [1].", response_metadata={"model_provider": "aisearch"}
    )
    last = AIMessageChunk(
        content="", response_metadata={"model_provider": "aisearch"}, chunk_position="last"
    )
    assert first.content_blocks == []
    assert text.content_blocks == [{"type": "text", "text": "Grind fine [1]."}]
    full = first + text + last
    assert full.response_metadata["model_provider"] == "aisearch"
    assert full.content_blocks[0]["annotations"][0]["extras"]["chunk_id"] == "a"


def test_sources_to_documents():
    msg = AIMessage("x", response_metadata={"sources": SOURCES})
    docs = sources_to_documents(msg)
    assert [d.id for d in docs] == ["a", "b"]
    assert docs[1].metadata["instance_id"] == "blog"
    assert docs[1].metadata["source"] == "https://example.com/dose"


def test_scoring_details_keep_extra_fields_and_drop_unset_ones():
    plain = Chunk.model_validate({**CHUNK, "scoring_details": {"vector_score": 0.5}})
    assert chunk_to_document(plain).metadata["scoring_details"] == {"vector_score": 0.5}
    extra = Chunk.model_validate(
        {**CHUNK, "scoring_details": {"keyword_rank": 2, "new_stage": {"score": 1}, "gone": None}}
    )
    assert chunk_to_document(extra).metadata["scoring_details"] == {
        "keyword_rank": 2,
        "new_stage": {"score": 1},
    }


def test_mapper_never_shares_the_chunks_metadata():
    # every Document gets its own metadata dict: changing one never reaches the chunk or
    # another Document mapped from it
    chunk = Chunk.model_validate(CHUNK)
    before = dict(chunk.item.metadata)
    doc = chunk_to_document(chunk, search_query="q")
    twin = chunk_to_document(chunk, search_query="q")
    assert chunk.item.metadata == before
    assert doc.metadata["search_query"] == "q"
    assert doc.metadata["title"] == "Espresso"
    assert doc.metadata["score"] == 0.83  # the canonical key won over the custom one
    doc.metadata["title"] = "changed"
    assert chunk.item.metadata == before
    assert twin.metadata["title"] == "Espresso"
