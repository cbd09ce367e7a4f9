"""Server hardening (issue #11): ids on the server, writes that could poison reads, 5xx on input.

* Path ids that are not ids (dot segments, encoded separators, control characters, out of the
  charset, too long) are refused with 400 / 7001 naming the path parameter, also when a raw
  client puts ``..`` or ``%2e%2e`` on the wire, and an id never resolves to another resource.
* Every write refuses what it could not store and serve back (NaN, Infinity, 1e400, integers
  beyond 2^53 - 1, lone surrogates, deep nesting, wrong types) with 400 / 7001 naming the field;
  after each attempt every read route still answers 2xx.
* Data written by an older version (bad JSON put straight into SQLite) cannot take a read route
  down after a restart: non-finite numbers are served as null, lone surrogates as U+FFFD.
* The classes of malformed input that answered 500 now answer 400 (or index an error item).
"""

from __future__ import annotations

import http.client
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aisearch_local.testing import LocalServer
from tests.integration_tests.server._fuzz import read_everything
from tests.integration_tests.server._helpers import assert_error

pytestmark = pytest.mark.timeout(300)

ACCOUNT = "/client/v4/accounts/local-account"


@pytest.fixture(scope="module")
def hard_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with LocalServer(data_dir=tmp_path_factory.mktemp("hardening"), token="t") as server:
        with _http(server) as http:
            assert http.post("/ai-search/namespaces", json={"name": "hard-ns"}).status_code == 200
            for ns in ("default", "hard-ns"):
                r = http.post(f"/ai-search/namespaces/{ns}/instances", json={"id": "hard"})
                assert r.status_code == 201, r.text
                up = http.post(
                    f"/ai-search/namespaces/{ns}/instances/hard/items",
                    files={"file": ("docs/espresso.md", b"Espresso needs a fine grind.")},
                    data={"metadata": json.dumps({"tag": "a"})},
                )
                assert up.status_code == 200, up.text
        yield server


def _http(server: LocalServer) -> httpx.Client:
    return httpx.Client(base_url=server.account_url, headers=server.headers, timeout=60)


def _raw(
    server: LocalServer, method: str, path: str, body: bytes = b"", ctype: str = "application/json"
) -> tuple[int, dict[str, Any]]:
    """Send a request with http.client: the path goes on the wire exactly as given."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
    try:
        headers = {**server.headers, "content-type": ctype, "content-length": str(len(body))}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
    return resp.status, json.loads(data)


def _assert_reads_ok(server: LocalServer) -> None:
    calls, failures = read_everything(server, "local-account")
    assert calls >= 20
    assert failures == []


# -- 1. ids on the server -------------------------------------------------------------------------

HOSTILE_IDS = [
    "..",
    ".",
    "%2e%2e",
    "%2E%2e",
    ".%2e",
    "a%00b",
    "a%0Ab",
    "a%09",
    "%7F",
    "UPPER",
    "a" * 65,
    "a.b",
    "%C3%A9",
    "a%20b",
    "a--b",
    "-a",
]

ID_ROUTES = [
    ("GET", ACCOUNT + "/ai-search/instances/{x}", "instance_id"),
    ("GET", ACCOUNT + "/ai-search/namespaces/{x}", "namespace"),
    ("DELETE", ACCOUNT + "/ai-search/namespaces/{x}", "namespace"),
    ("GET", ACCOUNT + "/ai-search/namespaces/{x}/instances/hard", "namespace"),
    ("GET", ACCOUNT + "/ai-search/namespaces/default/instances/{x}/stats", "instance_id"),
    ("POST", ACCOUNT + "/ai-search/instances/{x}/search", "instance_id"),
    ("GET", ACCOUNT + "/ai-search/instances/hard/items/{x}", "item_id"),
    ("DELETE", ACCOUNT + "/ai-search/instances/hard/items/{x}", "item_id"),
    ("GET", ACCOUNT + "/ai-search/instances/hard/jobs/{x}", "job_id"),
    ("POST", ACCOUNT + "/autorag/rags/{x}/search", "rag_id"),
    ("GET", "/client/v4/accounts/{x}/ai-search/instances", "account_id"),
    ("PUT", "/client/v4/_local/faults/default/{x}", "instance_id"),
    ("PUT", "/client/v4/_local/faults/{x}/hard", "namespace"),
    ("GET", "/client/v4/_local/faults/default/{x}", "instance_id"),
    ("GET", "/client/v4/_local/faults/{x}/hard", "namespace"),
]


def _id_cases() -> list[tuple[str, str, str, str]]:
    cases = []
    for method, template, param in ID_ROUTES:
        for segment in HOSTILE_IDS:
            if param == "account_id" and segment in ("UPPER", "a--b", "-a"):
                continue  # account ids allow upper case letters and any '-'
            if param in ("item_id", "job_id") and segment in ("a--b", "-a"):
                continue  # in the alphabet of generated ids: an unknown id, 404
            cases.append((method, template, param, segment))
    return cases


@pytest.mark.parametrize(("method", "template", "param", "segment"), _id_cases())
def test_hostile_path_ids_are_400_naming_the_parameter(
    hard_server, method, template, param, segment
):
    path = template.replace("{x}", segment)
    body = b'{"query": "espresso"}' if method in ("POST", "PUT") else b""
    if "faults" in template:
        body = b"{}"
    status, doc = _raw(hard_server, method, path, body)
    assert status == 400, (path, doc)
    assert doc["success"] is False and doc["result"] is None
    assert doc["errors"][0]["code"] == 7001
    assert doc["errors"][0]["message"].startswith(f"{param}: "), doc


@pytest.mark.parametrize("encoded", ["%2F", "%2f"])
def test_an_encoded_slash_never_reaches_another_route(hard_server, encoded):
    # /instances/hard%2Fsearch would be decoded into POST /instances/hard/search
    path = ACCOUNT + f"/ai-search/instances/hard{encoded}search"
    status, doc = _raw(hard_server, "POST", path, b'{"query": "espresso"}')
    assert status == 400, doc
    assert doc["errors"][0]["code"] == 7001
    assert doc["errors"][0]["message"].startswith("path: "), doc


@pytest.mark.parametrize("encoded", ["%5C", "%5c", "%00"])
def test_an_encoded_backslash_or_nul_in_an_id_is_400(hard_server, encoded):
    status, doc = _raw(hard_server, "GET", ACCOUNT + f"/ai-search/instances/hard{encoded}stats")
    assert status == 400, doc
    assert doc["errors"][0]["code"] == 7001
    assert doc["errors"][0]["message"].startswith(("path: ", "instance_id: ")), doc


def test_raw_dot_segments_are_not_normalised_into_another_resource(hard_server):
    # a raw client can send ".." literally: it must not reach instance "hard" through "x/.."
    for path in (
        ACCOUNT + "/ai-search/namespaces/x/../instances/hard",
        ACCOUNT + "/ai-search/namespaces/%2e%2e/instances/hard",
        ACCOUNT + "/ai-search/instances/hard/items/..",
    ):
        status, doc = _raw(hard_server, "GET", path)
        assert status in (400, 404), (path, doc)
        assert doc["success"] is False


def test_an_item_key_is_never_taken_for_an_item_id(hard_server):
    with _http(hard_server) as http:
        up = http.post(
            "/ai-search/instances/hard/items", files={"file": ("abcdef", b"plain text key")}
        )
        assert up.status_code == 200, up.text
        item = up.json()["result"]
        assert item["id"] != "abcdef"
        assert http.get(f"/ai-search/instances/hard/items/{item['id']}").status_code == 200
        # the key is a well-formed id: before, the server resolved it to the item by key
        assert_error(http.get("/ai-search/instances/hard/items/abcdef"), 404, 7002)
        assert http.delete(f"/ai-search/instances/hard/items/{item['id']}").status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/ai-search/instances", {"id": "trailing\n"}, "id"),
        ("/ai-search/namespaces", {"name": "trailing\n"}, "name"),
        (
            "/ai-search/namespaces/default/search",
            {"query": "x", "ai_search_options": {"instance_ids": ["hard", ".."]}},
            "ai_search_options.instance_ids[1]",
        ),
        ("/ai-search/instances/hard/items", {"key": "../../etc/passwd"}, "key"),
        ("/ai-search/instances/hard/items", {"key": "/etc/passwd"}, "key"),
        ("/ai-search/instances/hard/items", {"key": "a\x00b"}, "key"),
    ],
)
def test_ids_and_keys_in_bodies_are_checked(hard_server, path, body, field):
    with _http(hard_server) as http:
        method = "PUT" if path.endswith("/items") else "POST"
        r = http.request(method, path, json=body)
        assert_error(r, 400, 7001, f"{field}: ")


def test_an_upload_filename_with_dot_segments_is_refused(hard_server):
    with _http(hard_server) as http:
        for name in ("../escape.md", "a/./b.md", "/abs.md", "a/../../b.md"):
            r = http.post("/ai-search/instances/hard/items", files={"file": (name, b"text")})
            assert_error(r, 400, 7001, "file.filename: ")


# -- 2. writes that could poison reads ------------------------------------------------------------

NS = "/ai-search/namespaces/default"
POISON_JSON = [
    ("NaN", "NaN"),
    ("Infinity", "Infinity"),
    ("-Infinity", "-Infinity"),
    ("1e400", "1e400"),
    ("big-int", "9007199254740992"),
    ("huge-int", "1" + "0" * 5000),
    ("lone-surrogate", '"\\ud800"'),
    ("deep", "[" * 40 + "]" * 40),
]


def _put_in(template: str, value: str) -> str:
    return template.replace("@", value)


def _upload_with_metadata(http: httpx.Client, meta_text: str) -> httpx.Response:
    return http.post(
        "/ai-search/instances/hard/items",
        files={"file": ("poison.md", b"poison attempt")},
        data={"metadata": meta_text},
    )


# (name, method, path, body template with @ for the value, field named in the 400)
WRITES = [
    (
        "upload metadata",
        "UPLOAD",
        "/ai-search/instances/hard/items",
        '{"note": @}',
        "metadata.note",
    ),
    (
        "create instance unknown field",
        "POST",
        f"{NS}/instances",
        '{"id": "poisoned", "extra_field": @}',
        "extra_field",
    ),
    (
        "update instance unknown field",
        "PUT",
        f"{NS}/instances/hard",
        '{"extra_field": @}',
        "extra_field",
    ),
    (
        "update instance documented field",
        "PUT",
        f"{NS}/instances/hard",
        '{"score_threshold": @}',
        "score_threshold",
    ),
    (
        "update namespace public_endpoint_params",
        "PUT",
        "/ai-search/namespaces/hard-ns",
        '{"public_endpoint_params": @}',
        "public_endpoint_params",
    ),
    (
        "create namespace",
        "POST",
        "/ai-search/namespaces",
        '{"name": "poison-ns", "description": @}',
        "description",
    ),
    ("items create_or_update", "PUT", f"{NS}/instances/hard/items", '{"key": @}', "key"),
    ("job description", "POST", f"{NS}/instances/hard/jobs", '{"description": @}', "description"),
    ("fault", "PUT", "/_local/faults/default/hard", '{"latency_ms": @}', "latency_ms"),
    (
        "search",
        "POST",
        f"{NS}/instances/hard/search",
        '{"query": "x", "ai_search_options": {"retrieval": {"match_threshold": @}}}',
        "ai_search_options.retrieval.match_threshold",
    ),
    (
        "chat",
        "POST",
        f"{NS}/instances/hard/chat/completions",
        '{"messages": [{"role": "user", "content": @}]}',
        "messages[0].content",
    ),
    (
        "legacy",
        "POST",
        "/autorag/rags/hard/search",
        '{"query": "x", "max_num_results": @}',
        "max_num_results",
    ),
]


def _write(http: httpx.Client, method: str, path: str, body: str) -> httpx.Response:
    if method == "UPLOAD":
        return _upload_with_metadata(http, body)
    if path.startswith("/_local/"):  # outside the account prefix of the client's base URL
        url = str(http.base_url).split("/accounts/")[0] + path
        return httpx.request(method, url, content=body, headers=http.headers)
    return http.request(method, path, content=body)


@pytest.mark.parametrize(
    ("route", "method", "path", "template", "field"), WRITES, ids=[w[0] for w in WRITES]
)
def test_a_value_that_cannot_be_served_back_is_refused_and_reads_stay_up(
    hard_server, route, method, path, template, field
):
    for kind, value in POISON_JSON:
        with _http(hard_server) as http:
            r = _write(http, method, path, _put_in(template, value))
        assert r.status_code == 400, (route, kind, r.text)
        body = r.json()
        assert body["success"] is False and body["errors"][0]["code"] == 7001
        message = body["errors"][0]["message"]
        assert message.startswith(f"{field}"), (kind, message)
    _assert_reads_ok(hard_server)


def test_refused_writes_leave_nothing_behind_across_a_restart(tmp_path: Path):
    data = tmp_path / "data"
    with LocalServer(data_dir=data, token="t") as server, _http(server) as http:
        assert http.post("/ai-search/namespaces", json={"name": "hard-ns"}).status_code == 200
        assert http.post("/ai-search/instances", json={"id": "hard"}).status_code == 201
        r = _upload_with_metadata(http, '{"note": "fine"}')
        assert r.status_code == 200, r.text
        for route, method, path, template, _field in WRITES:
            for kind, value in POISON_JSON:
                r = _write(http, method, path, _put_in(template, value))
                assert r.status_code == 400, (route, kind)
    with LocalServer(data_dir=data, token="t") as server, _http(server) as http:
        calls, failures = read_everything(server, "local-account")
        assert failures == []
        assert calls >= 15
        assert http.get("/ai-search/instances/poisoned").status_code == 404
        assert http.get("/ai-search/namespaces/poison-ns").status_code == 404
        assert "extra_field" not in http.get("/ai-search/instances/hard").json()["result"]
        items = http.get("/ai-search/instances/hard/items").json()["result"]
        assert [i["metadata"] for i in items] == [{"note": "fine"}]


@pytest.mark.parametrize(
    ("path", "method", "body", "field"),
    [
        # types that do not match the field, each stored before and then breaking reads/searches
        (f"{NS}/instances", "POST", {"id": "t1", "source": ["a"]}, "source"),
        (f"{NS}/instances", "POST", {"id": "t1", "metadata": "x"}, "metadata"),
        (
            f"{NS}/instances",
            "POST",
            {"id": "t1", "public_endpoint_params": 3},
            "public_endpoint_params",
        ),
        (
            f"{NS}/instances",
            "POST",
            {"id": "t1", "retrieval_options": {"keyword_match_mode": ["and"]}},
            "retrieval_options.keyword_match_mode",
        ),
        (
            f"{NS}/instances",
            "POST",
            {"id": "t1", "retrieval_options": {"boost_by": ["x"]}},
            "retrieval_options.boost_by[0]",
        ),
        (
            f"{NS}/instances/hard",
            "PUT",
            {"retrieval_options": {"boost_by": [{"field": 3}]}},
            "retrieval_options.boost_by[0].field",
        ),
        (f"{NS}/instances/hard", "PUT", {"summarization": "yes"}, "summarization"),
        (
            "/ai-search/namespaces/hard-ns",
            "PUT",
            {"public_endpoint_params": [1]},
            "public_endpoint_params",
        ),
    ],
)
def test_mistyped_fields_are_refused_and_reads_stay_up(hard_server, path, method, body, field):
    with _http(hard_server) as http:
        r = http.request(method, path, json=body)
    assert_error(r, 400, 7001, f"{field}: ")
    _assert_reads_ok(hard_server)


def test_item_sync_and_create_or_update_bodies_are_checked(hard_server):
    with _http(hard_server) as http:
        items = http.get(f"{NS}/instances/hard/items").json()["result"]
        path = f"{NS}/instances/hard/items/{items[0]['id']}"
        for body, field in (
            (b'{"next_action": NaN}', "next_action"),
            (b'{"next_action": "DELETE"}', "next_action"),
            (b'{"next_action": "INDEX", "wait_for_completion": "yes"}', "wait_for_completion"),
            (b"[1]", "request body"),
        ):
            assert_error(http.patch(path, content=body), 400, 7001, f"{field}: ")
            put = http.put(
                f"{NS}/instances/hard/items",
                content=body.replace(b"{", b'{"key": "docs/espresso.md", ', 1),
            )
            if body != b"[1]":
                assert_error(put, 400, 7001, f"{field}: ")
        ok = {"next_action": "INDEX", "wait_for_completion": True}
        assert http.patch(path, json=ok).status_code == 200
        assert http.patch(path).status_code == 200  # no body: re-index
        put = http.put(f"{NS}/instances/hard/items", json={"key": "docs/espresso.md", **ok})
        assert put.status_code == 200, put.text


def test_upload_metadata_types_are_checked(hard_server):
    with _http(hard_server) as http:
        for meta, field in (
            ('{"note": {"a": 1}}', "metadata.note"),
            ('{"note": [1]}', "metadata.note"),
            ('{"note": null}', "metadata.note"),
            ('{"": 1}', "metadata."),
            (_put_in('{"@": 1}', "k" * 65), "metadata.k"),
            ("[1]", "metadata"),
        ):
            assert_error(_upload_with_metadata(http, meta), 400, 7001, field)


# -- data stored by an older version ------------------------------------------------------------


def test_bad_rows_from_an_older_version_do_not_take_reads_down(tmp_path: Path):
    data = tmp_path / "data"
    with LocalServer(data_dir=data, token="t") as server, _http(server) as http:
        assert http.post("/ai-search/namespaces", json={"name": "old-ns"}).status_code == 200
        assert http.post("/ai-search/instances", json={"id": "old"}).status_code == 201
        for key in ("a.md", "b.md", "c.md", "d.md"):
            up = http.post(
                "/ai-search/instances/old/items",
                files={"file": (key, b"espresso grind " + key.encode())},
                data={"metadata": '{"tag": "x"}'},
            )
            assert up.status_code == 200, up.text
        job = http.post("/ai-search/instances/old/jobs", json={})
        assert job.status_code == 200
    # what an older version could have written: json.dumps accepts NaN, inf and lone surrogates
    conn = sqlite3.connect(data / "aisearch-local.sqlite3")
    with conn:
        conn.execute(
            "UPDATE items SET metadata = ? WHERE key = 'a.md'",
            ('{"note": NaN, "s": "\\ud800x", "big": 1e400, "neg": -Infinity}',),
        )
        conn.execute(
            "UPDATE items SET metadata = ? WHERE key = 'b.md'",
            ('{"huge": ' + "1" * 5000 + "}",),
        )
        conn.execute("UPDATE items SET metadata = ? WHERE key = 'c.md'", ("[" * 5000 + "]" * 5000,))
        conn.execute("UPDATE items SET metadata = ? WHERE key = 'd.md'", ("not json",))
        conn.execute(
            "UPDATE instances SET config = json_set(config, '$.extra', 'X') WHERE id = 'old'"
        )
        conn.execute(
            "UPDATE instances SET config = replace(config, '\"X\"', 'NaN') WHERE id = 'old'"
        )
        conn.execute(
            "UPDATE namespaces SET extra = ? WHERE name = 'old-ns'",
            ('{"public_endpoint_params": {"x": NaN, "y": "\\udfff"}}',),
        )
        conn.execute("UPDATE jobs SET log = ?", ('[{"message": "\\ud800", "n": Infinity}]',))
    conn.close()
    with LocalServer(data_dir=data, token="t") as server, _http(server) as http:
        calls, failures = read_everything(server, "local-account")
        assert failures == []
        assert calls >= 15
        items = {i["key"]: i for i in http.get("/ai-search/instances/old/items").json()["result"]}
        assert items["a.md"]["metadata"] == {"note": None, "s": "\ufffdx", "big": None, "neg": None}
        assert items["b.md"]["metadata"] == {"huge": None}
        assert items["c.md"]["metadata"] == {}
        assert items["d.md"]["metadata"] == {}
        assert http.get("/ai-search/instances/old").json()["result"]["extra"] is None
        ns = http.get("/ai-search/namespaces/old-ns").json()["result"]
        assert ns["public_endpoint_params"] == {"x": None, "y": "\ufffd"}
        jobs = http.get("/ai-search/instances/old/jobs").json()["result"]
        logs = http.get(f"/ai-search/instances/old/jobs/{jobs[0]['id']}/logs").json()["result"]
        assert logs[0]["message"] == "\ufffd"
        # the instance stays writable: an update rewrites its configuration without the NaN
        r = http.put("/ai-search/instances/old", json={"extra": 1})
        assert r.status_code == 200, r.text
        assert r.json()["result"]["extra"] == 1


# -- 3. malformed input that answered 500 ----------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"query": "\\ud800"}', "query"),
        (
            b'{"query": "x", "ai_search_options": {"retrieval": {"max_num_results": NaN}}}',
            "ai_search_options.retrieval.max_num_results",
        ),
        (
            b'{"query": "x", "ai_search_options": {"retrieval": {"max_num_results": 1'
            + b"0" * 5000
            + b"}}}",
            "ai_search_options.retrieval.max_num_results",
        ),
        (b"[" * 100_000 + b"]" * 100_000, "request body"),
        (b'{"query": ' + b"[" * 5000 + b"]" * 5000 + b"}", "request body"),
        (
            b'{"query": "x", "ai_search_options": {"retrieval": {"filters": {"a": Infinity}}}}',
            "ai_search_options.retrieval.filters.a",
        ),
        (
            b'{"query": "x", "ai_search_options": {"retrieval": {"keyword_match_mode": ["and"]}}}',
            "ai_search_options.retrieval.keyword_match_mode",
        ),
        (b"\xff\xfe{", "request body"),
    ],
)
def test_malformed_search_bodies_are_400(hard_server, body, field):
    with _http(hard_server) as http:
        r = http.post(f"{NS}/instances/hard/search", content=body)
    assert_error(r, 400, 7001, f"{field}: ")


@pytest.mark.parametrize("value", ["²", "١٢٣", "9" * 5000])
def test_a_non_ascii_digit_timestamp_in_a_filter_is_not_a_500(hard_server, value):
    flt = {"timestamp": value}
    with _http(hard_server) as http:
        r = http.post(
            f"{NS}/instances/hard/search",
            json={"query": "espresso", "ai_search_options": {"retrieval": {"filters": flt}}},
        )
        assert r.status_code == 200, r.text
        assert r.json()["result"]["chunks"] == []  # a string never equals the numeric timestamp
        listed = http.get(f"{NS}/instances/hard/items", params={"metadata_filter": json.dumps(flt)})
        assert listed.status_code == 200, listed.text
        assert listed.json()["result"] == []


def test_metadata_filter_query_parameter_is_parsed_strictly(hard_server):
    with _http(hard_server) as http:
        for text, field in (
            ('{"a": NaN}', "metadata_filter.a"),
            ('{"a": "\\ud800"}', "metadata_filter.a"),
            ("[" * 5000, "metadata_filter"),
            ('{"n": ' + "9" * 5000 + "}", "metadata_filter.n"),
        ):
            r = http.get(f"{NS}/instances/hard/items", params={"metadata_filter": text})
            assert_error(r, 400, 7001, f"{field}: ")


@pytest.mark.parametrize(
    ("content", "status", "needle"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "error", "nests deeper than"),
        (b'{"a":' * 150 + b"1" + b"}" * 150, "error", "nests deeper than"),
        (b'{"n": ' + b"1" * 5000 + b"}", "error", "invalid JSON"),
        (b'{"a": "\\ud800 espresso"}', "completed", None),
        (b'{"a": NaN, "b": "espresso"}', "completed", None),
    ],
)
def test_json_documents_that_cannot_be_read_become_error_items(
    hard_server, content, status, needle
):
    with _http(hard_server) as http:
        r = http.post("/ai-search/instances/hard/items", files={"file": ("odd.json", content)})
        assert r.status_code == 200, r.text
        item = r.json()["result"]
        assert item["status"] == status, item
        if needle:
            assert needle in item["error"]
        else:
            chunks = http.get(f"/ai-search/instances/hard/items/{item['id']}/chunks").json()
            text = chunks["result"][0]["text"]
            assert "\ud800" not in text
            assert text.encode("utf-8")
        http.delete(f"/ai-search/instances/hard/items/{item['id']}")
    _assert_reads_ok(hard_server)


def test_source_folder_with_bad_sidecars_and_names_syncs_without_5xx(hard_server, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "ok.md").write_text("Cold brew steeps for hours.", encoding="utf-8")
    (src / "nan.md").write_text("Pour over.", encoding="utf-8")
    (src / "nan.md.meta.json").write_text('{"tag": NaN}', encoding="utf-8")
    (src / "nested.md").write_text("Moka pot.", encoding="utf-8")
    (src / "nested.md.meta.json").write_text('{"tag": {"a": 1}}', encoding="utf-8")
    (src / "deep.json").write_text("[" * 50_000 + "]" * 50_000, encoding="utf-8")
    (src / b"bad-\xff.md".decode("utf-8", "surrogateescape")).write_bytes(b"latte")
    assert hard_server.service is not None
    hard_server.service.create_instance("default", {"id": "synced"}, source_dir=str(src))
    with _http(hard_server) as http:
        job = http.post("/ai-search/instances/synced/jobs", json={})
        assert job.status_code == 200, job.text
        items = {
            i["key"]: i for i in http.get("/ai-search/instances/synced/items").json()["result"]
        }
    assert items["ok.md"]["status"] == "completed"
    assert items["nan.md"]["status"] == "error" and "NaN" in items["nan.md"]["error"]
    assert items["nested.md"]["status"] == "error" and "metadata.tag" in items["nested.md"]["error"]
    assert items["deep.json"]["status"] == "error"
    assert items["bad-\ufffd.md"]["status"] == "error"
    _assert_reads_ok(hard_server)
    with _http(hard_server) as http:
        assert http.delete("/ai-search/instances/synced").status_code == 200


@pytest.mark.parametrize("value", [["close_enough"], {"a": 1}, [1], None, 1])
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_a_cache_threshold_of_the_wrong_type_is_a_400(hard_server, method, value):
    # a list or an object used to reach a dict lookup and end as a 500 (found by the fuzzer)
    body = {"cache_threshold": value}
    with _http(hard_server) as http:
        if method == "POST":
            r = http.post("/ai-search/instances", json={"id": "cache-typed", **body})
        else:
            http.post("/ai-search/instances", json={"id": "cache-typed"})
            r = http.request(method, "/ai-search/instances/cache-typed", json=body)
    assert r.status_code == 400, r.text
    error = r.json()["errors"][0]
    assert error["code"] == 7001 and error["message"].startswith("cache_threshold: must be one of")
