"""Typed temperature, max_tokens and stop on the chat methods: checked, then sent in the body."""

from __future__ import annotations

import math

import httpx
import pytest

from aisearch import InvalidRequestError
from tests.unit_tests.core.conftest import body_of, stream_content
from tests.unit_tests.core.payloads import CHAT_RESPONSE, SSE, STREAM_NEW

MESSAGES = [{"role": "user", "content": "Hi"}]
CHATS = [
    ("chat_completions", "docs", False),
    ("stream_chat_completions", "docs", True),
    ("namespace_chat_completions", ["docs", "wiki"], False),
    ("stream_namespace_chat_completions", ["docs", "wiki"], True),
]


def handler(mode: str):
    def answer(request: httpx.Request) -> httpx.Response:
        if body_of(request).get("stream"):
            return httpx.Response(
                200, headers=SSE, content=stream_content(mode, [STREAM_NEW.encode()])
            )
        return httpx.Response(200, json=CHAT_RESPONSE)

    return answer


def run(h, name, target, streaming, **kwargs):
    if streaming:
        return h.collect(name, target, MESSAGES, **kwargs)
    return h.call(name, target, MESSAGES, **kwargs)


@pytest.mark.parametrize(("name", "target", "streaming"), CHATS)
@pytest.mark.parametrize(
    "kwargs",
    [
        {"temperature": 0.2, "max_tokens": 64, "stop": "END"},
        {"temperature": 0, "max_tokens": 1, "stop": ("a", "b", "c", "d")},
        {"temperature": 5.0, "stop": []},
        {"max_tokens": 2**31 - 1},
    ],
)
def test_the_settings_go_into_the_body(harness, mode, name, target, streaming, kwargs):
    h = harness(handler(mode))
    run(h, name, target, streaming, **kwargs)
    body = body_of(h.last)
    expected = {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}
    assert {k: body[k] for k in kwargs} == expected
    assert body["messages"] == MESSAGES


@pytest.mark.parametrize(("name", "target", "streaming"), CHATS)
def test_unset_settings_are_not_sent_and_extra_body_still_wins(
    harness, mode, name, target, streaming
):
    h = harness(handler(mode))
    run(h, name, target, streaming)
    assert not {"temperature", "max_tokens", "stop"} & set(body_of(h.last))
    run(h, name, target, streaming, temperature=1.0, extra_body={"temperature": 0.5})
    assert body_of(h.last)["temperature"] == 0.5


@pytest.mark.parametrize(("name", "target", "streaming"), CHATS)
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": 5.01}, "temperature"),
        ({"temperature": math.nan}, "temperature"),
        ({"temperature": math.inf}, "temperature"),
        ({"temperature": True}, "temperature"),
        ({"temperature": "0.5"}, "temperature"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 2**31}, "max_tokens"),
        ({"max_tokens": 1.5}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"stop": ["a", 1]}, "stop"),
        ({"stop": 3}, "stop"),
    ],
)
def test_bad_settings_fail_before_the_network(
    harness, mode, name, target, streaming, kwargs, field
):
    h = harness(handler(mode))
    with pytest.raises(InvalidRequestError, match=rf"^{field}: must be"):
        if streaming:
            getattr(h.client, name)(target, MESSAGES, **kwargs)  # checked before iteration
        else:
            run(h, name, target, streaming, **kwargs)
    assert h.requests == []
