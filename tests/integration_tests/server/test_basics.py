"""End-to-end basics of aisearch_local over real HTTP: instances, items, search, chat, faults."""

from __future__ import annotations

import json

import httpx
import pytest

pytestmark = pytest.mark.integration


def _search(http: httpx.Client, instance: str, query: str, **retrieval: object) -> list[dict]:
    body: dict = {"query": query}
    if retrieval:
        body["ai_search_options"] = {"retrieval": retrieval}
    r = http.post(f"/ai-search/instances/{instance}/search", json=body)
    assert r.status_code == 200, r.text
    payload = r.json()
    assert payload["success"] is True
    assert payload["errors"] == []
    assert payload["result"]["query_kind"] == "text"
    return payload["result"]["chunks"]


def test_docs_instance_searchable(server_http, docs_instance):
    chunks = _search(server_http, docs_instance, "espresso grind size")
    assert chunks
    top = chunks[0]
    assert set(top) >= {"id", "type", "score", "text", "item", "scoring_details"}
    assert top["type"] == "text"
    assert 0.0 <= top["score"] <= 1.0
    assert "espresso" in (top["text"] + top["item"]["key"]).lower()
    details = top["scoring_details"]
    assert details["fusion_method"] == "rrf"
    assert 0.0 <= details["vector_score"] <= 1.0
    assert "keyword_score" in details
    assert set(top["item"]["metadata"]) >= {"difficulty", "rating", "author"}


def test_chat_completion_json(server_http, docs_instance):
    r = server_http.post(
        f"/ai-search/instances/{docs_instance}/chat/completions",
        json={"messages": [{"role": "user", "content": "How long should cold brew steep?"}]},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert "success" not in body  # chat completions are not enveloped
    assert body["object"] == "chat.completion"
    content = body["choices"][0]["message"]["content"]
    assert content.strip()
    assert body["choices"][0]["finish_reason"] in ("stop", "length")
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert body["chunks"]
    assert r.headers["cf-aig-cache-status"] in ("HIT", "MISS")


def test_chat_completion_stream_order(server_http, docs_instance):
    with server_http.stream(
        "POST",
        f"/ai-search/instances/{docs_instance}/chat/completions",
        json={
            "stream": True,
            "messages": [{"role": "user", "content": "What is a V60 pour over?"}],
        },
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        raw = r.read().decode()
    events = [e for e in raw.split("\n\n") if e.strip()]
    assert events[0].startswith("event: chunks\ndata: [")
    first_chunks = json.loads(events[0].split("data: ", 1)[1])
    assert isinstance(first_chunks, list) and first_chunks
    assert events[-1] == "data: [DONE]"
    deltas = [json.loads(e[len("data: ") :]) for e in events[1:-1]]
    assert all(d["object"] == "chat.completion.chunk" for d in deltas)
    text = "".join(d["choices"][0]["delta"].get("content", "") for d in deltas)
    assert text.strip()
    assert deltas[-1]["choices"][0]["finish_reason"] in ("stop", "length")
    assert deltas[-1]["usage"]["completion_tokens"] >= 1


def test_upload_search_and_fault(server_http, make_instance, local_server):
    iid = make_instance()
    r = server_http.post(
        f"/ai-search/instances/{iid}/items",
        files={"file": ("notes/grinders.md", b"Burr grinders give an even particle size.")},
        data={"metadata": json.dumps({"author": "sam"}), "wait_for_completion": "true"},
    )
    assert r.status_code == 200, r.text
    item = r.json()["result"]
    assert item["status"] == "completed" and item["chunks_count"] == 1
    assert item["metadata"] == {"author": "sam"}
    assert _search(server_http, iid, "burr grinders")[0]["item"]["key"] == "notes/grinders.md"

    local_server.set_fault(iid, status=503, code=7017, retry_after=2)
    try:
        r = server_http.post(f"/ai-search/instances/{iid}/search", json={"query": "burr"})
        assert r.status_code == 503
        assert r.headers["retry-after"] == "2"
        assert r.json()["errors"][0]["code"] == 7017
    finally:
        local_server.clear_faults()
    assert _search(server_http, iid, "burr grinders")


def test_namespace_search_partial_failure(server_http, docs_instance, make_instance, local_server):
    other = make_instance()
    failing = make_instance()
    server_http.post(
        f"/ai-search/instances/{other}/items",
        files={"file": ("espresso-notes.txt", b"Espresso shots pull in about 25 to 30 seconds.")},
    ).raise_for_status()
    local_server.set_fault(failing, status=500)
    try:
        r = server_http.post(
            "/ai-search/namespaces/default/search",
            json={
                "query": "espresso shot time",
                "ai_search_options": {
                    "instance_ids": [docs_instance, other, failing, "missing-one"],
                    "retrieval": {"max_num_results": 50},
                },
            },
        )
    finally:
        local_server.clear_faults()
    assert r.status_code == 200, r.text
    result = r.json()["result"]
    ids = {c["instance_id"] for c in result["chunks"]}
    assert ids == {docs_instance, other}
    scores = [c["score"] for c in result["chunks"]]
    assert scores == sorted(scores, reverse=True)
    errors = {e["instance_id"]: e["message"] for e in result["errors"]}
    assert set(errors) == {failing, "missing-one"}
    assert "not found" in errors["missing-one"]
