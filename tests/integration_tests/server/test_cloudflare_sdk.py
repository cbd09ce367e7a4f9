"""The official ``cloudflare`` Python SDK, unmodified, works against aisearch_local."""

from __future__ import annotations

import json
import uuid

import pytest

cloudflare = pytest.importorskip("cloudflare")

pytestmark = pytest.mark.integration


@pytest.fixture
def cf(local_server):
    with cloudflare.Cloudflare(
        api_token=local_server.token,
        base_url=local_server.base_url,
        max_retries=0,
        _strict_response_validation=True,  # any answer that does not fit the SDK's types raises
    ) as c:
        yield c


def test_sdk_instance_lifecycle_upload_search_chat(cf, local_server):
    account = local_server.account_id
    iid = f"sdk-{uuid.uuid4().hex[:8]}"
    created = cf.aisearch.namespaces.instances.create(
        "default",
        account_id=account,
        id=iid,
        custom_metadata=[{"field_name": "level", "data_type": "text"}],
    )
    assert created.id == iid
    with pytest.warns(DeprecationWarning):  # the SDK deprecates the bare (default namespace) paths
        listed = [i.id for i in cf.aisearch.instances.list(account_id=account)]
    assert iid in listed
    listed_ns = [i.id for i in cf.aisearch.namespaces.instances.list("default", account_id=account)]
    assert iid in listed_ns

    item = cf.aisearch.namespaces.instances.items.upload(
        iid,
        account_id=account,
        name="default",
        file={
            "file": (
                "guides/moka.md",
                b"A moka pot brews strong coffee on the stove with steam pressure.",
            ),
            "metadata": json.dumps({"level": "beginner"}),
            "wait_for_completion": True,
        },
    )
    assert item.key == "guides/moka.md"
    assert item.status == "completed"
    assert item.metadata == {"level": "beginner"}

    res = cf.aisearch.namespaces.instances.search(
        iid,
        account_id=account,
        name="default",
        query="moka pot stove",
        aisearch_options={"retrieval": {"max_num_results": 3, "filters": {"level": "beginner"}}},
    )
    assert res.chunks and res.chunks[0].item.key == "guides/moka.md"
    assert res.chunks[0].scoring_details.vector_score is not None
    assert res.query_kind == "text"

    with pytest.warns(DeprecationWarning):
        bare = cf.aisearch.instances.search(iid, account_id=account, query="moka pot")
    assert bare.chunks[0].item.key == "guides/moka.md"

    chat = cf.aisearch.namespaces.instances.chat_completions(
        iid,
        account_id=account,
        name="default",
        messages=[{"role": "user", "content": "How does a moka pot work?"}],
    )
    assert chat.choices[0].message.content
    assert chat.chunks[0].item.key == "guides/moka.md"

    multi = cf.aisearch.namespaces.search(
        "default",
        account_id=account,
        query="moka pot",
        aisearch_options={"instance_ids": [iid, "does-not-exist"]},
    )
    assert multi.chunks[0].instance_id == iid
    assert [e.instance_id for e in multi.errors] == ["does-not-exist"]

    stats = cf.aisearch.namespaces.instances.stats(iid, account_id=account, name="default")
    assert stats.completed == 1

    cf.aisearch.namespaces.instances.delete(iid, account_id=account, name="default")
    with pytest.raises(cloudflare.NotFoundError):
        cf.aisearch.namespaces.instances.read(iid, account_id=account, name="default")


def test_sdk_errors_map_to_sdk_exceptions(local_server):
    with (
        cloudflare.Cloudflare(
            api_token="wrong-token", base_url=local_server.base_url, max_retries=0
        ) as bad,
        pytest.raises(cloudflare.PermissionDeniedError),
    ):
        bad.aisearch.namespaces.instances.list("default", account_id=local_server.account_id)
    with (
        cloudflare.Cloudflare(
            api_token=local_server.token, base_url=local_server.base_url, max_retries=0
        ) as cf,
        pytest.raises(cloudflare.BadRequestError),
    ):
        cf.aisearch.namespaces.instances.create(
            "default", account_id=local_server.account_id, id="Not Valid"
        )


# --------------------------------------------------------------------------- every served method


def test_sdk_namespaces_strict(cf, local_server):
    cf, account = cf, local_server.account_id
    name = f"sdk-ns-{uuid.uuid4().hex[:8]}"
    created = cf.aisearch.namespaces.create(account_id=account, name=name, description="Beans")
    assert created.name == name
    assert cf.aisearch.namespaces.read(name, account_id=account).description == "Beans"
    updated = cf.aisearch.namespaces.update(name, account_id=account, description="Roasts")
    assert updated.description == "Roasts"
    found = [n.name for n in cf.aisearch.namespaces.list(account_id=account, search="ROASTS")]
    assert found == [name]
    assert cf.aisearch.namespaces.list(account_id=account, search="beans").result == []

    iid = f"sdk-{uuid.uuid4().hex[:8]}"
    cf.aisearch.namespaces.instances.create(
        name,
        account_id=account,
        id=iid,
        aisearch_model="@cf/meta/llama-3.1-8b-instruct",
        indexing_options={"use_ocr": True},
        source="https://Docs.Example.com/start",
    )
    read = cf.aisearch.namespaces.instances.read(iid, account_id=account, name=name)
    assert read.type == "web-crawler"  # inferred from the source
    assert read.aisearch_model == "@cf/meta/llama-3.1-8b-instruct"
    assert read.indexing_options.use_ocr is True
    listed = cf.aisearch.namespaces.instances.list(
        name,
        account_id=account,
        hostname="docs.example.com",
        search=iid[-4:],
        order_by="created_at",
        order_by_direction="desc",
    )
    assert [i.id for i in listed] == [iid]
    assert (
        cf.aisearch.namespaces.instances.list(name, account_id=account, hostname="x.org").result
        == []
    )
    upd = cf.aisearch.namespaces.instances.update(
        iid, account_id=account, name=name, system_prompt_aisearch="Be brief."
    )
    assert upd.to_dict()["system_prompt_ai_search"] == "Be brief."  # sent by its wire name
    assert cf.aisearch.namespaces.instances.stats(iid, account_id=account, name=name).completed == 0
    # purge_cache: not a method of SDK 5.9.0; the SDK's generic POST reaches it
    purged = cf.post(
        f"/accounts/{account}/ai-search/namespaces/{name}/instances/{iid}/purge_cache",
        cast_to=object,
    )
    assert purged["success"] is True

    with pytest.raises(cloudflare.BadRequestError):  # not empty
        cf.aisearch.namespaces.delete(name, account_id=account)
    cf.aisearch.namespaces.instances.delete(iid, account_id=account, name=name)
    cf.aisearch.namespaces.delete(name, account_id=account)
    with pytest.raises(cloudflare.NotFoundError):
        cf.aisearch.namespaces.read(name, account_id=account)


def test_sdk_items_and_jobs_strict(cf, local_server, tmp_path):
    cf, account = cf, local_server.account_id
    iid = f"sdk-{uuid.uuid4().hex[:8]}"
    ns = cf.aisearch.namespaces.instances
    ns.create(
        "default",
        account_id=account,
        id=iid,
        custom_metadata=[{"field_name": "level", "data_type": "text"}],
    )
    first = ns.items.upload(
        iid,
        account_id=account,
        name="default",
        file={
            "file": ("guides/moka.md", b"A moka pot brews strong coffee on the stove."),
            "metadata": json.dumps({"level": 1, "team": "x"}),
            "wait_for_completion": True,
        },
    )
    assert [(w.code, w.field) for w in first.warnings] == [
        ("custom_metadata_value_not_indexed", "level"),
        ("custom_metadata_field_not_filterable", "team"),
    ]
    second = ns.items.upload(
        iid,
        account_id=account,
        name="default",
        file={"file": ("notes/grind.md", b"Grind coffee just before brewing.")},
    )
    items = ns.items
    assert [
        i.key for i in items.list(iid, account_id=account, name="default", item_id=first.id)
    ] == ["guides/moka.md"]
    assert [
        i.key for i in items.list(iid, account_id=account, name="default", key="notes/grind.md")
    ] == ["notes/grind.md"]
    assert [i.key for i in items.list(iid, account_id=account, name="default", search="MOKA")] == [
        "guides/moka.md"
    ]
    assert len(items.list(iid, account_id=account, name="default", source="builtin").result) == 2
    by_time = items.list(iid, account_id=account, name="default", sort_by="modified_at")
    assert [i.key for i in by_time] == ["notes/grind.md", "guides/moka.md"]
    by_status = items.list(
        iid, account_id=account, name="default", sort_by="status", status="completed"
    )
    assert len(by_status.result) == 2
    filtered = items.list(
        iid, account_id=account, name="default", metadata_filter=json.dumps({"folder": "notes/"})
    )
    assert [i.key for i in filtered] == ["notes/grind.md"]

    got = items.get(second.id, account_id=account, name="default", id=iid)
    assert got.key == "notes/grind.md"
    chunks = items.chunks(second.id, account_id=account, name="default", id=iid, limit=5)
    assert chunks[0].text.startswith("Grind coffee")
    assert items.download(second.id, account_id=account, name="default", id=iid).read() == (
        b"Grind coffee just before brewing."
    )
    synced = items.sync(second.id, account_id=account, name="default", id=iid, next_action="INDEX")
    assert synced.status == "completed"
    again = items.create_or_update(
        iid, account_id=account, name="default", key="notes/grind.md", next_action="INDEX"
    )
    assert again.id == second.id
    assert (
        items.delete(second.id, account_id=account, name="default", id=iid).key == "notes/grind.md"
    )

    job = ns.jobs.create(iid, account_id=account, name="default", description="nightly")
    assert ns.jobs.get(job.id, account_id=account, name="default", id=iid).id == job.id
    assert job.id in [j.id for j in ns.jobs.list(iid, account_id=account, name="default")]
    ns.jobs.logs(job.id, account_id=account, name="default", id=iid)
    cancelled = ns.jobs.update(job.id, account_id=account, name="default", id=iid, action="cancel")
    assert cancelled.id == job.id

    with pytest.warns(DeprecationWarning):  # the bare (default namespace) paths
        bare_job = cf.aisearch.instances.jobs.create(iid, account_id=account)
        assert (
            cf.aisearch.instances.jobs.get(bare_job.id, account_id=account, id=iid).id
            == bare_job.id
        )
        assert bare_job.id in [
            j.id for j in cf.aisearch.instances.jobs.list(iid, account_id=account)
        ]
        cf.aisearch.instances.jobs.logs(bare_job.id, account_id=account, id=iid)
        assert cf.aisearch.instances.read(iid, account_id=account).id == iid
        assert (
            cf.aisearch.instances.update(iid, account_id=account, max_num_results=7).max_num_results
            == 7
        )
        assert cf.aisearch.instances.stats(iid, account_id=account).completed == 1
        assert cf.aisearch.instances.search(iid, account_id=account, query="moka").chunks
        chat = cf.aisearch.instances.chat_completions(
            iid, account_id=account, messages=[{"role": "user", "content": "moka pot?"}]
        )
        assert chat.choices[0].message.content
        listed = cf.aisearch.instances.list(account_id=account, search=iid)
        assert [i.id for i in listed] == [iid]
        other = f"sdk-{uuid.uuid4().hex[:8]}"
        assert cf.aisearch.instances.create(account_id=account, id=other).id == other
        cf.aisearch.instances.delete(other, account_id=account)

    res = ns.search(iid, account_id=account, name="default", query="moka pot")
    assert res.chunks[0].item.key == "guides/moka.md"
    multi = cf.aisearch.namespaces.search(
        "default", account_id=account, query="moka", aisearch_options={"instance_ids": [iid]}
    )
    assert multi.chunks[0].instance_id == iid
    chat = cf.aisearch.namespaces.chat_completions(
        "default",
        account_id=account,
        messages=[{"role": "user", "content": "moka pot?"}],
        aisearch_options={"instance_ids": [iid]},
    )
    assert chat.choices[0].message.content
    ns.delete(iid, account_id=account, name="default")


def test_sdk_routes_the_local_server_does_not_serve(cf, local_server, make_instance):
    """Service tokens and item logs are not served (README): a clean 404, never a crash."""
    cf, account = cf, local_server.account_id
    with pytest.raises(cloudflare.NotFoundError):
        cf.aisearch.tokens.list(account_id=account)
    iid = make_instance()
    with pytest.raises(cloudflare.NotFoundError):
        cf.aisearch.namespaces.instances.items.logs(
            "abc", account_id=account, name="default", id=iid
        )
