"""The server's perimeter over real HTTP (aisearch_local/guard.py, docs/security.md).

A server without a token (what ``aisearch-local serve`` runs by default) must refuse what a web
page could send it: a forged ``Host`` (DNS rebinding), state-changing requests from another
origin, JSON sent as ``text/plain``, bodies over the size limits, and instances over folders the
operator did not allow; while clients that are not browsers keep working.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aisearch_local.guard import MAX_JSON_BYTES, MAX_MANAGEMENT_JSON_BYTES, MAX_UPLOAD_BODY_BYTES
from aisearch_local.testing import LocalServer
from tests.integration_tests.server._helpers import assert_error

pytestmark = pytest.mark.integration

SOURCE_TEXT = "Secret grind settings for the burr grinder."


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("perimeter")
    allowed = base / "allowed"
    (allowed / "docs").mkdir(parents=True)
    (allowed / "docs" / "grind.md").write_text(SOURCE_TEXT)
    private = base / "private"
    private.mkdir()
    (private / "secret.md").write_text("The private diary.")
    (allowed / "escape").symlink_to(private, target_is_directory=True)
    return {"allowed": allowed, "private": private}


@pytest.fixture(scope="module")
def open_server(roots: dict[str, Path]) -> Iterator[LocalServer]:
    """A server without token, like the default ``aisearch-local serve``."""
    with LocalServer(
        token=None,
        allowed_hosts=["search.internal"],
        allowed_origins=["http://localhost:3000"],
        source_roots=[roots["allowed"]],
    ) as server:
        yield server


@pytest.fixture
def http(open_server: LocalServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=open_server.account_url, timeout=60.0) as c:
        yield c


def _instance_ids(http: httpx.Client) -> set[str]:
    r = http.get("/ai-search/instances")
    assert r.status_code == 200, r.text
    return {i["id"] for i in r.json()["result"]}


# -- Host (DNS rebinding) -------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example:{port}", "evil.example", "127.0.0.2:{port}", ""])
def test_forged_host_is_refused(http, open_server, host):
    r = http.get("/ai-search/instances", headers={"Host": host.format(port=open_server.port)})
    assert_error(r, 403, 10000, "Host", "--allowed-host")


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1:{port}",
        "localhost:{port}",
        "LOCALHOST",
        "[::1]:{port}",
        "localhost.:{port}",
        "search.internal:8080",
    ],
)
def test_loopback_and_allowed_hosts_are_served(http, open_server, host):
    r = http.get("/ai-search/instances", headers={"Host": host.format(port=open_server.port)})
    assert r.status_code == 200, r.text


def test_rebinding_cannot_create_an_instance(http, open_server):
    """The whole rebinding attack: the page's origin and Host are both evil.example."""
    evil = f"evil.example:{open_server.port}"
    r = http.post(
        "/ai-search/instances",
        content=json.dumps({"id": "rebound"}),
        headers={"Host": evil, "Origin": f"http://{evil}", "Content-Type": "text/plain"},
    )
    assert_error(r, 403, 10000, "Host")
    assert "rebound" not in _instance_ids(http)


# -- Origin / Sec-Fetch-Site (cross-site requests) ----------------------------------------------


def test_cross_origin_text_plain_post_is_refused(http):
    """What a cross-site form or no-preflight fetch sends."""
    r = http.post(
        "/ai-search/instances",
        content=json.dumps({"id": "csrf-text"}),
        headers={"Origin": "https://evil.example", "Content-Type": "text/plain;charset=UTF-8"},
    )
    assert_error(r, 403, 10000, "Origin", "https://evil.example")
    assert "csrf-text" not in _instance_ids(http)


@pytest.mark.parametrize(
    "origin",
    ["https://evil.example", "http://127.0.0.1:1", "http://localhost:1", "null", "file://"],
)
def test_other_origins_cannot_change_state_even_with_json(http, origin):
    r = http.post("/ai-search/instances", json={"id": "csrf-json"}, headers={"Origin": origin})
    assert_error(r, 403, 10000, "Origin")
    assert "csrf-json" not in _instance_ids(http)


@pytest.mark.parametrize("site", ["cross-site", "same-site", "CROSS-SITE"])
def test_sec_fetch_site_cross_site_is_refused(http, site):
    r = http.post(
        "/ai-search/instances", json={"id": "csrf-site"}, headers={"Sec-Fetch-Site": site}
    )
    assert_error(r, 403, 10000, "Sec-Fetch-Site")
    assert "csrf-site" not in _instance_ids(http)


def test_cross_origin_upload_and_delete_are_refused(http, open_server):
    assert http.post("/ai-search/instances", json={"id": "victim"}).status_code == 201
    items = "/ai-search/instances/victim/items"
    bad = {"Origin": "https://evil.example"}
    r = http.post(items, files={"file": ("x.md", b"planted text")}, headers=bad)
    assert_error(r, 403, 10000, "Origin")
    assert_error(http.delete("/ai-search/instances/victim", headers=bad), 403, 10000, "Origin")
    assert http.get(items).json()["result"] == []
    assert "victim" in _instance_ids(http)


def test_same_origin_and_non_browser_requests_work(http, open_server):
    own = f"http://127.0.0.1:{open_server.port}"
    r = http.post(
        "/ai-search/instances",
        json={"id": "same-origin"},
        headers={"Origin": own, "Sec-Fetch-Site": "same-origin"},
    )
    assert r.status_code == 201, r.text
    r = http.post(
        "/ai-search/instances",
        json={"id": "listed-same-site"},
        headers={"Origin": "http://localhost:3000", "Sec-Fetch-Site": "same-site"},
    )
    # a listed origin is another site by design: a real browser says so and is allowed
    assert r.status_code == 201, r.text
    r = http.post(
        "/ai-search/instances",
        json={"id": "listed-cross-site"},
        headers={"Origin": "http://localhost:3000", "Sec-Fetch-Site": "cross-site"},
    )
    assert r.status_code == 201, r.text
    r = http.post(
        "/ai-search/instances",
        json={"id": "unlisted"},
        headers={"Origin": "http://localhost:3001", "Sec-Fetch-Site": "same-site"},
    )
    assert_error(r, 403, 10000, "Sec-Fetch-Site")
    r = http.post(
        "/ai-search/instances",
        json={"id": "allowed-origin"},
        headers={"Origin": "http://localhost:3000"},
    )
    assert r.status_code == 201, r.text
    assert http.post("/ai-search/instances", json={"id": "no-origin"}).status_code == 201
    # a cross-site GET is not refused: the browser does not let the page read the answer
    r = http.get("/ai-search/instances", headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 200
    assert {"same-origin", "allowed-origin", "no-origin"} <= _instance_ids(http)


# -- content types --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ctype",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonx",
    ],
)
def test_json_routes_refuse_other_content_types(http, ctype):
    headers = {"Content-Type": ctype}
    r = http.post("/ai-search/instances", content=json.dumps({"id": "wrong-type"}), headers=headers)
    assert_error(r, 415, 7001, "Content-Type", "application/json")
    assert "wrong-type" not in _instance_ids(http)


@pytest.mark.parametrize(
    "ctype", ["application/json", "application/json; charset=utf-8", "Application/JSON"]
)
def test_json_content_types_accepted(http, ctype):
    iid = "typed-" + str(abs(hash(ctype)) % 10_000)
    r = http.post(
        "/ai-search/instances", content=json.dumps({"id": iid}), headers={"Content-Type": ctype}
    )
    assert r.status_code == 201, r.text


def test_a_body_without_content_type(http):
    """Raw-HTTP tools post bytes without a type: accepted. A page doing so sends Origin."""
    r = http.post("/ai-search/instances", content=json.dumps({"id": "untyped"}))
    assert r.status_code == 201, r.text
    r = http.post(
        "/ai-search/instances",
        content=json.dumps({"id": "untyped-page"}),
        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert r.status_code == 403
    assert "untyped-page" not in _instance_ids(http)


def test_bodiless_posts_work_with_and_without_content_type(http):
    """Our client sends no body and no Content-Type; the Cloudflare SDK sends application/json
    with an empty body (its default header)."""
    assert http.post("/ai-search/instances", json={"id": "bodiless"}).status_code == 201
    jobs = "/ai-search/instances/bodiless/jobs"
    assert http.post(jobs).status_code == 200
    r = http.post(jobs, headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert len(http.get(jobs).json()["result"]) == 2


def test_upload_needs_multipart(http):
    assert http.post("/ai-search/instances", json={"id": "up-type"}).status_code == 201
    r = http.post("/ai-search/instances/up-type/items", json={"file": "x"})
    assert_error(r, 400, 7001, "multipart")
    r = http.post(
        "/ai-search/instances/up-type/items",
        files={"file": ("ok.md", b"uploaded text")},
        data={"wait_for_completion": "true"},
    )
    assert r.status_code == 200, r.text


# -- body size ----------------------------------------------------------------------------------


def _raw_request(port: int, head: str, body_chunks: Iterator[bytes]) -> tuple[bytes, bool]:
    """Send a request on a raw socket; stop sending as soon as an answer arrives.

    Returns:
        The bytes of the answer and whether every chunk of the body had been sent by then.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode("latin-1"))
        finished = True
        for chunk in body_chunks:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                finished = False
                break
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                finished = False
                break
        else:
            finished = True
        sock.settimeout(30)
        parts: list[bytes] = []  # everything until the server closes (or resets) the connection
        with contextlib.suppress(ConnectionResetError):
            for data in iter(lambda: sock.recv(65536), b""):
                parts.append(data)  # kept when a reset ends the loop
        return b"".join(parts), finished


def _parse(answer: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


def test_content_length_over_the_limit_is_refused_before_the_body(open_server, http):
    path = "/client/v4/accounts/a/ai-search/instances/x/search"
    size = 50 * 1024 * 1024
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{open_server.port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
    )
    answer, sent_all = _raw_request(open_server.port, head, iter(()))  # no body at all
    status, body = _parse(answer)
    assert status == 413
    assert body["success"] is False and body["result"] is None
    assert body["errors"][0]["code"] == 7001  # type: ignore[index]
    assert str(MAX_JSON_BYTES) in body["errors"][0]["message"]  # type: ignore[index]
    assert sent_all  # nothing was sent: the server answered on the headers alone
    assert http.get("/ai-search/instances").status_code == 200  # still serving


@pytest.mark.parametrize(
    ("path", "limit"),
    [
        ("/ai-search/instances", MAX_MANAGEMENT_JSON_BYTES),
        ("/ai-search/instances/x/chat/completions", MAX_JSON_BYTES),
        ("/ai-search/instances/x/items", MAX_UPLOAD_BODY_BYTES),
    ],
)
def test_chunked_body_over_the_limit_is_refused_while_streaming(open_server, http, path, limit):
    chunk = b" " * 65536
    chunks = (b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(50 * 16))  # 50 MiB
    ctype = "multipart/form-data; boundary=b" if path.endswith("/items") else "application/json"
    head = (
        f"POST /client/v4/accounts/a{path} HTTP/1.1\r\nHost: localhost:{open_server.port}\r\n"
        f"Content-Type: {ctype}\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    answer, sent_all = _raw_request(open_server.port, head, chunks)
    status, body = _parse(answer)
    assert status == 413, body
    assert body["errors"][0]["code"] == 7001  # type: ignore[index]
    assert f"{limit} byte" in body["errors"][0]["message"]  # type: ignore[index]
    assert not sent_all  # refused before the end of the body
    assert http.get("/ai-search/instances").status_code == 200


def test_bodies_under_the_limit_reach_the_route(http):
    """A search body just under 16 MiB is read and validated (the route answers, not 413)."""
    assert http.post("/ai-search/instances", json={"id": "big-body"}).status_code == 201
    query = "x" * (MAX_JSON_BYTES - 100)
    r = http.post("/ai-search/instances/big-body/search", json={"query": query})
    assert r.status_code != 413, r.text
    r = http.post("/ai-search/instances", json={"id": "big-mgmt", "x": "y" * MAX_JSON_BYTES})
    assert_error(r, 413, 7001, f"{MAX_MANAGEMENT_JSON_BYTES} byte")


def test_bad_content_length_is_a_400(open_server):
    head = (
        f"POST /client/v4/accounts/a/ai-search/instances HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{open_server.port}\r\nContent-Type: application/json\r\n"
        "Content-Length: 12abc\r\n\r\n"
    )
    answer, _ = _raw_request(open_server.port, head, iter(()))
    # uvicorn's parser may refuse it first (400 without envelope); never a 5xx
    assert answer.startswith(b"HTTP/1.1 4"), answer[:200]


# -- allowed source roots -----------------------------------------------------------------------


def test_source_outside_the_allowed_roots_is_refused(http, roots):
    for iid, folder in [
        ("outside", roots["private"]),
        ("dotdot", roots["allowed"] / ".." / "private"),
        ("symlink", roots["allowed"] / "escape"),
        ("root", Path("/")),
        ("missing", Path("/nonexistent/folder")),
    ]:
        r = http.post("/ai-search/instances", json={"id": iid, "source": str(folder)})
        assert_error(r, 400, 7001, "source", "--allow-source-root")
        assert iid not in _instance_ids(http)


def test_source_inside_the_allowed_root_is_indexed(http, roots):
    for iid, folder in [("inside", roots["allowed"] / "docs"), ("the-root", roots["allowed"])]:
        r = http.post("/ai-search/instances", json={"id": iid, "source": str(folder)})
        assert r.status_code == 201, r.text
    job = http.post("/ai-search/instances/inside/jobs").json()["result"]
    assert "1 indexed" in job["end_reason"], job
    keys = [i["key"] for i in http.get("/ai-search/instances/inside/items").json()["result"]]
    assert keys == ["grind.md"]
    # a bucket name (not an absolute path) is no folder: allowed as before
    r = http.post("/ai-search/instances", json={"id": "bucket", "source": "my-bucket"})
    assert r.status_code == 201, r.text


# -- aisearch-local serve: token sources and default roots ------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[Any, str]:
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aisearch_local.cli",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "data"),
            "--log-level",
            "warning",
            *args,
        ],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/client/v4"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read().decode() if proc.stderr else "exited")
        try:
            httpx.get(url + "/_local/health", timeout=1)
            return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("aisearch-local serve did not start")


def _stop(proc: Any) -> None:
    proc.terminate()
    proc.wait(timeout=30)
    if proc.stderr:
        proc.stderr.close()


@pytest.mark.timeout(120)
def test_serve_reads_the_token_from_a_file(tmp_path, roots):
    token_file = tmp_path / "token"
    token_file.write_text("file-secret\n")
    proc, url = _serve(
        tmp_path, "--token-file", str(token_file), "--allow-source-root", str(roots["allowed"])
    )
    try:
        instances = url + "/accounts/a/ai-search/instances"
        assert_error(httpx.get(instances), 401, 1001, "Authorization")
        bad = {"Authorization": "Bearer other"}
        assert_error(httpx.get(instances, headers=bad), 403, 10000)
        auth = {"Authorization": "Bearer file-secret"}
        assert httpx.get(instances, headers=auth).status_code == 200
        r = httpx.post(instances, json={"id": "ok", "source": str(roots["allowed"])}, headers=auth)
        assert r.status_code == 201, r.text
        r = httpx.post(instances, json={"id": "no", "source": str(roots["private"])}, headers=auth)
        assert_error(r, 400, 7001, "source", str(roots["allowed"]))
    finally:
        _stop(proc)


@pytest.mark.timeout(120)
def test_serve_reads_the_token_from_the_environment(tmp_path, roots):
    proc, url = _serve(tmp_path, env={"AISEARCH_LOCAL_TOKEN": "env-secret"})
    try:
        instances = url + "/accounts/a/ai-search/instances"
        assert_error(httpx.get(instances), 401, 1001)
        auth = {"Authorization": "Bearer env-secret"}
        assert httpx.get(instances, headers=auth).status_code == 200
        # no --allow-source-root: no folder may be named over HTTP
        r = httpx.post(instances, json={"id": "no", "source": str(roots["allowed"])}, headers=auth)
        assert_error(r, 400, 7001, "source", "--allow-source-root")
    finally:
        _stop(proc)


def test_serve_refuses_an_unreadable_token_file(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "aisearch_local.cli",
            "serve",
            "--data-dir",
            str(tmp_path / "d"),
            "--token-file",
            str(tmp_path / "missing"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "--token-file" in proc.stderr
