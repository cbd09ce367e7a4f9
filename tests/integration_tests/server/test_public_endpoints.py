"""Public endpoints of aisearch_local (API.md section 18.2) over real HTTP.

The server runs with a token; the public routes never send it. Every 60xxx answer is checked
for its status, code and envelope ``{"success": false, "errors": [...], "result": {}}``.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from aisearch_local.public import PublicEndpoints
from aisearch_local.testing import LocalServer

ENABLED = {"enabled": True}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with LocalServer(data_dir=tmp_path_factory.mktemp("public"), token="admin-token") as s:
        yield s


@pytest.fixture(scope="module")
def admin(server: LocalServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.account_url, headers=server.headers, timeout=60) as http:
        yield http


@pytest.fixture(scope="module")
def anon(server: LocalServer) -> Iterator[httpx.Client]:
    """No token, no headers: what a public client sends."""
    with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=60) as http:
        yield http


def _ok(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code < 300, r.text
    out: dict[str, Any] = r.json()["result"]
    return out


def _err(r: httpx.Response, status: int, code: int) -> str:
    assert r.status_code == status, r.text
    doc = r.json()
    assert doc["success"] is False
    assert doc["result"] == {}
    assert doc["errors"][0]["code"] == code, doc
    message: str = doc["errors"][0]["message"]
    return message


@pytest.fixture
def instance(admin: httpx.Client) -> Callable[..., tuple[str, str]]:
    """Create an instance with two documents and the given public params; (id, endpoint id)."""

    def make(
        params: Any = ENABLED, *, namespace: str = "default", **config: Any
    ) -> tuple[str, str]:
        iid = f"p-{uuid.uuid4().hex[:10]}"
        base = "/ai-search" if namespace == "default" else f"/ai-search/namespaces/{namespace}"
        body = {"id": iid, "public_endpoint_params": params, **config}
        created = _ok(admin.post(f"{base}/instances", json=body))
        for key, text in (
            ("espresso.md", "Espresso is brewed by forcing hot water through fine coffee."),
            ("tea.md", "Green tea is steeped at 80 degrees for two minutes."),
        ):
            r = admin.post(
                f"{base}/instances/{iid}/items",
                files={"file": (key, text.encode())},
                data={"wait_for_completion": "true"},
            )
            assert r.status_code == 200, r.text
        return iid, str(created.get("public_endpoint_id"))

    return make


@pytest.fixture
def namespace(admin: httpx.Client) -> Callable[..., str]:
    def make() -> str:
        name = f"pn-{uuid.uuid4().hex[:10]}"
        _ok(admin.post("/ai-search/namespaces", json={"name": name}))
        return name

    return make


def _enable_ns(admin: httpx.Client, ns: str, **params: Any) -> str:
    body = {"public_endpoint_params": {"enabled": True, **params}}
    return str(_ok(admin.put(f"/ai-search/namespaces/{ns}", json=body))["public_endpoint_id"])


QUERY = {"query": "espresso"}
NOT_FOUND_60013 = (
    b'{"success":false,"errors":[{"code":60013,"message":"ai_search_not_found"}],"result":{}}'
)
CHAT = {"messages": [{"role": "user", "content": "How is espresso brewed?"}]}


# -- the endpoint id --------------------------------------------------------------------------


def test_enabling_generates_an_id_that_is_kept_forever(admin, instance):
    iid, eid = instance({"enabled": False})
    assert eid == "None"  # not enabled yet: no id
    on = _ok(admin.put(f"/ai-search/instances/{iid}", json={"public_endpoint_params": ENABLED}))
    eid = on["public_endpoint_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", eid)
    for params in ({"enabled": False}, None, ENABLED):
        r = admin.put(f"/ai-search/instances/{iid}", json={"public_endpoint_params": params})
        assert _ok(r)["public_endpoint_id"] == eid
    # a client cannot choose or change it
    r = admin.put(f"/ai-search/instances/{iid}", json={"public_endpoint_id": "0" * 32})
    assert _ok(r)["public_endpoint_id"] == eid
    assert _ok(admin.get(f"/ai-search/instances/{iid}"))["public_endpoint_id"] == eid


def test_a_namespace_gets_its_id_on_create_or_update_and_keeps_it(admin, anon):
    name = f"pn-{uuid.uuid4().hex[:10]}"
    created = _ok(
        admin.post("/ai-search/namespaces", json={"name": name, "public_endpoint_params": ENABLED})
    )
    nid = created["public_endpoint_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", nid)
    assert created["public_endpoint_params"]["instances_allowed"] == []
    for params in (None, {"enabled": False}, ENABLED):
        r = admin.put(f"/ai-search/namespaces/{name}", json={"public_endpoint_params": params})
        assert _ok(r)["public_endpoint_id"] == nid
    assert _ok(admin.get(f"/ai-search/namespaces/{name}"))["public_endpoint_id"] == nid
    # an instance id is not a namespace id, nor the other way round
    _err(anon.post(f"/_public/{nid}/search", json=QUERY), 404, 60003)


def test_each_put_replaces_the_whole_object_but_custom_domains(admin, instance):
    iid, _ = instance(
        {
            "enabled": True,
            "rate_limit": {"requests": 5, "period_ms": 120000, "technique": "sliding"},
            "custom_domains": ["search.example.com"],
            "mcp": {"description": "Coffee docs"},
        }
    )
    r = admin.put(f"/ai-search/instances/{iid}", json={"public_endpoint_params": ENABLED})
    params = _ok(r)["public_endpoint_params"]
    assert params["rate_limit"] == {"requests": 120, "period_ms": 60000, "technique": "fixed"}
    assert params["mcp"] == {
        "description": "Finds exactly what you're looking for",
        "disabled": False,
    }
    assert params["custom_domains"] == ["search.example.com"]  # omitted: kept
    r = admin.put(
        f"/ai-search/instances/{iid}",
        json={"public_endpoint_params": {"enabled": True, "custom_domains": []}},
    )
    assert _ok(r)["public_endpoint_params"]["custom_domains"] == []


# -- search and chat without a token ----------------------------------------------------------


def test_search_and_chat_need_no_token(server, admin, anon, instance):
    _, eid = instance()
    base = f"/_public/{eid}"
    found = _ok(anon.post(f"{base}/search", json=QUERY))
    assert found["chunks"][0]["item"]["key"] == "espresso.md"
    r = anon.post(f"{base}/search", json={"messages": CHAT["messages"]})
    assert r.json()["success"] is True
    # a local choice (API.md 18.4): /search ignores stream and answers the envelope
    r = anon.post(f"{base}/search", json={**QUERY, "stream": True})
    assert r.headers["content-type"] == "application/json"
    assert r.json()["success"] is True
    chat = anon.post(f"{base}/chat/completions", json=CHAT)
    assert chat.status_code == 200
    body = chat.json()
    assert body["object"] == "chat.completion"  # not enveloped
    assert body["chunks"][0]["item"]["key"] == "espresso.md"
    # the management API still needs the token
    assert (
        anon.get(f"/client/v4/accounts/{server.account_id}/ai-search/instances").status_code == 401
    )
    # Cloudflare Access headers are accepted and never echoed
    access = {"CF-Access-Client-Id": "id.access", "CF-Access-Client-Secret": "s3cr3t-value"}
    r = anon.post(f"{base}/search", json=QUERY, headers=access)
    assert r.status_code == 200
    assert "s3cr3t-value" not in r.text
    assert "s3cr3t-value" not in str(r.headers)
    # a token sent anyway is ignored, not checked
    r = anon.post(f"{base}/search", json=QUERY, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 200


def test_chat_stream_is_the_rest_sse_stream(anon, instance):
    _, eid = instance()
    with anon.stream(
        "POST", f"/_public/{eid}/chat/completions", json={**CHAT, "stream": True}
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        text = "".join(r.iter_text())
    assert text.startswith("event: chunks\ndata: ")
    assert text.rstrip().endswith("data: [DONE]")


def test_rest_errors_keep_their_codes_in_the_public_envelope(anon, instance):
    _, eid = instance()
    msg = _err(anon.post(f"/_public/{eid}/search", json={"query": 3}), 400, 7001)
    assert msg.startswith("query:")
    _err(anon.post(f"/_public/{eid}/chat/completions", json=QUERY), 400, 7001)
    # a value JSON cannot carry inside the object: that field's error, not 60015
    r = anon.post(
        f"/_public/{eid}/search",
        content=b'{"query": NaN}',
        headers={"content-type": "application/json"},
    )
    assert _err(r, 400, 7001).startswith("query:")


# -- error codes ------------------------------------------------------------------------------


def test_unknown_and_disabled_endpoints(admin, anon, instance):
    assert _err(anon.post("/_public/", json=QUERY), 404, 60002) == "hash not found on url"
    for seg in ("0" * 32, "ns-" + "0" * 32, "ns-", "UPPER", "x" * 300, "nope.example.com", "-"):
        assert _err(anon.post(f"/_public/{seg}/search", json=QUERY), 404, 60003) == (
            "config not found"
        )
    iid, eid = instance()
    admin.put(f"/ai-search/instances/{iid}", json={"public_endpoint_params": {"enabled": False}})
    assert _err(anon.post(f"/_public/{eid}/search", json=QUERY), 404, 60004) == (
        "ai search not enabled"
    )


def test_wrong_paths_and_methods(anon, admin, instance, namespace):
    _, eid = instance()
    for path in ("", "/", "/searches", "/search/x", "/chat", "/v1/chat/completions", "/mcp/"):
        msg = _err(anon.post(f"/_public/{eid}{path}", json=QUERY), 404, 60006)
        assert msg == "endpoint not found"
    ns = namespace()
    nid = _enable_ns(admin, ns)
    msg = _err(anon.post(f"/_public/ns-{nid}/items", json=QUERY), 404, 60014)
    assert msg == "path not supported for namespace-kind hash"
    for method in ("GET", "PUT", "DELETE", "PATCH", "OPTIONS"):
        r = anon.request(method, f"/_public/{eid}/mcp")
        assert _err(r, 405, 60016) == "method not allowed; this MCP endpoint only accepts POST"
        assert r.headers["allow"] == "POST"
        r = anon.request(method, f"/_public/{eid}/search")
        assert _err(r, 405, 60010) == "method not allowed"


@pytest.mark.parametrize(
    "raw",
    [b"", b"  ", b"[]", b'"espresso"', b"3", b"null", b"{", b"{'query': 1}", b"{} {}"],
)
@pytest.mark.parametrize("route", ["/search", "/chat/completions"])
def test_a_body_that_is_not_a_json_object_is_60015(anon, instance, raw, route):
    _, eid = instance()
    r = anon.post(
        f"/_public/{eid}{route}", content=raw, headers={"content-type": "application/json"}
    )
    assert _err(r, 400, 60015).startswith("request body must be a JSON object")


@pytest.mark.parametrize(
    ("section", "route", "code", "message"),
    [
        ("mcp", "/mcp", 60007, "mcp endpoint disabled"),
        ("search_endpoint", "/search", 60008, "search endpoint disabled"),
        (
            "chat_completions_endpoint",
            "/chat/completions",
            60009,
            "chat completions endpoint disabled",
        ),
    ],
)
def test_a_disabled_route_is_401_and_the_others_still_answer(
    anon, instance, section, route, code, message
):
    _, eid = instance({"enabled": True, section: {"disabled": True}})
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"} if route == "/mcp" else CHAT
    assert _err(anon.post(f"/_public/{eid}{route}", json=body), 401, code) == message
    others = {"/search": QUERY, "/chat/completions": CHAT}
    for other, other_body in others.items():
        if other != route:
            assert anon.post(f"/_public/{eid}{other}", json=other_body).status_code == 200


def test_default_domain_disabled_serves_only_the_custom_domain(anon, admin, instance):
    iid, eid = instance(
        {"enabled": True, "custom_domains": ["Docs.Example.com."], "default_domain_enabled": False}
    )
    params = _ok(admin.get(f"/ai-search/instances/{iid}"))["public_endpoint_params"]
    assert params["custom_domains"] == ["docs.example.com"]  # stored in lower case
    assert _err(anon.post(f"/_public/{eid}/search", json=QUERY), 404, 60018) == (
        "default domain disabled"
    )
    assert anon.post("/_public/docs.example.com/search", json=QUERY).status_code == 200
    # omitting default_domain_enabled on the next PUT turns the default "host" back on
    admin.put(f"/ai-search/instances/{iid}", json={"public_endpoint_params": {"enabled": True}})
    assert anon.post(f"/_public/{eid}/search", json=QUERY).status_code == 200


# -- public_endpoint_params validation --------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        (3, "public_endpoint_params"),
        ({"enabled": "yes"}, "public_endpoint_params.enabled"),
        ({"rate_limits": {}}, "public_endpoint_params.rate_limits"),
        ({"rate_limit": {"requests": 0}}, "public_endpoint_params.rate_limit.requests"),
        ({"rate_limit": {"requests": 1.5}}, "public_endpoint_params.rate_limit.requests"),
        ({"rate_limit": {"requests": True}}, "public_endpoint_params.rate_limit.requests"),
        ({"rate_limit": {"period_ms": 59999}}, "public_endpoint_params.rate_limit.period_ms"),
        ({"rate_limit": {"period_ms": 3600001}}, "public_endpoint_params.rate_limit.period_ms"),
        ({"rate_limit": {"technique": "leaky"}}, "public_endpoint_params.rate_limit.technique"),
        ({"rate_limit": {"burst": 1}}, "public_endpoint_params.rate_limit.burst"),
        (
            {"custom_domains": ["a.example.com", "b.example.com"]},
            "public_endpoint_params.custom_domains",
        ),
        ({"custom_domains": ["localhost"]}, "public_endpoint_params.custom_domains[0]"),
        ({"custom_domains": ["*.example.com"]}, "public_endpoint_params.custom_domains[0]"),
        ({"custom_domains": ["a..example.com"]}, "public_endpoint_params.custom_domains[0]"),
        ({"custom_domains": ["-a.example.com"]}, "public_endpoint_params.custom_domains[0]"),
        ({"custom_domains": ["a" * 64 + ".com"]}, "public_endpoint_params.custom_domains[0]"),
        ({"custom_domains": "a.example.com"}, "public_endpoint_params.custom_domains"),
        ({"authorized_hosts": ["ftp://x.com"]}, "public_endpoint_params.authorized_hosts[0]"),
        ({"authorized_hosts": ["a b"]}, "public_endpoint_params.authorized_hosts[0]"),
        ({"authorized_hosts": [3]}, "public_endpoint_params.authorized_hosts[0]"),
        ({"authorized_hosts": ["x.com"] * 101}, "public_endpoint_params.authorized_hosts"),
        ({"mcp": {"description": ""}}, "public_endpoint_params.mcp.description"),
        ({"mcp": {"description": "x" * 4097}}, "public_endpoint_params.mcp.description"),
        ({"mcp": {"disabled": "no"}}, "public_endpoint_params.mcp.disabled"),
        ({"search_endpoint": {"disabled": 1}}, "public_endpoint_params.search_endpoint.disabled"),
        ({"search_endpoint": []}, "public_endpoint_params.search_endpoint"),
        ({"instances_allowed": []}, "public_endpoint_params.instances_allowed"),
    ],
)
def test_bad_params_are_400_7001_naming_the_field(admin, params, field):
    r = admin.post(
        "/ai-search/instances", json={"id": "bad-params", "public_endpoint_params": params}
    )
    assert r.status_code == 400, r.text
    err = r.json()["errors"][0]
    assert err["code"] == 7001
    assert err["message"].startswith(field + ":"), err["message"]


def test_default_domain_off_without_custom_domain_is_7096(admin, instance):
    params = {"enabled": True, "default_domain_enabled": False}
    r = admin.post(
        "/ai-search/instances", json={"id": "no-domain", "public_endpoint_params": params}
    )
    assert r.status_code == 400
    err = r.json()["errors"][0]
    assert err["code"] == 7096
    assert err["message"].startswith(
        "disabling_the_default_domain_requires_at_least_one_custom_domain"
    )
    # removing the last domain while the default domain is off is refused too
    iid, _ = instance({**params, "custom_domains": ["x.example.com"]})
    r = admin.put(
        f"/ai-search/instances/{iid}",
        json={"public_endpoint_params": {**params, "custom_domains": []}},
    )
    assert r.json()["errors"][0]["code"] == 7096


def test_instances_allowed_must_name_instances_of_the_namespace(admin, namespace, instance):
    ns = namespace()
    other_ns = namespace()
    iid, _ = instance(namespace=other_ns)  # exists, but in another namespace
    for allowed in ([iid], ["ghost"]):
        r = admin.put(
            f"/ai-search/namespaces/{ns}",
            json={"public_endpoint_params": {"enabled": True, "instances_allowed": allowed}},
        )
        assert r.status_code == 400
        err = r.json()["errors"][0]
        assert err["code"] == 7097
        assert err["message"].startswith("instances_allowed_contains_unknown_instances")
    r = admin.post(
        "/ai-search/namespaces",
        json={
            "name": f"pn-{uuid.uuid4().hex[:8]}",
            "public_endpoint_params": {"instances_allowed": ["x"]},
        },
    )
    assert r.json()["errors"][0]["code"] == 7097
    too_many = [f"i{n}" for n in range(11)]
    r = admin.put(
        f"/ai-search/namespaces/{ns}",
        json={"public_endpoint_params": {"instances_allowed": too_many}},
    )
    assert r.json()["errors"][0]["code"] == 7001


# -- namespace endpoints ----------------------------------------------------------------------


@pytest.fixture
def ns_endpoint(admin, namespace, instance) -> tuple[str, str, list[str]]:
    """A namespace with three instances, two of them allowed; (namespace, endpoint id, allowed)."""
    ns = namespace()
    a, _ = instance(None, namespace=ns)
    b, _ = instance(None, namespace=ns)
    instance(None, namespace=ns)
    return ns, _enable_ns(admin, ns, instances_allowed=[a, b]), [a, b]


def test_namespace_search_covers_the_allowlist_or_a_subset(anon, ns_endpoint):
    _, nid, (a, b) = ns_endpoint
    base = f"/_public/ns-{nid}"
    found = _ok(anon.post(f"{base}/search", json=QUERY))
    assert {c["instance_id"] for c in found["chunks"]} == {a, b}
    found = _ok(
        anon.post(f"{base}/search", json={**QUERY, "ai_search_options": {"instance_ids": None}})
    )
    assert {c["instance_id"] for c in found["chunks"]} == {a, b}
    found = _ok(
        anon.post(f"{base}/search", json={**QUERY, "ai_search_options": {"instance_ids": [b]}})
    )
    assert {c["instance_id"] for c in found["chunks"]} == {b}
    chat = anon.post(
        f"{base}/chat/completions", json={**CHAT, "ai_search_options": {"instance_ids": [a]}}
    )
    assert {c["instance_id"] for c in chat.json()["chunks"]} == {a}


@pytest.mark.parametrize("ids", [[], "a", 3, [3], [None], ["ok", 1], {"a": 1}])
@pytest.mark.parametrize("route", ["/search", "/chat/completions"])
def test_malformed_instance_ids_are_60012(anon, ns_endpoint, ids, route):
    _, nid, _ = ns_endpoint
    body = {**(QUERY if route == "/search" else CHAT), "ai_search_options": {"instance_ids": ids}}
    msg = _err(anon.post(f"/_public/ns-{nid}{route}", json=body), 400, 60012)
    assert msg.startswith("invalid ai_search_options.instance_ids")


def test_unknown_not_allowed_and_empty_allowlist_are_the_same_60013(
    admin, anon, ns_endpoint, namespace
):
    ns, nid, _ = ns_endpoint
    not_allowed = next(
        i["id"]
        for i in _ok(admin.get(f"/ai-search/namespaces/{ns}/instances"))
        if i["id"] not in ns_endpoint[2]
    )
    answers = []
    for ids in (["ghost"], [not_allowed], ["..", "UP"]):
        r = anon.post(
            f"/_public/ns-{nid}/search", json={**QUERY, "ai_search_options": {"instance_ids": ids}}
        )
        answers.append(r)
    empty = namespace()
    eid = _enable_ns(admin, empty)  # enabled with the default, empty, allowlist
    answers.append(anon.post(f"/_public/ns-{eid}/search", json=QUERY))
    answers.append(anon.post(f"/_public/ns-{eid}/chat/completions", json=CHAT))
    for r in answers:
        assert r.status_code == 404
        assert r.content == NOT_FOUND_60013
        assert {k: v for k, v in r.headers.items() if k != "date"} == {
            k: v for k, v in answers[0].headers.items() if k != "date"
        }


def test_deleting_an_instance_removes_it_from_the_allowlist(admin, anon, ns_endpoint):
    ns, nid, (a, b) = ns_endpoint
    _ok(admin.delete(f"/ai-search/namespaces/{ns}/instances/{a}"))
    params = _ok(admin.get(f"/ai-search/namespaces/{ns}"))["public_endpoint_params"]
    assert params["instances_allowed"] == [b]
    found = _ok(anon.post(f"/_public/ns-{nid}/search", json=QUERY))
    assert {c["instance_id"] for c in found["chunks"]} == {b}
    # re-creating an instance of the same name does not expose it again
    _ok(admin.post(f"/ai-search/namespaces/{ns}/instances", json={"id": a}))
    body = {**QUERY, "ai_search_options": {"instance_ids": [a]}}
    _err(anon.post(f"/_public/ns-{nid}/search", json=body), 404, 60013)


# -- rate limit -------------------------------------------------------------------------------


class FakeClock:
    def __init__(self, now: float = 6000.0) -> None:  # 6000 s: a multiple of every period
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(server: LocalServer) -> Iterator[FakeClock]:
    assert server.app is not None
    public: PublicEndpoints = server.app.state.public
    fake = FakeClock()
    old, public.limiter.clock = public.limiter.clock, fake
    yield fake
    public.limiter.clock = old


def _limited(r: httpx.Response) -> int:
    assert _err(r, 429, 60005) == "rate limited"
    return int(r.headers["retry-after"])


def test_fixed_rate_limit_is_shared_across_routes(anon, instance, clock):
    _, eid = instance({"enabled": True, "rate_limit": {"requests": 3, "period_ms": 60000}})
    base = f"/_public/{eid}"
    assert anon.post(f"{base}/search", json=QUERY).status_code == 200
    assert anon.post(f"{base}/chat/completions", json=CHAT).status_code == 200
    mcp = anon.post(
        f"{base}/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={"accept": "application/json, text/event-stream"},
    )
    assert mcp.status_code == 200
    assert _limited(anon.post(f"{base}/search", json=QUERY)) == 60
    clock.now += 45
    assert _limited(anon.post(f"{base}/chat/completions", json=CHAT)) == 15
    clock.now += 15  # the next window
    assert anon.post(f"{base}/search", json=QUERY).status_code == 200


def test_sliding_rate_limit_weighs_the_previous_window(anon, instance, clock):
    _, eid = instance(
        {"enabled": True, "rate_limit": {"requests": 3, "period_ms": 60000, "technique": "sliding"}}
    )
    url = f"/_public/{eid}/search"
    for _ in range(3):
        assert anon.post(url, json=QUERY).status_code == 200
    # the next window: 3 * (60 - t) / 60 + 0 + 1 <= 3 from t = 20 s on
    assert _limited(anon.post(url, json=QUERY)) == 80
    clock.now += 60  # a fixed window would allow 3 more here; the previous 3 still weigh 3
    assert _limited(anon.post(url, json=QUERY)) == 20  # at 20 s, 3 * 40/60 + 0 + 1 = 3
    clock.now += 30  # 3 * 30/60 = 1.5: one more fits (2.5), a second does not (3.5)
    assert anon.post(url, json=QUERY).status_code == 200
    assert _limited(anon.post(url, json=QUERY)) >= 1


def test_errors_before_the_limit_are_not_counted(anon, instance, clock):
    _, eid = instance(
        {"enabled": True, "rate_limit": {"requests": 1}, "search_endpoint": {"disabled": True}}
    )
    for _ in range(3):
        _err(anon.post(f"/_public/{eid}/search", json=QUERY), 401, 60008)
        _err(anon.post(f"/_public/{eid}/nope", json=QUERY), 404, 60006)
    assert anon.post(f"/_public/{eid}/chat/completions", json=CHAT).status_code == 200
    _limited(anon.post(f"/_public/{eid}/chat/completions", json=CHAT))


# -- CORS -------------------------------------------------------------------------------------


def _preflight(anon: httpx.Client, url: str, origin: str) -> httpx.Response:
    return anon.options(
        url,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )


def test_cors_allows_exactly_the_authorized_hosts(anon, instance):
    _, eid = instance(
        {"enabled": True, "authorized_hosts": ["https://docs.example.com", "shop.example.org"]}
    )
    url = f"/_public/{eid}/search"
    for origin in ("https://docs.example.com", "http://shop.example.org:8080"):
        pre = _preflight(anon, url, origin)
        assert pre.status_code == 204
        assert pre.headers["access-control-allow-origin"] == origin
        assert "POST" in pre.headers["access-control-allow-methods"]
        assert "content-type" in pre.headers["access-control-allow-headers"]
        r = anon.post(url, json=QUERY, headers={"Origin": origin, "Sec-Fetch-Site": "cross-site"})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == origin
        assert r.headers["vary"] == "Origin"
    for origin in (
        "https://evil.example",
        "http://docs.example.com",  # another scheme than the listed origin
        "https://docs.example.com.evil.example",
        "null",
    ):
        pre = _preflight(anon, url, origin)
        assert pre.status_code == 403
        assert "access-control-allow-origin" not in pre.headers
        r = anon.post(url, json=QUERY, headers={"Origin": origin})
        assert _err(r, 403, 10000).startswith("Origin")
        assert "access-control-allow-origin" not in r.headers
    # a cross-site request without Origin is refused too; non-browser clients send neither
    _err(anon.post(url, json=QUERY, headers={"Sec-Fetch-Site": "cross-site"}), 403, 10000)
    assert "access-control-allow-origin" not in anon.post(url, json=QUERY).headers


def test_cors_defaults_to_any_origin_and_headers_reach_errors_and_streams(anon, instance):
    _, eid = instance()
    origin = {"Origin": "https://anywhere.example"}
    r = anon.post(f"/_public/{eid}/search", json=QUERY, headers=origin)
    assert r.headers["access-control-allow-origin"] == "*"
    r = anon.post(f"/_public/{eid}/search", json={"query": 3}, headers=origin)
    assert r.status_code == 400
    assert r.headers["access-control-allow-origin"] == "*"
    with anon.stream(
        "POST", f"/_public/{eid}/chat/completions", json={**CHAT, "stream": True}, headers=origin
    ) as s:
        assert s.headers["access-control-allow-origin"] == "*"


def test_wildcard_subdomains_and_website_default(anon, instance):
    _, eid = instance({"enabled": True, "authorized_hosts": ["*.example.com"]})
    url = f"/_public/{eid}/search"
    assert _preflight(anon, url, "https://a.b.example.com").status_code == 204
    assert _preflight(anon, url, "https://example.com").status_code == 403
    assert _preflight(anon, url, "https://badexample.com").status_code == 403


def test_management_api_stays_guarded(server, anon):
    # a page of another origin cannot use the management API, public endpoints or not
    r = anon.post(
        f"/client/v4/accounts/{server.account_id}/ai-search/instances",
        json={"id": "from-a-page"},
        headers={"Origin": "https://evil.example", "Authorization": "Bearer admin-token"},
    )
    assert r.status_code == 403
    assert r.json()["result"] is None  # the REST envelope


def test_the_perimeter_answers_public_paths_in_their_envelope(anon, instance):
    _, eid = instance()
    r = anon.post(
        f"/_public/{eid}/search", content=json.dumps(QUERY), headers={"content-type": "text/plain"}
    )
    assert r.status_code == 415
    assert r.json() == {
        "success": False,
        "errors": [r.json()["errors"][0]],
        "result": {},
    }
    r = anon.post(f"/_public/{eid}/search", json=QUERY, headers={"Host": "evil.example"})
    assert r.status_code == 403
    assert r.json()["result"] == {}


def test_injected_faults_apply_to_public_instance_routes(server, anon, instance):
    iid, eid = instance()
    server.set_fault(iid, status=503, retry_after=2, times=1)
    r = anon.post(f"/_public/{eid}/search", json=QUERY)
    assert _err(r, 503, 7017) == "injected fault: HTTP 503"
    assert r.headers["retry-after"] == "2"
    assert anon.post(f"/_public/{eid}/search", json=QUERY).status_code == 200


# -- a web page cannot reach the management API through /_public ------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/_public/%2e%2e/client/v4/accounts/{a}/ai-search/instances",
        "/_public/{e}/..%2f..%2fclient%2fv4%2faccounts%2f{a}%2fai-search%2finstances",
        "/_public/{e}/%2e%2e/%2e%2e/client/v4/accounts/{a}/ai-search/instances",
        "/_public/..%2fclient%2fv4%2faccounts%2f{a}%2fai-search%2finstances",
    ],
)
def test_a_cross_site_page_cannot_reach_the_management_api_through_public(
    server, admin, instance, path
):
    """The perimeter lets ``/_public/...`` through without its Origin check (each endpoint's
    ``authorized_hosts`` decide there); whatever the path holds, only the public app answers."""
    _, eid = instance()
    before = {i["id"] for i in _ok(admin.get("/ai-search/instances"))}
    url = f"http://127.0.0.1:{server.port}" + path.format(a=server.account_id, e=eid)
    r = httpx.post(
        url,
        json={"id": "evil-one"},
        headers={"origin": "https://evil.example", "sec-fetch-site": "cross-site"},
    )
    assert r.status_code in (403, 404), r.text
    assert r.json()["result"] == {}  # the public envelope: the public app answered
    assert {i["id"] for i in _ok(admin.get("/ai-search/instances"))} == before


def test_search_for_agents_well_known_search_is_not_served(anon, admin, instance, namespace):
    """API.md 18.4: one secondary source only; a documented local choice (public-endpoints.md)."""
    _, eid = instance()
    r = anon.get(f"/_public/{eid}/.well-known/search", params={"q": "espresso"})
    _err(r, 404, 60006)
    nid = _enable_ns(admin, namespace())
    _err(anon.get(f"/_public/ns-{nid}/.well-known/search", params={"q": "x"}), 404, 60014)


@pytest.mark.parametrize("segment", ["a%0Ab", "%0A", "x%0D%0Ay"])
def test_a_path_the_public_mount_cannot_match_gets_the_public_404(anon, segment):
    """A line break in the path can escape the mount's pattern; the answer is still a public 404."""
    for path in (f"/_public/{segment}/search", f"/_public/{segment}"):
        r = anon.post(path, json=QUERY)
        assert r.status_code == 404, r.text
        doc = r.json()
        assert doc["success"] is False and doc["result"] == {}, doc  # the public envelope
        assert 60000 < doc["errors"][0]["code"] < 60100, doc


def test_a_custom_domain_belongs_to_one_endpoint(admin, instance, namespace):
    """Two objects claiming one domain would serve whichever comes first: the second is refused."""
    domain = f"d{uuid.uuid4().hex[:8]}.example.com"
    iid, _ = instance({"enabled": True, "custom_domains": [domain]})
    taken = f"is already a custom domain of instance 'default/{iid}'"
    # another instance, on create and on update; a namespace, on update
    r = admin.post(
        "/ai-search/instances",
        json={
            "id": f"x-{uuid.uuid4().hex[:8]}",
            "public_endpoint_params": {"custom_domains": [domain]},
        },
    )
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == 7001, r.text
    assert taken in r.json()["errors"][0]["message"]
    other, _ = instance()
    r = admin.put(
        f"/ai-search/instances/{other}",
        json={"public_endpoint_params": {"enabled": True, "custom_domains": [domain]}},
    )
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == 7001, r.text
    assert taken in r.json()["errors"][0]["message"]
    ns = namespace()
    r = admin.put(
        f"/ai-search/namespaces/{ns}",
        json={"public_endpoint_params": {"enabled": True, "custom_domains": [domain]}},
    )
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == 7001, r.text
    assert taken in r.json()["errors"][0]["message"]
    # the owner may write its own domain again
    r = admin.put(
        f"/ai-search/instances/{iid}",
        json={"public_endpoint_params": {"enabled": True, "custom_domains": [domain]}},
    )
    assert r.status_code == 200, r.text
