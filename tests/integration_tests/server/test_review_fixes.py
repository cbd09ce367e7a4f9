"""Defects found by the adversarial review of the issue #11 hardening, over real HTTP.

* F1: a dot-segment id followed by a slash (``.../items/%2e%2e/``) was answered with a 307
  redirect to ``.../items/..`` by Starlette's router, before auth and the id checks; a client
  following redirects (curl -L, the official ``cloudflare`` SDK) then deleted the parent
  instance or namespace. The server never redirects now, and such paths answer 400 or 404.
* F3: request values bound to the OS (an instance ``source`` with a NUL byte or a too-long
  name) and a ``metadata`` multipart part sent as a file answered 500.
"""

from __future__ import annotations

import http.client
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from aisearch_local.testing import LocalServer

pytestmark = pytest.mark.timeout(300)

ACCOUNT = "/client/v4/accounts/local-account"
AIS = ACCOUNT + "/ai-search"


@pytest.fixture(scope="module")
def review_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with LocalServer(data_dir=tmp_path_factory.mktemp("review"), token="t") as server:
        yield server


def _raw(
    server: LocalServer,
    method: str,
    path: str,
    body: bytes = b"",
    ctype: str | None = "application/json",
) -> tuple[int, dict[str, str], dict[str, Any]]:
    """Send a request with http.client: the path goes on the wire exactly as given."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
    try:
        headers = {**server.headers, "content-length": str(len(body))}
        if ctype is not None:
            headers["content-type"] = ctype
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        resp_headers = {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()
    return resp.status, resp_headers, json.loads(data)


def _create(server: LocalServer, path: str, body: dict[str, Any], method: str = "POST") -> None:
    status, _, doc = _raw(server, method, path, json.dumps(body).encode())
    assert status in (200, 201), doc


def _exists(server: LocalServer, path: str) -> bool:
    status, _, _doc = _raw(server, "GET", path)
    return status == 200


# -- F1: never a redirect ---------------------------------------------------------------------


def _victims(server: LocalServer) -> tuple[str, str]:
    """A fresh namespace ``ns`` holding instance ``victim``; also ``victim`` in default."""
    ns = f"nsv{uuid.uuid4().hex[:6]}"
    _create(server, AIS + "/namespaces", {"name": ns})
    _create(server, AIS + f"/namespaces/{ns}/instances", {"id": "victim"})
    iid = f"victim{uuid.uuid4().hex[:6]}"
    _create(server, AIS + "/instances", {"id": iid})
    _create(server, "/client/v4/_local/faults/default/" + iid, {}, "PUT")
    return ns, iid


def _trailing_slash_cases(ns: str, iid: str) -> list[tuple[str, str, bytes]]:
    inst = AIS + f"/instances/{iid}"
    query = b'{"query": "x"}'
    cases = []
    for seg in ("%2e%2e/", "%2E%2E/", ".%2e/", "%2e/", "../", "./", "..%2F", "%2e%2e%2f"):
        cases += [
            ("DELETE", inst + "/items/" + seg, b""),
            ("GET", inst + "/items/" + seg, b""),
            ("PATCH", inst + "/jobs/" + seg, b"{}"),
            ("GET", inst + "/jobs/" + seg, b""),
            ("DELETE", AIS + f"/namespaces/{ns}/instances/" + seg, b""),
            ("DELETE", AIS + f"/namespaces/{ns}/instances/victim/items/" + seg, b""),
            ("DELETE", AIS + "/namespaces/" + seg, b""),
            ("DELETE", AIS + f"/instances/{seg}", b""),
            ("POST", ACCOUNT + f"/autorag/rags/{seg}search", query),
            ("POST", ACCOUNT + f"/autorag/rags/{iid}/{seg}", query),
            ("DELETE", f"/client/v4/_local/faults/default/{seg}", b""),
            ("DELETE", f"/client/v4/_local/faults/{seg}{iid}", b""),
        ]
    return cases


def test_a_dot_segment_id_with_a_trailing_slash_is_never_redirected(review_server):
    ns, iid = _victims(review_server)
    for method, path, body in _trailing_slash_cases(ns, iid):
        status, headers, doc = _raw(review_server, method, path, body)
        assert status in (400, 404), (method, path, status, doc)
        assert "location" not in headers, (method, path, headers)
        assert doc["success"] is False and doc["result"] is None, (method, path, doc)
        assert doc["errors"][0]["code"] in (7001, 7003), (method, path, doc)
    assert _exists(review_server, AIS + f"/instances/{iid}")
    assert _exists(review_server, AIS + f"/namespaces/{ns}")
    assert _exists(review_server, AIS + f"/namespaces/{ns}/instances/victim")


@pytest.mark.parametrize(
    "path",
    [
        AIS + "/instances/",
        AIS + "/namespaces/",
        AIS + "/namespaces/default/",
        AIS + "/namespaces/default/instances/",
        "/client/v4/_local/health/",
        AIS + "/no-such-route",
    ],
)
def test_an_unmatched_path_is_a_404_envelope_not_a_redirect(review_server, path):
    status, headers, doc = _raw(review_server, "GET", path)
    assert status == 404, (path, doc)
    assert "location" not in headers
    assert doc["success"] is False and doc["result"] is None
    assert doc["errors"][0]["code"] == 7003


@pytest.mark.parametrize("item_id", ["../", "./", "%2e%2e/", ".."])
def test_the_cloudflare_sdk_cannot_delete_a_parent_through_an_item_id(review_server, item_id):
    cloudflare = pytest.importorskip("cloudflare")
    iid = f"victim{uuid.uuid4().hex[:6]}"
    _create(review_server, AIS + "/namespaces/default/instances", {"id": iid})
    with cloudflare.Cloudflare(
        api_token=review_server.token, base_url=review_server.base_url, max_retries=0
    ) as cf:
        try:
            cf.aisearch.namespaces.instances.items.delete(
                item_id, account_id=review_server.account_id, name="default", id=iid
            )
        except cloudflare.APIStatusError as exc:
            assert exc.status_code in (400, 404)
        except ValueError as exc:  # the SDK refuses some dot segments itself, before sending
            assert "dot-segment" in str(exc)
        else:
            pytest.fail("the delete succeeded")
    assert _exists(review_server, AIS + f"/instances/{iid}")


# -- F3: OS-bound values are 400, never 500 ---------------------------------------------------


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        ("/tmp/x/\u0000", "null"),
        ("/tmp/x/" + "a/" * 3000, "source"),
        ("/tmp/" + "a" * 300, "source"),
        ("/\u0000", "null"),
    ],
)
@pytest.mark.parametrize("roots", [False, True])
def test_an_unusable_source_path_is_400_naming_source(
    review_server, tmp_path, source, needle, roots
):
    iid = f"src{uuid.uuid4().hex[:6]}"
    body = json.dumps({"id": iid, "source": source}).encode()
    if roots:  # as `aisearch-local serve` runs: source roots checked (Path.resolve)
        with LocalServer(data_dir=tmp_path, token="t", source_roots=[tmp_path]) as server:
            status, _, doc = _raw(server, "POST", AIS + "/instances", body)
    else:
        status, _, doc = _raw(review_server, "POST", AIS + "/instances", body)
    assert status == 400, doc
    message = doc["errors"][0]["message"]
    assert doc["errors"][0]["code"] == 7001 and message.startswith("source: "), doc
    assert needle in message.lower()


def _multipart(parts: list[tuple[str, str | None, str | None, bytes]]) -> tuple[bytes, str]:
    boundary = "b0undary" + uuid.uuid4().hex
    out = b""
    for name, filename, ctype, data in parts:
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{boundary}\r\nContent-Disposition: {disp}\r\n".encode()
        if ctype:
            out += f"Content-Type: {ctype}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


def test_metadata_sent_as_a_file_part_is_read_as_json(review_server):
    iid = f"meta{uuid.uuid4().hex[:6]}"
    _create(review_server, AIS + "/instances", {"id": iid})
    body, ctype = _multipart(
        [
            ("file", "a.md", "text/markdown", b"Espresso is brewed under pressure."),
            ("metadata", "m.json", "application/json", b'{"tag": "from-file"}'),
            ("wait_for_completion", None, None, b"true"),
        ]
    )
    status, _, doc = _raw(review_server, "POST", AIS + f"/instances/{iid}/items", body, ctype)
    assert status == 200, doc
    assert doc["result"]["metadata"] == {"tag": "from-file"}


@pytest.mark.parametrize(
    ("data", "needle"),
    [(b"\xff\xfe{}", "UTF-8"), (b"{not json", "metadata"), (b"[1, 2]", "metadata")],
)
def test_bad_metadata_file_part_is_400_naming_metadata(review_server, data, needle):
    iid = f"meta{uuid.uuid4().hex[:6]}"
    _create(review_server, AIS + "/instances", {"id": iid})
    body, ctype = _multipart(
        [
            ("file", "a.md", "text/markdown", b"Espresso is brewed under pressure."),
            ("metadata", "m.json", "application/json", data),
        ]
    )
    status, _, doc = _raw(review_server, "POST", AIS + f"/instances/{iid}/items", body, ctype)
    assert status == 400, doc
    message = doc["errors"][0]["message"]
    assert doc["errors"][0]["code"] == 7001 and message.startswith("metadata"), doc
    assert needle in message


# -- F4: a body's structure is bounded, not only its byte count -------------------------------


def test_a_body_of_millions_of_empty_arrays_is_400_before_parsing(review_server):
    iid = f"big{uuid.uuid4().hex[:6]}"
    _create(review_server, AIS + "/instances", {"id": iid})
    body = b'{"query": "x", "zz": [' + b",".join([b"[]"] * (15 * 1024 * 1024 // 3)) + b"]}"
    assert len(body) < 16 * 1024 * 1024  # under the search route's byte limit
    status, _, doc = _raw(review_server, "POST", AIS + f"/instances/{iid}/search", body)
    assert status == 400, doc
    message = doc["errors"][0]["message"]
    assert doc["errors"][0]["code"] == 7001 and message.startswith("request body: "), doc
    assert "arrays and objects" in message
    ok = json.dumps({"query": "coffee, " * 40_000}).encode()  # 40,000 commas: passes
    status, _, doc = _raw(review_server, "POST", AIS + f"/instances/{iid}/search", ok)
    assert status == 200, doc
