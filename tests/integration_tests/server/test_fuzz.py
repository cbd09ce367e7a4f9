"""Hypothesis fuzzing of every route of aisearch_local over real HTTP (bounded, seeded).

A few hundred requests with hostile bodies, path ids and query parameters (see ``_fuzz``):
no answer may be a 5xx, every error must be the Cloudflare envelope, and afterwards every read
route over every stored namespace, instance, item and job must still answer 2xx. The longer run
is ``benchmarks/fuzz_server.py`` (``make fuzz``).
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings

from aisearch_local.testing import LocalServer
from tests.integration_tests.server._fuzz import (
    ROUTES,
    FuzzRequest,
    Target,
    check_response,
    fuzz_requests,
    read_everything,
    send,
    setup_target,
)

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalServer, Target]]:
    with LocalServer(data_dir=tmp_path_factory.mktemp("fuzz-data"), token="fuzz-token") as server:
        yield server, setup_target(server, tmp_path_factory.mktemp("fuzz-source"))


class _Conn:
    """The keep-alive connection of the run (a dropped one is reopened once per request)."""

    conn: http.client.HTTPConnection | None = None


def _send(server: LocalServer, req: FuzzRequest) -> tuple[int, dict[str, str], bytes]:
    for _ in range(2):
        if _Conn.conn is None:
            _Conn.conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
        try:
            return send(_Conn.conn, req, server.headers)
        except (ConnectionError, http.client.HTTPException):
            _Conn.conn.close()
            _Conn.conn = None
    raise AssertionError(f"the server dropped the connection twice on {req.describe()}")


def test_route_table_is_covered():
    # the strategy draws from the app's own route table: every route and method is in it
    methods = {m for m, _ in ROUTES}
    assert {"GET", "POST", "PUT", "PATCH", "DELETE"} <= methods
    assert len(ROUTES) >= 50


def test_fuzz_every_route_no_5xx_and_envelopes(fuzz_server: tuple[LocalServer, Target]):
    server, target = fuzz_server
    seen: list[tuple[str, int]] = []

    @settings(
        max_examples=300,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(req=fuzz_requests(target))
    def run(req: FuzzRequest) -> None:
        status, headers, body = _send(server, req)
        seen.append((req.method, status))
        problem = check_response(status, headers, body)
        assert problem is None, f"{req.describe()}\n-> {problem}"

    try:
        run()
    finally:
        if _Conn.conn is not None:
            _Conn.conn.close()
            _Conn.conn = None
    assert len(seen) >= 250
    assert any(s == 400 for _, s in seen) and any(s < 300 for _, s in seen)
    calls, failures = read_everything(server)
    assert calls > 20
    assert failures == []
