"""Per-call arguments are checked like the constructor's fields, before the network."""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from aisearch import InvalidRequestError
from langchain_aisearch import (
    AISearchAnswerTool,
    AISearchMultiRetriever,
    AISearchRetriever,
    AISearchSearchTool,
    ChatAISearch,
)

from ..._support import ANY_VALUE
from .conftest import Recorder, chunk, completion, make_clients, search_envelope


def _server():
    def respond(request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        if request.url.path.endswith("/search"):
            return httpx.Response(200, json=search_envelope([chunk(1), chunk(2)]))
        return httpx.Response(200, json=completion())

    recorder = Recorder(respond)
    sync, asyncc = make_clients(recorder)
    return recorder, sync, asyncc


BAD_CHAT_CALLS: list[tuple[dict[str, Any], str]] = [
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_tokens": -5}, "max_tokens"),
    ({"max_tokens": True}, "max_tokens"),
    ({"max_tokens": 2.5}, "max_tokens"),
    ({"max_tokens": math.inf}, "max_tokens"),
    ({"max_tokens": "100"}, "max_tokens"),
    ({"temperature": 9}, "temperature"),
    ({"temperature": -0.1}, "temperature"),
    ({"temperature": math.nan}, "temperature"),
    ({"temperature": math.inf}, "temperature"),
    ({"temperature": float("1e400")}, "temperature"),
    ({"temperature": True}, "temperature"),
    ({"temperature": "hot"}, "temperature"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"stop": 5}, "stop"),
    ({"stop": "END"}, "stop"),
    ({"stop": [1]}, "stop"),
    ({"model": 5}, "model"),
    ({"extra_body": "x"}, "extra_body"),
    ({"extra_body": ["x"]}, "extra_body"),
    ({"filters": "folder=docs"}, "filters"),
    ({"filters": {"$bad": 1}}, "filters"),
    ({"k": 0}, "k"),
    ({"k": 51}, "k"),
    ({"k": True}, "k"),
    ({"k": math.nan}, "k"),
    ({"stream": "yes"}, "stream"),
]


@pytest.mark.parametrize(("kwargs", "field"), BAD_CHAT_CALLS)
def test_chat_call_arguments_checked_before_the_network(kwargs, field):
    recorder, sync, _ = _server()
    chat = ChatAISearch(instance_id="docs", client=sync)
    with pytest.raises(InvalidRequestError, match=field):
        chat.invoke("grind?", **kwargs)
    with pytest.raises(InvalidRequestError, match=field):
        list(chat.stream("grind?", **kwargs))
    assert recorder.requests == []


@pytest.mark.parametrize(("kwargs", "field"), BAD_CHAT_CALLS)
async def test_chat_call_arguments_checked_before_the_network_async(kwargs, field):
    recorder, _, asyncc = _server()
    chat = ChatAISearch(instance_id="docs", async_client=asyncc)
    with pytest.raises(InvalidRequestError, match=field):
        await chat.ainvoke("grind?", **kwargs)
    assert recorder.requests == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_tokens", 0), ("temperature", 9), ("stop", ["a"] * 5), ("temperature", math.nan)],
)
def test_constructor_and_call_share_the_rule(field, value):
    """What the constructor rejects, a call rejects too (and the reverse)."""
    with pytest.raises(ValidationError, match=field):
        ChatAISearch(instance_id="docs", **{field: value})
    _, sync, _ = _server()
    with pytest.raises(InvalidRequestError, match=field):
        ChatAISearch(instance_id="docs", client=sync).invoke("q", **{field: value})


def test_valid_call_arguments_are_sent():
    recorder, sync, _ = _server()
    chat = ChatAISearch(instance_id="docs", client=sync)
    chat.invoke(
        "grind?",
        max_tokens=1,
        temperature=5,
        stop=["a", "b", "c", "d"],
        model="@cf/x",
        extra_body={"seed": 1},
        k=50,
        filters={"folder": "guides/"},
    )
    (body,) = recorder.bodies
    assert (body["max_tokens"], body["temperature"], body["stop"]) == (1, 5, ["a", "b", "c", "d"])
    assert (body["model"], body["seed"]) == ("@cf/x", 1)
    assert body["ai_search_options"]["retrieval"]["max_num_results"] == 50
    assert body["ai_search_options"]["retrieval"]["filters"] == {"folder": "guides/"}


def test_constructor_stop_limit_and_strict_flags():
    with pytest.raises(ValidationError, match="stop"):
        ChatAISearch(instance_id="docs", stop=["a"] * 5)
    assert ChatAISearch(instance_id="docs", stop=["a"] * 4).stop == ["a"] * 4
    with pytest.raises(ValidationError, match="streaming"):
        ChatAISearch(instance_id="docs", streaming="yes")
    with pytest.raises(ValidationError, match="max_retries"):
        ChatAISearch(instance_id="docs", max_retries="2")
    with pytest.raises(ValidationError, match="force_fan_out"):
        AISearchMultiRetriever(instance_ids=["a"], force_fan_out="no")


@pytest.mark.parametrize("cls", [AISearchRetriever, AISearchMultiRetriever])
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"k": 0}, "k"),
        ({"k": "3"}, "k"),
        ({"k": math.inf}, "k"),
        ({"filters": "x"}, "filters"),
        ({"filters": ["folder"]}, "filters"),
        ({"filters": {"$bad": 1}}, "filters"),
        ({"filters": {"n": {"$gt": math.nan}}}, "filters"),
    ],
)
def test_retriever_call_arguments_checked_before_the_network(cls, kwargs, field):
    recorder, sync, _ = _server()
    ids = {"instance_id": "docs"} if cls is AISearchRetriever else {"instance_ids": ["a", "b"]}
    retriever = cls(**ids, client=sync)
    with pytest.raises(InvalidRequestError, match=field):
        retriever.invoke("q", **kwargs)
    if cls is AISearchMultiRetriever:
        with pytest.raises(InvalidRequestError, match=field):
            retriever.search_with_errors("q", **kwargs)
    assert recorder.requests == []


# ------------------------------------------------------------------ fuzz

_CHAT_KWARGS = st.fixed_dictionaries(
    {},
    optional={
        name: ANY_VALUE
        for name in ("max_tokens", "temperature", "stop", "model", "extra_body", "k", "filters")
    },
)


def _unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate cannot be sent
        return False
    return True


def _allowed(kwargs: dict[str, Any]) -> bool:
    """The rules, written independently of the code under test."""

    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    checks = {
        "max_tokens": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
        "temperature": lambda v: number(v) and math.isfinite(v) and 0 <= v <= 5,
        "stop": lambda v: (
            isinstance(v, list) and len(v) <= 4 and all(isinstance(s, str) for s in v)
        ),
        "model": lambda v: isinstance(v, str),
        "extra_body": lambda v: isinstance(v, dict),
        "k": lambda v: isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 50,
        # Vectorize-style equality filters: the strategy's dicts map text keys to ints, valid
        # when every key is a non-empty, valid-Unicode metadata name (no $ operators)
        "filters": lambda v: (
            isinstance(v, dict)
            and all(isinstance(key, str) and key and not key.startswith("$") for key in v)
            and all(_unicode(key) for key in v)
        ),
    }
    return all(v is None or checks[name](v) for name, v in kwargs.items())


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(kwargs=_CHAT_KWARGS)
def test_fuzz_chat_call_arguments(kwargs):
    """Any per-call value is sent as given, or refused before the network by name."""
    recorder, sync, _ = _server()
    chat = ChatAISearch(instance_id="docs", client=sync)
    stop = kwargs.pop("stop", None)
    if _allowed({**kwargs, "stop": stop}):
        chat.invoke("q", stop=stop, **kwargs)
        (body,) = recorder.bodies
        for name in ("max_tokens", "temperature"):
            if kwargs.get(name) is not None:
                assert body[name] == kwargs[name]
        if stop:
            assert body["stop"] == stop
    else:
        with pytest.raises(InvalidRequestError) as info:
            chat.invoke("q", stop=stop, **kwargs)
        bad = [
            n for n, v in {**kwargs, "stop": stop}.items() if v is not None and not _allowed({n: v})
        ]
        assert any(n in str(info.value) for n in bad), (bad, str(info.value))
        assert recorder.requests == []
    sync.close()


# One exception type for bad values at every layer: `except InvalidRequestError` catches a
# bad per-call value, a bad constructor argument and a bad assignment, of every class.
def _objects(sync: Any) -> dict[str, Any]:
    retriever = AISearchRetriever(instance_id="docs", client=sync)
    chat = ChatAISearch(instance_id="docs", client=sync)
    return {
        "retriever": retriever,
        "multi": AISearchMultiRetriever(instance_ids=["a", "b"], client=sync),
        "chat": chat,
        "search tool": AISearchSearchTool(retriever=retriever),
        "answer tool": AISearchAnswerTool(chat=chat),
    }


BAD_CONSTRUCTIONS: dict[str, Any] = {
    "retriever k": lambda: AISearchRetriever(instance_id="docs", k=100),
    "retriever id": lambda: AISearchRetriever(instance_id="Bad Id!"),
    "retriever filter": lambda: AISearchRetriever(instance_id="docs", filters={"$or": []}),
    "retriever misspelt": lambda: AISearchRetriever(instance_id="docs", top_k=3),
    "multi k": lambda: AISearchMultiRetriever(instance_ids=["a"], k=100),
    "multi empty": lambda: AISearchMultiRetriever(instance_ids=[]),
    "chat temperature": lambda: ChatAISearch(instance_id="docs", temperature=9),
    "chat both ids": lambda: ChatAISearch(instance_id="a", instance_ids=["b"]),
    "search tool retriever": lambda: AISearchSearchTool(retriever=5),
    "search tool name": lambda: AISearchSearchTool(
        retriever=AISearchRetriever(instance_id="docs"), name=5
    ),
    "answer tool chat": lambda: AISearchAnswerTool(chat={"instance_id": "docs", "k": 100}),
    "validate": lambda: AISearchRetriever.model_validate({"instance_id": "docs", "k": 100}),
}


@pytest.mark.parametrize("name", list(BAD_CONSTRUCTIONS))
def test_one_exception_type_for_bad_constructor_values(name):
    with pytest.raises(InvalidRequestError) as info:
        BAD_CONSTRUCTIONS[name]()
    assert isinstance(info.value, ValidationError)  # pydantic's behaviour is kept


@pytest.mark.parametrize(
    ("name", "field", "value"),
    [
        ("retriever", "k", 100),
        ("multi", "k", 100),
        ("chat", "temperature", 9),
        ("search tool", "retriever", 5),
        ("answer tool", "chat", 5),
    ],
)
def test_one_exception_type_for_bad_assignments(name, field, value):
    _, sync, _ = _server()
    obj = _objects(sync)[name]
    old = getattr(obj, field)
    with pytest.raises(InvalidRequestError, match=field) as info:
        setattr(obj, field, value)
    assert isinstance(info.value, ValidationError)
    assert getattr(obj, field) is old


@pytest.mark.parametrize("name", ["retriever", "multi", "chat"])
async def test_one_exception_type_for_a_bad_per_call_k(name):
    recorder, sync, asyncc = _server()
    obj = _objects(sync)[name]
    obj.async_client = asyncc
    with pytest.raises(InvalidRequestError, match=r"k: must be an integer between 1 and 50"):
        obj.invoke("q", k=100)
    with pytest.raises(InvalidRequestError, match=r"k: must be an integer between 1 and 50"):
        await obj.ainvoke("q", k=100)
    assert recorder.requests == []
