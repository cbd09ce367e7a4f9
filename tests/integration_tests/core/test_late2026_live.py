"""Late-2026 management methods of the client against aisearch_local over real HTTP."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_purge_cache_makes_the_next_answer_a_cache_miss(client, make_instance, server_http):
    iid = make_instance()
    client.upload_item(iid, "drip.md", "A drip brewer uses medium grounds and paper filters.")
    chat = f"/ai-search/namespaces/default/instances/{iid}/chat/completions"
    prompt = {"messages": [{"role": "user", "content": "which grounds does a drip brewer use"}]}
    server_http.post(chat, json=prompt)
    assert server_http.post(chat, json=prompt).headers["cf-aig-cache-status"] == "HIT"
    assert client.purge_cache(iid) is None
    assert server_http.post(chat, json=prompt).headers["cf-aig-cache-status"] == "MISS"


async def test_async_purge_cache(async_client, make_instance):
    iid = make_instance()
    assert await async_client.purge_cache(iid) is None


def test_sync_in_cooldown_raises_rate_limit_error_after_retries(
    local_server, make_instance, monkeypatch
):
    from aisearch import AISearchClient, RateLimitError

    iid = make_instance()
    monkeypatch.setattr(local_server.service, "sync_cooldown_s", 3600.0)
    with AISearchClient(
        account_id=local_server.account_id,
        api_token=local_server.token,
        base_url=local_server.base_url,
        max_retries=0,
    ) as c:
        c.create_job(iid)
        with pytest.raises(RateLimitError) as info:
            c.create_job(iid)
    assert (info.value.code, info.value.body["result"]) == (7020, {})
    assert "sync_in_cooldown" in str(info.value)


def test_list_filters_and_update_namespace(client):
    import uuid

    ns = f"lf-{uuid.uuid4().hex[:8]}"
    client.create_namespace(ns, description="Roasting notes")
    try:
        assert [n.name for n in client.list_namespaces(search="ROASTING NOTES")] == [ns]
        updated = client.update_namespace(ns, description="Brewing notes")
        assert updated.description == "Brewing notes"
        assert client.get_namespace(ns).description == "Brewing notes"
        assert client.list_namespaces(search="roasting notes") == []

        client.create_instance(
            "web-docs", namespace=ns, type="web-crawler", source="https://docs.example.com/"
        )
        client.create_instance("uploads", namespace=ns)
        listed = client.list_instances(namespace=ns, hostname="DOCS.example.com")
        assert [i.id for i in listed] == ["web-docs"]
        assert [i.id for i in client.list_instances(namespace=ns, search="load")] == ["uploads"]
        newest_first = client.list_instances(
            namespace=ns, order_by="created_at", order_by_direction="desc"
        )
        assert [i.id for i in newest_first] == ["uploads", "web-docs"]

        a = client.upload_item(
            "uploads", "guides/kettle.md", "A gooseneck kettle pours slowly.", namespace=ns
        )
        client.upload_item("uploads", "notes/grind.md", "Grind just before brewing.", namespace=ns)
        assert [i.key for i in client.list_items("uploads", namespace=ns, item_id=a.id)] == [
            "guides/kettle.md"
        ]
        assert [
            i.key for i in client.list_items("uploads", namespace=ns, key="notes/grind.md")
        ] == ["notes/grind.md"]
        assert [i.key for i in client.list_items("uploads", namespace=ns, search="KETTLE")] == [
            "guides/kettle.md"
        ]
        assert len(client.list_items("uploads", namespace=ns, source="builtin")) == 2
        assert client.list_items("uploads", namespace=ns, source="web-crawler:x") == []
        by_time = client.list_items("uploads", namespace=ns, sort_by="modified_at")
        assert [i.key for i in by_time] == ["notes/grind.md", "guides/kettle.md"]
    finally:
        for inst in client.list_instances(namespace=ns):
            client.delete_instance(inst.id, namespace=ns)
        client.delete_namespace(ns)


def test_create_instance_without_type_and_use_ocr(client):
    import uuid

    web = f"web-{uuid.uuid4().hex[:8]}"
    inst = client.create_instance(web, source="https://docs.example.com")
    assert inst.type == "web-crawler"
    plain = f"up-{uuid.uuid4().hex[:8]}"
    inst = client.create_instance(plain, indexing_options={"use_ocr": True})
    assert inst.type is None
    assert inst.indexing_options.use_ocr is True
    assert inst.indexing_options.keyword_tokenizer == "porter"
    assert (
        client.update_instance(plain, indexing_options={"use_ocr": False}).indexing_options.use_ocr
        is False
    )
    client.upload_item(plain, "long.md", "espresso" + " " * (5 * 1024 * 1024))
    for iid in (web, plain):
        client.delete_instance(iid)


# One table for both sides (API.md section 10): the client's check and the server's answer.
INSTANCE_IDS = [
    ("a", True),
    ("a-b", True),
    ("a_b", True),
    ("_a", True),
    ("a-b-c_d9", True),
    ("a" * 64, True),
    ("a--b", False),
    ("-a", False),
    ("a-", False),
    ("a" * 65, False),
    ("Docs", False),
    ("a.b", False),
    ("a b", False),
]


@pytest.mark.parametrize(("instance_id", "valid"), INSTANCE_IDS)
def test_instance_ids_are_validated_alike_by_client_and_server(server_http, instance_id, valid):
    import uuid

    from aisearch import InvalidRequestError
    from aisearch._config import validate_instance_id

    try:
        validate_instance_id(instance_id)
        client_ok = True
    except InvalidRequestError:
        client_ok = False
    ns = f"ids-{uuid.uuid4().hex[:8]}"
    assert server_http.post("/ai-search/namespaces", json={"name": ns}).status_code == 200
    r = server_http.post(f"/ai-search/namespaces/{ns}/instances", json={"id": instance_id})
    server_ok = r.status_code == 201
    if not server_ok:
        assert r.status_code == 400 and r.json()["errors"][0]["code"] == 7001, r.text
    assert (client_ok, server_ok) == (valid, valid)
    if server_ok:
        server_http.delete(f"/ai-search/namespaces/{ns}/instances/{instance_id}")
    server_http.delete(f"/ai-search/namespaces/{ns}")


def test_sdk_python_field_names_reach_the_server_as_wire_names(client):
    import uuid

    iid = f"sdk-names-{uuid.uuid4().hex[:6]}"
    inst = client.create_instance(iid, aisearch_model="@cf/meta/llama-3.1-8b-instruct")
    assert inst.ai_search_model == "@cf/meta/llama-3.1-8b-instruct"
    assert "aisearch_model" not in (inst.model_extra or {})
    inst = client.update_instance(iid, system_prompt_aisearch="Answer briefly.")
    assert inst.system_prompt_ai_search == "Answer briefly."
    client.delete_instance(iid)


def test_upload_warnings_are_typed(client, make_instance):
    from aisearch._models import UploadWarning

    iid = make_instance(custom_metadata=[{"field_name": "level", "data_type": "number"}])
    item = client.upload_item(iid, "a.md", "Moka pots.", metadata={"level": "x", "team": "b"})
    assert item.warnings == [
        UploadWarning(
            code="custom_metadata_value_not_indexed", field="level", expected_type="number"
        ),
        UploadWarning(code="custom_metadata_field_not_filterable", field="team"),
    ]
    assert client.upload_item(iid, "b.md", "Moka pots.", metadata={"level": 2}).warnings == []
