"""Pure mappings: chunks to Documents, LangChain messages to API messages, citations."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from langchain_core.documents import Document
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages import content as types

from aisearch import Chunk
from aisearch._models import chunk_metadata
from aisearch._names import citation_markers

__all__ = [
    "API_ROLES",
    "MODEL_PROVIDER",
    "chunk_to_document",
    "chunk_to_source",
    "find_citations",
    "message_to_api",
    "messages_to_api",
    "sources_to_documents",
    "translate_content",
    "translate_content_chunk",
]

MODEL_PROVIDER = "aisearch"
"""`response_metadata["model_provider"]` of messages from `ChatAISearch`."""

API_ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})


def chunk_to_source(chunk: Chunk, instance_id: str | None = None) -> dict[str, Any]:
    """Return a chunk as a JSON-ready dict (the shape the API sends).

    Args:
        chunk: The chunk.
        instance_id: Set as `instance_id` when the chunk carries none (single-instance
            routes), so every source names its instance.
    """
    source = chunk.model_dump(mode="json", exclude_none=True)
    if instance_id is not None and not source.get("instance_id"):
        source["instance_id"] = instance_id
    return source


def chunk_to_document(
    chunk: Chunk,
    *,
    search_query: str | None = None,
    instance_id: str | None = None,
) -> Document:
    """Map one AI Search chunk to a LangChain `Document`.

    `page_content` is the chunk text and `id` the chunk id. Metadata starts with the
    item's custom metadata; the canonical keys (`id`, `score`, `type`, `filename`,
    `folder` (the key's directory, `brewing/`: what a `folder` filter matches), `source`,
    `timestamp`, `scoring_details`, `instance_id`, `search_query`) are written last and
    win over custom keys of the same name.

    Args:
        chunk: The chunk from a search or chat completion.
        search_query: The query the service actually ran (rewritten when rewriting is on).
        instance_id: Fallback instance id when the chunk carries none (single-instance
            routes); the chunk's own `instance_id` always wins.

    Returns:
        The Document. The chunk is not modified.
    """
    metadata = chunk_metadata(chunk, search_query=search_query, instance_id=instance_id)
    return Document(page_content=chunk.text or "", metadata=metadata, id=chunk.id)


def sources_to_documents(message: BaseMessage) -> list[Document]:
    """Return the sources of a `ChatAISearch` answer as LangChain Documents.

    Args:
        message: An `AIMessage` (or aggregated `AIMessageChunk`) from `ChatAISearch`.

    Returns:
        One Document per source chunk, mapped as the retrievers map search results (the
        sources are read as they are, not validated back into `Chunk`s).
    """
    return [
        Document(
            page_content=source.get("text") or "",
            metadata=chunk_metadata(source),
            id=source.get("id"),
        )
        for source in message.response_metadata.get("sources") or []
    ]


# --------------------------------------------------------------------------- messages


_MODEL_SIDE_BLOCKS = frozenset(
    {
        "reasoning",
        "tool_call",
        "tool_call_chunk",
        "invalid_tool_call",
        "server_tool_call",
        "server_tool_call_chunk",
        "server_tool_result",
        "citation",
    }
)
"""Blocks a model wrote (reasoning, tool calls, citations): not sent back as input."""


def _data(block: dict[str, Any]) -> str | None:
    """The base64 data of a standard block: v1 `base64`, or v0 `data` with `source_type`."""
    if block.get("base64"):
        return str(block["base64"])
    if block.get("source_type") == "base64" and block.get("data"):
        return str(block["data"])
    return None


def _image_part(block: dict[str, Any]) -> dict[str, Any]:
    """A standard `image` block (v1, or v0 with `source_type`) as an `image_url` part."""
    data = _data(block)
    if block.get("url"):
        url = str(block["url"])
    elif data is not None:
        url = f"data:{block.get('mime_type') or 'image/png'};base64,{data}"
    else:
        msg = (
            "an image content block is sent by url or base64 data (AI Search takes no "
            f"image file ids); got keys {sorted(block)}"
        )
        raise ValueError(msg)
    image: dict[str, Any] = {"url": url}
    detail = (block.get("extras") or {}).get("detail")
    if detail in ("auto", "low", "high"):
        image["detail"] = detail
    return {"type": "image_url", "image_url": image}


def _file_part(block: dict[str, Any]) -> dict[str, Any]:
    """A `file` block as a `file` part: OpenAI-style as is; standard by base64 data or id."""
    if isinstance(block.get("file"), dict):
        return {"type": "file", "file": block["file"]}
    data = _data(block)
    file: dict[str, Any] = {}
    name = (
        block.get("filename")
        or (block.get("extras") or {}).get("filename")
        or (block.get("metadata") or {}).get("filename")
    )
    if name:
        file["filename"] = name
    if data is not None:
        file["file_data"] = (
            f"data:{block.get('mime_type') or 'application/octet-stream'};base64,{data}"
        )
    elif block.get("file_id"):  # v1
        file["file_id"] = block["file_id"]
    elif block.get("source_type") == "id" and block.get("id"):  # v0
        file["file_id"] = block["id"]
    else:
        msg = (
            "a file content block is sent as base64 data or a file id (AI Search does not "
            f"fetch file URLs); got keys {sorted(block)}"
        )
        raise ValueError(msg)
    return {"type": "file", "file": file}


def _content_to_api(content: str | list[str | dict[str, Any]]) -> str | list[dict[str, Any]]:
    """Map LangChain message content to the API's string or OpenAI-style parts.

    Text blocks and strings -> `text`; OpenAI-style `image_url` parts as they are (a bare
    string `image_url` becomes `{"url": ...}`); standard `image` blocks (v1 `url`/`base64`,
    v0 `source_type` `url`/`base64`) -> `image_url` (base64 as a `data:` URL); `file` blocks
    -> `file` (base64 data or a file id; OpenAI-style `{"file": {...}}` as is). Blocks a model
    wrote (reasoning, tool calls, citations) are not sent; any other block raises.
    """
    if isinstance(content, str):
        return content
    parts: list[dict[str, Any]] = []
    for block in content:
        if isinstance(block, str):
            parts.append({"type": "text", "text": block})
            continue
        kind = block.get("type")
        if kind == "text":
            parts.append({"type": "text", "text": block.get("text", "")})
        elif kind == "image_url":
            image = block.get("image_url")
            parts.append(
                {
                    "type": "image_url",
                    "image_url": {"url": image} if isinstance(image, str) else image,
                }
            )
        elif kind == "image":
            parts.append(_image_part(block))
        elif kind == "file":
            parts.append(_file_part(block))
        elif kind in _MODEL_SIDE_BLOCKS:
            continue
        else:
            msg = f"message content block of type {kind!r} is not supported by AI Search"
            raise ValueError(msg)
    if all(part["type"] == "text" for part in parts):
        return "".join(part["text"] for part in parts)
    return parts


def message_to_api(message: BaseMessage) -> dict[str, Any]:
    """Map a LangChain message to an API chat message (`role`, `content`).

    `SystemMessage` -> system (developer when `additional_kwargs["__openai_role__"]`
    is `"developer"`), `HumanMessage` -> user, `AIMessage` -> assistant,
    `ToolMessage` -> tool, `ChatMessage(role=...)` -> that role when the API knows it.

    Raises:
        ValueError: For a role the API does not accept or unsupported content.
    """
    if isinstance(message, SystemMessage):
        role = (
            "developer"
            if message.additional_kwargs.get("__openai_role__") == "developer"
            else "system"
        )
    elif isinstance(message, HumanMessage):
        role = "user"
    elif isinstance(message, AIMessage):
        role = "assistant"
    elif isinstance(message, (ToolMessage, FunctionMessage)):
        role = "tool"
    elif isinstance(message, ChatMessage):
        role = {"human": "user", "ai": "assistant"}.get(message.role, message.role)
        if role not in API_ROLES:
            allowed = ", ".join(sorted(API_ROLES))
            msg = f"messages: role {message.role!r} is not supported (allowed: {allowed})"
            raise ValueError(msg)
    else:
        msg = f"messages: unsupported message type {type(message).__name__}"
        raise ValueError(msg)
    return {"role": role, "content": _content_to_api(message.content)}


def messages_to_api(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """Map a list of LangChain messages (see `message_to_api`)."""
    return [message_to_api(m) for m in messages]


# --------------------------------------------------------------------------- citations

# a full stop ends a sentence only before white space: "0.4 mm" and "e.g.x" do not
_SENTENCE_END_RE = re.compile(r"[.!?](?=\s)\s*|\n\s*")


def _claim_start(text: str, marker_start: int, floor: int) -> int:
    """Start of the sentence (or text after the previous marker) a marker closes."""
    start = floor
    for match in _SENTENCE_END_RE.finditer(text, floor, marker_start):
        if match.end() < marker_start:
            start = match.end()
    while start < marker_start and text[start].isspace():  # a span starts at its first word
        start += 1
    return start


def find_citations(text: str, sources: Sequence[dict[str, Any]]) -> list[types.Citation]:
    """Turn `[n]` markers in an answer into standard LangChain citations.

    Marker `[n]` (1-based; `[1, 3]` cites several) points at the n-th source. Each
    citation spans the claim the marker closes, from the start of its sentence (or the
    end of the previous marker) to the end of the marker. Markers with no matching
    source are ignored.

    Args:
        text: The answer text.
        sources: The retrieved chunks as dicts, in the order the service sent them.

    Returns:
        `Citation` dicts with `title`/`url` from the item key, `cited_text` from the
        chunk, and the chunk id, score, instance and 1-based index under `extras`.
    """
    citations: list[types.Citation] = []
    floor = 0
    for marker in citation_markers(text):
        start = _claim_start(text, marker.start, floor)
        for n in marker.numbers:
            if not 1 <= n <= len(sources):
                continue
            source = sources[n - 1]
            key = (source.get("item") or {}).get("key")
            citation: types.Citation = {
                "type": "citation",
                "id": f"aisearch-cite-{marker.start}-{n}",
                "start_index": start,
                "end_index": marker.end,
            }
            if key:
                citation["title"] = key
                if key.startswith(("http://", "https://")):
                    citation["url"] = key
            if source.get("text"):
                citation["cited_text"] = source["text"]
            extras = {
                "source_index": n,
                "chunk_id": source.get("id"),
                "score": source.get("score"),
                "instance_id": source.get("instance_id"),
            }
            citation["extras"] = {k: v for k, v in extras.items() if v is not None}
            citations.append(citation)
        floor = marker.end
    return citations


def _text_blocks(message: AIMessage | AIMessageChunk) -> list[types.ContentBlock]:
    if not isinstance(message.content, str):
        raise NotImplementedError  # fall back to LangChain's best-effort parsing
    sources = message.response_metadata.get("sources") or []
    if not message.content:
        # The last streamed chunk carries the stream's citations (computed over the whole
        # text), so a v1 aggregation, which converts chunk by chunk, keeps them too.
        streamed = message.response_metadata.get("citations")
        if streamed and not sources:
            return [{"type": "text", "text": "", "annotations": list(streamed)}]
        return []
    block: types.TextContentBlock = {"type": "text", "text": message.content}
    if sources:
        citations = find_citations(message.content, sources)
        if citations:
            block["annotations"] = list(citations)
    return [block]


def translate_content(message: AIMessage) -> list[types.ContentBlock]:
    """`content_blocks` translator for AI Search messages (text plus citations)."""
    return _text_blocks(message)


def translate_content_chunk(message: AIMessageChunk) -> list[types.ContentBlock]:
    """`content_blocks` translator for AI Search chunks.

    A single streamed chunk has no sources, so it yields a plain text block; the
    aggregated message (`sum(chunks)`) carries the sources and yields citations.
    """
    return _text_blocks(message)
