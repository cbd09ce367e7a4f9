"""Option assignments take effect, wrong types name the field, errors hide the token."""

from __future__ import annotations

import json
import math
import pickle
import traceback
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.vector_stores.types import MetadataFilter, MetadataFilters

from aisearch import InvalidRequestError, RerankingOptions
from llamaindex_aisearch import (
    AISearchChatEngine,
    AISearchConnection,
    AISearchIndex,
    AISearchLLM,
    AISearchMultiRetriever,
    AISearchQueryEngine,
    AISearchRetriever,
    AISearchToolSpec,
)

from ..._support import ANY_VALUE, FRAGMENTS, SECRET

BASE_URL = "https://aisearch.test/client/v4"

SEARCH_RESULT = {
    "success": True,
    "errors": [],
    "messages": [],
    "result": {"search_query": "q", "chunks": []},
}
COMPLETION = {
    "id": "c",
    "object": "chat.completion",
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}],
    "chunks": [],
}


def _recording() -> tuple[list[dict[str, Any]], AISearchConnection]:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        if request.url.path.endswith("/search"):
            return httpx.Response(200, json=SEARCH_RESULT)
        return httpx.Response(200, json=COMPLETION)

    conn = AISearchConnection(
        account_id="acct",
        api_token=SECRET,
        base_url=BASE_URL,
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    return seen, conn


# ------------------------------------------------------------------ assignments

# option -> (value assigned, where it must appear in ai_search_options)
OPTIONS: dict[str, tuple[Any, tuple[str, ...], Any]] = {
    "similarity_top_k": (3, ("retrieval", "max_num_results"), 3),
    "retrieval_type": ("keyword", ("retrieval", "retrieval_type"), "keyword"),
    "match_threshold": (0.75, ("retrieval", "match_threshold"), 0.75),
    "filters": (
        MetadataFilters(filters=[MetadataFilter(key="folder", value="docs/")]),
        ("retrieval", "filters"),
        {"folder": {"$eq": "docs/"}},
    ),
    "context_expansion": (2, ("retrieval", "context_expansion"), 2),
    "fusion_method": ("max", ("retrieval", "fusion_method"), "max"),
    "keyword_match_mode": ("or", ("retrieval", "keyword_match_mode"), "or"),
    "boost_by": (
        [{"field": "timestamp", "direction": "desc"}],
        ("retrieval", "boost_by"),
        [{"field": "timestamp", "direction": "desc"}],
    ),
    "metadata_only": (True, ("retrieval", "metadata_only"), True),
    "return_on_failure": (False, ("retrieval", "return_on_failure"), False),
    "query_rewrite": (True, ("query_rewrite",), {"enabled": True}),
    "reranking": (
        RerankingOptions(enabled=True, match_threshold=0.3),
        ("reranking",),
        {"enabled": True, "match_threshold": 0.3},
    ),
    "cache": ({"enabled": False}, ("cache",), {"enabled": False}),
}
ENGINE_ONLY = {"custom_metadata": ({"team": "blue"}, ("custom_metadata",), {"team": "blue"})}


def _dig(body: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = body.get("ai_search_options", {})
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _retriever(kind: str, conn: AISearchConnection) -> Any:
    if kind == "single":
        return AISearchRetriever("docs", connection=conn)
    if kind == "namespace":
        return AISearchMultiRetriever(["docs", "blog"], connection=conn)
    return AISearchMultiRetriever(["docs", "blog"], mode="fan_out", connection=conn)


@pytest.mark.parametrize("kind", ["single", "namespace", "fan_out"])
@pytest.mark.parametrize("option", list(OPTIONS))
def test_retriever_option_assignment_is_sent(kind: str, option: str) -> None:
    seen, conn = _recording()
    retriever = _retriever(kind, conn)
    retriever.retrieve("q")
    assert _dig(seen[-1], OPTIONS[option][1]) is None  # not sent while unset
    value, path, sent = OPTIONS[option]
    setattr(retriever, option, value)
    assert getattr(retriever, option) is value
    retriever.retrieve("q")
    assert _dig(seen[-1], path) == sent
    for body in seen[2:]:  # fan-out: every instance's request carries it
        assert _dig(body, path) == sent
    setattr(retriever, option, None)  # unset: no longer sent
    retriever.retrieve("q")
    assert _dig(seen[-1], path) is None


@pytest.mark.parametrize("engine_cls", [AISearchQueryEngine, AISearchChatEngine])
@pytest.mark.parametrize("option", [*OPTIONS, *ENGINE_ONLY])
def test_engine_option_assignment_is_sent(engine_cls: type, option: str) -> None:
    seen, conn = _recording()
    engine = engine_cls("docs", connection=conn)
    value, path, sent = {**OPTIONS, **ENGINE_ONLY}[option]
    setattr(engine, option, value)
    if engine_cls is AISearchQueryEngine:
        engine.query("q")
    else:
        engine.chat("q")
    assert _dig(seen[-1], path) == sent


BAD_ASSIGNMENTS: list[tuple[str, Any, str]] = [
    ("similarity_top_k", 0, "similarity_top_k"),
    ("similarity_top_k", math.nan, "similarity_top_k"),
    ("similarity_top_k", "5", "similarity_top_k"),
    ("retrieval_type", "semantic", "retrieval_type"),
    ("match_threshold", 1.5, "match_threshold"),
    ("match_threshold", math.nan, "match_threshold"),
    ("match_threshold", math.inf, "match_threshold"),
    ("match_threshold", "high", "match_threshold"),
    ("context_expansion", 4, "context_expansion"),
    ("context_expansion", 1.5, "context_expansion"),
    ("fusion_method", "sum", "fusion_method"),
    ("keyword_match_mode", "maybe", "keyword_match_mode"),
    ("boost_by", [{"field": "x", "direction": "up"}], "boost_by"),
    ("metadata_only", "yes", "metadata_only"),
    ("reranking", "yes", "reranking"),
    ("reranking", {"enabled": True, "match_threshold": 2}, "reranking"),
    ("cache", 5, "cache"),
    ("query_rewrite", [True], "query_rewrite"),
    ("filters", 5, "filters"),
    ("filters", {"$bad": 1}, "filters"),
    ("extra_options", "x", "extra_options"),
    ("extra_options", ["x"], "extra_options"),
    ("namespace", 5, "namespace"),
    ("namespace", "", "namespace"),
]


@pytest.mark.parametrize("kind", ["single", "namespace"])
@pytest.mark.parametrize(("option", "value", "field"), BAD_ASSIGNMENTS)
def test_bad_assignment_raises_and_keeps_the_old_value(
    kind: str, option: str, value: Any, field: str
) -> None:
    seen, conn = _recording()
    retriever = _retriever(kind, conn)
    before = getattr(retriever, option)
    with pytest.raises(InvalidRequestError, match=field):
        setattr(retriever, option, value)
    assert getattr(retriever, option) == before
    retriever.retrieve("q")  # still works, with the old settings
    assert seen


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("merge", "sum"),
        ("merge", None),
        ("max_concurrency", 0),
        ("max_concurrency", True),
        ("max_concurrency", 2.0),
        ("on_instance_error", "explode"),
        ("on_instance_error", None),
    ],
)
def test_multi_retriever_settings_are_validated_on_assignment(attribute: str, value: Any) -> None:
    _, conn = _recording()
    retriever = AISearchMultiRetriever(["docs"], connection=conn)
    before = getattr(retriever, attribute)
    with pytest.raises(InvalidRequestError, match=attribute):
        setattr(retriever, attribute, value)
    assert getattr(retriever, attribute) == before
    with pytest.raises(InvalidRequestError, match=attribute):
        AISearchMultiRetriever(["docs"], connection=conn, **{attribute: value})


def test_multi_retriever_merge_and_concurrency_assignments_take_effect() -> None:
    _, conn = _recording()
    retriever = AISearchMultiRetriever(["docs"], mode="fan_out", connection=conn)
    retriever.merge = "rrf"
    retriever.max_concurrency = 1
    retriever.on_instance_error = "raise"
    assert (retriever.merge, retriever.max_concurrency, retriever.on_instance_error) == (
        "rrf",
        1,
        "raise",
    )


def test_extra_options_assignment_is_sent() -> None:
    seen, conn = _recording()
    retriever = AISearchRetriever("docs", connection=conn)
    retriever.extra_options = {"retrieval": {"future_knob": 1}}
    retriever.retrieve("q")
    assert seen[-1]["ai_search_options"]["retrieval"]["future_knob"] == 1


def test_llm_assignments_take_effect_or_raise() -> None:
    seen, conn = _recording()
    llm = AISearchLLM("docs", connection=conn)
    llm.search_options = {"retrieval": {"max_num_results": 3, "match_threshold": 0.5}}
    llm.model = "@cf/other"
    llm.complete("q")
    assert seen[-1]["ai_search_options"] == {
        "retrieval": {"max_num_results": 3, "match_threshold": 0.5}
    }
    assert seen[-1]["model"] == "@cf/other"
    assert llm.search_options == {"retrieval": {"max_num_results": 3, "match_threshold": 0.5}}
    with pytest.raises(InvalidRequestError, match="max_num_results"):
        llm.search_options = {"retrieval": {"max_num_results": 0}}
    assert llm.search_options == {"retrieval": {"max_num_results": 3, "match_threshold": 0.5}}
    for name, value in (("instance_id", "other"), ("instance_ids", ["a"])):
        with pytest.raises(InvalidRequestError, match=name):
            setattr(llm, name, value)
    for name, value in (("model", 5), ("namespace", ""), ("context_window", 0)):
        with pytest.raises(InvalidRequestError, match=name):
            setattr(llm, name, value)
    llm.search_options = None
    llm.complete("q")
    assert "ai_search_options" not in seen[-1]


def test_llm_generation_settings_are_sent_typed() -> None:
    seen, conn = _recording()
    llm = AISearchLLM("docs", connection=conn, temperature=0.2, max_tokens=64, stop=["\n\n"])
    llm.complete("q")
    assert (seen[-1]["temperature"], seen[-1]["max_tokens"], seen[-1]["stop"]) == (
        0.2,
        64,
        ["\n\n"],
    )
    assert llm.metadata.num_output == 64  # LlamaIndex reads the output budget here
    plain = AISearchLLM("docs", connection=conn)
    plain.chat([ChatMessage(role=MessageRole.USER, content="q")])
    assert not {"temperature", "max_tokens", "stop"} & set(seen[-1])
    assert plain.metadata.num_output == plain.num_output
    # extra_body still merges last, over the typed settings
    AISearchLLM("docs", connection=conn, temperature=0.2, extra_body={"temperature": 0.9}).complete(
        "q"
    )
    assert seen[-1]["temperature"] == 0.9


BAD_GENERATION: list[tuple[str, Any]] = [
    ("temperature", 5.5),
    ("temperature", -0.1),
    ("temperature", math.nan),
    ("temperature", math.inf),
    ("temperature", True),
    ("temperature", "0.5"),
    ("max_tokens", 0),
    ("max_tokens", 2**31),
    ("max_tokens", 1.5),
    ("max_tokens", True),
    ("stop", ["a", "b", "c", "d", "e"]),
    ("stop", 3),
    ("stop", ["a", 1]),
]


@pytest.mark.parametrize(("field", "value"), BAD_GENERATION)
def test_llm_bad_generation_setting_is_refused_naming_the_field(field: str, value: Any) -> None:
    seen, conn = _recording()
    with pytest.raises(InvalidRequestError, match=f"^{field}: ") as info:
        AISearchLLM("docs", connection=conn, **{field: value})
    _assert_clean(info.value)
    llm = AISearchLLM("docs", connection=conn, temperature=0.3, max_tokens=32, stop="END")
    with pytest.raises(InvalidRequestError, match=f"^{field}: "):
        setattr(llm, field, value)
    assert (llm.temperature, llm.max_tokens, llm.stop) == (0.3, 32, "END")  # unchanged
    llm.complete("q")
    assert (seen[-1]["temperature"], seen[-1]["max_tokens"], seen[-1]["stop"]) == (0.3, 32, "END")
    assert seen[-1]["max_tokens"] == llm.metadata.num_output


def test_llm_generation_assignments_take_effect() -> None:
    seen, conn = _recording()
    llm = AISearchLLM("docs", connection=conn, temperature=0.3)
    llm.temperature, llm.max_tokens, llm.stop = 1.5, 10, ["###"]
    llm.complete("q")
    assert (seen[-1]["temperature"], seen[-1]["max_tokens"], seen[-1]["stop"]) == (
        1.5,
        10,
        ["###"],
    )
    assert llm.metadata.num_output == 10
    llm.temperature = llm.max_tokens = llm.stop = None
    llm.complete("q")
    assert not {"temperature", "max_tokens", "stop"} & set(seen[-1])


# ------------------------------------------------------------------ wrong types

_conn_kwargs: dict[str, Any] = {"account_id": "acct", "api_token": SECRET}

CONSTRUCTIONS: dict[str, Callable[..., Any]] = {
    "retriever": lambda **kw: AISearchRetriever("docs", **_conn_kwargs, **kw),
    "multi": lambda **kw: AISearchMultiRetriever(["docs", "blog"], **_conn_kwargs, **kw),
    "query_engine": lambda **kw: AISearchQueryEngine("docs", **_conn_kwargs, **kw),
    "chat_engine": lambda **kw: AISearchChatEngine("docs", **_conn_kwargs, **kw),
    "llm": lambda **kw: AISearchLLM("docs", **_conn_kwargs, **kw),
    "tool_spec": lambda **kw: AISearchToolSpec("docs", **_conn_kwargs, **kw),
}
BAD_KWARGS: list[tuple[dict[str, Any], str]] = [
    ({"extra_options": "x"}, "extra_options"),
    ({"similarity_top_k": math.inf}, "similarity_top_k"),
    ({"similarity_top_k": 1e400}, "similarity_top_k"),
    ({"match_threshold": math.nan}, "match_threshold"),
    ({"match_threshold": "0.5"}, "match_threshold"),
    ({"context_expansion": True}, "context_expansion"),
    ({"filters": 3}, "filters"),
    ({"timeout": "soon"}, "timeout"),
    ({"timeout": math.nan}, "timeout"),
    ({"timeout": -1}, "timeout"),
    ({"timeout": True}, "timeout"),
    ({"max_retries": "2"}, "max_retries"),
    ({"max_retries": 2.0}, "max_retries"),
    ({"max_retries": 11}, "max_retries"),
    ({"base_url": 5}, "base_url"),
    ({"namespace": 5}, "namespace"),
]
ENGINE_BAD_KWARGS: list[tuple[dict[str, Any], str]] = [
    ({"extra_body": "x"}, "extra_body"),
    ({"model": 5}, "model"),
    ({"system_prompt": 5}, "system_prompt"),
]


def _cases() -> list[tuple[str, dict[str, Any], str]]:
    cases = [(name, kw, field) for name in CONSTRUCTIONS for kw, field in BAD_KWARGS]
    for name in ("query_engine", "chat_engine", "llm", "tool_spec"):
        cases += [(name, kw, field) for kw, field in ENGINE_BAD_KWARGS]
    return cases


@pytest.mark.parametrize(("name", "kwargs", "field"), _cases())
def test_wrong_types_raise_invalid_request_error_naming_the_field(
    name: str, kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidRequestError, match=field) as info:
        CONSTRUCTIONS[name](**kwargs)
    _assert_clean(info.value)


def test_engine_own_settings_are_checked() -> None:
    with pytest.raises(InvalidRequestError, match="streaming"):
        AISearchQueryEngine("docs", streaming="yes", **_conn_kwargs)
    with pytest.raises(InvalidRequestError, match="token_limit"):
        AISearchChatEngine("docs", token_limit="many", **_conn_kwargs)
    with pytest.raises(InvalidRequestError, match="wait_timeout"):
        AISearchIndex("docs", wait_timeout="soon", **_conn_kwargs)
    with pytest.raises(InvalidRequestError, match="wait_timeout"):
        AISearchIndex("docs", wait_timeout=math.nan, **_conn_kwargs)
    with pytest.raises(InvalidRequestError, match="context_window"):
        AISearchLLM("docs", context_window="big", **_conn_kwargs)


_FUZZ_NAMES = (
    "similarity_top_k",
    "match_threshold",
    "context_expansion",
    "retrieval_type",
    "fusion_method",
    "metadata_only",
    "reranking",
    "extra_options",
    "timeout",
    "max_retries",
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(name=st.sampled_from(_FUZZ_NAMES), value=ANY_VALUE)
def test_fuzz_retriever_arguments(name: str, value: Any) -> None:
    """Any value of a retriever argument is accepted or refused by name: never a raw error."""
    try:
        retriever = AISearchRetriever("docs", **_conn_kwargs, **{name: value})
    except InvalidRequestError as exc:
        assert name in str(exc)
        _assert_clean(exc)
        return
    if name in OPTIONS:  # an accepted option is also accepted on assignment, and vice versa
        setattr(retriever, name, value)


# ------------------------------------------------------------------ secrets matrix


def _views(exc: BaseException) -> list[str]:
    views = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    chained = exc.__cause__ or exc.__context__
    while chained is not None:
        views += [str(chained), repr(chained)]
        errors = getattr(chained, "errors", None)
        if callable(errors):
            views.append(repr(errors()))
        chained = chained.__cause__ or chained.__context__
    errors = getattr(exc, "errors", None)
    if callable(errors):
        views.append(repr(errors()))
    try:
        data = pickle.dumps(exc)
    except Exception:
        pass
    else:
        views += [repr(data), str(pickle.loads(data))]
    return views


def _assert_clean(exc: BaseException) -> None:
    for view in _views(exc):
        for fragment in FRAGMENTS:
            assert fragment not in view, f"{fragment!r} leaks in {view[:400]!r}"


SECRET_ERRORS: dict[str, tuple[dict[str, Any], str]] = {
    "invalid filter": ({"filters": {"$bad": 1}}, "filters"),
    "bad top_k": ({"similarity_top_k": 0}, "similarity_top_k"),
    "bad option type": ({"match_threshold": "high"}, "match_threshold"),
    "bad timeout": ({"timeout": "soon"}, "timeout"),
    "bad retries": ({"max_retries": SECRET}, "max_retries"),
    "token of a bad type": ({"api_token": [SECRET]}, "api_token"),
    "bad email beside a key": ({"api_email": 5, "api_key": SECRET}, "api_email"),
    "bad base_url": ({"base_url": [SECRET]}, "base_url"),
    "bad extra_options": ({"extra_options": "x"}, "extra_options"),
    "unknown argument": ({"api_tokn": SECRET}, "api_tokn"),
}
SECRET_BUILDERS: dict[str, Callable[..., Any]] = {
    "connection": lambda **kw: AISearchConnection(**kw),
    "connection.model_validate": lambda **kw: AISearchConnection.model_validate(kw),
    "retriever": lambda **kw: AISearchRetriever("docs", **kw),
    "multi": lambda **kw: AISearchMultiRetriever(["docs", "blog"], **kw),
    "query_engine": lambda **kw: AISearchQueryEngine("docs", **kw),
    "chat_engine": lambda **kw: AISearchChatEngine("docs", **kw),
    "llm": lambda **kw: AISearchLLM("docs", **kw),
    "tool_spec": lambda **kw: AISearchToolSpec("docs", **kw),
    "index": lambda **kw: AISearchIndex("docs", **kw),
}
SEARCH_ONLY = {"filters", "similarity_top_k", "match_threshold", "extra_options"}


def _secret_cases() -> list[tuple[str, str]]:
    cases = []
    for builder in SECRET_BUILDERS:
        for error, (bad, _) in SECRET_ERRORS.items():
            if builder.startswith(("connection", "index")) and set(bad) & SEARCH_ONLY:
                continue  # not arguments of these
            cases.append((builder, error))
    return cases


@pytest.mark.parametrize(("builder", "error"), _secret_cases())
def test_secrets_matrix(builder: str, error: str) -> None:
    bad, field = SECRET_ERRORS[error]
    kwargs = {"account_id": "acct", "api_token": SECRET, **bad}
    if "api_token" in bad:
        kwargs["api_token"] = bad["api_token"]
    with pytest.raises((InvalidRequestError, TypeError)) as info:
        SECRET_BUILDERS[builder](**kwargs)
    assert field in str(info.value)
    _assert_clean(info.value)
