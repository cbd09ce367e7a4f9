"""Fixtures shared by every integration test: a real aisearch_local server on 127.0.0.1.

* ``local_server``: a session-wide :class:`aisearch_local.testing.LocalServer` (token
  ``test-token``, hashing embedder, extractive generator).
* ``client`` / ``async_client``: core clients (``aisearch``) pointed at it; imported lazily so
  the server's own tests do not depend on the client package.
* ``docs_instance``: the id of an instance holding the bundled sample corpus, created and
  indexed once per session through the items API.
* ``make_instance``: a factory creating a fresh empty instance (returns its id).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from aisearch_local.testing import LocalServer

TEST_TOKEN = "test-token"
DOCS_INSTANCE = "coffee-docs"


@pytest.fixture(scope="session")
def local_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with LocalServer(
        data_dir=tmp_path_factory.mktemp("aisearch-local"), token=TEST_TOKEN
    ) as server:
        yield server


@pytest.fixture(scope="session")
def server_http(local_server: LocalServer) -> Iterator[httpx.Client]:
    """A raw httpx client on ``{base_url}/accounts/{account_id}`` with the auth header."""
    with httpx.Client(
        base_url=local_server.account_url, headers=local_server.headers, timeout=60.0
    ) as http:
        yield http


@pytest.fixture
def client(local_server: LocalServer) -> Iterator[Any]:
    from aisearch import AISearchClient

    with AISearchClient(
        account_id=local_server.account_id,
        api_token=local_server.token,
        base_url=local_server.base_url,
    ) as c:
        yield c


@pytest.fixture
async def async_client(local_server: LocalServer) -> AsyncIterator[Any]:
    from aisearch import AsyncAISearchClient

    async with AsyncAISearchClient(
        account_id=local_server.account_id,
        api_token=local_server.token,
        base_url=local_server.base_url,
    ) as c:
        yield c


def _check(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code < 300, f"{response.status_code}: {response.text}"
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="session")
def docs_instance(local_server: LocalServer, server_http: httpx.Client) -> str:
    from aisearch_local.sample_corpus import CUSTOM_METADATA, iter_sample_documents

    _check(
        server_http.post(
            "/ai-search/instances",
            json={"id": DOCS_INSTANCE, "custom_metadata": CUSTOM_METADATA},
        )
    )
    for doc in iter_sample_documents():
        body = _check(
            server_http.post(
                f"/ai-search/instances/{DOCS_INSTANCE}/items",
                files={"file": (doc.key, doc.data)},
                data={"metadata": json.dumps(doc.metadata), "wait_for_completion": "true"},
            )
        )
        status = body["result"]["status"]
        assert status == "completed", f"{doc.key}: {body['result']}"
    return DOCS_INSTANCE


@pytest.fixture(scope="session")
def make_instance(server_http: httpx.Client) -> Callable[..., str]:
    def factory(
        instance_id: str | None = None, *, namespace: str | None = None, **config: Any
    ) -> str:
        iid = instance_id or f"t-{uuid.uuid4().hex[:12]}"
        path = (
            "/ai-search/instances"
            if namespace in (None, "default")
            else f"/ai-search/namespaces/{namespace}/instances"
        )
        _check(server_http.post(path, json={"id": iid, **config}))
        return iid

    return factory
