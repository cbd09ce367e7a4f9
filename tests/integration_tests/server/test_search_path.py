"""The search route's request path, over real HTTP: the instance lookup, the body and the fault
happen once, before the search (on the event loop for a small body, in the search's own thread
hop for a larger one), with the same answers and errors, in the same order, as before."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from aisearch_local import query
from aisearch_local.store import Store
from tests.integration_tests.server._helpers import upload

pytestmark = pytest.mark.integration


@pytest.fixture
def instance(server_http: httpx.Client) -> str:
    name = "search-path"
    r = server_http.get(f"/ai-search/instances/{name}")
    if r.status_code == 404:
        r = server_http.post("/ai-search/instances", json={"id": name})
        assert r.status_code == 201, r.text
        upload(server_http, name, "a.md", "Espresso crema forms under pressure.")
    return name


def test_the_instance_is_read_once_where_the_body_is_parsed(server_http, instance, monkeypatch):
    threads: list[str] = []
    real = Store.find_instance

    def spy(self: Store, namespace: str, instance_id: str) -> Any:
        threads.append(threading.current_thread().name)
        return real(self, namespace, instance_id)

    monkeypatch.setattr(Store, "find_instance", spy)
    r = server_http.post(f"/ai-search/instances/{instance}/search", json={"query": "espresso"})
    assert r.status_code == 200, r.text
    assert r.json()["result"]["chunks"][0]["text"].startswith("Espresso")
    # a small body: on the event loop (a cached record), then the search where it runs
    assert threads == ["aisearch-local"], threads
    # a body above INLINE_MAX_SIZE: parsed on the search thread, with the instance
    threads.clear()
    body = {"query": "espresso " + "x" * query.INLINE_MAX_SIZE}
    r = server_http.post(f"/ai-search/instances/{instance}/search", json=body)
    assert r.status_code == 200, r.text
    assert len(threads) == 1 and threads[0].startswith("aisearch-local-search"), threads


def test_errors_keep_their_order(server_http, instance):
    # an unknown instance is a 404 before its body is read
    r = server_http.post("/ai-search/instances/nope-x/search", content=b"{not json")
    assert (r.status_code, r.json()["errors"][0]["code"]) == (404, 7002)
    r = server_http.post("/ai-search/namespaces/nope-ns/instances/a/search", json={"query": "x"})
    assert r.status_code == 404 and "namespace 'nope-ns' not found" in r.text
    # then the body
    r = server_http.post(f"/ai-search/instances/{instance}/search", content=b"{not json")
    assert (r.status_code, r.json()["errors"][0]["code"]) == (400, 7001)
    r = server_http.post(f"/ai-search/instances/{instance}/search", json={"query": 3})
    assert (r.status_code, r.json()["errors"][0]["code"]) == (400, 7001)


def test_a_fault_still_applies_after_the_body(server_http, instance, local_server):
    base = local_server.base_url
    put = httpx.put(
        f"{base}/_local/faults/default/{instance}",
        json={"status": 503, "times": 1},
        headers=local_server.headers,
    )
    assert put.status_code == 200, put.text
    try:
        # a bad body is refused first and does not use up the fault
        r = server_http.post(f"/ai-search/instances/{instance}/search", json={"query": 3})
        assert r.status_code == 400
        r = server_http.post(f"/ai-search/instances/{instance}/search", json={"query": "crema"})
        assert r.status_code == 503, r.text
        r = server_http.post(f"/ai-search/instances/{instance}/search", json={"query": "crema"})
        assert r.status_code == 200, r.text
    finally:
        httpx.delete(f"{base}/_local/faults/default/{instance}", headers=local_server.headers)
