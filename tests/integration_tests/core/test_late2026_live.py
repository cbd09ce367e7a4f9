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
