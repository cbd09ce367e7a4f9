"""Secrets matrix: no view of a LangChain adapter error carries the API token.

pydantic quotes each error's input (`input_value={'api_token': 'tok-SECRET...'}`) and
keeps it whole in `errors()`, `json()` and a pickled error. Every public class x every
kind of construction (and assignment, and per-call) error x every view of the error is
checked for the token, its first and its last characters; each error must still name
the field.
"""

from __future__ import annotations

import math
import pickle
import traceback
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from aisearch import InvalidRequestError
from langchain_aisearch import (
    AISearchAnswerTool,
    AISearchMultiRetriever,
    AISearchRetriever,
    AISearchSearchTool,
    ChatAISearch,
)

from ..._support import FRAGMENTS, SECRET
from .conftest import Recorder, make_clients

CLASSES: dict[str, tuple[type, dict[str, Any]]] = {
    "retriever": (AISearchRetriever, {"instance_id": "docs"}),
    "multi": (AISearchMultiRetriever, {"instance_ids": ["docs", "blog"]}),
    "chat": (ChatAISearch, {"instance_id": "docs"}),
}

ERRORS: dict[str, tuple[dict[str, Any], str]] = {
    # name: (bad keyword arguments, what the message must name)
    "invalid filter": ({"filters": {"$bad": 1}}, "filters"),
    "filter value": ({"filters": {"folder": {"$eq": [1, 2]}}}, "filters"),
    "both ids": ({"instance_id": "docs", "instance_ids": ["docs", "blog"]}, "instance_id"),
    "bad k": ({"k": 0}, "k"),
    "k as text": ({"k": "5"}, "k"),
    "bad option type": ({"match_threshold": "high"}, "match_threshold"),
    "nan threshold": ({"match_threshold": math.nan}, "match_threshold"),
    "inf threshold": ({"match_threshold": math.inf}, "match_threshold"),
    "bad literal": ({"retrieval_type": "semantic"}, "retrieval_type"),
    "bad timeout": ({"timeout": "soon"}, "timeout"),
    "negative timeout": ({"timeout": -1.0}, "timeout"),
    "bad retries": ({"max_retries": 99}, "max_retries"),
    "bad namespace": ({"namespace": "Bad/NS"}, "namespace"),
    "bad instance id": ({"instance_id": "../x"}, "instance_id"),
    "bad extra_options": ({"extra_options": "x"}, "extra_options"),
    "bad reranking": ({"reranking": {"enabled": "maybe"}}, "reranking"),
    "reserved metadata": ({"custom_metadata": {"task": "x"}}, "custom_metadata"),
    "unknown argument": ({"bogus": 1}, "bogus"),
    "token under a misspelt name": ({"api_tokn": SECRET}, "api_tokn"),
    "token in an unknown argument": ({"password": SECRET}, "password"),
    "token of a bad type": ({"api_token": [SECRET]}, "api_token"),
    "token in a mapping": ({"api_token": {"value": SECRET}}, "api_token"),
    "key beside a bad email": ({"api_key": SECRET, "api_email": 5}, "api_email"),
}


def _views(exc: BaseException) -> list[str]:
    """Every way an error is commonly shown, logged or shipped."""
    views = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    chained = exc.__cause__ or exc.__context__
    while chained is not None:
        views += [str(chained), repr(chained)]
        chained = chained.__cause__ or chained.__context__
    if isinstance(exc, ValidationError):
        views += [repr(exc.errors()), exc.json(), repr(exc.errors(include_context=True))]
    try:
        data = pickle.dumps(exc)
    except Exception:
        pass
    else:
        views.append(repr(data))
        views += [str(pickle.loads(data)), repr(pickle.loads(data))]
    return views


def _assert_clean(exc: BaseException) -> None:
    for view in _views(exc):
        for fragment in FRAGMENTS:
            assert fragment not in view, f"{fragment!r} leaks in {view[:400]!r}"


def _catch(build: Callable[[], Any]) -> BaseException:
    with pytest.raises(Exception) as info:
        build()
    return info.value


def _kwargs(base: dict[str, Any], bad: dict[str, Any]) -> dict[str, Any]:
    kwargs = {"account_id": "acc", "api_token": SECRET, **base, **bad}
    if "api_token" in bad and bad["api_token"] is not SECRET:
        kwargs["api_token"] = bad["api_token"]
    return kwargs


MATRIX = [(c, e) for c in CLASSES for e in ERRORS]


@pytest.mark.parametrize(("cls_name", "error"), MATRIX)
def test_construction_errors_hide_the_token(cls_name, error):
    cls, base = CLASSES[cls_name]
    bad, field = ERRORS[error]
    exc = _catch(lambda: cls(**_kwargs(base, bad)))
    assert isinstance(exc, ValidationError)  # what LangChain users catch
    assert isinstance(exc, InvalidRequestError)  # one type for bad values at every layer
    assert field in str(exc)  # still names the field
    _assert_clean(exc)


@pytest.mark.parametrize(("cls_name", "error"), MATRIX)
def test_model_validate_errors_hide_the_token(cls_name, error):
    cls, base = CLASSES[cls_name]
    bad, field = ERRORS[error]
    exc = _catch(lambda: cls.model_validate(_kwargs(base, bad)))
    assert isinstance(exc, ValidationError)
    assert isinstance(exc, InvalidRequestError)
    assert field in str(exc)
    _assert_clean(exc)


@pytest.mark.parametrize("tool_name", ["search", "answer"])
@pytest.mark.parametrize("error", list(ERRORS))
def test_tool_construction_errors_hide_the_token(tool_name, error):
    """A tool built from a dict of its retriever's (or chat model's) settings."""
    bad, field = ERRORS[error]
    if tool_name == "search":
        exc = _catch(lambda: AISearchSearchTool(retriever=_kwargs(CLASSES["retriever"][1], bad)))
    else:
        exc = _catch(lambda: AISearchAnswerTool(chat=_kwargs(CLASSES["chat"][1], bad)))
    assert isinstance(exc, ValidationError)
    if error != "both ids":  # the tool's union names its own field for that one
        assert field in str(exc) or tool_name in str(exc)
    _assert_clean(exc)


@pytest.mark.parametrize(
    "extra",
    [{"bogus": SECRET}, {"description": 5}, {"name": [SECRET]}, {"token": SECRET}],
    ids=["secret-extra", "bad-description", "secret-name", "token-extra"],
)
def test_tool_errors_with_a_built_retriever_hide_the_token(extra):
    retriever = AISearchRetriever(instance_id="docs", account_id="acc", api_token=SECRET)
    chat = ChatAISearch(instance_id="docs", account_id="acc", api_token=SECRET)
    for build in (
        lambda: AISearchSearchTool(retriever=retriever, **extra),
        lambda: AISearchAnswerTool(chat=chat, **extra),
        lambda: AISearchAnswerTool(chat=retriever),  # wrong kind of object
    ):
        _assert_clean(_catch(build))


ASSIGNMENTS: list[tuple[str, Any]] = [
    ("filters", {"$bad": 1}),
    ("k", 0),
    ("match_threshold", math.nan),
    ("timeout", "soon"),
    ("api_token", 5),
    ("api_token", [SECRET]),
    ("namespace", "Bad/NS"),
    ("extra_options", "x"),
]


@pytest.mark.parametrize("cls_name", list(CLASSES))
@pytest.mark.parametrize(("field", "value"), ASSIGNMENTS)
def test_assignment_errors_hide_the_token(cls_name, field, value):
    cls, base = CLASSES[cls_name]
    if cls is ChatAISearch and field == "k":
        value = 99
    obj = cls(**_kwargs(base, {}))
    exc = _catch(lambda: setattr(obj, field, value))
    assert isinstance(exc, ValidationError)
    assert field in str(exc)
    _assert_clean(exc)
    assert obj.api_token.get_secret_value() == SECRET  # a rejected assignment changes nothing


CALLS: dict[str, dict[str, Any]] = {
    "k": {"k": 0},
    "k type": {"k": "3"},
    "filters type": {"filters": "folder=docs"},
    "filter operator": {"filters": {"$bad": 1}},
    "unknown": {"top_k": 3},
    "secret as unknown": {"api_token": SECRET},
}
CHAT_CALLS: dict[str, dict[str, Any]] = {
    **CALLS,
    "max_tokens": {"max_tokens": 0},
    "temperature": {"temperature": 9},
    "stop": {"stop": ["a"] * 5},
    "stop type": {"stop": 5},
    "extra_body": {"extra_body": "x"},
}


def _failing_clients():
    def respond(request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        raise AssertionError("nothing may be sent")

    return make_clients(Recorder(respond))


PER_CALL = [(c, call) for c in CLASSES for call in (CHAT_CALLS if c == "chat" else CALLS)]


@pytest.mark.parametrize(("cls_name", "call"), PER_CALL)
def test_per_call_errors_hide_the_token(cls_name, call):
    cls, base = CLASSES[cls_name]
    calls = CHAT_CALLS if cls is ChatAISearch else CALLS
    sync, _ = _failing_clients()
    obj = cls(**base, api_token=SECRET, account_id="acc", client=sync)
    exc = _catch(lambda: obj.invoke("espresso", **calls[call]))
    _assert_clean(exc)
    sync.close()


def test_custom_error_types_keep_their_message_without_the_secret():
    """An error pydantic cannot rebuild by type name falls back to its message, masked."""
    from pydantic import BaseModel, field_validator
    from pydantic_core import PydanticCustomError

    from langchain_aisearch._common import hide_secrets

    class Model(BaseModel):
        a: int
        b: int

        @field_validator("a", "b", mode="before")
        @classmethod
        def _check(cls, value: Any) -> Any:
            if value == 0:
                raise PydanticCustomError("zero", "must not be {what}", {"what": "zero"})
            raise PydanticCustomError("bad", "bad value {v}", {"v": value})

    with pytest.raises(ValidationError) as info:
        Model(a=0, b=SECRET)
    hidden = hide_secrets(info.value, {"api_token": SECRET})
    assert [e["type"] for e in hidden.errors()] == ["zero", "bad"]
    assert "must not be zero" in str(hidden)
    assert [e["loc"] for e in hidden.errors()] == [("a",), ("b",)]
    _assert_clean(hidden)
