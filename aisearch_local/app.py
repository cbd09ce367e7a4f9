"""HTTP routes of the local AI Search server (Starlette).

Every path of API.md sections 3 to 13 under ``/client/v4/accounts/{account_id}``, with the
Cloudflare envelope ``{success, errors, messages, result}`` everywhere except chat completions
(a bare OpenAI-style object, or Server-Sent Events with ``stream: true``). Errors never leak a
traceback: validation is 400 / 7001, unknown objects 404 / 7002, unknown routes 404 / 7003,
auth 401 / 1001, 400 / 6003 and 403 / 10000, anything unexpected 500 / 7000.

This module holds the route table and the application factory. Where things live:
:mod:`aisearch_local._http` (auth, envelope, the ``endpoint`` wrapper, paging),
:mod:`aisearch_local.routes_admin` (namespaces, instances, items, jobs, faults, health),
:mod:`aisearch_local.routes_query` (search, chat, legacy). To add a route: write the handler,
decorated with ``@endpoint``, in one of the two route modules, and add its ``Route`` below.

Public endpoints (API.md section 18.2, no token) are mounted on ``/_public``
(:mod:`aisearch_local.public`): ``/_public/{public_endpoint_id}/search``,
``/chat/completions`` and ``/mcp``, ``/_public/ns-{id}/...`` for a namespace.
The legacy AutoRAG routes answer under ``/autorag/rags/{id}/...`` and, as aliases, under
``/ai-search/rags/{id}/...`` (the form the AI Search REST guide showed during the rename).

Routes that the real API does not have live under ``/client/v4/_local/``: fault injection
(``GET``/``PUT``/``DELETE /client/v4/_local/faults/{namespace}/{instance_id}``, ``GET``/``DELETE
/client/v4/_local/faults``), ``GET /client/v4/_local/health``, ``GET
/client/v4/_local/openapi.json`` (:mod:`aisearch_local.openapi`) and the bulk items route ``POST
/client/v4/_local/bulk/{ns}/{instance_id}/items`` (:mod:`aisearch_local.routes_bulk`). The
explorer (static files, :mod:`aisearch_local.routes_ui`) answers ``GET /client/v4/_local/ui/`` and
``GET /``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from aisearch_local._http import http_error, server_error
from aisearch_local.bulk import BULK_PATH
from aisearch_local.embed import Embedder
from aisearch_local.generate import Generator
from aisearch_local.guard import Perimeter
from aisearch_local.openapi import PATH as OPENAPI_PATH
from aisearch_local.openapi import openapi
from aisearch_local.public import PREFIX as PUBLIC_PREFIX
from aisearch_local.public import PublicEndpoints, PublicError
from aisearch_local.query import QueryService
from aisearch_local.routes_admin import (
    fault_delete,
    fault_get,
    fault_put,
    faults_clear,
    faults_list,
    health,
    instance_delete,
    instance_get,
    instance_purge_cache,
    instance_stats,
    instance_update,
    instances_create,
    instances_list,
    item_chunks,
    item_delete,
    item_download,
    item_get,
    item_sync,
    items_create_or_update,
    items_list,
    items_upload,
    job_get,
    job_logs,
    job_update,
    jobs_create,
    jobs_list,
    namespace_delete,
    namespace_get,
    namespace_update,
    namespaces_create,
    namespaces_list,
)
from aisearch_local.routes_bulk import items_bulk
from aisearch_local.routes_query import (
    instance_chat,
    instance_search,
    legacy_ai_search,
    legacy_search,
    namespace_chat,
    namespace_search,
)
from aisearch_local.routes_ui import UI_PATH, ui_asset, ui_index
from aisearch_local.service import LocalService

__all__ = ["create_app"]

ACCOUNT = "/client/v4/accounts/{account_id}"


def _query_routes(prefix: str) -> list[Route]:
    """Search and chat on an instance: first in the table, as the routes most requests take.

    Starlette tries the routes in order; no other route matches their paths
    (``tests/unit_tests/local/test_routes.py`` checks it), so their place changes no answer.
    """
    i = prefix + "/instances/{instance_id}"
    return [
        Route(i + "/search", instance_search, methods=["POST"]),
        Route(i + "/chat/completions", instance_chat, methods=["POST"]),
    ]


def _instance_routes(prefix: str) -> list[Route]:
    i = prefix + "/instances/{instance_id}"
    return [
        Route(prefix + "/instances", instances_list, methods=["GET"]),
        Route(prefix + "/instances", instances_create, methods=["POST"]),
        Route(i, instance_get, methods=["GET"]),
        Route(i, instance_update, methods=["PUT", "PATCH"]),
        Route(i, instance_delete, methods=["DELETE"]),
        Route(i + "/stats", instance_stats, methods=["GET"]),
        Route(i + "/items", items_list, methods=["GET"]),
        Route(i + "/items", items_upload, methods=["POST"]),
        Route(i + "/items", items_create_or_update, methods=["PUT"]),
        Route(i + "/items/{item_id}", item_get, methods=["GET"]),
        Route(i + "/items/{item_id}", item_delete, methods=["DELETE"]),
        Route(i + "/items/{item_id}", item_sync, methods=["PATCH"]),
        Route(i + "/items/{item_id}/chunks", item_chunks, methods=["GET"]),
        Route(i + "/items/{item_id}/download", item_download, methods=["GET"]),
        Route(i + "/jobs", jobs_list, methods=["GET"]),
        Route(i + "/jobs", jobs_create, methods=["POST"]),
        Route(i + "/jobs/{job_id}", job_get, methods=["GET"]),
        Route(i + "/jobs/{job_id}", job_update, methods=["PATCH"]),
        Route(i + "/jobs/{job_id}/logs", job_logs, methods=["GET"]),
    ]


def _routes() -> list[Route]:
    base = ACCOUNT + "/ai-search"
    ns = base + "/namespaces/{ns}"
    return [
        *_query_routes(base),
        *_query_routes(ns),
        Route("/", ui_index, methods=["GET"]),
        Route(UI_PATH + "/", ui_index, methods=["GET"]),
        Route(UI_PATH + "/app.js", ui_asset, methods=["GET"]),
        Route(UI_PATH + "/style.css", ui_asset, methods=["GET"]),
        Route("/client/v4/_local/health", health, methods=["GET"]),
        Route(OPENAPI_PATH, openapi, methods=["GET"]),
        Route("/client/v4/_local/faults", faults_list, methods=["GET"]),
        Route("/client/v4/_local/faults", faults_clear, methods=["DELETE"]),
        Route("/client/v4/_local/faults/{ns}/{instance_id}", fault_get, methods=["GET"]),
        Route("/client/v4/_local/faults/{ns}/{instance_id}", fault_put, methods=["PUT"]),
        Route("/client/v4/_local/faults/{ns}/{instance_id}", fault_delete, methods=["DELETE"]),
        Route(BULK_PATH, items_bulk, methods=["POST"]),
        Route(base + "/namespaces", namespaces_list, methods=["GET"]),
        Route(base + "/namespaces", namespaces_create, methods=["POST"]),
        Route(ns, namespace_get, methods=["GET"]),
        Route(ns, namespace_update, methods=["PUT"]),
        Route(ns, namespace_delete, methods=["DELETE"]),
        Route(ns + "/search", namespace_search, methods=["POST"]),
        Route(ns + "/chat/completions", namespace_chat, methods=["POST"]),
        *_instance_routes(base),
        *_instance_routes(ns),
        Route(ns + "/instances/{instance_id}/purge_cache", instance_purge_cache, methods=["POST"]),
        *(
            Route(ACCOUNT + prefix + "/rags/{rag_id}/" + name, handler, methods=["POST"])
            # /ai-search/rags/...: the seed 004 form of the legacy routes (API.md 3.5), the same
            # handlers, bodies and answers as /autorag/rags/...
            for prefix in ("/autorag", "/ai-search")
            for name, handler in (("search", legacy_search), ("ai-search", legacy_ai_search))
        ),
    ]


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own errors, answered in the envelope of the part of the server they hit.

    Under ``/_public/``, a path the mount cannot match (a ``%0A`` in it: the mount's pattern
    does not span lines) is the public endpoints' 404 / 60006, not the REST API's 404 / 7003.
    """
    if request.url.path.startswith(PUBLIC_PREFIX + "/"):
        return PublicError(404, 60006, "endpoint not found").response()
    return await http_error(request, exc)


def create_app(
    data_dir: Path | str | None,
    *,
    token: str | None = None,
    embedder: str | Embedder | None = None,
    generator: str | Generator | None = None,
    service: LocalService | None = None,
    bind_host: str | None = None,
    allowed_hosts: Sequence[str] = (),
    allowed_origins: Sequence[str] = (),
    source_roots: Sequence[str | Path] | None = None,
) -> Starlette:
    """Build the Starlette application of the local AI Search server.

    Args:
        data_dir: Directory of the SQLite database (created when missing); None keeps it in
            memory (nothing is written to disk).
        token: Credential required as ``Authorization: Bearer <token>`` (or as ``X-Auth-Key``
            with any ``X-Auth-Email``). None accepts every request.
        embedder: Embedder spec or object (default ``"hashing"``).
        generator: Generator spec or object (default ``"extractive"``).
        service: An existing :class:`LocalService` to serve (overrides the three above).
        bind_host: The address the server listens on, accepted in ``Host`` besides the
            loopback names (see :class:`aisearch_local.guard.Perimeter`).
        allowed_hosts: More host names accepted in ``Host`` (``*``: any).
        allowed_origins: More browser origins allowed to send state-changing requests.
        source_roots: Folders under which instances created over HTTP may index a ``source``
            folder; None allows any folder (library and test use; ``aisearch-local serve``
            always passes a list).

    Returns:
        The application; ``app.state.service`` is the :class:`LocalService`,
        ``app.state.public`` the :class:`~aisearch_local.public.PublicEndpoints` (its
        ``limiter.clock`` is the rate limit's clock).
    """
    svc = service or LocalService(data_dir, embedder=embedder, generator=generator)
    queries = QueryService(svc)
    public = PublicEndpoints(svc, queries)

    app = Starlette(
        routes=[*_routes(), Mount(PUBLIC_PREFIX, app=public)],
        exception_handlers={HTTPException: _http_error, Exception: server_error},
    )
    # Cloudflare's API never redirects; Starlette's default would answer ``.../items/%2e%2e/``
    # with a 307 to ``.../items/..`` (before auth and the id checks), and a client that follows
    # redirects would then act on the parent resource.
    app.router.redirect_slashes = False
    app.state.service = svc
    app.state.queries = queries
    app.state.public = public
    app.state.token = token
    if source_roots is not None:
        svc.source_roots = tuple(str(Path(r).resolve()) for r in source_roots)
    app.add_middleware(
        Perimeter,
        bind_host=bind_host,
        allowed_hosts=allowed_hosts,
        allowed_origins=allowed_origins,
    )
    return app
