"""A misspelt instance id gets a "did you mean" naming the closest ids of its namespace."""

from __future__ import annotations

import uuid

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.integration_tests.server._helpers import assert_error

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def namespace(server_http: httpx.Client, make_instance) -> str:
    ns = f"ns-{uuid.uuid4().hex[:8]}"
    r = server_http.post("/ai-search/namespaces", json={"name": ns})
    assert r.status_code == 200, r.text
    for iid in ("coffee", "coffee-beans", "tea"):
        make_instance(iid, namespace=ns)
    return ns


def _message(response: httpx.Response) -> str:
    assert_error(response, 404, 7002)
    message: str = response.json()["errors"][0]["message"]
    return message


@pytest.mark.parametrize(
    ("asked", "suggestion"),
    [
        ("cofee", " (did you mean 'coffee'?)"),
        ("coffee-bean", " (did you mean 'coffee-beans' or 'coffee'?)"),
        ("zzz", ""),
    ],
)
def test_unknown_instance_names_the_closest_ids(server_http, namespace, asked, suggestion):
    for method, suffix, body in (
        ("GET", "", None),
        ("POST", "/search", {"query": "x"}),
        ("POST", "/chat/completions", {"messages": [{"role": "user", "content": "x"}]}),
    ):
        path = f"/ai-search/namespaces/{namespace}/instances/{asked}{suffix}"
        message = _message(server_http.request(method, path, json=body))
        assert message == f"instance {asked!r} not found in namespace {namespace!r}{suggestion}"


def test_suggestions_come_from_the_same_namespace_only(server_http, namespace):
    # "coffee-beans" is in the test namespace only: never suggested for another namespace
    message = _message(server_http.get("/ai-search/namespaces/default/instances/coffee-bean"))
    assert message.startswith("instance 'coffee-bean' not found in namespace 'default'")
    assert "coffee-beans" not in message


def test_namespace_search_errors_suggest_nothing(server_http, namespace):
    # its per-instance errors may reach callers who cannot list the namespace's instances
    r = server_http.post(
        f"/ai-search/namespaces/{namespace}/search",
        json={"query": "x", "ai_search_options": {"instance_ids": ["cofee", "tea"]}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["result"]["errors"] == [
        {
            "instance_id": "cofee",
            "message": f"instance 'cofee' not found in namespace {namespace!r}",
        }
    ]


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(asked=st.from_regex(r"[a-z0-9_]{1,20}(-[a-z0-9_]{1,20}){0,2}", fullmatch=True))
def test_any_unknown_id_gets_the_envelope_and_only_real_suggestions(server_http, namespace, asked):
    assume(asked not in ("coffee", "coffee-beans", "tea"))
    message = _message(server_http.get(f"/ai-search/namespaces/{namespace}/instances/{asked}"))
    head = f"instance {asked!r} not found in namespace {namespace!r}"
    assert message.startswith(head)
    rest = message.removeprefix(head)
    if rest:
        names = rest.removeprefix(" (did you mean ").removesuffix("?)").split(" or ")
        assert names and all(n.strip("'") in ("coffee", "coffee-beans", "tea") for n in names)
