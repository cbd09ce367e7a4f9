"""Every message the client builds from a caller's keys and values prints (encodes as UTF-8).

A lone surrogate in a key (``{"\\ud800": 1}``) went into a field path as it was, e.g.
``ai_search_options.custom_metadata.\\ud800: ...``, and printing that message raised
``UnicodeEncodeError``. The messages show such characters escaped instead.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aisearch import AISearchClient, AISearchError, InvalidRequestError
from tests._support import json_like, surrogate_text
from tests.unit_tests.core.payloads import ACCOUNT, SEARCH_RESPONSE, TOKEN, envelope, item

# any code point, lone surrogates often (st.characters() draws none)
keys = surrogate_text()
values = json_like(keys)


def _ok(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith("/search"):
        return httpx.Response(200, json=SEARCH_RESPONSE)
    return httpx.Response(200, json=envelope(item("i")))


def _call(where: str, key: str, value: Any) -> None:
    client = AISearchClient(
        account_id=ACCOUNT,
        api_token=TOKEN,
        http_client=httpx.Client(transport=httpx.MockTransport(_ok)),
    )
    with client:
        if where == "custom_metadata":
            client.search("docs", "q", options={"custom_metadata": {key: value}})
        elif where == "filters":
            client.search("docs", "q", options={"retrieval": {"filters": {key: value}}})
        elif where == "options":
            client.search("docs", "q", options={"retrieval": {key: value}})
        elif where == "extra_options":
            client.search("docs", "q", extra_options={key: value})
        elif where == "legacy_filters":
            client.legacy_search("docs", "q", filters={key: value})
        elif where == "extra_body":
            client.search("docs", "q", extra_body={key: value})
        elif where == "metadata":
            client.upload_item("docs", "a.md", b"x", metadata={key: value})
        else:
            client.search("docs", "q", **{key: value})


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    where=st.sampled_from(
        [
            "custom_metadata",
            "filters",
            "options",
            "extra_options",
            "legacy_filters",
            "extra_body",
            "metadata",
            "keyword",
        ]
    ),
    key=keys,
    value=values,
)
def test_every_message_built_from_a_key_or_value_encodes(where: str, key: str, value: Any) -> None:
    try:
        _call(where, key, value)
    except (AISearchError, TypeError) as exc:
        str(exc).encode("utf-8")  # never UnicodeEncodeError
        repr(exc).encode("utf-8")


def test_a_lone_surrogate_key_is_shown_escaped() -> None:
    with pytest.raises(InvalidRequestError) as info:
        _call("custom_metadata", "\ud800", 1)
    message = str(info.value)
    message.encode("utf-8")
    assert "\\ud800" in message, message
