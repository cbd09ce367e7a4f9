"""The late-2026 query path over real HTTP: custom_metadata on search, multimodal parts and
query_kind, the /ai-search/rags aliases of the legacy routes (API.md 18.1, 3.5, 13)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration_tests.server._helpers import assert_error

pytestmark = pytest.mark.integration


def _ask(body: dict[str, Any], **options: Any) -> dict[str, Any]:
    return {**body, "ai_search_options": {**body.get("ai_search_options", {}), **options}}


SEARCH = {"query": "espresso grind"}
CHAT = {"messages": [{"role": "user", "content": "espresso grind"}]}


def sse_events(raw: str) -> list[tuple[str | None, str]]:
    """Split an SSE body into (event, data) pairs."""
    out = []
    for block in raw.split("\n\n"):
        if block.strip():
            lines = block.split("\n")
            event = next((ln[7:] for ln in lines if ln.startswith("event: ")), None)
            out.append((event, "\n".join(ln[6:] for ln in lines if ln.startswith("data: "))))
    return out


# --------------------------------------------------------------------------- custom_metadata


@pytest.mark.parametrize("route", ["search", "chat/completions"])
def test_custom_metadata_is_accepted_on_search_and_chat(server_http, docs_instance, route):
    body = SEARCH if route == "search" else CHAT
    cm = {"team": "blue", "run": 3}
    r = server_http.post(
        f"/ai-search/instances/{docs_instance}/{route}", json=_ask(body, custom_metadata=cm)
    )
    assert r.status_code == 200, r.text


def test_custom_metadata_is_accepted_on_namespace_search(server_http, docs_instance):
    r = server_http.post(
        "/ai-search/namespaces/default/search",
        json=_ask(SEARCH, instance_ids=[docs_instance], custom_metadata={"ok": True}),
    )
    assert r.status_code == 200, r.text
    assert r.json()["result"]["chunks"]
    assert "errors" not in r.json()["result"]


@pytest.mark.parametrize("route", ["search", "chat/completions"])
@pytest.mark.parametrize(
    ("cm", "message"),
    [
        ({"task": "x"}, "ai_search_options.custom_metadata: key 'task' is reserved"),
        ({"ai-search": 1}, "key 'ai-search' is reserved (ai-search, task, origin, cf.*)"),
        ({"origin": True}, "key 'origin' is reserved"),
        ({"cf.trace": "x"}, "key 'cf.trace' is reserved"),
        ({"a": 1, "b": 2, "c": 3}, "custom_metadata: must have at most 2 entries (got 3)"),
        ({"": 1}, "custom_metadata: keys must be non-empty strings"),
        ({"a": None}, "custom_metadata.a: must be a string, number or boolean (got null)"),
        ({"a": [1]}, "custom_metadata.a: must be a string, number or boolean (got an array)"),
        ({"a": {"b": 1}}, "custom_metadata.a: must be a string, number or boolean (got an object)"),
        ("team", "custom_metadata: must be an object"),
    ],
)
def test_custom_metadata_is_checked_on_search_and_chat(
    server_http, docs_instance, route, cm, message
):
    body = SEARCH if route == "search" else CHAT
    r = server_http.post(
        f"/ai-search/instances/{docs_instance}/{route}", json=_ask(body, custom_metadata=cm)
    )
    assert_error(r, 400, 7001, message)


def test_custom_metadata_is_checked_on_namespace_search(server_http, docs_instance):
    r = server_http.post(
        "/ai-search/namespaces/default/search",
        json=_ask(SEARCH, instance_ids=[docs_instance], custom_metadata={"cf.x": 1}),
    )
    assert_error(r, 400, 7001, "key 'cf.x' is reserved")


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT
)
_JSON = st.recursive(
    _JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=6,
)


def test_custom_metadata_fuzz_answers_200_or_7001(server_http, docs_instance):
    @settings(
        max_examples=60,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(cm=_JSON | st.dictionaries(_TEXT, _JSON, max_size=4))
    def run(cm: Any) -> None:
        r = server_http.post(
            f"/ai-search/instances/{docs_instance}/search", json=_ask(SEARCH, custom_metadata=cm)
        )
        if r.status_code == 200:
            assert cm is None or (isinstance(cm, dict) and len(cm) <= 2), cm
        else:
            assert_error(r, 400, 7001, "custom_metadata")

    run()


# --------------------------------------------------------------------------- the rags aliases

LEGACY_BODIES = {
    "search": {"query": "espresso", "max_num_results": 3},
    "ai-search": {"query": "How long should cold brew steep?", "system_prompt": "Be helpful."},
}


@pytest.mark.parametrize("name", ["search", "ai-search"])
def test_ai_search_rags_alias_answers_as_the_legacy_route(server_http, docs_instance, name):
    body = LEGACY_BODIES[name]
    legacy = server_http.post(f"/autorag/rags/{docs_instance}/{name}", json=body)
    alias = server_http.post(f"/ai-search/rags/{docs_instance}/{name}", json=body)
    assert alias.status_code == legacy.status_code == 200, alias.text
    assert alias.json() == legacy.json()
    result = alias.json()["result"]
    assert result["object"] == "vector_store.search_results.page"
    assert result["data"]
    assert ("response" in result) == (name == "ai-search")


def test_ai_search_rags_alias_streams(server_http, docs_instance):
    body = {**LEGACY_BODIES["ai-search"], "stream": True}
    streams = []
    for prefix in ("/autorag", "/ai-search"):
        with server_http.stream("POST", f"{prefix}/rags/{docs_instance}/ai-search", json=body) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            streams.append(r.read().decode())
    legacy, alias = streams
    assert alias == legacy
    events = sse_events(alias)
    assert events[-1] == (None, "[DONE]")
    assert "".join(json.loads(data)["response"] for _, data in events[:-1]).strip()


@pytest.mark.parametrize("name", ["search", "ai-search"])
def test_ai_search_rags_alias_errors_as_the_legacy_route(
    server_http, local_server, docs_instance, name
):
    assert_error(
        server_http.post(f"/ai-search/rags/no-such-rag/{name}", json={"query": "x"}), 404, 7002
    )
    assert_error(server_http.post(f"/ai-search/rags/{docs_instance}/{name}", json={}), 400, 7001)
    assert_error(server_http.post(f"/ai-search/rags/UPPER/{name}", json={"query": "x"}), 400, 7001)
    anonymous = httpx.post(
        f"{local_server.account_url}/ai-search/rags/{docs_instance}/{name}", json={"query": "x"}
    )
    assert_error(anonymous, 401, 1001)
    assert server_http.get(f"/ai-search/rags/{docs_instance}/{name}").status_code == 405
