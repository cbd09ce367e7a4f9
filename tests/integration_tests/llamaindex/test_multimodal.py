"""ImageBlock through AISearchLLM and the chat engine, over real HTTP against the local server."""

from __future__ import annotations

import base64

import pytest
from llama_index.core.base.llms.types import ChatMessage, ImageBlock, TextBlock

from aisearch import BadRequestError
from llamaindex_aisearch import AISearchConnection, AISearchLLM

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kg"
    "AAAABJRU5ErkJggg=="
)


def _message() -> ChatMessage:
    return ChatMessage(
        role="user",
        blocks=[
            TextBlock(text="How should I store roasted beans?"),
            ImageBlock(image=PNG),
            ImageBlock(url="https://example.com/beans.png"),
        ],
    )


async def test_image_blocks_reach_the_service(conn: AISearchConnection, docs_instance: str) -> None:
    llm = AISearchLLM(
        docs_instance, connection=conn, retrieval_type="keyword", keyword_match_mode="or"
    )
    response = llm.chat([_message()])
    assert response.message.content
    assert response.additional_kwargs["source_nodes"]
    response = await llm.achat([_message()])
    assert response.message.content


def test_an_image_the_embedder_cannot_take_is_a_400(
    conn: AISearchConnection, docs_instance: str
) -> None:
    llm = AISearchLLM(docs_instance, connection=conn)
    with pytest.raises(BadRequestError) as info:
        llm.chat([_message()])
    assert info.value.code == 7089
