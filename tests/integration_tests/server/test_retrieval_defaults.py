"""The default configuration answers natural-language questions; keyword ``and`` stays AND.

Over real HTTP: the sample corpus uploaded through the items API into an instance created with
no retrieval options (the ``docs_instance`` fixture), searched with no options.
"""

from __future__ import annotations

import re

import httpx
import pytest

from tests.integration_tests.server._helpers import search

pytestmark = pytest.mark.integration

QUESTIONS = {
    "What causes a slow drawdown in a V60?": "troubleshooting/slow-drawdown-pour-over.md",
    "Why does my espresso taste sour and thin?": "troubleshooting/sour-espresso.md",
    "How long should cold brew steep in the fridge?": "brewing/cold-brew.md",
    "How should I store coffee beans to keep them fresh?": "roasting/storage-and-freshness.md",
}


@pytest.mark.parametrize("question", list(QUESTIONS))
def test_the_default_search_answers_a_question(
    server_http: httpx.Client, docs_instance: str, question: str
) -> None:
    chunks = search(server_http, docs_instance, question)["chunks"]
    assert chunks, f"no result for {question!r}"
    assert chunks[0]["item"]["key"] == QUESTIONS[question]
    for chunk in chunks:
        assert chunk["scoring_details"]["fusion_method"] == "rrf"


@pytest.mark.parametrize("question", list(QUESTIONS))
def test_keyword_and_returns_only_chunks_holding_every_word(
    server_http: httpx.Client, docs_instance: str, question: str
) -> None:
    from aisearch_local.search import keyword_terms

    terms = keyword_terms(question, trigram=False)
    for options in ({"retrieval_type": "keyword"}, {}):  # keyword only; hybrid's keyword side
        chunks = search(server_http, docs_instance, question, **options)["chunks"]
        for chunk in chunks:
            if "keyword_rank" not in chunk["scoring_details"]:
                assert options == {}, chunk  # keyword only: every chunk is a keyword match
                continue
            words = re.findall(r"\w+", chunk["text"].lower())
            # porter stemming: every term matches a word starting with its first 4 letters
            for term in terms:
                assert any(w.startswith(term[:4]) for w in words), (term, chunk["item"]["key"])


def test_keyword_and_answers_nothing_when_no_chunk_holds_every_word(
    server_http: httpx.Client, docs_instance: str
) -> None:
    question = "Why does my V60 drawdown taste of espresso crema?"
    keyword = search(server_http, docs_instance, question, retrieval_type="keyword")
    assert keyword["chunks"] == []
    hybrid = search(server_http, docs_instance, question)["chunks"]
    assert hybrid
    assert all("keyword_rank" not in c["scoring_details"] for c in hybrid)
