"""LlamaIndex image and document blocks mapped to AI Search's message parts."""

from __future__ import annotations

import base64

import pytest
from llama_index.core.base.llms.types import (
    AudioBlock,
    ChatMessage,
    DocumentBlock,
    ImageBlock,
    TextBlock,
    ThinkingBlock,
)

from llamaindex_aisearch._mapping import to_aisearch_messages

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kg"
    "AAAABJRU5ErkJggg=="
)
URL = "https://example.com/grinder.png"


def test_image_blocks_become_image_url_parts(tmp_path):
    path = tmp_path / "grinder.png"
    path.write_bytes(PNG)
    inline = "data:image/png;base64," + base64.b64encode(PNG).decode()
    message = ChatMessage(
        role="user",
        blocks=[
            TextBlock(text="what is this?"),
            ImageBlock(url=URL, detail="low"),
            ImageBlock(image=PNG),
            ImageBlock(path=path),
            ImageBlock(url=inline),
        ],
    )
    assert to_aisearch_messages([message]) == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": URL, "detail": "low"}},
                {"type": "image_url", "image_url": {"url": inline}},
                {"type": "image_url", "image_url": {"url": inline}},
                {"type": "image_url", "image_url": {"url": inline}},
            ],
        }
    ]


def test_document_blocks_become_file_parts():
    message = ChatMessage(
        role="user",
        blocks=[DocumentBlock(data=b"hello", document_mimetype="text/plain", title="a.txt")],
    )
    assert to_aisearch_messages([message])[0]["content"] == [
        {
            "type": "file",
            "file": {"filename": "a.txt", "file_data": "data:text/plain;base64,aGVsbG8="},
        }
    ]


def test_text_only_messages_stay_strings():
    messages = [
        ChatMessage(role="user", content="plain"),
        ChatMessage(role="user", blocks=[TextBlock(text="a"), TextBlock(text="b")]),
        ChatMessage(role="assistant", blocks=[ThinkingBlock(content="hm"), TextBlock(text="ok")]),
    ]
    assert [m["content"] for m in to_aisearch_messages(messages)] == ["plain", "a\nb", "ok"]


@pytest.mark.parametrize(
    ("block", "needle"),
    [
        (AudioBlock(audio=b"abc", format="mp3"), "'audio' blocks are not supported by AI Search"),
        (DocumentBlock(url="https://example.com/a.pdf"), "AI Search does not fetch file URLs"),
        (
            ImageBlock(image=b"not an image"),
            "an ImageBlock with image or path data needs a mimetype",
        ),
    ],
)
def test_blocks_ai_search_cannot_take_are_refused(block, needle):
    with pytest.raises(ValueError, match=needle):
        to_aisearch_messages([ChatMessage(role="user", blocks=[block])])
