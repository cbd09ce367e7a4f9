"""Public endpoints (API.md section 18.2): search, chat and MCP without an API token.

The real service serves an endpoint on its own host, ``https://<id>.search.ai.cloudflare.com``
(``ns-<id>`` for a namespace). A local server cannot choose hosts, so it serves the same routes
under a path prefix: ``/_public/<id>/search``, ``/_public/ns-<id>/chat/completions``,
``/_public/<id>/mcp``, and ``/_public/<custom-domain>/...`` for a custom domain. A client's
public base URL is therefore ``http://127.0.0.1:PORT/_public/<id>``.

:class:`PublicEndpoints` is the ASGI app mounted on ``/_public``. For each request, in order:

1. the endpoint: 404 / 60002 (no id in the path), 60003 (no endpoint has that id),
   60004 (not enabled), 60018 (the default "host" while ``default_domain_enabled`` is false);
2. CORS from ``authorized_hosts`` (:func:`origin_allowed`): a browser request (``Origin``) from
   another origin is refused with 403 / 10000 and a preflight is answered 204 with the CORS
   headers; allowed answers carry ``Access-Control-Allow-Origin``;
3. the route: 404 / 60006 (instance) or 60014 (namespace); the method: ``/mcp`` only takes
   POST (405 / 60016), ``/search`` and ``/chat/completions`` neither (405 / 60010, a local
   choice); a disabled route 401 / 60007 (mcp), 60008 (search), 60009 (chat completions);
4. the rate limit (:mod:`aisearch_local.ratelimit`): 429 / 60005 with ``Retry-After``;
5. the body: 400 / 60015 unless a JSON object; for a namespace, ``ai_search_options.
   instance_ids`` (optional: the whole ``instances_allowed``) 400 / 60012 when malformed and
   404 / 60013 (one byte-identical answer) when outside the allowlist, unknown, or when the
   allowlist is empty;
6. the REST query path (:class:`~aisearch_local.query.QueryService`, the REST routes' shaping):
   ``/search`` enveloped, ``/chat/completions`` bare or SSE, ``/mcp`` by
   :mod:`aisearch_local.mcp_server`.

The server's ``--token`` does not apply here. Errors are ``{"success": false, "errors":
[{"code", "message"}], "result": {}}``; anything unexpected is 500 / 60100 (logged).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from aisearch_local._http import EarlyResponse, envelope
from aisearch_local.errors import APIError, ValidationError, bad_request, json_type
from aisearch_local.jsonsafe import SafeJSONResponse
from aisearch_local.models import ChatRequest, SearchRequest
from aisearch_local.public_params import ENDPOINT_ID_RE, FIELD, effective_params
from aisearch_local.query import QueryService, Retrieval
from aisearch_local.ratelimit import RateLimiter
from aisearch_local.records import InstanceRecord
from aisearch_local.routes_query import _chat, _fault, _search_result
from aisearch_local.service import LocalService
from aisearch_local.validation import parse_json

__all__ = [
    "PREFIX",
    "Endpoint",
    "PublicEndpoints",
    "PublicError",
    "enabled_endpoints",
    "origin_allowed",
]

logger = logging.getLogger("aisearch_local.app")

PREFIX = "/_public"
ROUTES = ("/search", "/chat/completions", "/mcp")
_DISABLED = {
    "/mcp": ("mcp", 60007, "mcp endpoint disabled"),
    "/search": ("search_endpoint", 60008, "search endpoint disabled"),
    "/chat/completions": ("chat_completions_endpoint", 60009, "chat completions endpoint disabled"),
}
_NOT_OBJECT = "request body must be a JSON object"
_ALLOW_HEADERS = (
    "content-type, accept, authorization, cf-access-client-id, cf-access-client-secret, "
    "mcp-protocol-version, mcp-session-id, last-event-id"
)
_EXPOSE_HEADERS = "retry-after, cf-aig-cache-status, mcp-session-id, mcp-protocol-version"
_INLINE_PARSE_BYTES = 256 * 1024
_DOMAIN_RE = re.compile(r"^[a-z0-9.-]{3,253}$")


class PublicError(Exception):
    """An error of a public endpoint, answered as ``{"success": false, ..., "result": {}}``."""

    def __init__(
        self, status: int, code: int, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def response(self) -> Response:
        """The error envelope of the public endpoints."""
        body = {
            "success": False,
            "errors": [{"code": self.code, "message": self.message}],
            "result": {},
        }
        return SafeJSONResponse(body, status_code=self.status, headers=self.headers)


def _not_found_in_namespace() -> PublicError:
    # one answer, byte for byte, for an unknown instance, one outside the allowlist and an
    # empty allowlist: a caller cannot tell which instances a namespace holds
    return PublicError(404, 60013, "ai_search_not_found")


@dataclass(frozen=True)
class Endpoint:
    """A resolved public endpoint.

    Attributes:
        endpoint_id: Its ``public_endpoint_id``.
        namespace: The namespace (of the instance, or the namespace itself).
        params: The effective ``public_endpoint_params`` (every default filled in).
        instance: The instance, or None for a namespace endpoint.
    """

    endpoint_id: str
    namespace: str
    params: dict[str, Any]
    instance: InstanceRecord | None = None

    @property
    def is_namespace(self) -> bool:
        """Whether this is a namespace endpoint."""
        return self.instance is None


def origin_allowed(origin: str, hosts: list[str]) -> bool:
    """Whether a browser ``Origin`` may call an endpoint whose authorized hosts are ``hosts``.

    An entry is ``*`` (any origin), an origin (``https://example.com:8443``, compared exactly,
    default ports filled in), a host name (``example.com``: that host, any scheme and port) or
    a wildcard host (``*.example.com``: its subdomains).
    """
    if "*" in hosts:
        return True
    try:
        page = urlsplit(origin.strip().lower())
        host = (page.hostname or "").rstrip(".")
        port = page.port or (443 if page.scheme == "https" else 80)
    except ValueError:
        return False
    if page.scheme not in ("http", "https") or not host:
        return False  # "null" (sandboxed frames, file: pages) and other schemes
    for entry in hosts:
        if "://" in entry:
            try:
                want = urlsplit(entry)
                want_port = want.port or (443 if want.scheme == "https" else 80)
            except ValueError:
                continue
            if (want.scheme, want.hostname, want_port) == (page.scheme, host, port):
                return True
        elif entry.startswith("*."):
            if host.endswith(entry[1:]):
                return True
        elif host == entry:
            return True
    return False


def enabled_endpoints(svc: LocalService) -> list[tuple[str, str]]:
    """``(what, path)`` of every enabled public endpoint, instances first, then namespaces.

    ``what`` is ``namespace/instance`` or ``namespace NAME``; ``path`` the endpoint's base path
    (``/_public/<id>``, ``/_public/ns-<id>``) on the default "host", or on its custom domain
    while ``default_domain_enabled`` is false.
    """
    found: list[tuple[str, str]] = []

    def add(what: str, eid: object, params: dict[str, Any], prefix: str) -> None:
        if not params["enabled"] or not isinstance(eid, str):
            return
        domains: list[str] = params["custom_domains"]
        if params["default_domain_enabled"] or not domains:
            found.append((what, f"{PREFIX}/{prefix}{eid}"))
        else:
            found.append((what, f"{PREFIX}/{domains[0]}"))

    for inst in svc.store.list_instances():
        params = effective_params(inst.config.get(FIELD), namespace=False)
        add(f"{inst.namespace}/{inst.id}", inst.config.get("public_endpoint_id"), params, "")
    for ns in svc.namespaces():
        params = effective_params(ns.get(FIELD), namespace=True)
        add(f"namespace {ns['name']}", ns.get("public_endpoint_id"), params, "ns-")
    return found


@dataclass(frozen=True)
class _Endpoints:
    """The endpoints by ``public_endpoint_id`` and by custom domain.

    A domain goes to the first endpoint naming it: instances in creation order, then
    namespaces. Shared by the requests until the next commit
    (:meth:`~aisearch_local.store.Store.derived`): never change one.
    """

    instances: dict[str, Endpoint]
    namespaces: dict[str, Endpoint]
    domains: dict[str, Endpoint]

    @classmethod
    def read(cls, svc: LocalService) -> _Endpoints:
        instances: dict[str, Endpoint] = {}
        namespaces: dict[str, Endpoint] = {}
        domains: dict[str, Endpoint] = {}
        for inst in svc.store.list_instances():
            eid = inst.config.get("public_endpoint_id")
            if isinstance(eid, str):
                params = effective_params(inst.config.get(FIELD), namespace=False)
                ep = instances.setdefault(eid, Endpoint(eid, inst.namespace, params, inst))
                for domain in params["custom_domains"]:
                    domains.setdefault(domain, ep)
        for ns in svc.namespaces():
            eid = ns.get("public_endpoint_id")
            if isinstance(eid, str):
                params = effective_params(ns.get(FIELD), namespace=True)
                ep = namespaces.setdefault(eid, Endpoint(eid, str(ns["name"]), params))
                for domain in params["custom_domains"]:
                    domains.setdefault(domain, ep)
        return cls(instances, namespaces, domains)


class PublicEndpoints:
    """The ASGI app of ``/_public/...`` (see the module docstring).

    Args:
        svc: The service (instances, namespaces and their configuration).
        queries: The query service the REST routes use.
        clock: The rate limiter's clock (seconds; ``time.monotonic`` by default).

    Attributes:
        limiter: The :class:`~aisearch_local.ratelimit.RateLimiter`, counting in the service's
            state (:attr:`LocalService.state <aisearch_local.service.LocalService.state>`);
            set ``limiter.clock`` to move time in tests.
    """

    def __init__(
        self,
        svc: LocalService,
        queries: QueryService,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.svc = svc
        self.queries = queries
        self.limiter = RateLimiter(clock, svc.state)

    # -- ASGI -----------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one request under ``/_public``."""
        if scope["type"] != "http":  # a websocket: nothing is served on it
            await send({"type": "websocket.close", "code": 1008})
            return
        cors: dict[str, str] = {}

        async def send_cors(message: Message) -> None:
            if message["type"] == "http.response.start" and cors:
                raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in cors.items()]
                message = {**message, "headers": [*message.get("headers", []), *raw]}
            await send(message)

        try:
            response = await self._answer(scope, receive, send_cors, cors)
        except PublicError as exc:
            response = exc.response()
        except Exception:
            logger.exception("unexpected error on %s %s", scope.get("method"), scope.get("path"))
            response = PublicError(500, 60100, "internal error").response()
        if response is not None:
            await response(scope, receive, send_cors)

    async def _answer(
        self, scope: Scope, receive: Receive, send: Send, cors: dict[str, str]
    ) -> Response | None:
        method = str(scope.get("method", "GET")).upper()
        ep, route, via_default = self._resolve(str(scope.get("path", "")))
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if via_default and not ep.params["default_domain_enabled"]:
            raise PublicError(404, 60018, "default domain disabled")
        hosts = self._authorized_hosts(ep)
        if origin is not None:
            if not origin_allowed(origin, hosts):
                raise PublicError(
                    403,
                    10000,
                    f"Origin {origin[:200]!r} is not one of this public endpoint's "
                    "authorized_hosts",
                )
            cors["access-control-allow-origin"] = "*" if "*" in hosts else origin
            if "*" not in hosts:
                cors["vary"] = "Origin"
            cors["access-control-expose-headers"] = _EXPOSE_HEADERS
            if method == "OPTIONS" and "access-control-request-method" in headers:
                cors["access-control-allow-methods"] = "POST, OPTIONS"
                cors["access-control-allow-headers"] = _ALLOW_HEADERS
                cors["access-control-max-age"] = "600"
                return Response(status_code=204)
        elif headers.get("sec-fetch-site", "").strip().lower() in ("cross-site", "same-site"):
            raise PublicError(
                403, 10000, "a cross-site browser request without Origin is not accepted"
            )
        if route not in ROUTES:
            if ep.is_namespace:
                raise PublicError(404, 60014, "path not supported for namespace-kind hash")
            raise PublicError(404, 60006, "endpoint not found")
        if method != "POST":
            if route == "/mcp":
                raise PublicError(
                    405,
                    60016,
                    "method not allowed; this MCP endpoint only accepts POST",
                    {"allow": "POST"},
                )
            raise PublicError(405, 60010, "method not allowed", {"allow": "POST"})
        section, code, message = _DISABLED[route]
        if ep.params[section]["disabled"]:
            raise PublicError(401, code, message)
        limit = ep.params["rate_limit"]
        wait = self.limiter.hit(
            ("ns" if ep.is_namespace else "instance", ep.endpoint_id),
            limit["requests"],
            limit["period_ms"],
            limit["technique"],
        )
        if wait is not None:
            raise PublicError(
                429, 60005, "rate limited", {"retry-after": str(max(1, math.ceil(round(wait, 3))))}
            )
        request = Request(scope, receive)
        try:
            if route == "/mcp":
                from aisearch_local.mcp_server import serve_mcp

                await serve_mcp(self, ep, scope, receive, send)
                return None
            body = await self._body(request)
            if route == "/search":
                return await self._search(ep, body)
            return await self._chat(ep, body)
        except EarlyResponse as early:
            return early.response
        except ValidationError as exc:
            raise PublicError(400, 7001, str(exc)) from None
        except APIError as exc:
            raise PublicError(exc.status, exc.code, exc.message, exc.headers) from None

    # -- the endpoint ---------------------------------------------------------------------------

    def _resolve(self, path: str) -> tuple[Endpoint, str, bool]:
        """The endpoint, the route under it and whether the default "host" (the id) named it."""
        rest = path[len(PREFIX) :] if path.startswith(PREFIX) else path
        seg, _, sub = rest.lstrip("/").partition("/")
        if not seg:
            raise PublicError(404, 60002, "hash not found on url")
        route = "/" + sub
        seg = seg.lower()
        found: Endpoint | None = None
        via_default = True
        if "." in seg:
            via_default = False
            found = self._by_domain(seg) if _DOMAIN_RE.fullmatch(seg) else None
        elif seg.startswith("ns-"):
            found = self._by_namespace_id(seg[3:])
        else:
            found = self._by_instance_id(seg)
        if found is None:
            raise PublicError(404, 60003, "config not found")
        if not found.params["enabled"]:
            raise PublicError(404, 60004, "ai search not enabled")
        return found, route, via_default

    def _by_instance_id(self, eid: str) -> Endpoint | None:
        if not ENDPOINT_ID_RE.fullmatch(eid):
            return None
        return self._endpoints().instances.get(eid)

    def _by_namespace_id(self, eid: str) -> Endpoint | None:
        if not ENDPOINT_ID_RE.fullmatch(eid):
            return None
        return self._endpoints().namespaces.get(eid)

    def _by_domain(self, domain: str) -> Endpoint | None:
        return self._endpoints().domains.get(domain.rstrip("."))

    def _endpoints(self) -> _Endpoints:
        """Every endpoint by id and by custom domain, read once until the next commit."""
        return self.svc.store.derived("public-endpoints", lambda: _Endpoints.read(self.svc))

    @staticmethod
    def _authorized_hosts(ep: Endpoint) -> list[str]:
        """``authorized_hosts``, or the default: the site of a website instance, else ``*``."""
        hosts: list[str] = ep.params["authorized_hosts"]
        if hosts:
            return hosts
        inst = ep.instance
        if inst is not None and inst.config.get("type") == "web-crawler":
            try:
                site = urlsplit(str(inst.config.get("source") or "")).hostname
            except ValueError:
                site = None
            return [site.rstrip(".")] if site else []
        return ["*"]

    # -- bodies and queries ---------------------------------------------------------------------

    @staticmethod
    async def _body(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if not raw.strip():
            raise PublicError(400, 60015, _NOT_OBJECT)
        try:
            if len(raw) > _INLINE_PARSE_BYTES:
                value = await run_in_threadpool(parse_json, raw)
            else:
                value = parse_json(raw)
        except ValidationError as exc:
            if exc.field != "request body":  # a value inside the object: the field's error
                raise
            raise PublicError(400, 60015, f"{_NOT_OBJECT} ({exc.message})") from None
        if not isinstance(value, dict):
            raise PublicError(400, 60015, f"{_NOT_OBJECT} (got {json_type(value)})")
        return value

    def instance_ids(self, ep: Endpoint, raw_options: Any) -> list[str]:
        """The instances a namespace request searches (60012 / 60013, see the module doc)."""
        ids = raw_options.get("instance_ids") if isinstance(raw_options, dict) else None
        allowed: list[str] = ep.params["instances_allowed"]
        if ids is None:
            chosen = list(allowed)
        else:
            if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
                raise PublicError(
                    400,
                    60012,
                    "invalid ai_search_options.instance_ids (a non-empty list of instance ids, "
                    "or omitted for every allowed instance)",
                )
            chosen = list(dict.fromkeys(ids))
        existing = {i.id for i in self.svc.instances(ep.namespace)}
        if not chosen or any(i not in allowed or i not in existing for i in chosen):
            raise _not_found_in_namespace()
        return chosen

    def _scoped(self, ep: Endpoint, req: SearchRequest) -> SearchRequest:
        """A namespace request with its ``instance_ids`` resolved against the allowlist."""
        raw = req.raw_options
        if raw is not None and not isinstance(raw, dict):
            raise bad_request("ai_search_options", f"must be an object (got {json_type(raw)})")
        ids = self.instance_ids(ep, raw)
        return dataclasses.replace(req, raw_options={**(raw or {}), "instance_ids": ids})

    def _instance(self, ep: Endpoint) -> InstanceRecord:
        assert ep.instance is not None
        inst = self.svc.store.get_instance(ep.namespace, ep.instance.id)
        if inst is None:  # deleted since the lookup
            raise PublicError(404, 60003, "config not found")
        return inst

    async def retrieve(self, ep: Endpoint, req: SearchRequest) -> Retrieval:
        """Search an endpoint: its instance (with its injected fault), or its namespace."""
        qs = self.queries
        if ep.is_namespace:
            return await qs.search_namespace(ep.namespace, self._scoped(ep, req))
        inst = self._instance(ep)
        await _fault(qs, inst, "search")
        return await qs.search_instance(inst, req)

    async def _search(self, ep: Endpoint, body: dict[str, Any]) -> Response:
        if ep.is_namespace:
            self.instance_ids(ep, body.get("ai_search_options"))
        req = SearchRequest.parse(body)
        return envelope(_search_result(await self.retrieve(ep, req)))

    async def _chat(self, ep: Endpoint, body: dict[str, Any]) -> Response:
        qs = self.queries
        if ep.is_namespace:
            self.instance_ids(ep, body.get("ai_search_options"))
            req = ChatRequest.parse(body)
            req = dataclasses.replace(req, search=self._scoped(ep, req.search))
            found = await qs.search_namespace(ep.namespace, req.search)
            return await _chat(qs, req, found, None)
        req = ChatRequest.parse(body)
        inst = self._instance(ep)
        fault = await _fault(qs, inst, "chat")
        return await _chat(qs, req, await qs.search_instance(inst, req.search), fault)
