"""The late-2026 query path through the core client, over real HTTP against aisearch_local."""

from __future__ import annotations

import pytest

from aisearch import (
    BadRequestError,
    ChatMessage,
    ImageURLPart,
    InvalidRequestError,
    SearchOptions,
    TextPart,
)

pytestmark = pytest.mark.integration

QUERY = "How do I dial in espresso grind size?"
MESSAGES = [{"role": "user", "content": QUERY}]


def test_custom_metadata_on_search_namespace_search_and_chat(client, docs_instance):
    opts = SearchOptions(custom_metadata={"team": "blue", "run": 3})
    assert client.search(docs_instance, QUERY, options=opts).chunks
    assert client.namespace_search([docs_instance], QUERY, options=opts).chunks
    assert client.chat_completions(docs_instance, MESSAGES, options=opts).content


async def test_custom_metadata_on_async_search(async_client, docs_instance):
    result = await async_client.search(
        docs_instance, QUERY, options={"custom_metadata": {"ok": True}}
    )
    assert result.chunks


def test_reserved_custom_metadata_is_refused_by_both_sides(client, docs_instance):
    with pytest.raises(InvalidRequestError, match=r"custom_metadata: key 'task' is reserved"):
        client.search(docs_instance, QUERY, options={"custom_metadata": {"task": "x"}})
    # past the client's check (the escape hatch), the server refuses it with the envelope
    with pytest.raises(BadRequestError) as info:
        client.search(docs_instance, QUERY, extra_options={"custom_metadata": {"cf.x": 1}})
    assert info.value.status_code == 400
    assert "ai_search_options.custom_metadata: key 'cf.x' is reserved" in str(info.value)


# --------------------------------------------------------------------------- multimodal parts

IMAGE = ImageURLPart(image_url={"url": "https://example.com/grinder.png"})
KEYWORD = {"retrieval": {"retrieval_type": "keyword", "keyword_match_mode": "or"}}


def test_multimodal_search_over_http(client, docs_instance):
    message = ChatMessage(role="user", content=[TextPart(text="espresso grind size"), IMAGE])
    result = client.search(docs_instance, messages=[message], options=KEYWORD)
    assert (result.query_kind, result.search_query) == ("multimodal", "espresso grind size")
    assert result.chunks
    assert client.search(docs_instance, QUERY).query_kind == "text"


async def test_image_search_needs_an_image_embedder(async_client, docs_instance):
    with pytest.raises(BadRequestError) as info:
        await async_client.search(docs_instance, messages=[{"role": "user", "content": [IMAGE]}])
    assert info.value.status_code == 400
    assert info.value.code == 7089
    assert "take text only" in str(info.value)
