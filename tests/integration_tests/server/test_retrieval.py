"""Every retrieval option has its documented effect (API.md sections 4.1 and 9)."""

from __future__ import annotations

import httpx
import pytest

from tests.integration_tests.server._helpers import search, upload

pytestmark = pytest.mark.integration

CUSTOM = [
    {"field_name": "rating", "data_type": "number"},
    {"field_name": "author", "data_type": "text"},
    {"field_name": "featured", "data_type": "boolean"},
]
DOCS = {
    "brewing/espresso.md": (
        "Espresso forces hot water through finely ground coffee at nine bars of pressure. "
        "A shot takes about twenty five seconds.",
        {"rating": 4, "author": "ana"},
    ),
    "brewing/pour-over.md": (
        "Pour over brewing drips hot water through a paper filter and medium ground coffee.",
        {"rating": 3, "author": "ben"},
    ),
    "beans/ethiopia.md": (
        "Ethiopian coffee beans taste floral with notes of jasmine and bergamot.",
        {"rating": 5, "author": "ana"},
    ),
    "beans/brazil.md": (
        "Brazilian coffee beans are nutty and chocolatey with low acidity.",
        {"rating": 2, "author": "cy"},
    ),
    "equipment/grinder.md": (
        "A burr grinder crushes coffee beans evenly; blade grinders chop them unevenly.",
        {"rating": 4, "author": "ben"},
    ),
}
CUPPING = "Cupping notes for the weekly tasting session of the roastery team."


@pytest.fixture(scope="module")
def corpus(server_http: httpx.Client, make_instance) -> str:
    iid = make_instance(custom_metadata=CUSTOM)
    for key, (text, meta) in DOCS.items():
        upload(server_http, iid, key, text, meta)
    # three identical texts that differ only in metadata: boosting alone decides their order
    for n, rating in enumerate((1, 3, 5)):
        meta: dict = {"rating": rating, "author": "dee"}
        if rating == 3:
            meta["featured"] = True
        upload(server_http, iid, f"cupping/session-{n}.md", CUPPING, meta)
    return iid


def keys(result: dict) -> list[str]:
    return [c["item"]["key"] for c in result["chunks"]]


def test_filter_excludes(server_http, corpus):
    everything = keys(search(server_http, corpus, "coffee beans", match_threshold=0))
    assert any(not k.startswith("beans/") for k in everything)
    only_beans = keys(
        search(server_http, corpus, "coffee beans", match_threshold=0, filters={"folder": "beans/"})
    )
    assert only_beans and all(k.startswith("beans/") for k in only_beans)


@pytest.mark.parametrize(
    ("filters", "allowed"),
    [
        (
            {"rating": {"$gte": 4}},
            {
                "brewing/espresso.md",
                "beans/ethiopia.md",
                "equipment/grinder.md",
                "cupping/session-2.md",
            },
        ),
        (
            {"author": {"$in": ["cy", "ben"]}},
            {"brewing/pour-over.md", "beans/brazil.md", "equipment/grinder.md"},
        ),
        ({"author": {"$ne": "dee"}, "rating": {"$lt": 3}}, {"beans/brazil.md"}),
        ({"folder": {"$gte": "beans/", "$lt": "beans0"}}, {"beans/ethiopia.md", "beans/brazil.md"}),
        ({"filename": "equipment/grinder.md"}, {"equipment/grinder.md"}),
        ({"author": {"$nin": ["ana", "ben", "dee"]}}, {"beans/brazil.md"}),
    ],
)
def test_filter_operators(server_http, corpus, filters, allowed):
    found = set(
        keys(
            search(
                server_http,
                corpus,
                "coffee",
                match_threshold=0,
                max_num_results=50,
                retrieval_type="vector",
                filters=filters,
            )
        )
    )
    assert found
    assert found <= allowed


def test_filter_on_timestamp_seconds_and_ms(server_http, corpus):
    recent = search(
        server_http,
        corpus,
        "coffee",
        match_threshold=0,
        filters={"timestamp": {"$gte": 1_600_000_000}},
    )
    assert recent["chunks"]
    future = search(
        server_http,
        corpus,
        "coffee",
        match_threshold=0,
        filters={"timestamp": {"$gte": 4_000_000_000_000}},
    )
    assert future["chunks"] == []


def test_max_num_results_caps(server_http, corpus):
    assert len(search(server_http, corpus, "coffee", match_threshold=0)["chunks"]) > 2
    assert (
        len(search(server_http, corpus, "coffee", match_threshold=0, max_num_results=2)["chunks"])
        == 2
    )


def test_match_threshold_drops_on_vector_score(server_http, corpus):
    loose = search(server_http, corpus, "coffee beans", match_threshold=0, retrieval_type="vector")[
        "chunks"
    ]
    scores = sorted(c["scoring_details"]["vector_score"] for c in loose)
    cut = scores[len(scores) // 2]
    strict = search(
        server_http, corpus, "coffee beans", match_threshold=cut, retrieval_type="vector"
    )["chunks"]
    assert 0 < len(strict) < len(loose)
    assert all(c["scoring_details"]["vector_score"] >= cut for c in strict)


def test_boost_reorders(server_http, corpus):
    def order(direction: str) -> list[str]:
        res = search(
            server_http,
            corpus,
            CUPPING,
            match_threshold=0,
            retrieval_type="vector",
            filters={"author": "dee"},
            boost_by=[{"field": "rating", "direction": direction}],
        )
        return keys(res)

    desc, asc = order("desc"), order("asc")
    assert desc == ["cupping/session-2.md", "cupping/session-1.md", "cupping/session-0.md"]
    assert asc == list(reversed(desc))
    exists = search(
        server_http,
        corpus,
        CUPPING,
        match_threshold=0,
        retrieval_type="vector",
        filters={"author": "dee"},
        boost_by=[{"field": "featured", "direction": "exists"}],
    )
    assert keys(exists)[0] == "cupping/session-1.md"
    assert exists["chunks"][0]["scoring_details"]["boost"] > 0


def test_boost_text_field_with_asc_is_rejected(server_http, corpus):
    r = server_http.post(
        f"/ai-search/instances/{corpus}/search",
        json={
            "query": "x",
            "ai_search_options": {
                "retrieval": {"boost_by": [{"field": "author", "direction": "asc"}]}
            },
        },
    )
    assert r.status_code == 400
    assert r.json()["errors"][0]["code"] == 7001
    assert "boost_by[0].direction" in r.json()["errors"][0]["message"]


def test_context_expansion_widens(server_http, make_instance):
    iid = make_instance(chunk_size=16, chunk_overlap=0)
    sentences = [
        "Alpha paragraph talks about roasting curves and first crack timing in detail today.",
        "Bravo paragraph explains the maillard reaction and caramelisation of sugars for flavour.",
        "Charlie paragraph covers cooling trays, degassing valves and resting roasted beans well.",
    ]
    item = upload(server_http, iid, "long.md", "\n\n".join(sentences))
    assert item["chunks_count"] >= 3
    plain = search(
        server_http, iid, "maillard caramelisation", match_threshold=0, max_num_results=1
    )
    wide = search(
        server_http,
        iid,
        "maillard caramelisation",
        match_threshold=0,
        max_num_results=1,
        context_expansion=1,
    )
    base_text = plain["chunks"][0]["text"]
    wide_text = wide["chunks"][0]["text"]
    assert "maillard" in base_text
    assert len(wide_text) > len(base_text)
    assert "Alpha" in wide_text or "Charlie" in wide_text
    assert "Alpha" not in base_text or "Charlie" not in base_text


def test_fusion_methods_differ(server_http, corpus):
    rrf = search(
        server_http,
        corpus,
        "coffee beans",
        match_threshold=0,
        retrieval_type="hybrid",
        fusion_method="rrf",
        keyword_match_mode="or",
    )["chunks"]
    mx = search(
        server_http,
        corpus,
        "coffee beans",
        match_threshold=0,
        retrieval_type="hybrid",
        fusion_method="max",
        keyword_match_mode="or",
    )["chunks"]
    assert {c["scoring_details"]["fusion_method"] for c in rrf} == {"rrf"}
    assert {c["scoring_details"]["fusion_method"] for c in mx} == {"max"}
    assert [c["score"] for c in rrf] != [c["score"] for c in mx]
    for c in mx:  # max fusion: the higher of the vector score and the normalised BM25 score
        assert c["score"] >= c["scoring_details"]["vector_score"] - 1e-6


def test_keyword_and_or_differ(server_http, corpus):
    conj = search(
        server_http,
        corpus,
        "espresso ethiopian",
        retrieval_type="keyword",
        keyword_match_mode="and",
    )
    disj = search(
        server_http, corpus, "espresso ethiopian", retrieval_type="keyword", keyword_match_mode="or"
    )
    assert conj["chunks"] == []
    assert set(keys(disj)) == {"brewing/espresso.md", "beans/ethiopia.md"}
    legacy_or = search(
        server_http,
        corpus,
        "espresso ethiopian",
        retrieval_type="keyword",
        keyword_match_mode="fuzzy_match",
    )
    assert set(keys(legacy_or)) == set(keys(disj))
    for c in disj["chunks"]:
        assert c["scoring_details"]["keyword_score"] > 0
        assert "vector_score" not in c["scoring_details"]


def test_vector_only_has_no_keyword_details(server_http, corpus):
    chunks = search(server_http, corpus, "coffee", retrieval_type="vector", match_threshold=0)[
        "chunks"
    ]
    assert chunks
    for c in chunks:
        assert "keyword_score" not in c["scoring_details"]
        assert "fusion_method" not in c["scoring_details"]
        assert c["score"] == pytest.approx(c["scoring_details"]["vector_score"], abs=1e-5)


def test_metadata_only(server_http, corpus):
    chunks = search(server_http, corpus, "espresso", metadata_only=True, match_threshold=0)[
        "chunks"
    ]
    assert chunks and all(c["text"] == "" for c in chunks)


def test_reranking(server_http, corpus):
    res = search(
        server_http,
        corpus,
        "burr grinder",
        match_threshold=0,
        reranking={"enabled": True, "match_threshold": 0},
    )
    scores = [c["scoring_details"]["reranking_score"] for c in res["chunks"]]
    assert scores == sorted(scores, reverse=True)
    assert res["chunks"][0]["item"]["key"] == "equipment/grinder.md"
    none = search(
        server_http,
        corpus,
        "burr grinder",
        match_threshold=0,
        reranking={"enabled": True, "match_threshold": 1.0},
    )
    assert len(none["chunks"]) < len(res["chunks"])


def test_query_rewrite_only_for_messages(server_http, corpus):
    messages = [
        {"role": "user", "content": "Tell me about espresso extraction"},
        {"role": "assistant", "content": "Espresso uses nine bars of pressure."},
        {"role": "user", "content": "How long does it take?"},
    ]
    plain = search(server_http, corpus, messages=messages, match_threshold=0)
    assert plain["search_query"] == "How long does it take?"
    rewritten = search(
        server_http, corpus, messages=messages, match_threshold=0, query_rewrite={"enabled": True}
    )
    assert rewritten["search_query"] != "How long does it take?"
    assert "espresso" in rewritten["search_query"].lower()
    query_form = search(
        server_http, corpus, "How long does it take?", query_rewrite={"enabled": True}
    )
    assert query_form["search_query"] == "How long does it take?"


def test_trigram_tokenizer_matches_substrings(server_http, make_instance):
    tri = make_instance(indexing_options={"keyword_tokenizer": "trigram"})
    porter = make_instance()
    for iid in (tri, porter):
        upload(server_http, iid, "code.md", "Call getUserProfile() to load the espresso settings.")
    assert keys(search(server_http, tri, "UserProf", retrieval_type="keyword")) == ["code.md"]
    assert search(server_http, porter, "UserProf", retrieval_type="keyword")["chunks"] == []


def test_instance_defaults_apply(server_http, make_instance):
    iid = make_instance(max_num_results=1, retrieval_options={"keyword_match_mode": "or"})
    upload(server_http, iid, "a.md", "espresso crema")
    upload(server_http, iid, "b.md", "pour over bloom")
    res = search(server_http, iid, "espresso bloom", retrieval_type="keyword")
    assert len(res["chunks"]) == 1  # instance max_num_results; "or" from the instance found both
    both = search(server_http, iid, "espresso bloom", retrieval_type="keyword", max_num_results=5)
    assert len(both["chunks"]) == 2


def test_index_method_vector_only_rejects_keyword(server_http, make_instance):
    iid = make_instance(index_method={"vector": True, "keyword": False})
    r = server_http.post(
        f"/ai-search/instances/{iid}/search",
        json={"query": "x", "ai_search_options": {"retrieval": {"retrieval_type": "keyword"}}},
    )
    assert r.status_code == 400
    assert "retrieval_type" in r.json()["errors"][0]["message"]
