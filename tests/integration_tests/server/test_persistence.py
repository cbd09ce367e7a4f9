"""Durability: a restart serves the same index without re-embedding; kill -9 loses nothing acked."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import numpy as np
import pytest

from aisearch_local.embed import HashingEmbedder
from aisearch_local.testing import LocalServer
from tests.integration_tests.server._helpers import assert_error, search, upload

pytestmark = pytest.mark.integration

TEXTS = {
    "espresso.md": "Espresso is brewed under nine bars of pressure in about twenty five seconds.",
    "cold-brew.md": "Cold brew steeps coarse grounds in cold water for twelve hours or more.",
    "kenya.txt": "Kenyan coffee is bright, with blackcurrant and grapefruit acidity.",
}


class CountingEmbedder:
    """Wraps the hashing embedder and counts every text it embeds."""

    def __init__(self) -> None:
        self._inner = HashingEmbedder()
        self.name = self._inner.name
        self.dim = self._inner.dim
        self.texts: list[str] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.texts.extend(texts)
        return self._inner.embed(texts)


def _client(server: LocalServer) -> httpx.Client:
    return httpx.Client(base_url=server.account_url, headers=server.headers, timeout=30)


def test_restart_serves_same_index_without_reembedding(tmp_path):
    first = CountingEmbedder()
    with (
        LocalServer(data_dir=tmp_path, token="t", embedder=first) as server,
        _client(server) as http,
    ):
        http.post("/ai-search/instances", json={"id": "persist"}).raise_for_status()
        for key, text in TEXTS.items():
            upload(http, "persist", key, text, {"origin": key})
        before = search(http, "persist", "cold water steeping", match_threshold=0)["chunks"]
    assert len(first.texts) >= len(TEXTS)

    second = CountingEmbedder()
    with (
        LocalServer(data_dir=tmp_path, token="t", embedder=second) as server,
        _client(server) as http,
    ):
        after = search(http, "persist", "cold water steeping", match_threshold=0)["chunks"]
        items = http.get("/ai-search/instances/persist/items").json()["result"]
    assert second.texts == ["cold water steeping"]  # only the query; no chunk re-embedded
    assert [(c["id"], c["score"], c["item"]) for c in after] == [
        (c["id"], c["score"], c["item"]) for c in before
    ]
    assert {i["key"] for i in items} == set(TEXTS)


def test_embedder_mismatch_is_a_clear_error(tmp_path):
    with LocalServer(data_dir=tmp_path, embedder="hashing") as server, _client(server) as http:
        http.post("/ai-search/instances", json={"id": "mismatch"}).raise_for_status()
        upload(http, "mismatch", "a.md", "Some text about espresso.")
    with (
        LocalServer(data_dir=tmp_path, embedder=HashingEmbedder(dim=128)) as server,
        _client(server) as http,
    ):
        r = http.post("/ai-search/instances/mismatch/search", json={"query": "espresso"})
        assert_error(r, 400, 7030, "hashing-v1-384", "hashing-v1-128", "--embedder")
        r = http.post("/ai-search/instances/mismatch/items", files={"file": ("b.md", b"more text")})
        assert_error(r, 400, 7030)
        # management still works, so the user can inspect or delete the instance
        assert (
            http.get("/ai-search/instances/mismatch").json()["result"]["local_embedder"]
            == "hashing-v1-384"
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "aisearch_local.cli",
        "serve",
        "--data-dir",
        str(data_dir),
        "--port",
        str(port),
        "--token",
        "k9",
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if (
                httpx.get(f"http://127.0.0.1:{port}/client/v4/_local/health", timeout=1).status_code
                == 200
            ):
                return proc
        except httpx.TransportError:
            time.sleep(0.05)
        if proc.poll() is not None:
            raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "server exited")
    proc.kill()
    raise RuntimeError("server did not start")


def test_kill_9_during_ingestion_loses_nothing_acknowledged(tmp_path):
    port = _free_port()
    base = f"http://127.0.0.1:{port}/client/v4/accounts/acct"
    headers = {"Authorization": "Bearer k9"}
    proc = _start(tmp_path, port)
    acked: list[str] = []
    stop = threading.Event()
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=10) as http:
            http.post("/ai-search/instances", json={"id": "crash"}).raise_for_status()

            def writer() -> None:
                n = 0
                with httpx.Client(base_url=base, headers=headers, timeout=10) as w:
                    while not stop.is_set():
                        key = f"doc-{n:05d}.md"
                        text = (
                            f"Document {n} about roast level {n % 7} and grind size {n % 5}. " * 40
                        )
                        try:
                            r = w.post(
                                "/ai-search/instances/crash/items",
                                files={"file": (key, text.encode())},
                            )
                        except httpx.TransportError:
                            return
                        if r.status_code == 200 and r.json()["result"]["status"] == "completed":
                            acked.append(key)
                        n += 1

            t = threading.Thread(target=writer)
            t.start()
            while len(acked) < 25:
                time.sleep(0.01)
                assert t.is_alive()
            os.kill(proc.pid, signal.SIGKILL)  # in the middle of the stream of uploads
            proc.wait(timeout=10)
            stop.set()
            t.join(timeout=15)
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
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            items = []
            page = 1
            while True:
                body = http.get(
                    "/ai-search/instances/crash/items", params={"page": page, "per_page": 50}
                ).json()
                items.extend(body["result"])
                if page * 50 >= body["result_info"]["total_count"]:
                    break
                page += 1
            by_key = {i["key"]: i for i in items}
            missing = [k for k in acked if k not in by_key]
            assert missing == []
            for item in items:  # never half-indexed: every stored item has all its chunks
                assert item["status"] == "completed"
                chunks = http.get(
                    f"/ai-search/instances/crash/items/{item['id']}/chunks", params={"limit": 100}
                ).json()
                assert len(chunks["result"]) == item["chunks_count"] > 0
            last = acked[-1]
            hit = search(
                http,
                "crash",
                last.removesuffix(".md"),
                filters={"filename": last},
                match_threshold=0,
            )
            assert hit["chunks"] and hit["chunks"][0]["item"]["key"] == last
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
        if proc.stderr is not None:
            proc.stderr.close()
    assert proc.returncode == 0  # clean shutdown on SIGTERM
