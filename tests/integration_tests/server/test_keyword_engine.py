"""The tantivy keyword engine over real HTTP: writes seen at once, hostile queries, restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aisearch_local.search import fts_expression, keyword_terms
from aisearch_local.testing import LocalServer
from tests.integration_tests.server._helpers import search, upload

pytestmark = pytest.mark.integration

DOCS = {
    "grind.md": "Grind the coffee beans finer when the espresso runs too fast.",
    "kettle.md": "A gooseneck kettle pours water slowly over the coffee grounds.",
    "tea.md": "Green tea brews at a lower temperature than black tea.",
}


def keys(http: httpx.Client, query: str, **opts: object) -> list[str]:
    found = search(http, "kw", query, retrieval_type="keyword", **opts)
    return [c["item"]["key"] for c in found["chunks"]]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[LocalServer, httpx.Client]]:
    with LocalServer(data_dir=tmp_path, keyword_engine="tantivy") as server:
        assert server.service is not None
        server.service.create_instance("default", {"id": "kw"})
        with httpx.Client(base_url=server.account_url, headers=server.headers) as http:
            for key, text in DOCS.items():
                upload(http, "kw", key, text)
            yield server, http


def test_uploads_and_deletes_are_in_the_very_next_search(served):
    server, http = served
    assert set(keys(http, "coffee", keyword_match_mode="or")) == {"grind.md", "kettle.md"}
    item = upload(http, "kw", "new.md", "A cortado with oat milk.")
    assert keys(http, "cortado") == ["new.md"]
    upload(http, "kw", "new.md", "Now a flat white.")
    assert keys(http, "cortado") == []
    r = http.delete(f"/ai-search/instances/kw/items/{item['id']}")
    assert r.status_code == 200, r.text
    assert keys(http, "flat white") == []
    assert server.service is not None
    assert len(server.service.store.keywords._live) == 1  # tantivy answered, not FTS5


@pytest.mark.parametrize(
    "query", ["text:foo OR (", 'coffee" OR "tea', "coffee AND NOT tea", "*", "coffee^9", "_ tea"]
)
def test_query_syntax_in_the_text_is_words_as_fts5_reads_them(served, query):
    server, http = served
    store = server.service.store
    inst = store.get_instance("default", "kw")
    for mode in ("and", "or"):
        terms = keyword_terms(query, trigram=False)
        fts5 = store.keyword(inst, fts_expression(terms, mode), 100) if terms else []
        expected = {c.item_pk for c in store.chunks_by_cid([cid for cid, _ in fts5]).values()}
        names = {store.items_by_pk(expected)[pk]["key"] for pk in expected}
        assert set(keys(http, query, keyword_match_mode=mode)) == names, (query, mode)


def test_a_restart_rebuilds_the_index_from_sqlite(tmp_path):
    with LocalServer(data_dir=tmp_path, keyword_engine="tantivy") as server:
        assert server.service is not None
        server.service.create_instance("default", {"id": "kw"})
        with httpx.Client(base_url=server.account_url, headers=server.headers) as http:
            upload(http, "kw", "a.md", "Siphon brewers look like a lab.")
            assert keys(http, "siphon") == ["a.md"]
    with (
        LocalServer(data_dir=tmp_path, keyword_engine="tantivy") as server,
        httpx.Client(base_url=server.account_url, headers=server.headers) as http,
    ):
        assert keys(http, "siphon") == ["a.md"]
