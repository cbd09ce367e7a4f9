"""Custom LlamaIndex instrumentation events and warnings emitted by the adapters."""

from __future__ import annotations

from llama_index.core.bridge.pydantic import Field
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.schema import NodeWithScore

__all__ = [
    "AISearchInstanceErrorEvent",
    "AISearchInstanceWarning",
    "AISearchMemoryRetrievalEvent",
]


class AISearchInstanceWarning(UserWarning):
    """Warning raised (``on_instance_error="warn"``) when one instance of several failed."""


class AISearchInstanceErrorEvent(BaseEvent):
    """One instance of a multi-instance search failed while the others answered.

    Dispatched through LlamaIndex's instrumentation dispatcher whatever the
    ``on_instance_error`` policy, so an event handler sees every per-instance failure.
    It never carries credentials: only the instance, the service's message and, when the
    failure was an HTTP error, its status and Cloudflare error code.
    """

    instance_id: str
    """The instance that failed."""
    message: str
    """The service's (or client's) error message."""
    error_type: str | None = None
    """Class name of the core exception, when one was raised (client fan-out)."""
    status_code: int | None = None
    """HTTP status of the failure, when known."""
    code: int | None = None
    """Cloudflare ``errors[0].code``, when known."""
    query: str | None = None
    """The query being answered."""

    @classmethod
    def class_name(cls) -> str:
        """Return the event's class name."""
        return "AISearchInstanceErrorEvent"


class AISearchMemoryRetrievalEvent(BaseEvent):
    """The AI Search memory block retrieved passages for a turn (or reused the turn's).

    Dispatched through LlamaIndex's instrumentation dispatcher on every read of the block,
    so a handler sees which sources each model call was given, per memory session.
    """

    query: str
    """The query sent (empty: the messages held no user text, nothing was searched)."""
    session_id: str | None = None
    """The memory's session id."""
    instance_id: str | None = None
    """The instance searched (one instance)."""
    instance_ids: list[str] | None = None
    """The instances searched (several)."""
    folder: str | None = None
    """The folder the search was limited to."""
    nodes: list[NodeWithScore] = Field(default_factory=list)
    """The passages given to the model, ``[n]`` being ``nodes[n - 1]``."""
    failed_instances: list[str] = Field(default_factory=list)
    """Instances that could not be searched."""
    cached: bool = False
    """Reused from the session's previous retrieval (same query and target, no request)."""

    @classmethod
    def class_name(cls) -> str:
        """Return the event's class name."""
        return "AISearchMemoryRetrievalEvent"
