"""Hypothesis fuzzing of the public endpoints over real HTTP (bounded, seeded).

Hostile paths under ``/_public`` (ids, dot segments, encoded separators, custom domains), every
method, hostile bodies (the server fuzzer's), hostile ``instance_ids`` and ``Origin`` headers.
No answer may be a 5xx; every error outside ``/mcp`` must be the public envelope (on ``/mcp`` the
MCP SDK answers JSON-RPC errors, which only have to be below 500).
"""

from __future__ import annotations

import http.client
import json
import uuid
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aisearch_local.testing import LocalServer
from tests.integration_tests.server._fuzz import (
    HOSTILE_BODIES,
    HOSTILE_SEGMENTS,
    FuzzRequest,
    _search_body,
    encode,
    json_values,
    send,
)

pytestmark = pytest.mark.timeout(300)

ROUTES = ["/search", "/chat/completions", "/mcp", "", "/", "/x", "/search/", "/mcp/x", "/%2e%2e"]
METHODS = ["POST"] * 6 + ["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]
ORIGINS = [None, None, None, "https://docs.example.com", "https://evil.example", "null", "x"]
MCP_BODIES = [
    {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
    {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "search"}},
    {
        "jsonrpc": "2.0",
        "id": 3,
        "method": "tools/call",
        "params": {"name": "search", "arguments": {"query": "\ud800", "instance_ids": [3]}},
    },
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
    {"jsonrpc": "1.0", "id": None, "method": 3},
    [{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}],
]


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalServer, list[str]]]:
    """A server with an instance endpoint, a namespace endpoint and a custom domain."""
    with LocalServer(data_dir=tmp_path_factory.mktemp("pubfuzz"), token="t") as server:
        with httpx.Client(base_url=server.account_url, headers=server.headers) as admin:
            params = {
                "enabled": True,
                "rate_limit": {"requests": 1_000_000},
                "authorized_hosts": ["https://docs.example.com"],
                "custom_domains": ["docs.example.com"],
            }
            r = admin.post(
                "/ai-search/instances", json={"id": "fuzz", "public_endpoint_params": params}
            )
            eid = r.json()["result"]["public_endpoint_id"]
            admin.post(
                "/ai-search/instances/fuzz/items",
                files={"file": ("a.md", b"Espresso grind is fine.")},
                data={"wait_for_completion": "true"},
            )
            admin.post("/ai-search/namespaces", json={"name": "fuzz-ns"})
            admin.post("/ai-search/namespaces/fuzz-ns/instances", json={"id": "fuzz"})
            ns = admin.put(
                "/ai-search/namespaces/fuzz-ns",
                json={
                    "public_endpoint_params": {
                        "enabled": True,
                        "rate_limit": {"requests": 1_000_000},
                        "instances_allowed": ["fuzz"],
                    }
                },
            )
            nid = ns.json()["result"]["public_endpoint_id"]
        yield server, [eid, f"ns-{nid}", "docs.example.com", uuid.uuid4().hex]


@st.composite
def public_requests(draw: st.DrawFn, segments: list[str]) -> FuzzRequest:
    seg = draw(st.sampled_from(segments) | st.sampled_from(HOSTILE_SEGMENTS))
    route = draw(st.sampled_from(ROUTES))
    method = draw(st.sampled_from(METHODS))
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    origin = draw(st.sampled_from(ORIGINS))
    if origin is not None:
        headers["origin"] = origin
    if method == "OPTIONS" and draw(st.booleans()):
        headers["access-control-request-method"] = "POST"
    body = b""
    if method in ("POST", "PUT", "PATCH"):
        kind = draw(st.integers(0, 5))
        if kind == 0:
            body = draw(st.sampled_from(HOSTILE_BODIES))
        elif kind == 1:
            body = encode(draw(json_values)).encode("utf-8", "surrogatepass")
        elif route == "/mcp":
            body = encode(draw(st.sampled_from(MCP_BODIES))).encode("utf-8", "surrogatepass")
        else:
            value = draw(_search_body(chat=route == "/chat/completions", namespace=True))
            body = encode(value).encode("utf-8", "surrogatepass")
    return FuzzRequest(method=method, path=f"/_public/{seg}{route}", body=body, headers=headers)


def _problem(req: FuzzRequest, status: int, body: bytes) -> str | None:
    if status >= 500:
        return f"HTTP {status}: {body[:300]!r}"
    if status < 400 or req.path.endswith("/mcp") or req.method == "HEAD":
        return None
    try:
        doc = json.loads(body)
    except ValueError:
        return f"HTTP {status} error body is not JSON: {body[:300]!r}"
    ok = (
        isinstance(doc, dict)
        and set(doc) == {"success", "errors", "result"}
        and doc["success"] is False
        and doc["result"] == {}
        and isinstance(doc["errors"][0].get("code"), int)
        and isinstance(doc["errors"][0].get("message"), str)
    )
    return None if ok else f"HTTP {status} is not the public envelope: {body[:300]!r}"


def test_fuzz_public_routes_no_5xx(target):
    server, segments = target
    conn: list[http.client.HTTPConnection] = []
    statuses: list[int] = []

    def one(req: FuzzRequest) -> tuple[int, dict[str, str], bytes]:
        for _ in range(2):
            if not conn:
                conn.append(http.client.HTTPConnection(server.host, server.port, timeout=60))
            try:
                return send(conn[0], req, {})
            except (ConnectionError, http.client.HTTPException):
                conn.pop().close()
        raise AssertionError(f"the server dropped the connection twice on {req.describe()}")

    @settings(
        max_examples=300,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(req=public_requests(segments))
    def run(req: FuzzRequest) -> None:
        status, _headers, body = one(req)
        statuses.append(status)
        problem = _problem(req, status, body)
        assert problem is None, f"{req.describe()}\n-> {problem}"

    try:
        run()
    finally:
        for c in conn:
            c.close()
    assert len(statuses) >= 250
    assert {200, 400, 404, 405} <= set(statuses)
