"""Custom LlamaIndex instrumentation events and warnings emitted by the adapters."""

from __future__ import annotations

from llama_index.core.instrumentation.events import BaseEvent

__all__ = ["AISearchInstanceErrorEvent", "AISearchInstanceWarning"]


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
