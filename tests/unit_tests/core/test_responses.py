"""Every response example of API.md parsed by both clients, and the requests they send."""

from __future__ import annotations

import httpx
import pytest

from aisearch import (
    APIResponseValidationError,
    ChatCompletion,
    ChatMessage,
    SearchOptions,
    SearchResult,
)
from tests.unit_tests.core.conftest import body_of
from tests.unit_tests.core.payloads import (
    ACCOUNT,
    BASE,
    CHAT_RESPONSE,
    LEGACY_AI_SEARCH_RESPONSE,
    LEGACY_SEARCH_RESPONSE,
    NAMESPACE_CHAT_RESPONSE,
    NAMESPACE_SEARCH_RESPONSE,
    SEARCH_RESPONSE,
    TOKEN,
)

NS = f"{BASE}/accounts/{ACCOUNT}/ai-search/namespaces"


def fixed(payload, status=200, headers=None):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=payload, headers=headers)

    return handler


def test_search_parses_the_documented_response(harness):
    h = harness(fixed(SEARCH_RESPONSE))
    result = h.call("search", "docs", "How do I get started?")
    assert isinstance(result, SearchResult)
    assert result.search_query == "How do I get started?"
    assert result.query_kind == "text"
    assert result.errors == []
    (chunk,) = result.chunks
    assert (chunk.id, chunk.type, chunk.score, chunk.text) == (
        "chunk001",
        "text",
        0.85,
        "Welcome to AI Search…",
    )
    assert chunk.item.key == "getting-started.md"
    assert chunk.item.timestamp == 1735689600
    assert chunk.item.metadata == {"title": "…"}
    sd = chunk.scoring_details
    assert sd is not None
    assert (sd.vector_score, sd.keyword_score, sd.vector_rank, sd.keyword_rank) == (
        0.85,
        3.2,
        1,
        2,
    )
    assert (sd.fusion_method, sd.reranking_score) == ("rrf", 0.91)
    assert chunk.instance_id is None
    req = h.last
    assert req.method == "POST"
    assert str(req.url) == f"{NS}/default/instances/docs/search"
    assert req.headers["authorization"] == f"Bearer {TOKEN}"
    assert req.headers["content-type"] == "application/json"
    assert body_of(req) == {"query": "How do I get started?"}


def test_search_with_messages_and_options_sends_only_set_fields(harness):
    h = harness(fixed(SEARCH_RESPONSE))
    h.call(
        "search",
        "docs",
        messages=[ChatMessage(role="user", content="hi"), {"role": "assistant", "content": None}],
        options=SearchOptions.model_validate(
            {"retrieval": {"max_num_results": 5, "keyword_match_mode": "fuzzy_match"}}
        ),
        namespace="team-a",
    )
    assert str(h.last.url) == f"{NS}/team-a/instances/docs/search"
    assert body_of(h.last) == {
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": None}],
        "ai_search_options": {"retrieval": {"max_num_results": 5, "keyword_match_mode": "or"}},
    }


def test_extra_options_deep_merge_and_extra_body_win_last(harness):
    h = harness(fixed(SEARCH_RESPONSE))
    h.call(
        "search",
        "docs",
        "q",
        options={"retrieval": {"max_num_results": 5, "filters": {"folder": "a/"}}},
        extra_options={"retrieval": {"new_knob": True, "max_num_results": 7}, "future": {"x": 1}},
        extra_body={"ai_search_options": {"cache": {"enabled": False}}, "top_level": 1},
    )
    assert body_of(h.last) == {
        "query": "q",
        "ai_search_options": {
            "retrieval": {"max_num_results": 7, "filters": {"folder": "a/"}, "new_knob": True},
            "future": {"x": 1},
            "cache": {"enabled": False},
        },
        "top_level": 1,
    }


def test_namespace_search_keeps_instance_ids_and_errors(harness):
    h = harness(fixed(NAMESPACE_SEARCH_RESPONSE))
    result = h.call("namespace_search", ["docs", "support", "blog"], "pricing", namespace="shop")
    assert [c.instance_id for c in result.chunks] == ["docs", "support"]
    assert result.chunks[1].item.metadata == {}
    assert [(e.instance_id, e.message) for e in result.errors] == [("blog", "instance not found")]
    assert str(h.last.url) == f"{NS}/shop/search"
    assert body_of(h.last) == {
        "query": "pricing",
        "ai_search_options": {"instance_ids": ["docs", "support", "blog"]},
    }


def test_chat_completion_is_not_enveloped(harness):
    h = harness(fixed(CHAT_RESPONSE))
    completion = h.call(
        "chat_completions",
        "docs",
        [{"role": "user", "content": "How do I get started?"}],
        model="@cf/meta/llama-3.3-70b-instruct-fp8-fast",
        options={"retrieval": {"max_num_results": 3}},
    )
    assert isinstance(completion, ChatCompletion)
    assert completion.id == "chatcmpl-abc123"
    assert completion.object == "chat.completion"
    assert completion.created == 1771886959
    assert completion.content == "To get started…"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.role == "assistant"
    assert completion.usage is not None and completion.usage.total_tokens == 6644
    assert completion.chunks[0].scoring_details.vector_score == 0.85
    assert str(h.last.url) == f"{NS}/default/instances/docs/chat/completions"
    assert body_of(h.last) == {
        "messages": [{"role": "user", "content": "How do I get started?"}],
        "model": "@cf/meta/llama-3.3-70b-instruct-fp8-fast",
        "ai_search_options": {"retrieval": {"max_num_results": 3}},
    }


def test_chat_completion_wrapped_in_an_envelope_is_tolerated(harness):
    h = harness(fixed({"success": True, "result": CHAT_RESPONSE}))
    assert h.call("chat_completions", "docs", [{"role": "user", "content": "x"}]).content == (
        "To get started…"
    )


def test_chat_content_helper_handles_parts_and_empty(harness):
    payload = {
        "choices": [
            {
                "message": {
                    "role": "assistant",
                    "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                }
            }
        ],
        "chunks": [],
    }
    h = harness(fixed(payload))
    assert h.call("chat_completions", "docs", [{"role": "user", "content": "x"}]).content == "ab"
    h = harness(fixed({"choices": [], "chunks": []}))
    assert h.call("chat_completions", "docs", [{"role": "user", "content": "x"}]).content == ""
    h = harness(fixed({"choices": [{"message": {"role": "assistant", "content": None}}]}))
    assert h.call("chat_completions", "docs", [{"role": "user", "content": "x"}]).content == ""


def test_namespace_chat_keeps_errors(harness):
    h = harness(fixed(NAMESPACE_CHAT_RESPONSE))
    completion = h.call(
        "namespace_chat_completions", ["docs", "blog"], [{"role": "user", "content": "q"}]
    )
    assert completion.chunks[0].instance_id == "docs"
    assert [(e.instance_id, e.message) for e in completion.errors] == [("blog", "timeout")]
    assert str(h.last.url) == f"{NS}/default/chat/completions"
    assert body_of(h.last)["ai_search_options"] == {"instance_ids": ["docs", "blog"]}


def test_legacy_ai_search_is_normalised_and_keeps_raw_fields(harness):
    h = harness(fixed(LEGACY_AI_SEARCH_RESPONSE))
    result = h.call(
        "legacy_ai_search",
        "my-rag",
        "How do I train a llama to deliver coffee?",
        model="@cf/meta/llama-3.3-70b-instruct-fp8-fast",
        system_prompt="Be brief.",
        filters={"folder": "llama/"},
        max_num_results=5,
        score_threshold=0.3,
        rewrite_query=False,
        reranking=True,
    )
    assert result.response == "To train a llama…"
    assert result.search_query == "How do I train a llama to deliver coffee?"
    (chunk,) = result.chunks
    assert chunk.id == "llama001"
    assert chunk.score == 0.45
    assert chunk.text == "Llamas can carry 3 drinks max."
    assert chunk.item.key == "llama/logistics/llama-logistics.md"
    assert chunk.item.metadata == {"modified_date": 1735689600000, "folder": "llama/logistics/"}
    assert chunk.item.timestamp == 1735689600000
    assert chunk.filename == "llama/logistics/llama-logistics.md"
    assert chunk.attributes["folder"] == "llama/logistics/"
    assert result.object == "vector_store.search_results.page"
    assert result.has_more is False
    assert str(h.last.url) == f"{BASE}/accounts/{ACCOUNT}/autorag/rags/my-rag/ai-search"
    assert body_of(h.last) == {
        "query": "How do I train a llama to deliver coffee?",
        "filters": {"type": "eq", "key": "folder", "value": "llama/"},
        "max_num_results": 5,
        "ranking_options": {"score_threshold": 0.3},
        "rewrite_query": False,
        "reranking": {"enabled": True},
        "model": "@cf/meta/llama-3.3-70b-instruct-fp8-fast",
        "system_prompt": "Be brief.",
    }


def test_legacy_search_accepts_legacy_filters_as_is(harness):
    h = harness(fixed(LEGACY_SEARCH_RESPONSE))
    legacy = {
        "type": "and",
        "filters": [
            {"type": "gt", "key": "folder", "value": "customer-a//"},
            {"type": "lte", "key": "folder", "value": "customer-a/z"},
        ],
    }
    result = h.call(
        "legacy_search",
        "my-rag",
        "q",
        filters=legacy,
        reranking={"enabled": True, "model": "@cf/baai/bge-reranker-base"},
        extra_body={"custom": 1},
    )
    assert result.response is None
    assert result.chunks[0].filename == "llama/logistics/llama-logistics.md"
    assert str(h.last.url).endswith("/autorag/rags/my-rag/search")
    body = body_of(h.last)
    assert body["filters"] == legacy
    assert body["reranking"] == {"enabled": True, "model": "@cf/baai/bge-reranker-base"}
    assert body["custom"] == 1


def test_legacy_search_empty_filter_is_not_sent(harness):
    h = harness(fixed(LEGACY_SEARCH_RESPONSE))
    h.call("legacy_search", "my-rag", "q", filters={})
    assert "filters" not in body_of(h.last)


def test_legacy_chunk_without_file_id_and_with_many_parts(harness):
    payload = {
        "success": True,
        "result": {
            "data": [
                {
                    "filename": "a.md",
                    "score": 0.5,
                    "attributes": None,
                    "content": [{"id": "p1", "text": "one"}, {"id": "p2", "text": "two"}],
                }
            ]
        },
    }
    h = harness(fixed(payload))
    (chunk,) = h.call("legacy_search", "my-rag", "q").chunks
    assert (chunk.id, chunk.text, chunk.item.metadata, chunk.item.timestamp) == (
        "p1",
        "one\ntwo",
        {},
        None,
    )


@pytest.mark.parametrize(
    "payload",
    [
        {"success": True, "result": None},
        {"success": True, "result": {"data": [{"filename": "a.md"}]}},
        {"success": True, "result": ["not", "an", "object"]},
    ],
)
def test_legacy_body_that_does_not_fit_raises(harness, payload):
    h = harness(fixed(payload))
    with pytest.raises(APIResponseValidationError):
        h.call("legacy_search", "my-rag", "q")


def test_null_metadata_is_tolerated_everywhere(harness):
    chat = {
        **CHAT_RESPONSE,
        "chunks": [{**CHAT_RESPONSE["chunks"][0], "item": {"key": "k", "metadata": None}}],
    }
    h = harness(fixed(chat))
    assert (
        h.call("chat_completions", "docs", [{"role": "user", "content": "x"}])
        .chunks[0]
        .item.metadata
        == {}
    )


def test_nulls_that_mean_absent_take_the_defaults(harness):
    chunk = {**SEARCH_RESPONSE["result"]["chunks"][0], "text": None, "type": None}
    no_item = {"id": "c2", "score": 0.5, "item": None}
    no_key = {"id": "c3", "score": 0.4, "item": {"key": None, "metadata": None}}
    body = {
        "success": True,
        "errors": None,
        "messages": None,
        "result": {"search_query": "q", "chunks": [chunk, no_item, no_key]},
    }
    result = harness(fixed(body)).call("search", "docs", "q")
    assert [c.id for c in result.chunks] == [chunk["id"], "c2", "c3"]
    assert result.chunks[0].text == "" and result.chunks[0].type == "text"
    assert result.chunks[1].item.key == "" and result.chunks[1].item.metadata == {}
    assert result.chunks[2].item.key == ""
    empty = harness(fixed({"success": True, "result": {"search_query": "q", "chunks": None}}))
    assert empty.call("search", "docs", "q").chunks == []
    chat = {**CHAT_RESPONSE, "chunks": None, "errors": None}
    msgs = [{"role": "user", "content": "x"}]
    assert harness(fixed(chat)).call("chat_completions", "docs", msgs).chunks == []


def test_null_elsewhere_still_fails_with_the_original_error(harness):
    bad = {"success": True, "result": {"chunks": [{"id": "x", "score": None}]}}
    h = harness(fixed(bad))
    with pytest.raises(APIResponseValidationError, match="score"):
        h.call("search", "docs", "q")


def test_scoring_ranks_are_numbers_and_ints_stay_ints(harness):
    # The official SDK types vector_rank / keyword_rank as numbers: a fractional rank parses.
    chunk = {**SEARCH_RESPONSE["result"]["chunks"][0]}
    chunk["scoring_details"] = {"vector_rank": 1.5, "keyword_rank": 2}
    payload = {**SEARCH_RESPONSE, "result": {**SEARCH_RESPONSE["result"], "chunks": [chunk]}}
    result = harness(fixed(payload)).call("search", "docs", "q")
    sd = result.chunks[0].scoring_details
    assert sd is not None
    assert sd.vector_rank == 1.5
    assert sd.keyword_rank == 2
    assert type(sd.keyword_rank) is int
