"""HTTP plumbing of the local server: auth, id checks, the Cloudflare envelope, paging.

Every route is wrapped in :func:`endpoint`, the one place where errors become responses: a
:class:`~aisearch_local.errors.ValidationError` is 400 / 7001, an
:class:`~aisearch_local.errors.APIError` its own status and code, anything unexpected
500 / 7000 (logged, never a traceback).
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from aisearch_local.errors import APIError, ValidationError, bad_request
from aisearch_local.jsonsafe import SafeJSONResponse
from aisearch_local.query import QueryService
from aisearch_local.records import InstanceRecord
from aisearch_local.service import LocalService
from aisearch_local.validation import INSTANCE_ID_RE, NAMESPACE_RE, parse_json_object

__all__ = [
    "EarlyResponse",
    "Handler",
    "check_auth",
    "check_path_ids",
    "endpoint",
    "envelope",
    "error_response",
    "http_error",
    "instance_of",
    "item_of",
    "job_of",
    "json_body",
    "namespace_of",
    "optional_json_body",
    "page_args",
    "paged",
    "paged_list",
    "queries",
    "server_error",
    "service",
]

logger = logging.getLogger("aisearch_local.app")

Handler = Callable[[Request], Awaitable[Response]]
_INLINE_PARSE_BYTES = 256 * 1024


def envelope(
    result: Any, status: int = 200, result_info: dict[str, Any] | None = None
) -> JSONResponse:
    """Return a success envelope."""
    body: dict[str, Any] = {"success": True, "errors": [], "messages": [], "result": result}
    if result_info is not None:
        body["result_info"] = result_info
    return SafeJSONResponse(body, status_code=status)


def error_response(exc: APIError) -> JSONResponse:
    """Return the Cloudflare error envelope of an :class:`APIError`."""
    err: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.error_chain:
        err["error_chain"] = exc.error_chain
    body = {"success": False, "errors": [err], "messages": [], "result": exc.result}
    return SafeJSONResponse(body, status_code=exc.status, headers=exc.headers)


class EarlyResponse(Exception):
    """Raised by a handler's helper to answer with ``response`` at once (an injected fault)."""

    def __init__(self, response: Response) -> None:
        super().__init__("early response")
        self.response = response


def service(request: Request) -> LocalService:
    """The :class:`LocalService` of the application serving ``request``."""
    svc: LocalService = request.app.state.service
    return svc


def queries(request: Request) -> QueryService:
    """The :class:`QueryService` (search and chat) of the application serving ``request``."""
    qs: QueryService = request.app.state.queries
    return qs


def namespace_of(request: Request) -> str:
    """The namespace of the path (``default`` on the routes without one)."""
    return str(request.path_params.get("ns", "default"))


def instance_of(request: Request) -> InstanceRecord:
    """The instance named by the path, or 404 / 7002."""
    return service(request).require_instance(
        namespace_of(request), str(request.path_params["instance_id"])
    )


def item_of(request: Request) -> tuple[InstanceRecord, dict[str, Any]]:
    """The instance and the item named by the path, or 404 / 7002."""
    inst = instance_of(request)
    return inst, service(request).require_item(inst, str(request.path_params["item_id"]))


def job_of(request: Request, inst: InstanceRecord | None = None) -> dict[str, Any]:
    """The job named by the path (of ``inst``, else of the path's instance), or 404 / 7002."""
    inst = inst or instance_of(request)
    return service(request).require_job(inst, str(request.path_params["job_id"]))


_SPACE = re.compile(r"\s")  # the characters str.isspace() is true for, all of them


def _credentials(scope: Any) -> tuple[str | None, str | None, str | None]:
    """The ``Authorization``, ``X-Auth-Key`` and ``X-Auth-Email`` headers, first of repeats.

    One pass over the headers: ``request.headers.get`` walks them once per name.
    """
    auth = key = email = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            auth = value.decode("latin-1") if auth is None else auth
        elif name == b"x-auth-key":
            key = value.decode("latin-1") if key is None else key
        elif name == b"x-auth-email":
            email = value.decode("latin-1") if email is None else email
    return auth, key, email


def check_auth(request: Request) -> None:
    """Check the credentials of a request against the configured token.

    Raises:
        APIError: 401 / 1001 when missing, 400 / 6003 when malformed, 403 / 10000 when wrong.
    """
    token: str | None = request.app.state.token
    if token is None:
        return
    auth, key, email = _credentials(request.scope)
    if auth is None and key is None:
        raise APIError(401, 1001, 'Missing "Authorization" header')
    if auth is not None:
        scheme, _, value = auth.partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer" or not value or _SPACE.search(value):
            raise APIError(
                400,
                6003,
                "Invalid request headers",
                error_chain=[{"code": 6111, "message": "Invalid format for Authorization header"}],
            )
        if not hmac.compare_digest(value.encode(), token.encode()):
            raise APIError(403, 10000, "Authentication error")
        return
    if not email:
        raise APIError(
            400,
            6003,
            "Invalid request headers",
            error_chain=[{"code": 6102, "message": "X-Auth-Email header is missing"}],
        )
    if not hmac.compare_digest((key or "").encode(), token.encode()):
        raise APIError(403, 10000, "Authentication error")


# Path parameters and the ids they must look like. Instance ids and namespaces follow API.md
# section 10; item and job ids use the alphabet of the ids this server generates (uuid5 strings,
# uuid4 hex): a well-formed id that names nothing is a 404, anything else a 400.
_NAME_RULE = "must be 1 to 64 lowercase letters, digits, '_' and single '-' between them"
_PATH_IDS: dict[str, tuple[re.Pattern[str], str]] = {
    "account_id": (
        re.compile(r"^[A-Za-z0-9_-]{1,64}$"),
        "must be 1 to 64 letters, digits, '-' or '_'",
    ),
    "ns": (NAMESPACE_RE, _NAME_RULE),
    "instance_id": (INSTANCE_ID_RE, _NAME_RULE),
    "rag_id": (INSTANCE_ID_RE, _NAME_RULE),
    "item_id": (
        re.compile(r"^[a-z0-9-]{1,64}$"),
        "must be an item id: 1 to 64 lowercase letters, digits and '-' (the server's UUIDs)",
    ),
    "job_id": (
        re.compile(r"^[a-z0-9-]{1,64}$"),
        "must be a job id: 1 to 64 lowercase letters, digits and '-' (the server's hex ids)",
    ),
}
_PATH_NAMES = {"ns": "namespace"}
_ENCODED_SEPARATOR = re.compile(rb"%(?:2f|5c)", re.IGNORECASE)


def check_path_ids(request: Request) -> None:
    r"""Refuse a path whose ids are not ids: 400 / 7001 naming the path parameter.

    Every path parameter must match its pattern (:data:`_PATH_IDS`, at most 64 characters),
    which leaves out dot segments, separators, control characters and anything percent-decoded
    into them; and the raw path must not hold an encoded ``/`` or ``\``, so an id can
    never be decoded into another route.
    """
    raw = request.scope.get("raw_path")
    if isinstance(raw, bytes) and _ENCODED_SEPARATOR.search(raw):
        raise bad_request("path", "ids must not hold an encoded '/' or '\\' (%2F, %5C)")
    for name, value in request.path_params.items():
        spec = _PATH_IDS.get(name)
        if spec is None:
            continue
        pattern, rule = spec
        text = str(value)
        if len(text) > 64 or not pattern.fullmatch(text):
            shown = text if len(text) <= 80 else text[:80] + "..."
            raise bad_request(_PATH_NAMES.get(name, name), f"{rule} (got {shown!r})")


def endpoint(fn: Handler) -> Handler:
    """Wrap a route: auth and id checks, then every error as the Cloudflare envelope."""

    async def wrapped(request: Request) -> Response:
        try:
            check_auth(request)
            check_path_ids(request)
            return await fn(request)
        except EarlyResponse as early:
            return early.response
        except ValidationError as exc:
            return error_response(APIError.from_validation(exc))
        except APIError as exc:
            return error_response(exc)
        except HTTPException as exc:  # starlette's own, e.g. a multipart body without boundary
            return error_response(APIError(exc.status_code, 7001, str(exc.detail)))
        except Exception:
            logger.exception("unexpected error on %s %s", request.method, request.url.path)
            return error_response(
                APIError(500, 7000, "Internal error in aisearch-local (see the server log)")
            )

    wrapped.__name__ = fn.__name__
    wrapped.__doc__ = fn.__doc__
    return wrapped


async def json_body(request: Request) -> dict[str, Any]:
    """The request body as a JSON object (strictly parsed; big bodies off the event loop)."""
    raw = await request.body()
    if len(raw) > _INLINE_PARSE_BYTES:  # off the event loop: other requests keep being served
        return await run_in_threadpool(parse_json_object, raw)
    return parse_json_object(raw)


async def optional_json_body(request: Request) -> dict[str, Any]:
    """The request body as a JSON object; an empty body is ``{}``."""
    raw = await request.body()
    return parse_json_object(raw) if raw.strip() else {}


def page_args(request: Request, *, max_per_page: int, default_per_page: int) -> tuple[int, int]:
    """Read ``page`` and ``per_page`` from the query string (400 / 7001 when out of range)."""
    q = request.query_params
    try:
        page = int(q.get("page", "1"))
    except ValueError:
        raise bad_request("page", "must be an integer >= 1") from None
    try:
        per_page = int(q.get("per_page", str(default_per_page)))
    except ValueError:
        raise bad_request("per_page", f"must be an integer between 1 and {max_per_page}") from None
    if page < 1:
        raise bad_request("page", f"must be an integer >= 1 (got {page})")
    if not 1 <= per_page <= max_per_page:
        raise bad_request(
            "per_page", f"must be an integer between 1 and {max_per_page} (got {per_page})"
        )
    return page, per_page


def paged(rows: list[Any], page: int, per_page: int) -> JSONResponse:
    """One page of ``rows`` in the envelope, with ``result_info``."""
    start = (page - 1) * per_page
    chunk = rows[start : start + per_page]
    info = {
        "count": len(chunk),
        "page": page,
        "per_page": per_page,
        "total_count": len(rows),
        "total_pages": (len(rows) + per_page - 1) // per_page,
    }
    return envelope(chunk, result_info=info)


def paged_list(request: Request, rows: list[Any], *, max_per_page: int) -> JSONResponse:
    """The page of ``rows`` the query string asks for (20 per page by default)."""
    page, per_page = page_args(request, max_per_page=max_per_page, default_per_page=20)
    return paged(rows, page, per_page)


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (unknown route 404 / 7003, wrong method 405 / 7003)."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 404:
        return error_response(
            APIError(404, 7003, f"No route for {request.method} {request.url.path}")
        )
    if status == 405:
        return error_response(
            APIError(405, 7003, f"Method {request.method} not allowed on {request.url.path}")
        )
    return error_response(APIError(status, 7000, str(getattr(exc, "detail", "error"))))


async def server_error(request: Request, exc: Exception) -> Response:
    """Last resort: 500 / 7000 (an error outside :func:`endpoint`)."""
    logger.error("unhandled error on %s: %r", request.url.path, exc)
    return error_response(
        APIError(500, 7000, "Internal error in aisearch-local (see the server log)")
    )
