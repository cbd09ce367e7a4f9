"""The public-endpoint client (issue #14 section 3): requests, errors, secrets, URL, environment.

Each scenario runs against ``AISearchPublicClient`` and ``AsyncAISearchPublicClient`` over a
``MockTransport`` (the edges a real server cannot produce; the local server's public routes are
exercised in ``tests/integration_tests/core/test_public_live.py``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aisearch import (
    AISearchClient,
    AISearchError,
    AISearchPublicClient,
    APIStatusError,
    AsyncAISearchPublicClient,
    AuthenticationError,
    BadRequestError,
    ChatCompletion,
    InternalServerError,
    InvalidRequestError,
    MethodNotAllowedError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    SearchResult,
    SourcesEvent,
    StreamEndEvent,
    TextDeltaEvent,
)
from aisearch._public import LOCAL_HOSTS, check_endpoint
from tests.unit_tests.core.payloads import (
    ACCOUNT,
    CHAT_RESPONSE,
    MSGS,
    NAMESPACE_SEARCH_RESPONSE,
    SEARCH_RESPONSE,
    SSE,
    STREAM_NEW,
    dumps,
)

ENDPOINT = "https://0123abcd.search.ai.cloudflare.com"
ACCESS_ID = "access-id-7d1f2e3c4b5a.access"
ACCESS_SECRET = "access-secret-SECRET-99aa88bb77cc"

Handler = Callable[[httpx.Request], httpx.Response]


class Public:
    """One public client (sync or async) over a MockTransport, recording requests and sleeps."""

    def __init__(self, mode: str, handler: Handler, **kwargs: Any) -> None:
        self.mode = mode
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []

        def wrapped(request: httpx.Request) -> httpx.Response:
            request.read()
            self.requests.append(request)
            return handler(request)

        transport = httpx.MockTransport(wrapped)
        kwargs.setdefault("endpoint", ENDPOINT)
        if mode == "sync":
            self.client: Any = AISearchPublicClient(
                http_client=httpx.Client(transport=transport), **kwargs
            )
            self.client._sleep = self.sleeps.append
        else:
            self.client = AsyncAISearchPublicClient(
                http_client=httpx.AsyncClient(transport=transport), **kwargs
            )

            async def sleep(delay: float) -> None:
                self.sleeps.append(delay)

            self.client._sleep = sleep

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self.client, name)(*args, **kwargs)
        return result if self.mode == "sync" else asyncio.run(result)

    def collect(self, *args: Any, **kwargs: Any) -> list[Any]:
        stream = self.client.stream_chat_completions(*args, **kwargs)
        if self.mode == "sync":
            return list(stream)

        async def run() -> list[Any]:
            return [event async for event in stream]

        return asyncio.run(run())

    @property
    def body(self) -> Any:
        return json.loads(self.requests[-1].content)


@pytest.fixture(params=["sync", "async"])
def public(request: pytest.FixtureRequest) -> Callable[..., Public]:
    def make(handler: Handler, **kwargs: Any) -> Public:
        return Public(str(request.param), handler, **kwargs)

    return make


def answer(status: int, payload: Any, headers: dict[str, str] | None = None) -> Handler:
    return lambda request: httpx.Response(status, content=dumps(payload), headers=headers)


def public_error(code: int, message: str) -> dict[str, Any]:
    # API.md 18.2: a public endpoint's error envelope carries "result": {}
    return {"success": False, "errors": [{"code": code, "message": message}], "result": {}}


# ---------------------------------------------------------------------------- requests


def test_search_posts_the_rest_body_to_the_endpoint_without_a_token(public: Any) -> None:
    p = public(answer(200, SEARCH_RESPONSE))
    options = {"retrieval": {"max_num_results": 3}}
    result = p.call("search", "How do I get started?", options=options)
    assert isinstance(result, SearchResult)
    assert result.chunks[0].id == "chunk001"
    request = p.requests[0]
    assert (request.method, str(request.url)) == ("POST", f"{ENDPOINT}/search")
    assert p.body == {
        "query": "How do I get started?",
        "ai_search_options": {"retrieval": {"max_num_results": 3}},
    }
    for header in ("authorization", "x-auth-key", "cf-access-client-id", "cf-access-client-secret"):
        assert header not in request.headers


def test_a_local_endpoint_keeps_its_path_prefix(public: Any) -> None:
    p = public(answer(200, SEARCH_RESPONSE), endpoint="http://127.0.0.1:8787/_public/abc123/")
    p.call("search", "q")
    assert str(p.requests[0].url) == "http://127.0.0.1:8787/_public/abc123/search"


def test_namespace_search_instance_ids_are_optional(public: Any) -> None:
    p = public(answer(200, NAMESPACE_SEARCH_RESPONSE), endpoint="https://ns-42.example.com")
    whole = p.call("search", "pricing")
    assert "ai_search_options" not in p.body  # the whole allowlist
    assert [e.instance_id for e in whole.errors] == ["blog"]
    p.call("search", "pricing", instance_ids=["docs", "support"])
    assert p.body["ai_search_options"] == {"instance_ids": ["docs", "support"]}
    p.call("search", messages=MSGS, instance_ids=["docs"], extra_options={"x": 1})
    assert p.body == {"messages": MSGS, "ai_search_options": {"instance_ids": ["docs"], "x": 1}}


def test_chat_completions_and_its_stream(public: Any) -> None:
    p = public(answer(200, CHAT_RESPONSE))
    completion = p.call("chat_completions", MSGS, model="m", temperature=0.5, stop="END")
    assert isinstance(completion, ChatCompletion)
    assert completion.content == "To get started…"
    assert str(p.requests[0].url) == f"{ENDPOINT}/chat/completions"
    assert p.body == {"messages": MSGS, "model": "m", "temperature": 0.5, "stop": "END"}

    s = public(
        lambda request: httpx.Response(200, content=STREAM_NEW.encode(), headers=SSE),
        access_client_id=ACCESS_ID,
        access_client_secret=ACCESS_SECRET,
    )
    events = s.collect(MSGS, instance_ids=["docs"])
    assert isinstance(events[0], SourcesEvent)
    assert any(isinstance(e, TextDeltaEvent) for e in events)
    assert isinstance(events[-1], StreamEndEvent)
    assert s.body["stream"] is True
    assert s.body["ai_search_options"] == {"instance_ids": ["docs"]}
    assert s.requests[0].headers["cf-access-client-id"] == ACCESS_ID
    assert s.requests[0].headers["cf-access-client-secret"] == ACCESS_SECRET


def test_bad_arguments_fail_before_the_network(public: Any) -> None:
    p = public(answer(200, SEARCH_RESPONSE))
    with pytest.raises(InvalidRequestError, match=r"instance_ids: must contain between 1 and 10"):
        p.call("search", "q", instance_ids=[])
    with pytest.raises(InvalidRequestError, match=r"instance_ids\[0\]"):
        p.call("search", "q", instance_ids=["Bad/Id"])
    with pytest.raises(InvalidRequestError, match=r"temperature"):
        p.call("chat_completions", MSGS, temperature=9)
    with pytest.raises(InvalidRequestError, match=r"model: must be a string \(got int\)"):
        p.call("chat_completions", MSGS, model=5)
    # a public endpoint has no namespace to choose: the keyword is refused as Python would
    with pytest.raises(TypeError, match=r"AISearchPublicClient\.search\(\) got an unexpected"):
        p.call("search", "q", namespace="default")
    with pytest.raises(TypeError, match=r"stream_chat_completions\(\) got an unexpected"):
        p.client.stream_chat_completions(MSGS, namespace="x")
    assert p.requests == []


# ---------------------------------------------------------------------------- errors

PUBLIC_CODES = [
    (429, 60005, RateLimitError),
    (404, 60006, NotFoundError),
    (401, 60007, PermissionDeniedError),
    (401, 60008, PermissionDeniedError),
    (401, 60009, PermissionDeniedError),
    (400, 60012, BadRequestError),
    (404, 60013, NotFoundError),
    (404, 60014, NotFoundError),
    (400, 60015, BadRequestError),
    (405, 60016, MethodNotAllowedError),
    (404, 60018, NotFoundError),
    (500, 60100, InternalServerError),
]


@pytest.mark.parametrize(("status", "code", "cls"), PUBLIC_CODES)
def test_public_error_codes_map_into_the_error_tree(
    public: Any, status: int, code: int, cls: type[APIStatusError]
) -> None:
    p = public(answer(status, public_error(code, "ai_search_error")), max_retries=0)
    with pytest.raises(APIStatusError) as info:
        p.call("search", "q")
    assert type(info.value) is cls
    assert (info.value.status_code, info.value.code) == (status, code)
    assert f"HTTP {status} (code {code}): ai_search_error" in str(info.value)


def test_the_code_decides_even_when_the_status_says_otherwise(public: Any) -> None:
    # a disabled route answers 401, but no credential is wrong: not an AuthenticationError
    p = public(answer(401, public_error(60008, "chat_completions_disabled")))
    with pytest.raises(PermissionDeniedError) as info:
        p.call("chat_completions", MSGS)
    assert not isinstance(info.value, AuthenticationError)
    assert "a public endpoint needs no API token" in str(info.value)
    assert "60007-60009 mean the route is disabled" in str(info.value)
    # 405 without a code is a MethodNotAllowedError too
    q = public(answer(405, {"error": "method not allowed"}))
    with pytest.raises(MethodNotAllowedError):
        q.call("search", "q")


def test_an_error_inside_the_stream_maps_by_code(public: Any) -> None:
    body = 'event: error\ndata: {"errors":[{"code":60013,"message":"ai_search_not_found"}]}\n\n'
    p = public(lambda request: httpx.Response(200, content=body.encode(), headers=SSE))
    with pytest.raises(NotFoundError, match="ai_search_not_found"):
        p.collect(MSGS)


def test_the_rate_limit_is_retried_after_retry_after(public: Any) -> None:
    answers = [
        httpx.Response(
            429, content=dumps(public_error(60005, "rate_limited")), headers={"retry-after": "2"}
        ),
        httpx.Response(200, content=dumps(SEARCH_RESPONSE)),
    ]
    p = public(lambda request: answers.pop(0))
    assert p.call("search", "q").chunks
    assert p.sleeps == [2.0]
    assert len(p.requests) == 2


# ---------------------------------------------------------------------------- secrets


def test_access_headers_never_show_in_reprs_errors_logs_or_pickles(
    public: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def echo(request: httpx.Request) -> httpx.Response:  # a proxy echoing the headers back
        text = f"denied for {ACCESS_ID} / {ACCESS_SECRET}"
        return httpx.Response(
            403, content=dumps(public_error(10000, text)), headers={"x-echo": ACCESS_SECRET}
        )

    caplog.set_level(logging.DEBUG)
    p = public(echo, access_client_id=ACCESS_ID, access_client_secret=ACCESS_SECRET)
    with pytest.raises(PermissionDeniedError) as info:
        p.call("search", "q")
    error = info.value
    views = [
        repr(p.client),
        str(p.client),
        repr(p.client._config),
        str(error),
        repr(error),
        json.dumps(error.body),
        str(error.response.headers) if error.response is not None else "",
        str(error.response.request.headers) if error.response is not None else "",
        error.response.text if error.response is not None else "",
        caplog.text,
    ]
    views.append(pickle.dumps(error).decode("latin-1"))
    copy = pickle.loads(pickle.dumps(error))
    views += [str(copy), json.dumps(copy.body)]
    for view in views:
        assert ACCESS_SECRET not in view
        assert ACCESS_ID not in view
    assert "a Cloudflare Access service token was sent" in str(error)
    assert "access_token=yes" in repr(p.client._config)


def test_transport_errors_do_not_carry_the_access_headers(public: Any) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"refused ({request.headers['cf-access-client-secret']})")

    p = public(fail, access_client_id=ACCESS_ID, access_client_secret=ACCESS_SECRET, max_retries=0)
    with pytest.raises(AISearchError) as info:
        p.call("search", "q")
    assert ACCESS_SECRET not in str(info.value)
    assert ACCESS_SECRET not in pickle.dumps(info.value).decode("latin-1")
    assert "POST https://0123abcd.search.ai.cloudflare.com:443/search" in str(info.value)


# ---------------------------------------------------------------------------- configuration

GOOD_ENDPOINTS = [
    ("https://0123abcd.search.ai.cloudflare.com", "https://0123abcd.search.ai.cloudflare.com"),
    ("https://ns-42.search.ai.cloudflare.com/", "https://ns-42.search.ai.cloudflare.com"),
    ("https://search.example.com", "https://search.example.com"),
    ("http://127.0.0.1:8787/_public/abc", "http://127.0.0.1:8787/_public/abc"),
    ("http://localhost:9/_public/ns-1", "http://localhost:9/_public/ns-1"),
    ("http://[::1]:9/_public/x", "http://[::1]:9/_public/x"),
]


@pytest.mark.parametrize(("given", "kept"), GOOD_ENDPOINTS)
def test_good_endpoints(given: str, kept: str) -> None:
    assert AISearchPublicClient(endpoint=given).endpoint == kept


BAD_ENDPOINTS = [
    ("http://search.example.com", r"endpoint: must use https:// \(http:// only for localhost"),
    ("http://10.0.0.5:8787/_public/x", r"must use https://"),
    ("ftp://search.example.com", r"endpoint: must be https://<public_endpoint_id>\.search"),
    ("search.example.com", r"endpoint: must be https://"),
    ("https://search.example.com/?instance=x", r"must have no query, fragment"),
    ("https://search.example.com/#x", r"must have no query, fragment"),
    ("https://search.example.com/a b", r"must have no query, fragment, spaces"),
    ("https://search.example.com\n", r"must have no query, fragment, spaces or control"),
    ("https://", r"endpoint: "),
    (42, r"endpoint: must be a URL string \(got int\)"),
    ("https://search.example.com:x", r"endpoint: not a valid URL \(Invalid port"),
    ("https://search.example.com:0", r"endpoint: the port must be from 1 to 65535"),
    ("https://search.example.com:99999", r"endpoint: the port must be from 1 to 65535"),
    ("http://127.0.0.1:8787/_public/../client/v4", r"endpoint: must have no '\.' or '\.\.'"),
    ("https://search.example.com/./x", r"endpoint: must have no '\.' or '\.\.' path"),
    ("https://search.example.com/%2E%2e", r"endpoint: must have no '\.' or '\.\.' path"),
]


@pytest.mark.parametrize(("given", "message"), BAD_ENDPOINTS)
def test_bad_endpoints_are_refused_with_the_rule(given: Any, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        AISearchPublicClient(endpoint=given)


def test_credentials_in_the_endpoint_are_refused_without_being_echoed() -> None:
    with pytest.raises(InvalidRequestError) as info:
        AsyncAISearchPublicClient(endpoint=f"https://user:{ACCESS_SECRET}@search.example.com")
    assert "must not carry credentials" in str(info.value)
    assert ACCESS_SECRET not in str(info.value)


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(
        AISearchError,
        match=r"endpoint: missing; pass endpoint=\.\.\. or set "
        r"AISEARCH_PUBLIC_ENDPOINT",
    ):
        AISearchPublicClient()
    monkeypatch.setenv("AISEARCH_PUBLIC_ENDPOINT", "https://ns-1.search.ai.cloudflare.com")
    monkeypatch.setenv("CF_ACCESS_CLIENT_ID", ACCESS_ID)
    monkeypatch.setenv("CF_ACCESS_CLIENT_SECRET", ACCESS_SECRET)
    client = AISearchPublicClient()
    assert client.endpoint == "https://ns-1.search.ai.cloudflare.com"
    assert client._config.auth_headers() == {
        "CF-Access-Client-Id": ACCESS_ID,
        "CF-Access-Client-Secret": ACCESS_SECRET,
    }
    assert "CF_ACCESS_CLIENT_ID and CF_ACCESS_CLIENT_SECRET" in client._status_hints()[401]
    # arguments win over the environment, the pair as a whole
    other = AISearchPublicClient(
        endpoint="https://x.example.com", access_client_id="a" * 20, access_client_secret="b" * 20
    )
    assert other._config.auth_headers()["CF-Access-Client-Id"] == "a" * 20
    monkeypatch.setenv("AISEARCH_PUBLIC_ENDPOINT", "http://example.com")
    with pytest.raises(InvalidRequestError, match=r"AISEARCH_PUBLIC_ENDPOINT: must use https://"):
        AISearchPublicClient()


def test_half_an_access_token_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(AISearchError, match=r"access_client_id and access_client_secret: both"):
        AISearchPublicClient(endpoint=ENDPOINT, access_client_id=ACCESS_ID)
    monkeypatch.setenv("CF_ACCESS_CLIENT_SECRET", ACCESS_SECRET)
    with pytest.raises(AISearchError, match=r"CF_ACCESS_CLIENT_ID and CF_ACCESS_CLIENT_SECRET"):
        AISearchPublicClient(endpoint=ENDPOINT)
    with pytest.raises(InvalidRequestError, match=r"access_client_secret: must be a string"):
        AISearchPublicClient(endpoint=ENDPOINT, access_client_id="x", access_client_secret=5)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match=r"access_client_secret: must be printable"):
        AISearchPublicClient(endpoint=ENDPOINT, access_client_id="x", access_client_secret="a b\n")


def test_lifecycle_and_options() -> None:
    with AISearchPublicClient(endpoint=ENDPOINT) as client:
        faster = client.with_options(timeout=3, max_retries=0)
        assert faster.endpoint == ENDPOINT and faster.max_retries == 0
        assert repr(faster) == f"AISearchPublicClient(endpoint={ENDPOINT!r})"
        assert client._connection_hint() is None

    async def run() -> None:
        async with AsyncAISearchPublicClient(endpoint=ENDPOINT) as aclient:
            assert aclient.endpoint == ENDPOINT
        await AsyncAISearchPublicClient(endpoint=ENDPOINT).close()
        with pytest.raises(InvalidRequestError, match=r"must be an httpx\.AsyncClient"):
            AsyncAISearchPublicClient(endpoint=ENDPOINT, http_client=httpx.Client())  # type: ignore[arg-type]

    asyncio.run(run())
    with pytest.raises(InvalidRequestError, match=r"http_client: must be an httpx\.Client "):
        AISearchPublicClient(endpoint=ENDPOINT, http_client=httpx.AsyncClient())  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- fuzzing


_PIECES = st.sampled_from(
    ["https://", "http://", "ftp://", "//", "user:pw@", "@", "search.example.com",
     "127.0.0.1", "localhost", "[::1]", ":8787", ":0", ":99999", ":x", "/_public/ab",
     "/", "..", "?q", "#f", " ", "\n", "\x00", "\ud800", "%2e", "é", "ns-1"]
)  # fmt: skip


@settings(deadline=None)  # no timed assertion: the machine may be busy
@given(st.lists(_PIECES | st.text(max_size=4), max_size=8).map("".join))
def test_any_endpoint_is_either_accepted_clean_or_refused_naming_the_field(url: str) -> None:
    try:
        kept = check_endpoint(url)
    except InvalidRequestError as exc:
        assert str(exc).startswith("endpoint: ")
        assert "pw@" not in str(exc)
        return
    parsed = httpx.URL(kept)
    assert parsed.scheme == "https" or parsed.host in LOCAL_HOSTS
    assert parsed.host and not parsed.userinfo and not parsed.query and not parsed.fragment
    assert not kept.endswith("/")
    assert all(c.isprintable() and not c.isspace() for c in kept)
    assert httpx.URL(kept + "/search").path.endswith("/search")  # no dot segment to resolve
    assert ".." not in httpx.URL(kept).path.split("/")


@pytest.mark.parametrize("cls", [AISearchPublicClient, AsyncAISearchPublicClient])
def test_the_public_client_has_no_account_or_namespace(cls: type) -> None:
    """A public endpoint has neither: the properties are not there (they read "" before)."""
    client = cls(endpoint="https://abc.search.ai.cloudflare.com")
    for name in ("account_id", "namespace"):
        assert not hasattr(client, name), name
        assert name not in dir(client), name
    assert client.endpoint == "https://abc.search.ai.cloudflare.com"
    if isinstance(client, AISearchPublicClient):
        client.close()
    else:
        asyncio.run(client.aclose())


def test_the_account_client_keeps_account_and_namespace() -> None:
    with AISearchClient(account_id=ACCOUNT, api_token="t" * 40, namespace="ns1") as client:
        assert (client.account_id, client.namespace) == (ACCOUNT, "ns1")


def _redirecting(seen: list[httpx.Request]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(307, headers={"location": "https://evil.example/steal"})

    return httpx.MockTransport(handler)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_redirect_is_never_followed_with_the_access_headers(mode: str) -> None:
    """httpx drops ``Authorization`` on a cross-origin redirect, but not the Access headers:
    an injected client with ``follow_redirects=True`` sent them to the redirect's host."""
    seen: list[httpx.Request] = []
    access = {"access_client_id": ACCESS_ID, "access_client_secret": ACCESS_SECRET}
    if mode == "sync":
        http = httpx.Client(transport=_redirecting(seen), follow_redirects=True)
        client = AISearchPublicClient(endpoint=ENDPOINT, http_client=http, **access)
        with client, pytest.raises(APIStatusError) as info:
            client.search("q")
    else:

        async def run() -> None:
            http = httpx.AsyncClient(transport=_redirecting(seen), follow_redirects=True)
            async with AsyncAISearchPublicClient(
                endpoint=ENDPOINT, http_client=http, **access
            ) as client:
                await client.search("q")

        with pytest.raises(APIStatusError) as info:
            asyncio.run(run())
    assert {r.url.host for r in seen} == {"0123abcd.search.ai.cloudflare.com"}
    assert info.value.status_code == 307
    assert "redirect" in str(info.value) and "not followed" in str(info.value)
    assert ACCESS_SECRET not in str(info.value)


def test_the_account_client_follows_no_redirect_with_its_api_key() -> None:
    seen: list[httpx.Request] = []
    http = httpx.Client(transport=_redirecting(seen), follow_redirects=True)
    key = "k" * 37
    client = AISearchClient(
        account_id=ACCOUNT, api_email="me@example.com", api_key=key, http_client=http
    )
    with client, pytest.raises(APIStatusError) as info:
        client.search("docs", "q")
    assert {r.url.host for r in seen} == {"api.cloudflare.com"}
    assert key not in str(info.value)
