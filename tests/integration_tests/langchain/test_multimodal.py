"""Image content blocks through ChatAISearch, over real HTTP against the local server."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage

from aisearch import BadRequestError
from langchain_aisearch import ChatAISearch

PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kg"
    "AAAABJRU5ErkJggg=="
)
QUESTION = {"type": "text", "text": "What grind size suits espresso?"}
BLOCKS = [
    {"type": "image", "url": "https://example.com/grinder.png"},
    {"type": "image", "base64": PNG, "mime_type": "image/png"},
    {"type": "image_url", "image_url": {"url": "https://example.com/grinder.png"}},
]


@pytest.mark.parametrize("block", BLOCKS)
def test_image_blocks_reach_the_service(local, lc_target, block):
    chat = ChatAISearch(
        instance_id=lc_target.instance_id, retrieval_type="keyword", keyword_match_mode="or"
    )
    message = chat.invoke([HumanMessage(content=[QUESTION, block])])
    assert message.text
    assert message.response_metadata["sources"]


def test_an_image_the_embedder_cannot_take_is_a_400(local, lc_target):
    chat = ChatAISearch(instance_id=lc_target.instance_id)
    with pytest.raises(BadRequestError) as info:
        chat.invoke([HumanMessage(content=[QUESTION, BLOCKS[0]])])
    assert info.value.code == 7089
