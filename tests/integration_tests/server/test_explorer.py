"""The explorer and playground (docs/explorer.md) in a real browser.

Headless Chromium from Debian's ``chromium`` package, driven by Playwright pointed at it
(``executable_path=``: nothing is downloaded), against a :class:`LocalServer` over real HTTP on
127.0.0.1 holding the sample corpus. The page is used as a newcomer would: open it, find the
sample instance and its items, run a filtered search, chat, inject a fault, upload a file, and
give the token to a server that needs one. A stored-XSS check indexes a document of hostile
HTML and browses it everywhere the page shows server text.

The browser tests are skipped, saying why, when the ``chromium`` binary is missing
(``apt-get install chromium``); the header and banner tests run without it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aisearch_local.routes_ui import CSP, UI_PATH
from aisearch_local.sample_corpus import CUSTOM_METADATA, SAMPLE_CORPUS_DIR
from aisearch_local.testing import LocalServer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

UI_FILES = Path(__file__).resolve().parents[3] / "aisearch_local" / "ui"
TOKEN = "explorer-test-token-3f9a"
# a stored XSS: text an attacker wrote into a file that got indexed
HOSTILE = (
    'Crema notes <img src=x onerror="window.__xss = 1"> and '
    "<script>window.__xss = 2</script> zanzibarite espresso."
)
HOSTILE_META = '<img src=x onerror="window.__xss = 3">'
EXPECT_TIMEOUT = 15_000  # ms: the longest wait for anything the page shows


def _seed_sample(server: LocalServer) -> None:
    """Index the sample corpus as ``default/coffee`` (what ``serve --sample-corpus`` does)."""
    svc = server.service
    assert svc is not None
    inst = svc.create_instance(
        "default",
        {"id": "coffee", "custom_metadata": CUSTOM_METADATA},
        source_dir=str(SAMPLE_CORPUS_DIR),
    )
    reason, _ = svc.sync_source(inst)
    assert reason.startswith("completed: 43 indexed"), reason


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(in_memory=True) as srv:
        _seed_sample(srv)
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.skip(
            "chromium is not installed (Debian: apt-get install chromium); "
            "the explorer's browser tests need it"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # --no-sandbox: containers run as root, and the sandbox refuses that
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


class _Page:
    """A fresh browser tab (its own storage) with the problems the page reported."""

    def __init__(self, browser: Any) -> None:
        from playwright.sync_api import expect

        expect.set_options(timeout=EXPECT_TIMEOUT)
        self.context = browser.new_context(viewport={"width": 1280, "height": 800})
        self.context.set_default_timeout(EXPECT_TIMEOUT)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        self.page.on(
            "console",
            lambda m: (
                self.errors.append(f"console: {m.text}")
                if m.type == "error" and "favicon" not in m.text and "status of" not in m.text
                else None
            ),
        )
        self.dialogs: list[str] = []
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))


@pytest.fixture
def tab(browser: Any) -> Iterator[_Page]:
    t = _Page(browser)
    yield t
    t.context.close()
    assert t.errors == [], t.errors  # no script error, no CSP violation


def _origin(server: LocalServer) -> str:
    return f"http://{server.host}:{server.port}"


def _open(tab: _Page, server: LocalServer, where: str = "") -> Any:
    page = tab.page
    page.goto(_origin(server) + UI_PATH + "/" + where)
    return page


def _search_api(server: LocalServer, instance: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    r = httpx.post(
        f"{server.account_url}/ai-search/instances/{instance}/search",
        json=body,
        headers=server.headers,
        timeout=30,
    )
    assert r.status_code == 200, r.text
    chunks: list[dict[str, Any]] = r.json()["result"]["chunks"]
    return chunks


# -- the files and their headers ------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/", "text/html"),
        (UI_PATH + "/", "text/html"),
        (UI_PATH + "/app.js", "text/javascript"),
        (UI_PATH + "/style.css", "text/css"),
    ],
)
def test_every_explorer_file_is_served_with_the_protective_headers(server, path, kind):
    r = httpx.get(_origin(server) + path, timeout=30)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith(kind)
    assert r.headers["content-security-policy"] == CSP
    assert "script-src 'self';" in CSP and "'unsafe" not in CSP
    assert "frame-ancestors 'none'" in CSP
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"


def test_nothing_else_is_served_under_the_explorer_path(server):
    for path in ("/ui/app.js", "/index.html", "/..%2fcli.py", "/routes_ui.py", "/__init__.py"):
        r = httpx.get(_origin(server) + UI_PATH + path, timeout=30)
        assert r.status_code == 404, path
        assert r.json()["errors"][0]["code"] == 7003


def test_the_openapi_document_describes_the_explorer_routes_as_public_pages(server):
    doc = httpx.get(_origin(server) + "/client/v4/_local/openapi.json", timeout=30).json()
    kinds = {
        "/": "text/html",
        UI_PATH + "/": "text/html",
        UI_PATH + "/app.js": "text/javascript",
        UI_PATH + "/style.css": "text/css",
    }
    for path, kind in kinds.items():
        op = doc["paths"][path]["get"]
        assert op["security"] == [] and op["tags"] == ["local"], path
        assert kind in op["responses"]["200"]["content"], path


def test_the_page_has_no_inline_script_and_never_writes_html():
    html = (UI_FILES / "index.html").read_text()
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts and all(" src=" in s for s in scripts)
    assert not re.search(r"\son[a-z]+\s*=", html), "an inline event handler in index.html"
    assert " style=" not in html
    source = (UI_FILES / "app.js").read_text()
    js = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("//"))
    for sink in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "Function(",
    ):
        assert sink not in js, sink
    assert "localStorage" not in js and "document.cookie" not in js


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_serve_prints_the_explorer_url_and_it_opens(host):
    argv = ["serve", "--in-memory", "--port", "0", "--host", host, "--log-level", "warning"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "aisearch_local.cli", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # ends when the process does
            lines.append(line)
            if "explorer:" in line:
                break
        match = re.fullmatch(
            r"  explorer: (http://127\.0\.0\.1:\d+/client/v4/_local/ui/)"
            r"  \(open it in a browser\)\n",
            lines[-1],
        )
        assert match, lines
        r = httpx.get(match.group(1), timeout=30)
        assert r.status_code == 200
        assert "<title>aisearch-local explorer</title>" in r.text
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        if proc.stderr:
            proc.stderr.close()


# -- a newcomer's tour ------------------------------------------------------------------------


def test_open_the_page_and_find_the_sample_instance_and_its_items(server, tab):
    from playwright.sync_api import expect

    stats = httpx.get(server.account_url + "/ai-search/instances/coffee/stats", timeout=30)
    completed = str(stats.json()["result"]["completed"])  # 43, or 44 after the upload test
    page = _open(tab, server)
    page.get_by_role("button", name="coffee", exact=True).click()
    expect(page.locator("#instance-title")).to_have_text("coffee")
    expect(page.locator('[data-stat="completed"] .stat-value')).to_have_text(completed)
    expect(page.locator('[data-stat="vectors"] .stat-value')).not_to_have_text("")

    page.get_by_role("tab", name="Items").click()
    expect(page.locator("#items-page")).to_contain_text(f"{completed} items")
    page.get_by_label("Key contains").fill("espresso-basics")
    page.locator("#items-filter").get_by_role("button", name="Filter").click()
    row = page.locator("#items-table tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator(".badge")).to_have_text("completed")
    row.click()
    expect(page.locator("#item-title")).to_have_text("brewing/espresso-basics.md")
    expect(page.locator("#item-chunks li").first).to_contain_text("espresso")
    expect(page.locator("#item-fields")).to_contain_text("difficulty")

    page.get_by_role("tab", name="Jobs").click()
    page.get_by_role("button", name="Start a sync job").click()
    expect(page.locator("#jobs-table tbody tr").first).to_contain_text("completed: ")
    expect(page.locator("#job-detail")).to_be_visible()

    # the namespace view lists its instances with their stats
    page.locator("#tree .ns-link", has_text="default").click()
    ns_row = page.locator("#namespace-instances tbody tr", has_text="coffee")
    expect(ns_row).to_contain_text("active")


def test_a_filtered_search_shows_results_with_a_bar_per_score(server, tab):
    from playwright.sync_api import expect

    page = _open(tab, server, "#/default/coffee/search")
    search = page.locator("#tab-search")
    search.get_by_label("Query", exact=True).fill("how fine should I grind for espresso")
    search.get_by_label("Retrieval type").select_option("hybrid")
    search.get_by_label("Filters (JSON)").fill('{"difficulty": "beginner"}')
    search.get_by_label("Reranking", exact=True).select_option("true")
    search.get_by_label("Max results").fill("5")
    search.get_by_role("button", name="Search").click()

    results = page.locator("#search-results > li")
    expect(page.locator("#search-status")).to_contain_text("results")
    expected = _search_api(
        server,
        "coffee",
        {
            "query": "how fine should I grind for espresso",
            "ai_search_options": {
                "retrieval": {
                    "retrieval_type": "hybrid",
                    "filters": {"difficulty": "beginner"},
                    "max_num_results": 5,
                },
                "reranking": {"enabled": True},
            },
        },
    )
    assert expected and all(c["item"]["metadata"]["difficulty"] == "beginner" for c in expected)
    expect(results).to_have_count(len(expected))
    assert results.locator(".source").all_text_contents() == [c["item"]["key"] for c in expected]
    first = results.first
    for component in ("vector", "keyword", "reranking", "score"):
        expect(first.locator(f'.bar-row[data-component="{component}"] .fill')).to_be_visible()
    expect(first.locator(".meta")).to_contain_text("beginner")
    width = first.locator('.bar-row[data-component="vector"] .fill').evaluate(
        "e => e.getBoundingClientRect().width"
    )
    assert width > 0
    sent = json.loads(page.locator("#search-request").text_content().split("\n", 1)[1])
    assert sent["ai_search_options"]["retrieval"]["filters"] == {"difficulty": "beginner"}
    assert "fusion_method" not in sent["ai_search_options"]["retrieval"]  # left at default


def test_a_chat_answer_streams_with_its_sources_first_and_linked_citations(server, tab):
    from playwright.sync_api import expect

    page = _open(tab, server, "#/default/coffee/chat")
    expect(page.locator("#chat-form")).to_be_visible()
    # watch the page from outside: in which order do sources and answer text appear?
    page.evaluate(
        """() => {
        window.__order = [];
        new MutationObserver(() => {
          const seen = (what) => window.__order.includes(what);
          if (!seen("sources") && document.querySelector("#chat-log .sources li"))
            window.__order.push("sources");
          const answer = document.querySelector("#chat-log .answer");
          if (answer && answer.textContent) {
            if (!seen("text")) window.__order.push("text");
            window.__order.push("delta");
          }
        }).observe(document.getElementById("chat-log"),
                   {childList: true, subtree: true, characterData: true});
    }"""
    )
    page.get_by_label("Message").fill("how fine should I grind for a moka pot?")
    page.locator("#chat-form").get_by_role("button", name="Send").click()
    expect(page.locator("#chat-log .chat-status")).to_contain_text("done")
    order = page.evaluate("window.__order")
    assert order[:2] == ["sources", "text"], order
    assert order.count("delta") > 1, "the answer was not rendered as it streamed"

    sources = page.locator("#chat-log .sources > li")
    assert sources.count() >= 1
    cites = page.locator("#chat-log .answer a.cite")
    assert cites.count() >= 1
    answer = page.locator("#chat-log .answer").text_content()
    assert re.search(r"\[\d+\]", answer)
    n = int(cites.first.get_attribute("data-cite"))
    assert 1 <= n <= sources.count()
    cites.first.click()
    cited = sources.nth(n - 1)
    expect(cited).to_have_class(re.compile(r"\bcited\b"))
    expect(cited.locator(".chunk-text")).to_be_visible()
    assert "#/default/coffee/chat" in page.url  # the citation did not change the address


def test_a_fault_makes_the_next_search_fail_with_its_message(server, tab):
    from playwright.sync_api import expect

    page = _open(tab, server, "#/default/coffee/faults")
    try:
        page.get_by_label("HTTP status").fill("503")
        page.get_by_role("button", name="Set fault").click()
        expect(page.locator("#fault-result")).to_contain_text("status=503")

        page.get_by_role("tab", name="Search").click()
        page.locator("#tab-search").get_by_label("Query", exact=True).fill("espresso")
        page.locator("#tab-search").get_by_role("button", name="Search").click()
        expect(page.locator("#search-error")).to_have_text(
            "HTTP 503 · 7017: injected fault: HTTP 503"
        )
        expect(page.locator("#search-results > li")).to_have_count(0)

        page.get_by_role("tab", name="Faults").click()
        page.get_by_role("button", name="Clear this instance's fault").click()
        expect(page.locator("#fault-result")).to_contain_text("No fault on coffee")
        page.get_by_role("tab", name="Search").click()
        page.locator("#tab-search").get_by_role("button", name="Search").click()
        expect(page.locator("#search-results > li").first).to_be_visible()
        expect(page.locator("#search-error")).to_have_text("")
    finally:
        server.clear_faults()


def test_the_faults_tab_shows_a_fault_set_elsewhere(server, tab):
    from playwright.sync_api import expect

    page = _open(tab, server, "#/default/coffee/faults")
    expect(page.locator("#fault-result")).to_have_text("No fault on coffee.")
    server.set_fault("coffee", status=429, retry_after=3, times=5)  # a test or curl, not the page
    try:
        page.get_by_role("tab", name="Search").click()
        page.get_by_role("tab", name="Faults").click()
        expect(page.locator("#fault-result")).to_have_text(
            "Fault set on coffee: status=429, retry_after=3, times=5"
        )
    finally:
        server.clear_faults()


def test_a_truncated_chat_stream_is_reported(server, tab):
    from playwright.sync_api import expect

    page = _open(tab, server, "#/default/coffee/chat")
    server.set_fault("coffee", truncate_stream=True, times=1)
    try:
        page.get_by_label("Message").fill("how long should espresso extract?")
        page.locator("#chat-form").get_by_role("button", name="Send").click()
        expect(page.locator("#chat-log .chat-status")).to_contain_text(
            "the stream ended without [DONE]"
        )
        expect(page.locator("#chat-log .sources > li").first).to_be_visible()
    finally:
        server.clear_faults()


def test_upload_a_file_and_find_it(server, tab):
    from playwright.sync_api import expect

    before = httpx.get(server.account_url + "/ai-search/instances/coffee/items", timeout=30)
    count = before.json()["result_info"]["total_count"]
    page = _open(tab, server, "#/default/coffee/items")
    text = "# Cold brew at the quarry\n\nSteep the xylophonic blend for 18 hours in cold water.\n"
    page.locator("#upload-file").set_input_files(
        files=[
            {"name": "cold-brew-quarry.md", "mimeType": "text/markdown", "buffer": text.encode()}
        ]
    )
    page.get_by_label("Metadata (JSON, optional)").fill('{"author": "Explorer Test"}')
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-result")).to_contain_text("cold-brew-quarry.md: completed")
    expect(page.locator("#item-title")).to_have_text("cold-brew-quarry.md")
    expect(page.locator("#item-chunks")).to_contain_text("xylophonic")
    expect(page.locator("#items-page")).to_contain_text(f"{count + 1} items")

    page.get_by_role("tab", name="Search").click()
    page.locator("#tab-search").get_by_label("Query", exact=True).fill("xylophonic blend")
    page.locator("#tab-search").get_by_role("button", name="Search").click()
    expect(page.locator("#search-results > li .source").first).to_have_text("cold-brew-quarry.md")
    expect(page.locator("#search-results > li .meta").first).to_contain_text("Explorer Test")
    svc = server.service
    assert svc is not None
    inst = svc.require_instance("default", "coffee")
    assert any(i["key"] == "cold-brew-quarry.md" for i in svc.items(inst))


def test_an_item_that_failed_shows_its_error(server, tab):
    from playwright.sync_api import expect

    r = httpx.post(server.account_url + "/ai-search/instances", json={"id": "failing"}, timeout=30)
    assert r.status_code in (200, 201), r.text
    page = _open(tab, server, "#/default/failing/items")
    page.locator("#upload-file").set_input_files(
        files=[
            {"name": "scan.bin", "mimeType": "application/octet-stream", "buffer": b"abc"},
            {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"plain notes"},
        ]
    )
    page.get_by_role("button", name="Upload").click()
    message = "scan.bin: unsupported file type .bin; supported: .htm, .html, .json"
    expect(page.locator("#upload-result")).to_contain_text(f"scan.bin: error ({message}")
    expect(page.locator("#upload-result")).to_contain_text("notes.txt: completed, 1 chunks")
    page.locator("#items-status").select_option("error")
    page.locator("#items-filter").get_by_role("button", name="Filter").click()
    row = page.locator("#items-table tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator(".badge")).to_have_text("error")
    expect(row.locator("td.item-error")).to_contain_text(message)
    row.click()
    expect(page.locator("#item-fields dd.error")).to_contain_text(message)
    expect(page.locator("#item-chunks")).to_have_text("no chunk")


def test_an_empty_server_offers_to_create_an_instance(browser):
    from playwright.sync_api import expect

    with LocalServer(in_memory=True) as srv:
        tab = _Page(browser)
        try:
            page = _open(tab, srv)
            expect(page.locator("#namespace-title")).to_have_text("Namespace default")
            field = page.get_by_label("New instance id")
            field.fill("Not An Id")
            page.get_by_role("button", name="Create instance").click()
            expect(page.locator("#namespace-error")).to_contain_text("HTTP 400 · 7001: id")
            field.fill("my-docs")
            page.get_by_role("button", name="Create instance").click()
            expect(page.locator("#instance-title")).to_have_text("my-docs")
            expect(page.get_by_role("tab", name="Items")).to_have_attribute("aria-selected", "true")
            expect(page.locator("#tree .instance-link")).to_have_text(["my-docs"])
        finally:
            tab.context.close()
        assert tab.errors == [], tab.errors
        assert srv.service is not None
        assert srv.service.store.get_instance("default", "my-docs") is not None


# -- security ------------------------------------------------------------------------------


def test_a_server_with_a_token_gets_it_from_the_user_and_keeps_it_in_the_tab(browser):
    from playwright.sync_api import expect

    with LocalServer(in_memory=True, token=TOKEN) as srv:
        httpx.post(
            srv.account_url + "/ai-search/instances", json={"id": "guarded"}, headers=srv.headers
        ).raise_for_status()
        tab = _Page(browser)
        try:
            page = _open(tab, srv)
            expect(page.locator("#token-panel")).to_be_visible()
            expect(page.locator("#layout")).to_be_hidden()

            page.get_by_label("Token", exact=True).fill("two words")  # malformed: 400 / 6003
            page.get_by_role("button", name="Use token").click()
            expect(page.locator("#token-error")).to_contain_text(
                "That token was refused (HTTP 400 · 6003: Invalid request headers)"
            )
            page.get_by_label("Token", exact=True).fill("not-the-token")
            page.get_by_role("button", name="Use token").click()
            expect(page.locator("#token-error")).to_contain_text(
                "That token was refused (HTTP 403 · 10000: Authentication error)"
            )
            page.get_by_label("Token", exact=True).fill(TOKEN)
            page.get_by_role("button", name="Use token").click()
            expect(page.get_by_role("button", name="guarded", exact=True)).to_be_visible()
            expect(page.locator("#token-panel")).to_be_hidden()

            assert page.evaluate("sessionStorage.getItem('aisearch-local-token')") == TOKEN
            assert page.evaluate("localStorage.length") == 0
            assert page.evaluate("document.cookie") == ""
            assert tab.context.cookies() == []
            assert TOKEN not in page.url
            assert TOKEN not in page.content()  # the input was emptied

            # another tab of the same browser does not have it
            other = tab.context.new_page()
            other.goto(_origin(srv) + UI_PATH + "/")
            expect(other.locator("#token-panel")).to_be_visible()
            other.close()

            page.get_by_role("button", name="Forget token").click()
            expect(page.locator("#token-panel")).to_be_visible()
            assert page.evaluate("sessionStorage.length") == 0
        finally:
            tab.context.close()
        assert tab.errors == [], tab.errors


def test_hostile_html_in_an_indexed_file_is_shown_as_text_and_never_runs(server, tab):
    from playwright.sync_api import expect

    r = httpx.post(
        server.account_url + "/ai-search/instances",
        json={"id": "xss", "custom_metadata": [{"field_name": "author", "data_type": "text"}]},
        timeout=30,
    )
    assert r.status_code in (200, 201), r.text
    r = httpx.post(
        server.account_url + "/ai-search/instances/xss/items",
        files={"file": ("<b>bold</b>.txt", HOSTILE.encode(), "text/plain")},
        data={"metadata": json.dumps({"author": HOSTILE_META})},
        timeout=30,
    )
    assert r.status_code == 200, r.text

    page = _open(tab, server, "#/default/xss/items")
    row = page.locator("#items-table tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator("td").first).to_have_text("<b>bold</b>.txt")
    row.click()
    expect(page.locator("#item-chunks .chunk-text")).to_have_text(HOSTILE)
    expect(page.locator("#item-fields")).to_contain_text(HOSTILE_META)

    page.get_by_role("tab", name="Search").click()
    page.locator("#tab-search").get_by_label("Query", exact=True).fill("zanzibarite crema")
    page.locator("#tab-search").get_by_role("button", name="Search").click()
    expect(page.locator("#search-results .chunk-text").first).to_have_text(HOSTILE)
    expect(page.locator("#search-results .meta").first).to_contain_text(HOSTILE_META)

    page.get_by_role("tab", name="Chat").click()
    page.get_by_label("Message").fill("zanzibarite crema notes")
    page.locator("#chat-form").get_by_role("button", name="Send").click()
    expect(page.locator("#chat-log .chat-status")).to_contain_text("done")
    page.locator("#chat-log .sources summary").first.click()
    expect(page.locator("#chat-log .sources .chunk-text").first).to_have_text(HOSTILE)

    assert page.evaluate("window.__xss") is None
    assert page.locator("img, script:not([src]), b").count() == 0
    assert tab.dialogs == []
