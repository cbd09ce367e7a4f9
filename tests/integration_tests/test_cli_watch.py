"""Watch mode: ``serve --source DIR --watch`` keeps the instance in step with the folder.

Files are created, edited and deleted while the server runs; each test polls the items API until
the change shows (generous timeouts, no timed assertion: the speed is in the module docstring of
aisearch_local/watch.py, not checked here).
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aisearch_local.service import LocalService
from aisearch_local.watch import SourceWatcher
from tests.integration_tests._serve import AISEARCH_LOCAL, ServeProcess, until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ServeProcess, Path, httpx.Client]]:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "espresso.md").write_text("Espresso is pulled in 25 to 30 seconds.")
    server = ServeProcess(
        "--in-memory", "--source", str(folder), "--instance", "docs", "--watch", cwd=tmp_path
    )
    with httpx.Client(base_url=server.base + "/accounts/a/ai-search/instances/docs") as http:
        yield server, folder, http
    if server.proc.poll() is None:
        server.stop()


def _items(http: httpx.Client) -> dict[str, dict[str, Any]]:
    r = http.get("/items", params={"per_page": 50})
    assert r.status_code == 200, r.text
    return {it["key"]: it for it in r.json()["result"]}


def _texts(http: httpx.Client, item: dict[str, Any]) -> str:
    r = http.get(f"/items/{item['id']}/chunks")
    return " ".join(c["text"] for c in r.json()["result"])


def test_serve_watch_adds_edits_and_removes_and_goes_on_after_a_bad_file(
    served: tuple[ServeProcess, Path, httpx.Client],
) -> None:
    server, folder, http = served
    until("the watching line", lambda: server.find("watching "))
    (folder / "tea.md").write_text("Green tea steeps for two minutes.")
    until("tea.md is indexed", lambda: "tea.md" in _items(http))
    (folder / "espresso.md").write_text("A ristretto is a shorter espresso shot.")
    until(
        "the edit of espresso.md is re-indexed",
        lambda: "ristretto" in _texts(http, _items(http)["espresso.md"]),
    )
    (folder / "tea.md").unlink()
    until("tea.md is removed", lambda: "tea.md" not in _items(http))
    (folder / "broken.json").write_text("{not json")
    item = until("broken.json is an item", lambda: _items(http).get("broken.json"))
    assert item["status"] == "error"
    until("the parse error is on the console", lambda: server.find("broken.json: invalid JSON"))
    (folder / "sub").mkdir()
    (folder / "sub" / "after.md").write_text("Cold brew steeps overnight.")
    until("watching went on after the error", lambda: "sub/after.md" in _items(http))
    jobs = http.get("/jobs").json()["result"]
    assert any(str(j.get("description", "")).startswith("watch: ") for j in jobs)
    r = http.post("/search", json={"query": "cold brew overnight"})
    assert r.json()["result"]["chunks"][0]["item"]["key"] == "sub/after.md"
    assert server.stop() == 0  # SIGTERM: the watcher stops, the server exits cleanly
    assert "aisearch-local stopped" in "".join(server.lines)


def test_watch_needs_a_source(tmp_path: Path) -> None:
    for argv in (["serve", "--in-memory", "--watch"], ["exec", "--watch", "--", "true"]):
        proc = subprocess.run(
            [AISEARCH_LOCAL, *argv],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
        assert proc.returncode == 2
        assert "--watch needs --source DIR (the folder it watches)" in proc.stderr


def test_the_watcher_thread_reports_updates_and_stops(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    svc = LocalService(None)
    inst = svc.create_instance("default", {"id": "d"}, source_dir=str(folder))
    reports: list[tuple[str, bool]] = []
    watcher = SourceWatcher(svc, "default", "d", lambda m, e: reports.append((m, e))).start()
    try:  # start() returned: the operating system's watch is in place
        (folder / "a.md").write_text("Aeropress.")
        until("a.md reported", lambda: ("watch: a.md: indexed 1 chunks", False) in reports)
        assert [it["key"] for it in svc.store.list_items(inst)] == ["a.md"]
    finally:
        watcher.stop()
    assert watcher._thread is None and not any(
        t.name == "aisearch-local-watch" for t in threading.enumerate()
    )
    svc.close()
    with pytest.raises(ValueError, match="has no source folder to watch"):
        svc2 = LocalService(None)
        svc2.create_instance("default", {"id": "e"})
        SourceWatcher(svc2, "default", "e", lambda m, e: None)


EXEC_WATCH = """
import pathlib, sys, time
from aisearch import AISearchClient
pathlib.Path(sys.argv[1], "new.md").write_text("Moka pots brew on the stove.")
deadline = time.monotonic() + 60
with AISearchClient() as client:
    while "new.md" not in {i.key for i in client.list_items("docs")}:
        assert time.monotonic() < deadline, "new.md was not indexed"
        time.sleep(0.05)
print("seen")
"""


def test_exec_watch_indexes_what_the_command_writes(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "old.md").write_text("Pour-over needs a gooseneck kettle.")
    proc = subprocess.run(
        [
            AISEARCH_LOCAL, "exec", "--source", str(folder), "--instance", "docs", "--watch",
            "--", sys.executable, "-c", EXEC_WATCH, str(folder),
        ],
        capture_output=True, text=True, timeout=150, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "seen"
    assert "watch: new.md: indexed 1 chunks" in proc.stderr
