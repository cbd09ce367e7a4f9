"""The MCP endpoint of the public endpoints (``POST /_public/<id>/mcp``) over real HTTP.

Driven by the official MCP client (``mcp``'s streamable HTTP client), langchain-mcp-adapters
(``MultiServerMCPClient``) and llama-index-tools-mcp (``BasicMCPClient`` + ``McpToolSpec``),
each given nothing but the URL, as they would be given ``https://<id>.search.ai.cloudflare.com/mcp``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from aisearch_local.testing import LocalServer

DOCS = (
    ("espresso.md", "Espresso is brewed by forcing hot water through finely ground coffee."),
    ("tea.md", "Green tea is steeped at 80 degrees for two minutes."),
)
ACCEPT = {"accept": "application/json, text/event-stream"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with LocalServer(data_dir=tmp_path_factory.mktemp("mcp"), token="admin-token") as s:
        yield s


@pytest.fixture(scope="module")
def admin(server: LocalServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.account_url, headers=server.headers, timeout=60) as http:
        yield http


def _instance(admin: httpx.Client, params: dict[str, Any], namespace: str = "default") -> str:
    """An instance holding DOCS; returns its id."""
    iid = f"m-{uuid.uuid4().hex[:10]}"
    base = "/ai-search" if namespace == "default" else f"/ai-search/namespaces/{namespace}"
    r = admin.post(f"{base}/instances", json={"id": iid, "public_endpoint_params": params})
    assert r.status_code == 201, r.text
    for key, text in DOCS:
        r = admin.post(
            f"{base}/instances/{iid}/items",
            files={"file": (key, text.encode())},
            data={"wait_for_completion": "true"},
        )
        assert r.status_code == 200, r.text
    return iid


@pytest.fixture(scope="module")
def mcp_url(server: LocalServer, admin: httpx.Client) -> str:
    iid = _instance(admin, {"enabled": True, "mcp": {"description": "Search the coffee notes"}})
    eid = admin.get(f"/ai-search/instances/{iid}").json()["result"]["public_endpoint_id"]
    return f"http://127.0.0.1:{server.port}/_public/{eid}/mcp"


@pytest.fixture(scope="module")
def ns_mcp_url(server: LocalServer, admin: httpx.Client) -> tuple[str, list[str]]:
    ns = f"mn-{uuid.uuid4().hex[:8]}"
    assert admin.post("/ai-search/namespaces", json={"name": ns}).status_code == 200
    ids = [_instance(admin, {"enabled": False}, ns) for _ in range(3)]
    body = {"public_endpoint_params": {"enabled": True, "instances_allowed": ids[:2]}}
    eid = admin.put(f"/ai-search/namespaces/{ns}", json=body).json()["result"]["public_endpoint_id"]
    return f"http://127.0.0.1:{server.port}/_public/ns-{eid}/mcp", ids


# -- the official client ----------------------------------------------------------------------


async def test_official_client_lists_and_calls_the_search_tool(mcp_url):
    async with (
        streamable_http_client(mcp_url) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        tools = (await session.list_tools()).tools
        assert [t.name for t in tools] == ["search"]
        assert tools[0].description == "Search the coffee notes"
        assert tools[0].inputSchema["required"] == ["query"]
        assert set(tools[0].inputSchema["properties"]) == {"query", "max_num_results"}
        result = await session.call_tool("search", {"query": "espresso", "max_num_results": 1})
        assert result.isError is False
        text = result.content[0].text  # type: ignore[union-attr]
        assert text.startswith("1 result for 'espresso':")
        assert "[1] espresso.md (score " in text
        assert text.endswith("Sources: espresso.md")
        chunks = result.structuredContent["chunks"]  # type: ignore[index]
        assert [c["item"]["key"] for c in chunks] == ["espresso.md"]
        assert "hot water" in chunks[0]["text"]


async def test_tool_errors_are_results_with_is_error(mcp_url):
    async with (
        streamable_http_client(mcp_url) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        for args in ({"query": ""}, {}, {"query": "x", "max_num_results": 51}, {"query": 3}):
            result = await session.call_tool("search", args)
            assert result.isError is True, args
        result = await session.call_tool("find", {"query": "x"})
        assert result.isError is True
        assert "one tool, 'search'" in result.content[0].text  # type: ignore[union-attr]


def test_stateless_tools_call_without_initialize(mcp_url):
    # API.md 18.3: the docs call tools/call directly, without the initialize handshake
    call = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {"name": "search", "arguments": {"query": "green tea"}},
    }
    r = httpx.post(mcp_url, json=call, headers=ACCEPT)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert "mcp-session-id" not in r.headers  # stateless: no session
    result = r.json()["result"]
    assert result["structuredContent"]["chunks"][0]["item"]["key"] == "tea.md"


async def test_namespace_tool_takes_instance_ids_within_the_allowlist(ns_mcp_url):
    url, ids = ns_mcp_url
    async with (
        streamable_http_client(url) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        (tool,) = (await session.list_tools()).tools
        assert tool.description == "Finds exactly what you're looking for"
        assert "instance_ids" in tool.inputSchema["properties"]
        result = await session.call_tool("search", {"query": "espresso"})
        found = {c["instance_id"] for c in result.structuredContent["chunks"]}  # type: ignore[index]
        assert found == set(ids[:2])
        assert f", instance {ids[0]})" in result.content[0].text  # type: ignore[union-attr]
        one = await session.call_tool("search", {"query": "espresso", "instance_ids": [ids[1]]})
        assert {c["instance_id"] for c in one.structuredContent["chunks"]} == {ids[1]}  # type: ignore[index]
        for outside in ([ids[2]], ["ghost"]):
            refused = await session.call_tool("search", {"query": "x", "instance_ids": outside})
            assert refused.isError is True
            assert refused.content[0].text == "60013: ai_search_not_found"  # type: ignore[union-attr]


# -- the framework adapters -------------------------------------------------------------------


async def test_langchain_mcp_adapters_load_it_as_a_tool(mcp_url):
    from langchain_mcp_adapters.client import MultiServerMCPClient

    client = MultiServerMCPClient({"docs": {"transport": "streamable_http", "url": mcp_url}})
    (tool,) = await client.get_tools()
    assert tool.name == "search"
    assert tool.description == "Search the coffee notes"
    message = await tool.ainvoke(
        {"type": "tool_call", "id": "call-1", "name": "search", "args": {"query": "espresso"}}
    )
    text = message.content if isinstance(message.content, str) else message.content[0]["text"]
    assert "espresso.md" in text
    chunks = message.artifact["structured_content"]["chunks"]
    assert chunks[0]["item"]["key"] == "espresso.md"


async def test_llama_index_tools_mcp_loads_it_as_a_tool(mcp_url):
    from llama_index.tools.mcp import BasicMCPClient, McpToolSpec

    client = BasicMCPClient(mcp_url)
    try:
        tools = await McpToolSpec(client=client).to_tool_list_async()
        assert [t.metadata.name for t in tools] == ["search"]
        assert tools[0].metadata.description == "Search the coffee notes"
        output = await tools[0].acall(query="espresso")
        assert "espresso.md" in str(output.content)
        assert output.is_error is False
    finally:  # the client makes an httpx client of its own and leaves it open
        await client.http_client.aclose()


# -- HTTP-level rules -------------------------------------------------------------------------


def test_disabled_mcp_is_60007_before_any_jsonrpc(server, admin):
    iid = _instance(admin, {"enabled": True, "mcp": {"disabled": True}})
    eid = admin.get(f"/ai-search/instances/{iid}").json()["result"]["public_endpoint_id"]
    r = httpx.post(
        f"http://127.0.0.1:{server.port}/_public/{eid}/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers=ACCEPT,
    )
    assert r.status_code == 401
    assert r.json() == {
        "success": False,
        "errors": [{"code": 60007, "message": "mcp endpoint disabled"}],
        "result": {},
    }


async def test_injected_faults_reach_the_tool_as_errors(server, admin):
    iid = _instance(admin, {"enabled": True})
    eid = admin.get(f"/ai-search/instances/{iid}").json()["result"]["public_endpoint_id"]
    url = f"http://127.0.0.1:{server.port}/_public/{eid}/mcp"
    async with (
        streamable_http_client(url) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        server.set_fault(iid, status=503, times=1)
        failed = await session.call_tool("search", {"query": "espresso"})
        assert failed.isError is True
        assert failed.content[0].text == "7017: injected fault: HTTP 503"  # type: ignore[union-attr]
        server.set_fault(iid, malformed_body=True, times=1)
        failed = await session.call_tool("search", {"query": "espresso"})
        assert failed.isError is True
        assert failed.content[0].text.startswith("7000: malformed response")  # type: ignore[union-attr]
        again = await session.call_tool("search", {"query": "espresso"})
        assert again.isError is False


# -- hostile bodies ---------------------------------------------------------------------------


def _call(query_json: bytes) -> bytes:
    return (
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search",'
        b'"arguments":{"query":' + query_json + b"}}}"
    )


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (_call(b'"\\ud800 espresso"'), "lone UTF-16 surrogate"),  # was 500 (serialising it)
        (_call(b"[" * 5000 + b"]" * 5000), "nests deeper"),  # was 500 (RecursionError)
        (_call(b"NaN"), "NaN"),
        (b'{"jsonrpc":"2.0","id":1,"method":"tools/list","\\udfff":1}', "surrogate"),
    ],
    ids=["surrogate", "deep", "nan", "surrogate-key"],
)
def test_a_hostile_mcp_body_is_a_jsonrpc_parse_error_not_a_500(mcp_url, body, words):
    r = httpx.post(
        mcp_url, content=body, headers={**ACCEPT, "content-type": "application/json"}, timeout=60
    )
    assert r.status_code == 400, r.text
    doc = r.json()  # valid JSON and UTF-8
    assert doc["jsonrpc"] == "2.0" and doc["id"] is None
    assert doc["error"]["code"] == -32700
    assert words in doc["error"]["message"]


async def test_an_integral_float_is_an_integer_as_json_schema_says(mcp_url):
    """JSON Schema's "integer" admits 5.0; the tool takes it as 5 (and refuses 1.5)."""
    async with (
        streamable_http_client(mcp_url) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        ok = await session.call_tool("search", {"query": "espresso", "max_num_results": 1.0})
        assert ok.isError is False, ok.content
        assert len(ok.structuredContent["chunks"]) == 1  # type: ignore[index]
        bad = await session.call_tool("search", {"query": "espresso", "max_num_results": 1.5})
        assert bad.isError is True
