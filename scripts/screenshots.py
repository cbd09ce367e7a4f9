"""Regenerate the explorer's screenshots in docs/images/ (README "Explorer", docs/explorer.md).

Starts a :class:`~aisearch_local.testing.LocalServer` holding the sample corpus (in memory),
opens the explorer in headless Chromium (Debian's ``chromium``, driven by Playwright with
``executable_path=``, as tests/integration_tests/server/test_explorer.py does: nothing is
downloaded) at 1280x800, and saves:

* ``explorer.png`` - an instance's items, one item open with its chunks;
* ``search-playground.png`` - a filtered hybrid search with reranking, a bar per score;
* ``chat-playground.png`` - a streamed answer, its sources and citation links.

The PNGs are reduced to a 256-colour palette with Pillow when it is installed (a quarter of
the size; the UI has few colours).

Usage::

    .venv/bin/python scripts/screenshots.py [--out docs/images] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

from playwright.sync_api import expect, sync_playwright

from aisearch_local.routes_ui import UI_PATH
from aisearch_local.sample_corpus import CUSTOM_METADATA, iter_sample_documents
from aisearch_local.testing import LocalServer

ROOT = Path(__file__).resolve().parents[1]
VIEWPORT = {"width": 1280, "height": 800}


def _seed(server: LocalServer) -> None:
    """The sample corpus as ``default/coffee``, uploaded (no local folder shows in the shots)."""
    svc = server.service
    assert svc is not None
    inst = svc.create_instance("default", {"id": "coffee", "custom_metadata": CUSTOM_METADATA})
    for doc in iter_sample_documents():
        svc.index_document(inst, key=doc.key, data=doc.data, metadata=doc.metadata)


def _save(page: Any, path: Path) -> None:
    page.mouse.move(0, 0)  # no hover highlight
    page.screenshot(path=str(path))
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow comes with matplotlib in the dev group
        return
    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)
    print(f"{path}: {path.stat().st_size // 1024} KiB")


def main(argv: list[str] | None = None) -> int:
    """Take the screenshots; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument(
        "--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser")
    )
    args = parser.parse_args(argv)
    if not args.chromium:
        print("chromium is not installed (Debian: apt-get install chromium)", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    expect.set_options(timeout=20_000)
    with LocalServer(in_memory=True) as server, sync_playwright() as p:
        _seed(server)
        url = f"http://{server.host}:{server.port}{UI_PATH}/"
        browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport=VIEWPORT)

        page.goto(url + "#/default/coffee/items")
        page.get_by_label("Key contains").fill("espresso")
        page.locator("#items-filter").get_by_role("button", name="Filter").click()
        page.locator("#items-table tbody tr", has_text="espresso-basics").click()
        expect(page.locator("#item-chunks li").first).to_be_visible()
        _save(page, args.out / "explorer.png")

        page.get_by_role("tab", name="Search").click()
        search = page.locator("#tab-search")
        search.get_by_label("Query", exact=True).fill("how fine should I grind for espresso")
        search.get_by_label("Retrieval type").select_option("hybrid")
        search.get_by_label("Filters (JSON)").fill(
            '{"difficulty": {"$in": ["beginner", "intermediate"]}}'
        )
        search.get_by_label("Reranking", exact=True).select_option("true")
        search.get_by_label("Max results").fill("5")
        search.get_by_role("button", name="Search").click()
        expect(page.locator("#search-results > li").first).to_be_visible()
        _save(page, args.out / "search-playground.png")

        page.get_by_role("tab", name="Chat").click()
        page.get_by_label("Message").fill("What grind size should I use for a moka pot?")
        page.locator("#chat-form").get_by_role("button", name="Send").click()
        expect(page.locator("#chat-log .chat-status")).to_contain_text("done")
        _save(page, args.out / "chat-playground.png")
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
