"""Helpers shared by the streaming adapters: read the sources first, then the text."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from llama_index.core.schema import NodeWithScore

from aisearch import ChatCompletion, SourcesEvent, StreamEndEvent, TextDeltaEvent

from ._mapping import chunks_to_nodes

__all__ = [
    "StreamState",
    "aclose_quietly",
    "acollect_sources",
    "close_quietly",
    "collect_sources",
    "completion_metadata",
]


@dataclass
class StreamState:
    """What a stream told us so far: sources (first), then the end event's details."""

    nodes: list[NodeWithScore] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)

    def on_end(self, event: StreamEndEvent) -> None:
        """Record the closing event (finish reason, usage, model)."""
        if event.model is not None:
            self.metadata["model"] = event.model
        if event.id is not None:
            self.metadata["id"] = event.id
        self.metadata["finish_reason"] = event.finish_reason
        self.metadata["usage"] = event.usage.model_dump() if event.usage is not None else None

    def on_text(self, event: TextDeltaEvent) -> None:
        """Record the model name the first time a delta carries it."""
        if event.model is not None and self.metadata.get("model") is None:
            self.metadata["model"] = event.model


def _state(sources: SourcesEvent | None, instance_id: str | None, query: str | None) -> StreamState:
    state = StreamState(metadata={"model": None, "usage": None, "search_query": query})
    if sources is not None:
        state.nodes = chunks_to_nodes(sources.chunks, search_query=query, instance_id=instance_id)
        state.metadata["errors"] = [e.model_dump() for e in sources.errors]
    return state


def collect_sources(
    events: Iterator[Any], *, instance_id: str | None, query: str | None
) -> tuple[StreamState, Iterator[Any]]:
    """Read the first event of a stream; return the state (with sources) and the rest.

    The first event is read eagerly, so errors the server reports before streaming (404,
    401, 400 ...) raise here, typed, and the sources are known before the first token.
    """
    first = next(events, None)
    if isinstance(first, SourcesEvent):
        return _state(first, instance_id, query), events
    if first is None:
        return _state(None, instance_id, query), events
    return _state(None, instance_id, query), _prepend_sync(first, events)


def _prepend_sync(first: Any, events: Iterator[Any]) -> Iterator[Any]:
    try:
        yield first
        yield from events
    finally:
        close_quietly(events)


async def _prepend(first: Any, events: AsyncIterator[Any]) -> AsyncIterator[Any]:
    try:
        yield first
        async for event in events:
            yield event
    finally:
        await aclose_quietly(events)


async def acollect_sources(
    events: AsyncIterator[Any], *, instance_id: str | None, query: str | None
) -> tuple[StreamState, AsyncIterator[Any]]:
    """Async form of :func:`collect_sources`."""
    try:
        first = await events.__anext__()
    except StopAsyncIteration:
        return _state(None, instance_id, query), events
    if isinstance(first, SourcesEvent):
        return _state(first, instance_id, query), events
    return _state(None, instance_id, query), _prepend(first, events)


def close_quietly(events: Iterator[Any]) -> None:
    """Close a generator-based stream (releases the HTTP response)."""
    close = getattr(events, "close", None)
    if callable(close):
        close()


async def aclose_quietly(events: AsyncIterator[Any]) -> None:
    """Close an async generator-based stream (releases the HTTP response)."""
    aclose = getattr(events, "aclose", None)
    if callable(aclose):
        await aclose()


def completion_metadata(
    completion: ChatCompletion, *, query: str | None, instance_id: str | None = None
) -> tuple[list[NodeWithScore], dict[str, Any]]:
    """Nodes and response metadata (search_query, model, usage, ...) of a chat completion."""
    extra = completion.model_extra or {}
    search_query = extra.get("search_query") or query
    nodes = chunks_to_nodes(completion.chunks, search_query=search_query, instance_id=instance_id)
    metadata: dict[str, Any] = {
        "search_query": search_query,
        "model": completion.model,
        "usage": completion.usage.model_dump() if completion.usage is not None else None,
        "id": completion.id,
        "finish_reason": completion.choices[0].finish_reason if completion.choices else None,
        "errors": [e.model_dump() for e in completion.errors],
    }
    return nodes, metadata
