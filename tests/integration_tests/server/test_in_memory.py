"""In-memory mode: ``LocalServer(in_memory=True)`` and ``aisearch-local serve --in-memory``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest

from aisearch_local.testing import LocalServer

TEXT = "Espresso needs a fine grind. A French press needs a coarse grind and four minutes."


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """cwd, HOME and every temporary directory (Python's and SQLite's) under ``tmp_path``."""
    for name in ("cwd", "home", "tmp"):
        (tmp_path / name).mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for var in ("TMPDIR", "SQLITE_TMPDIR"):
        monkeypatch.setenv(var, str(tmp_path / "tmp"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    return tmp_path


def test_an_in_memory_server_uploads_searches_and_chats_without_writing_a_file(sandbox: Path):
    with LocalServer(in_memory=True, token="mem-token") as server:
        assert server.data_dir is None
        assert "in memory" in repr(server) and server.info()["data_dir"] is None
        with httpx.Client(
            base_url=server.account_url + "/ai-search", headers=server.headers, timeout=60
        ) as http:
            r = http.post("/instances", json={"id": "mem"})
            assert r.status_code == 201, r.text
            r = http.post(
                "/instances/mem/items",
                files={"file": ("brew.md", TEXT.encode())},
                data={"wait_for_completion": "true", "metadata": json.dumps({"kind": "guide"})},
            )
            assert r.status_code == 200, r.text
            assert r.json()["result"]["status"] == "completed"
            r = http.post("/instances/mem/search", json={"query": "french press grind"})
            assert r.status_code == 200, r.text
            chunks = r.json()["result"]["chunks"]
            assert chunks and "coarse grind" in chunks[0]["text"]
            r = http.post(
                "/instances/mem/chat/completions",
                json={"messages": [{"role": "user", "content": "How coarse for a French press?"}]},
            )
            assert r.status_code == 200, r.text
            assert "coarse" in r.json()["choices"][0]["message"]["content"]
    assert _files(sandbox) == []


def test_two_in_memory_servers_share_nothing_and_a_stopped_one_keeps_nothing(sandbox: Path):
    with LocalServer(in_memory=True) as a, LocalServer(in_memory=True) as b:
        assert httpx.post(a.account_url + "/ai-search/instances", json={"id": "only-a"}).is_success
        listed = httpx.get(b.account_url + "/ai-search/instances").json()["result"]
        assert [i["id"] for i in listed] == []
    with LocalServer(in_memory=True) as c:
        assert httpx.get(c.account_url + "/ai-search/instances").json()["result"] == []
    assert _files(sandbox) == []


def test_in_memory_and_a_data_dir_are_refused_together(tmp_path: Path):
    with pytest.raises(ValueError, match="either data_dir or in_memory=True, not both"):
        LocalServer(data_dir=tmp_path, in_memory=True)


def test_serve_in_memory_serves_the_sample_corpus_and_leaves_no_file(tmp_path: Path):
    argv = ["serve", "--in-memory", "--port", "0", "--log-level", "warning", "--sample-corpus"]
    env = {**os.environ, "HOME": str(tmp_path), "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "aisearch_local.cli", *argv],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # ends when the process does
            lines.append(line)
            if "aisearch-local serving" in line:
                break
        assert lines and lines[-1].endswith("(data: in memory, lost on exit)\n"), lines
        base = lines[-1].split()[2]
        r = httpx.post(
            base + "/accounts/a/ai-search/instances/coffee/search",
            json={"query": "espresso grind size"},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        assert r.json()["result"]["chunks"]
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == 0, "".join(lines)
    assert _files(tmp_path) == []


def test_serve_in_memory_with_a_data_dir_is_a_one_line_error(tmp_path: Path):
    argv = ["serve", "--in-memory", "--port", "0", "--data-dir", str(tmp_path / "d")]
    proc = subprocess.run(
        [sys.executable, "-m", "aisearch_local.cli", *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr == (
        "aisearch-local: error: --in-memory writes nothing to disk: it takes no --data-dir\n"
    )
    assert not (tmp_path / "d").exists()
