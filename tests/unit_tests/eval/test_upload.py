"""upload_corpus against a service that queues indexing (Cloudflare does; the local server
indexes on upload, so this edge needs a MockTransport)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from aisearch import AsyncAISearchClient
from aisearch_eval import load_golden_set, upload_corpus


def _folder(tmp_path: Path, n: int) -> Path:
    (tmp_path / "queries.jsonl").write_text('{"_id": "q", "text": "x"}\n')
    (tmp_path / "qrels.json").write_text('{"q": ["0"]}')
    (tmp_path / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": str(i), "text": f"doc {i}"}) + "\n" for i in range(n))
    )
    return tmp_path


def _service(final: dict[str, str], listed: list[str]) -> httpx.MockTransport:
    """Uploads answer ``queued``; a poll answers ``final[key]`` (``completed`` by default)."""

    def item(key: str, status: str) -> dict[str, object]:
        return {"id": f"id-{key}", "key": key, "status": status, "error": None}

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST" and path.endswith("/items"):
            key = request.content.split(b'filename="', 1)[1].split(b'"', 1)[0].decode()
            if key == "1.txt":
                return httpx.Response(200, json={"success": True, "result": item(key, "error")})
            return httpx.Response(200, json={"success": True, "result": item(key, "queued")})
        if request.method == "GET" and "/items/" in path:
            key = path.rsplit("/items/id-", 1)[1]
            result = item(key, final.get(key, "completed"))
            return httpx.Response(200, json={"success": True, "result": result})
        if request.method == "GET" and path.endswith("/items"):
            listed.append(str(request.url))
            items = [item(f"{i}.txt", "completed") for i in range(200) if i != 1]
            page = int(request.url.params.get("page", "1"))
            per = int(request.url.params.get("per_page", "50"))
            chunk = items[(page - 1) * per : page * per]
            info = {"page": page, "per_page": per, "count": len(chunk), "total_count": len(items)}
            return httpx.Response(200, json={"success": True, "result": chunk, "result_info": info})
        return httpx.Response(
            404, json={"success": False, "errors": [{"code": 7002, "message": path}]}
        )

    return httpx.MockTransport(handler)


@pytest.mark.parametrize("n", [5, 200])
async def test_queued_items_are_waited_for_and_errors_reported(tmp_path: Path, n: int) -> None:
    listed: list[str] = []
    final = {"3.txt": "error"} if n == 5 else {}
    transport = _service(final, listed)
    async with httpx.AsyncClient(transport=transport) as http:
        client = AsyncAISearchClient(
            account_id="acc", api_token="tok", http_client=http, base_url="https://api.test"
        )
        golden = load_golden_set(_folder(tmp_path, n))
        report = await upload_corpus(client, "inst", golden, concurrency=4, wait_timeout=5)
    keys = sorted(key for key, _ in report.failures)
    if n == 5:
        # 1.txt failed at upload, 3.txt while indexing; a handful is polled item by item
        assert keys == ["1.txt", "3.txt"]
        assert "indexing failed" in dict(report.failures)["1.txt"]
        assert dict(report.failures)["3.txt"] == "IndexingError: error"
        assert listed == []
    else:
        # many queued items: one walk of the item list per poll instead of one GET per item
        assert keys == ["1.txt"]
        assert listed
    assert report.uploaded == n - len(keys)
