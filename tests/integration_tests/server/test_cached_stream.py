"""A similarity-cache hit streams its answer word by word, as a fresh answer does."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.integration_tests.server._helpers import upload

pytestmark = pytest.mark.integration

PROMPT = [{"role": "user", "content": "how long should cold brew steep before drinking"}]


def _stream(http: httpx.Client, path: str) -> tuple[httpx.Headers, list[str]]:
    """POST a streamed chat; return the headers and the text of each delta event."""
    body = {"messages": PROMPT, "stream": True}
    with http.stream("POST", path, json=body) as r:
        assert r.status_code == 200, r.read()
        lines = [line for line in r.iter_lines() if line.startswith("data: ")]
    deltas = []
    for line in lines:
        if line == "data: [DONE]":
            continue
        data: Any = json.loads(line.removeprefix("data: "))
        if isinstance(data, dict) and data.get("object") == "chat.completion.chunk":
            content = data["choices"][0]["delta"].get("content")
            if content:
                deltas.append(content)
    return r.headers, deltas


def test_a_cache_hit_streams_token_by_token_with_the_same_text(server_http, make_instance):
    iid = make_instance()
    upload(
        server_http,
        iid,
        "cold-brew.md",
        "Cold brew steeps coarse grounds in cold water for 12 to 24 hours. Strain it twice, "
        "then dilute the concentrate one to one with water or milk before drinking.",
    )
    path = f"/ai-search/instances/{iid}/chat/completions"
    first_headers, first = _stream(server_http, path)
    second_headers, second = _stream(server_http, path)
    assert first_headers["cf-aig-cache-status"] == "MISS"
    assert second_headers["cf-aig-cache-status"] == "HIT"
    assert len(first) > 3
    assert second == first  # the same pieces: word by word, not one big delta
    assert "".join(second) == "".join(first)
