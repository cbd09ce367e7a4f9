"""Namespaces, instances (update, stats), jobs, items (upload, chunks, pagination), waiting."""

from __future__ import annotations

import inspect
import json
from datetime import datetime, timezone

import httpx
import pytest

from aisearch import (
    AISearchClient,
    APIResponseValidationError,
    AsyncAISearchClient,
    BadRequestError,
    ConflictError,
    IndexingError,
    IndexingTimeoutError,
    Instance,
    InstanceStats,
    InvalidRequestError,
    Item,
    ItemChunk,
    Job,
    JobLog,
    Namespace,
    NotFoundError,
    RateLimitError,
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
    assert message in h.rejects("create_instance", "docs", **config)


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
    assert message in h.rejects("list_items", "docs", **kwargs)


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
            ("docs", "a.md", b"x" * (10 * 1024 * 1024 + 1)),
            {},
            "content: must be at most 10485760 bytes (10 MiB) (got 10485761)",
        ),
        (
            ("docs", "page.html", b"x" * (4 * 1024 * 1024 + 1)),
            {},
            "content: must be at most 4194304 bytes (4 MiB) for 'page.html': 10 MiB applies to "
            "plain text, code and PDFs only (got 4194305)",
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
    assert message in h.rejects("upload_item", *args, **kwargs)


def test_create_or_update_get_delete_item(harness):
    h = harness(fixed(envelope(item("i-1", status="running"))))
    result = h.call("create_or_update_item", "docs", "guide.md", wait_for_completion=True)
    assert result.status == "running"
    assert h.last.method == "PUT"
    assert str(h.last.url) == f"{ROOT}/default/instances/docs/items"
    assert body_of(h.last) == {
        "key": "guide.md",
        "next_action": "INDEX",
        "wait_for_completion": True,
    }
    h.call("get_item", "docs", "i.1~x")
    assert h.last.url.raw_path.decode().endswith("/instances/docs/items/i.1~x")
    h.call("delete_item", "docs", "i.1~x")
    assert h.last.method == "DELETE"
    with pytest.raises(InvalidRequestError, match="item_id: must be 1 to 128 characters"):
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
    monkeypatch.setattr("time.monotonic", c.monotonic)
    monkeypatch.setattr("aisearch._sync._management.time.monotonic", c.monotonic)
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
    assert message in h.rejects("wait_until_indexed", "docs", **kwargs)


# --------------------------------------------------------------------------- instance update


@pytest.mark.parametrize(("namespace", "ns_path"), [(None, "default"), ("team-a", "team-a")])
def test_update_instance_sends_only_the_given_fields(harness, namespace, ns_path):
    updated = {"id": "docs", "namespace": ns_path, "chunk_overlap": 20, "paused": True}
    h = harness(fixed(envelope(updated)))
    inst = h.call(
        "update_instance",
        "docs",
        namespace=namespace,
        chunk_overlap=20,
        paused=True,
        retrieval_options={"keyword_match_mode": "or"},
    )
    assert isinstance(inst, Instance)
    assert (inst.id, inst.namespace, inst.chunk_overlap, inst.paused) == (
        "docs",
        ns_path,
        20,
        True,
    )
    assert (h.last.method, str(h.last.url)) == ("PUT", f"{ROOT}/{ns_path}/instances/docs")
    assert body_of(h.last) == {
        "chunk_overlap": 20,
        "paused": True,
        "retrieval_options": {"keyword_match_mode": "or"},
    }


@pytest.mark.parametrize(
    ("args", "fields", "message"),
    [
        (("docs",), {}, "fields: pass at least one configuration field to update"),
        (("docs",), {"id": "other"}, "id: pass the instance id as the instance_id argument"),
        (("docs",), {"type": "r2"}, "type: cannot be updated"),
        (("docs",), {"hybrid_search_enabled": True}, "hybrid_search_enabled: cannot be updated"),
        (("docs",), {"chunk_overlap": 31}, "chunk_overlap: must be between 0 and 30 (got 31)"),
        (("docs",), {"chunk_overlap": True}, "chunk_overlap: must be between 0 and 30"),
        (("docs",), {"max_num_results": 51}, "max_num_results: must be between 1 and 50"),
        (("docs",), {"score_threshold": -0.1}, "score_threshold: must be between 0 and 1"),
        (("docs",), {"sync_interval": 5}, "sync_interval: must be one of 900, 1800"),
        (("Docs",), {"paused": True}, "instance_id: must be 1 to 64"),
    ],
)
def test_update_instance_bad_arguments_send_nothing(harness, args, fields, message):
    h = harness(fixed(envelope({"id": "docs"})))
    assert message in h.rejects("update_instance", *args, **fields)


def test_update_instance_server_rejection_is_bad_request(harness):
    h = harness(
        fixed(error_body(7001, "chunk_size: must be an integer between 16 and 4096"), 400),
        max_retries=0,
    )
    with pytest.raises(BadRequestError, match="chunk_size") as info:
        h.call("update_instance", "docs", chunk_size=8)
    assert info.value.status_code == 400
    assert body_of(h.last) == {"chunk_size": 8}


def test_update_unknown_instance_is_not_found(harness):
    h = harness(fixed(error_body(7002, "instance 'gone' not found"), 404), max_retries=0)
    with pytest.raises(NotFoundError, match="not found"):
        h.call("update_instance", "gone", paused=True)


# --------------------------------------------------------------------------- stats

# API.md section 10 "Stats response", every documented member present.
STATS = {
    "queued": 1,
    "running": 2,
    "completed": 40,
    "error": 3,
    "skipped": 4,
    "outdated": 0,
    "last_activity": "2026-08-01T10:00:00.000Z",
    "degraded": False,
    "file_embed_errors": {"bad.pdf": "unreadable"},
    "index_source_errors": {},
    "engine": {
        "vectorize": {"dimensions": 768, "vectorsCount": 512},
        "r2": {"metadataSizeBytes": 10, "objectCount": 50, "payloadSizeBytes": 2048},
    },
    "future_field": "kept",
}


@pytest.mark.parametrize(("namespace", "ns_path"), [(None, "default"), ("team-a", "team-a")])
def test_instance_stats_is_typed(harness, namespace, ns_path):
    h = harness(fixed(envelope(STATS)))
    stats = h.call("instance_stats", "docs", namespace=namespace)
    assert isinstance(stats, InstanceStats)
    assert (h.last.method, str(h.last.url)) == ("GET", f"{ROOT}/{ns_path}/instances/docs/stats")
    assert (
        stats.queued,
        stats.running,
        stats.completed,
        stats.error,
        stats.skipped,
        stats.outdated,
    ) == (1, 2, 40, 3, 4, 0)
    assert stats.total == 50
    assert stats.last_activity == datetime(2026, 8, 1, 10, 0, tzinfo=timezone.utc)
    assert stats.degraded is False
    assert stats.file_embed_errors == {"bad.pdf": "unreadable"}
    assert stats.engine.vectorize.dimensions == 768
    assert stats.engine.vectorize.vectors_count == 512
    assert (
        stats.engine.r2.metadata_size_bytes,
        stats.engine.r2.object_count,
        stats.engine.r2.payload_size_bytes,
    ) == (10, 50, 2048)
    assert stats.future_field == "kept"
    assert stats.model_dump(by_alias=True)["engine"]["vectorize"]["vectorsCount"] == 512


def test_degraded_stats_keep_missing_counts_as_none(harness):
    h = harness(fixed(envelope({"degraded": True, "completed": 5})))
    stats = h.call("instance_stats", "docs")
    assert stats.degraded is True
    assert (stats.queued, stats.completed, stats.engine) == (None, 5, None)
    assert stats.total == 5


def test_stats_with_a_bad_body_is_a_validation_error(harness):
    h = harness(fixed(envelope({"completed": "many"})))
    with pytest.raises(APIResponseValidationError, match="stats response body: completed"):
        h.call("instance_stats", "docs")


# --------------------------------------------------------------------------- jobs

# API.md section 10 "Jobs" shape.
JOB = {
    "id": "job-1",
    "source": "user",
    "description": "nightly",
    "started_at": "2026-08-01T10:00:00.000Z",
    "ended_at": None,
    "last_seen_at": "2026-08-01T10:00:05.000Z",
    "end_reason": None,
}


@pytest.mark.parametrize(("namespace", "ns_path"), [(None, "default"), ("team-a", "team-a")])
def test_create_job(harness, namespace, ns_path):
    h = harness(fixed(envelope(JOB)))
    job = h.call("create_job", "docs", description="nightly", namespace=namespace)
    assert isinstance(job, Job)
    assert (job.id, job.source, job.description, job.ended_at) == (
        "job-1",
        "user",
        "nightly",
        None,
    )
    assert job.started_at == "2026-08-01T10:00:00.000Z"
    assert (h.last.method, str(h.last.url)) == ("POST", f"{ROOT}/{ns_path}/instances/docs/jobs")
    assert body_of(h.last) == {"description": "nightly"}


def test_create_job_without_description_sends_an_empty_object(harness):
    h = harness(fixed(envelope(JOB)))
    h.call("create_job", "docs")
    assert body_of(h.last) == {}


def test_create_job_bad_arguments_send_nothing(harness):
    h = harness(fixed(envelope(JOB)))
    with pytest.raises(InvalidRequestError, match="description: must be a string"):
        h.call("create_job", "docs", description=3)
    with pytest.raises(InvalidRequestError, match="instance_id:"):
        h.call("create_job", "Bad Id")
    assert h.requests == []


def test_create_job_in_cooldown_is_rate_limited(harness):
    h = harness(fixed(error_body(7020, "sync_in_cooldown"), 429), max_retries=0)
    with pytest.raises(RateLimitError, match="sync_in_cooldown") as info:
        h.call("create_job", "docs")
    assert info.value.status_code == 429


def test_list_jobs_fetches_every_page(harness):
    pages = [[{**JOB, "id": f"job-{n}"} for n in range(100)], [{**JOB, "id": "job-last"}]]
    h = harness(paged_handler(pages))
    jobs = h.call("list_jobs", "docs", namespace="team-a")
    assert len(jobs) == 101 and jobs[-1].id == "job-last"
    assert all(isinstance(j, Job) for j in jobs)
    assert [int(r.url.params["page"]) for r in h.requests] == [1, 2]
    assert h.last.url.params["per_page"] == "100"
    assert h.last.url.path.endswith("/namespaces/team-a/instances/docs/jobs")


@pytest.mark.parametrize(("namespace", "ns_path"), [(None, "default"), ("team-a", "team-a")])
def test_get_and_cancel_job(harness, namespace, ns_path):
    ended = {**JOB, "ended_at": "2026-08-01T10:01:00.000Z", "end_reason": "cancelled"}
    h = harness(fixed(envelope(ended)))
    job = h.call("get_job", "docs", "job.1", namespace=namespace)
    assert (job.end_reason, job.ended_at) == ("cancelled", "2026-08-01T10:01:00.000Z")
    assert h.last.method == "GET"
    assert h.last.url.raw_path.decode() == (
        f"/client/v4/accounts/{ACCOUNT}/ai-search/namespaces/{ns_path}/instances/docs/jobs/job.1"
    )
    cancelled = h.call("cancel_job", "docs", "job-1", namespace=namespace)
    assert isinstance(cancelled, Job) and cancelled.end_reason == "cancelled"
    assert (h.last.method, str(h.last.url)) == (
        "PATCH",
        f"{ROOT}/{ns_path}/instances/docs/jobs/job-1",
    )
    assert body_of(h.last) == {"action": "cancel"}


@pytest.mark.parametrize("method", ["get_job", "cancel_job", "job_logs"])
@pytest.mark.parametrize("job_id", ["", None, 7])
def test_bad_job_id_sends_nothing(harness, method, job_id):
    h = harness(fixed(envelope(JOB)))
    with pytest.raises(InvalidRequestError, match="job_id: must be 1 to 128 characters"):
        h.call(method, "docs", job_id)
    assert h.requests == []


def test_unknown_job_is_not_found(harness):
    h = harness(fixed(error_body(7002, "job 'nope' not found"), 404), max_retries=0)
    with pytest.raises(NotFoundError, match="job 'nope' not found"):
        h.call("get_job", "docs", "nope")
    with pytest.raises(NotFoundError):
        h.call("cancel_job", "docs", "nope")


def test_job_logs_are_typed_and_paginated(harness):
    # API.md section 10 "job logs" shape.
    logs = [
        {"id": n, "created_at": 1754042400.5 + n, "message": f"line {n}", "message_type": 1}
        for n in range(1, 102)
    ]
    h = harness(paged_handler([logs[:100], logs[100:]]))
    got = h.call("job_logs", "docs", "job-1", namespace="team-a")
    assert all(isinstance(line, JobLog) for line in got)
    assert [line.id for line in got] == list(range(1, 102))
    assert (got[0].message, got[0].message_type, got[0].created_at) == ("line 1", 1, 1754042401.5)
    assert [int(r.url.params["page"]) for r in h.requests] == [1, 2]
    assert h.last.url.path.endswith("/namespaces/team-a/instances/docs/jobs/job-1/logs")


def test_job_log_without_an_id_is_a_validation_error(harness):
    h = harness(fixed(envelope([{"message": "x"}], result_info={"total_count": 1})))
    with pytest.raises(APIResponseValidationError, match="list response body"):
        h.call("job_logs", "docs", "job-1")


# --------------------------------------------------------------------------- item sync and chunks


@pytest.mark.parametrize(("namespace", "ns_path"), [(None, "default"), ("team-a", "team-a")])
def test_sync_item(harness, namespace, ns_path):
    h = harness(fixed(envelope(item("i-1", status="queued"))))
    got = h.call("sync_item", "docs", "i.1~x", wait_for_completion=True, namespace=namespace)
    assert isinstance(got, Item) and got.status == "queued"
    assert h.last.method == "PATCH"
    assert h.last.url.raw_path.decode().endswith(
        f"/namespaces/{ns_path}/instances/docs/items/i.1~x"
    )
    assert body_of(h.last) == {"next_action": "INDEX", "wait_for_completion": True}
    h.call("sync_item", "docs", "i1")
    assert body_of(h.last) == {"next_action": "INDEX", "wait_for_completion": False}


def test_sync_item_bad_arguments_send_nothing(harness):
    h = harness(fixed(envelope(item("i1"))))
    with pytest.raises(InvalidRequestError, match="wait_for_completion: must be true or false"):
        h.call("sync_item", "docs", "i1", wait_for_completion="yes")
    with pytest.raises(InvalidRequestError, match="item_id: must be 1 to 128 characters"):
        h.call("sync_item", "docs", "")
    assert h.requests == []


# API.md section 10 "chunks" shape.
CHUNKS = [
    {
        "id": "c0",
        "text": "First part.",
        "item": {"key": "guide.md", "metadata": {"folder": "docs/"}, "timestamp": 1735689600},
        "start_byte": 0,
        "end_byte": 11,
    },
    {
        "id": "c1",
        "text": "Second part.",
        "item": {"key": "guide.md", "metadata": None},
        "start_byte": 12,
        "end_byte": 24,
        "extra": 1,
    },
]


@pytest.mark.parametrize(("namespace", "ns_path"), [(None, "default"), ("team-a", "team-a")])
def test_list_item_chunks(harness, namespace, ns_path):
    h = harness(fixed(envelope(CHUNKS)))
    chunks = h.call("list_item_chunks", "docs", "i.1~x", limit=2, offset=4, namespace=namespace)
    assert all(isinstance(c, ItemChunk) for c in chunks)
    assert [(c.id, c.text, c.start_byte, c.end_byte) for c in chunks] == [
        ("c0", "First part.", 0, 11),
        ("c1", "Second part.", 12, 24),
    ]
    assert chunks[0].item.key == "guide.md"
    assert chunks[0].item.metadata == {"folder": "docs/"}
    assert chunks[0].item.timestamp == 1735689600
    assert chunks[1].item.metadata == {}  # null means absent
    assert chunks[1].extra == 1
    assert h.last.method == "GET"
    assert (
        h.last.url.raw_path.decode()
        .split("?")[0]
        .endswith(f"/namespaces/{ns_path}/instances/docs/items/i.1~x/chunks")
    )
    assert dict(h.last.url.params) == {"limit": "2", "offset": "4"}


def test_list_item_chunks_defaults(harness):
    h = harness(fixed(envelope([])))
    assert h.call("list_item_chunks", "docs", "i1") == []
    assert dict(h.last.url.params) == {"limit": "20", "offset": "0"}
    assert len(h.requests) == 1  # one page, never paginated


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": 0}, "limit: must be an integer between 1 and 100 (got 0)"),
        ({"limit": 101}, "limit: must be an integer between 1 and 100 (got 101)"),
        ({"limit": True}, "limit: must be an integer between 1 and 100 (got True)"),
        ({"limit": "5"}, "limit: must be an integer between 1 and 100 (got '5')"),
        ({"offset": -1}, "offset: must be an integer at least 0 (got -1)"),
        ({"offset": 1.5}, "offset: must be an integer at least 0 (got 1.5)"),
        ({"offset": None}, "offset: must be an integer at least 0 (got None)"),
    ],
)
def test_list_item_chunks_bad_arguments_send_nothing(harness, kwargs, message):
    h = harness(fixed(envelope(CHUNKS)))
    assert message in h.rejects("list_item_chunks", "docs", "i1", **kwargs)


@pytest.mark.parametrize(
    ("result", "message"),
    [
        ({"chunks": []}, "chunks response body: result is not a list"),
        ([{"text": "no id"}], "chunks response body: id: Field required"),
        ([{"id": None, "text": "null id"}], "chunks response body: id:"),
    ],
)
def test_list_item_chunks_bad_body(harness, result, message):
    h = harness(fixed(envelope(result)))
    with pytest.raises(APIResponseValidationError) as info:
        h.call("list_item_chunks", "docs", "i1")
    assert message in str(info.value)


def test_list_chunks_of_unknown_item_is_not_found(harness):
    h = harness(fixed(error_body(7002, "item 'x' not found"), 404), max_retries=0)
    with pytest.raises(NotFoundError, match="item 'x' not found"):
        h.call("list_item_chunks", "docs", "x")


@pytest.mark.parametrize(
    "name",
    [
        "update_instance",
        "instance_stats",
        "create_job",
        "list_jobs",
        "get_job",
        "cancel_job",
        "job_logs",
        "sync_item",
        "list_item_chunks",
    ],
)
def test_sync_and_async_methods_share_a_signature(name):
    sync_method = getattr(AISearchClient, name)
    async_method = getattr(AsyncAISearchClient, name)
    assert not inspect.iscoroutinefunction(sync_method)
    assert inspect.iscoroutinefunction(async_method)
    assert inspect.signature(sync_method) == inspect.signature(async_method)
    assert "namespace" in inspect.signature(sync_method).parameters


def _get_or_create(existing: dict, code: int = 7009):
    """A handler: a POST answers 409 with ``code``; a GET answers ``existing``."""

    def handler(request):
        if request.method == "POST":
            return httpx.Response(409, json=error_body(code, "already exists"))
        return httpx.Response(200, json=envelope(existing))

    return handler


@pytest.mark.parametrize(
    ("method", "existing", "post", "get"),
    [
        ("create_instance", {"id": "docs"}, f"{ROOT}/default/instances", "/default/instances/docs"),
        ("create_namespace", {"name": "docs"}, ROOT, "/docs"),
    ],
)
def test_exist_ok_gets_the_existing_one_without_retrying(harness, method, existing, post, get):
    h = harness(_get_or_create(existing), max_retries=3)
    got = h.call(method, "docs", exist_ok=True)
    assert isinstance(got, Instance if method == "create_instance" else Namespace)
    assert [(r.method, str(r.url)) for r in h.requests] == [("POST", post), ("GET", ROOT + get)]
    assert h.sleeps == []
    h = harness(_get_or_create(existing), max_retries=3)
    with pytest.raises(ConflictError) as info:
        h.call(method, "docs")
    assert info.value.code == 7009
    assert len(h.requests) == 1 and h.sleeps == []


@pytest.mark.parametrize("method", ["create_instance", "create_namespace"])
def test_exist_ok_does_not_swallow_other_conflicts(harness, method):
    h = harness(_get_or_create({}, code=7099), max_retries=1)
    with pytest.raises(ConflictError) as info:
        h.call(method, "docs", exist_ok=True)
    assert info.value.code == 7099
    assert [r.method for r in h.requests] == ["POST", "POST"]  # retried, never read


@pytest.mark.parametrize("method", ["create_instance", "create_namespace"])
def test_exist_ok_must_be_a_bool(harness, method):
    h = harness(_get_or_create({}))
    assert (
        h.rejects(method, "docs", exist_ok="yes") == "exist_ok: must be true or false (got 'yes')"
    )
