"""Every error envelope: auth, bounds (400 / 7001), unknown objects (404 / 7002), routes (7003)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration_tests.server._helpers import assert_error

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def empty_instance(make_instance) -> str:
    return make_instance()


def test_missing_credentials(local_server, docs_instance):
    r = httpx.post(
        f"{local_server.account_url}/ai-search/instances/{docs_instance}/search",
        json={"query": "x"},
    )
    assert_error(r, 401, 1001, "Authorization")


@pytest.mark.parametrize("header", ["Token abc", "Bearer", "Bearer two words", "abc"])
def test_malformed_authorization(local_server, docs_instance, header):
    r = httpx.post(
        f"{local_server.account_url}/ai-search/instances/{docs_instance}/search",
        json={"query": "x"},
        headers={"Authorization": header},
    )
    assert_error(r, 400, 6003, "Invalid request headers")
    assert r.json()["errors"][0]["error_chain"][0]["code"] == 6111


def test_wrong_token(local_server, docs_instance):
    r = httpx.post(
        f"{local_server.account_url}/ai-search/instances/{docs_instance}/search",
        json={"query": "x"},
        headers={"Authorization": "Bearer not-the-token"},
    )
    assert_error(r, 403, 10000, "Authentication error")
    assert "not-the-token" not in r.text


def test_global_api_key_headers(local_server, docs_instance):
    url = f"{local_server.account_url}/ai-search/instances/{docs_instance}/search"
    ok = httpx.post(
        url,
        json={"query": "espresso"},
        headers={"X-Auth-Email": "me@example.com", "X-Auth-Key": local_server.token},
    )
    assert ok.status_code == 200
    wrong = httpx.post(
        url, json={"query": "x"}, headers={"X-Auth-Email": "me@example.com", "X-Auth-Key": "nope"}
    )
    assert_error(wrong, 403, 10000)
    no_email = httpx.post(url, json={"query": "x"}, headers={"X-Auth-Key": local_server.token})
    assert_error(no_email, 400, 6003)


def test_local_health_needs_no_auth(local_server):
    r = httpx.get(f"{local_server.base_url}/_local/health")
    assert r.status_code == 200 and r.json()["result"]["status"] == "ok"
    assert r.json()["result"]["indexing"] == 0  # no in-memory index being built


def test_health_does_not_wait_for_the_index_lock(local_server):
    store = local_server.service.store
    with store._vlock:  # held as while a table loads at start (seconds at 1M rows)
        health = httpx.get(f"{local_server.base_url}/_local/health", timeout=10)
        assert health.status_code == 200  # Store.indexing() reads the tables without it
        other = httpx.get(f"{local_server.base_url}/_local/openapi.json", timeout=5)
        assert other.status_code == 200  # the event loop is free


def _options(options: Any) -> dict[str, Any]:
    """A search body for ``x`` with these ``ai_search_options``."""
    return {"query": "x", "ai_search_options": options}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "query"),
        ({"query": ""}, "query"),
        ({"query": 5}, "query"),
        ({"query": "x", "messages": [{"role": "user", "content": "x"}]}, "query"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages"),
        ({"query": "x", "ai_search_options": []}, "ai_search_options"),
        (_options({"retrieval": {"max_num_results": 0}}), "max_num_results"),
        (_options({"retrieval": {"max_num_results": 51}}), "max_num_results"),
        (_options({"retrieval": {"max_num_results": "5"}}), "max_num_results"),
        (_options({"retrieval": {"match_threshold": -0.1}}), "match_threshold"),
        (_options({"retrieval": {"match_threshold": 1.5}}), "match_threshold"),
        (_options({"retrieval": {"context_expansion": 4}}), "context_expansion"),
        (_options({"retrieval": {"retrieval_type": "semantic"}}), "retrieval_type"),
        (_options({"retrieval": {"fusion_method": "sum"}}), "fusion_method"),
        (_options({"retrieval": {"keyword_match_mode": "xor"}}), "keyword_match_mode"),
        (_options({"retrieval": {"boost_by": [{"field": f"f{i}"} for i in range(4)]}}), "boost_by"),
        (
            _options({"retrieval": {"boost_by": [{"field": "timestamp", "direction": "up"}]}}),
            "direction",
        ),
        (_options({"retrieval": {"filters": {"$or": [{"a": 1}]}}}), "filters"),
        (_options({"retrieval": {"filters": {"folder": {"$regex": "a"}}}}), "filters.folder"),
        (_options({"retrieval": {"filters": {"folder": {"$in": "a"}}}}), "$in"),
        (_options({"reranking": {"match_threshold": 2}}), "reranking.match_threshold"),
        (_options({"reranking": {"enabled": "yes"}}), "reranking.enabled"),
        (_options({"cache": {"cache_threshold": "bogus"}}), "cache_threshold"),
        (_options({"custom_metadata": {"a": 1, "b": 2, "c": 3}}), "custom_metadata"),
    ],
)
def test_search_bounds(server_http, empty_instance, body, field):
    r = server_http.post(f"/ai-search/instances/{empty_instance}/search", json=body)
    assert_error(r, 400, 7001, field)


def _search_raw(http: httpx.Client, instance: str, content: bytes) -> httpx.Response:
    """POST raw bytes as a JSON search body."""
    return http.post(
        f"/ai-search/instances/{instance}/search",
        content=content,
        headers={"content-type": "application/json"},
    )


def test_invalid_json_body(server_http, empty_instance):
    r = _search_raw(server_http, empty_instance, b"{not json")
    assert_error(r, 400, 7001, "request body")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, "max_tokens"),
        ({"messages": [{"role": "user", "content": "x"}], "stream": "yes"}, "stream"),
        ({"messages": [{"role": "user", "content": "x"}], "stop": [1]}, "stop"),
        ({"query": "x"}, "messages"),
    ],
)
def test_chat_bounds(server_http, empty_instance, body, field):
    r = server_http.post(f"/ai-search/instances/{empty_instance}/chat/completions", json=body)
    assert_error(r, 400, 7001, field)


@pytest.mark.parametrize(
    ("ids", "needle"),
    [
        (None, "instance_ids"),
        ([], "instance_ids"),
        ([""], "instance_ids"),
    ],
)
def test_namespace_instance_ids_bounds(server_http, ids, needle):
    opts = {} if ids is None else {"instance_ids": ids}
    r = server_http.post(
        "/ai-search/namespaces/default/search", json={"query": "x", "ai_search_options": opts}
    )
    assert_error(r, 400, 7001, needle)


def test_more_than_ten_instances_is_7074(server_http):
    opts = {"instance_ids": [f"i{n}" for n in range(11)]}
    for route in ("search", "chat/completions"):
        body = {"ai_search_options": opts}
        body |= (
            {"query": "x"}
            if route == "search"
            else {"messages": [{"role": "user", "content": "x"}]}
        )
        r = server_http.post(f"/ai-search/namespaces/default/{route}", json=body)
        assert_error(
            r,
            400,
            7074,
            "ai_search_options.instance_ids: at most 10 instances per request (got 11)",
        )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/ai-search/instances/no-such-instance/search"),
        ("POST", "/ai-search/namespaces/default/instances/no-such-instance/chat/completions"),
        ("GET", "/ai-search/instances/no-such-instance"),
        ("GET", "/ai-search/instances/no-such-instance/items"),
        ("GET", "/ai-search/namespaces/no-such-ns"),
        ("GET", "/ai-search/namespaces/no-such-ns/instances"),
        ("POST", "/ai-search/namespaces/no-such-ns/search"),
        ("POST", "/autorag/rags/no-such-instance/search"),
    ],
)
def test_unknown_objects(server_http, method, path):
    body = None
    if path.endswith("/chat/completions"):
        body = {"messages": [{"role": "user", "content": "x"}]}
    elif method == "POST":
        body = {"query": "x", "ai_search_options": {"instance_ids": ["a"]}}
    r = server_http.request(method, path, json=body)
    assert r.status_code == 404, r.text
    assert r.json()["errors"][0]["code"] == 7002


def test_unknown_item_and_job(server_http, empty_instance):
    assert_error(
        server_http.get(f"/ai-search/instances/{empty_instance}/items/nope"), 404, 7002, "nope"
    )
    assert_error(server_http.delete(f"/ai-search/instances/{empty_instance}/items/nope"), 404, 7002)
    assert_error(server_http.get(f"/ai-search/instances/{empty_instance}/jobs/nope"), 404, 7002)


def test_unknown_route_and_method(server_http, local_server):
    assert_error(server_http.get("/ai-search/definitely-not-a-route"), 404, 7003)
    assert_error(server_http.delete("/ai-search/instances"), 405, 7003)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "id"),
        ({"id": "Bad Id"}, "id"),
        ({"id": "x" * 65}, "id"),
        ({"id": "ok-id", "chunk_overlap": 31}, "chunk_overlap"),
        ({"id": "ok-id", "chunk_size": 0}, "chunk_size"),
        ({"id": "ok-id", "chunk_size": 5.5}, "chunk_size"),
        ({"id": "ok-id", "max_num_results": 0}, "max_num_results"),
        ({"id": "ok-id", "score_threshold": 2}, "score_threshold"),
        ({"id": "ok-id", "index_method": {"vector": False, "keyword": False}}, "index_method"),
        (
            {"id": "ok-id", "indexing_options": {"keyword_tokenizer": "snowball"}},
            "keyword_tokenizer",
        ),
        (
            {"id": "ok-id", "custom_metadata": [{"field_name": "folder", "data_type": "text"}]},
            "reserved",
        ),
        (
            {
                "id": "ok-id",
                "custom_metadata": [{"field_name": f"f{i}", "data_type": "text"} for i in range(6)],
            },
            "custom_metadata",
        ),
        (
            {"id": "ok-id", "custom_metadata": [{"field_name": "a", "data_type": "blob"}]},
            "data_type",
        ),
        ({"id": "ok-id", "fusion_method": "sum"}, "fusion_method"),
        ({"id": "ok-id", "sync_interval": 5}, "sync_interval"),
    ],
)
def test_instance_create_bounds(server_http, body, field):
    assert_error(server_http.post("/ai-search/instances", json=body), 400, 7001, field)


def test_duplicate_instance_conflict(server_http, empty_instance):
    r = server_http.post("/ai-search/instances", json={"id": empty_instance})
    assert_error(r, 409, 7009, empty_instance)


def test_never_a_traceback(server_http, empty_instance):
    r = _search_raw(server_http, empty_instance, b"\xff\xfe garbage")
    assert r.status_code == 400
    assert "Traceback" not in r.text


def test_multipart_without_boundary_is_a_400_not_a_500(server_http, empty_instance):
    r = server_http.post(
        f"/ai-search/namespaces/default/instances/{empty_instance}/items",
        content=b"--x\r\n",
        headers={"content-type": "multipart/form-data"},
    )
    assert_error(r, 400, 7001, "boundary")


def test_huge_chunks_offset_is_a_400_not_a_500(server_http, empty_instance):
    up = server_http.post(
        f"/ai-search/namespaces/default/instances/{empty_instance}/items",
        files={"file": ("offset.txt", b"some text to chunk", "text/plain")},
        data={"wait_for_completion": "true"},
    )
    assert up.status_code == 200, up.text
    item_id = up.json()["result"]["id"]
    base = f"/ai-search/namespaces/default/instances/{empty_instance}/items/{item_id}/chunks"
    r = server_http.get(base, params={"offset": str(10**20)})
    assert_error(r, 400, 7001, "offset")
    ok = server_http.get(base, params={"offset": "0"})
    assert ok.status_code == 200
    assert ok.json()["result"][0]["text"] == "some text to chunk"
