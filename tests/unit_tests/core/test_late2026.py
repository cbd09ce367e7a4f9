"""Late-2026 management API in the client (issue #14 sections 1-2), sync and async."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import httpx
import pytest

from aisearch import (
    APIStatusError,
    BadRequestError,
    ConflictError,
    RateLimitError,
)
from aisearch._exceptions import ERROR_CODE_STATUS, status_error_class
from aisearch._models import IndexingOptions, UploadWarning
from aisearch._params import item_limit
from tests.unit_tests.core.payloads import ACCOUNT, BASE, envelope, error_body

ROOT = f"{BASE}/accounts/{ACCOUNT}/ai-search/namespaces"


def fixed(payload, status=200):
    return lambda request: httpx.Response(status, json=payload)


def test_purge_cache_posts_without_a_body_on_the_namespaced_path(harness):
    h = harness(fixed({"success": True}))
    assert h.call("purge_cache", "docs") is None
    assert (h.last.method, str(h.last.url)) == (
        "POST",
        f"{ROOT}/default/instances/docs/purge_cache",
    )
    assert h.last.content == b""
    h.call("purge_cache", "docs", namespace="team-a")
    assert str(h.last.url) == f"{ROOT}/team-a/instances/docs/purge_cache"


# --------------------------------------------------------------------------- error codes


def sequence(*responses):
    """A handler answering each request with the next response of ``responses``."""
    pending = list(responses)

    def handler(request):
        return pending.pop(0) if len(pending) > 1 else pending[0]

    return handler


JOB = envelope({"id": "j1", "source": "user"})


def cooldown(retry_after=None):
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    body = {"success": False, "errors": [{"code": 7020, "message": "sync_in_cooldown"}]}
    return httpx.Response(429, json={**body, "messages": [], "result": {}}, headers=headers)


def test_sync_in_cooldown_honours_retry_after(harness):
    h = harness(sequence(cooldown("7"), httpx.Response(200, json=JOB)))
    assert h.call("create_job", "docs").id == "j1"
    assert h.sleeps == [7.0]
    assert len(h.requests) == 2


def test_sync_in_cooldown_without_retry_after_backs_off_then_raises(harness):
    h = harness(sequence(cooldown()), max_retries=1)
    with pytest.raises(RateLimitError) as info:
        h.call("create_job", "docs")
    assert (info.value.status_code, info.value.code, info.value.body["result"]) == (429, 7020, {})
    assert "sync_in_cooldown" in str(info.value)
    assert len(h.requests) == 2 and len(h.sleeps) == 1 and 0.375 <= h.sleeps[0] <= 0.5


def test_namespace_modified_concurrently_is_retried_already_exists_is_not(harness):
    busy = httpx.Response(409, json=error_body(7099, "namespace modified concurrently"))
    ns = envelope({"name": "team-a"})
    h = harness(sequence(busy, httpx.Response(200, json=ns)))
    assert h.call("create_namespace", "team-a").name == "team-a"
    assert len(h.requests) == 2
    exists = httpx.Response(409, json=error_body(7009, "already exists"))
    h2 = harness(sequence(exists, httpx.Response(200, json=ns)))
    with pytest.raises(ConflictError) as info:
        h2.call("create_namespace", "team-a")
    assert info.value.code == 7009 and len(h2.requests) == 1


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (429, 7069, RateLimitError),
        (400, 7074, BadRequestError),
        (400, 7089, BadRequestError),
        (400, 7096, BadRequestError),
        (400, 7097, BadRequestError),
        (409, 7099, ConflictError),
    ],
)
def test_new_codes_map_into_the_error_tree(harness, status, code, cls):
    h = harness(lambda request: httpx.Response(status, json=error_body(code, "refused")))
    with pytest.raises(cls) as info:
        h.call("get_instance", "docs")
    assert (info.value.status_code, info.value.code) == (status, code)
    assert ERROR_CODE_STATUS[code] == status


@pytest.mark.parametrize(
    ("code", "cls", "status"),
    [(7020, RateLimitError, 429), (7099, ConflictError, 409), (7089, BadRequestError, 400)],
)
def test_a_2xx_success_false_takes_the_class_of_its_code(harness, code, cls, status):
    h = harness(lambda request: httpx.Response(200, json=error_body(code, "refused")))
    with pytest.raises(cls) as info:
        h.call("get_instance", "docs")
    assert info.value.status_code == 200  # the HTTP status as received
    assert status_error_class(status) is cls
    assert len(h.requests) == 1  # a success: false body is never retried


def test_an_unknown_code_on_a_2xx_stays_a_plain_status_error(harness):
    h = harness(lambda request: httpx.Response(200, json=error_body(1234, "odd")))
    with pytest.raises(APIStatusError) as info:
        h.call("get_instance", "docs")
    assert type(info.value) is APIStatusError and info.value.status_code == 200


# --------------------------------------------------------------------------- list filters


def listing(rows):
    info = {"page": 1, "per_page": 100, "count": len(rows), "total_count": len(rows)}
    return fixed(envelope(rows, result_info=info))


def test_list_instances_sends_the_filters(harness):
    h = harness(listing([{"id": "docs"}]))
    h.call(
        "list_instances",
        search="do",
        hostname="docs.example.com",
        order_by="created_at",
        order_by_direction="desc",
    )
    params = dict(h.last.url.params)
    assert {k: params[k] for k in ("search", "hostname", "order_by", "order_by_direction")} == {
        "search": "do",
        "hostname": "docs.example.com",
        "order_by": "created_at",
        "order_by_direction": "desc",
    }
    h.call("list_instances")
    assert "search" not in h.last.url.params


def test_list_instances_refuses_bad_filters(harness):
    h = harness(listing([]))
    assert h.rejects("list_instances", search="x" * 65) == (
        "search: must be a string of 1 to 64 characters (got 65 characters)"
    )
    assert "hostname: must be a string of 1 to 253" in h.rejects(
        "list_instances", hostname="h" * 254
    )
    assert "(got int)" in h.rejects("list_instances", hostname=5)
    assert h.rejects("list_instances", order_by="name") == (
        "order_by: must be one of created_at (got 'name')"
    )
    assert "order_by_direction: must be one of asc, desc" in h.rejects(
        "list_instances", order_by_direction="up"
    )
    assert "search: must not contain control characters" in h.rejects(
        "list_instances", search="a\nb"
    )


def test_list_items_sends_the_filters(harness):
    h = harness(listing([]))
    h.call(
        "list_items",
        "docs",
        item_id="abc-1",
        key="a/b.md",
        search="b",
        source="builtin",
        sort_by="modified_at",
    )
    params = dict(h.last.url.params)
    assert {k: params[k] for k in ("item_id", "key", "search", "source", "sort_by")} == {
        "item_id": "abc-1",
        "key": "a/b.md",
        "search": "b",
        "source": "builtin",
        "sort_by": "modified_at",
    }
    h = harness(listing([]))
    assert "sort_by: must be one of status, modified_at" in h.rejects(
        "list_items", "docs", sort_by="name"
    )
    assert "item_id:" in h.rejects("list_items", "docs", item_id="../x")
    assert "source: must be a string of 1 to 256" in h.rejects("list_items", "docs", source="")


def test_list_namespaces_search_and_update_namespace(harness):
    h = harness(listing([{"name": "team-a"}]))
    h.call("list_namespaces", search="team")
    assert h.last.url.params["search"] == "team"
    h2 = harness(fixed(envelope({"name": "team-a", "description": "new"})))
    ns = h2.call("update_namespace", "team-a", description="new")
    assert ns.description == "new"
    assert (h2.last.method, str(h2.last.url)) == ("PUT", f"{ROOT}/team-a")
    assert json.loads(h2.last.content) == {"description": "new"}
    h2.call("update_namespace", "team-a", public_endpoint_params={"enabled": True})
    assert json.loads(h2.last.content) == {"public_endpoint_params": {"enabled": True}}


def test_update_namespace_refuses_bad_input(harness):
    h = harness(fixed(envelope({})))
    assert h.rejects("update_namespace", "team-a") == (
        "update_namespace: pass description= and/or public_endpoint_params="
    )
    assert "description: must be a string of at most 256" in h.rejects(
        "update_namespace", "team-a", description="d" * 257
    )
    assert "public_endpoint_params: must be a mapping" in h.rejects(
        "update_namespace", "team-a", public_endpoint_params=[1]
    )
    assert "name:" in h.rejects("update_namespace", "Team A", description="x")


# --------------------------------------------------------------------------- limits, use_ocr


@pytest.mark.parametrize(
    ("key", "limit"),
    [
        ("a.md", 10 * 1024 * 1024),
        ("dir.v2/src/Main.PY", 10 * 1024 * 1024),
        ("scan.pdf", 10 * 1024 * 1024),
        ("page.html", 4 * 1024 * 1024),
        ("dir.v2/README", 4 * 1024 * 1024),
        ("deck.pptx", 4 * 1024 * 1024),
    ],
)
def test_upload_limit_by_format(harness, key, limit):
    h = harness(fixed(envelope({"id": "i1", "key": key})))
    assert item_limit(key) == limit
    h.call("upload_item", "docs", key, b"x" * limit)
    assert len(h.requests) == 1
    h.requests.clear()
    assert "content: must be at most" in h.rejects("upload_item", "docs", key, b"x" * (limit + 1))


def test_instance_types_indexing_options(harness):
    h = harness(
        fixed(
            envelope(
                {
                    "id": "docs",
                    "indexing_options": {"keyword_tokenizer": "trigram", "use_ocr": True},
                }
            )
        )
    )
    inst = h.call("get_instance", "docs")
    assert isinstance(inst.indexing_options, IndexingOptions)
    assert (inst.indexing_options.keyword_tokenizer, inst.indexing_options.use_ocr) == (
        "trigram",
        True,
    )
    assert harness(fixed(envelope({"id": "d"}))).call("get_instance", "d").indexing_options is None


# --------------------------------------------------------------------------- drift rows


@pytest.mark.parametrize(
    "sent",
    [
        "2026-08-01T10:00:00Z",
        "2026-08-01T10:00:00.000+00:00",
        "2026-08-01T10:00:00",  # naive: read as UTC
        1785578400,  # epoch seconds
        1785578400000,  # epoch milliseconds
        1785578400.0,
    ],
)
def test_stats_last_activity_is_a_datetime_from_iso_or_epoch(harness, sent):
    h = harness(fixed(envelope({"completed": 1, "last_activity": sent})))
    stats = h.call("instance_stats", "docs")
    assert stats.last_activity == datetime(2026, 8, 1, 10, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("sent", [None, "soon", True, [1]])
def test_stats_last_activity_unreadable_is_none(harness, sent):
    h = harness(fixed(envelope({"completed": 1, "last_activity": sent})))
    assert h.call("instance_stats", "docs").last_activity is None


def test_the_sdk_python_names_of_instance_fields_are_sent_as_wire_names(harness):
    h = harness(fixed(envelope({"id": "docs"}), 201))
    h.call("create_instance", "docs", aisearch_model="@cf/x/y", chunk_overlap=10)
    assert json.loads(h.last.content) == {
        "id": "docs",
        "ai_search_model": "@cf/x/y",
        "chunk_overlap": 10,
    }
    h.call("update_instance", "docs", system_prompt_aisearch="Be brief.", aisearch_model="m")
    assert json.loads(h.last.content) == {
        "system_prompt_ai_search": "Be brief.",
        "ai_search_model": "m",
    }
    h.requests.clear()
    assert h.rejects("create_instance", "docs", aisearch_model="a", ai_search_model="b") == (
        "aisearch_model: the official SDK's name of ai_search_model; pass only one of them"
    )


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        (None, []),
        ("odd", []),
        (
            [{"code": "custom_metadata_field_not_filterable", "field": "x"}, 5, {"field": "y"}],
            [UploadWarning(code="custom_metadata_field_not_filterable", field="x")],
        ),
        ([{"code": "future_code", "detail": 1}], [UploadWarning(code="future_code", detail=1)]),
    ],
)
def test_item_warnings_are_read_leniently(harness, sent, expected):
    h = harness(fixed(envelope({"id": "i1", "key": "a.md", "warnings": sent})))
    assert h.call("upload_item", "docs", "a.md", "x").warnings == expected
