"""``aisearch-local serve --workers 2``: two processes on one port answer as one server.

One real server (a subprocess, on 127.0.0.1) serves most tests of the module. Two keep-alive
clients are each pinned to a different worker (the health answer's ``worker_pid`` says which),
so every cross-worker step is deterministic: a write or a fault set through one worker is
checked through the other. Two tests start their own server to stop it: by SIGTERM (status 0,
the data intact) and by killing a worker (status 1).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration_tests._serve import AISEARCH_LOCAL, ServeProcess, until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

TOKEN = "workers-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WORDS = [
    "marmalade", "quokka", "zeppelin", "fjord", "kumquat", "yodel", "wombat", "tundra", "igloo",
    "nebula", "origami", "pelican", "quasar", "rhubarb", "saffron", "tapioca", "umlaut", "vortex",
    "walrus", "xylophone",
]  # fmt: skip
INSTANCES = "/accounts/a/ai-search/instances"


class _Serve(ServeProcess):
    """``aisearch-local serve --workers 2`` on ``data`` in a subprocess."""

    def __init__(self, data: Path, port: int = 0) -> None:
        self.data = data
        super().__init__(
            "--workers", "2", "--data-dir", str(data), "--token", TOKEN, "--sync-cooldown", "600",
            cwd=data.parent, port=port,
        )  # fmt: skip


def _pid(http: httpx.Client) -> int | None:
    r = http.get("/_local/health")
    return int(r.json()["result"]["worker_pid"]) if r.status_code == 200 else None


def _ppid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


class _Pinned:
    """Two clients, each holding one keep-alive connection to a different worker."""

    def __init__(self, base: str) -> None:
        self.clients: list[httpx.Client] = []
        self.pids: list[int] = []

        def other_worker() -> bool:
            http = httpx.Client(
                base_url=base, headers=AUTH, limits=httpx.Limits(max_connections=1), timeout=30
            )
            pid = _pid(http)
            if pid is None or pid in self.pids:
                http.close()
                return False
            self.clients.append(http)
            self.pids.append(pid)
            return len(self.pids) == 2

        until("a connection to each worker", other_worker)

    def check(self) -> None:
        """Each client is still on its worker (a keep-alive connection was not replaced)."""
        assert [_pid(http) for http in self.clients] == self.pids

    def close(self) -> None:
        for http in self.clients:
            http.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Serve]:
    data = tmp_path_factory.mktemp("workers") / "data"
    served = _Serve(data)
    yield served
    if served.proc.poll() is None:
        served.stop()


@pytest.fixture
def pinned(server: _Serve) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    pair = _Pinned(server.base)
    yield pair.clients[0], pair.clients[1]
    pair.check()
    pair.close()


def _ok(r: httpx.Response) -> Any:
    assert r.status_code in (200, 201), r.text
    return r.json()["result"]


def _instance(http: httpx.Client, iid: str, **config: Any) -> str:
    _ok(http.post(INSTANCES, json={"id": iid, **config}))
    return f"{INSTANCES}/{iid}"


def _upload(http: httpx.Client, inst: str, key: str, text: str) -> str:
    r = http.post(
        f"{inst}/items",
        files={"file": (key, text.encode())},
        data={"wait_for_completion": "true"},
    )
    return str(_ok(r)["id"])


def _keys(http: httpx.Client, inst: str, query: str) -> list[str]:
    found = _ok(http.post(f"{inst}/search", json={"query": query}))
    return [c["item"]["key"] for c in found["chunks"]]


def _texts(http: httpx.Client, inst: str, query: str) -> list[str]:
    found = _ok(http.post(f"{inst}/search", json={"query": query}))
    return [c["text"] for c in found["chunks"]]


def test_requests_land_on_both_workers_which_are_children_of_serve(server: _Serve) -> None:
    pair = _Pinned(server.base)  # fails unless two different workers answer
    try:
        assert len(set(pair.pids)) == 2
        assert all(_ppid(pid) == server.proc.pid for pid in pair.pids)
        assert server.proc.pid not in pair.pids  # the supervisor serves nothing itself
        # the token reached every worker: a wrong one is refused by each, the right one not
        for http in pair.clients:
            assert http.get(INSTANCES, headers={"Authorization": "Bearer wrong"}).status_code == 403
            assert http.get(INSTANCES).status_code == 200
        # ... through a pipe: not in a worker's initial environment, which /proc keeps for its
        # whole life (same user: ``ps e``), nor on its command line
        for pid in pair.pids:
            for name in ("environ", "cmdline"):
                found = TOKEN.encode() in Path(f"/proc/{pid}/{name}").read_bytes()
                assert not found, f"the token is in /proc/{pid}/{name}"  # (not its whole text)
        pair.check()
    finally:
        pair.close()


def test_a_second_serve_on_the_port_is_refused(server: _Serve, tmp_path: Path) -> None:
    port = httpx.URL(server.base).port
    assert port is not None
    for workers in ("1", "2"):
        proc = subprocess.run(
            [AISEARCH_LOCAL, "serve", "--port", str(port), "--workers", workers],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 1
        assert f"port {port} on 127.0.0.1 is already in use" in proc.stderr


def test_a_fault_set_on_one_worker_applies_on_the_other_and_times_is_shared(
    pinned: tuple[httpx.Client, httpx.Client],
) -> None:
    a, b = pinned
    inst = _instance(a, "faulty")
    _upload(a, inst, "espresso.md", "Espresso is brewed under pressure.")
    faults = "/_local/faults/default/faulty"
    _ok(a.put(faults, json={"status": 503}))
    assert _ok(b.get(faults))["status"] == 503
    assert [b.post(f"{inst}/search", json={"query": "espresso"}).status_code for _ in range(3)] == [
        503
    ] * 3
    _ok(b.delete(faults))
    assert _keys(a, inst, "espresso") == ["espresso.md"]
    # times: 1 is used once, by whichever worker answers first
    _ok(b.put(faults, json={"status": 503, "times": 1}))
    assert a.post(f"{inst}/search", json={"query": "espresso"}).status_code == 503
    assert b.post(f"{inst}/search", json={"query": "espresso"}).status_code == 200
    assert a.post(f"{inst}/search", json={"query": "espresso"}).status_code == 200
    # times: 7 over 30 requests alternating between the workers: exactly 7 failures
    _ok(a.put(faults, json={"status": 429, "retry_after": 1, "times": 7}))
    codes = [
        (a, b)[i % 2].post(f"{inst}/search", json={"query": "espresso"}).status_code
        for i in range(30)
    ]
    assert codes.count(429) == 7
    assert codes[:7] == [429] * 7
    assert _ok(b.get("/_local/faults")) == []


def test_times_is_used_exactly_once_under_concurrent_requests(server: _Serve) -> None:
    with httpx.Client(base_url=server.base, headers=AUTH, timeout=30) as http:
        inst = _instance(http, "racy")
        _upload(http, inst, "tea.md", "Green tea is steeped briefly.")
        _ok(http.put("/_local/faults/default/racy", json={"status": 503, "times": 5}))

    codes: list[int] = []

    def client() -> None:
        # a new connection per request: the kernel spreads them over both workers
        for _ in range(6):
            r = httpx.post(server.base + inst + "/search", json={"query": "tea"}, headers=AUTH)
            codes.append(r.status_code)

    threads = [threading.Thread(target=client) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(set(codes)) == [200, 503]
    assert codes.count(503) == 5


def test_writes_through_one_worker_show_in_the_next_search_on_the_other(
    pinned: tuple[httpx.Client, httpx.Client],
) -> None:
    a, b = pinned
    inst = _instance(a, "fresh")
    _upload(b, inst, "base.md", "A base document about kettles.")
    words = ["marmalade", "quokka", "zeppelin", "fjord", "kumquat", "yodel", "wombat", "tundra"]
    for i, word in enumerate(words):
        writer, reader = (a, b) if i % 2 == 0 else (b, a)
        first = f"The {word} note mentions {word} twice."
        item = _upload(writer, inst, f"{word}.md", first)
        assert _texts(reader, inst, word)[:1] == [first]
        # re-index under the same key with new text: the old chunk is gone at once
        second = f"Now the {word} note is shorter."
        _upload(reader, inst, f"{word}.md", second)
        found = _texts(writer, inst, word)
        assert first not in found
        assert found[:1] == [second]
        _ok(writer.delete(f"{inst}/items/{item}"))
        assert second not in _texts(reader, inst, word)


def _on(base: str, pid: int) -> httpx.Client:
    """A keep-alive client whose connection is on the worker ``pid``."""
    box: list[httpx.Client] = []

    def connect() -> bool:
        http = httpx.Client(
            base_url=base, headers=AUTH, limits=httpx.Limits(max_connections=1), timeout=60
        )
        if _pid(http) == pid:
            box.append(http)
            return True
        http.close()
        return False

    until(f"a connection to worker {pid}", connect)
    return box[0]


def test_a_write_on_one_worker_shows_on_the_other_while_that_one_writes_too(
    server: _Serve, pinned: tuple[httpx.Client, httpx.Client]
) -> None:
    """Worker a keeps writing (its writes under way) while b acknowledges others: a's next
    vector search sees each of b's writes (a's vector table reloads; it used to wait for a's
    own write to end)."""
    a, b = pinned
    inst = _instance(a, "busy")
    _upload(a, inst, "base.md", "A base document about kettles.")
    stop = threading.Event()
    errors: list[str] = []
    pids = [_pid(a) or 0]
    writing = [threading.Event(), threading.Event()]

    def keep_writing(n: int) -> None:
        http = _on(server.base, pids[0])
        try:
            i = 0
            while not stop.is_set():
                i += 1
                r = http.post(
                    f"{inst}/items",
                    files={"file": (f"filler-{n}-{i}.md", " ".join(["filler"] * 300).encode())},
                    data={"wait_for_completion": "true"},
                )
                if r.status_code not in (200, 201):
                    errors.append(r.text)
                writing[n].set()
        finally:
            http.close()

    writers = [threading.Thread(target=keep_writing, args=(n,)) for n in range(2)]
    for t in writers:
        t.start()
    stale = []
    try:
        assert all(w.wait(60) for w in writing)  # both writers are under way
        for i in range(20):
            text = f"unique document {i} about {WORDS[i]}"
            _upload(b, inst, f"u{i}.md", text)
            options = {"retrieval": {"retrieval_type": "vector", "match_threshold": 0}}
            found = _ok(
                a.post(f"{inst}/search", json={"query": text, "ai_search_options": options})
            )
            if [c["item"]["key"] for c in found["chunks"]][:1] != [f"u{i}.md"]:
                stale.append(i)
    finally:
        stop.set()
        for t in writers:
            t.join(60)
    assert not errors
    assert stale == []


def test_sync_cooldown_and_rate_limit_are_shared(
    pinned: tuple[httpx.Client, httpx.Client], server: _Serve
) -> None:
    a, b = pinned
    inst = _instance(
        a,
        "limited",
        public_endpoint_params={
            "enabled": True,
            "rate_limit": {"requests": 3, "period_ms": 3_600_000, "technique": "sliding"},
        },
    )
    _upload(a, inst, "espresso.md", "Espresso is brewed under pressure.")
    # --sync-cooldown 600: a job started through one worker holds the other's back
    assert a.post(f"{inst}/jobs", json={}).status_code == 200
    r = b.post(f"{inst}/jobs", json={})
    assert r.status_code == 429, r.text
    assert r.json()["errors"][0]["code"] == 7020
    eid = _ok(a.get(inst))["public_endpoint_id"]
    root = server.base.removesuffix("/client/v4")
    codes = [
        (a, b)[i % 2].post(f"{root}/_public/{eid}/search", json={"query": "espresso"}).status_code
        for i in range(5)
    ]
    assert codes == [200, 200, 200, 429, 429]


def test_sigterm_stops_every_worker_cleanly_and_keeps_the_data(tmp_path: Path) -> None:
    server = _Serve(tmp_path / "data")  # its own: the module's server serves the other tests
    try:
        pair = _Pinned(server.base)
        a, b = pair.clients
        inst = _instance(a, "kept")
        _upload(a, inst, "one.md", "Written through the first worker.")
        _upload(b, inst, "two.md", "Written through the second worker.")
        pair.close()
        assert server.stop() == 0
    finally:
        if server.proc.poll() is None:
            server.stop()
    assert "aisearch-local stopped (signal)" in "".join(server.lines)
    for pid in pair.pids:
        assert not Path(f"/proc/{pid}").exists()  # stopped and reaped by the supervisor
    # every worker closed its connections: the last one checkpointed and removed the WAL
    assert not list(server.data.glob("*-wal"))
    with contextlib.closing(sqlite3.connect(server.data / "aisearch-local.sqlite3")) as conn:
        keys = sorted(k for (k,) in conn.execute("SELECT key FROM items"))
        (check,) = conn.execute("PRAGMA integrity_check").fetchone()
    assert keys == ["one.md", "two.md"]
    assert check == "ok"
    # and a restart answers from it: the vector files both workers wrote load and match SQLite
    from aisearch_local.options import resolve_options
    from aisearch_local.service import LocalService

    svc = LocalService(server.data)
    try:
        inst = svc.require_instance("default", "kept")
        opts = resolve_options({"retrieval": {"retrieval_type": "vector"}}, inst.config)
        for key, text in (("one.md", "first"), ("two.md", "second")):
            found = svc.searcher.search(inst, f"Written through the {text} worker.", opts)
            assert found[0]["item"]["key"] == key
    finally:
        svc.close()


def test_a_worker_that_dies_stops_the_server_with_status_1(tmp_path: Path) -> None:
    served = _Serve(tmp_path / "data")
    try:
        with httpx.Client(base_url=served.base, headers=AUTH, timeout=30) as http:
            victim = _pid(http)
        assert victim is not None
        workers = [
            int(p.parent.name)
            for p in Path("/proc").glob("[0-9]*/stat")
            if p.exists()
            and _ppid(int(p.parent.name)) == served.proc.pid
            and b"spawn_main" in (p.parent / "cmdline").read_bytes()
        ]
        assert victim in workers and len(workers) == 2
        os.kill(victim, signal.SIGKILL)
        assert served.proc.wait(timeout=60) == 1
        served._reader.join(timeout=10)
        assert served.proc.stderr is not None
        served.proc.stderr.close()
        err = "".join(served.lines)
        assert f"a worker (pid {victim}) ended with status -9: every worker stopped" in err
        assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
    finally:
        if served.proc.poll() is None:
            served.stop()


def _gone(pid: int) -> bool:
    """The process ended (a zombie no one reaped yet counts as ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _workers_of(ppid: int) -> list[int] | None:
    """The two live spawned workers of ``ppid``, or None while there are not two."""
    found = []
    for p in Path("/proc").glob("[0-9]*/stat"):
        pid = int(p.parent.name)
        try:
            if _gone(pid) or _ppid(pid) != ppid:
                continue
            if b"spawn_main" in (p.parent / "cmdline").read_bytes():
                found.append(pid)
        except OSError:  # ended meanwhile
            continue
    return found if len(found) == 2 else None


def test_workers_end_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    # SIGKILL leaves the supervisor no time to stop its workers: the kernel tells them
    # (PR_SET_PDEATHSIG), and they stop instead of serving on as orphans
    served = _Serve(tmp_path / "data")
    try:
        workers = until("both workers", lambda: _workers_of(served.proc.pid))
        served.proc.kill()
        served.proc.wait(timeout=60)
        until("the workers to end", lambda: all(_gone(pid) for pid in workers))
    finally:
        if served.proc.poll() is None:
            served.stop()
        for pid in workers if "workers" in locals() else []:
            with contextlib.suppress(OSError):  # orphans hold the stderr pipe open
                os.kill(pid, signal.SIGKILL)
        served._reader.join(timeout=10)
        if served.proc.stderr is not None:
            served.proc.stderr.close()
