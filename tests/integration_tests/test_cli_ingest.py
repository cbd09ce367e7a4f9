"""``aisearch-local ingest``: a folder through a running server (``--url``) and offline."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from aisearch_local import remote_ingest
from aisearch_local.cli import main
from aisearch_local.testing import LocalServer

pytestmark = pytest.mark.integration

TOKEN = "ingest-token"


def _folder(root: Path, n: int = 30) -> Path:
    src = root / "src"
    (src / "guides").mkdir(parents=True)
    for i in range(n):
        (src / "guides" / f"doc-{i:03d}.md").write_text(f"# Guide {i}\n\nbrewing topic{i} " * 30)
    (src / "guides" / "doc-000.md.meta.json").write_text(json.dumps({"level": "beginner"}))
    (src / "broken.md").write_text("a document with a broken sidecar")
    (src / "broken.md.meta.json").write_text("{not json")
    (src / "image.png").write_bytes(b"\x89PNG")
    return src


def _items(server: LocalServer, instance: str) -> dict[str, dict]:
    out: dict[str, dict] = {}
    with httpx.Client(base_url=server.account_url, headers=server.headers) as http:
        page = 1
        while True:
            body = http.get(
                f"/ai-search/instances/{instance}/items", params={"page": page, "per_page": 50}
            ).json()
            out.update({i["key"]: i for i in body["result"]})
            if page * 50 >= body["result_info"]["total_count"]:
                return out
            page += 1


def test_ingest_url_sends_the_folder_to_a_running_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    src = _folder(tmp_path)
    monkeypatch.setattr(remote_ingest, "BATCH_FILES", 7)  # several requests, two in flight
    monkeypatch.setenv("AISEARCH_LOCAL_TOKEN", TOKEN)
    with LocalServer(token=TOKEN) as server:
        url = f"http://127.0.0.1:{server.port}"
        assert main(["ingest", str(src), "--instance", "remote", "--url", url]) == 0
        err = capsys.readouterr().err
        assert "sending to default/remote" in err
        assert "sent 31 files" in err and "30 indexed, 1 errors, 1 refused" in err
        assert "broken.md.meta.json: unreadable metadata sidecar" in err
        assert "image.png" in err
        items = _items(server, "remote")
        assert len(items) == 31 and "broken.md" not in items
        assert items["guides/doc-000.md"]["metadata"] == {"level": "beginner"}
        assert items["image.png"]["status"] == "error"
        with httpx.Client(base_url=server.account_url, headers=server.headers) as http:
            chunks = http.post(
                "/ai-search/instances/remote/search",
                json={
                    "query": "topic17",
                    "ai_search_options": {"retrieval": {"retrieval_type": "keyword"}},
                },
            ).json()["result"]["chunks"]
        assert chunks[0]["item"]["key"] == "guides/doc-017.md"
        # again: an upsert by key, the same items
        assert main(["ingest", str(src), "--instance", "remote", "--url", url + "/client/v4"]) == 0
        assert len(_items(server, "remote")) == 31


def test_ingest_url_with_a_wrong_token_or_no_server_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    src = _folder(tmp_path, 2)
    monkeypatch.delenv("AISEARCH_LOCAL_TOKEN", raising=False)
    with LocalServer(token=TOKEN) as server:
        url = f"http://127.0.0.1:{server.port}"
        args = ["ingest", str(src), "--instance", "x", "--url", url]
        assert main([*args, "--token", "wrong"]) == 1
        err = capsys.readouterr().err
        assert "the server refused the token (HTTP 403" in err
        assert "wrong" not in err.replace("wrong token", "")  # the token is never printed
        assert main(args) == 1
        assert "HTTP 401" in capsys.readouterr().err
        assert main([*args, "--token", TOKEN, "--embedder", "hashing"]) == 2
        assert "--embedder applies without --url only" in capsys.readouterr().err
    assert main([*args, "--token", TOKEN]) == 1
    assert f"cannot reach the server at {url}" in capsys.readouterr().err
    assert main(["ingest", str(src), "--instance", "x", "--url", "ftp://x"]) == 1
    assert "--url must be http(s)://HOST:PORT" in capsys.readouterr().err


def test_offline_ingest_writes_in_batches_and_stays_incremental(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    from aisearch_local import bulk

    src = _folder(tmp_path)
    data = tmp_path / "data"
    monkeypatch.setattr(bulk, "_SYNC_BATCH_FILES", 4)
    assert main(["ingest", str(src), "--instance", "docs", "--data-dir", str(data)]) == 0
    err = capsys.readouterr().err
    assert "30 indexed, 0 unchanged, 0 removed, 2 errors" in err
    (src / "guides" / "doc-005.md").write_text("changed text")
    (src / "guides" / "doc-006.md").unlink()
    assert main(["ingest", str(src), "--instance", "docs", "--data-dir", str(data)]) == 0
    err = capsys.readouterr().err
    assert "1 indexed, 28 unchanged, 1 removed, 2 errors" in err
    with LocalServer(data_dir=data) as server:
        items = _items(server, "docs")
    assert len(items) == 31
    assert items["guides/doc-000.md"]["metadata"] == {"level": "beginner"}
    assert items["broken.md"]["status"] == "error"
    assert items["guides/doc-005.md"]["chunks_count"] == 1
