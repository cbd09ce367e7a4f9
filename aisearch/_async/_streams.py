"""``AsyncEventStream``: the typed events of one streamed answer.

The async module (``aisearch/_async/``) is written by hand; its sync twin (``aisearch/_sync/``)
is generated from it by ``scripts/unasync.py``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from aisearch._models import StreamEvent

__all__ = ["AsyncEventStream"]


class AsyncEventStream:
    """The events of one streamed answer: iterate it, close it, or use it as a context manager.

    The request is sent when iteration starts; a stream closed before that sends nothing.
    Closing it (``aclose()``, or leaving ``async with``) releases the connection at once, also
    in the middle of the answer. After the last event the connection is released anyway.

    Example:
        >>> async with client.stream_chat_completions("docs", messages) as events:
        ...     async for event in events:
        ...         print(event)
    """

    __slots__ = ("_events",)

    def __init__(self, events: AsyncGenerator[StreamEvent, None]) -> None:
        self._events = events

    def __aiter__(self) -> AsyncEventStream:
        return self

    async def __anext__(self) -> StreamEvent:
        return await self._events.__anext__()

    async def aclose(self) -> None:
        """Stop the stream and release its connection (nothing is sent if it had not started)."""
        await self._events.aclose()

    async def __aenter__(self) -> AsyncEventStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
