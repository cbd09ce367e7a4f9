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
