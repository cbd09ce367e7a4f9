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


# --------------------------------------------------------------------------- limits, use_ocr


def test_upload_limits_by_format(server_http, make_instance):
    iid = make_instance()
    items = f"/ai-search/namespaces/default/instances/{iid}/items"
    four, ten = 4 * 1024 * 1024, 10 * 1024 * 1024
    r = server_http.post(items, files={"file": ("page.html", b"<p>a</p>" + b" " * four)})
    assert_error(
        r,
        413,
        7001,
        "file: page.html: file is larger than the 4194304 byte (4 MiB) limit of its format",
        "10 MiB applies to plain text, code, and PDFs with indexing_options.use_ocr",
    )
    r = server_http.post(items, files={"file": ("notes.txt", b"a" * (ten + 1))})
    assert_error(r, 413, 7001, "notes.txt: file is larger than the 10485760 byte (10 MiB) limit")
    # a text file over 4 MiB is accepted (one long blank run: cheap to index)
    ok = server_http.post(items, files={"file": ("long.txt", b"espresso" + b" " * (four + 10))})
    assert ok.status_code == 200, ok.text
    assert ok.json()["result"]["status"] == "completed"
    # a PDF gets 10 MiB only on an instance with use_ocr (the local server cannot read PDFs:
    # the item is then an error item, not a 413)
    scan = ("scan.pdf", b"%PDF-1.7" + b" " * (four + 10))
    assert_error(server_http.post(items, files={"file": scan}), 413, 7001, "4 MiB")
    ocr = make_instance(indexing_options={"use_ocr": True})
    r = server_http.post(f"/ai-search/instances/{ocr}/items", files={"file": scan})
    assert r.status_code == 200, r.text
    assert r.json()["result"]["status"] == "error"
    assert "unsupported file type .pdf" in r.json()["result"]["error"]


def test_use_ocr_is_stored_echoed_and_typed(server_http, make_instance):
    iid = make_instance()
    base = f"/ai-search/instances/{iid}"
    got = server_http.get(base).json()["result"]
    assert got["indexing_options"] == {"keyword_tokenizer": "porter", "use_ocr": False}
    r = server_http.put(base, json={"indexing_options": {"use_ocr": True}})
    assert r.status_code == 200, r.text
    # members not sent are kept: the tokenizer stays
    assert r.json()["result"]["indexing_options"] == {
        "keyword_tokenizer": "porter",
        "use_ocr": True,
    }
    assert server_http.get(base).json()["result"]["indexing_options"]["use_ocr"] is True
    tri = make_instance(indexing_options={"keyword_tokenizer": "trigram"})
    got = server_http.get(f"/ai-search/instances/{tri}").json()["result"]
    assert got["indexing_options"] == {"keyword_tokenizer": "trigram", "use_ocr": False}


@pytest.mark.parametrize(
    ("config", "field", "why"),
    [
        ({"indexing_options": {"use_ocr": "notabool"}}, "indexing_options.use_ocr", "boolean"),
        (
            {"indexing_options": {"keyword_tokenizer": 3}},
            "indexing_options.keyword_tokenizer",
            "one of",
        ),
        ({"indexing_options": []}, "indexing_options", "must be an object"),
        ({"metadata": {"worker_domain": 5}}, "metadata.worker_domain", "must be a string"),
        ({"source_params": {"include_items": "docs/**"}}, "source_params.include_items", "list"),
        ({"source_params": {"include_items": [1]}}, "source_params.include_items[0]", "string"),
        (
            {"source_params": {"web_crawler": {"parse_type": "everything"}}},
            "source_params.web_crawler.parse_type",
            "sitemap",
        ),
        (
            {"source_params": {"web_crawler": {"discover_options": {"limit": "10"}}}},
            "source_params.web_crawler.discover_options.limit",
            "number",
        ),
        (
            {"source_params": {"web_crawler": {"parse_options": {"content_selector": [{}]}}}},
            "source_params.web_crawler.parse_options.content_selector[0].path",
            "required",
        ),
        (
            {"source_params": {"web_crawler": {"parse_options": {"include_headers": {"a": 1}}}}},
            "source_params.web_crawler.parse_options.include_headers.a",
            "string",
        ),
    ],
)
def test_mistyped_nested_config_is_refused_and_never_stored(
    server_http, make_instance, config, field, why
):
    iid = _uid("nest")
    r = server_http.post("/ai-search/instances", json={"id": iid, **config})
    assert_error(r, 400, 7001, f"{field}: ", why)
    assert_error(server_http.get(f"/ai-search/instances/{iid}"), 404, 7002)
    existing = make_instance()
    before = server_http.get(f"/ai-search/instances/{existing}").json()["result"]
    assert_error(server_http.put(f"/ai-search/instances/{existing}", json=config), 400, 7001, field)
    assert server_http.get(f"/ai-search/instances/{existing}").json()["result"] == before


# --------------------------------------------------------------------------- instance type


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("https://docs.example.com", "web-crawler"),
        ("HTTP://docs.example.com/a", "web-crawler"),
        ("my-bucket", "r2"),
        (None, None),
    ],
)
def test_create_without_type_infers_it_from_the_source(server_http, source, expected):
    iid = _uid("typ")
    body = {"id": iid} if source is None else {"id": iid, "source": source}
    r = server_http.post("/ai-search/instances", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["result"]["type"] == expected
    assert server_http.get(f"/ai-search/instances/{iid}").json()["result"]["type"] == expected
    # an explicit type is kept as sent
    other = _uid("typ")
    r = server_http.post("/ai-search/instances", json={"id": other, "type": None, "source": "b"})
    assert r.json()["result"]["type"] is None


# --------------------------------------------------------------------------- strict / lenient


def test_lenient_by_default_ignores_unknown_options_and_keeps_unknown_fields(
    server_http, make_instance
):
    iid = make_instance(future_field={"a": 1}, indexing_options={"future": True})
    got = server_http.get(f"/ai-search/instances/{iid}").json()["result"]
    assert got["future_field"] == {"a": 1}
    assert got["indexing_options"]["future"] is True
    r = server_http.post(
        f"/ai-search/instances/{iid}/search",
        json={"query": "x", "ai_search_options": {"retrieval": {"max_num_result": 3}, "zz": {}}},
    )
    assert r.status_code == 200, r.text


def test_strict_refuses_unknown_options_and_fields(
    server_http, make_instance, local_server, monkeypatch
):
    iid = make_instance()
    monkeypatch.setattr(local_server.service, "strict", True)
    search = f"/ai-search/namespaces/default/instances/{iid}/search"
    typo = {"query": "x", "ai_search_options": {"retrieval": {"max_num_result": 3}}}
    assert_error(
        server_http.post(search, json=typo),
        400,
        7001,
        "ai_search_options.retrieval.max_num_result: unknown option (the server runs with "
        "--strict); did you mean 'max_num_results'? known: boost_by, context_expansion",
    )
    section = {"query": "x", "ai_search_options": {"rerank": {"enabled": True}}}
    assert_error(server_http.post(search, json=section), 400, 7001, "ai_search_options.rerank")
    chat = f"/ai-search/instances/{iid}/chat/completions"
    body = {
        "messages": [{"role": "user", "content": "x"}],
        "ai_search_options": {"cache": {"on": 1}},
    }
    assert_error(server_http.post(chat, json=body), 400, 7001, "ai_search_options.cache.on")
    ok = {"query": "x", "ai_search_options": {"retrieval": {"max_num_results": 3}, "cache": {}}}
    assert server_http.post(search, json=ok).status_code == 200
    assert_error(
        server_http.post("/ai-search/instances", json={"id": _uid("s"), "chunk_sise": 5}),
        400,
        7001,
        "chunk_sise: unknown instance field (the server runs with --strict); did you mean "
        "'chunk_size'? known: ai_gateway_id,",
    )
    assert_error(
        server_http.put(
            f"/ai-search/instances/{iid}", json={"indexing_options": {"use_orc": True}}
        ),
        400,
        7001,
        "indexing_options.use_orc: unknown field (the server runs with --strict); did you mean "
        "'use_ocr'? known: keyword_tokenizer, use_ocr",
    )


# --------------------------------------------------------------------------- chunk_size


@pytest.mark.parametrize("size", [1, 5, 10_000])
def test_chunk_size_has_no_invented_bound(server_http, make_instance, size):
    iid = make_instance(chunk_size=size)
    got = server_http.get(f"/ai-search/instances/{iid}").json()["result"]
    assert got["chunk_size"] == size  # stored and echoed as sent
    item = upload(server_http, iid, "a.md", " ".join(f"w{n}" for n in range(40)))
    # the local chunker takes 16..4096 words: 40 words are 3 chunks at 16, 1 at 4096
    assert item["chunks_count"] == (1 if size > 40 else 3)


# --------------------------------------------------------------------------- upload warnings


def test_upload_warns_about_undeclared_fields_and_mistyped_values(server_http, make_instance):
    iid = make_instance(
        custom_metadata=[
            {"field_name": "level", "data_type": "text"},
            {"field_name": "rating", "data_type": "number"},
            {"field_name": "published", "data_type": "datetime"},
            {"field_name": "draft", "data_type": "boolean"},
        ]
    )
    good = upload(
        server_http,
        iid,
        "ok.md",
        "Espresso basics.",
        {"level": "beginner", "rating": 4.5, "published": "2026-01-02T03:04:05Z", "draft": False},
    )
    assert "warnings" not in good
    item = upload(
        server_http,
        iid,
        "warn.md",
        "Espresso basics.",
        {"LEVEL": 3, "author": "ana", "published": 1767322800, "draft": "no"},
    )
    assert item["status"] == "completed"
    assert item["warnings"] == [
        {"code": "custom_metadata_value_not_indexed", "expected_type": "text", "field": "LEVEL"},
        {"code": "custom_metadata_field_not_filterable", "field": "author"},
        {"code": "custom_metadata_value_not_indexed", "expected_type": "boolean", "field": "draft"},
    ]
