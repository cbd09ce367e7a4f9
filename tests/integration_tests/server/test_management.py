"""Namespaces, instances (both path families), items, chunks and jobs over real HTTP."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.integration_tests.server._helpers import assert_error, search, upload

pytestmark = pytest.mark.integration


def _uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_namespace_crud(server_http):
    name = _uid("ns")
    r = server_http.post("/ai-search/namespaces", json={"name": name, "description": "team docs"})
    assert r.status_code == 200, r.text
    assert r.json()["result"]["name"] == name
    assert_error(server_http.post("/ai-search/namespaces", json={"name": name}), 409, 7009)
    listed = server_http.get("/ai-search/namespaces", params={"per_page": 100}).json()
    assert {"default", name} <= {n["name"] for n in listed["result"]}
    assert listed["result_info"]["total_count"] >= 2
    got = server_http.get(f"/ai-search/namespaces/{name}").json()["result"]
    assert got["description"] == "team docs"
    upd = server_http.put(f"/ai-search/namespaces/{name}", json={"description": "renamed"})
    assert upd.json()["result"]["description"] == "renamed"
    assert_error(
        server_http.put("/ai-search/namespaces/default", json={"description": "x"}), 400, 7001
    )
    assert_error(server_http.delete("/ai-search/namespaces/default"), 400, 7001, "default")
    assert_error(
        server_http.post("/ai-search/namespaces", json={"name": "x", "description": "d" * 257}),
        400,
        7001,
        "description",
    )

    # a namespace with an instance cannot be deleted; namespaced paths work end to end
    iid = _uid("inst")
    r = server_http.post(f"/ai-search/namespaces/{name}/instances", json={"id": iid})
    assert r.status_code == 201
    assert r.json()["result"]["namespace"] == name
    upload(server_http, iid, "a.md", "Namespaced espresso notes.", namespace=name)
    assert search(server_http, iid, "espresso", namespace=name, match_threshold=0)["chunks"]
    assert_error(
        server_http.post(f"/ai-search/instances/{iid}/search", json={"query": "x"}), 404, 7002
    )
    assert_error(server_http.delete(f"/ai-search/namespaces/{name}"), 400, 7001, "instance")
    assert server_http.delete(f"/ai-search/namespaces/{name}/instances/{iid}").status_code == 200
    assert server_http.delete(f"/ai-search/namespaces/{name}").status_code == 200
    assert_error(server_http.get(f"/ai-search/namespaces/{name}"), 404, 7002)


def test_instance_crud_and_stats(server_http):
    iid = _uid("crud")
    r = server_http.post(
        "/ai-search/instances", json={"id": iid, "chunk_size": 128, "max_num_results": 5}
    )
    assert r.status_code == 201
    inst = r.json()["result"]
    assert inst["id"] == iid and inst["namespace"] == "default"
    assert inst["chunk_size"] == 128 and inst["max_num_results"] == 5
    assert inst["index_method"] == {"vector": True, "keyword": True}
    assert "created_at" in inst and "modified_at" in inst
    # bare and namespaced paths are the same instance
    bare = server_http.get(f"/ai-search/instances/{iid}").json()["result"]
    namespaced = server_http.get(f"/ai-search/namespaces/default/instances/{iid}").json()["result"]
    assert bare == namespaced
    listed = server_http.get("/ai-search/instances", params={"search": iid}).json()
    assert [i["id"] for i in listed["result"]] == [iid]
    upd = server_http.put(
        f"/ai-search/instances/{iid}", json={"max_num_results": 7, "fusion_method": "max"}
    )
    assert upd.status_code == 200
    assert upd.json()["result"]["max_num_results"] == 7
    assert upd.json()["result"]["chunk_size"] == 128
    assert_error(
        server_http.put(f"/ai-search/instances/{iid}", json={"max_num_results": 99}),
        400,
        7001,
        "max_num_results",
    )

    upload(server_http, iid, "ok.md", "Some espresso text.")
    upload(server_http, iid, "bad.pdf", b"%PDF-1.4 binary")
    stats = server_http.get(f"/ai-search/instances/{iid}/stats").json()["result"]
    assert stats["completed"] == 1 and stats["error"] == 1
    assert stats["engine"]["vectorize"]["vectorsCount"] == 1
    assert stats["engine"]["vectorize"]["dimensions"] > 0

    assert server_http.delete(f"/ai-search/instances/{iid}").status_code == 200
    assert_error(server_http.get(f"/ai-search/instances/{iid}"), 404, 7002)
    # the id is free again and the new instance starts empty
    server_http.post("/ai-search/instances", json={"id": iid}).raise_for_status()
    assert server_http.get(f"/ai-search/instances/{iid}/items").json()["result"] == []


def test_tokenizer_change_rebuilds_keyword_index(server_http, make_instance):
    iid = make_instance()
    upload(server_http, iid, "code.md", "Call getUserProfile() to load settings.")
    assert search(server_http, iid, "UserProf", retrieval_type="keyword")["chunks"] == []
    server_http.put(
        f"/ai-search/instances/{iid}", json={"indexing_options": {"keyword_tokenizer": "trigram"}}
    ).raise_for_status()
    assert len(search(server_http, iid, "UserProf", retrieval_type="keyword")["chunks"]) == 1


def test_items_lifecycle(server_http, make_instance):
    iid = make_instance(custom_metadata=[{"field_name": "lang", "data_type": "text"}])
    for n in range(5):
        upload(
            server_http,
            iid,
            f"docs/file-{n}.md",
            f"Document number {n} about grinders.",
            {"lang": "en" if n % 2 else "fr"},
        )
    bad = upload(server_http, iid, "notes.docx", b"PK\x03\x04 not supported")
    assert bad["status"] == "error"
    assert ".docx" in bad["error"]
    undecodable = upload(server_http, iid, "latin.txt", b"caf\xe9 \xff\xfe")
    assert undecodable["status"] == "error" and undecodable["error"]

    page1 = server_http.get(
        f"/ai-search/instances/{iid}/items", params={"per_page": 3, "page": 1}
    ).json()
    page2 = server_http.get(
        f"/ai-search/instances/{iid}/items", params={"per_page": 3, "page": 2}
    ).json()
    assert page1["result_info"]["total_count"] == 7
    assert len(page1["result"]) == 3 and len(page2["result"]) == 3
    assert not {i["id"] for i in page1["result"]} & {i["id"] for i in page2["result"]}
    assert_error(
        server_http.get(f"/ai-search/instances/{iid}/items", params={"per_page": 51}),
        400,
        7001,
        "per_page",
    )

    errors = server_http.get(
        f"/ai-search/instances/{iid}/items", params={"status": "error"}
    ).json()["result"]
    assert {i["key"] for i in errors} == {"notes.docx", "latin.txt"}
    english = server_http.get(
        f"/ai-search/instances/{iid}/items", params={"metadata_filter": json.dumps({"lang": "en"})}
    ).json()["result"]
    assert {i["key"] for i in english} == {"docs/file-1.md", "docs/file-3.md"}
    in_folder = server_http.get(
        f"/ai-search/instances/{iid}/items",
        params={"metadata_filter": json.dumps({"folder": "docs/"}), "per_page": 50},
    ).json()["result"]
    assert len(in_folder) == 5
    assert_error(
        server_http.get(f"/ai-search/instances/{iid}/items", params={"metadata_filter": "{bad"}),
        400,
        7001,
        "metadata_filter",
    )

    item = english[0]
    got = server_http.get(f"/ai-search/instances/{iid}/items/{item['id']}").json()["result"]
    assert (
        got["key"] == item["key"] and got["status"] == "completed" and got["source_id"] == "builtin"
    )
    chunks = server_http.get(f"/ai-search/instances/{iid}/items/{item['id']}/chunks").json()[
        "result"
    ]
    assert chunks and chunks[0]["item"]["key"] == item["key"]
    assert "grinders" in chunks[0]["text"]
    assert chunks[0]["end_byte"] > chunks[0]["start_byte"]
    raw = server_http.get(f"/ai-search/instances/{iid}/items/{item['id']}/download")
    assert raw.content.decode().startswith("Document number")
    assert_error(
        server_http.get(
            f"/ai-search/instances/{iid}/items/{item['id']}/chunks", params={"limit": 101}
        ),
        400,
        7001,
        "limit",
    )

    # re-upload with the same key is an upsert: same id, new content
    again = upload(server_http, iid, item["key"], "Replaced text about kettles.", {"lang": "en"})
    assert again["id"] == item["id"]
    assert (
        search(server_http, iid, "kettles", retrieval_type="keyword")["chunks"][0]["item"]["key"]
        == item["key"]
    )
    rechunked = server_http.get(f"/ai-search/instances/{iid}/items/{item['id']}/chunks")
    assert [c["text"] for c in rechunked.json()["result"]] == ["Replaced text about kettles."]

    # create_or_update re-indexes from the stored bytes; PATCH too
    r = server_http.put(
        f"/ai-search/instances/{iid}/items", json={"key": item["key"], "next_action": "INDEX"}
    )
    assert r.status_code == 200 and r.json()["result"]["status"] == "completed"
    r = server_http.patch(
        f"/ai-search/instances/{iid}/items/{item['id']}", json={"next_action": "INDEX"}
    )
    assert r.status_code == 200
    assert_error(
        server_http.put(f"/ai-search/instances/{iid}/items", json={"key": "missing.md"}), 404, 7002
    )

    deleted = server_http.delete(f"/ai-search/instances/{iid}/items/{item['id']}")
    assert deleted.json()["result"] == {"key": item["key"]}
    assert search(server_http, iid, "kettles", retrieval_type="keyword")["chunks"] == []


def test_upload_limits(server_http, make_instance):
    iid = make_instance()
    big = b"a " * (2 * 1024 * 1024 + 10)
    r = server_http.post(f"/ai-search/instances/{iid}/items", files={"file": ("big.html", big)})
    assert_error(r, 413, 7001, "4 MiB")
    r = server_http.post(
        f"/ai-search/instances/{iid}/items",
        files={"file": ("m.md", b"x")},
        data={"metadata": "{not json"},
    )
    assert_error(r, 400, 7001, "metadata")
    r = server_http.post(
        f"/ai-search/instances/{iid}/items",
        files={"file": ("m.md", b"x")},
        data={"metadata": json.dumps({"a": [1]})},
    )
    assert_error(r, 400, 7001, "metadata.a")
    r = server_http.post(
        f"/ai-search/instances/{iid}/items", files={"file": ("k" * 129 + ".md", b"x")}
    )
    assert_error(r, 400, 7001, "128")
    r = server_http.post(f"/ai-search/instances/{iid}/items", json={"key": "x"})
    assert_error(r, 400, 7001, "multipart")
    assert server_http.get(f"/ai-search/instances/{iid}/items").json()["result"] == []


def test_jobs_resync_source_folder(server_http, tmp_path):
    (tmp_path / "guides").mkdir()
    (tmp_path / "guides" / "kettle.md").write_text("Gooseneck kettles pour slowly and precisely.")
    (tmp_path / "guides" / "kettle.md.meta.json").write_text(json.dumps({"level": "beginner"}))
    (tmp_path / "scale.txt").write_text("A scale measures coffee dose and water weight.")
    iid = _uid("src")
    r = server_http.post("/ai-search/instances", json={"id": iid, "source": str(tmp_path)})
    assert r.status_code == 201
    job = server_http.post(
        f"/ai-search/instances/{iid}/jobs", json={"description": "first"}
    ).json()["result"]
    assert job["source"] == "user" and job["ended_at"] and "2 indexed" in job["end_reason"]
    items = {
        i["key"]: i for i in server_http.get(f"/ai-search/instances/{iid}/items").json()["result"]
    }
    assert set(items) == {"guides/kettle.md", "scale.txt"}
    assert items["guides/kettle.md"]["metadata"] == {"level": "beginner"}
    hit = search(server_http, iid, "gooseneck", filters={"folder": "guides/"}, match_threshold=0)[
        "chunks"
    ][0]
    assert hit["item"]["key"] == "guides/kettle.md"

    (tmp_path / "scale.txt").unlink()
    (tmp_path / "grinder.html").write_text(
        "<html><body><h1>Grinder</h1><p>Burrs matter.</p></body></html>"
    )
    job2 = server_http.post(f"/ai-search/instances/{iid}/jobs").json()["result"]
    assert (
        "1 indexed" in job2["end_reason"]
        and "1 unchanged" in job2["end_reason"]
        and "1 removed" in job2["end_reason"]
    )
    keys = {i["key"] for i in server_http.get(f"/ai-search/instances/{iid}/items").json()["result"]}
    assert keys == {"guides/kettle.md", "grinder.html"}
    jobs = server_http.get(f"/ai-search/instances/{iid}/jobs").json()["result"]
    assert [j["id"] for j in jobs] == [job2["id"], job["id"]]
    got = server_http.get(f"/ai-search/instances/{iid}/jobs/{job['id']}").json()["result"]
    assert got["description"] == "first"
    logs = server_http.get(f"/ai-search/instances/{iid}/jobs/{job['id']}/logs").json()["result"]
    assert any("kettle.md" in line["message"] for line in logs)


def test_a_resynced_changed_file_keeps_its_item_id_and_creation_time(server_http, tmp_path):
    """A sync writes changed files in batches (delete and re-insert): the item is the same one."""
    (tmp_path / "kettle.md").write_text("Gooseneck kettles pour slowly.")
    iid = _uid("src")
    r = server_http.post("/ai-search/instances", json={"id": iid, "source": str(tmp_path)})
    assert r.status_code == 201
    server_http.post(f"/ai-search/instances/{iid}/jobs")
    (before,) = server_http.get(f"/ai-search/instances/{iid}/items").json()["result"]
    (tmp_path / "kettle.md").write_text("Gooseneck kettles pour slowly and precisely.")
    job = server_http.post(f"/ai-search/instances/{iid}/jobs").json()["result"]
    assert "1 indexed" in job["end_reason"]
    (after,) = server_http.get(f"/ai-search/instances/{iid}/items").json()["result"]
    assert after["id"] == before["id"]
    assert after["created_at"] == before["created_at"]
    assert after["checksum"] != before["checksum"]
    hit = search(server_http, iid, "precisely", match_threshold=0)["chunks"][0]
    assert hit["item"]["key"] == "kettle.md"
