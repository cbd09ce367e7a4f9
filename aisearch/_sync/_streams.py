# GENERATED from aisearch/_async/_streams.py by scripts/unasync.py: do not edit by hand.
"""``EventStream``: the typed events of one streamed answer.

The async module (``aisearch/_async/``) is written by hand; its sync twin (``aisearch/_sync/``)
is generated from it by ``scripts/unasync.py``.
"""

from __future__ import annotations

from collections.abc import Generator

from aisearch._models import StreamEvent

__all__ = ["EventStream"]


class EventStream:
    """The events of one streamed answer: iterate it, close it, or use it as a context manager.

    The request is sent when iteration starts; a stream closed before that sends nothing.
    Closing it (``close()``, or leaving ``with``) releases the connection at once, also
    in the middle of the answer. After the last event the connection is released anyway.

    Example:
        >>> with client.stream_chat_completions("docs", messages) as events:
        ...     for event in events:
        ...         print(event)
    """

    __slots__ = ("_events",)

    def __init__(self, events: Generator[StreamEvent, None, None]) -> None:
        self._events = events

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> StreamEvent:
        return self._events.__next__()

    def close(self) -> None:
        """Stop the stream and release its connection (nothing is sent if it had not started)."""
        self._events.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
