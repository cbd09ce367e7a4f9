"""Per-instance errors of a namespace endpoint: a status or code in the entry fills the error.

The service sends ``{instance_id, message}`` only; then ``error`` stays ``None`` (and the
adapters' ``error_type`` / ``status_code`` with it). An entry that also carries a ``status``
(or ``status_code``) or a documented ``code`` gets the status error of it.
"""

from __future__ import annotations

import copy
import json

import httpx
import pytest

from aisearch import InternalServerError, NotFoundError, RateLimitError
from aisearch._models import InstanceError
from tests.unit_tests.core.payloads import NAMESPACE_SEARCH_RESPONSE


def _with_entry(entry: dict) -> dict:
    payload = copy.deepcopy(NAMESPACE_SEARCH_RESPONSE)
    payload["result"]["errors"] = [{"instance_id": "blog", "message": "boom", **entry}]
    return payload


@pytest.mark.parametrize(
    ("extra", "cls", "status", "code"),
    [
        ({"code": 7002}, NotFoundError, 404, 7002),
        ({"code": "7002"}, NotFoundError, 404, "7002"),
        ({"status": 503}, InternalServerError, 503, None),
        ({"status_code": 429, "code": 7069}, RateLimitError, 429, 7069),
        ({"status": 404, "code": 7049}, NotFoundError, 404, 7049),  # the status wins
    ],
)
def test_an_entry_with_a_status_or_code_gets_its_error(harness, extra, cls, status, code):
    h = harness(lambda r: httpx.Response(200, json=_with_entry(extra)))
    result = h.call("namespace_search", ["docs", "blog"], "q")
    (entry,) = result.errors
    assert type(entry.error) is cls
    assert entry.error.status_code == status
    assert entry.error.code == code
    assert entry.error.message == "boom"
    assert entry.model_dump() == {"instance_id": "blog", "message": "boom", **extra}


@pytest.mark.parametrize(
    "extra",
    [
        {},  # what the service sends
        {"code": 1234},  # a code with no documented status
        {"code": True},
        {"code": {"nested": 1}, "status": "503"},
        {"status": 200},  # not an error status
        {"status": 700},
    ],
)
def test_an_entry_without_a_usable_status_or_code_keeps_error_none(harness, extra):
    h = harness(lambda r: httpx.Response(200, json=_with_entry(extra)))
    result = h.call("namespace_search", ["docs", "blog"], "q")
    (entry,) = result.errors
    assert entry.error is None
    assert entry.message == "boom"


def test_a_streamed_errors_event_fills_the_error_too(harness):
    chunks = "event: chunks\ndata: []\n\n"
    errors = json.dumps([{"instance_id": "blog", "message": "gone", "code": 7002}])
    body = f"{chunks}event: errors\ndata: {errors}\n\ndata: [DONE]\n\n".encode()
    h = harness(
        lambda r: httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})
    )
    events = h.collect(
        "stream_namespace_chat_completions", ["docs", "blog"], [{"role": "user", "content": "q"}]
    )
    errors_seen = [e for ev in events for e in getattr(ev, "errors", [])]
    assert [(e.instance_id, type(e.error).__name__) for e in errors_seen] == [
        ("blog", "NotFoundError")
    ]


def test_a_fan_out_error_is_kept_as_given():
    err = InternalServerError("x", status_code=500)
    entry = InstanceError(instance_id="a", message="x", error=err, code=7002)
    assert entry.error is err
