"""Instance update, stats, jobs and item chunks over real HTTP against aisearch_local."""

from __future__ import annotations

import uuid

import pytest

from aisearch import (
    BadRequestError,
    InstanceStats,
    ItemChunk,
    Job,
    JobLog,
    NotFoundError,
)

pytestmark = pytest.mark.integration

# About 300 words: with chunk_size 16 and no overlap the item has well over ten chunks.
LONG_TEXT = "\n\n".join(
    f"Paragraph {n}. The grinder setting {n} pairs with a {n + 10} second pre-infusion and a "
    f"dose of {n + 15} grams, which keeps the extraction balanced for roast level {n % 4}."
    for n in range(12)
)


# --------------------------------------------------------------------------- update


def test_update_instance_and_read_it_back(client, make_instance):
    iid = make_instance(chunk_size=256, chunk_overlap=10, max_num_results=10)
    before = client.get_instance(iid)
    updated = client.update_instance(
        iid, chunk_overlap=20, max_num_results=7, retrieval_options={"keyword_match_mode": "or"}
    )
    assert updated.id == iid
    assert (updated.chunk_overlap, updated.max_num_results) == (20, 7)
    again = client.get_instance(iid)
    assert (again.chunk_overlap, again.max_num_results) == (20, 7)
    assert again.retrieval_options["keyword_match_mode"] == "or"
    # fields not sent are left as they were
    assert again.chunk_size == before.chunk_size == 256
    assert again.score_threshold == before.score_threshold


def test_update_instance_in_a_namespace(client):
    ns = f"ns-{uuid.uuid4().hex[:8]}"
    client.create_namespace(ns)
    try:
        client.create_instance("kb", namespace=ns)
        assert client.update_instance("kb", namespace=ns, score_threshold=0.25).namespace == ns
        assert client.get_instance("kb", namespace=ns).score_threshold == 0.25
        with pytest.raises(NotFoundError):  # the same id in the default namespace is another one
            client.update_instance("kb", score_threshold=0.3)
    finally:
        client.delete_instance("kb", namespace=ns)
        client.delete_namespace(ns)


def test_update_instance_errors(client, make_instance):
    iid = make_instance()
    with pytest.raises(BadRequestError, match="fusion_method") as info:
        client.update_instance(iid, fusion_method="median")  # not checked client-side
    assert info.value.status_code == 400
    with pytest.raises(NotFoundError):
        client.update_instance(f"gone-{uuid.uuid4().hex[:8]}", paused=True)


async def test_async_update_instance(async_client, make_instance):
    iid = make_instance()
    updated = await async_client.update_instance(iid, max_num_results=3)
    assert updated.max_num_results == 3
    assert (await async_client.get_instance(iid)).max_num_results == 3


# --------------------------------------------------------------------------- stats


def test_stats_count_the_uploaded_items(client, make_instance):
    iid = make_instance()
    empty = client.instance_stats(iid)
    assert isinstance(empty, InstanceStats)
    assert (empty.total, empty.completed, empty.error) == (0, 0, 0)

    for n in range(3):
        done = client.upload_item(
            iid, f"notes/{n}.md", f"# Note {n}\n{LONG_TEXT}", wait_for_completion=True
        )
        assert done.status == "completed"
    failed = client.upload_item(iid, "empty.md", "", wait_for_completion=True)
    assert failed.status == "error"

    stats = client.instance_stats(iid)
    items = client.list_items(iid)
    by_status: dict[str, int] = {}
    for it in items:
        by_status[it.status] = by_status.get(it.status, 0) + 1
    assert by_status == {"completed": 3, "error": 1}
    assert (stats.completed, stats.error, stats.queued, stats.running) == (3, 1, 0, 0)
    assert stats.total == len(items) == 4
    assert stats.degraded is False
    assert stats.last_activity
    # every stored chunk is one vector
    assert stats.engine.vectorize.vectors_count == sum(it.chunks_count for it in items)
    assert stats.engine.r2.object_count == 4


async def test_async_stats(async_client, make_instance):
    iid = make_instance()
    await async_client.upload_item(iid, "a.md", "# A\nasync stats", wait_for_completion=True)
    stats = await async_client.instance_stats(iid)
    assert (stats.completed, stats.total) == (1, 1)


def test_stats_of_unknown_instance(client):
    with pytest.raises(NotFoundError):
        client.instance_stats(f"gone-{uuid.uuid4().hex[:8]}")


# --------------------------------------------------------------------------- jobs


def test_sync_job_lifecycle(client, make_instance, tmp_path):
    (tmp_path / "guides").mkdir()
    (tmp_path / "guides" / "espresso.md").write_text(f"# Espresso\n{LONG_TEXT}")
    (tmp_path / "pour-over.txt").write_text("Pour-over uses a medium-fine grind and 94 C water.")
    # aisearch_local's stand-in for an R2 bucket: an absolute folder path as the source
    iid = make_instance(source=str(tmp_path))

    job = client.create_job(iid, description="first sync")
    assert isinstance(job, Job)
    assert (job.source, job.description) == ("user", "first sync")
    assert job.started_at

    got = client.get_job(iid, job.id)
    assert (got.id, got.description, got.started_at) == (job.id, "first sync", job.started_at)
    assert got.ended_at and got.end_reason  # local jobs run inside the request

    logs = client.job_logs(iid, job.id)
    assert logs and all(isinstance(line, JobLog) for line in logs)
    text = "\n".join(line.message for line in logs)
    assert "guides/espresso.md" in text and "pour-over.txt" in text
    assert len({line.id for line in logs}) == len(logs)
    assert {i.key for i in client.list_items(iid)} == {"guides/espresso.md", "pour-over.txt"}

    (tmp_path / "pour-over.txt").unlink()
    second = client.create_job(iid)
    assert second.id != job.id and second.description is None
    assert any("pour-over.txt" in line.message for line in client.job_logs(iid, second.id))
    assert [i.key for i in client.list_items(iid)] == ["guides/espresso.md"]

    listed = client.list_jobs(iid)
    assert {j.id for j in listed} == {job.id, second.id}
    assert listed[0].id == second.id  # newest first on aisearch_local

    cancelled = client.cancel_job(iid, job.id)  # already ended: returned unchanged
    assert (cancelled.id, cancelled.end_reason) == (job.id, got.end_reason)


def test_job_errors(client, make_instance):
    iid = make_instance()
    with pytest.raises(NotFoundError):
        client.get_job(iid, "no-such-job")
    with pytest.raises(NotFoundError):
        client.job_logs(iid, "no-such-job")
    with pytest.raises(NotFoundError):
        client.cancel_job(iid, "no-such-job")
    assert client.list_jobs(iid) == []


async def test_async_jobs_in_a_namespace(async_client):
    ns = f"ns-{uuid.uuid4().hex[:8]}"
    await async_client.create_namespace(ns)
    try:
        await async_client.create_instance("kb", namespace=ns)
        job = await async_client.create_job("kb", description="async", namespace=ns)
        assert (await async_client.get_job("kb", job.id, namespace=ns)).description == "async"
        assert [j.id for j in await async_client.list_jobs("kb", namespace=ns)] == [job.id]
        # built-in storage has no source to sync: the job ends without log lines
        assert await async_client.job_logs("kb", job.id, namespace=ns) == []
        assert (await async_client.cancel_job("kb", job.id, namespace=ns)).id == job.id
        with pytest.raises(NotFoundError):
            await async_client.get_job("kb", job.id)  # default namespace: another instance
    finally:
        await async_client.delete_instance("kb", namespace=ns)
        await async_client.delete_namespace(ns)


# --------------------------------------------------------------------------- item chunks


def test_item_chunk_pages_are_consistent(client, make_instance):
    iid = make_instance(chunk_size=16, chunk_overlap=0)
    item = client.upload_item(
        iid, "guide.md", LONG_TEXT, metadata={"folder": "guides/"}, wait_for_completion=True
    )
    assert item.status == "completed"
    count = client.get_item(iid, item.id).chunks_count
    assert count > 10

    everything = client.list_item_chunks(iid, item.id, limit=100)
    assert len(everything) == count
    assert all(isinstance(c, ItemChunk) for c in everything)
    assert len({c.id for c in everything}) == count
    for chunk in everything:
        assert chunk.item.key == "guide.md"
        assert chunk.item.metadata == {"folder": "guides/"}
        assert chunk.text and chunk.text in LONG_TEXT
        assert 0 <= chunk.start_byte < chunk.end_byte
    starts = [c.start_byte for c in everything]
    assert starts == sorted(starts)

    assert len(client.list_item_chunks(iid, item.id)) == min(count, 20)  # default limit 20
    for size in (1, 3, 7):
        paged = []
        for offset in range(0, count, size):
            page = client.list_item_chunks(iid, item.id, limit=size, offset=offset)
            assert len(page) == min(size, count - offset)
            paged.extend(page)
        assert [c.id for c in paged] == [c.id for c in everything]
    assert client.list_item_chunks(iid, item.id, limit=5, offset=count) == []

    middle = client.list_item_chunks(iid, item.id, limit=4, offset=5)
    assert [c.id for c in middle] == [c.id for c in everything[5:9]]


def test_item_chunks_errors(client, make_instance):
    iid = make_instance()
    with pytest.raises(NotFoundError):
        client.list_item_chunks(iid, "no-such-item")


async def test_async_item_chunks_and_sync(async_client, make_instance):
    iid = make_instance(chunk_size=16, chunk_overlap=0)
    item = await async_client.upload_item(iid, "guide.md", LONG_TEXT, wait_for_completion=True)
    first = await async_client.list_item_chunks(iid, item.id, limit=2)
    second = await async_client.list_item_chunks(iid, item.id, limit=2, offset=2)
    both = await async_client.list_item_chunks(iid, item.id, limit=4)
    assert [c.id for c in first + second] == [c.id for c in both]
    synced = await async_client.sync_item(iid, item.id, wait_for_completion=True)
    assert (synced.id, synced.status) == (item.id, "completed")


def test_sync_item_reindexes(client, make_instance):
    iid = make_instance()
    item = client.upload_item(iid, "a.md", "# A\nre-index me", wait_for_completion=True)
    synced = client.sync_item(iid, item.id, wait_for_completion=True)
    assert (synced.id, synced.key, synced.status) == (item.id, "a.md", "completed")
    with pytest.raises(NotFoundError):
        client.sync_item(iid, "no-such-item")
