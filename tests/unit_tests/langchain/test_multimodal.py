"""LangChain image and file content blocks mapped to AI Search's message parts."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from langchain_aisearch._mapping import message_to_api

URL = "https://example.com/grinder.png"


@pytest.mark.parametrize(
    ("block", "part"),
    [
        # v1 standard blocks
        ({"type": "image", "url": URL}, {"type": "image_url", "image_url": {"url": URL}}),
        (
            {"type": "image", "base64": "AAAA", "mime_type": "image/jpeg"},
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}},
        ),
        (
            {"type": "image", "url": URL, "extras": {"detail": "low"}},
            {"type": "image_url", "image_url": {"url": URL, "detail": "low"}},
        ),
        # v0 standard blocks
        (
            {"type": "image", "source_type": "url", "url": URL},
            {"type": "image_url", "image_url": {"url": URL}},
        ),
        (
            {"type": "image", "source_type": "base64", "data": "AAAA", "mime_type": "image/png"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        ),
        # OpenAI-style parts
        (
            {"type": "image_url", "image_url": {"url": URL, "detail": "high"}},
            {"type": "image_url", "image_url": {"url": URL, "detail": "high"}},
        ),
        ({"type": "image_url", "image_url": URL}, {"type": "image_url", "image_url": {"url": URL}}),
        # files
        (
            {
                "type": "file",
                "base64": "aGk=",
                "mime_type": "text/plain",
                "extras": {"filename": "a.txt"},
            },
            {
                "type": "file",
                "file": {"filename": "a.txt", "file_data": "data:text/plain;base64,aGk="},
            },
        ),
        ({"type": "file", "file_id": "f1"}, {"type": "file", "file": {"file_id": "f1"}}),
        (
            {"type": "file", "source_type": "id", "id": "f2"},
            {"type": "file", "file": {"file_id": "f2"}},
        ),
        (
            {"type": "file", "file": {"filename": "a.pdf", "file_id": "f3"}},
            {"type": "file", "file": {"filename": "a.pdf", "file_id": "f3"}},
        ),
    ],
)
def test_image_and_file_blocks_become_parts(block, part):
    message = HumanMessage(content=[{"type": "text", "text": "what is this?"}, block])
    assert message_to_api(message) == {
        "role": "user",
        "content": [{"type": "text", "text": "what is this?"}, part],
    }


@pytest.mark.parametrize(
    ("block", "needle"),
    [
        ({"type": "image", "file_id": "f1"}, "AI Search takes no image file ids"),
        ({"type": "file", "url": "https://x/a.pdf"}, "AI Search does not fetch file URLs"),
        ({"type": "audio", "base64": "AAA"}, "block of type 'audio' is not supported"),
        ({"type": "video", "url": URL}, "block of type 'video' is not supported"),
    ],
)
def test_blocks_ai_search_cannot_take_are_refused(block, needle):
    with pytest.raises(ValueError, match=needle):
        message_to_api(HumanMessage(content=[block]))


def test_model_side_blocks_are_not_sent_back():
    message = AIMessage(
        content=[
            {"type": "reasoning", "reasoning": "hm"},
            {"type": "text", "text": "Grind fine."},
            {"type": "server_tool_call", "id": "1", "name": "x", "args": {}},
        ]
    )
    assert message_to_api(message) == {"role": "assistant", "content": "Grind fine."}
