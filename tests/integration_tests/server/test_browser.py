"""End to end with a real browser: a web page cannot drive the local server (docs/security.md).

A headless Chromium loads an attacker's page from another origin (a second HTTP server on
127.0.0.1, or a name mapped to 127.0.0.1 with ``--host-resolver-rules`` to play DNS rebinding).
The page tries what any page can send without a CORS preflight: a ``no-cors`` ``fetch`` of a
JSON body as ``text/plain`` creating an instance over a private folder, the same bytes with no
type, a ``text/plain`` form POST, a bodiless POST starting a sync job, a DELETE; plus a CORS
``fetch`` with ``application/json``. The page then reports to its own server, which proves the
requests were made; the server's state must be unchanged. Without the perimeter
(aisearch_local/guard.py), the instances are created.

Needs the ``chromium`` binary (Debian: ``apt-get install chromium``); skipped without it.
"""

from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aisearch_local.testing import LocalServer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="chromium is not installed (Debian: apt-get install chromium); "
        "the browser end-to-end test of the server's perimeter needs it",
    ),
    pytest.mark.timeout(300),
]

EVIL = "evil.test"  # mapped to 127.0.0.1 in the browser only


def _attack_page(target: str, secret_dir: str) -> bytes:
    return f"""<!doctype html><html><body><pre id=out>pending</pre>
<iframe name=sink style="display:none"></iframe>
<form id=f method=POST action="{target}/ai-search/instances" enctype="text/plain" target=sink>
<input name='{{"id":"browser-form","pad":"' value='"}}'></form>
<script>
const T = {json.dumps(target)};
async function attempt(name, url, init, out) {{
  try {{
    const r = await fetch(url, init);
    out[name] = r.type === "opaque" ? "opaque" : r.status;
  }} catch (e) {{ out[name] = "error: " + e.message; }}
}}
async function go() {{
  const out = {{}};
  await attempt("create_text_plain", T + "/ai-search/instances", {{method: "POST",
    mode: "no-cors", headers: {{"Content-Type": "text/plain"}},
    body: JSON.stringify({{id: "browser-fetch", source: {json.dumps(secret_dir)}}})}}, out);
  await attempt("create_untyped", T + "/ai-search/instances", {{method: "POST",
    mode: "no-cors", body: new TextEncoder().encode(JSON.stringify({{id: "browser-bytes"}}))}},
    out);
  await attempt("create_json_cors", T + "/ai-search/instances", {{method: "POST",
    headers: {{"Content-Type": "application/json"}},
    body: JSON.stringify({{id: "browser-json"}})}}, out);
  await attempt("sync_job", T + "/ai-search/instances/victim/jobs",
    {{method: "POST", mode: "no-cors"}}, out);
  await attempt("delete", T + "/ai-search/instances/victim",
    {{method: "DELETE", mode: "no-cors"}}, out);
  document.getElementById("f").submit();
  await new Promise(r => setTimeout(r, 500));
  await fetch("/done", {{method: "POST", body: JSON.stringify(out)}});
  document.getElementById("out").textContent = "DONE " + JSON.stringify(out);
}}
go();
</script></body></html>""".encode()


class _PageServer:
    """Serves one HTML page and records the page's report (POST /done)."""

    def __init__(self, html: bytes) -> None:
        self.reports: list[dict[str, object]] = []
        reports = self.reports

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(html)))
                self.end_headers()
                self.wfile.write(html)

            def do_POST(self) -> None:
                n = int(self.headers.get("content-length", "0"))
                reports.append(json.loads(self.rfile.read(n)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _chromium(url: str, profile: Path) -> str:
    assert CHROMIUM is not None
    proc = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",  # containers run as root; the sandbox refuses that
            "--disable-gpu",
            f"--user-data-dir={profile}",
            f"--host-resolver-rules=MAP {EVIL} 127.0.0.1",
            "--virtual-time-budget=15000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LocalServer]:
    with LocalServer(token=None, source_roots=[tmp_path / "shared"]) as srv:
        yield srv


@pytest.fixture
def secret_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "private"
    folder.mkdir()
    (folder / "diary.md").write_text("My private diary: the espresso recipe.")
    return folder


def _ids(srv: LocalServer) -> list[str]:
    r = httpx.get(srv.account_url + "/ai-search/instances")
    return sorted(i["id"] for i in r.json()["result"])


@pytest.mark.parametrize("page_host", ["127.0.0.1", EVIL])
@pytest.mark.parametrize("target_host", ["127.0.0.1", "localhost", EVIL])
def test_a_page_of_another_origin_cannot_change_the_server(
    server, secret_dir, tmp_path, page_host, target_host
):
    assert httpx.post(server.account_url + "/ai-search/instances", json={"id": "victim"}).is_success
    target = server.account_url.replace("127.0.0.1", target_host)
    page = _PageServer(_attack_page(target, str(secret_dir)))
    try:
        _chromium(f"http://{page_host}:{page.port}/attack.html", tmp_path / "profile")
    finally:
        page.close()
    assert len(page.reports) == 1, "the attack page did not run to its end"
    report = page.reports[0]
    assert set(report) == {
        "create_text_plain",
        "create_untyped",
        "create_json_cors",
        "sync_job",
        "delete",
    }
    assert report["create_json_cors"] == "error: Failed to fetch"  # no CORS: never readable
    assert _ids(server) == ["victim"]
    jobs = httpx.get(server.account_url + "/ai-search/instances/victim/jobs").json()["result"]
    assert jobs == []


def test_a_rebound_name_cannot_read_the_server(server, tmp_path):
    """DNS rebinding: the page's name now points at 127.0.0.1, so the browser treats the server
    as the page's own origin; the server still refuses the foreign ``Host``."""
    r = httpx.post(server.account_url + "/ai-search/instances", json={"id": "private-notes"})
    assert r.status_code == 201
    dom = _chromium(
        server.account_url.replace("127.0.0.1", EVIL) + "/ai-search/instances",
        tmp_path / "profile",
    )
    assert "is not allowed" in dom and "--allowed-host" in dom, dom[-1000:]
    assert "private-notes" not in dom
    own = _chromium(server.account_url + "/ai-search/instances", tmp_path / "profile2")
    assert "private-notes" in own  # the same read from the server's own origin works
