"""The local-only bulk items route: ``POST /client/v4/_local/bulk/{ns}/{instance_id}/items``.

Cloudflare's items API takes one multipart file per request; this server also takes up to
1,000 items in one JSON request (``{"items": [{"key", "text" | "data", "metadata"}]}``), for
``aisearch-local ingest --url`` and for tests that load a corpus. It lives under
``/client/v4/_local/`` because the real API has no such route. The logic is
:mod:`aisearch_local.bulk`.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from aisearch_local._http import endpoint, envelope, instance_of, json_body, service
from aisearch_local.bulk import ingest_entries, parse_bulk_body

__all__ = ["items_bulk"]


def _public_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if not k.startswith("_") and k != "timestamp"}


@endpoint
async def items_bulk(request: Request) -> Response:
    """Upload up to 1,000 items in one request (local only; not a Cloudflare route).

    Body: ``{"items": [{"key": "a.md", "text": "..." | "data": "<base64>", "metadata": {}}]}``,
    at most 1,000 items and 32 MiB of document bytes. The answer's ``result.items`` holds one
    result per item, in order: ``{"index", "key", "success": true, "result": <item>}`` or
    ``{"index", "key", "success": false, "errors": [{"code": 7001, "message"}]}`` for an item
    refused by the items API's checks (nothing is stored for it). An item whose text cannot be
    extracted is stored with status ``error``, as an upload would be. Every item answered with
    ``success: true`` was committed before the answer.
    """
    svc = service(request)
    inst = instance_of(request)
    svc.check_embedder(inst)
    body = await json_body(request)
    entries, refused = await run_in_threadpool(parse_bulk_body, body, inst)
    items = await run_in_threadpool(ingest_entries, svc, inst, entries) if entries else []
    results: list[dict[str, Any]] = list(refused)
    for entry, item in zip(entries, items, strict=True):
        out = _public_item(item)
        if entry.warnings:
            out["warnings"] = entry.warnings
        results.append({"index": entry.index, "key": entry.key, "success": True, "result": out})
    results.sort(key=lambda r: int(r["index"]))
    counts = {"completed": 0, "error": 0, "refused": len(refused)}
    for item in items:
        counts["completed" if item["status"] == "completed" else "error"] += 1
    return envelope({"items": results, "counts": counts})
