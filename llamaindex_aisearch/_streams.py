"""Helpers shared by the streaming adapters: read the sources first, then the text."""

from __future__ import annotations

import itertools
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from llama_index.core.schema import NodeWithScore

from aisearch import ChatCompletion, SourcesEvent, StreamEndEvent, StreamEvent, TextDeltaEvent

from ._mapping import chunks_to_nodes

__all__ = [
    "AsyncDeltas",
    "AsyncEvents",
    "Deltas",
    "Events",
    "StreamState",
    "acollect_sources",
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

    def read(self, event: StreamEvent) -> str | Literal[False] | None:
        """Record one event: a text delta's text, ``None`` for the end, ``False`` otherwise."""
        if isinstance(event, TextDeltaEvent):
            self.on_text(event)
            return event.text
        if isinstance(event, StreamEndEvent):
            self.on_end(event)
            return None
        return False


def _state(sources: SourcesEvent | None, instance_id: str | None, query: str | None) -> StreamState:
    state = StreamState(metadata={"model": None, "usage": None, "search_query": query})
    if sources is not None:
        state.nodes = chunks_to_nodes(sources.chunks, search_query=query, instance_id=instance_id)
        state.metadata["errors"] = [e.model_dump() for e in sources.errors]
    return state


class Events(Protocol):
    """A sync event stream: a generator today, an ``aisearch`` ``EventStream`` as well."""

    def __iter__(self) -> Iterator[StreamEvent]: ...

    def close(self) -> None:
        """Release the HTTP response."""


class AsyncEvents(Protocol):
    """An async event stream: an async generator, or an ``AsyncEventStream``."""

    def __aiter__(self) -> AsyncIterator[StreamEvent]: ...

    def aclose(self) -> Awaitable[None]:
        """Release the HTTP response."""


Deltas = Generator[str | None, None, None]
"""The text deltas of a stream, then ``None`` for its end event; closing it closes the stream."""
AsyncDeltas = AsyncGenerator[str | None, None]


def collect_sources(
    events: Events, *, instance_id: str | None, query: str | None
) -> tuple[StreamState, Deltas]:
    """Read the first event of a stream; return the state (with sources) and the deltas.

    The first event is read eagerly, so errors the server reports before streaming (404,
    401, 400 ...) raise here, typed, and the sources are known before the first token.
    Reading the deltas records the model, usage and finish reason in the state.
    """
    iterator = iter(events)
    try:
        first = next(iterator, None)
    except BaseException:
        events.close()
        raise
    state = _state(first if isinstance(first, SourcesEvent) else None, instance_id, query)
    return state, _deltas(
        state, None if isinstance(first, SourcesEvent) else first, iterator, events
    )


def _deltas(
    state: StreamState, first: StreamEvent | None, iterator: Iterator[StreamEvent], events: Events
) -> Deltas:
    try:
        for event in itertools.chain((first,) if first is not None else (), iterator):
            if (text := state.read(event)) is not False:
                yield text
    finally:
        events.close()


async def _adeltas(
    state: StreamState,
    first: StreamEvent | None,
    iterator: AsyncIterator[StreamEvent],
    events: AsyncEvents,
) -> AsyncDeltas:
    try:
        if first is not None and (text := state.read(first)) is not False:
            yield text
        async for event in iterator:
            if (text := state.read(event)) is not False:
                yield text
    finally:
        await events.aclose()


async def acollect_sources(
    events: AsyncEvents, *, instance_id: str | None, query: str | None
) -> tuple[StreamState, AsyncDeltas]:
    """Async form of :func:`collect_sources`."""
    iterator = events.__aiter__()
    try:
        first: StreamEvent | None = await iterator.__anext__()
    except StopAsyncIteration:
        first = None
    except BaseException:
        await events.aclose()
        raise
    state = _state(first if isinstance(first, SourcesEvent) else None, instance_id, query)
    rest = None if isinstance(first, SourcesEvent) else first
    return state, _adeltas(state, rest, iterator, events)


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
