"""Construction: keyword-only, environment fallbacks, defaults, lifecycle, repr."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from aisearch import (
    DEFAULT_BASE_URL,
    DEFAULT_TIMEOUT,
    AISearchClient,
    AISearchError,
    AsyncAISearchClient,
    InvalidRequestError,
)
from aisearch._requests import _parsed_url
from tests.unit_tests.core.payloads import GLOBAL_KEY, SEARCH_RESPONSE, TOKEN

CLIENTS = [AISearchClient, AsyncAISearchClient]


@pytest.fixture(params=CLIENTS, ids=["sync", "async"])
def cls(request):
    return request.param


def make(cls, **kwargs):
    client = cls(**kwargs)
    return client


def close(client):
    if isinstance(client, AsyncAISearchClient):
        asyncio.run(client.aclose())
    else:
        client.close()


def test_constructor_is_keyword_only(cls):
    with pytest.raises(TypeError):
        cls("acc", TOKEN)


def test_defaults(cls):
    client = make(cls, account_id="acc", api_token=TOKEN)
    assert client.account_id == "acc"
    assert client.base_url == DEFAULT_BASE_URL == "https://api.cloudflare.com/client/v4"
    assert client.namespace == "default"
    assert client.timeout == DEFAULT_TIMEOUT == httpx.Timeout(30.0, connect=5.0)
    assert client.max_retries == 2
    assert client._client.timeout == DEFAULT_TIMEOUT
    close(client)


@pytest.mark.parametrize(
    ("env", "account", "auth"),
    [
        (
            {"CLOUDFLARE_ACCOUNT_ID": "a1", "CLOUDFLARE_API_TOKEN": "t1"},
            "a1",
            {"Authorization": "Bearer t1"},
        ),
        (
            {"CF_ACCOUNT_ID": "a2", "CF_AI_SEARCH_API_TOKEN": "t2"},
            "a2",
            {"Authorization": "Bearer t2"},
        ),
        ({"CF_ACCOUNT_ID": "a3", "CF_API_TOKEN": "t3"}, "a3", {"Authorization": "Bearer t3"}),
        (
            {
                "CLOUDFLARE_ACCOUNT_ID": "a4",
                "CF_ACCOUNT_ID": "ignored",
                "CLOUDFLARE_API_TOKEN": "t4",
                "CF_API_TOKEN": "ignored",
            },
            "a4",
            {"Authorization": "Bearer t4"},
        ),
        (
            {"CLOUDFLARE_ACCOUNT_ID": "a5", "CF_AI_SEARCH_API_TOKEN": "t5", "CF_API_TOKEN": "t6"},
            "a5",
            {"Authorization": "Bearer t5"},
        ),
        (
            {
                "CLOUDFLARE_ACCOUNT_ID": "a6",
                "CLOUDFLARE_EMAIL": "me@x.io",
                "CLOUDFLARE_API_KEY": "k6",
            },
            "a6",
            {"X-Auth-Email": "me@x.io", "X-Auth-Key": "k6"},
        ),
        (
            {
                "CLOUDFLARE_ACCOUNT_ID": "a7",
                "CLOUDFLARE_API_TOKEN": "t7",
                "CLOUDFLARE_EMAIL": "me@x.io",
                "CLOUDFLARE_API_KEY": "k7",
            },
            "a7",
            {"Authorization": "Bearer t7"},
        ),
    ],
)
def test_environment_fallbacks(cls, monkeypatch, env, account, auth):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    client = make(cls)
    assert client.account_id == account
    assert client._config.auth_headers() == auth
    close(client)


def test_arguments_win_over_environment(cls, monkeypatch):
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", "env-acc")
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "env-token")
    monkeypatch.setenv("AISEARCH_BASE_URL", "http://127.0.0.1:9/client/v4/")
    client = make(cls, account_id="arg-acc", api_email="a@b.c", api_key=GLOBAL_KEY)
    assert client.account_id == "arg-acc"
    assert client._config.auth_headers() == {"X-Auth-Email": "a@b.c", "X-Auth-Key": GLOBAL_KEY}
    assert client.base_url == "http://127.0.0.1:9/client/v4"
    close(client)
    client = make(
        cls, account_id="arg-acc", api_token="arg-token", base_url="http://localhost:1/v4"
    )
    assert client._config.auth_headers() == {"Authorization": "Bearer arg-token"}
    assert client.base_url == "http://localhost:1/v4"
    close(client)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"api_token": TOKEN},
            "account_id: missing; pass account_id=... or set CLOUDFLARE_ACCOUNT_ID or "
            "CF_ACCOUNT_ID",
        ),
        (
            {"account_id": "acc"},
            "api_token: missing; pass api_token=... (or api_email=... and api_key=...) or set "
            "CLOUDFLARE_API_TOKEN, CF_AI_SEARCH_API_TOKEN, CF_API_TOKEN",
        ),
        ({"account_id": "acc", "api_email": "a@b.c"}, "api_email and api_key: both are needed"),
        ({"account_id": "acc", "api_key": GLOBAL_KEY}, "api_email and api_key: both are needed"),
    ],
)
def test_missing_configuration_names_argument_and_env(cls, kwargs, message):
    with pytest.raises(AISearchError) as info:
        cls(**kwargs)
    assert message in str(info.value)
    assert GLOBAL_KEY not in str(info.value) and TOKEN not in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"account_id": "acc/../x"}, "account_id: must be 1 to 64 letters, digits"),
        ({"namespace": "Team A"}, "namespace: must be 1 to 64 characters"),
        ({"base_url": "ftp://x"}, "base_url: must start with http:// or https://"),
        ({"timeout": 0}, "timeout: must be a positive number of seconds (got 0)"),
        ({"timeout": -1.0}, "timeout: must be a positive number"),
        ({"timeout": "10"}, "timeout: must be a positive number"),
        ({"max_retries": -1}, "max_retries: must be an integer between 0 and 10 (got -1)"),
        ({"max_retries": 11}, "max_retries: must be an integer between 0 and 10 (got 11)"),
        ({"max_retries": 1.5}, "max_retries: must be an integer between 0 and 10"),
        ({"http_client": object()}, "http_client: must be an httpx."),
    ],
)
def test_bad_configuration(cls, kwargs, message):
    args = {"account_id": "acc", "api_token": TOKEN, **kwargs}
    with pytest.raises(InvalidRequestError) as info:
        cls(**args)
    assert message in str(info.value)


def test_float_timeout_and_timeout_object(cls):
    client = make(cls, account_id="acc", api_token=TOKEN, timeout=12)
    assert client.timeout == httpx.Timeout(12.0, connect=5.0)
    close(client)
    custom = httpx.Timeout(1.0)
    client = make(cls, account_id="acc", api_token=TOKEN, timeout=custom)
    assert client.timeout is custom
    close(client)


def test_wrong_http_client_kind_is_rejected():
    with pytest.raises(InvalidRequestError, match=r"httpx\.Client"):
        AISearchClient(account_id="a", api_token=TOKEN, http_client=httpx.AsyncClient())
    with pytest.raises(InvalidRequestError, match=r"httpx\.AsyncClient"):
        AsyncAISearchClient(account_id="a", api_token=TOKEN, http_client=httpx.Client())


def test_repr_and_str_hide_secrets(cls):
    client = make(cls, account_id="acc", api_token=TOKEN)
    text = repr(client) + str(client) + repr(client._config) + str(client._config)
    assert TOKEN not in text
    assert "acc" in repr(client) and "default" in repr(client)
    assert "auth=api_token" in repr(client._config)
    close(client)
    client = make(cls, account_id="acc", api_email="me@x.io", api_key=GLOBAL_KEY)
    assert GLOBAL_KEY not in repr(client._config) + repr(client) + str(vars(client))
    assert "auth=api_email+api_key" in repr(client._config)
    close(client)


def test_sync_context_manager_closes_owned_client_only():
    with AISearchClient(account_id="acc", api_token=TOKEN) as client:
        inner = client._client
    assert inner.is_closed
    injected = httpx.Client(
        transport=httpx.MockTransport(lambda r: httpx.Response(200, json=SEARCH_RESPONSE))
    )
    with AISearchClient(account_id="acc", api_token=TOKEN, http_client=injected) as client:
        clone = client.with_options(max_retries=0)
        clone.close()
        assert not injected.is_closed
        assert client.search("docs", "q").chunks
    assert not injected.is_closed
    owned = AISearchClient(account_id="acc", api_token=TOKEN)
    owned.with_options(timeout=1).close()
    assert not owned._client.is_closed
    owned.close()
    assert owned._client.is_closed


def test_async_context_manager_closes_owned_client_only():
    async def run():
        async with AsyncAISearchClient(account_id="acc", api_token=TOKEN) as client:
            inner = client._client
        assert inner.is_closed
        injected = httpx.AsyncClient(
            transport=httpx.MockTransport(lambda r: httpx.Response(200, json=SEARCH_RESPONSE))
        )
        async with AsyncAISearchClient(
            account_id="acc", api_token=TOKEN, http_client=injected
        ) as client:
            assert (await client.search("docs", "q")).chunks
        assert not injected.is_closed
        other = AsyncAISearchClient(account_id="acc", api_token=TOKEN)
        await other.close()
        assert other._client.is_closed
        await injected.aclose()

    asyncio.run(run())


def test_user_agent_and_base_url_are_used(harness):
    h = harness(
        lambda r: httpx.Response(200, json=SEARCH_RESPONSE),
        base_url="http://127.0.0.1:8787/client/v4/",
    )
    h.call("search", "docs", "q")
    assert (
        str(h.last.url)
        == "http://127.0.0.1:8787/client/v4/accounts/acc123/ai-search/namespaces/default/instances/docs/search"
    )
    owned = AISearchClient(account_id="acc", api_token=TOKEN)
    assert owned._client.headers["user-agent"].startswith("aisearch-py/")
    owned.close()


def test_request_urls_are_parsed_once_and_stay_right(harness):
    h = harness(lambda r: httpx.Response(200, json=SEARCH_RESPONSE))
    h.call("search", "docs", "q")
    first = str(h.last.url)
    h.call("search", "blog", "q")
    assert "/instances/blog/search" in str(h.last.url)
    h.call("search", "docs", "q")
    assert str(h.last.url) == first
    assert _parsed_url(first) is _parsed_url(first)  # httpx.URL is immutable: shared


def test_client_namespace_is_the_default_for_every_call(harness):
    h = harness(lambda r: httpx.Response(200, json=SEARCH_RESPONSE), namespace="team-a")
    h.call("search", "docs", "q")
    assert "/namespaces/team-a/instances/docs/search" in str(h.last.url)
    h.call("search", "docs", "q", namespace="team-b")
    assert "/namespaces/team-b/instances/docs/search" in str(h.last.url)


def test_timeout_none_means_default(cls):
    client = make(cls, account_id="acc", api_token=TOKEN, timeout=None)
    assert client.timeout == DEFAULT_TIMEOUT
    close(client)


@pytest.mark.parametrize("cls", CLIENTS)
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"api_token": "SECRET\x00123"}, "api_token"),
        ({"api_token": "SEC RET123"}, "api_token"),
        ({"api_token": "SECRETé123"}, "api_token"),
        ({"api_email": "me@example.com", "api_key": "KEY\r\nX-Evil: 1"}, "api_key"),
    ],
)
def test_credentials_that_cannot_be_a_header_are_rejected_without_echo(cls, kwargs, field):
    with pytest.raises(InvalidRequestError) as info:
        cls(account_id="acc", **kwargs)
    message = str(info.value)
    assert message.startswith(f"{field}: must be printable ASCII")
    secret = kwargs.get("api_token") or kwargs["api_key"]
    assert secret not in message and "SEC" not in message and "KEY" not in message


@pytest.mark.parametrize("cls", CLIENTS)
def test_surrounding_whitespace_of_a_token_is_stripped(cls):
    # a token read from a file or .env often ends in a newline
    client = cls(account_id="acc", api_token=f"  {TOKEN}\r\n")
    assert client._config.auth_headers() == {"Authorization": f"Bearer {TOKEN}"}
