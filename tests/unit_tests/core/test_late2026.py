"""Late-2026 management API in the client (issue #14 sections 1-2), sync and async."""

from __future__ import annotations

import httpx

from tests.unit_tests.core.payloads import ACCOUNT, BASE

ROOT = f"{BASE}/accounts/{ACCOUNT}/ai-search/namespaces"


def fixed(payload, status=200):
    return lambda request: httpx.Response(status, json=payload)


def test_purge_cache_posts_without_a_body_on_the_namespaced_path(harness):
    h = harness(fixed({"success": True}))
    assert h.call("purge_cache", "docs") is None
    assert (h.last.method, str(h.last.url)) == (
        "POST",
        f"{ROOT}/default/instances/docs/purge_cache",
    )
    assert h.last.content == b""
    h.call("purge_cache", "docs", namespace="team-a")
    assert str(h.last.url) == f"{ROOT}/team-a/instances/docs/purge_cache"
