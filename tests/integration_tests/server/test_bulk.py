"""The local bulk items route: ``POST /client/v4/_local/bulk/{ns}/{instance_id}/items``.

Many items in one request, the items API's checks on each, one result per item (a refused item
does not fail the others), limits refused with the field and the allowed range, and nothing
acknowledged lost to ``kill -9``.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aisearch_local import bulk
from aisearch_local.guard import MAX_BULK_BODY_BYTES, body_limit
from aisearch_local.testing import LocalServer
from tests._support import hostile_values
from tests.integration_tests.server.test_persistence import _free_port, _start

pytestmark = pytest.mark.integration

TOKEN = "bulk-token"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with LocalServer(data_dir=tmp_path_factory.mktemp("bulk"), token=TOKEN) as srv:
        yield srv


@pytest.fixture(scope="module")
def http(server: LocalServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, headers=server.headers, timeout=60) as client:
        yield client


def _instance(http: httpx.Client, iid: str) -> str:
    r = http.post("/accounts/a/ai-search/instances", json={"id": iid})
    assert r.status_code in (201, 409), r.text  # 409: made by an earlier parameter
    return f"/_local/bulk/default/{iid}/items"


def _bulk(http: httpx.Client, path: str, body: Any) -> httpx.Response:
    return http.post(path, json=body)


def test_many_items_in_one_request_are_indexed_and_searchable(http: httpx.Client):
    path = _instance(http, "bulk-ok")
    items = [
        {"key": f"docs/doc-{i}.md", "text": f"# Doc {i}\n\nespresso grind number{i} " * 20}
        for i in range(30)
    ]
    items.append({"key": "bin.txt", "data": base64.b64encode(b"kettle descaling").decode()})
    items.append({"key": "meta.txt", "text": "pour over", "metadata": {"rating": 5}})
    r = _bulk(http, path, {"items": items})
    assert r.status_code == 200, r.text
    result = r.json()["result"]
    assert result["counts"] == {"completed": 32, "error": 0, "refused": 0}
    assert [x["index"] for x in result["items"]] == list(range(32))
    assert all(x["success"] for x in result["items"])
    first = result["items"][0]["result"]
    assert first["key"] == "docs/doc-0.md" and first["status"] == "completed"
    assert first["chunks_count"] >= 1
    # the same item the items API serves
    got = http.get(f"/accounts/a/ai-search/instances/bulk-ok/items/{first['id']}")
    assert got.json()["result"] == first
    found = http.post(
        "/accounts/a/ai-search/instances/bulk-ok/search",
        json={
            "query": "number17",
            "ai_search_options": {"retrieval": {"retrieval_type": "keyword"}},
        },
    ).json()["result"]["chunks"]
    assert found[0]["item"]["key"] == "docs/doc-17.md"
    meta = result["items"][31]["result"]
    assert meta["metadata"] == {"rating": 5}
    # a second request with the same key replaces the item
    r = _bulk(http, path, {"items": [{"key": "bin.txt", "text": "now about milk frothing"}]})
    assert r.json()["result"]["items"][0]["result"]["id"] == result["items"][30]["result"]["id"]
    found = http.post(
        "/accounts/a/ai-search/instances/bulk-ok/search",
        json={
            "query": "descaling",
            "ai_search_options": {"retrieval": {"retrieval_type": "keyword"}},
        },
    ).json()["result"]["chunks"]
    assert found == []


def test_a_refused_item_does_not_fail_the_others(http: httpx.Client):
    path = _instance(http, "bulk-partial")
    items: list[Any] = [
        {"key": "good-1.md", "text": "espresso"},
        {"key": "../escape.md", "text": "x"},
        {"key": "both.md", "text": "x", "data": "eA=="},
        {"key": "b64.md", "data": "not base64!"},
        {"key": "meta.md", "text": "x", "metadata": {"nested": {"a": 1}}},
        "just a string",
        {"key": "good-1.md", "text": "a duplicate"},
        {"key": "extra.md", "text": "x", "colour": "red"},
        {"key": "empty.md", "text": "   "},
        {"key": "good-2.md", "text": "grinder"},
    ]
    r = _bulk(http, path, {"items": items})
    assert r.status_code == 200, r.text
    result = r.json()["result"]
    assert result["counts"] == {"completed": 2, "error": 1, "refused": 7}
    by_index = {x["index"]: x for x in result["items"]}
    assert len(by_index) == len(items)
    messages = {i: x["errors"][0]["message"] for i, x in by_index.items() if not x["success"]}
    assert messages[1].startswith("items[1].key: must be a relative path")
    assert messages[2].startswith("items[2]: give exactly one of text")
    assert messages[3].startswith("items[3].data: must be standard base64")
    assert messages[4].startswith("items[4].metadata.nested: must be a string, number or boolean")
    assert messages[5].startswith("items[5]: must be an object")
    assert messages[6] == "items[6].key: 'good-1.md' is also items[0] (one item per key)"
    assert messages[7].startswith("items[7].colour: unknown field")
    assert all(by_index[i]["errors"][0]["code"] == 7001 for i in messages)
    # an item without text is stored with status error, as an upload would be
    assert by_index[8]["success"] is True
    assert by_index[8]["result"]["status"] == "error"
    listed = http.get("/accounts/a/ai-search/instances/bulk-partial/items").json()["result"]
    assert sorted(i["key"] for i in listed) == ["empty.md", "good-1.md", "good-2.md"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "items: must be a list of 1 to 1000 items (got null)"),
        ({"items": []}, "items: must be a list of 1 to 1000 items (got 0)"),
        ({"items": "x"}, "items: must be a list of 1 to 1000 items (got a string)"),
        (
            {"items": [{"key": f"k{i}", "text": "x"} for i in range(1001)]},
            "items: must be a list of 1 to 1000 items (got 1001)",
        ),
        ({"items": [{"key": "a", "text": "b"}], "wait": True}, "wait: unknown field"),
    ],
)
def test_a_wrong_body_is_a_400_naming_the_field_and_range(
    http: httpx.Client, body: dict[str, Any], message: str
):
    path = _instance(http, "bulk-bad")
    r = _bulk(http, path, body)
    assert r.status_code == 400, r.text
    err = r.json()["errors"][0]
    assert err["code"] == 7001
    assert err["message"].startswith(message)


def test_too_many_bytes_is_a_413_naming_the_limit(
    http: httpx.Client, monkeypatch: pytest.MonkeyPatch
):
    path = _instance(http, "bulk-big")
    monkeypatch.setattr(bulk, "MAX_BULK_BYTES", 1000)
    items = [{"key": f"k{i}.txt", "text": "x" * 400} for i in range(3)]
    r = _bulk(http, path, {"items": items})
    assert r.status_code == 413, r.text
    message = r.json()["errors"][0]["message"]
    assert message.startswith("items: the documents total more than the 1000 byte")
    assert "items[2]" in message
    listed = http.get("/accounts/a/ai-search/instances/bulk-big/items").json()["result"]
    assert listed == []  # nothing of a refused request is stored
    # the perimeter's body limit of the route is larger than the documents' limit
    assert body_limit("POST", "/client/v4/_local/bulk/default/x/items") == MAX_BULK_BODY_BYTES
    assert MAX_BULK_BODY_BYTES > 32 * 1024 * 1024


def test_the_route_needs_the_token_and_an_existing_instance(
    server: LocalServer, http: httpx.Client
):
    path = _instance(http, "bulk-auth")
    r = httpx.post(server.base_url + path, json={"items": [{"key": "a", "text": "b"}]})
    assert r.status_code == 401
    r = _bulk(http, "/_local/bulk/default/nope/items", {"items": [{"key": "a", "text": "b"}]})
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == 7002
    r = _bulk(http, "/_local/bulk/default/..%2f/items", {"items": []})
    assert r.status_code in (400, 404)


_ITEM = st.fixed_dictionaries(
    {},
    optional={
        "key": st.one_of(st.text(max_size=20), hostile_values()),
        "text": st.one_of(st.text(max_size=50), hostile_values()),
        "data": st.one_of(st.sampled_from(["eA==", "!!", ""]), hostile_values()),
        "metadata": st.one_of(
            st.dictionaries(st.text(max_size=5), hostile_values(), max_size=3), hostile_values()
        ),
    },
)
_BODY = st.one_of(
    st.fixed_dictionaries({"items": st.lists(st.one_of(_ITEM, hostile_values()), max_size=6)}),
    st.dictionaries(st.text(max_size=6), hostile_values(), max_size=3),
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=_BODY)
def test_fuzzed_bodies_get_the_envelope_and_consistent_results(http: httpx.Client, body: Any):
    path = "/_local/bulk/default/bulk-fuzz/items"
    http.post("/accounts/a/ai-search/instances", json={"id": "bulk-fuzz"})
    content = json.dumps(body).encode()  # NaN and Infinity as Python writes them
    r = http.post(path, content=content, headers={"content-type": "application/json"})
    assert r.status_code in (200, 400, 413), r.text
    doc = r.json()
    assert isinstance(doc["success"], bool)
    if r.status_code != 200:
        assert doc["errors"][0]["code"] == 7001
        return
    results = doc["result"]["items"]
    assert [x["index"] for x in results] == list(range(len(body["items"])))
    for x in results:
        if x["success"]:
            item = http.get(f"/accounts/a/ai-search/instances/bulk-fuzz/items/{x['result']['id']}")
            assert item.status_code == 200
        else:
            assert x["errors"][0]["message"].startswith(f"items[{x['index']}]")


def test_kill_9_mid_bulk_loses_nothing_acknowledged(tmp_path: Path):
    port = _free_port()
    root = f"http://127.0.0.1:{port}/client/v4"
    headers = {"Authorization": "Bearer k9"}
    proc = _start(tmp_path, port)
    acked: list[str] = []
    stop = threading.Event()
    try:
        with httpx.Client(base_url=root, headers=headers, timeout=30) as http:
            r = http.post("/accounts/a/ai-search/instances", json={"id": "crash"})
            r.raise_for_status()

            def writer() -> None:
                n = 0
                with httpx.Client(base_url=root, headers=headers, timeout=30) as w:
                    while not stop.is_set():
                        items = [
                            {"key": f"doc-{n + i:05d}.md", "text": f"Document {n + i} roast. " * 60}
                            for i in range(40)
                        ]
                        n += 40
                        try:
                            r = w.post("/_local/bulk/default/crash/items", json={"items": items})
                        except httpx.TransportError:
                            return
                        if r.status_code == 200:
                            acked.extend(
                                x["key"] for x in r.json()["result"]["items"] if x["success"]
                            )

            t = threading.Thread(target=writer)
            t.start()
            while len(acked) < 200:
                time.sleep(0.01)
                assert t.is_alive()
            os.kill(proc.pid, signal.SIGKILL)  # in the middle of the stream of bulk requests
            proc.wait(timeout=10)
            stop.set()
            t.join(timeout=30)
    finally:
        stop.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    proc = _start(tmp_path, port)
    try:
        with httpx.Client(base_url=root, headers=headers, timeout=30) as http:
            keys: dict[str, dict[str, Any]] = {}
            page = 1
            while True:
                body = http.get(
                    "/accounts/a/ai-search/instances/crash/items",
                    params={"page": page, "per_page": 50},
                ).json()
                keys.update({i["key"]: i for i in body["result"]})
                if page * 50 >= body["result_info"]["total_count"]:
                    break
                page += 1
            assert [k for k in acked if k not in keys] == []
            for item in keys.values():  # a request is all or nothing: every item is complete
                assert item["status"] == "completed"
                assert item["chunks_count"] >= 1
            assert len(keys) % 40 == 0
    finally:
        proc.kill()
        proc.wait(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()
