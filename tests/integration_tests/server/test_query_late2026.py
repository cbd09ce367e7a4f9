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


# --------------------------------------------------------------------------- multimodal parts

PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA"
    "60e6kgAAAABJRU5ErkJggg=="
)
IMAGE = {"type": "image_url", "image_url": {"url": PNG}}
TEXT = {"type": "text", "text": "espresso grind size"}
KEYWORD = {"retrieval": {"retrieval_type": "keyword", "keyword_match_mode": "or"}}


def _search(http: httpx.Client, instance: str, body: dict[str, Any]) -> httpx.Response:
    return http.post(f"/ai-search/instances/{instance}/search", json=body)


def _user(*parts: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": list(parts)}]}


@pytest.mark.parametrize(
    "body",
    [
        {"query": "espresso grind size"},
        _user(TEXT),
        {"messages": [{"role": "user", "content": "espresso"}]},
    ],
)
def test_text_queries_are_query_kind_text(server_http, docs_instance, body):
    result = _search(server_http, docs_instance, body).json()["result"]
    assert result["query_kind"] == "text"
    assert result["chunks"]


def test_multimodal_keyword_search_answers_from_the_text_parts(server_http, docs_instance):
    r = _search(server_http, docs_instance, {**_user(TEXT, IMAGE), "ai_search_options": KEYWORD})
    assert r.status_code == 200, r.text
    result = r.json()["result"]
    assert result["query_kind"] == "multimodal"
    assert result["search_query"] == "espresso grind size"
    assert result["chunks"]


@pytest.mark.parametrize("retrieval_type", [None, "vector", "hybrid"])
def test_image_queries_need_an_image_embedder(server_http, docs_instance, retrieval_type):
    opts = {"retrieval": {"retrieval_type": retrieval_type}} if retrieval_type else {}
    for parts, kind in (((IMAGE,), "image"), ((TEXT, IMAGE), "multimodal")):
        r = _search(server_http, docs_instance, {**_user(*parts), "ai_search_options": opts})
        assert_error(
            r,
            400,
            7089,
            f"the query has an image (query_kind '{kind}') but the embedding model cannot embed "
            "images: the embedders of aisearch-local take text only",
        )
        if kind == "multimodal":
            assert "retrieval_type 'keyword' searches its text parts" in r.text


def test_image_only_keyword_search_is_7089(server_http, docs_instance):
    r = _search(server_http, docs_instance, {**_user(IMAGE), "ai_search_options": KEYWORD})
    assert_error(r, 400, 7089, "an image-only query needs a vector index")


def test_the_last_user_message_is_the_query_even_image_only(server_http, docs_instance):
    # an image-only last message is the query: not the earlier text message
    body = {
        "messages": [
            {"role": "user", "content": "espresso grind size"},
            {"role": "assistant", "content": "Fine."},
            {"role": "user", "content": [IMAGE]},
        ],
        "ai_search_options": KEYWORD,
    }
    assert_error(_search(server_http, docs_instance, body), 400, 7089)
    body["messages"][-1]["content"] = [{"type": "text", "text": "grinder burrs"}, IMAGE]
    result = _search(server_http, docs_instance, body).json()["result"]
    assert (result["search_query"], result["query_kind"]) == ("grinder burrs", "multimodal")


def test_a_file_part_is_accepted_but_not_searched(server_http, docs_instance):
    doc = {
        "type": "file",
        "file": {"filename": "a.txt", "file_data": "data:text/plain;base64,aGk="},
    }
    result = _search(server_http, docs_instance, _user(TEXT, doc)).json()["result"]
    assert (result["search_query"], result["query_kind"]) == ("espresso grind size", "text")
    assert_error(
        _search(server_http, docs_instance, _user(doc)), 400, 7001, "file parts are not searched"
    )


def test_multimodal_chat_and_namespace(server_http, docs_instance):
    body = {**_user(TEXT, IMAGE), "ai_search_options": KEYWORD}
    r = server_http.post(f"/ai-search/instances/{docs_instance}/chat/completions", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["chunks"]
    ns = {**body, "ai_search_options": {**KEYWORD, "instance_ids": [docs_instance]}}
    result = server_http.post("/ai-search/namespaces/default/search", json=ns).json()["result"]
    assert result["query_kind"] == "multimodal" and result["chunks"]
    ns["messages"] = _user(IMAGE)["messages"]
    r = server_http.post("/ai-search/namespaces/default/search", json=ns)
    assert_error(r, 400, 7089, "an image-only query")
    ns["ai_search_options"] = {"instance_ids": [docs_instance]}
    r = server_http.post("/ai-search/namespaces/default/chat/completions", json=ns)
    assert_error(r, 400, 7089, "take text only")


def test_an_answer_about_another_image_is_no_cache_hit(server_http, docs_instance):
    path = f"/ai-search/instances/{docs_instance}/chat/completions"
    opts = {**KEYWORD, "cache": {"enabled": True}}
    text = {"type": "text", "text": "What grind size suits a moka pot with this image?"}
    first = server_http.post(path, json={**_user(text, IMAGE), "ai_search_options": opts})
    again = server_http.post(path, json={**_user(text, IMAGE), "ai_search_options": opts})
    other_png = {"type": "image_url", "image_url": {"url": "https://example.com/moka.png"}}
    other = server_http.post(path, json={**_user(text, other_png), "ai_search_options": opts})
    statuses = [r.headers["cf-aig-cache-status"] for r in (first, again, other)]
    assert statuses == ["MISS", "HIT", "MISS"]


HUGE = "data:image/png;base64," + "A" * (10 * 1024 * 1024 * 4 // 3 + 8)


@pytest.mark.parametrize(
    ("part", "message"),
    [
        (
            {"type": "audio", "audio": {}},
            "content[0].type: must be one of text, image_url, file (got 'audio')",
        ),
        ({"type": 3}, "content[0].type: must be one of text, image_url, file (got a number)"),
        ({"text": "no type"}, "content[0].type: must be one of text, image_url, file (got null)"),
        ("bare", "content[0]: must be a {type, ...} object (got a string)"),
        ({"type": "text", "text": 5}, "content[0].text: must be a string (got a number)"),
        ({"type": "image_url"}, "content[0].image_url: must be an object with a url (got null)"),
        (
            {"type": "image_url", "image_url": "https://x"},
            "image_url: must be an object with a url (got a string)",
        ),
        (
            {"type": "image_url", "image_url": {"url": 5}},
            "content[0].image_url.url: must be a string (got a number)",
        ),
        (
            {"type": "image_url", "image_url": {"url": ["a"]}},
            "image_url.url: must be a string (got an array)",
        ),
        (
            {"type": "image_url", "image_url": {"url": "javascript:alert(1)"}},
            "must be an http(s) URL or a data:image/<type>;base64,... URL",
        ),
        (
            {"type": "image_url", "image_url": {"url": "file:///etc/passwd"}},
            "must be an http(s) URL or a data:image",
        ),
        (
            {"type": "image_url", "image_url": {"url": "https://"}},
            "must be an http(s) URL with a host",
        ),
        (
            {"type": "image_url", "image_url": {"url": "https://a b"}},
            "must be an http(s) URL with a host, no spaces",
        ),
        (
            {"type": "image_url", "image_url": {"url": "https://x/" + "a" * 9000}},
            "image_url.url: must be at most 8192 characters (got 9010)",
        ),
        (
            {"type": "image_url", "image_url": {"url": "data:text/plain;base64,aGk="}},
            "must be an image data URL (got 'text/plain')",
        ),
        (
            {"type": "image_url", "image_url": {"url": "data:image/png,raw"}},
            "must be a base64 data URL (data:image/<type>;base64,<data>)",
        ),
        (
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@@"}},
            "must carry non-empty, valid base64 data",
        ),
        (
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,"}},
            "must carry non-empty, valid base64 data",
        ),
        (
            {"type": "image_url", "image_url": {"url": HUGE}},
            "a data URL may carry at most 10 MiB decoded (got 10.0 MiB)",
        ),
        (
            {"type": "image_url", "image_url": {"url": PNG, "detail": "ultra"}},
            "image_url.detail: must be one of auto, low, high",
        ),
        (
            {"type": "file", "file": {}},
            "content[0].file: must carry file_data (a base64 data URL) or file_id",
        ),
        ({"type": "file", "file": "x"}, "content[0].file: must be an object (got a string)"),
        (
            {"type": "file", "file": {"file_id": 3}},
            "content[0].file.file_id: must be a string (got a number)",
        ),
        (
            {"type": "file", "file": {"file_data": "aGk="}},
            "file.file_data: must be a base64 data URL (data:<mime>;base64,<data>)",
        ),
    ],
)
def test_hostile_parts_are_clear_400s(server_http, docs_instance, part, message):
    for route in ("search", "chat/completions"):
        body = {"messages": [{"role": "user", "content": [TEXT, part][1:]}]}
        if route == "search":
            r = _search(server_http, docs_instance, body)
        else:
            r = server_http.post(f"/ai-search/instances/{docs_instance}/{route}", json=body)
        assert_error(
            r, 400, 7001, "messages[0]." + message if message.startswith("content") else message
        )


def test_parts_fuzz_answers_200_400_never_5xx(server_http, docs_instance):
    url = st.sampled_from(
        [PNG, "https://example.com/a.png", "data:image/png;base64,", "ftp://x", ""]
    )
    part = st.one_of(
        st.fixed_dictionaries({"type": st.just("text"), "text": _JSON}),
        st.fixed_dictionaries(
            {"type": st.just("image_url"), "image_url": st.fixed_dictionaries({"url": url | _JSON})}
        ),
        st.fixed_dictionaries({"type": st.just("file"), "file": _JSON}),
        _JSON,
    )

    @settings(
        max_examples=80,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(parts=st.lists(part, max_size=3), kw=st.booleans())
    def run(parts: list[Any], kw: bool) -> None:
        body: dict[str, Any] = {"messages": [{"role": "user", "content": parts}]}
        if kw:
            body["ai_search_options"] = KEYWORD
        r = _search(server_http, docs_instance, body)
        assert r.status_code in (200, 400), r.text
        if r.status_code == 400:
            assert r.json()["errors"][0]["code"] in (7001, 7089), r.text

    run()


def test_search_query_and_query_kind_with_rewriting(server_http, docs_instance):
    body = {
        "messages": [
            {"role": "user", "content": "How do I dial in espresso?"},
            {"role": "assistant", "content": "Adjust the grind."},
            {
                "role": "user",
                "content": [{"type": "text", "text": "How long does it take?"}, IMAGE],
            },
        ],
        "ai_search_options": {**KEYWORD, "query_rewrite": {"enabled": True}},
    }
    result = _search(server_http, docs_instance, body).json()["result"]
    assert result["query_kind"] == "multimodal"
    assert result["search_query"].startswith("How long does it take?")
    assert "espresso" in result["search_query"].lower()  # the rewrite read the history
    ns = {
        **body,
        "ai_search_options": {**body["ai_search_options"], "instance_ids": [docs_instance]},
    }
    result = server_http.post("/ai-search/namespaces/default/search", json=ns).json()["result"]
    assert result["query_kind"] == "multimodal"
    assert "espresso" in result["search_query"].lower()
