"""custom_metadata on every LlamaIndex retriever (issue #14: search takes it, as chat does).

Real HTTP to aisearch_local on 127.0.0.1; an httpx event hook reads the bodies sent.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from aisearch import InvalidRequestError
from aisearch_local.testing import LocalServer
from llamaindex_aisearch import (
    AISearchConnection,
    AISearchMultiRetriever,
    AISearchRetriever,
    AISearchToolSpec,
)

QUERY = "espresso extraction time and grind size"
TAGS = {"team": "blue", "run": 7}


def _recording(
    local_server: LocalServer, bodies: list[dict[str, Any]], request: pytest.FixtureRequest
) -> AISearchConnection:
    def record(req: httpx.Request) -> None:
        if req.url.path.endswith("/search"):
            bodies.append(json.loads(req.content))

    http = httpx.Client(event_hooks={"request": [record]})
    request.addfinalizer(http.close)
    return AISearchConnection(
        account_id=local_server.account_id,
        api_token=local_server.token,
        base_url=local_server.base_url,
        max_retries=0,
        http_client=http,
    )


@pytest.mark.parametrize("kind", ["single", "namespace", "fan_out"])
def test_every_retriever_sends_custom_metadata(
    local_server: LocalServer, docs_instance: str, request: pytest.FixtureRequest, kind: str
) -> None:
    bodies: list[dict[str, Any]] = []
    conn = _recording(local_server, bodies, request)
    retriever: AISearchRetriever | AISearchMultiRetriever
    if kind == "single":
        retriever = AISearchRetriever(docs_instance, custom_metadata=TAGS, connection=conn)
    else:
        retriever = AISearchMultiRetriever(
            [docs_instance], mode=kind, custom_metadata=TAGS, connection=conn
        )
    assert retriever.custom_metadata == TAGS
    assert retriever.retrieve(QUERY)  # the server takes it
    assert bodies and all(b["ai_search_options"]["custom_metadata"] == TAGS for b in bodies)
    retriever.custom_metadata = {"team": "green"}  # assigned: sent next time
    bodies.clear()
    assert retriever.retrieve(QUERY)
    assert all(b["ai_search_options"]["custom_metadata"] == {"team": "green"} for b in bodies)
    with pytest.raises(InvalidRequestError, match=r"custom_metadata: key 'task' is reserved"):
        retriever.custom_metadata = {"task": "x"}
    assert retriever.custom_metadata == {"team": "green"}  # a refused value changes nothing


def test_the_tool_spec_search_sends_custom_metadata(
    local_server: LocalServer, docs_instance: str, request: pytest.FixtureRequest
) -> None:
    bodies: list[dict[str, Any]] = []
    conn = _recording(local_server, bodies, request)
    spec = AISearchToolSpec(docs_instance, custom_metadata=TAGS, connection=conn)
    assert spec.search(QUERY)
    assert bodies and bodies[-1]["ai_search_options"]["custom_metadata"] == TAGS
