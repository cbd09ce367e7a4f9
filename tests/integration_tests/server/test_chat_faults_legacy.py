"""Chat completions (JSON, SSE, cache), namespace chat, faults and legacy AutoRAG routes."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.integration_tests.server._helpers import assert_error, upload

pytestmark = pytest.mark.integration

USER = [{"role": "user", "content": "How long should cold brew steep?"}]


def sse_events(raw: str) -> list[tuple[str | None, str]]:
    """Split an SSE body into (event, data) pairs."""
    out = []
    for block in raw.split("\n\n"):
        if not block.strip():
            continue
        event = None
        data = []
        for line in block.split("\n"):
            if line.startswith("event: "):
                event = line[len("event: ") :]
            elif line.startswith("data: "):
                data.append(line[len("data: ") :])
        out.append((event, "\n".join(data)))
    return out


def stream(
    http: httpx.Client, path: str, body: dict
) -> tuple[httpx.Response, list[tuple[str | None, str]]]:
    with http.stream("POST", path, json={**body, "stream": True}) as r:
        raw = r.read().decode()
    return r, sse_events(raw)


def test_chat_limits_and_usage(server_http, docs_instance):
    path = f"/ai-search/instances/{docs_instance}/chat/completions"
    full = server_http.post(
        path, json={"messages": USER, "ai_search_options": {"cache": {"enabled": False}}}
    ).json()
    short = server_http.post(
        path,
        json={
            "messages": USER,
            "max_tokens": 3,
            "ai_search_options": {"cache": {"enabled": False}},
        },
    ).json()
    assert short["choices"][0]["finish_reason"] == "length"
    assert len(short["choices"][0]["message"]["content"].split()) <= 3
    assert short["usage"]["completion_tokens"] <= 3 < full["usage"]["completion_tokens"]
    text = full["choices"][0]["message"]["content"]
    word = text.split()[2]
    stopped = server_http.post(
        path,
        json={"messages": USER, "stop": [word], "ai_search_options": {"cache": {"enabled": False}}},
    ).json()
    assert word not in stopped["choices"][0]["message"]["content"]
    assert "[1]" in text  # extractive answers cite the chunks
    assert full["model"] == "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
    custom = server_http.post(path, json={"messages": USER, "model": "my-model"}).json()
    assert custom["model"] == "my-model"


def test_chat_without_matches_still_answers(server_http, make_instance):
    iid = make_instance()
    upload(server_http, iid, "a.md", "Unrelated text about bicycles.")
    body = server_http.post(
        f"/ai-search/instances/{iid}/chat/completions",
        json={"messages": USER, "ai_search_options": {"retrieval": {"match_threshold": 1.0}}},
    ).json()
    assert body["chunks"] == []
    assert body["choices"][0]["message"]["content"].strip()


def test_similarity_cache(server_http, make_instance):
    iid = make_instance()
    upload(
        server_http,
        iid,
        "cold-brew.md",
        "Cold brew steeps coarse grounds in cold water for 12 to 24 hours.",
    )
    path = f"/ai-search/instances/{iid}/chat/completions"
    prompt = [
        {"role": "user", "content": "how long should cold brew steep in the fridge before drinking"}
    ]
    first = server_http.post(path, json={"messages": prompt})
    second = server_http.post(path, json={"messages": prompt})
    assert first.headers["cf-aig-cache-status"] == "MISS"
    assert second.headers["cf-aig-cache-status"] == "HIT"
    assert (
        second.json()["choices"][0]["message"]["content"]
        == first.json()["choices"][0]["message"]["content"]
    )
    similar = [
        {
            "role": "user",
            "content": "how long should cold brew steep in the fridge before drinking it",
        }
    ]
    for threshold, status in (("super_strict_match", "MISS"), ("anything_goes", "HIT")):
        options = {"cache": {"cache_threshold": threshold}}
        r = server_http.post(path, json={"messages": similar, "ai_search_options": options})
        assert r.headers["cf-aig-cache-status"] == status, threshold
    off = server_http.post(
        path, json={"messages": prompt, "ai_search_options": {"cache": {"enabled": False}}}
    )
    assert "cf-aig-cache-status" not in off.headers
    upload(server_http, iid, "extra.md", "Iced coffee is brewed hot and poured over ice.")
    after_write = server_http.post(path, json={"messages": prompt})
    assert after_write.headers["cf-aig-cache-status"] == "MISS"
    r, events = stream(server_http, path, {"messages": prompt})
    assert r.headers["cf-aig-cache-status"] == "HIT"
    assert events[0][0] == "chunks" and events[-1][1] == "[DONE]"


def test_system_prompt_reaches_generator(server_http, docs_instance):
    path = f"/ai-search/instances/{docs_instance}/chat/completions"
    # a question with several relevant sentences ("how long ... steep" is answered by one)
    user = [{"role": "user", "content": "How is cold brew made?"}]
    plain = server_http.post(path, json={"messages": user}).json()["choices"][0]["message"][
        "content"
    ]
    brief = server_http.post(
        path,
        json={
            "messages": [{"role": "system", "content": "Answer briefly, in one sentence."}, *user]
        },
    ).json()["choices"][0]["message"]["content"]
    assert len(brief) < len(plain)


def test_namespace_chat_json_and_stream(server_http, docs_instance, make_instance, local_server):
    failing = make_instance()
    local_server.set_fault(failing, status=503, code=7017)
    try:
        opts = {"instance_ids": [docs_instance, failing]}
        body = server_http.post(
            "/ai-search/namespaces/default/chat/completions",
            json={"messages": USER, "ai_search_options": opts},
        ).json()
        assert body["object"] == "chat.completion"
        assert body["choices"][0]["message"]["content"]
        assert {c["instance_id"] for c in body["chunks"]} == {docs_instance}
        assert [e["instance_id"] for e in body["errors"]] == [failing]
        _r, events = stream(
            server_http,
            "/ai-search/namespaces/default/chat/completions",
            {"messages": USER, "ai_search_options": opts},
        )
    finally:
        local_server.clear_faults()
    assert events[0][0] == "chunks"
    assert all(c["instance_id"] == docs_instance for c in json.loads(events[0][1]))
    assert events[1][0] == "errors"
    assert json.loads(events[1][1])[0]["instance_id"] == failing
    assert events[-1][1] == "[DONE]"


def test_fault_truncated_stream(server_http, docs_instance, local_server):
    local_server.set_fault(docs_instance, truncate_stream=True)
    try:
        r, events = stream(
            server_http,
            f"/ai-search/instances/{docs_instance}/chat/completions",
            {"messages": USER},
        )
    finally:
        local_server.clear_faults()
    assert r.status_code == 200
    assert events[0][0] == "chunks"
    assert len(events) == 2
    assert all(data != "[DONE]" for _, data in events)


def test_fault_malformed_body(server_http, docs_instance, local_server):
    local_server.set_fault(docs_instance, malformed_body=True)
    try:
        r = server_http.post(
            f"/ai-search/instances/{docs_instance}/search", json={"query": "espresso"}
        )
        c = server_http.post(
            f"/ai-search/instances/{docs_instance}/chat/completions", json={"messages": USER}
        )
    finally:
        local_server.clear_faults()
    for resp in (r, c):
        assert resp.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(resp.text)


def test_fault_route_times_and_latency(server_http, local_server, docs_instance):
    faults = f"{local_server.base_url}/_local/faults/default/{docs_instance}"
    r = httpx.put(
        faults,
        json={"status": 429, "retry_after": 1, "times": 2, "latency_ms": 20},
        headers=local_server.headers,
    )
    assert r.status_code == 200 and r.json()["result"]["times"] == 2
    statuses = [
        server_http.post(
            f"/ai-search/instances/{docs_instance}/search", json={"query": "espresso"}
        ).status_code
        for _ in range(3)
    ]
    assert statuses == [429, 429, 200]
    httpx.put(faults, json={"status": 500}, headers=local_server.headers).raise_for_status()
    assert (
        server_http.post(
            f"/ai-search/instances/{docs_instance}/search", json={"query": "x"}
        ).status_code
        == 500
    )
    httpx.delete(faults, headers=local_server.headers).raise_for_status()
    assert (
        server_http.post(
            f"/ai-search/instances/{docs_instance}/search", json={"query": "x"}
        ).status_code
        == 200
    )
    bad = httpx.put(faults, json={"status": 200}, headers=local_server.headers)
    assert_error(bad, 400, 7001, "status")
    unknown = httpx.put(faults, json={"explode": True}, headers=local_server.headers)
    assert_error(unknown, 400, 7001, "explode")
    assert httpx.put(faults, json={}).status_code == 401


def test_fault_routes_list_and_read_what_is_installed(server_http, local_server, docs_instance):
    base = f"{local_server.base_url}/_local/faults"
    one = f"{base}/default/{docs_instance}"
    h = local_server.headers
    try:
        httpx.put(one, json={"status": 503, "times": 2}, headers=h).raise_for_status()
        got = httpx.get(one, headers=h)
        assert got.status_code == 200
        assert got.json()["result"] == {
            "namespace": "default",
            "instance_id": docs_instance,
            "latency_ms": 0,
            "status": 503,
            "code": None,
            "retry_after": None,
            "truncate_stream": False,
            "malformed_body": False,
            "times": 2,
        }
        listed = httpx.get(base, headers=h).json()["result"]
        assert [(f["namespace"], f["instance_id"], f["times"]) for f in listed] == [
            ("default", docs_instance, 2)
        ]
        # reading is not taking: the count goes down on searches only
        assert httpx.get(one, headers=h).json()["result"]["times"] == 2
        path = f"/ai-search/instances/{docs_instance}/search"
        assert server_http.post(path, json={"query": "x"}).status_code == 503
        assert httpx.get(one, headers=h).json()["result"]["times"] == 1
        assert server_http.post(path, json={"query": "x"}).status_code == 503
        # used up: gone from both routes
        assert_error(httpx.get(one, headers=h), 404, 7002, docs_instance)
        assert httpx.get(base, headers=h).json()["result"] == []
        assert httpx.get(base).status_code == 401
        assert httpx.get(one).status_code == 401
    finally:
        local_server.clear_faults()


def test_legacy_search_shape_and_filters(server_http, docs_instance):
    r = server_http.post(
        f"/autorag/rags/{docs_instance}/search",
        json={
            "query": "espresso",
            "max_num_results": 3,
            "filters": {"type": "eq", "key": "folder", "value": "brewing/"},
        },
    )
    assert r.status_code == 200, r.text
    result = r.json()["result"]
    assert result["object"] == "vector_store.search_results.page"
    assert result["search_query"] == "espresso"
    assert result["has_more"] is False and result["next_page"] is None
    assert "response" not in result
    assert 0 < len(result["data"]) <= 3
    for d in result["data"]:
        assert d["filename"].startswith("brewing/")
        assert d["attributes"]["folder"] == "brewing/"
        assert d["content"][0]["type"] == "text" and d["content"][0]["text"]
        assert isinstance(d["file_id"], str) and 0 <= d["score"] <= 1
    compound = server_http.post(
        f"/autorag/rags/{docs_instance}/search",
        json={
            "query": "coffee",
            "max_num_results": 50,
            "ranking_options": {"score_threshold": 0},
            "filters": {
                "type": "or",
                "filters": [
                    {"type": "eq", "key": "folder", "value": "beans/"},
                    {"type": "eq", "key": "folder", "value": "roasting/"},
                ],
            },
        },
    ).json()["result"]["data"]
    assert compound and {d["attributes"]["folder"] for d in compound} <= {"beans/", "roasting/"}
    bad = server_http.post(
        f"/autorag/rags/{docs_instance}/search",
        json={
            "query": "x",
            "filters": {"type": "or", "filters": [{"type": "gt", "key": "a", "value": 1}]},
        },
    )
    assert_error(bad, 400, 7001, "or")
    assert_error(
        server_http.post(
            f"/autorag/rags/{docs_instance}/search", json={"query": "x", "max_num_results": 0}
        ),
        400,
        7001,
        "max_num_results",
    )
    assert_error(
        server_http.post(
            f"/autorag/rags/{docs_instance}/search",
            json={"query": "x", "ranking_options": {"score_threshold": 3}},
        ),
        400,
        7001,
        "score_threshold",
    )
    assert_error(
        server_http.post(f"/autorag/rags/{docs_instance}/search", json={}), 400, 7001, "query"
    )


def test_legacy_ai_search_json_and_stream(server_http, docs_instance):
    path = f"/autorag/rags/{docs_instance}/ai-search"
    body = server_http.post(
        path, json={"query": "How long should cold brew steep?", "system_prompt": "Be helpful."}
    ).json()
    result = body["result"]
    assert result["response"].strip()
    assert result["data"] and result["object"] == "vector_store.search_results.page"
    r, events = stream(server_http, path, {"query": "How long should cold brew steep?"})
    assert r.headers["content-type"].startswith("text/event-stream")
    assert events[-1] == (None, "[DONE]")
    pieces = [json.loads(data)["response"] for _, data in events[:-1]]
    assert "".join(pieces).strip() == result["response"].strip()
