"""Namespaces, instances, items (multipart upload, pagination) and wait_until_indexed."""

from __future__ import annotations

import json

import httpx
import pytest

from aisearch import (
    ConflictError,
    IndexingError,
    IndexingTimeoutError,
    Instance,
    InvalidRequestError,
    Item,
    Namespace,
)
from tests.unit_tests.core.conftest import body_of
from tests.unit_tests.core.payloads import ACCOUNT, BASE, envelope, error_body, item

ROOT = f"{BASE}/accounts/{ACCOUNT}/ai-search/namespaces"


def fixed(payload, status=200):
    return lambda request: httpx.Response(status, json=payload)


def test_namespace_crud(harness):
    h = harness(
        fixed(envelope({"name": "team-a", "description": "Team A", "created_at": "now"}), 201)
    )
    ns = h.call("create_namespace", "team-a", description="Team A")
    assert isinstance(ns, Namespace)
    assert (ns.name, ns.description, ns.created_at) == ("team-a", "Team A", "now")
    assert (h.last.method, str(h.last.url)) == ("POST", ROOT)
    assert body_of(h.last) == {"name": "team-a", "description": "Team A"}
    h.call("get_namespace", "team-a")
    assert (h.last.method, str(h.last.url)) == ("GET", f"{ROOT}/team-a")
    h2 = harness(fixed(envelope(None)))
    assert h2.call("delete_namespace", "team-a") is None
    assert (h2.last.method, str(h2.last.url)) == ("DELETE", f"{ROOT}/team-a")
    h3 = harness(
        fixed(
            envelope(
                [{"name": "default"}, {"name": "team-a"}],
                result_info={"page": 1, "per_page": 100, "count": 2, "total_count": 2},
            )
        )
    )
    assert [n.name for n in h3.call("list_namespaces")] == ["default", "team-a"]
    assert h3.last.url.params["page"] == "1" and h3.last.url.params["per_page"] == "100"


def test_namespace_bad_inputs(harness):
    h = harness(fixed(envelope({})))
    with pytest.raises(InvalidRequestError, match="name: must be 1 to 64"):
        h.call("create_namespace", "Bad Name")
    with pytest.raises(InvalidRequestError, match="description: must be a string of at most 256"):
        h.call("create_namespace", "ok", description="x" * 257)
    with pytest.raises(InvalidRequestError, match="name:"):
        h.call("get_namespace", "A")
    assert h.requests == []


def test_instance_crud(harness):
    created = {"id": "docs", "namespace": "default", "status": "waiting", "chunk_size": 512}
    h = harness(fixed(envelope(created), 201))
    inst = h.call(
        "create_instance",
        "docs",
        chunk_size=512,
        max_num_results=10,
        index_method={"vector": True, "keyword": True},
    )
    assert isinstance(inst, Instance)
    assert (inst.id, inst.namespace, inst.status, inst.chunk_size) == (
        "docs",
        "default",
        "waiting",
        512,
    )
    assert str(h.last.url) == f"{ROOT}/default/instances"
    assert body_of(h.last) == {
        "id": "docs",
        "chunk_size": 512,
        "max_num_results": 10,
        "index_method": {"vector": True, "keyword": True},
    }
    h.call("get_instance", "docs", namespace="team-a")
    assert (h.last.method, str(h.last.url)) == ("GET", f"{ROOT}/team-a/instances/docs")
    h.call("delete_instance", "docs")
    assert (h.last.method, str(h.last.url)) == ("DELETE", f"{ROOT}/default/instances/docs")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"max_num_results": 0}, "max_num_results: must be between 1 and 50 (got 0)"),
        ({"score_threshold": 1.2}, "score_threshold: must be between 0 and 1 (got 1.2)"),
        ({"chunk_overlap": 31}, "chunk_overlap: must be between 0 and 30 (got 31)"),
        ({"chunk_overlap": "10"}, "chunk_overlap: must be between 0 and 30"),
        ({"sync_interval": 60}, "sync_interval: must be one of 900, 1800, 3600"),
        ({"id": "x"}, "id: pass the instance id as the instance_id argument"),
    ],
)
def test_instance_config_bounds(harness, config, message):
    h = harness(fixed(envelope({"id": "docs"})))
    with pytest.raises(InvalidRequestError) as info:
        h.call("create_instance", "docs", **config)
    assert message in str(info.value)
    assert h.requests == []


def test_create_existing_instance_conflict(harness):
    h = harness(fixed(error_body(7009, "instance already exists"), 409), max_retries=0)
    with pytest.raises(ConflictError, match="already exists"):
        h.call("create_instance", "docs")


def paged_handler(pages, *, info_kind="total_count"):
    """Serve ``pages`` (lists of dicts) by the ``page`` query parameter."""
    total = sum(len(p) for p in pages)

    def handler(request):
        page = int(request.url.params["page"])
        per_page = int(request.url.params["per_page"])
        result = pages[page - 1] if page <= len(pages) else []
        info = {"page": page, "per_page": per_page, "count": len(result)}
        if info_kind == "total_count":
            info["total_count"] = total
        elif info_kind == "total_pages":
            info["total_pages"] = len(pages)
        body = envelope(result)
        if info_kind is not None:
            body["result_info"] = info
        return httpx.Response(200, json=body)

    return handler


@pytest.mark.parametrize("info_kind", ["total_count", "total_pages", None])
def test_list_items_fetches_every_page(harness, info_kind):
    pages = [[item(f"i{n}") for n in range(start, start + 50)] for start in (0, 50)] + [
        [item("i100")]
    ]
    h = harness(paged_handler(pages, info_kind=info_kind))
    items = h.call("list_items", "docs", metadata_filter={"folder": "docs/"}, status="completed")
    assert [i.id for i in items] == [f"i{n}" for n in range(101)]
    assert all(isinstance(i, Item) for i in items)
    assert [int(r.url.params["page"]) for r in h.requests] == [1, 2, 3]
    params = h.last.url.params
    assert params["per_page"] == "50"
    assert json.loads(params["metadata_filter"]) == {"folder": "docs/"}
    assert params["status"] == "completed"
    assert (
        h.last.url.path
        == f"/client/v4/accounts/{ACCOUNT}/ai-search/namespaces/default/instances/docs/items"
    )


def test_list_stops_on_an_empty_page(harness):
    pages = [[item(f"i{n}") for n in range(50)], []]
    h = harness(paged_handler(pages, info_kind=None))
    assert len(h.call("list_items", "docs")) == 50
    assert len(h.requests) == 2


def test_list_instances_paginates(harness):
    pages = [[{"id": f"inst{n}"} for n in range(100)], [{"id": "last"}]]
    h = harness(paged_handler(pages))
    assert len(h.call("list_instances", namespace="team-a")) == 101
    assert h.last.url.path.endswith("/namespaces/team-a/instances")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"status": "done"},
            "status: must be one of queued, running, completed, error, skipped, outdated (got "
            "'done')",
        ),
        (
            {"metadata_filter": {"a": {"$like": 1}}},
            "metadata_filter.a: unsupported operator '$like'",
        ),
    ],
)
def test_list_items_bad_inputs(harness, kwargs, message):
    h = harness(fixed(envelope([])))
    with pytest.raises(InvalidRequestError) as info:
        h.call("list_items", "docs", **kwargs)
    assert message in str(info.value)
    assert h.requests == []


def test_upload_item_is_multipart(harness):
    h = harness(fixed(envelope(item("i1", status="queued", key="guide.md"))))
    result = h.call(
        "upload_item",
        "docs",
        "guide.md",
        "# Guide\nCaf\u00e9",
        metadata={"folder": "docs/", "priority": 3},
        wait_for_completion=True,
        namespace="team-a",
    )
    assert (result.id, result.key, result.status, result.metadata) == (
        "i1",
        "guide.md",
        "queued",
        {"folder": "docs/"},
    )
    req = h.last
    assert req.method == "POST"
    assert str(req.url) == f"{ROOT}/team-a/instances/docs/items"
    ctype = req.headers["content-type"]
    assert ctype.startswith("multipart/form-data; boundary=")
    body = req.content
    assert b'name="file"; filename="guide.md"' in body
    assert "# Guide\nCaf\u00e9".encode() in body
    assert b'name="metadata"\r\n\r\n{"folder": "docs/", "priority": 3}\r\n' in body
    assert b'name="wait_for_completion"\r\n\r\ntrue\r\n' in body


def test_upload_bytes_without_metadata(harness):
    h = harness(fixed(envelope(item("i2"))))
    h.call("upload_item", "docs", "blob.bin", b"\x00\x01")
    body = h.last.content
    assert b"\x00\x01" in body
    assert b'name="metadata"' not in body
    assert b'name="wait_for_completion"\r\n\r\nfalse\r\n' in body
    assert b"Content-Type: application/octet-stream" in body


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("docs", "", "x"), {}, "key: must be a non-empty string of at most 128 characters"),
        (("docs", "k" * 129, "x"), {}, "key: must be a non-empty string of at most 128 characters"),
        (("docs", "a.md", 123), {}, "content: must be bytes or str (got int)"),
        (
            ("docs", "a.md", b"x" * (4 * 1024 * 1024 + 1)),
            {},
            "content: must be at most 4194304 bytes (4 MB) (got 4194305)",
        ),
        (("docs", "a.md", "x"), {"metadata": ["a"]}, "metadata: must be a mapping (got list)"),
        (
            ("docs", "a.md", "x"),
            {"metadata": {"a": object()}},
            "metadata: must be JSON-serialisable",
        ),
        (
            ("docs", "a.md", "x"),
            {"metadata": {"a": float("nan")}},
            "metadata: must be JSON-serialisable",
        ),
        (("Docs", "a.md", "x"), {}, "instance_id: must be 1 to 64"),
    ],
)
def test_upload_bad_inputs(harness, args, kwargs, message):
    h = harness(fixed(envelope(item("i1"))))
    with pytest.raises(InvalidRequestError) as info:
        h.call("upload_item", *args, **kwargs)
    assert message in str(info.value)
    assert h.requests == []


def test_create_or_update_get_delete_item(harness):
    h = harness(fixed(envelope(item("i/1", status="running"))))
    result = h.call("create_or_update_item", "docs", "guide.md", wait_for_completion=True)
    assert result.status == "running"
    assert h.last.method == "PUT"
    assert str(h.last.url) == f"{ROOT}/default/instances/docs/items"
    assert body_of(h.last) == {
        "key": "guide.md",
        "next_action": "INDEX",
        "wait_for_completion": True,
    }
    h.call("get_item", "docs", "i/1")
    assert h.last.url.raw_path.decode().endswith("/instances/docs/items/i%2F1")
    h.call("delete_item", "docs", "i/1")
    assert h.last.method == "DELETE"
    with pytest.raises(InvalidRequestError, match="item_id: must be a non-empty string"):
        h.call("get_item", "docs", "")


def test_item_error_field_is_text(harness):
    h = harness(fixed(envelope(item("i1", status="error", error={"code": 1, "msg": "bad pdf"}))))
    assert "bad pdf" in h.call("get_item", "docs", "i1").error


class Clock:
    """Fake monotonic clock advanced by the client's sleep."""

    def __init__(self):
        self.now = 1000.0

    def monotonic(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr("aisearch._base.time.monotonic", c.monotonic)
    monkeypatch.setattr("aisearch._management.time.monotonic", c.monotonic)
    return c


def advance_on_sleep(h, clock):
    if h.mode == "sync":

        def sleep(delay):
            h.sleeps.append(delay)
            clock.now += delay

    else:

        async def sleep(delay):
            h.sleeps.append(delay)
            clock.now += delay

    h.client._sleep = sleep


def status_sequence(*rounds):
    """Each round is a list of statuses for items i0..iN, served by GET items/{id}."""
    calls = {"n": 0}
    per_round = len(rounds[0])

    def handler(request):
        index = calls["n"] // per_round
        calls["n"] += 1
        statuses = rounds[min(index, len(rounds) - 1)]
        item_id = request.url.path.rsplit("/", 1)[1]
        return httpx.Response(200, json=envelope(item(item_id, status=statuses[int(item_id[1:])])))

    return handler


def test_wait_until_indexed_reports_progress_until_done(harness, clock):
    h = harness(
        status_sequence(["queued", "queued"], ["completed", "running"], ["completed", "skipped"])
    )
    advance_on_sleep(h, clock)
    progress = []
    items = h.call(
        "wait_until_indexed",
        "docs",
        ["i0", "i1"],
        timeout=10,
        poll_interval=0.25,
        on_progress=lambda d, t, its: progress.append((d, t, [i.status for i in its])),
    )
    assert [i.status for i in items] == ["completed", "skipped"]
    assert progress == [
        (0, 2, ["queued", "queued"]),
        (1, 2, ["completed", "running"]),
        (2, 2, ["completed", "skipped"]),
    ]
    assert h.sleeps == [0.25, 0.25]


def test_wait_until_indexed_times_out(harness, clock):
    h = harness(status_sequence(["running"]))
    advance_on_sleep(h, clock)
    with pytest.raises(
        IndexingTimeoutError, match=r"1 of 1 item\(s\) not indexed after 1 s"
    ) as info:
        h.call("wait_until_indexed", "docs", ["i0"], timeout=1.0, poll_interval=0.3)
    assert [i.id for i in info.value.items] == ["i0"]
    assert sum(h.sleeps) == pytest.approx(1.0)
    assert h.sleeps[-1] == pytest.approx(0.1)  # never sleeps past the deadline
    assert len(h.requests) == 5


def test_wait_until_indexed_raises_on_error_status(harness, clock):
    h = harness(status_sequence(["running", "running"], ["completed", "error"]))
    advance_on_sleep(h, clock)
    with pytest.raises(IndexingError, match="indexing failed for 1 item") as info:
        h.call("wait_until_indexed", "docs", ["i0", "i1"])
    assert [i.id for i in info.value.items] == ["i1"]


def test_wait_until_indexed_all_items_of_the_instance(harness, clock):
    rounds = iter(
        [
            [item("a", "queued"), item("b", "completed")],
            [item("a", "completed"), item("b", "completed")],
        ]
    )

    def handler(request):
        return httpx.Response(200, json=envelope(next(rounds), result_info={"total_count": 2}))

    h = harness(handler)
    advance_on_sleep(h, clock)
    items = h.call("wait_until_indexed", "docs")
    assert [i.status for i in items] == ["completed", "completed"]
    assert all(r.url.path.endswith("/instances/docs/items") for r in h.requests)


def test_wait_until_indexed_with_no_items_returns_at_once(harness, clock):
    h = harness(fixed(envelope([], result_info={"total_count": 0})))
    assert h.call("wait_until_indexed", "docs") == []
    assert h.sleeps == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timeout": 0}, "timeout: must be a positive number of seconds (got 0)"),
        ({"timeout": float("inf")}, "timeout: must be finite"),
        ({"poll_interval": -1}, "poll_interval: must be a positive number of seconds"),
        ({"poll_interval": "1"}, "poll_interval: must be a positive number"),
    ],
)
def test_wait_until_indexed_bad_arguments(harness, kwargs, message):
    h = harness(fixed(envelope([])))
    with pytest.raises(InvalidRequestError) as info:
        h.call("wait_until_indexed", "docs", **kwargs)
    assert message in str(info.value)
    assert h.requests == []
