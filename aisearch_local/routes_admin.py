"""Admin routes: namespaces, instances, items, jobs, and the local-only fault and health routes.

Handlers only: parse the path, query string and body, call
:class:`~aisearch_local.service.LocalService`, answer with the envelope.
"""

from __future__ import annotations

import os
import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from aisearch_local._http import (
    endpoint,
    envelope,
    instance_of,
    item_of,
    job_of,
    json_body,
    namespace_of,
    optional_json_body,
    page_args,
    paged,
    paged_list,
    service,
)
from aisearch_local.errors import APIError, bad_request, not_found
from aisearch_local.filters import compile_filter
from aisearch_local.ingest import MAX_FILE_BYTES, size_problem
from aisearch_local.records import item_attributes
from aisearch_local.service import Fault, uses_ocr
from aisearch_local.validation import (
    NAMESPACE_RE,
    instance_hostnames,
    metadata_warnings,
    parse_json,
    validate_item_metadata,
    validate_key,
)

_ITEM_STATUSES = ("queued", "running", "completed", "error", "skipped", "outdated")
_MAX_OFFSET = 2**63 - 1  # SQLite INTEGER


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
    rows = service(request).namespaces()
    term = request.query_params.get("search")
    if term:
        t = term.lower()
        rows = [
            r for r in rows if t in r["name"].lower() or t in (r.get("description") or "").lower()
        ]
    return paged_list(request, rows, max_per_page=100)


@endpoint
async def namespaces_create(request: Request) -> Response:
    """Create a namespace."""
    body = await json_body(request)
    name = body.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 64 or not NAMESPACE_RE.fullmatch(name):
        raise bad_request(
            "name", "must be 1 to 64 lowercase letters, digits, '_' and single '-' between them"
        )
    desc, extra = _validate_namespace_body(body)
    return envelope(service(request).create_namespace(name, desc, extra))


@endpoint
async def namespace_get(request: Request) -> Response:
    """Read a namespace."""
    return envelope(service(request).require_namespace(namespace_of(request)))


@endpoint
async def namespace_update(request: Request) -> Response:
    """Update a namespace's description."""
    svc, ns = service(request), namespace_of(request)
    svc.require_namespace(ns)
    body = await json_body(request)
    desc, extra = _validate_namespace_body(body)
    return envelope(svc.update_namespace(ns, desc, extra))


@endpoint
async def namespace_delete(request: Request) -> Response:
    """Delete an empty namespace."""
    ns = namespace_of(request)
    return envelope(service(request).delete_namespace(ns))


# -- instances --------------------------------------------------------------------------------


@endpoint
async def instances_list(request: Request) -> Response:
    """List the instances of a namespace."""
    svc = service(request)
    ns = request.path_params.get("ns") or request.query_params.get("namespace") or "default"
    if len(ns) > 64 or not NAMESPACE_RE.fullmatch(ns):
        raise bad_request("namespace", f"must be a namespace name (got {ns[:80]!r})")
    svc.require_namespace(ns)
    q = request.query_params
    term = q.get("search")
    if term is not None and len(term) > 64:
        raise bad_request("search", f"must be at most 64 characters (got {len(term)})")
    hostname = q.get("hostname")
    if hostname is not None and not 1 <= len(hostname) <= 253:
        raise bad_request("hostname", f"must be 1 to 253 characters (got {len(hostname)})")
    if q.get("order_by", "created_at") != "created_at":
        raise bad_request("order_by", f"must be created_at (got {q['order_by'][:80]!r})")
    direction = q.get("order_by_direction", "asc")
    if direction not in ("asc", "desc"):
        raise bad_request("order_by_direction", f"must be asc or desc (got {direction[:80]!r})")
    insts = svc.instances(ns)
    if hostname is not None:
        insts = [i for i in insts if hostname.lower() in instance_hostnames(i.config)]
    rows = [svc.instance_dict(i) for i in insts]
    if term:
        rows = [r for r in rows if term.lower() in r["id"].lower()]
    if direction == "desc":
        rows.reverse()
    return paged_list(request, rows, max_per_page=100)


@endpoint
async def instances_create(request: Request) -> Response:
    """Create an instance (201)."""
    svc = service(request)
    body = await json_body(request)
    inst = svc.create_instance(namespace_of(request), body)
    return envelope(svc.instance_dict(inst), status=201)


@endpoint
async def instance_get(request: Request) -> Response:
    """Read an instance."""
    return envelope(service(request).instance_dict(instance_of(request)))


@endpoint
async def instance_update(request: Request) -> Response:
    """Update an instance's configuration."""
    svc = service(request)
    inst = instance_of(request)
    body = await json_body(request)
    updated = await run_in_threadpool(svc.update_instance, inst, body)
    return envelope(svc.instance_dict(updated))


@endpoint
async def instance_delete(request: Request) -> Response:
    """Delete an instance and all its indexed data."""
    svc = service(request)
    inst = instance_of(request)
    out = svc.instance_dict(inst)
    await run_in_threadpool(svc.delete_instance, inst)
    return envelope(out)


@endpoint
async def instance_purge_cache(request: Request) -> Response:
    """Orphan every similarity-cache entry of an instance (no body; namespaced path only)."""
    inst = instance_of(request)
    await optional_json_body(request)  # no body is expected; a non-object one is refused
    service(request).purge_cache(inst)
    return envelope(None)


@endpoint
async def instance_stats(request: Request) -> Response:
    """Indexing statistics of an instance."""
    inst = instance_of(request)
    st = service(request).stats(inst)
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
    svc = service(request)
    inst = instance_of(request)
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
        raise APIError(413, 7001, f"file: larger than the {MAX_FILE_BYTES} byte (10 MiB) limit")
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
    problem = size_problem(key, len(data), use_ocr=uses_ocr(inst.config))
    if problem is not None:
        raise APIError(413, 7001, f"file: {problem}")
    metadata: dict[str, Any] = {}
    if raw_meta not in (None, ""):
        parsed = parse_json(str(raw_meta), "metadata")
        metadata = validate_item_metadata(parsed)
    item = await run_in_threadpool(svc.index_document, inst, key=key, data=data, metadata=metadata)
    out = _public_item(item)
    warnings = metadata_warnings(metadata, inst.config)
    if warnings:
        out["warnings"] = warnings
    return envelope(out)


@endpoint
async def items_create_or_update(request: Request) -> Response:
    """Re-index an item by key (from its stored bytes or the instance's source folder)."""
    svc = service(request)
    inst = instance_of(request)
    body = await json_body(request)
    key = validate_key(body.get("key"))
    _check_index_body(body)
    item = await run_in_threadpool(svc.reindex, inst, key)
    return envelope(_public_item(item))


def _check_index_body(body: dict[str, Any]) -> None:
    """Check ``next_action`` (INDEX or null) and ``wait_for_completion`` (boolean) of a body."""
    if body.get("next_action", "INDEX") not in ("INDEX", None):
        raise bad_request("next_action", f"must be INDEX (got {body['next_action']!r:.80})")
    wait = body.get("wait_for_completion")
    if wait is not None and not isinstance(wait, bool):
        raise bad_request("wait_for_completion", f"must be a boolean (got {wait!r:.80})")


@endpoint
async def items_list(request: Request) -> Response:
    """List items (``metadata_filter``, ``status``, ``key``, ``search``, paging)."""
    svc = service(request)
    inst = instance_of(request)
    q = request.query_params
    page, per_page = page_args(request, max_per_page=50, default_per_page=20)
    rows = svc.items(inst)
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
        pred = compile_filter(flt, path="metadata_filter")
        rows = [
            r for r in rows if pred(item_attributes(r["key"], r.get("timestamp"), r["metadata"]))
        ]
    sort_by = q.get("sort_by")
    if sort_by == "status":
        rows.sort(key=lambda r: r["status"])
    elif sort_by == "modified_at":
        # newest first; an item written in the same millisecond as another is the later row
        rows.sort(key=lambda r: (r["last_seen_at"], r["_pk"]), reverse=True)
    elif sort_by is not None:
        raise bad_request("sort_by", "must be status or modified_at")
    return paged([_public_item(r) for r in rows], page, per_page)


@endpoint
async def item_get(request: Request) -> Response:
    """Read an item."""
    return envelope(_public_item(item_of(request)[1]))


@endpoint
async def item_delete(request: Request) -> Response:
    """Delete an item and its chunks."""
    inst, item = item_of(request)
    await run_in_threadpool(service(request).delete_item, inst, item)
    return envelope({"key": item["key"]})


@endpoint
async def item_sync(request: Request) -> Response:
    """Re-index one item (``PATCH {next_action: "INDEX"}``)."""
    inst, item = item_of(request)
    _check_index_body(await optional_json_body(request))
    out = await run_in_threadpool(service(request).reindex, inst, item["key"])
    return envelope(_public_item(out))


@endpoint
async def item_chunks(request: Request) -> Response:
    """List an item's chunks (``limit`` 1-100, ``offset``)."""
    inst, item = item_of(request)
    try:
        limit = int(request.query_params.get("limit", "20"))
        offset = int(request.query_params.get("offset", "0"))
    except ValueError:
        raise bad_request("limit", "limit and offset must be integers") from None
    if not 1 <= limit <= 100:
        raise bad_request("limit", f"must be an integer between 1 and 100 (got {limit})")
    if not 0 <= offset <= _MAX_OFFSET:
        raise bad_request("offset", f"must be an integer between 0 and {_MAX_OFFSET}")
    rows = service(request).item_chunks(inst, item, limit, offset)
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
    _, item = item_of(request)
    return Response(service(request).item_data(item), media_type="application/octet-stream")


# -- jobs -------------------------------------------------------------------------------------


def _public_job(job: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in job.items() if not k.startswith("_")}


@endpoint
async def jobs_create(request: Request) -> Response:
    """Start a sync job: re-sync the instance's source folder (synchronously)."""
    svc = service(request)
    inst = instance_of(request)
    body = await optional_json_body(request)
    desc = body.get("description")
    if desc is not None and (not isinstance(desc, str) or len(desc) > 1024):
        raise bad_request("description", "must be a string of at most 1024 characters")
    job = await run_in_threadpool(svc.run_sync_job, inst, desc)
    return envelope(_public_job(job))


@endpoint
async def jobs_list(request: Request) -> Response:
    """List sync jobs."""
    jobs = service(request).jobs(instance_of(request))
    return paged_list(request, [_public_job(j) for j in jobs], max_per_page=100)


@endpoint
async def job_get(request: Request) -> Response:
    """Read a job."""
    return envelope(_public_job(job_of(request)))


@endpoint
async def job_logs(request: Request) -> Response:
    """A job's log lines."""
    job = job_of(request)
    logs = [
        {
            "id": i + 1,
            "created_at": time.time(),
            "message": line["message"],
            "message_type": line.get("message_type", 1),
        }
        for i, line in enumerate(job["_log"])
    ]
    return paged_list(request, logs, max_per_page=100)


@endpoint
async def job_update(request: Request) -> Response:
    """Cancel a job (jobs run synchronously here, so they are already ended)."""
    inst = instance_of(request)
    body = await json_body(request)
    if body.get("action") != "cancel":
        raise bad_request("action", "must be cancel")
    return envelope(_public_job(job_of(request, inst)))


# -- local-only routes --------------------------------------------------------------------------


@endpoint
async def fault_put(request: Request) -> Response:
    """Install a fault on an instance (local only)."""
    svc = service(request)
    body = await optional_json_body(request)
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
    return envelope(_fault_wire(ns, iid, fault))


def _fault_wire(ns: str, iid: str, fault: Fault) -> dict[str, Any]:
    return {"namespace": ns, "instance_id": iid, **fault.as_dict()}


@endpoint
async def faults_list(request: Request) -> Response:
    """List every installed fault (local only); ``times`` is what is left of it."""
    return envelope([_fault_wire(*entry) for entry in service(request).list_faults()])


@endpoint
async def fault_get(request: Request) -> Response:
    """Return the fault of an instance (local only); 404 when none is installed."""
    ns, iid = str(request.path_params["ns"]), str(request.path_params["instance_id"])
    fault = service(request).fault_of(ns, iid)
    if fault is None:
        raise not_found(f"no fault is installed on {iid!r} in namespace {ns!r}")
    return envelope(_fault_wire(ns, iid, fault))


@endpoint
async def fault_delete(request: Request) -> Response:
    """Remove the fault of an instance (local only)."""
    ns, iid = str(request.path_params["ns"]), str(request.path_params["instance_id"])
    service(request).clear_fault(ns, iid)
    return envelope({"namespace": ns, "instance_id": iid})


@endpoint
async def faults_clear(request: Request) -> Response:
    """Remove every fault (local only)."""
    service(request).clear_faults()
    return envelope({})


async def health(request: Request) -> Response:
    """Liveness probe (no auth).

    ``indexing`` counts the in-memory indexes being built now (keyword indexes, vector column
    copies; searches are answered meanwhile): 0 is the steady state. ``worker_pid``, with
    ``serve --workers N`` only, is the process id of the worker that answered.
    """
    svc = service(request)
    answer = {
        "status": "ok",
        "embedder": svc.embedder.name,
        "generator": svc.generator.name,
        # off the event loop: it waits for the vector tables' lock (held while one loads)
        "indexing": await run_in_threadpool(svc.store.indexing),
    }
    if svc.shared is not None:  # ``serve --workers N``: which worker answered (docs/workers.md)
        answer["worker_pid"] = os.getpid()
    return envelope(answer)
