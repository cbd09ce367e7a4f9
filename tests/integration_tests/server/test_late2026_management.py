"""Late-2026 management API (issue #14 sections 1-2) over real HTTP: purge_cache, limits,
instance types, list filters, error codes and the drift rows."""

from __future__ import annotations

import uuid

import pytest

from tests.integration_tests.server._helpers import assert_error, upload

pytestmark = pytest.mark.integration


def _uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# --------------------------------------------------------------------------- purge_cache


def test_purge_cache_orphans_every_cached_answer(server_http, make_instance):
    iid = make_instance()
    upload(server_http, iid, "pour.md", "A pour-over brew takes three to four minutes to drain.")
    chat = f"/ai-search/namespaces/default/instances/{iid}/chat/completions"
    prompt = {"messages": [{"role": "user", "content": "how long does a pour-over brew take"}]}
    assert server_http.post(chat, json=prompt).headers["cf-aig-cache-status"] == "MISS"
    assert server_http.post(chat, json=prompt).headers["cf-aig-cache-status"] == "HIT"

    r = server_http.post(f"/ai-search/namespaces/default/instances/{iid}/purge_cache")
    assert r.status_code == 200, r.text
    assert r.json()["success"] is True

    assert server_http.post(chat, json=prompt).headers["cf-aig-cache-status"] == "MISS"
    assert server_http.post(chat, json=prompt).headers["cf-aig-cache-status"] == "HIT"


def test_purge_cache_is_namespaced_only_and_needs_an_instance(server_http, make_instance):
    iid = make_instance()
    assert_error(server_http.post(f"/ai-search/instances/{iid}/purge_cache"), 404, 7003)
    assert_error(
        server_http.post("/ai-search/namespaces/default/instances/nope-x/purge_cache"), 404, 7002
    )
    assert_error(
        server_http.get(f"/ai-search/namespaces/default/instances/{iid}/purge_cache"), 405, 7003
    )


# --------------------------------------------------------------------------- error codes


def test_sync_in_cooldown_is_429_7020_with_an_empty_result(
    server_http, make_instance, local_server, monkeypatch
):
    iid = make_instance()
    monkeypatch.setattr(local_server.service, "sync_cooldown_s", 3600.0)
    jobs = f"/ai-search/namespaces/default/instances/{iid}/jobs"
    assert server_http.post(jobs, json={}).status_code == 200
    r = server_http.post(jobs, json={})
    assert r.status_code == 429, r.text
    assert r.json() == {
        "success": False,
        "errors": [{"code": 7020, "message": "sync_in_cooldown"}],
        "messages": [],
        "result": {},
    }
    assert 1 <= int(r.headers["retry-after"]) <= 3600
    other = make_instance()  # the cooldown is per instance
    assert server_http.post(f"/ai-search/instances/{other}/jobs", json={}).status_code == 200


# --------------------------------------------------------------------------- list filters


def test_instance_list_filters(server_http):
    ns = _uid("lf")
    assert server_http.post("/ai-search/namespaces", json={"name": ns}).status_code == 200
    base = f"/ai-search/namespaces/{ns}/instances"
    made = []
    for iid, cfg in (
        ("alpha-docs", {"type": "web-crawler", "source": "https://Docs.Example.com/start"}),
        ("beta-docs", {}),
        ("gamma", {"type": "web-crawler", "source": "https://blog.example.com"}),
    ):
        assert server_http.post(base, json={"id": iid, **cfg}).status_code == 201
        made.append(iid)

    def ids(**params):
        r = server_http.get(base, params=params)
        assert r.status_code == 200, r.text
        return [i["id"] for i in r.json()["result"]]

    assert ids() == made
    assert ids(search="DOCS") == ["alpha-docs", "beta-docs"]
    assert ids(hostname="docs.example.COM") == ["alpha-docs"]
    assert ids(hostname="nowhere.example.com") == []
    assert ids(order_by="created_at", order_by_direction="desc") == made[::-1]
    assert_error(server_http.get(base, params={"search": "x" * 65}), 400, 7001, "search", "64")
    assert_error(server_http.get(base, params={"hostname": "h" * 254}), 400, 7001, "hostname")
    assert_error(server_http.get(base, params={"order_by": "name"}), 400, 7001, "order_by")
    assert_error(
        server_http.get(base, params={"order_by_direction": "up"}), 400, 7001, "order_by_direction"
    )
    for iid in made:
        server_http.delete(f"{base}/{iid}")
    server_http.delete(f"/ai-search/namespaces/{ns}")
