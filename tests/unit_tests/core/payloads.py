"""Wire examples from API.md (section numbers in comments) and helpers to build more."""

from __future__ import annotations

import json
from typing import Any

TOKEN = "tok-SECRET-9f8e7d6c5b4a"
GLOBAL_KEY = "key-SECRET-0a1b2c3d4e"
ACCOUNT = "acc123"
BASE = "https://api.cloudflare.com/client/v4"
MSGS = [{"role": "user", "content": "x"}]
SSE = {"content-type": "text/event-stream"}

# API.md 4.2
SEARCH_RESPONSE: dict[str, Any] = {
    "success": True,
    "errors": [],
    "messages": [],
    "result": {
        "search_query": "How do I get started?",
        "query_kind": "text",
        "chunks": [
            {
                "id": "chunk001",
                "type": "text",
                "score": 0.85,
                "text": "Welcome to AI Search…",
                "item": {
                    "key": "getting-started.md",
                    "timestamp": 1735689600,
                    "metadata": {"title": "…"},
                },
                "scoring_details": {
                    "vector_score": 0.85,
                    "keyword_score": 3.2,
                    "vector_rank": 1,
                    "keyword_rank": 2,
                    "fusion_method": "rrf",
                    "reranking_score": 0.91,
                },
            }
        ],
    },
}

# API.md 6 / 17: namespace search, per-instance errors inside result
NAMESPACE_SEARCH_RESPONSE: dict[str, Any] = {
    "success": True,
    "errors": [],
    "messages": [],
    "result": {
        "search_query": "pricing",
        "query_kind": "text",
        "chunks": [
            {
                "id": "a-1",
                "type": "text",
                "score": 0.9,
                "text": "Plans start at…",
                "item": {"key": "pricing.md"},
                "instance_id": "docs",
            },
            {
                "id": "b-7",
                "type": "text",
                "score": 0.7,
                "text": "Billing FAQ",
                "item": {"key": "faq.md", "metadata": None},
                "instance_id": "support",
            },
        ],
        "errors": [{"instance_id": "blog", "message": "instance not found"}],
    },
}

# API.md 5.2 (no envelope)
CHAT_RESPONSE: dict[str, Any] = {
    "id": "chatcmpl-abc123",
    "object": "chat.completion",
    "created": 1771886959,
    "model": "@cf/meta/llama-3.3-70b-instruct-fp8-fast",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "To get started…"},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 6507, "completion_tokens": 137, "total_tokens": 6644},
    "chunks": [
        {
            "id": "chunk001",
            "type": "text",
            "score": 0.85,
            "text": "…",
            "item": {"key": "getting-started.md", "timestamp": 1735689600},
            "scoring_details": {"vector_score": 0.85},
        }
    ],
}

NAMESPACE_CHAT_RESPONSE: dict[str, Any] = {
    **CHAT_RESPONSE,
    "chunks": [{**CHAT_RESPONSE["chunks"][0], "instance_id": "docs"}],
    "errors": [{"instance_id": "blog", "message": "timeout"}],
}

# API.md 7.1, current form: event: chunks + JSON array, deltas, [DONE]
STREAM_CHUNKS_EVENT = (
    "event: chunks\n"
    'data: [{"id":"chunk-001","type":"text","score":0.85,"text":"Caf\u00e9 cr\u00e8me \u2615",'
    '"item":{"key":"about-cloudflare.md","timestamp":1775925540000},'
    '"scoring_details":{"vector_score":0.85}}]\n'
    "\n"
)
STREAM_DELTAS = (
    'data: {"id":"id-1776072781845","created":1776072781,'
    '"model":"@cf/meta/llama-3.3-70b-instruct-fp8-fast","object":"chat.completion.chunk",'
    '"choices":[{"index":0,"delta":{"content":" document"}}]}\n'
    "\n"
    'data: {"id":"id-1776072781845","created":1776072781,'
    '"model":"@cf/meta/llama-3.3-70b-instruct-fp8-fast","object":"chat.completion.chunk",'
    '"choices":[{"index":0,"delta":{"content":" you provided doesn\u2019t"}}]}\n'
    "\n"
)
STREAM_FINISH = (
    'data: {"id":"id-1776072781845","object":"chat.completion.chunk",'
    '"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],'
    '"usage":{"prompt_tokens":10,"completion_tokens":4,"total_tokens":14}}\n'
    "\n"
)
STREAM_DONE = "data: [DONE]\n\n"

STREAM_NEW = STREAM_CHUNKS_EVENT + STREAM_DELTAS + STREAM_FINISH + STREAM_DONE

# API.md 7.1, older form: first data object with "chunks", CRLF line endings
STREAM_OLD = (
    'data: {"chunks":[{"id":"chunk-001","type":"text","score":0.85,'
    '"text":"Caf\u00e9 cr\u00e8me \u2615",'
    '"item":{"key":"about-cloudflare.md","timestamp":1775925540000},'
    '"scoring_details":{"vector_score":0.85}}]}\r\n'
    "\r\n"
    'data: {"id":"chatcmpl-abc123","choices":[{"delta":{"content":" document"}}]}\r\n'
    "\r\n"
    'data: {"id":"chatcmpl-abc123",'
    '"choices":[{"delta":{"content":" you provided doesn\u2019t"}}]}\r\n'
    "\r\n"
    "data: [DONE]\r\n"
    "\r\n"
)

# API.md 7.2 legacy stream (Workers-AI style pieces)
STREAM_LEGACY = (
    'data: {"response":"To train","p":"abc"}\n\n'
    'data: {"response":" a llama","tool_calls":[]}\n\n'
    'data: {"response":"","usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}\n\n'
    "data: [DONE]\n\n"
)

# API.md 13 legacy response (/ai-search: with "response")
LEGACY_AI_SEARCH_RESPONSE: dict[str, Any] = {
    "success": True,
    "result": {
        "object": "vector_store.search_results.page",
        "search_query": "How do I train a llama to deliver coffee?",
        "response": "To train a llama…",
        "data": [
            {
                "file_id": "llama001",
                "filename": "llama/logistics/llama-logistics.md",
                "score": 0.45,
                "attributes": {"modified_date": 1735689600000, "folder": "llama/logistics/"},
                "content": [
                    {"id": "llama001", "type": "text", "text": "Llamas can carry 3 drinks max."}
                ],
            }
        ],
        "has_more": False,
        "next_page": None,
    },
}

LEGACY_SEARCH_RESPONSE: dict[str, Any] = {
    "success": True,
    "result": {k: v for k, v in LEGACY_AI_SEARCH_RESPONSE["result"].items() if k != "response"},
}


# API.md 11 error envelope
def error_body(code: int, message: str) -> dict[str, Any]:
    return {
        "success": False,
        "errors": [{"code": code, "message": message}],
        "messages": [],
        "result": None,
    }


def item(
    item_id: str, status: str = "completed", key: str | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "id": item_id,
        "key": key or f"{item_id}.md",
        "status": status,
        "metadata": {"folder": "docs/"},
        **extra,
    }


def envelope(result: Any, **extra: Any) -> dict[str, Any]:
    return {"success": True, "errors": [], "messages": [], "result": result, **extra}


def dumps(obj: Any) -> bytes:
    return json.dumps(obj).encode()
