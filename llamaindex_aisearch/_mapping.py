"""Pure mapping from AI Search chunks to LlamaIndex nodes and messages (no I/O)."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from typing import Any

from llama_index.core.base.llms.types import ChatMessage as LIChatMessage
from llama_index.core.base.llms.types import DocumentBlock, ImageBlock, MessageRole, TextBlock
from llama_index.core.schema import NodeWithScore, TextNode

from aisearch import Chunk
from aisearch._models import CHUNK_METADATA_KEYS, chunk_metadata

__all__ = [
    "CANONICAL_KEYS",
    "EMBED_EXCLUDED_KEYS",
    "LLM_EXCLUDED_KEYS",
    "chunk_to_node",
    "chunks_to_nodes",
    "to_aisearch_messages",
]

CANONICAL_KEYS: tuple[str, ...] = CHUNK_METADATA_KEYS
"""Metadata keys every node carries; they win over the item's own metadata keys."""

LLM_EXCLUDED_KEYS: tuple[str, ...] = tuple(k for k in CHUNK_METADATA_KEYS if k != "filename")
"""Canonical keys kept out of the text an LLM sees (``filename`` and item metadata stay)."""

EMBED_EXCLUDED_KEYS: tuple[str, ...] = LLM_EXCLUDED_KEYS
"""Canonical keys kept out of the text an embedder sees."""

_ROLES: dict[str, str] = {
    MessageRole.SYSTEM.value: "system",
    MessageRole.DEVELOPER.value: "developer",
    MessageRole.USER.value: "user",
    MessageRole.ASSISTANT.value: "assistant",
    MessageRole.CHATBOT.value: "assistant",
    MessageRole.MODEL.value: "assistant",
    MessageRole.TOOL.value: "tool",
    MessageRole.FUNCTION.value: "tool",
}


def chunk_to_node(
    chunk: Chunk,
    *,
    search_query: str | None = None,
    instance_id: str | None = None,
) -> NodeWithScore:
    """Map one chunk to ``NodeWithScore(TextNode(id_=chunk id, text, metadata), score)``.

    Metadata is the item's custom metadata, then the canonical keys (which win):
    ``id, score, type, filename, folder, source, timestamp, scoring_details, instance_id,
    search_query``. ``filename`` and ``source`` are the item key, ``folder`` its directory
    (``brewing/``; what a ``folder`` filter matches). ``instance_id`` is the
    chunk's own (multi-instance results), else ``instance_id`` (the instance searched).

    Args:
        chunk: The chunk returned by AI Search.
        search_query: The query the service actually searched with (after rewriting).
        instance_id: Fallback instance id when the chunk carries none.

    Returns:
        The node with the chunk's score.
    """
    metadata = chunk_metadata(chunk, search_query=search_query, instance_id=instance_id)
    node = TextNode(
        id_=chunk.id,
        text=chunk.text or "",
        metadata=metadata,
        excluded_llm_metadata_keys=list(LLM_EXCLUDED_KEYS),
        excluded_embed_metadata_keys=list(EMBED_EXCLUDED_KEYS),
    )
    return NodeWithScore(node=node, score=chunk.score)


def chunks_to_nodes(
    chunks: Iterable[Chunk],
    *,
    search_query: str | None = None,
    instance_id: str | None = None,
) -> list[NodeWithScore]:
    """Map chunks to nodes, in order (see :func:`chunk_to_node`)."""
    return [chunk_to_node(c, search_query=search_query, instance_id=instance_id) for c in chunks]


_MODEL_SIDE_BLOCKS = ("thinking", "tool_call", "citation", "citable")
"""Blocks an LLM wrote (reasoning, tool calls, citations): not sent back as input."""


def _inline(data: bytes, mimetype: str | None, what: str) -> str:
    if not mimetype:
        raise ValueError(f"messages: {what} needs a mimetype to be sent as a data URL")
    return f"data:{mimetype};base64,{base64.b64encode(data).decode('ascii')}"


def _image_part(block: ImageBlock) -> dict[str, Any]:
    """An ``ImageBlock`` as an ``image_url`` part: its URL as is, or its bytes as a data URL.

    A URL is never fetched; image bytes or a local ``path`` are read and inlined.
    """
    if block.url is not None:
        url = str(block.url)
    else:
        data = block.resolve_image(as_base64=False).read()
        url = _inline(data, block.image_mimetype, "an ImageBlock with image or path data")
    image: dict[str, Any] = {"url": url}
    if block.detail in ("auto", "low", "high"):
        image["detail"] = block.detail
    return {"type": "image_url", "image_url": image}


def _file_part(block: DocumentBlock) -> dict[str, Any]:
    """A ``DocumentBlock`` with ``data`` or a local ``path`` as a ``file`` part (no URL)."""
    if block.data is None and block.path is None:
        raise ValueError(
            "messages: a DocumentBlock is sent as file data: pass data= or path=, not url= "
            "(AI Search does not fetch file URLs)"
        )
    data = block.resolve_document().read()
    file = {
        "filename": block.title or "document",
        "file_data": _inline(data, block.document_mimetype, "a DocumentBlock"),
    }
    return {"type": "file", "file": file}


def _content(message: LIChatMessage) -> str | list[dict[str, Any]]:
    """A message's blocks as the API's string (text only) or OpenAI-style parts."""
    if all(isinstance(b, TextBlock) for b in message.blocks):
        return message.content or ""
    parts: list[dict[str, Any]] = []
    for block in message.blocks:
        if isinstance(block, TextBlock):
            parts.append({"type": "text", "text": block.text})
        elif isinstance(block, ImageBlock):
            parts.append(_image_part(block))
        elif isinstance(block, DocumentBlock):
            parts.append(_file_part(block))
        elif getattr(block, "block_type", None) in _MODEL_SIDE_BLOCKS:
            continue
        else:
            kind = getattr(block, "block_type", type(block).__name__)
            raise ValueError(
                f"messages: {kind!r} blocks are not supported by AI Search "
                "(supported: text, image, document)"
            )
    if all(part["type"] == "text" for part in parts):
        return "\n".join(part["text"] for part in parts)
    return parts


def to_aisearch_messages(messages: Sequence[LIChatMessage]) -> list[dict[str, Any]]:
    """Map LlamaIndex chat messages to AI Search's OpenAI-style message dicts.

    Roles ``chatbot`` and ``model`` become ``assistant``; ``function`` becomes ``tool``.
    Content is the message's text when it has only text blocks; otherwise a list of parts:
    ``TextBlock`` -> ``text``, ``ImageBlock`` -> ``image_url`` (a URL as is, never fetched;
    image bytes or a local path as a ``data:`` URL), ``DocumentBlock`` (data or a local path)
    -> ``file``. Thinking, tool-call and citation blocks are not sent; other blocks (audio,
    video) raise ``ValueError``.

    Args:
        messages: LlamaIndex chat messages.

    Returns:
        ``[{"role": ..., "content": ...}, ...]``.
    """
    out: list[dict[str, Any]] = []
    for message in messages:
        role = message.role.value if isinstance(message.role, MessageRole) else str(message.role)
        mapped = _ROLES.get(role)
        if mapped is None:
            raise ValueError(f"messages: unsupported role {role!r}")
        out.append({"role": mapped, "content": _content(message)})
    return out
