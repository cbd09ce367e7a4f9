"""Whatever keys and values a body holds, the server's answer is valid JSON whose every string
encodes as UTF-8 (a lone surrogate in a key or value is escaped in a message, never echoed raw)
and never a 5xx: on the REST search route, a public endpoint's /search and its /mcp.

Real HTTP to aisearch_local; bodies are sent as JSON text with ``\\uXXXX`` escapes, as a hostile
client would.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aisearch_local.testing import LocalServer
from tests._support import json_like, surrogate_text

keys = surrogate_text()
values = json_like(keys)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with LocalServer(data_dir=tmp_path_factory.mktemp("printable"), token="admin-token") as s:
        yield s


@pytest.fixture(scope="module")
def urls(server: LocalServer) -> dict[str, str]:
    iid = f"u-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=server.account_url, headers=server.headers, timeout=60) as admin:
        r = admin.post(
            "/ai-search/instances", json={"id": iid, "public_endpoint_params": {"enabled": True}}
        )
        assert r.status_code == 201, r.text
        eid = r.json()["result"]["public_endpoint_id"]
    root = f"http://127.0.0.1:{server.port}"
    return {
        "rest": f"{server.account_url}/ai-search/instances/{iid}/search",
        "public": f"{root}/_public/{eid}/search",
        "mcp": f"{root}/_public/{eid}/mcp",
    }


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _body(route: str, where: str, key: str, value: Any) -> dict[str, Any]:
    if route == "mcp":
        args: dict[str, Any] = {"query": "x", key: value} if where == "top" else {"query": key}
        return {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "search", "arguments": args},
        }
    if where == "top":
        return {"query": "x", key: value}
    if where == "custom_metadata":
        return {"query": "x", "ai_search_options": {"custom_metadata": {key: value}}}
    if where == "filters":
        return {"query": "x", "ai_search_options": {"retrieval": {"filters": {key: value}}}}
    return {"query": key}


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    route=st.sampled_from(["rest", "public", "mcp"]),
    where=st.sampled_from(["top", "custom_metadata", "filters", "query"]),
    key=keys,
    value=values,
)
def test_every_answer_is_valid_utf8_json_and_never_5xx(
    server: LocalServer, urls: dict[str, str], route: str, where: str, key: str, value: Any
) -> None:
    content = json.dumps(_body(route, where, key, value)).encode("ascii")  # \ud800 escapes
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    if route == "rest":
        headers.update(server.headers)
    r = httpx.post(urls[route], content=content, headers=headers, timeout=60)
    assert r.status_code < 500, r.text
    doc = json.loads(r.content.decode("utf-8"))
    for text in _strings(doc):
        text.encode("utf-8")  # no lone surrogate came back
