"""Pure mapping from AI Search chunks to LlamaIndex nodes and messages (no I/O)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from llama_index.core.base.llms.types import ChatMessage as LIChatMessage
from llama_index.core.base.llms.types import MessageRole
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


def to_aisearch_messages(messages: Sequence[LIChatMessage]) -> list[dict[str, Any]]:
    """Map LlamaIndex chat messages to AI Search's OpenAI-style message dicts.

    Roles ``chatbot`` and ``model`` become ``assistant``; ``function`` becomes ``tool``.
    Content is the message's text (non-text blocks are dropped).

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
        out.append({"role": mapped, "content": message.content or ""})
    return out
