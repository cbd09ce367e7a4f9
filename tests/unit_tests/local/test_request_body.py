"""The perimeter leaves the body it read in the scope; the search route takes it from there."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aisearch_local.app import create_app
from aisearch_local.guard import BODY_KEY, Perimeter
from aisearch_local.service import LocalService

PATH = "/client/v4/accounts/a/ai-search/instances/docs/search"


def _asgi(
    app: Any, method: str, path: str, chunks: list[bytes]
) -> tuple[dict[str, Any], list[dict[str, Any]], int]:
    """Call ``app`` once; return the scope, the messages sent and how often receive ran."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8787"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8787),
    }
    pending = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent: list[dict[str, Any]] = []
    calls = 0

    async def receive() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if pending:
            return pending.pop(0)
        await asyncio.sleep(3600)  # no disconnect while the request is being answered
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return scope, sent, calls


class _Echo:
    def __init__(self) -> None:
        self.seen: list[tuple[Any, bytes]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        self.seen.append((scope.get(BODY_KEY), message.get("body", b"")))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def test_a_state_changing_request_leaves_its_body_in_the_scope() -> None:
    echo = _Echo()
    scope, sent, calls = _asgi(Perimeter(echo), "POST", PATH, [b'{"query":', b' "x"}'])
    assert sent[0]["status"] == 200
    assert calls == 2  # the two chunks, read once, by the perimeter
    # the body is both in the scope and replayed through receive, the same bytes
    assert echo.seen == [(b'{"query": "x"}', b'{"query": "x"}')]
    assert scope[BODY_KEY] == b'{"query": "x"}'


def test_a_get_leaves_no_body() -> None:
    echo = _Echo()
    scope, _, _ = _asgi(Perimeter(echo), "GET", "/client/v4/_local/health", [b""])
    assert BODY_KEY not in scope


def test_the_search_route_answers_from_the_body_in_the_scope(tmp_path: Any) -> None:
    svc = LocalService(tmp_path, embedder="hashing", generator="extractive")
    try:
        inst = svc.create_instance("default", {"id": "docs"})
        svc.index_document(inst, key="a.md", data=b"espresso grinder burr", metadata={})
        app = create_app(tmp_path, service=svc)
        body = json.dumps({"query": "espresso"}).encode()
        _, sent, calls = _asgi(app, "POST", PATH, [body[:5], body[5:]])
        assert sent[0]["status"] == 200
        answer = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
        assert answer["success"] is True
        assert answer["result"]["chunks"][0]["item"]["key"] == "a.md"
        assert calls == 2
    finally:
        svc.close()
