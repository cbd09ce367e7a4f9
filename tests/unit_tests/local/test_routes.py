"""The route table's order: the query routes come first, and that changes which route answers
no request (Starlette takes the first route that matches)."""

from __future__ import annotations

import itertools
import re

from starlette.routing import Match, Route

from aisearch_local.app import _query_routes, _routes


def _candidate_paths(route: Route) -> list[str]:
    """Paths of ``route``: each parameter set to every literal segment of the table, or "x"."""
    table = _routes()
    literals = {seg for r in table for seg in r.path.split("/") if seg and "{" not in seg}
    values = sorted(literals | {"x"})
    params = re.findall(r"{[^}]+}", route.path)
    out = []
    for combo in itertools.product(values, repeat=len(params)):
        path = route.path
        for name, value in zip(params, combo, strict=True):
            path = path.replace(name, value, 1)
        out.append(path)
    return out


def _full_matches(routes: list[Route], method: str, path: str) -> list[Route]:
    scope = {"type": "http", "method": method, "path": path, "root_path": ""}
    return [r for r in routes if r.matches(scope)[0] == Match.FULL]


def test_the_query_routes_come_first_and_share_no_path():
    table = _routes()
    hot = _query_routes("/client/v4/accounts/{account_id}/ai-search") + _query_routes(
        "/client/v4/accounts/{account_id}/ai-search/namespaces/{ns}"
    )
    assert [r.path for r in table[: len(hot)]] == [r.path for r in hot]
    for route in table[: len(hot)]:
        (method,) = route.methods - {"HEAD"} if route.methods else ()
        for path in _candidate_paths(route):
            matched = _full_matches(table, method, path)
            assert matched == [route], (method, path, [r.path for r in matched])


def test_the_check_sees_a_shared_path():
    """The check above can fail: a route shadowed by one before it is found."""
    table = _routes()
    shadow = Route("/client/v4/accounts/{account_id}/ai-search/{x}/{y}/search", lambda r: None)
    shadow.methods = {"POST"}
    found = _full_matches(
        [shadow, *table], "POST", "/client/v4/accounts/a/ai-search/instances/i/search"
    )
    assert len(found) == 2
