"""Watch mode: ``serve --source DIR --watch`` keeps the instance in step with the folder.

Files are created, edited and deleted while the server runs; each test polls the items API until
the change shows (generous timeouts, no timed assertion: the speed is in the module docstring of
aisearch_local/watch.py, not checked here).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aisearch_local.service import LocalService
from aisearch_local.watch import SourceWatcher

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

AISEARCH_LOCAL = str(Path(sys.executable).parent / "aisearch-local")
WAIT = 60.0


def _until(what: str, check: Callable[[], Any]) -> Any:
    """Poll ``check`` until it returns something truthy; fail after WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"after {WAIT:.0f} s: {what}")
        time.sleep(0.05)


class _Serve:
    """``aisearch-local serve`` in a subprocess, its stderr read by a thread (never blocked)."""

    def __init__(self, *argv: str, cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [AISEARCH_LOCAL, "serve", "--port", "0", "--log-level", "warning", *argv],
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        banner = _until("the serving banner", lambda: self._find("aisearch-local serving"))
        self.base = banner.split()[2]

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def _find(self, text: str) -> str | None:
        if self.proc.poll() is not None and not self._reader.is_alive():
            pytest.fail("serve ended early:\n" + "".join(self.lines))
        return next((line for line in self.lines if text in line), None)

    def stop(self) -> int:
        self.proc.terminate()
        code = self.proc.wait(timeout=60)
        self._reader.join(timeout=10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        return code


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[_Serve, Path, httpx.Client]]:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "espresso.md").write_text("Espresso is pulled in 25 to 30 seconds.")
    server = _Serve(
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
    served: tuple[_Serve, Path, httpx.Client],
) -> None:
    server, folder, http = served
    _until("the watching line", lambda: server._find("watching "))
    (folder / "tea.md").write_text("Green tea steeps for two minutes.")
    _until("tea.md is indexed", lambda: "tea.md" in _items(http))
    (folder / "espresso.md").write_text("A ristretto is a shorter espresso shot.")
    _until(
        "the edit of espresso.md is re-indexed",
        lambda: "ristretto" in _texts(http, _items(http)["espresso.md"]),
    )
    (folder / "tea.md").unlink()
    _until("tea.md is removed", lambda: "tea.md" not in _items(http))
    (folder / "broken.json").write_text("{not json")
    item = _until("broken.json is an item", lambda: _items(http).get("broken.json"))
    assert item["status"] == "error"
    _until("the parse error is on the console", lambda: server._find("broken.json: invalid JSON"))
    (folder / "sub").mkdir()
    (folder / "sub" / "after.md").write_text("Cold brew steeps overnight.")
    _until("watching went on after the error", lambda: "sub/after.md" in _items(http))
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
        _until("a.md reported", lambda: ("watch: a.md: indexed 1 chunks", False) in reports)
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
