"""Error events inside an SSE stream (issue #11, defect 11, the parsing part)."""

from __future__ import annotations

import pytest
from httpx_sse import ServerSentEvent

from aisearch import APIStatusError, InternalServerError, NotFoundError, RateLimitError
from aisearch._exceptions import error_from_body
from aisearch._sse import StreamDecoder


@pytest.mark.parametrize("event", ["error", "message"])
@pytest.mark.parametrize(
    "data",
    [
        '{"errors": []}',
        '{"success": false, "errors": []}',
        '{"errors": [], "messages": [], "result": null}',
        '{"error": []}',
        '{"error": {}}',
        '{"error": ""}',
        '{"errors": [null]}',
        '{"errors": [{}]}',
        '{"errors": [{"message": null, "code": null}]}',
    ],
)
@pytest.mark.parametrize("join_errors", [False, True])
def test_an_error_event_with_no_usable_entry_still_raises_a_status_error(event, data, join_errors):
    decoder = StreamDecoder(200, "ray-1", join_errors=join_errors)
    with pytest.raises(APIStatusError) as info:
        decoder.feed(ServerSentEvent(event=event, data=data))
    err = info.value
    assert isinstance(err, InternalServerError) and err.status_code == 500
    assert err.request_id == "ray-1"
    assert err.message in ("error event in the stream", "error in the stream", "None", "{}")


@pytest.mark.parametrize(
    ("data", "message", "code"),
    [
        ('{"errors": [{"code": 7000, "message": "boom"}]}', "boom", 7000),
        ('{"error": "plain"}', "plain", None),
        ('{"error": {"code": "E1", "message": "nested"}}', "nested", "E1"),
        ('{"errors": ["bare"]}', "bare", None),
    ],
)
def test_an_in_stream_error_object_without_success_false_raises(data, message, code):
    # no "success": false, no "event: error": the object itself says it is an error
    decoder = StreamDecoder(200)
    decoder.feed(ServerSentEvent(event="chunks", data="[]"))
    with pytest.raises(APIStatusError) as info:
        decoder.feed(ServerSentEvent(event="message", data=data))
    assert (info.value.status_code, info.value.message, info.value.code) == (500, message, code)


@pytest.mark.parametrize(
    ("status", "cls", "expected"),
    [
        (404, NotFoundError, 404),
        (429, RateLimitError, 429),
        (True, InternalServerError, 500),  # a bool is not a status
        (200, InternalServerError, 500),  # an error event is never a success
        (99, InternalServerError, 500),
        (10**6, InternalServerError, 500),
        ("404", InternalServerError, 500),
    ],
)
def test_the_status_an_error_event_carries_is_used_only_when_it_is_an_error_status(
    status, cls, expected
):
    data = f'{{"status": {status if not isinstance(status, str) else chr(34) + status + chr(34)}}}'
    data = data.replace("True", "true")
    with pytest.raises(APIStatusError) as info:
        StreamDecoder(200).feed(ServerSentEvent(event="error", data=data))
    assert type(info.value) is cls and info.value.status_code == expected


def test_a_success_false_body_keeps_its_http_status_unless_it_carries_an_error_status():
    assert error_from_body({"status": True, "errors": []}, 200, None, "d").status_code == 200
    assert error_from_body({"status": 503, "errors": []}, 200, None, "d").status_code == 503
    assert error_from_body({"status": 503}, 404, None, "d").status_code == 404
    err = error_from_body({"errors": [{"code": True, "message": "m"}]}, 400, None, "d")
    assert err.code == "True"  # a bool code is not a number
