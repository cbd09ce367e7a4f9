"""HTTP routes of the local AI Search server (Starlette).

Every path of API.md sections 3 to 13 under ``/client/v4/accounts/{account_id}``, with the
Cloudflare envelope ``{success, errors, messages, result}`` everywhere except chat completions
(a bare OpenAI-style object, or Server-Sent Events with ``stream: true``). Errors never leak a
traceback: validation is 400 / 7001, unknown objects 404 / 7002, unknown routes 404 / 7003,
auth 401 / 1001, 400 / 6003 and 403 / 10000, anything unexpected 500 / 7000.

Routes that the real API does not have live under ``/client/v4/_local/``: fault injection
(``PUT``/``DELETE /client/v4/_local/faults/{namespace}/{instance_id}``, ``DELETE
/client/v4/_local/faults``) and ``GET /client/v4/_local/health``.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from aisearch_local.embed import Embedder
from aisearch_local.filters import FilterError, compile_filter, compile_legacy_filter
from aisearch_local.generate import Generation, Generator, rewrite_query
from aisearch_local.guard import Perimeter
from aisearch_local.ingest import MAX_FILE_BYTES
from aisearch_local.jsonsafe import SafeJSONResponse, dumps_safe
from aisearch_local.search import (
    OptionsError,
    ResolvedOptions,
    message_text,
    query_from_messages,
    resolve_options,
    validate_messages,
)
from aisearch_local.service import (
    INSTANCE_ID_RE,
    NAMESPACE_RE,
    APIError,
    Fault,
    LocalService,
    bad_request,
    not_found,
    parse_json,
    parse_json_object,
    validate_item_metadata,
    validate_key,
)
from aisearch_local.store import InstanceRecord, item_attributes

__all__ = ["create_app"]

logger = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]
ACCOUNT = "/client/v4/accounts/{account_id}"
_ITEM_STATUSES = ("queued", "running", "completed", "error", "skipped", "outdated")


# -- envelope ---------------------------------------------------------------------------------


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
    body = {"success": False, "errors": [err], "messages": [], "result": None}
    return SafeJSONResponse(body, status_code=exc.status, headers=exc.headers)


def _svc(request: Request) -> LocalService:
    svc: LocalService = request.app.state.service
    return svc


def _ns(request: Request) -> str:
    return str(request.path_params.get("ns", "default"))


# -- auth -------------------------------------------------------------------------------------


def check_auth(request: Request) -> None:
    """Check the credentials of a request against the configured token.

    Raises:
        APIError: 401 / 1001 when missing, 400 / 6003 when malformed, 403 / 10000 when wrong.
    """
    token: str | None = request.app.state.token
    if token is None:
        return
    auth = request.headers.get("authorization")
    key = request.headers.get("x-auth-key")
    email = request.headers.get("x-auth-email")
    if auth is None and key is None:
        raise APIError(401, 1001, 'Missing "Authorization" header')
    if auth is not None:
        scheme, _, value = auth.partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer" or not value or any(c.isspace() for c in value):
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
    """Wrap a route: auth check, then every error as the Cloudflare envelope."""

    async def wrapped(request: Request) -> Response:
        try:
            check_auth(request)
            check_path_ids(request)
            return await fn(request)
        except APIError as exc:
            return error_response(exc)
        except OptionsError as exc:
            return error_response(APIError(400, 7001, str(exc)))
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


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > _INLINE_PARSE_BYTES:  # off the event loop: other requests keep being served
        return await run_in_threadpool(parse_json_object, raw)
    return parse_json_object(raw)


_INLINE_PARSE_BYTES = 256 * 1024


def _page_args(request: Request, *, max_per_page: int, default_per_page: int) -> tuple[int, int]:
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


def _paged(rows: list[Any], page: int, per_page: int) -> JSONResponse:
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


# -- namespaces -------------------------------------------------------------------------------


def _validate_namespace_body(body: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    desc = body.get("description")
    if desc is not None and (not isinstance(desc, str) or len(desc) > 256):
        raise bad_request("description", "must be a string of at most 256 characters")
    extra = {}
    if "public_endpoint_params" in body:
        pep = body["public_endpoint_params"]
        if pep is not None and not isinstance(pep, dict):
            raise bad_request("public_endpoint_params", "must be an object or null")
        extra["public_endpoint_params"] = pep
    return desc, extra


@endpoint
async def namespaces_list(request: Request) -> Response:
    """List namespaces."""
    rows = _svc(request).store.list_namespaces()
    term = request.query_params.get("search")
    if term:
        t = term.lower()
        rows = [
            r for r in rows if t in r["name"].lower() or t in (r.get("description") or "").lower()
        ]
    page, per_page = _page_args(request, max_per_page=100, default_per_page=20)
    return _paged(rows, page, per_page)


@endpoint
async def namespaces_create(request: Request) -> Response:
    """Create a namespace."""
    body = await _json_body(request)
    name = body.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 64 or not NAMESPACE_RE.fullmatch(name):
        raise bad_request(
            "name", "must be 1 to 64 lowercase letters, digits, '_' and single '-' between them"
        )
    desc, extra = _validate_namespace_body(body)
    created = _svc(request).store.create_namespace(name, desc, extra)
    if created is None:
        raise APIError(409, 7009, f"namespace {name!r} already exists")
    return envelope(created)


@endpoint
async def namespace_get(request: Request) -> Response:
    """Read a namespace."""
    return envelope(_svc(request).require_namespace(_ns(request)))


@endpoint
async def namespace_update(request: Request) -> Response:
    """Update a namespace's description."""
    svc, ns = _svc(request), _ns(request)
    svc.require_namespace(ns)
    body = await _json_body(request)
    desc, extra = _validate_namespace_body(body)
    if ns == "default" and desc is not None:
        raise bad_request(
            "description", "the description of the default namespace cannot be changed"
        )
    return envelope(svc.store.update_namespace(ns, desc, extra))


@endpoint
async def namespace_delete(request: Request) -> Response:
    """Delete an empty namespace."""
    svc, ns = _svc(request), _ns(request)
    found = svc.require_namespace(ns)
    if ns == "default":
        raise bad_request("name", "the default namespace cannot be deleted")
    n = svc.store.count_instances(ns)
    if n:
        raise bad_request(
            "name", f"namespace {ns!r} still holds {n} instance(s); delete them first"
        )
    svc.store.delete_namespace(ns)
    return envelope(found)


# -- instances --------------------------------------------------------------------------------


def _inst(request: Request) -> InstanceRecord:
    return _svc(request).require_instance(_ns(request), str(request.path_params["instance_id"]))


@endpoint
async def instances_list(request: Request) -> Response:
    """List the instances of a namespace."""
    svc = _svc(request)
    ns = request.path_params.get("ns") or request.query_params.get("namespace") or "default"
    if len(ns) > 64 or not NAMESPACE_RE.fullmatch(ns):
        raise bad_request("namespace", f"must be a namespace name (got {ns[:80]!r})")
    svc.require_namespace(ns)
    rows = [svc.instance_dict(i) for i in svc.store.list_instances(ns)]
    term = request.query_params.get("search")
    if term:
        rows = [r for r in rows if term.lower() in r["id"].lower()]
    if request.query_params.get("order_by_direction") == "desc":
        rows.reverse()
    page, per_page = _page_args(request, max_per_page=100, default_per_page=20)
    return _paged(rows, page, per_page)


@endpoint
async def instances_create(request: Request) -> Response:
    """Create an instance (201)."""
    svc = _svc(request)
    body = await _json_body(request)
    inst = svc.create_instance(_ns(request), body)
    return envelope(svc.instance_dict(inst), status=201)


@endpoint
async def instance_get(request: Request) -> Response:
    """Read an instance."""
    return envelope(_svc(request).instance_dict(_inst(request)))


@endpoint
async def instance_update(request: Request) -> Response:
    """Update an instance's configuration."""
    svc = _svc(request)
    inst = _inst(request)
    body = await _json_body(request)
    updated = await run_in_threadpool(svc.update_instance, inst, body)
    return envelope(svc.instance_dict(updated))


@endpoint
async def instance_delete(request: Request) -> Response:
    """Delete an instance and all its indexed data."""
    svc = _svc(request)
    inst = _inst(request)
    out = svc.instance_dict(inst)
    await run_in_threadpool(svc.store.delete_instance, inst)
    svc.clear_fault(inst.namespace, inst.id)
    return envelope(out)


@endpoint
async def instance_stats(request: Request) -> Response:
    """Indexing statistics of an instance."""
    svc = _svc(request)
    inst = _inst(request)
    st = svc.store.stats(inst)
    counts = st["counts"]
    result: dict[str, Any] = {s: int(counts.get(s, 0)) for s in _ITEM_STATUSES}
    result.update(
        {
            "last_activity": st["last_activity"],
            "degraded": False,
            "file_embed_errors": {},
            "index_source_errors": {},
            "engine": {
                "vectorize": {"dimensions": inst.dim, "vectorsCount": st["chunks"]},
                "r2": {
                    "metadataSizeBytes": 0,
                    "objectCount": st["items"],
                    "payloadSizeBytes": st["payload_bytes"],
                },
            },
        }
    )
    return envelope(result)


# -- items ------------------------------------------------------------------------------------


def _public_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if not k.startswith("_") and k != "timestamp"}


def _form_value(form: Any, *names: str) -> Any:
    for name in names:
        if name in form:
            return form[name]
    return None


def _truthy(value: Any, field: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", ""):
        return False
    raise bad_request(field, f"must be true or false (got {value!r})")


@endpoint
async def items_upload(request: Request) -> Response:
    """Upload one file (multipart ``file``, ``metadata`` JSON string, ``wait_for_completion``)."""
    svc = _svc(request)
    inst = _inst(request)
    svc.check_embedder(inst)
    ctype = request.headers.get("content-type", "")
    if "multipart/form-data" not in ctype:
        raise bad_request("file", "upload a multipart/form-data body with a 'file' part")
    length = request.headers.get("content-length")
    if (
        length
        and length.isascii()
        and length.isdigit()
        and int(length) > MAX_FILE_BYTES + 64 * 1024
    ):
        raise APIError(413, 7001, f"file: larger than the {MAX_FILE_BYTES} byte (4 MB) limit")
    async with request.form(max_part_size=MAX_FILE_BYTES + 1) as form:
        upload = _form_value(form, "file", "file[file]")
        if not isinstance(upload, UploadFile):
            raise bad_request("file", "a multipart 'file' part with a filename is required")
        key = upload.filename or ""
        raw_meta = _form_value(form, "metadata", "file[metadata]")
        wait = _truthy(
            _form_value(form, "wait_for_completion", "file[wait_for_completion]"),
            "wait_for_completion",
        )
        data = await upload.read(MAX_FILE_BYTES + 1)
        if isinstance(raw_meta, UploadFile):  # curl -F 'metadata=@m.json': the file is the JSON
            meta_bytes = await raw_meta.read(MAX_FILE_BYTES + 1)
            if len(meta_bytes) > MAX_FILE_BYTES:
                raise bad_request("metadata", f"larger than {MAX_FILE_BYTES} bytes")
            try:
                raw_meta = meta_bytes.decode("utf-8")
            except UnicodeDecodeError:
                raise bad_request("metadata", "a file part must hold UTF-8 JSON text") from None
    del wait  # indexing is always synchronous here: the answer is the final state
    if not key or len(key) > 128:
        raise bad_request("file", f"the filename must be 1 to 128 characters (got {len(key)})")
    validate_key(key, "file.filename")
    if len(data) > MAX_FILE_BYTES:
        raise APIError(
            413, 7001, f"file: {key!r} is larger than the {MAX_FILE_BYTES} byte (4 MB) limit"
        )
    metadata: dict[str, Any] = {}
    if raw_meta not in (None, ""):
        parsed = parse_json(str(raw_meta), "metadata")
        metadata = validate_item_metadata(parsed)
    item = await run_in_threadpool(svc.index_document, inst, key=key, data=data, metadata=metadata)
    return envelope(_public_item(item))


@endpoint
async def items_create_or_update(request: Request) -> Response:
    """Re-index an item by key (from its stored bytes or the instance's source folder)."""
    svc = _svc(request)
    inst = _inst(request)
    body = await _json_body(request)
    key = validate_key(body.get("key"))
    _check_index_body(body)
    item = await run_in_threadpool(_reindex, svc, inst, key)
    return envelope(_public_item(item))


def _check_index_body(body: dict[str, Any]) -> None:
    """Check ``next_action`` (INDEX or null) and ``wait_for_completion`` (boolean) of a body."""
    if body.get("next_action", "INDEX") not in ("INDEX", None):
        raise bad_request("next_action", f"must be INDEX (got {body['next_action']!r:.80})")
    wait = body.get("wait_for_completion")
    if wait is not None and not isinstance(wait, bool):
        raise bad_request("wait_for_completion", f"must be a boolean (got {wait!r:.80})")


def _reindex(svc: LocalService, inst: InstanceRecord, key: str) -> dict[str, Any]:
    existing = svc.store.get_item_by_key(inst, key)
    if inst.source_dir:
        root = Path(inst.source_dir).resolve()
        path = (root / key).resolve()
        if path.is_relative_to(root) and path.is_file():
            for sf in svc.iter_source_files(Path(inst.source_dir)):
                if sf.key == key:
                    return svc.index_document(
                        inst,
                        key=key,
                        data=sf.data,
                        metadata=sf.metadata,
                        timestamp_ms=sf.timestamp_ms,
                        source_id=f"local:{inst.source_dir}",
                        metadata_error=sf.metadata_error,
                    )
    if existing is None:
        raise not_found(f"item with key {key!r} not found in instance {inst.id!r}")
    data = svc.store.item_data(existing["_pk"]) or b""
    return svc.index_document(
        inst,
        key=key,
        data=data,
        metadata=existing["metadata"],
        timestamp_ms=existing.get("timestamp"),
        source_id=existing.get("source_id"),
    )


@endpoint
async def items_list(request: Request) -> Response:
    """List items (``metadata_filter``, ``status``, ``key``, ``search``, paging)."""
    svc = _svc(request)
    inst = _inst(request)
    q = request.query_params
    page, per_page = _page_args(request, max_per_page=50, default_per_page=20)
    rows = svc.store.list_items(inst)
    status = q.get("status")
    if status is not None:
        if status not in _ITEM_STATUSES:
            raise bad_request("status", f"must be one of {', '.join(_ITEM_STATUSES)}")
        rows = [r for r in rows if r["status"] == status]
    if q.get("key"):
        rows = [r for r in rows if r["key"] == q["key"]]
    if q.get("item_id"):
        rows = [r for r in rows if r["id"] == q["item_id"]]
    if q.get("search"):
        rows = [r for r in rows if q["search"].lower() in r["key"].lower()]
    if q.get("source"):
        rows = [r for r in rows if r.get("source_id") == q["source"]]
    if q.get("metadata_filter"):
        flt = parse_json(q["metadata_filter"], "metadata_filter")
        try:
            pred = compile_filter(flt, path="metadata_filter")
        except FilterError as exc:
            raise APIError(400, 7001, str(exc)) from exc
        rows = [
            r for r in rows if pred(item_attributes(r["key"], r.get("timestamp"), r["metadata"]))
        ]
    sort_by = q.get("sort_by")
    if sort_by == "status":
        rows.sort(key=lambda r: r["status"])
    elif sort_by == "modified_at":
        rows.sort(key=lambda r: r["last_seen_at"], reverse=True)
    elif sort_by is not None:
        raise bad_request("sort_by", "must be status or modified_at")
    return _paged([_public_item(r) for r in rows], page, per_page)


def _item(request: Request, inst: InstanceRecord) -> dict[str, Any]:
    item_id = str(request.path_params["item_id"])
    item = _svc(request).store.get_item(inst, item_id)
    if item is None:
        raise not_found(f"item {item_id!r} not found in instance {inst.id!r}")
    return item


@endpoint
async def item_get(request: Request) -> Response:
    """Read an item."""
    inst = _inst(request)
    return envelope(_public_item(_item(request, inst)))


@endpoint
async def item_delete(request: Request) -> Response:
    """Delete an item and its chunks."""
    svc = _svc(request)
    inst = _inst(request)
    item = _item(request, inst)
    await run_in_threadpool(svc.store.delete_item, inst, item["_pk"])
    return envelope({"key": item["key"]})


@endpoint
async def item_sync(request: Request) -> Response:
    """Re-index one item (``PATCH {next_action: "INDEX"}``)."""
    svc = _svc(request)
    inst = _inst(request)
    item = _item(request, inst)
    raw = await request.body()
    _check_index_body(parse_json_object(raw) if raw.strip() else {})
    out = await run_in_threadpool(_reindex, svc, inst, item["key"])
    return envelope(_public_item(out))


_MAX_OFFSET = 2**63 - 1  # SQLite INTEGER


@endpoint
async def item_chunks(request: Request) -> Response:
    """List an item's chunks (``limit`` 1-100, ``offset``)."""
    svc = _svc(request)
    inst = _inst(request)
    item = _item(request, inst)
    try:
        limit = int(request.query_params.get("limit", "20"))
        offset = int(request.query_params.get("offset", "0"))
    except ValueError:
        raise bad_request("limit", "limit and offset must be integers") from None
    if not 1 <= limit <= 100:
        raise bad_request("limit", f"must be an integer between 1 and 100 (got {limit})")
    if not 0 <= offset <= _MAX_OFFSET:
        raise bad_request("offset", f"must be an integer between 0 and {_MAX_OFFSET}")
    rows = svc.store.item_chunks(inst, item["_pk"], limit, offset)
    ref = {"key": item["key"], "metadata": item["metadata"], "timestamp": item.get("timestamp")}
    result = [
        {
            "id": r.id,
            "text": r.text,
            "item": ref,
            "start_byte": r.start_byte,
            "end_byte": r.end_byte,
        }
        for r in rows
    ]
    return envelope(result)


@endpoint
async def item_download(request: Request) -> Response:
    """Return the raw bytes of an item."""
    svc = _svc(request)
    inst = _inst(request)
    item = _item(request, inst)
    data = svc.store.item_data(item["_pk"]) or b""
    return Response(data, media_type="application/octet-stream")


# -- jobs -------------------------------------------------------------------------------------


def _public_job(job: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in job.items() if not k.startswith("_")}


@endpoint
async def jobs_create(request: Request) -> Response:
    """Start a sync job: re-sync the instance's source folder (synchronously)."""
    svc = _svc(request)
    inst = _inst(request)
    raw = await request.body()
    body = parse_json_object(raw) if raw.strip() else {}
    desc = body.get("description")
    if desc is not None and (not isinstance(desc, str) or len(desc) > 1024):
        raise bad_request("description", "must be a string of at most 1024 characters")
    job = svc.store.create_job(inst, desc)

    def run() -> None:
        try:
            reason, log = svc.sync_source(inst)
        except Exception as exc:  # a job failure is reported in the job, not as a 500
            logger.exception("sync job failed")
            reason, log = f"error: {exc}", []
        svc.store.finish_job(inst, job["id"], reason, log)

    await run_in_threadpool(run)
    return envelope(_public_job(svc.store.get_job(inst, job["id"]) or job))


@endpoint
async def jobs_list(request: Request) -> Response:
    """List sync jobs."""
    svc = _svc(request)
    inst = _inst(request)
    page, per_page = _page_args(request, max_per_page=100, default_per_page=20)
    return _paged([_public_job(j) for j in svc.store.list_jobs(inst)], page, per_page)


def _job(request: Request, inst: InstanceRecord) -> dict[str, Any]:
    job_id = str(request.path_params["job_id"])
    job = _svc(request).store.get_job(inst, job_id)
    if job is None:
        raise not_found(f"job {job_id!r} not found in instance {inst.id!r}")
    return job


@endpoint
async def job_get(request: Request) -> Response:
    """Read a job."""
    inst = _inst(request)
    return envelope(_public_job(_job(request, inst)))


@endpoint
async def job_logs(request: Request) -> Response:
    """A job's log lines."""
    inst = _inst(request)
    job = _job(request, inst)
    logs = [
        {
            "id": i + 1,
            "created_at": time.time(),
            "message": line["message"],
            "message_type": line.get("message_type", 1),
        }
        for i, line in enumerate(job["_log"])
    ]
    page, per_page = _page_args(request, max_per_page=100, default_per_page=20)
    return _paged(logs, page, per_page)


@endpoint
async def job_update(request: Request) -> Response:
    """Cancel a job (jobs run synchronously here, so they are already ended)."""
    inst = _inst(request)
    body = await _json_body(request)
    if body.get("action") != "cancel":
        raise bad_request("action", "must be cancel")
    return envelope(_public_job(_job(request, inst)))


# -- search and chat ----------------------------------------------------------------------------


class _Query:
    """A parsed search or chat body: the query text, the messages and the options."""

    def __init__(self, query: str, messages: list[dict[str, Any]] | None, raw_options: Any) -> None:
        self.query = query
        self.messages = messages
        self.raw_options = raw_options


def _parse_search_body(body: dict[str, Any], *, chat: bool) -> _Query:
    query = body.get("query")
    messages = body.get("messages")
    if chat:
        if messages is None:
            raise bad_request("messages", "is required")
        msgs = validate_messages(messages)
        return _Query(query_from_messages(msgs), msgs, body.get("ai_search_options"))
    if (query is None) == (messages is None):
        raise bad_request("query", "provide exactly one of query or messages")
    if query is not None:
        if not isinstance(query, str) or not query.strip():
            raise bad_request("query", "must be a non-empty string")
        return _Query(query, None, body.get("ai_search_options"))
    msgs = validate_messages(messages)
    return _Query(query_from_messages(msgs), msgs, body.get("ai_search_options"))


def _effective_query(q: _Query, opts: ResolvedOptions) -> str:
    if q.messages is not None and opts.rewrite:
        rewritten = rewrite_query(q.messages)
        if rewritten.strip():
            return rewritten
    return q.query


def _strip_instance_ids(raw: Any) -> Any:
    if isinstance(raw, dict) and "instance_ids" in raw:
        return {k: v for k, v in raw.items() if k != "instance_ids"}
    return raw


def _search_one(
    svc: LocalService, inst: InstanceRecord, q: _Query
) -> tuple[str, list[dict[str, Any]], ResolvedOptions]:
    svc.check_embedder(inst)
    opts = resolve_options(_strip_instance_ids(q.raw_options), inst.config)
    text = _effective_query(q, opts)
    try:
        chunks = svc.searcher.search(inst, text, opts)
    except Exception:
        if not opts.return_on_failure:
            raise
        logger.exception("retrieval failed on %s; returning no chunks", inst.id)
        chunks = []
    return text, chunks, opts


async def _apply_fault(svc: LocalService, ns: str, instance_id: str) -> Fault | None:
    fault = svc.take_fault(ns, instance_id)
    if fault is None:
        return None
    if fault.latency_ms:
        await asyncio.sleep(fault.latency_ms / 1000)
    return fault


def _fault_error(fault: Fault) -> APIError | None:
    if fault.status is None:
        return None
    headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
    code = fault.code if fault.code is not None else (7017 if fault.status >= 500 else 7000)
    return APIError(fault.status, code, f"injected fault: HTTP {fault.status}", headers=headers)


def _malformed(kind: str) -> Response:
    body = (
        '{"success": true, "result": {"chunks": [{"id": "'
        if kind == "search"
        else '{"id": "chatcmpl-'
    )
    return Response(body, media_type="application/json")


@endpoint
async def instance_search(request: Request) -> Response:
    """Search one instance (enveloped)."""
    svc = _svc(request)
    inst = _inst(request)
    body = await _json_body(request)
    q = _parse_search_body(body, chat=False)
    fault = await _apply_fault(svc, inst.namespace, inst.id)
    if fault is not None:
        err = _fault_error(fault)
        if err is not None:
            raise err
        if fault.malformed_body:
            return _malformed("search")
    text, chunks, _opts = await run_in_threadpool(_search_one, svc, inst, q)
    return envelope({"search_query": text, "query_kind": "text", "chunks": chunks})


def _namespace_ids(raw: Any) -> list[str]:
    opts = raw if isinstance(raw, dict) else {}
    ids = opts.get("instance_ids")
    if not isinstance(ids, list) or not 1 <= len(ids) <= 10:
        n = len(ids) if isinstance(ids, list) else ids
        raise bad_request(
            "ai_search_options.instance_ids", f"must be a list of 1 to 10 instance ids (got {n!r})"
        )
    for i, iid in enumerate(ids):
        if not isinstance(iid, str) or len(iid) > 64 or not INSTANCE_ID_RE.fullmatch(iid):
            raise bad_request(
                f"ai_search_options.instance_ids[{i}]",
                "must be an instance id: 1 to 64 lowercase letters, digits, '_' and single '-'",
            )
    return list(dict.fromkeys(ids))


async def _namespace_retrieve(
    svc: LocalService, ns: str, q: _Query
) -> tuple[str, list[dict[str, Any]], list[dict[str, str]], list[InstanceRecord]]:
    svc.require_namespace(ns)
    ids = _namespace_ids(q.raw_options)
    # validate options once, against default instance settings, so a bad field is a 400
    resolve_options(_strip_instance_ids(q.raw_options), {})

    async def one(iid: str) -> tuple[str, InstanceRecord | None, Any]:
        inst = svc.store.get_instance(ns, iid)
        if inst is None:
            return iid, None, f"instance {iid!r} not found in namespace {ns!r}"
        fault = await _apply_fault(svc, ns, iid)
        if fault is not None:
            err = _fault_error(fault)
            if err is not None:
                return iid, None, f"HTTP {err.status}: {err.message}"
            if fault.malformed_body:
                return iid, None, "malformed response from instance"
        try:
            res = await run_in_threadpool(_search_one, svc, inst, q)
        except (APIError, OptionsError) as exc:
            return iid, None, getattr(exc, "message", str(exc))
        return iid, inst, res

    results = await asyncio.gather(*(one(i) for i in ids))
    chunks: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    insts: list[InstanceRecord] = []
    text = q.query
    for iid, inst, res in results:
        if inst is None:
            errors.append({"instance_id": iid, "message": str(res)})
            continue
        insts.append(inst)
        text = res[0]
        for c in res[1]:
            chunks.append({**c, "instance_id": iid})
    chunks.sort(key=lambda c: -float(c["score"]))
    opts = q.raw_options.get("retrieval") if isinstance(q.raw_options, dict) else None
    cap = opts.get("max_num_results") if isinstance(opts, dict) else None
    return text, chunks[: int(cap or 10)], errors, insts


@endpoint
async def namespace_search(request: Request) -> Response:
    """Search several instances of a namespace; failures go to ``errors``."""
    svc = _svc(request)
    svc.require_namespace(_ns(request))
    body = await _json_body(request)
    q = _parse_search_body(body, chat=False)
    text, chunks, errors, _ = await _namespace_retrieve(svc, _ns(request), q)
    result: dict[str, Any] = {"search_query": text, "query_kind": "text", "chunks": chunks}
    if errors:
        result["errors"] = errors
    return envelope(result)


class _ChatRequest:
    def __init__(self, body: dict[str, Any]) -> None:
        self.model = body.get("model")
        if self.model is not None and not isinstance(self.model, str):
            raise bad_request("model", "must be a string")
        self.stream = body.get("stream", False)
        if not isinstance(self.stream, bool):
            raise bad_request("stream", "must be a boolean")
        mt = body.get("max_tokens", body.get("max_completion_tokens"))
        if mt is not None and (isinstance(mt, bool) or not isinstance(mt, int) or mt < 1):
            raise bad_request("max_tokens", f"must be an integer >= 1 (got {mt!r})")
        self.max_tokens: int | None = mt
        stop = body.get("stop")
        if isinstance(stop, str):
            stop = [stop]
        if stop is not None and (
            not isinstance(stop, list) or not all(isinstance(s, str) for s in stop) or len(stop) > 4
        ):
            raise bad_request("stop", "must be a string or a list of at most 4 strings")
        self.stop: list[str] | None = stop


def _chat_model(chat: _ChatRequest, inst: InstanceRecord | None) -> str:
    if chat.model:
        return str(chat.model)
    if inst is not None and inst.config.get("ai_search_model"):
        return str(inst.config["ai_search_model"])
    from aisearch_local.service import DEFAULT_MODEL

    return DEFAULT_MODEL


def _cache_context(
    svc: LocalService, insts: list[InstanceRecord], chat: _ChatRequest, model: str, opts_key: str
) -> str:
    versions = [(i.namespace, i.id, i.pk, svc.store.version(i.pk)) for i in insts]
    return json.dumps(
        [versions, model, chat.max_tokens, chat.stop, opts_key, svc.generator.name], sort_keys=True
    )


def _prompt_text(messages: list[dict[str, Any]]) -> str:
    return "\n".join(f"{m['role']}: {message_text(m.get('content'))}" for m in messages)


def _completion(
    gen: Generation, model: str, chunks: list[dict[str, Any]], errors: list[dict[str, str]] | None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": gen.text},
                "finish_reason": gen.finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": gen.prompt_tokens,
            "completion_tokens": gen.completion_tokens,
            "total_tokens": gen.prompt_tokens + gen.completion_tokens,
        },
        "chunks": chunks,
    }
    if errors is not None:
        out["errors"] = errors
    return out


def _sse(data: Any, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else dumps_safe(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


def _stream_chat(
    svc: LocalService,
    messages: list[dict[str, Any]],
    chunks: list[dict[str, Any]],
    errors: list[dict[str, str]] | None,
    chat: _ChatRequest,
    model: str,
    fault: Fault | None,
    cached: Generation | None,
    on_done: Callable[[Generation], None] | None,
) -> Iterator[bytes]:
    cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())

    def delta(
        content: str | None, finish: str | None = None, usage: dict[str, int] | None = None
    ) -> bytes:
        choice: dict[str, Any] = {
            "index": 0,
            "delta": {} if content is None else {"content": content},
        }
        if content is not None and finish is None:
            choice["finish_reason"] = None
        if finish is not None:
            choice["finish_reason"] = finish
        body: dict[str, Any] = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [choice],
        }
        if usage is not None:
            body["usage"] = usage
        return _sse(body)

    yield _sse(chunks, event="chunks")
    if errors:
        yield _sse(errors, event="errors")
    if cached is not None:
        pieces: Iterator[str | Generation] = iter([cached.text, cached])
    else:
        pieces = svc.generator.stream(
            messages, chunks, max_tokens=chat.max_tokens, stop=chat.stop, model=model
        )
    sent = 0
    for piece in pieces:
        if isinstance(piece, Generation):
            if on_done is not None:
                on_done(piece)
            usage = {
                "prompt_tokens": piece.prompt_tokens,
                "completion_tokens": piece.completion_tokens,
                "total_tokens": piece.prompt_tokens + piece.completion_tokens,
            }
            yield delta(None, piece.finish_reason, usage)
            break
        if not piece:
            continue
        yield delta(piece)
        sent += 1
        if fault is not None and fault.truncate_stream:
            return
    yield b"data: [DONE]\n\n"


async def _chat(
    request: Request,
    svc: LocalService,
    insts: list[InstanceRecord],
    q: _Query,
    chunks: list[dict[str, Any]],
    errors: list[dict[str, str]] | None,
    opts: ResolvedOptions,
    fault: Fault | None,
) -> Response:
    body = await _json_body(request)
    chat = _ChatRequest(body)
    model = _chat_model(chat, insts[0] if insts else None)
    messages = q.messages or []
    scope = "instance" if errors is None else json.dumps(q.raw_options.get("instance_ids"))
    context = _cache_context(svc, insts, chat, model, opts.cache_key() + scope)
    prompt = _prompt_text(messages)
    cached: Generation | None = None
    if opts.cache:
        hit = svc.cache.get(context, prompt, opts.cache_threshold)
        if hit is not None:
            cached, chunks = hit
    headers = {"cf-aig-cache-status": "HIT" if cached is not None else "MISS"} if opts.cache else {}

    def remember(gen: Generation) -> None:
        if opts.cache and cached is None and not errors:
            svc.cache.put(context, prompt, (gen, chunks))

    if chat.stream:
        gen_iter = _stream_chat(svc, messages, chunks, errors, chat, model, fault, cached, remember)
        return StreamingResponse(
            iterate_in_threadpool(gen_iter),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", **headers},
        )
    if cached is not None:
        gen = cached
    else:
        gen = await run_in_threadpool(
            svc.generator.generate,
            messages,
            chunks,
            max_tokens=chat.max_tokens,
            stop=chat.stop,
            model=model,
        )
        remember(gen)
    return SafeJSONResponse(_completion(gen, model, chunks, errors), headers=headers)


@endpoint
async def instance_chat(request: Request) -> Response:
    """RAG chat completion on one instance (not enveloped; SSE when ``stream``)."""
    svc = _svc(request)
    inst = _inst(request)
    body = await _json_body(request)
    _ChatRequest(body)
    q = _parse_search_body(body, chat=True)
    fault = await _apply_fault(svc, inst.namespace, inst.id)
    if fault is not None:
        err = _fault_error(fault)
        if err is not None:
            raise err
        if fault.malformed_body:
            return _malformed("chat")
    _text, chunks, opts = await run_in_threadpool(_search_one, svc, inst, q)
    return await _chat(request, svc, [inst], q, chunks, None, opts, fault)


@endpoint
async def namespace_chat(request: Request) -> Response:
    """RAG chat completion over several instances of a namespace."""
    svc = _svc(request)
    svc.require_namespace(_ns(request))
    body = await _json_body(request)
    _ChatRequest(body)
    q = _parse_search_body(body, chat=True)
    _text, chunks, errors, insts = await _namespace_retrieve(svc, _ns(request), q)
    opts = resolve_options(_strip_instance_ids(q.raw_options), insts[0].config if insts else {})
    return await _chat(request, svc, insts, q, chunks, errors, opts, None)


# -- legacy AutoRAG -----------------------------------------------------------------------------


def _legacy_options(body: dict[str, Any], inst: InstanceRecord) -> tuple[str, ResolvedOptions]:
    query = body.get("query")
    if not isinstance(query, str) or not query.strip():
        raise bad_request("query", "must be a non-empty string")
    retrieval: dict[str, Any] = {}
    if body.get("max_num_results") is not None:
        retrieval["max_num_results"] = body["max_num_results"]
    ranking = body.get("ranking_options")
    if ranking is not None:
        if not isinstance(ranking, dict):
            raise bad_request("ranking_options", "must be an object")
        if ranking.get("score_threshold") is not None:
            retrieval["match_threshold"] = ranking["score_threshold"]
    raw: dict[str, Any] = {"retrieval": retrieval}
    rerank = body.get("reranking")
    if rerank is not None:
        if not isinstance(rerank, dict):
            raise bad_request("reranking", "must be an object")
        raw["reranking"] = {
            k: v for k, v in rerank.items() if k in ("enabled", "model", "match_threshold")
        }
    if body.get("rewrite_query") is not None:
        raw["query_rewrite"] = {"enabled": body["rewrite_query"]}
    try:
        opts = resolve_options(raw, inst.config)
    except OptionsError as exc:
        # legacy field names in messages
        msg = str(exc).replace(
            "ai_search_options.retrieval.match_threshold", "ranking_options.score_threshold"
        )
        msg = msg.replace("ai_search_options.retrieval.", "").replace("ai_search_options.", "")
        raise APIError(400, 7001, msg) from exc
    flt = body.get("filters")
    if flt is not None:
        try:
            if isinstance(flt, dict) and "type" in flt:
                opts.predicate = compile_legacy_filter(flt)
            else:
                opts.predicate = compile_filter(flt)
        except FilterError as exc:
            raise APIError(400, 7001, str(exc)) from exc
        opts.filters = flt
    return query, opts


def _legacy_data(
    chunks: list[dict[str, Any]], svc: LocalService, inst: InstanceRecord
) -> list[dict[str, Any]]:
    data = []
    for c in chunks:
        item = c["item"]
        attrs = {
            "modified_date": item.get("timestamp"),
            "folder": item_attributes(item["key"], None, {})["folder"],
            **item.get("metadata", {}),
        }
        stored = svc.store.get_item_by_key(inst, item["key"])
        data.append(
            {
                "file_id": stored["id"] if stored else c["id"],
                "filename": item["key"],
                "score": c["score"],
                "attributes": attrs,
                "content": [{"id": c["id"], "type": "text", "text": c["text"]}],
            }
        )
    return data


def _legacy_run(
    svc: LocalService, inst: InstanceRecord, query: str, opts: ResolvedOptions
) -> tuple[str, list[dict[str, Any]]]:
    svc.check_embedder(inst)
    text = query
    if opts.rewrite:
        text = rewrite_query([{"role": "user", "content": query}]) or query
    return text, svc.searcher.search(inst, text, opts)


async def _legacy_common(
    request: Request,
) -> tuple[
    LocalService, InstanceRecord, dict[str, Any], str, list[dict[str, Any]], Response | None
]:
    svc = _svc(request)
    inst = svc.require_instance("default", str(request.path_params["rag_id"]))
    body = await _json_body(request)
    query, opts = _legacy_options(body, inst)
    fault = await _apply_fault(svc, inst.namespace, inst.id)
    if fault is not None:
        err = _fault_error(fault)
        if err is not None:
            raise err
        if fault.malformed_body:
            return svc, inst, body, query, [], _malformed("search")
    text, chunks = await run_in_threadpool(_legacy_run, svc, inst, query, opts)
    return svc, inst, body, text, chunks, None


@endpoint
async def legacy_search(request: Request) -> Response:
    """Legacy ``/autorag/rags/{id}/search``."""
    svc, inst, _body, text, chunks, early = await _legacy_common(request)
    if early is not None:
        return early
    result = {
        "object": "vector_store.search_results.page",
        "search_query": text,
        "data": _legacy_data(chunks, svc, inst),
        "has_more": False,
        "next_page": None,
    }
    return envelope(result)


@endpoint
async def legacy_ai_search(request: Request) -> Response:
    """Legacy ``/autorag/rags/{id}/ai-search`` (search + answer; ``stream`` supported)."""
    svc, inst, body, text, chunks, early = await _legacy_common(request)
    if early is not None:
        return early
    chat = _ChatRequest(
        {k: v for k, v in body.items() if k in ("model", "stream", "max_tokens", "stop")}
    )
    model = _chat_model(chat, inst)
    messages: list[dict[str, Any]] = []
    sp = body.get("system_prompt")
    if sp is not None:
        if not isinstance(sp, str):
            raise bad_request("system_prompt", "must be a string")
        messages.append({"role": "system", "content": sp})
    messages.append({"role": "user", "content": body["query"]})
    if chat.stream:

        def legacy_stream() -> Iterator[bytes]:
            for piece in svc.generator.stream(
                messages, chunks, max_tokens=chat.max_tokens, stop=chat.stop, model=model
            ):
                if isinstance(piece, Generation):
                    break
                if piece:
                    yield _sse({"response": piece, "p": "local"})
            yield b"data: [DONE]\n\n"

        return StreamingResponse(
            iterate_in_threadpool(legacy_stream()),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache"},
        )
    gen = await run_in_threadpool(
        svc.generator.generate,
        messages,
        chunks,
        max_tokens=chat.max_tokens,
        stop=chat.stop,
        model=model,
    )
    result = {
        "object": "vector_store.search_results.page",
        "search_query": text,
        "response": gen.text,
        "data": _legacy_data(chunks, svc, inst),
        "has_more": False,
        "next_page": None,
    }
    return envelope(result)


# -- local-only routes --------------------------------------------------------------------------


@endpoint
async def fault_put(request: Request) -> Response:
    """Install a fault on an instance (local only)."""
    svc = _svc(request)
    raw = await request.body()
    body = parse_json_object(raw) if raw.strip() else {}
    allowed = set(Fault.__dataclass_fields__)
    unknown = set(body) - allowed
    if unknown:
        raise bad_request(
            sorted(unknown)[0], f"unknown fault field; allowed: {', '.join(sorted(allowed))}"
        )
    lat = body.get("latency_ms", 0)
    if isinstance(lat, bool) or not isinstance(lat, int) or not 0 <= lat <= 600_000:
        raise bad_request("latency_ms", "must be an integer between 0 and 600000")
    status = body.get("status")
    if status is not None and (
        isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599
    ):
        raise bad_request("status", "must be an HTTP error status between 400 and 599")
    for name in ("code", "retry_after", "times"):
        v = body.get(name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            raise bad_request(name, "must be a non-negative integer")
    for name in ("truncate_stream", "malformed_body"):
        if name in body and not isinstance(body[name], bool):
            raise bad_request(name, "must be a boolean")
    fault = Fault(**body)
    ns, iid = str(request.path_params["ns"]), str(request.path_params["instance_id"])
    svc.set_fault(ns, iid, fault)
    return envelope({"namespace": ns, "instance_id": iid, **fault.as_dict()})


@endpoint
async def fault_delete(request: Request) -> Response:
    """Remove the fault of an instance (local only)."""
    ns, iid = str(request.path_params["ns"]), str(request.path_params["instance_id"])
    _svc(request).clear_fault(ns, iid)
    return envelope({"namespace": ns, "instance_id": iid})


@endpoint
async def faults_clear(request: Request) -> Response:
    """Remove every fault (local only)."""
    _svc(request).clear_faults()
    return envelope({})


async def health(request: Request) -> Response:
    """Liveness probe (no auth)."""
    svc = _svc(request)
    return envelope(
        {"status": "ok", "embedder": svc.embedder.name, "generator": svc.generator.name}
    )


# -- application --------------------------------------------------------------------------------


def _instance_routes(prefix: str) -> list[Route]:
    i = prefix + "/instances/{instance_id}"
    return [
        Route(prefix + "/instances", instances_list, methods=["GET"]),
        Route(prefix + "/instances", instances_create, methods=["POST"]),
        Route(i, instance_get, methods=["GET"]),
        Route(i, instance_update, methods=["PUT", "PATCH"]),
        Route(i, instance_delete, methods=["DELETE"]),
        Route(i + "/stats", instance_stats, methods=["GET"]),
        Route(i + "/search", instance_search, methods=["POST"]),
        Route(i + "/chat/completions", instance_chat, methods=["POST"]),
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
        Route("/client/v4/_local/health", health, methods=["GET"]),
        Route("/client/v4/_local/faults", faults_clear, methods=["DELETE"]),
        Route("/client/v4/_local/faults/{ns}/{instance_id}", fault_put, methods=["PUT"]),
        Route("/client/v4/_local/faults/{ns}/{instance_id}", fault_delete, methods=["DELETE"]),
        Route(base + "/namespaces", namespaces_list, methods=["GET"]),
        Route(base + "/namespaces", namespaces_create, methods=["POST"]),
        Route(ns, namespace_get, methods=["GET"]),
        Route(ns, namespace_update, methods=["PUT"]),
        Route(ns, namespace_delete, methods=["DELETE"]),
        Route(ns + "/search", namespace_search, methods=["POST"]),
        Route(ns + "/chat/completions", namespace_chat, methods=["POST"]),
        *_instance_routes(base),
        *_instance_routes(ns),
        Route(ACCOUNT + "/autorag/rags/{rag_id}/search", legacy_search, methods=["POST"]),
        Route(ACCOUNT + "/autorag/rags/{rag_id}/ai-search", legacy_ai_search, methods=["POST"]),
    ]


async def _http_error(request: Request, exc: Exception) -> Response:
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


async def _server_error(request: Request, exc: Exception) -> Response:
    logger.error("unhandled error on %s: %r", request.url.path, exc)
    return error_response(
        APIError(500, 7000, "Internal error in aisearch-local (see the server log)")
    )


def create_app(
    data_dir: Path | str,
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
        data_dir: Directory of the SQLite database (created when missing).
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
        The application; ``app.state.service`` is the :class:`LocalService`.
    """
    svc = service or LocalService(data_dir, embedder=embedder, generator=generator)

    app = Starlette(
        routes=_routes(),
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )
    # Cloudflare's API never redirects; Starlette's default would answer ``.../items/%2e%2e/``
    # with a 307 to ``.../items/..`` (before auth and the id checks), and a client that follows
    # redirects would then act on the parent resource.
    app.router.redirect_slashes = False
    app.state.service = svc
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
