"""Errors that say what to do next, and a cached answer that still streams, over real HTTP."""

from __future__ import annotations

import uuid

import pytest

from aisearch import ConflictError, NotFoundError, TextDeltaEvent

pytestmark = pytest.mark.integration


def test_a_misspelt_instance_gets_the_server_suggestion_and_the_client_hint(client):
    iid = f"espresso-{uuid.uuid4().hex[:6]}"
    client.create_instance(iid)
    with pytest.raises(NotFoundError) as info:
        client.search(iid[:-1], "crema")
    assert str(info.value) == (
        f"HTTP 404 (code 7002): instance {iid[:-1]!r} not found in namespace 'default' "
        f"(did you mean {iid!r}?); check the instance id {iid[:-1]!r} and the namespace "
        "'default'; client.list_instances(namespace='default') lists its instances"
    )


def test_an_existing_instance_or_namespace_says_to_pass_exist_ok(client):
    iid = f"exists-{uuid.uuid4().hex[:6]}"
    client.create_instance(iid)
    with pytest.raises(ConflictError) as info:
        client.create_instance(iid)
    assert info.value.code == 7009
    assert info.value.hint == (
        "to reuse the existing instance, pass exist_ok=True to create_instance() "
        "(a get-or-create; update_instance() changes its configuration)"
    )
    assert client.create_instance(iid, exist_ok=True).id == iid
    with pytest.raises(ConflictError) as info:
        client.create_namespace("default")
    assert str(info.value) == (
        "HTTP 409 (code 7009): namespace 'default' already exists; to reuse the existing "
        "namespace, pass exist_ok=True to create_namespace()"
    )


def test_a_cache_hit_reaches_the_client_as_several_text_events(client):
    iid = f"cache-{uuid.uuid4().hex[:6]}"
    client.create_instance(iid)
    client.upload_item(iid, "v60.md", "The V60 ratio is 15 g of coffee to 250 g of water.")
    client.wait_until_indexed(iid)
    prompt = [{"role": "user", "content": "what ratio of coffee to water for a V60"}]
    texts = []
    for _ in range(2):  # the second answer comes from the similarity cache
        with client.stream_chat_completions(iid, prompt) as events:
            texts.append([e.text for e in events if isinstance(e, TextDeltaEvent)])
    assert len(texts[1]) > 3
    assert texts[1] == texts[0]
