"""Raw-HTTP helpers for the aisearch_local server tests (httpx, no client package)."""

from __future__ import annotations

import json
from typing import Any

import httpx


def upload(
    http: httpx.Client,
    instance: str,
    key: str,
    text: str | bytes,
    metadata: dict[str, Any] | None = None,
    *,
    namespace: str | None = None,
) -> dict[str, Any]:
    """Upload one item through the multipart items API and return the item."""
    base = f"/ai-search/namespaces/{namespace}" if namespace else "/ai-search"
    data = text.encode() if isinstance(text, str) else text
    form = {"wait_for_completion": "true"}
    if metadata is not None:
        form["metadata"] = json.dumps(metadata)
    r = http.post(f"{base}/instances/{instance}/items", files={"file": (key, data)}, data=form)
    assert r.status_code == 200, r.text
    item: dict[str, Any] = r.json()["result"]
    return item


def search(
    http: httpx.Client,
    instance: str,
    query: str | None = None,
    *,
    messages: list[dict[str, Any]] | None = None,
    namespace: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    """POST a search; ``options`` are ai_search_options sections or retrieval fields."""
    body: dict[str, Any] = {}
    if query is not None:
        body["query"] = query
    if messages is not None:
        body["messages"] = messages
    ai: dict[str, Any] = {}
    retrieval = {
        k: v for k, v in options.items() if k not in ("reranking", "query_rewrite", "cache")
    }
    if retrieval:
        ai["retrieval"] = retrieval
    for section in ("reranking", "query_rewrite", "cache"):
        if section in options:
            ai[section] = options[section]
    if ai:
        body["ai_search_options"] = ai
    base = f"/ai-search/namespaces/{namespace}" if namespace else "/ai-search"
    r = http.post(f"{base}/instances/{instance}/search", json=body)
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()["result"]
    return result


def assert_error(response: httpx.Response, status: int, code: int, *needles: str) -> None:
    """Check a Cloudflare error envelope."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False
    assert body["result"] is None
    assert body["errors"][0]["code"] == code, body
    message = body["errors"][0]["message"]
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
