"""The OpenAPI 3.1 description of the local server, built from its route table.

``GET /client/v4/_local/openapi.json`` (no token: the document holds no secret) answers
:func:`openapi_document` of the running application. Every operation comes from a ``Route`` of
:func:`aisearch_local.app.create_app` (its methods, its path template and its parameters, its
handler's name and docstring) and from the public endpoints' routes
(:data:`aisearch_local.public.ROUTES` under ``/_public/{public_endpoint_id}``), so that a route
added to the server appears here with no other change. The bodies of the Cloudflare envelope
are pydantic models (:class:`Envelope`, :class:`ErrorEnvelope`), rendered with
``model_json_schema``.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from aisearch_local import __version__
from aisearch_local.public import PREFIX as PUBLIC_PREFIX
from aisearch_local.public import ROUTES as PUBLIC_ROUTES

__all__ = ["PATH", "Envelope", "ErrorEnvelope", "openapi", "openapi_document", "operations"]

PATH = "/client/v4/_local/openapi.json"
_REF = "#/components/schemas/{model}"
_PARAM_RE = re.compile(r"{([^}:]+)(?::[^}]*)?}")
# the explorer's static files (aisearch_local.routes_ui): HTML, JavaScript, CSS
_UI = {"ui_index", "ui_asset"}
# routes that answer without the token
_NO_AUTH = {"health", "openapi", *_UI}
_UPLOAD = "items_upload"
_BULK = "items_bulk"
_BULK_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["items"],
    "additionalProperties": False,
    "properties": {
        "items": {
            "type": "array",
            "minItems": 1,
            "maxItems": 1000,
            "items": {
                "type": "object",
                "required": ["key"],
                "additionalProperties": False,
                "properties": {
                    "key": {"type": "string", "minLength": 1, "maxLength": 128},
                    "text": {"type": "string", "description": "the document as text"},
                    "data": {
                        "type": "string",
                        "contentEncoding": "base64",
                        "description": "the document's bytes (instead of text)",
                    },
                    "metadata": {"type": "object"},
                },
            },
        }
    },
}
# bare OpenAI-style JSON, or Server-Sent Events
_STREAMING = ("/chat/completions", "/mcp")


class ErrorDetail(BaseModel):
    """One entry of ``errors`` (or ``messages``)."""

    model_config = ConfigDict(extra="allow")
    code: int
    message: str


class Envelope(BaseModel):
    """The Cloudflare envelope of every answer but chat completions."""

    model_config = ConfigDict(extra="allow")
    success: bool
    errors: list[ErrorDetail]
    messages: list[ErrorDetail]
    result: Any = None
    result_info: dict[str, Any] | None = None


class ErrorEnvelope(BaseModel):
    """An error answer: ``success`` false and at least one error."""

    model_config = ConfigDict(extra="allow")
    success: bool = False
    errors: list[ErrorDetail]
    messages: list[ErrorDetail] = []
    result: None = None


def operations(app: Starlette) -> list[tuple[str, str, str, str]]:
    """Every ``(method, path, name, doc)`` the application serves, in route-table order.

    ``HEAD`` (which Starlette adds to every ``GET``) is left out; the public endpoints'
    routes are expanded under their mount.
    """
    found: list[tuple[str, str, str, str]] = []
    for route in app.routes:
        if isinstance(route, Route):
            doc = (route.endpoint.__doc__ or "").strip()
            for method in sorted(route.methods or ()):
                if method != "HEAD":
                    found.append((method, route.path, route.name, doc))
        elif isinstance(route, Mount) and route.path == PUBLIC_PREFIX:
            for sub in PUBLIC_ROUTES:
                found.append(
                    (
                        "POST",
                        PUBLIC_PREFIX + "/{public_endpoint_id}" + sub,
                        "public_" + sub.strip("/").replace("/", "_"),
                        f"Public endpoint (no token): {sub} of an instance, or of a namespace "
                        "with the id ns-<id> (API.md 18.2).",
                    )
                )
    return found


def _schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in (Envelope, ErrorEnvelope):
        schema = model.model_json_schema(ref_template=_REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


def _json(ref: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": _REF.format(model=ref)}}}


def _operation(method: str, path: str, name: str, doc: str, op_id: str) -> dict[str, Any]:
    summary = doc.splitlines()[0] if doc else name.replace("_", " ")
    op: dict[str, Any] = {"operationId": op_id, "summary": summary}
    if doc != summary:
        op["description"] = doc
    op["tags"] = [
        "public"
        if path.startswith(PUBLIC_PREFIX)
        else "local"
        if "/_local/" in path or name in _UI
        else "legacy"
        if "/rags/" in path
        else "ai-search"
    ]
    params = _PARAM_RE.findall(path)
    if params:
        op["parameters"] = [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
            for p in params
        ]
    if method in ("POST", "PUT", "PATCH") and name != "openapi":
        if name == _UPLOAD:
            content: dict[str, Any] = {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "metadata": {"type": "string", "description": "a JSON object"},
                            "wait_for_completion": {"type": "string"},
                        },
                    }
                }
            }
        elif name == _BULK:
            content = {"application/json": {"schema": _BULK_BODY}}
        else:
            content = {"application/json": {"schema": {"type": "object"}}}
        op["requestBody"] = {"required": name != "item_sync", "content": content}
    ok: dict[str, Any] = {"description": "Success"}
    if path.endswith(_STREAMING):
        ok["content"] = {
            "application/json": {"schema": {"type": "object"}},
            "text/event-stream": {"schema": {"type": "string"}},
        }
    elif name == "openapi":
        ok["content"] = {"application/json": {"schema": {"type": "object"}}}
    elif name in _UI:
        kinds = ("text/html",) if name == "ui_index" else ("text/javascript", "text/css")
        ok["content"] = {kind: {"schema": {"type": "string"}} for kind in kinds}
    elif name == "item_download":
        ok["content"] = {"application/octet-stream": {"schema": {"type": "string"}}}
    else:
        ok["content"] = _json("Envelope")
    op["responses"] = {
        "200": ok,
        "default": {"description": "Error", "content": _json("ErrorEnvelope")},
    }
    if name in _NO_AUTH or path.startswith(PUBLIC_PREFIX):
        op["security"] = []
    return op


def openapi_document(app: Starlette) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``app`` (see the module docstring)."""
    paths: dict[str, dict[str, Any]] = {}
    used: set[str] = set()
    for method, path, name, doc in operations(app):
        op_id = name
        if op_id in used:
            slug = re.sub(r"[^A-Za-z0-9]+", "_", path.split("/ai-search", 1)[-1]).strip("_")
            op_id = f"{name}__{method.lower()}_{slug}"
        used.add(op_id)
        paths.setdefault(path, {})[method.lower()] = _operation(method, path, name, doc, op_id)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "aisearch-local",
            "version": __version__,
            "description": (
                "The local Cloudflare AI Search server of aisearch-py (docs/local-server.md). "
                "Routes under /client/v4/_local/ are local only; /_public/ serves the public "
                "endpoints without a token."
            ),
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "authKey": {"type": "apiKey", "in": "header", "name": "X-Auth-Key"},
            },
        },
        # a token is only required when the server was started with one
        "security": [{"bearer": []}, {"authKey": []}, {}],
    }


async def openapi(request: Request) -> Response:
    """The OpenAPI 3.1 description of this server (no auth)."""
    app: Starlette = request.app
    doc = getattr(app.state, "openapi", None)
    if doc is None:
        doc = app.state.openapi = openapi_document(app)
    return JSONResponse(doc)
