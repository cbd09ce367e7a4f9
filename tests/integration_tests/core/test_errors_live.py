"""Errors over real HTTP against aisearch_local: get-or-create, the 401/403 hint, a refused port."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from aisearch import (
    AISearchClient,
    APIConnectionError,
    AsyncAISearchClient,
    ConflictError,
    PermissionDeniedError,
)
from aisearch_local.testing import LocalServer

pytestmark = pytest.mark.integration


class Counted:
    """A sync client on the local server that records the requests it sends and its sleeps."""

    def __init__(self, server: LocalServer, **kwargs: Any) -> None:
        self.sent: list[tuple[str, str]] = []
        self.sleeps: list[float] = []
        hooks = {"request": [lambda r: self.sent.append((r.method, r.url.path))]}
        self.http = httpx.Client(event_hooks=hooks, timeout=60.0)
        self.client = AISearchClient(
            account_id=server.account_id,
            api_token=kwargs.pop("api_token", server.token),
            base_url=server.base_url,
            http_client=self.http,
            max_retries=3,
            **kwargs,
        )
        self.client._sleep = self.sleeps.append  # type: ignore[method-assign]

    def close(self) -> None:
        self.client.close()
        self.http.close()  # a given http_client is the caller's to close


@pytest.fixture
def counted(local_server: LocalServer) -> Iterator[Counted]:
    c = Counted(local_server)
    yield c
    c.close()


def test_create_instance_exist_ok_returns_the_existing_one_without_retrying(counted):
    iid = f"again-{uuid.uuid4().hex[:8]}"
    client = counted.client
    first = client.create_instance(iid, chunk_size=256)
    try:
        counted.sent.clear()
        again = client.create_instance(iid, exist_ok=True)
        assert (again.id, again.chunk_size) == (iid, first.chunk_size)
        assert [m for m, _ in counted.sent] == ["POST", "GET"]
        assert counted.sleeps == []
        counted.sent.clear()
        with pytest.raises(ConflictError) as info:
            client.create_instance(iid)
        assert (info.value.status_code, info.value.code) == (409, 7009)
        assert [m for m, _ in counted.sent] == ["POST"] and counted.sleeps == []
    finally:
        client.delete_instance(iid)


def test_create_namespace_exist_ok_returns_the_existing_one_without_retrying(counted):
    name = f"ns-{uuid.uuid4().hex[:8]}"
    client = counted.client
    client.create_namespace(name, description="first")
    try:
        counted.sent.clear()
        again = client.create_namespace(name, description="second", exist_ok=True)
        assert (again.name, again.description) == (name, "first")
        assert [m for m, _ in counted.sent] == ["POST", "GET"] and counted.sleeps == []
        counted.sent.clear()
        with pytest.raises(ConflictError):
            client.create_namespace(name)
        assert [m for m, _ in counted.sent] == ["POST"] and counted.sleeps == []
    finally:
        client.delete_namespace(name)


async def test_async_create_instance_exist_ok(local_server: LocalServer):
    iid = f"again-{uuid.uuid4().hex[:8]}"
    async with AsyncAISearchClient(
        account_id=local_server.account_id,
        api_token=local_server.token,
        base_url=local_server.base_url,
    ) as client:
        await client.create_instance(iid)
        try:
            assert (await client.create_instance(iid, exist_ok=True)).id == iid
        finally:
            await client.delete_instance(iid)


def test_wrong_token_names_the_credential_and_the_servers_token(local_server: LocalServer):
    c = Counted(local_server, api_token="not-the-token")
    try:
        with pytest.raises(PermissionDeniedError) as info:
            c.client.list_instances()
    finally:
        c.close()
    assert str(info.value) == (
        "HTTP 403 (code 10000): Authentication error; credential used: the API token from "
        f"api_token=; the server at {local_server.base_url} accepts the token it was started "
        "with (aisearch-local serve --token, --token-file or AISEARCH_LOCAL_TOKEN); check that "
        "they match"
    )
    assert "not-the-token" not in str(info.value)


def test_server_not_running_names_the_url(local_server: LocalServer):
    with socket.socket() as s:  # a port nobody listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}/client/v4"
    client = AISearchClient(account_id="acc", api_token="t", base_url=base, max_retries=0)
    with client, pytest.raises(APIConnectionError) as info:
        client.get_instance("docs")
    message = str(info.value)
    assert message.startswith("connection error: ConnectError: ")
    assert message.endswith(
        f"(while trying GET {base}/accounts/acc/ai-search/namespaces/default/instances/docs); "
        "is the local server running? start it with aisearch-local serve (its --port must "
        "match the port of base_url= or AISEARCH_BASE_URL)"
    )
