"""Every option of API.md 4.1 is typed and bounded; bad inputs fail before any network call."""

from __future__ import annotations

import math

import httpx
import pytest

from aisearch import (
    BoostBy,
    CacheOptions,
    ChatMessage,
    InvalidRequestError,
    QueryRewriteOptions,
    RerankingOptions,
    RetrievalOptions,
    SearchOptions,
)
from tests.unit_tests.core.conftest import body_of
from tests.unit_tests.core.payloads import SEARCH_RESPONSE

R = "ai_search_options.retrieval"

BAD_OPTIONS = [
    # (options, expected message fragment)
    (
        {"retrieval": {"retrieval_type": "semantic"}},
        f"{R}.retrieval_type: must be one of 'vector', 'keyword' or 'hybrid' (got 'semantic')",
    ),
    (
        {"retrieval": {"match_threshold": -0.1}},
        f"{R}.match_threshold: must be a number between 0 and 1 (got -0.1)",
    ),
    (
        {"retrieval": {"match_threshold": 1.5}},
        f"{R}.match_threshold: must be a number between 0 and 1 (got 1.5)",
    ),
    (
        {"retrieval": {"match_threshold": math.nan}},
        f"{R}.match_threshold: must be a number between 0 and 1 (got nan)",
    ),
    (
        {"retrieval": {"match_threshold": "0.5"}},
        f"{R}.match_threshold: must be a number between 0 and 1 (got '0.5')",
    ),
    (
        {"retrieval": {"match_threshold": True}},
        f"{R}.match_threshold: must be a number between 0 and 1 (got True)",
    ),
    (
        {"retrieval": {"max_num_results": 0}},
        f"{R}.max_num_results: must be an integer between 1 and 50 (got 0)",
    ),
    (
        {"retrieval": {"max_num_results": 51}},
        f"{R}.max_num_results: must be an integer between 1 and 50 (got 51)",
    ),
    (
        {"retrieval": {"max_num_results": 5.0}},
        f"{R}.max_num_results: must be an integer between 1 and 50 (got 5.0)",
    ),
    (
        {"retrieval": {"max_num_results": True}},
        f"{R}.max_num_results: must be an integer between 1 and 50 (got True)",
    ),
    (
        {"retrieval": {"context_expansion": -1}},
        f"{R}.context_expansion: must be an integer between 0 and 3 (got -1)",
    ),
    (
        {"retrieval": {"context_expansion": 4}},
        f"{R}.context_expansion: must be an integer between 0 and 3 (got 4)",
    ),
    (
        {"retrieval": {"fusion_method": "sum"}},
        f"{R}.fusion_method: must be one of 'rrf' or 'max' (got 'sum')",
    ),
    (
        {"retrieval": {"keyword_match_mode": "fuzzy"}},
        f"{R}.keyword_match_mode: must be one of 'and' or 'or' (got 'fuzzy')",
    ),
    (
        {
            "retrieval": {
                "boost_by": [{"field": "a"}, {"field": "b"}, {"field": "c"}, {"field": "d"}]
            }
        },
        f"{R}.boost_by: must have at most 3 entries (got 4)",
    ),
    (
        {"retrieval": {"boost_by": [{"field": "ts"}, {"field": "TS"}]}},
        f"{R}.boost_by: fields must be distinct, ignoring case (got 'ts' and 'TS' in ['ts', 'TS'])",
    ),
    (
        {"retrieval": {"boost_by": [{"field": "rating"}, {"field": "ts"}, {"field": "rating"}]}},
        f"{R}.boost_by: fields must be distinct, ignoring case (got 'rating' and 'rating'",
    ),
    (
        {"retrieval": {"boost_by": [{"field": ""}]}},
        f"{R}.boost_by[0].field: string should have at least 1 character",
    ),
    (
        {"retrieval": {"boost_by": [{"field": "x" * 65}]}},
        f"{R}.boost_by[0].field: string should have at most 64 characters",
    ),
    (
        {"retrieval": {"boost_by": [{"field": "timestamp", "direction": "up"}]}},
        f"{R}.boost_by[0].direction: must be one of 'asc', 'desc', 'exists' or 'not_exists' "
        f"(got 'up')",
    ),
    (
        {"retrieval": {"boost_by": [{"field": 3}]}},
        f"{R}.boost_by[0].field: must be a string (got 3)",
    ),
    (
        {"retrieval": {"metadata_only": "yes"}},
        f"{R}.metadata_only: must be true or false (got 'yes')",
    ),
    (
        {"retrieval": {"return_on_failure": 1}},
        f"{R}.return_on_failure: must be true or false (got 1)",
    ),
    (
        {"retrieval": {"filters": {"folder": {"$regex": "x"}}}},
        f"{R}.filters.folder: unsupported operator '$regex' (allowed: $eq, $ne, $gt, $gte, $lt, "
        f"$lte, $in, $nin)",
    ),
    (
        {"retrieval": {"filters": {"$or": []}}},
        f"{R}.filters.$or: $or is not supported; several keys in one filter are ANDed",
    ),
    ({"retrieval": {"filters": "folder=docs"}}, f"{R}.filters: must be a mapping"),
    (
        {"retrieval": {"top_k": 3}},
        f"{R}.top_k: unknown field (pass options this client does not model yet through "
        f"extra_options= or extra_body=)",
    ),
    (
        {"retrieval": "vector"},
        f"{R}: input should be a valid dictionary or instance of RetrievalOptions",
    ),
    (
        {"query_rewrite": {"enabled": "true"}},
        "ai_search_options.query_rewrite.enabled: must be true or false (got 'true')",
    ),
    (
        {"query_rewrite": {"model": 7}},
        "ai_search_options.query_rewrite.model: must be a string (got 7)",
    ),
    (
        {"query_rewrite": {"rewrite_prompt": None, "temperature": 1}},
        "ai_search_options.query_rewrite.temperature: unknown field",
    ),
    (
        {"reranking": {"match_threshold": 2}},
        "ai_search_options.reranking.match_threshold: must be a number between 0 and 1 (got 2)",
    ),
    (
        {"reranking": {"enabled": None, "model": ["a"]}},
        "ai_search_options.reranking.model: must be a string (got ['a'])",
    ),
    (
        {"cache": {"cache_threshold": "exact"}},
        "ai_search_options.cache.cache_threshold: must be one of 'super_strict_match', "
        "'close_enough', 'flexible_friend' or 'anything_goes' (got 'exact')",
    ),
    ({"cache": {"enabled": 0}}, "ai_search_options.cache.enabled: must be true or false (got 0)"),
    (
        {"custom_metadata": {"a": 1, "b": 2, "c": 3}},
        "ai_search_options.custom_metadata: must have at most 2 entries (got 3)",
    ),
    (
        {"custom_metadata": {"task": "x"}},
        "ai_search_options.custom_metadata: key 'task' is reserved",
    ),
    (
        {"custom_metadata": {"cf.trace": "x"}},
        "ai_search_options.custom_metadata: key 'cf.trace' is reserved",
    ),
    (
        {"custom_metadata": {"a": [1]}},
        "ai_search_options.custom_metadata: a: must be a string, number or boolean",
    ),
    (
        {"custom_metadata": {"a": math.inf}},
        "ai_search_options.custom_metadata: a: must be a finite number",
    ),
    (
        {"custom_metadata": {"": 1}},
        "ai_search_options.custom_metadata: keys must be non-empty strings",
    ),
    (
        {"custom_metadata": ["a"]},
        "ai_search_options.custom_metadata: must be a mapping of at most 2 entries",
    ),
    ({"instance_ids": ["a"]}, "ai_search_options.instance_ids: unknown field"),
    ("hybrid", "ai_search_options: must be a SearchOptions or a mapping (got str)"),
]


@pytest.mark.parametrize(("options", "message"), BAD_OPTIONS)
def test_bad_option_is_rejected_before_the_network(harness, options, message):
    h = harness(lambda r: httpx.Response(200, json=SEARCH_RESPONSE))
    with pytest.raises(InvalidRequestError) as info:
        h.call("search", "docs", "q", options=options)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)
    assert h.requests == []
    with pytest.raises(InvalidRequestError):
        h.call("chat_completions", "docs", [{"role": "user", "content": "x"}], options=options)
    assert h.requests == []


def test_model_construction_also_validates():
    with pytest.raises(
        InvalidRequestError,
        match=r"^RetrievalOptions\.max_num_results: must be an integer between 1 and 50 \(got 0\)$",
    ):
        RetrievalOptions(max_num_results=0)
    opts = RetrievalOptions(match_threshold=0.5)
    with pytest.raises(
        InvalidRequestError,
        match=r"^RetrievalOptions\.match_threshold: must be a number between 0 and 1 \(got 3\)$",
    ):
        opts.match_threshold = 3  # validate_assignment
    assert opts.match_threshold == 0.5
    with pytest.raises(InvalidRequestError, match=r"BoostBy\.direction: must be one of"):
        BoostBy(field="timestamp", direction="up")
    with pytest.raises(InvalidRequestError, match=r"SearchOptions\.retrieval\.max_num_results"):
        SearchOptions(retrieval={"max_num_results": 51})
    with pytest.raises(InvalidRequestError, match=r"RetrievalOptions\.top_k: unknown field"):
        RetrievalOptions(top_k=3)


GOOD_OPTIONS = SearchOptions(
    retrieval=RetrievalOptions(
        retrieval_type="hybrid",
        match_threshold=0,
        max_num_results=50,
        filters={"folder": "docs/", "timestamp": {"$gte": 1735689600}},
        context_expansion=3,
        fusion_method="max",
        keyword_match_mode="exact_match",
        boost_by=[BoostBy(field="timestamp", direction="desc"), {"field": "priority"}],
        metadata_only=False,
        return_on_failure=True,
    ),
    query_rewrite=QueryRewriteOptions(enabled=True, model="", rewrite_prompt="Rewrite."),
    reranking=RerankingOptions(enabled=True, model="@cf/baai/bge-reranker-base", match_threshold=1),
    cache=CacheOptions(enabled=True, cache_threshold="anything_goes"),
    custom_metadata={"user": "u1", "n": 2},
)


def test_every_option_serialises_to_the_wire_names(harness):
    h = harness(lambda r: httpx.Response(200, json=SEARCH_RESPONSE))
    h.call("search", "docs", "q", options=GOOD_OPTIONS)
    assert body_of(h.last)["ai_search_options"] == {
        "retrieval": {
            "retrieval_type": "hybrid",
            "match_threshold": 0.0,
            "max_num_results": 50,
            "filters": {"folder": "docs/", "timestamp": {"$gte": 1735689600}},
            "context_expansion": 3,
            "fusion_method": "max",
            "keyword_match_mode": "and",
            "boost_by": [{"field": "timestamp", "direction": "desc"}, {"field": "priority"}],
            "metadata_only": False,
            "return_on_failure": True,
        },
        "query_rewrite": {"enabled": True, "model": "", "rewrite_prompt": "Rewrite."},
        "reranking": {
            "enabled": True,
            "model": "@cf/baai/bge-reranker-base",
            "match_threshold": 1.0,
        },
        "cache": {"enabled": True, "cache_threshold": "anything_goes"},
        "custom_metadata": {"user": "u1", "n": 2},
    }


def test_dict_options_equal_model_options(harness):
    h = harness(lambda r: httpx.Response(200, json=SEARCH_RESPONSE))
    h.call("search", "docs", "q", options=GOOD_OPTIONS.model_dump(exclude_unset=True))
    from_dict = body_of(h.last)
    h.call("search", "docs", "q", options=GOOD_OPTIONS)
    assert body_of(h.last) == from_dict


def test_unset_and_none_fields_are_not_sent(harness):
    h = harness(lambda r: httpx.Response(200, json=SEARCH_RESPONSE))
    h.call("search", "docs", "q", options={"retrieval": {"max_num_results": None}, "cache": {}})
    assert body_of(h.last)["ai_search_options"] == {"retrieval": {}, "cache": {}}
    h.call("search", "docs", "q", options=SearchOptions())
    assert "ai_search_options" not in body_of(h.last)
    h.call("search", "docs", "q", options={"retrieval": {"boost_by": []}})
    assert body_of(h.last)["ai_search_options"] == {"retrieval": {"boost_by": []}}


BAD_CALLS = [
    (
        ("search", "Docs", "q"),
        "instance_id: must be 1 to 64 characters of lowercase letters, digits and '_', with "
        "single '-' between them (got 'Docs')",
    ),
    (("search", "a" * 65, "q"), "instance_id: must be 1 to 64 characters"),
    (("search", "../x", "q"), "instance_id: must be 1 to 64 characters"),
    (("search", "", "q"), "instance_id"),
    (("search", "docs"), "query, messages: one of them is required"),
    (("search", "docs", ""), "query: must be a non-empty string (got '')"),
    (("search", "docs", "   "), "query: must be a non-empty string"),
    (("search", "docs", 42), "query: must be a non-empty string (got 42)"),
    (
        ("search", "docs", "q", {"messages": [{"role": "user", "content": "x"}]}),
        "pass either query or messages, not both",
    ),
    (("search", "docs", None, {"messages": []}), "messages: must contain at least one message"),
    (
        ("search", "docs", None, {"messages": "hello"}),
        "messages: must be a non-empty list of messages (got str)",
    ),
    (
        ("search", "docs", None, {"messages": [{"role": "robot", "content": "x"}]}),
        "messages[0].role: must be one of 'system', 'developer', 'user', 'assistant' or 'tool' "
        "(got 'robot')",
    ),
    (
        ("search", "docs", None, {"messages": [{"content": "x"}]}),
        "messages[0].role: field required",
    ),
    (
        ("search", "docs", None, {"messages": ["hi"]}),
        "messages[0]: must be a ChatMessage or a mapping (got str)",
    ),
    (
        ("search", "docs", None, {"messages": [{"role": "user", "content": 5}]}),
        "messages[0].content",
    ),
    (("search", "docs", "q", {"namespace": "Bad NS"}), "namespace: must be 1 to 64 characters"),
    (
        ("search", "docs", "q", {"extra_options": ["x"]}),
        "extra_options: must be a mapping (got list)",
    ),
    (("search", "docs", "q", {"extra_body": "x"}), "extra_body: must be a mapping (got str)"),
    (("chat_completions", "docs", []), "messages: must contain at least one message"),
    (
        ("chat_completions", "docs", [{"role": "user", "content": "x"}], {"model": 3}),
        "model: must be a string (got int)",
    ),
    (("namespace_search", [], "q"), "instance_ids: must contain between 1 and 10 ids (got 0)"),
    (
        ("namespace_search", [f"i{n}" for n in range(11)], "q"),
        "instance_ids: must contain between 1 and 10 ids (got 11)",
    ),
    (
        ("namespace_search", "docs", "q"),
        "instance_ids: must be a list of 1 to 10 instance ids (got str)",
    ),
    (("namespace_search", ["ok", "NOT OK"], "q"), "instance_ids[1]: must be 1 to 64 characters"),
    (
        (
            "namespace_chat_completions",
            [f"i{n}" for n in range(11)],
            [{"role": "user", "content": "x"}],
        ),
        "instance_ids: must contain between 1 and 10 ids (got 11)",
    ),
    (("legacy_search", "Bad", "q"), "rag_id: must be 1 to 64 characters"),
    (("legacy_search", "rag", ""), "query: must be a non-empty string"),
    (
        ("legacy_search", "rag", "q", {"max_num_results": 0}),
        "max_num_results: must be an integer between 1 and 50 (got 0)",
    ),
    (
        ("legacy_search", "rag", "q", {"max_num_results": 51}),
        "max_num_results: must be an integer between 1 and 50 (got 51)",
    ),
    (
        ("legacy_search", "rag", "q", {"score_threshold": 1.1}),
        "score_threshold: must be a number between 0 and 1 (got 1.1)",
    ),
    (
        ("legacy_search", "rag", "q", {"rewrite_query": "no"}),
        "rewrite_query: must be true or false (got 'no')",
    ),
    (
        ("legacy_search", "rag", "q", {"reranking": "on"}),
        "reranking: must be a bool or a mapping with 'enabled' and/or 'model'",
    ),
    (
        ("legacy_search", "rag", "q", {"reranking": {"enabled": True, "threshold": 1}}),
        "reranking: must be a bool or a mapping",
    ),
    (
        ("legacy_search", "rag", "q", {"filters": {"a": {"$in": ["x", "y"]}, "b": 1}}),
        "cannot be combined with other conditions",
    ),
    (
        (
            "legacy_search",
            "rag",
            "q",
            {"filters": {"type": "or", "filters": [{"type": "gt", "key": "a", "value": 1}]}},
        ),
        "filters: an 'or' filter only allows 'eq' comparisons",
    ),
    (("legacy_search", "rag", "q", {"extra_body": 1}), "extra_body: must be a mapping (got int)"),
    (("legacy_ai_search", "rag", "q", {"model": 1}), "model: must be a string (got int)"),
    (
        ("legacy_ai_search", "rag", "q", {"system_prompt": ["x"]}),
        "system_prompt: must be a string (got list)",
    ),
]


@pytest.mark.parametrize(("args", "message"), BAD_CALLS, ids=[m[:40] for _, m in BAD_CALLS])
def test_bad_arguments_are_rejected_before_the_network(harness, args, message):
    h = harness(lambda r: httpx.Response(200, json=SEARCH_RESPONSE))
    name, *positional = args
    kwargs = positional.pop() if positional and isinstance(positional[-1], dict) else {}
    if name == "search" and "messages" in kwargs and positional[-1:] == [None]:
        positional = positional[:-1]
    with pytest.raises(InvalidRequestError) as info:
        h.call(name, *positional, **kwargs)
    assert message in str(info.value)
    assert h.requests == []


def test_chat_message_extra_fields_pass_through(harness):
    h = harness(lambda r: httpx.Response(200, json=SEARCH_RESPONSE))
    h.call(
        "search",
        "docs",
        messages=[
            {"role": "tool", "content": "42", "tool_call_id": "t1"},
            ChatMessage(role="user", content=[{"type": "text", "text": "hi"}]),
        ],
    )
    assert body_of(h.last)["messages"] == [
        {"role": "tool", "content": "42", "tool_call_id": "t1"},
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retrieval": {"keyword_match_mode": 1}}, f"{R}.keyword_match_mode: must be one of"),
        ({"retrieval": {"boost_by": "timestamp"}}, f"{R}.boost_by: input should be a valid list"),
    ],
)
def test_non_string_and_non_list_values(options, message):
    with pytest.raises(InvalidRequestError, match=message.replace("[", r"\[")):
        from aisearch import coerce_options

        coerce_options(options)


def test_explicit_none_values_are_dropped(harness):
    h = harness(lambda r: httpx.Response(200, json=SEARCH_RESPONSE))
    h.call(
        "search",
        "docs",
        "q",
        options={"retrieval": {"filters": None, "boost_by": None}, "custom_metadata": None},
    )
    assert body_of(h.last)["ai_search_options"] == {"retrieval": {}}


@pytest.mark.parametrize(
    ("instance_id", "namespace", "message"),
    [
        (["docs"], None, "instance_id: must be 1 to 64 characters"),
        (None, None, "instance_id: must be 1 to 64 characters"),
        ("docs", 7, "namespace: must be 1 to 64 characters"),
    ],
)
def test_non_string_ids_are_rejected(harness, instance_id, namespace, message):
    h = harness(lambda r: httpx.Response(200, json=SEARCH_RESPONSE))
    with pytest.raises(InvalidRequestError, match=message):
        h.call("search", instance_id, "q", namespace=namespace)
    assert h.requests == []
