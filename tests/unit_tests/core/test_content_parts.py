"""Multimodal message parts: typed, sent as the API spells them, refused before the network."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aisearch import (
    ChatMessage,
    FileData,
    FilePart,
    ImageURL,
    ImageURLPart,
    InvalidRequestError,
    OtherPart,
    TextPart,
)
from aisearch._params import coerce_messages
from tests.unit_tests.core.conftest import body_of
from tests.unit_tests.core.payloads import CHAT_RESPONSE, SEARCH_RESPONSE

PNG = "data:image/png;base64,iVBORw0KGgo="
URL = "https://example.com/grinder.png"


def _ok(request: httpx.Request) -> httpx.Response:
    payload = SEARCH_RESPONSE if request.url.path.endswith("/search") else CHAT_RESPONSE
    return httpx.Response(200, json=payload)


def test_parts_are_typed_and_sent_with_their_type(harness):
    message = ChatMessage(
        role="user",
        content=[
            TextPart(text="What is this?"),
            ImageURLPart(image_url=ImageURL(url=URL)),
            {"type": "image_url", "image_url": {"url": PNG, "detail": "low"}},
            FilePart(file=FileData(filename="a.txt", file_data="data:text/plain;base64,aGk=")),
        ],
    )
    assert isinstance(message.content, list)
    assert [type(p) for p in message.content] == [TextPart, ImageURLPart, ImageURLPart, FilePart]
    h = harness(_ok)
    h.call("search", "docs", messages=[message])
    assert body_of(h.last)["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": URL}},
                {"type": "image_url", "image_url": {"url": PNG, "detail": "low"}},
                {
                    "type": "file",
                    "file": {"filename": "a.txt", "file_data": "data:text/plain;base64,aGk="},
                },
            ],
        }
    ]
    h.call(
        "chat_completions",
        "docs",
        [{"role": "user", "content": [{"type": "file", "file": {"file_id": "f1"}}]}],
    )
    assert body_of(h.last)["messages"][0]["content"] == [
        {"type": "file", "file": {"file_id": "f1"}}
    ]


BAD_PARTS = [
    (
        {"type": "image_url", "image_url": URL},
        "messages[0].content[0].image_url: input should be a valid dictionary or instance of "
        "ImageURL (got 'https://example.com/grinder.png')",
    ),
    ("bare", "messages[0].content[0]: must be a {type, ...} part object (got str)"),
    (
        {"type": "audio", "audio": {}},
        "messages[0].content[0].type: must be one of 'text', 'image_url' or 'file' (got 'audio')",
    ),
    (
        {"type": 3},
        "messages[0].content[0].type: must be one of 'text', 'image_url' or 'file' (got 'int')",
    ),
    ({"type": "text", "text": 5}, "messages[0].content[0].text: must be a string (got 5)"),
    ({"type": "text"}, "messages[0].content[0].text: field required"),
    ({"type": "image_url"}, "messages[0].content[0].image_url: field required"),
    (
        {"type": "image_url", "image_url": {"url": 5}},
        "messages[0].content[0].image_url.url: must be a string (got 5)",
    ),
    (
        {"type": "image_url", "image_url": {"url": URL, "detail": "max"}},
        "messages[0].content[0].image_url.detail: must be one of 'auto', 'low' or 'high' (got "
        "'max')",
    ),
    (
        {"type": "image_url", "image_url": {"url": "ftp://user:secret@host/a.png"}},
        "messages[0].content[0].image_url.url: must be an http(s) URL or a "
        "data:image/<type>;base64,... URL (got scheme 'ftp')",
    ),
    ({"type": "image_url", "image_url": {"url": "grinder.png"}}, "(got scheme '')"),
    (
        {"type": "image_url", "image_url": {"url": "data:text/plain;base64,aGk="}},
        "messages[0].content[0].image_url.url: must be an image data URL (got 'text/plain')",
    ),
    (
        {"type": "image_url", "image_url": {"url": "data:image/png,raw"}},
        "messages[0].content[0].image_url.url: must be a base64 data URL "
        "(data:image/<type>;base64,<data>)",
    ),
    (
        {"type": "file", "file": {}},
        "messages[0].content[0].file: must carry file_data (a base64 data URL) or file_id",
    ),
    (
        {"type": "file", "file": {"file_data": "aGk="}},
        "messages[0].content[0].file.file_data: must be a base64 data URL "
        "(data:<mime>;base64,<data>)",
    ),
    (
        {
            "type": "file",
            "file": {"file_data": "data:application/pdf;base64," + "A" * (14 * 2**20)},
        },
        "messages[0].content[0].file.file_data: a file may carry at most 10 MiB decoded (got "
        "10.5 MiB)",
    ),
]


@pytest.mark.parametrize(("part", "message"), BAD_PARTS)
def test_bad_parts_are_refused_before_the_network(harness, part, message):
    h = harness(_ok)
    messages = [{"role": "user", "content": [part]}]
    with pytest.raises(InvalidRequestError) as searched:
        h.call("search", "docs", messages=messages)
    with pytest.raises(InvalidRequestError) as chatted:
        h.call("chat_completions", "docs", messages)
    for info in (searched, chatted):
        assert message in str(info.value)
        assert "secret" not in str(info.value)
    assert h.requests == []


def test_content_that_is_no_string_nor_list_is_named(harness):
    h = harness(_ok)
    with pytest.raises(InvalidRequestError) as info:
        h.call("search", "docs", messages=[{"role": "user", "content": 5}])
    assert str(info.value) == (
        "messages[0].content: must be a string, a list of parts or null (got int)"
    )
    assert h.requests == []


def test_answers_with_unknown_parts_still_parse(harness):
    payload = {
        "choices": [
            {
                "message": {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": "a"},
                        {"type": "refusal", "refusal": "no"},
                        {"type": "output_text", "text": "b"},
                    ],
                }
            }
        ],
        "chunks": [],
    }
    h = harness(lambda r: httpx.Response(200, json=payload))
    completion = h.call("chat_completions", "docs", [{"role": "user", "content": "x"}])
    parts = completion.choices[0].message.content
    assert [type(p) for p in parts] == [TextPart, OtherPart, OtherPart]
    assert parts[1].type == "refusal"
    assert completion.content == "ab"


def test_an_image_only_search_is_sent_as_is(harness):
    h = harness(_ok)
    result = h.call(
        "search",
        "docs",
        messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": URL}}]}],
    )
    assert result.query_kind == "text"  # what the canned answer says
    assert body_of(h.last) == {
        "messages": [
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": URL}}]}
        ]
    }


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_PART = st.one_of(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["text", "image_url", "file", "x"])},
        optional={
            "text": _JSON,
            "image_url": _JSON
            | st.fixed_dictionaries(
                {"url": _JSON | st.sampled_from([URL, PNG, "data:", "ftp://a"])}
            ),
            "file": _JSON,
        },
    ),
    _JSON,
)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(content=st.lists(_PART, max_size=3) | _JSON)
def test_any_content_is_accepted_or_refused_with_invalid_request_error(content):
    try:
        out = coerce_messages([{"role": "user", "content": content}])
    except InvalidRequestError as exc:
        assert str(exc).startswith("messages[0]"), str(exc)
    else:
        assert out[0]["role"] == "user"
