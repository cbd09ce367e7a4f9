"""``POST /mcp`` of a public endpoint: an MCP server with one tool, ``search`` (API.md 18.3).

Built on the MCP Python SDK's low-level :class:`mcp.server.lowlevel.Server` and its
:class:`~mcp.server.streamable_http_manager.StreamableHTTPSessionManager` in stateless mode
with JSON responses (no ``initialize`` needed, nothing kept between requests). A server and a
session manager are made for each HTTP request: the tool's description and input differ per
endpoint, and the manager's task group then lives exactly as long as the request (the app needs
no lifespan, which ``LocalServer`` and test clients do not run).

The tool (local choices where API.md 18.4 says the service is silent):

* description: ``public_endpoint_params.mcp.description`` (default "Finds exactly what you're
  looking for");
* input: ``query`` (string, required), ``max_num_results`` (1-50, optional) and, on a namespace
  endpoint, ``instance_ids`` (optional; the allowlist otherwise, with the 60012 / 60013 rules of
  the REST body reported as a tool error);
* output: text content listing each chunk with its source (file name, score, instance) and
  structured content ``{"search_query": ..., "chunks": [...]}``, the chunks exactly as
  ``/search`` returns them. Errors are tool results with ``isError: true``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import mcp.types as types
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.responses import JSONResponse
from starlette.types import Message, Receive, Scope, Send

from aisearch_local import __version__
from aisearch_local._http import EarlyResponse
from aisearch_local.errors import APIError, ValidationError
from aisearch_local.models import SearchRequest
from aisearch_local.validation import parse_json

if TYPE_CHECKING:
    from aisearch_local.public import Endpoint, PublicEndpoints

__all__ = ["format_results", "input_schema", "serve_mcp"]

TOOL = "search"
MAX_RESULTS = 50


def input_schema(namespace: bool) -> dict[str, Any]:
    """The JSON Schema of the ``search`` tool's arguments."""
    props: dict[str, Any] = {
        "query": {"type": "string", "minLength": 1, "description": "What to search for."},
        "max_num_results": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_RESULTS,
            "description": "How many chunks to return at most (default: the instance's).",
        },
    }
    if namespace:
        props["instance_ids"] = {
            "type": "array",
            "items": {"type": "string"},
            "minItems": 1,
            "maxItems": 10,
            "description": "The instances to search (default: every instance this endpoint "
            "exposes).",
        }
    return {
        "type": "object",
        "properties": props,
        "required": ["query"],
        "additionalProperties": False,
    }


def format_results(query: str, chunks: list[dict[str, Any]]) -> str:
    """The readable text of a search: each chunk with its source, best first."""
    if not chunks:
        return f"No results for {query!r}."
    lines = [f"{len(chunks)} result{'s' if len(chunks) != 1 else ''} for {query!r}:"]
    sources: dict[str, None] = {}
    for n, c in enumerate(chunks, 1):
        item = c.get("item")
        key = item.get("key") if isinstance(item, dict) else None
        source = str(key or c.get("id") or "?")
        sources[source] = None
        where = f", instance {c['instance_id']}" if c.get("instance_id") else ""
        score = c.get("score")
        shown = f"{score:.3f}" if isinstance(score, (int, float)) else "?"
        lines.append(f"\n[{n}] {source} (score {shown}{where})\n{str(c.get('text', '')).strip()}")
    lines.append("\nSources: " + ", ".join(sources))
    return "\n".join(lines)


def _error(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], isError=True)


def _build(public: PublicEndpoints, ep: Endpoint) -> Server[Any, Any]:
    server: Server[Any, Any] = Server("aisearch-local", version=__version__)
    tool = types.Tool(
        name=TOOL,
        description=str(ep.params["mcp"]["description"]),
        inputSchema=input_schema(ep.is_namespace),
        annotations=types.ToolAnnotations(readOnlyHint=True, openWorldHint=False),
    )

    @server.list_tools()  # type: ignore[no-untyped-call,untyped-decorator]
    async def list_tools() -> list[types.Tool]:
        return [tool]

    @server.call_tool()  # type: ignore[untyped-decorator]
    async def call_tool(name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        if name != TOOL:
            return _error(f"unknown tool {name[:100]!r}: this server has one tool, {TOOL!r}")
        return await run_tool(public, ep, arguments)

    return server


async def run_tool(
    public: PublicEndpoints, ep: Endpoint, arguments: dict[str, Any]
) -> types.CallToolResult:
    """Run the ``search`` tool (arguments already checked against :func:`input_schema`)."""
    from aisearch_local.public import PublicError

    query = str(arguments.get("query", ""))
    options: dict[str, Any] = {}
    k = arguments.get("max_num_results")
    if isinstance(k, float) and k.is_integer():  # JSON Schema's "integer" admits 5.0
        k = int(k)
    if k is not None:
        options["retrieval"] = {"max_num_results": k}
    if ep.is_namespace and arguments.get("instance_ids") is not None:
        options["instance_ids"] = arguments["instance_ids"]
    try:
        req = SearchRequest.parse({"query": query, "ai_search_options": options or None})
        found = await public.retrieve(ep, req)
    except PublicError as exc:
        return _error(f"{exc.code}: {exc.message}")
    except EarlyResponse:  # an injected malformed-body fault
        return _error("7000: malformed response from the instance (injected fault)")
    except ValidationError as exc:
        return _error(f"7001: {exc}")
    except APIError as exc:
        return _error(f"{exc.code}: {exc.message}")
    result: dict[str, Any] = {"search_query": found.query, "chunks": found.chunks}
    if found.errors:
        result["errors"] = found.errors
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=format_results(query, found.chunks))],
        structuredContent=result,
        isError=False,
    )


async def serve_mcp(
    public: PublicEndpoints, ep: Endpoint, scope: Scope, receive: Receive, send: Send
) -> None:
    """Answer one MCP Streamable HTTP request (stateless, JSON responses) for ``ep``.

    The body is first parsed by the server's strict JSON parser: a lone surrogate, NaN or
    nesting deeper than its limit is a JSON-RPC parse error (400, -32700) here, where the SDK
    would answer 500 (a ``RecursionError``, or a surrogate it cannot serialise back).
    """
    body = await _read_body(receive)
    if body.strip():
        try:
            parse_json(body)
        except ValidationError as exc:
            await _parse_error(str(exc))(scope, receive, send)
            return
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    manager = StreamableHTTPSessionManager(
        app=_build(public, ep), stateless=True, json_response=True
    )
    async with manager.run():
        await manager.handle_request(scope, replay, send)


async def _read_body(receive: Receive) -> bytes:
    """The whole request body (the perimeter has read it already, up to its limit)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _parse_error(message: str) -> JSONResponse:
    """A JSON-RPC parse error (the SDK's code for a body that is not JSON), id null."""
    error = {"code": -32700, "message": f"Parse error: {message}"}
    return JSONResponse({"jsonrpc": "2.0", "id": None, "error": error}, status_code=400)
