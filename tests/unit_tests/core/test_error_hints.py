"""Errors say what to do next: the URL a connection error tried, the credential a 401/403 used."""

from __future__ import annotations

import httpx
import pytest

from aisearch import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
)
from aisearch._exceptions import error_from_body
from tests.unit_tests.core.conftest import raising
from tests.unit_tests.core.payloads import ACCOUNT, GLOBAL_KEY, TOKEN, error_body

LOCAL = "http://127.0.0.1:8787/client/v4"
PUBLIC_HINT = (
    "base_url is the public API (https://api.cloudflare.com/client/v4), the default when "
    "neither base_url= nor AISEARCH_BASE_URL is given; for a local server pass base_url=... or set "
    "AISEARCH_BASE_URL (e.g. http://127.0.0.1:8787/client/v4)"
)
SEARCH_PATH = f"/client/v4/accounts/{ACCOUNT}/ai-search/namespaces/default/instances/docs/search"
LOCAL_HINT = (
    "is the local server running? start it with aisearch-local serve (its --port must match "
    "the port of base_url= or AISEARCH_BASE_URL)"
)


def test_connection_error_names_the_public_url_and_how_to_reach_a_local_server(harness):
    h = harness(raising(httpx.ConnectError("[Errno -2] Name or service not known")), max_retries=0)
    with pytest.raises(APIConnectionError) as info:
        h.call("search", "docs", "q")
    assert str(info.value) == (
        "connection error: ConnectError: [Errno -2] Name or service not known (while trying "
        f"POST https://api.cloudflare.com:443{SEARCH_PATH}); {PUBLIC_HINT}"
    )


def test_connection_error_to_a_local_server_names_its_url_without_the_query(harness):
    h = harness(
        raising(httpx.ConnectError("[Errno 111] Connection refused")),
        max_retries=0,
        base_url=LOCAL,
    )
    with pytest.raises(APIConnectionError) as info:
        h.call("list_instances")
    assert h.last.url.query  # paging parameters were sent, but are not shown
    assert str(info.value) == (
        "connection error: ConnectError: [Errno 111] Connection refused (while trying GET "
        f"http://127.0.0.1:8787/client/v4/accounts/{ACCOUNT}/ai-search/namespaces/default/"
        f"instances); {LOCAL_HINT}"
    )


def test_base_url_from_the_environment_gets_no_public_api_hint(harness, monkeypatch):
    monkeypatch.setenv("AISEARCH_BASE_URL", "http://[::1]:9000/client/v4")
    h = harness(raising(httpx.ConnectError("refused")), max_retries=0)
    with pytest.raises(APIConnectionError) as info:
        h.call("search", "docs", "q")
    assert str(info.value).endswith(
        f"(while trying POST http://[::1]:9000{SEARCH_PATH}); {LOCAL_HINT}"
    )


@pytest.mark.parametrize("host", ["localhost:8787", "127.0.0.2:80", "[::1]:9000"])
def test_a_loopback_base_url_asks_whether_the_local_server_runs(harness, host):
    h = harness(raising(httpx.ConnectError("refused")), max_retries=0, base_url=f"http://{host}/v4")
    with pytest.raises(APIConnectionError) as info:
        h.call("list_namespaces")
    assert str(info.value).endswith(f"; {LOCAL_HINT}")


@pytest.mark.parametrize("host", ["search.example.com", "10.0.0.7:8787", "[::2]:80"])
def test_another_base_url_gets_no_hint(harness, host):
    h = harness(raising(httpx.ConnectError("refused")), max_retries=0, base_url=f"http://{host}/v4")
    with pytest.raises(APIConnectionError) as info:
        h.call("list_namespaces")
    assert str(info.value).endswith("/namespaces)")


def test_timeout_names_the_url(harness):
    h = harness(raising(httpx.ConnectTimeout("timed out")), max_retries=0, base_url=LOCAL)
    with pytest.raises(APITimeoutError) as info:
        h.call("search", "docs", "q")
    assert str(info.value) == (
        "request timed out (ConnectTimeout) (while trying POST "
        f"http://127.0.0.1:8787{SEARCH_PATH}); {LOCAL_HINT}"
    )


def test_unsendable_request_names_the_url_but_not_the_header(harness):
    h = harness(raising(httpx.LocalProtocolError(f"bad header {TOKEN}")), max_retries=0)
    with pytest.raises(APIConnectionError) as info:
        h.call("search", "docs", "q")
    assert str(info.value).startswith(
        "connection error: LocalProtocolError (request could not be sent) (while trying POST "
        f"https://api.cloudflare.com:443{SEARCH_PATH}); "
    )
    assert TOKEN not in str(info.value)


PUBLIC_API = (
    "the call went to the public API (https://api.cloudflare.com/client/v4), the default when "
    "neither base_url= nor AISEARCH_BASE_URL is given (set one to reach a local server)"
)
TOKEN_CHECK = (
    "check that the token is valid and has the AI Search permissions the call needs "
    "(AI Search:Run to search and chat, AI Search:Edit to manage namespaces, instances and "
    f"items); {PUBLIC_API}"
)
KEY_CHECK = (
    f"check the key and email, and that the key is the account's global API key; {PUBLIC_API}"
)
LOCAL_CHECK = (
    f"the server at {LOCAL} accepts the token it was started with (aisearch-local serve "
    "--token, --token-file or AISEARCH_LOCAL_TOKEN); check that they match"
)


def _denied(status: int) -> httpx.Response:
    body = error_body(10000 if status == 403 else 10001, "Authentication error")
    return httpx.Response(status, json=body)


@pytest.mark.parametrize(
    ("env", "kwargs", "used", "check"),
    [
        ({}, {"api_token": TOKEN}, "the API token from api_token=", TOKEN_CHECK),
        (
            {"CF_API_TOKEN": TOKEN},
            {"api_token": None},
            "the API token from CF_API_TOKEN",
            TOKEN_CHECK,
        ),
        (
            {},
            {"api_token": None, "api_email": "me@example.com", "api_key": GLOBAL_KEY},
            "the global API key and email from api_email= and api_key=",
            KEY_CHECK,
        ),
        (
            {"CLOUDFLARE_EMAIL": "me@example.com", "CLOUDFLARE_API_KEY": GLOBAL_KEY},
            {"api_token": None},
            "the global API key and email from CLOUDFLARE_EMAIL and CLOUDFLARE_API_KEY",
            KEY_CHECK,
        ),
        (  # an adapter passes what it read from the environment: the variable is named
            {"CLOUDFLARE_API_TOKEN": TOKEN},
            {"api_token": TOKEN},
            "the API token from CLOUDFLARE_API_TOKEN",
            TOKEN_CHECK,
        ),
        (
            {"CLOUDFLARE_API_TOKEN": "another-token"},
            {"api_token": TOKEN},
            "the API token from api_token=",
            TOKEN_CHECK,
        ),
        (
            {"CLOUDFLARE_EMAIL": "me@example.com", "CLOUDFLARE_API_KEY": GLOBAL_KEY},
            {"api_token": None, "api_email": "me@example.com", "api_key": GLOBAL_KEY},
            "the global API key and email from CLOUDFLARE_EMAIL and CLOUDFLARE_API_KEY",
            KEY_CHECK,
        ),
        (
            {"AISEARCH_BASE_URL": LOCAL},
            {"api_token": TOKEN},
            "the API token from api_token=",
            LOCAL_CHECK,
        ),
    ],
)
@pytest.mark.parametrize(
    ("status", "cls"), [(401, AuthenticationError), (403, PermissionDeniedError)]
)
def test_auth_errors_name_the_credential_and_what_to_check(
    harness, monkeypatch, env, kwargs, used, check, status, cls
):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    h = harness(lambda r: _denied(status), max_retries=0, **kwargs)
    with pytest.raises(cls) as info:
        h.call("search", "docs", "q")
    err = info.value
    code = 10000 if status == 403 else 10001
    assert str(err) == (
        f"HTTP {status} (code {code}): Authentication error; credential used: {used}; {check}"
    )
    assert err.hint == f"credential used: {used}; {check}"
    assert TOKEN not in str(err) and GLOBAL_KEY not in str(err)


def test_other_status_errors_get_no_credential_hint(harness):
    h = harness(lambda r: httpx.Response(400, json=error_body(7001, "bad")), max_retries=0)
    with pytest.raises(BadRequestError) as info:
        h.call("get_instance", "docs")
    assert info.value.hint is None
    assert str(info.value) == "HTTP 400 (code 7001): bad"


LIST_DEFAULT = "client.list_instances(namespace='default') lists its instances"


@pytest.mark.parametrize(
    ("method", "args", "kwargs", "hint"),
    [
        (
            "get_instance",
            ("cofee",),
            {},
            f"check the instance id 'cofee' and the namespace 'default'; {LIST_DEFAULT}",
        ),
        (
            "search",
            ("cofee", "q"),
            {"namespace": "shop"},
            "check the instance id 'cofee' and the namespace 'shop'; "
            "client.list_instances(namespace='shop') lists its instances",
        ),
        (
            "legacy_search",
            ("cofee", "q"),
            {},
            f"check the instance id 'cofee' and the namespace 'default'; {LIST_DEFAULT}",
        ),
        (
            "get_item",
            ("coffee", "it-1"),
            {},
            "check the item id 'it-1', the instance id 'coffee' and the namespace 'default'",
        ),
        (
            "get_job",
            ("coffee", "job-1"),
            {"namespace": "shop"},
            "check the job id 'job-1', the instance id 'coffee' and the namespace 'shop'",
        ),
        (
            "get_namespace",
            ("shop",),
            {},
            "check the namespace 'shop'; client.list_namespaces() lists them",
        ),
        (
            "list_instances",
            (),
            {"namespace": "shop"},
            "check the namespace 'shop'; client.list_namespaces() lists them",
        ),
        ("list_namespaces", (), {}, None),
    ],
)
def test_not_found_says_which_ids_to_check_and_what_lists_them(harness, method, args, kwargs, hint):
    h = harness(lambda r: httpx.Response(404, json=error_body(7002, "not found")), max_retries=0)
    with pytest.raises(NotFoundError) as info:
        h.call(method, *args, **kwargs)
    assert info.value.hint == hint
    tail = f"; {hint}" if hint else ""
    assert str(info.value) == f"HTTP 404 (code 7002): not found{tail}"


@pytest.mark.parametrize(
    ("method", "args", "code", "hint"),
    [
        (
            "create_instance",
            ("coffee",),
            7009,
            "to reuse the existing instance, pass exist_ok=True to create_instance() "
            "(a get-or-create; update_instance() changes its configuration)",
        ),
        (
            "create_namespace",
            ("shop",),
            7009,
            "to reuse the existing namespace, pass exist_ok=True to create_namespace()",
        ),
        ("create_namespace", ("shop",), 7099, None),  # modified concurrently: no exist_ok
        ("upload_item", ("coffee", "a.md", "text"), 7009, None),  # not a create with exist_ok
        ("create_job", ("coffee",), 7009, None),
    ],
)
def test_already_exists_names_the_call_that_reuses_it(harness, method, args, code, hint):
    h = harness(
        lambda r: httpx.Response(409, json=error_body(code, "already exists")), max_retries=0
    )
    with pytest.raises(ConflictError) as info:
        h.call(method, *args)
    assert info.value.hint == hint
    tail = f"; {hint}" if hint else ""
    assert str(info.value) == f"HTTP 409 (code {code}): already exists{tail}"


def test_a_hand_built_error_without_a_request_gets_no_resource_hint():
    err = error_from_body(error_body(7002, "not found"), 404, None, "x")
    assert err.hint is None
