"""``GET /client/v4/_local/openapi.json``: the OpenAPI 3.1 description, built from the routes."""

from __future__ import annotations

from pathlib import Path

import httpx
from openapi_spec_validator import validate
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from aisearch_local.app import create_app
from aisearch_local.openapi import openapi_document
from aisearch_local.public import PREFIX, ROUTES
from aisearch_local.testing import LocalServer

OPENAPI = "/client/v4/_local/openapi.json"


def _served(server: LocalServer) -> set[tuple[str, str]]:
    """Every (method, path) of the running app's route table, read independently."""
    assert server.app is not None
    found: set[tuple[str, str]] = set()
    for route in server.app.routes:
        if isinstance(route, Route):
            found |= {(m.lower(), route.path) for m in route.methods or () if m != "HEAD"}
        else:
            assert isinstance(route, Mount) and route.path == PREFIX, route
            found |= {("post", f"{PREFIX}/{{public_endpoint_id}}{r}") for r in ROUTES}
    return found


def test_the_document_is_served_without_a_token_and_is_valid_openapi_3_1(
    local_server: LocalServer,
):
    assert local_server.token  # the session server requires one; this route does not
    r = httpx.get(f"http://{local_server.host}:{local_server.port}{OPENAPI}", timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    doc = r.json()
    assert doc["openapi"] == "3.1.0"
    validate(doc)  # raises OpenAPIValidationError on a malformed document
    assert local_server.token not in r.text


def test_every_route_of_the_table_is_described_and_nothing_else(local_server: LocalServer):
    r = httpx.get(f"http://{local_server.host}:{local_server.port}{OPENAPI}", timeout=30)
    doc = r.json()
    described = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    served = _served(local_server)
    assert ("get", OPENAPI) in served
    assert ("post", "/_public/{public_endpoint_id}/mcp") in served
    assert described == served
    op_ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(op_ids) == len(set(op_ids))
    search = doc["paths"][
        "/client/v4/accounts/{account_id}/ai-search/instances/{instance_id}/search"
    ]
    assert [p["name"] for p in search["post"]["parameters"]] == ["account_id", "instance_id"]
    assert search["post"]["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Envelope"
    }
    upload = doc["paths"][
        "/client/v4/accounts/{account_id}/ai-search/instances/{instance_id}/items"
    ]
    assert "multipart/form-data" in upload["post"]["requestBody"]["content"]
    health = doc["paths"]["/client/v4/_local/health"]["get"]
    assert health["security"] == [] and health["summary"] == "Liveness probe (no auth)."


def test_a_route_added_to_the_table_appears_without_any_other_change(tmp_path: Path):
    async def extra(request: Request) -> Response:
        """Say hello.

        A second paragraph, kept as the description.
        """
        return Response()

    app = create_app(tmp_path)
    try:
        app.router.routes.insert(
            0, Route("/client/v4/_local/extra/{thing}", extra, methods=["PUT"])
        )
        doc = openapi_document(app)
        validate(doc)
        op = doc["paths"]["/client/v4/_local/extra/{thing}"]["put"]
        assert op["operationId"] == "extra"
        assert op["summary"] == "Say hello."
        assert "second paragraph" in op["description"]
        assert op["parameters"][0]["name"] == "thing"
        assert op["requestBody"]["content"] == {"application/json": {"schema": {"type": "object"}}}
    finally:
        app.state.service.close()
