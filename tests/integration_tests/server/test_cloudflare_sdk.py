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
        api_token=local_server.token, base_url=local_server.base_url, max_retries=0
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
