"""Errors inside an event stream: every form the decoder recognises, and what is not one.

A ``message`` event is an error when it says ``"success": false``, carries ``"error"``, or
carries ``"errors"`` without ``chunks`` or ``choices`` (a bare error envelope). Each raises the
status error of the stream's status (500 when the stream itself answered 2xx) with the
first error's code and message.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from httpx_sse import ServerSentEvent

from aisearch import (
    APIStatusError,
    InternalServerError,
    SourcesEvent,
    TextDeltaEvent,
)
from aisearch._sse import StreamDecoder


def feed(data: Any, *, status: int = 200, event: str = "message") -> list[Any]:
    raw = data if isinstance(data, str) else json.dumps(data)
    return StreamDecoder(status, "ray-e").feed(ServerSentEvent(event=event, data=raw))


def raised(data: Any, **kwargs: Any) -> APIStatusError:
    with pytest.raises(APIStatusError) as info:
        feed(data, **kwargs)
    return info.value


@pytest.mark.parametrize(
    ("data", "code", "message"),
    [
        # no "success": false -- a bare error envelope
        ({"errors": [{"code": 7017, "message": "backend down"}]}, 7017, "backend down"),
        ({"errors": [{"code": 7017, "message": "backend down"}], "messages": []}, 7017, None),
        ({"error": {"code": 7020, "message": "slow down"}}, 7020, "slow down"),
        ({"error": "model overloaded"}, None, "model overloaded"),
        # "success": false with each error form
        ({"success": False, "errors": [{"code": 7002, "message": "gone"}]}, 7002, "gone"),
        ({"success": False, "error": {"code": 9, "message": "nine"}}, 9, "nine"),
        ({"success": False, "message": "quota exceeded"}, None, "quota exceeded"),
        ({"success": False, "errors": ["plain"]}, None, "plain"),
        ({"success": False, "errors": [{"message": "no code"}]}, None, "no code"),
    ],
)
def test_in_stream_errors_raise_with_code_and_message(data, code, message):
    err = raised(data)
    assert type(err) is InternalServerError  # a 200 stream reports an in-stream error as 500
    assert err.status_code == 500
    assert err.code == code
    if message is not None:
        assert err.message == message
    assert err.request_id == "ray-e"


def test_in_stream_error_keeps_the_streams_error_status():
    err = raised({"errors": [{"code": 1, "message": "x"}]}, status=503)
    assert type(err) is InternalServerError and err.status_code == 503


@pytest.mark.parametrize(
    "data",
    [
        {"errors": []},
        {"success": False, "errors": []},
        {"success": False},
        {"error": None},
    ],
)
def test_error_without_details_still_raises_a_status_error(data):
    # never an IndexError / KeyError from an empty or missing error list
    err = raised(data)
    assert type(err) is InternalServerError and err.code is None
    assert isinstance(err.message, str) and err.message


def test_sources_with_per_instance_errors_are_not_an_error():
    # the older first-event form: a data message holding chunks and namespace errors
    (event,) = feed({"chunks": [], "errors": [{"instance_id": "blog", "message": "not found"}]})
    assert isinstance(event, SourcesEvent)
    assert [(e.instance_id, e.message) for e in event.errors] == [("blog", "not found")]


def test_a_delta_carrying_an_empty_errors_list_is_a_delta():
    events = feed({"choices": [{"index": 0, "delta": {"content": "hi"}}], "errors": []})
    assert [type(e) for e in events] == [TextDeltaEvent]
    assert events[0].text == "hi"


def test_success_true_is_not_an_error():
    events = feed({"success": True, "choices": [{"index": 0, "delta": {"content": "ok"}}]})
    assert [e.text for e in events] == ["ok"]
