"""Turn server-sent events (parsed by httpx-sse) into typed stream events.

Accepted wire forms:

* ``event: chunks`` whose data is the JSON array of chunks (current docs), or a first
  ``data: {"chunks": [...]}`` object (older docs), possibly with namespace ``errors``;
* on namespace streams (``join_errors=True``), ``event: errors`` (a JSON array of
  per-instance errors, or ``{"errors": [...]}``) next to the sources: the wire form is
  undocumented, so both are accepted. The sources are then held back until the next other
  event arrives, so that such errors join the one ``SourcesEvent`` (still before the first
  text delta); on instance streams the sources are handed over at once;
* OpenAI ``chat.completion.chunk`` deltas (``choices[].delta.content``), whose
  ``finish_reason`` and ``usage`` are kept for the end event;
* legacy Workers-AI pieces ``data: {"response": "..."}``;
* ``data: [DONE]``, which yields the single ``StreamEndEvent``;
* ``event: error`` or a JSON error body, which raises ``APIStatusError``.

Unknown event names are ignored. A stream that ends without ``[DONE]`` raises
``StreamInterruptedError``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from httpx_sse import ServerSentEvent
from pydantic import ValidationError

from aisearch._exceptions import (
    AISearchError,
    APIResponseValidationError,
    StreamInterruptedError,
    error_from_body,
    error_status,
)
from aisearch._models import (
    Chunk,
    InstanceError,
    SourcesEvent,
    StreamEndEvent,
    StreamEvent,
    TextDeltaEvent,
    Usage,
    drop_absent_nulls,
)

__all__ = ["StreamDecoder"]


class StreamDecoder:
    """Stateful translator from ``ServerSentEvent`` to ``StreamEvent`` (pure: no I/O).

    Args:
        status_code: HTTP status of the stream response (reported by error events).
        request_id: Request id of the response, when known.
        join_errors: A namespace stream: per-instance errors sent as a separate event join
            the sources (which are held back until the next event).
        secrets: Credentials of the request, taken out of every error built from the stream.
    """

    def __init__(
        self,
        status_code: int = 200,
        request_id: str | None = None,
        *,
        join_errors: bool = False,
        secrets: Sequence[str] = (),
    ) -> None:
        self.status_code = status_code
        self.request_id = request_id
        self._secrets = tuple(secrets)
        self.done = False
        self._finish_reason: str | None = None
        self._usage: Usage | None = None
        self._model: str | None = None
        self._id: str | None = None
        self._join_errors = join_errors
        self._pending: SourcesEvent | None = None
        self._deferred: AISearchError | None = None
        self._handlers: dict[str, Callable[[ServerSentEvent], list[StreamEvent]]] = {
            "chunks": self._on_chunks,
            "sources": self._on_chunks,
            "error": self._on_error,
            "message": self._on_message,
        }
        if join_errors:
            self._handlers["errors"] = self._on_errors

    def feed(self, sse: ServerSentEvent) -> list[StreamEvent]:
        """Translate one server-sent event into zero or more typed events.

        Error events and error bodies raise ``APIStatusError``; data that is not the expected
        JSON ``APIResponseValidationError``.
        """
        self._raise_deferred()
        if self.done:
            return []
        handler = self._handlers.get(sse.event)
        if handler is None:
            return []
        try:
            produced = handler(sse)
        except AISearchError as exc:
            if self._pending is None:
                raise
            # the sources came first: hand them over now, raise at the next call
            self._deferred = exc
            pending, self._pending = self._pending, None
            return [pending]
        out: list[StreamEvent] = []
        for event in produced:
            if isinstance(event, SourcesEvent) and self._join_errors:
                self._hold(event)
            else:
                out.append(event)
        if (out or self.done) and self._pending is not None:
            out.insert(0, self._pending)
            self._pending = None
        return out

    def _raise_deferred(self) -> None:
        exc, self._deferred = self._deferred, None
        if exc is not None:
            self.done = True
            raise exc

    def _hold(self, event: SourcesEvent) -> None:
        pending = self._pending
        if pending is None:
            self._pending = event
        else:  # sources and per-instance errors sent as separate events: one SourcesEvent
            self._pending = SourcesEvent(
                chunks=[*pending.chunks, *event.chunks], errors=[*pending.errors, *event.errors]
            )

    def finish(self) -> None:
        """Call when the byte stream ended: ``StreamInterruptedError`` if ``[DONE]`` never came."""
        self._raise_deferred()
        if not self.done:
            raise StreamInterruptedError(
                "the event stream ended before 'data: [DONE]' (connection dropped or server error)"
            )

    def _invalid(self, message: str, raw: str) -> APIResponseValidationError:
        """The error for stream data ``raw`` that does not fit (credentials taken out)."""
        return APIResponseValidationError(
            message, status_code=self.status_code, content=raw, secrets=self._secrets
        )

    def _reported(self, body: Any, default: str, status: int | None = None) -> AISearchError:
        """The status error an error event or error body reports (credentials taken out)."""
        status = status or (self.status_code if self.status_code >= 400 else 500)
        return error_from_body(body, status, self.request_id, default, secrets=self._secrets)

    def _json(self, sse: ServerSentEvent) -> Any:
        try:
            return json.loads(sse.data)
        except ValueError:
            pass
        # raised outside the except block: the JSONDecodeError (its .doc is the raw line,
        # which may echo the credential) is neither the cause nor the context
        raise self._invalid(f"stream event {sse.event!r} does not carry JSON data", sse.data)

    def _sources(self, chunks: Any, errors: Any, raw: str) -> list[StreamEvent]:
        try:
            event = SourcesEvent(
                chunks=[Chunk.model_validate(c) for c in drop_absent_nulls(chunks or [])],
                errors=[InstanceError.model_validate(e) for e in (errors or [])],
            )
        except (ValidationError, TypeError) as exc:
            failure = exc.__class__.__name__
        else:
            return [event]
        # raised outside the except block: pydantic's error (it quotes the data) is not chained
        raise self._invalid(f"stream sources do not fit the chunk model: {failure}", raw)

    def _on_chunks(self, sse: ServerSentEvent) -> list[StreamEvent]:
        data = self._json(sse)
        if isinstance(data, list):
            return self._sources(data, None, sse.data)
        if isinstance(data, Mapping) and isinstance(data.get("chunks", False), (list, type(None))):
            return self._sources(data["chunks"], data.get("errors"), sse.data)  # null: none
        raise self._invalid(
            "the 'chunks' event is neither a JSON array nor an object with 'chunks'", sse.data
        )

    def _on_errors(self, sse: ServerSentEvent) -> list[StreamEvent]:
        data = self._json(sse)
        if isinstance(data, Mapping):
            data = data.get("errors")
        if data is not None and not isinstance(data, list):
            raise self._invalid(
                "the 'errors' event is neither a JSON array nor an object with 'errors'", sse.data
            )
        return self._sources([], data, sse.data)

    def _on_error(self, sse: ServerSentEvent) -> list[StreamEvent]:
        try:
            body: Any = json.loads(sse.data)
        except ValueError:
            body = sse.data
        status = error_status(body.get("status")) if isinstance(body, Mapping) else None
        raise self._reported(body, "error event in the stream", status)

    def _on_message(self, sse: ServerSentEvent) -> list[StreamEvent]:
        if sse.data.strip() == "[DONE]":
            self.done = True
            return [
                StreamEndEvent(
                    finish_reason=self._finish_reason,
                    usage=self._usage,
                    model=self._model,
                    id=self._id,
                )
            ]
        if not sse.data.strip():
            return []
        data = self._json(sse)
        if not isinstance(data, Mapping):
            raise self._invalid("stream data is not a JSON object", sse.data)
        is_error = data.get("success") is False or "error" in data
        if is_error or ("errors" in data and "chunks" not in data and "choices" not in data):
            raise self._reported(data, "error in the stream")
        if "choices" not in data and isinstance(data.get("chunks"), list):
            return self._sources(data["chunks"], data.get("errors"), sse.data)
        return self._deltas(data, sse.data)

    def _usage_of(self, usage: Mapping[str, Any], raw: str) -> Usage:
        try:
            return Usage.model_validate(usage)
        except ValidationError:
            pass
        # outside the except block: nothing chained
        raise self._invalid("stream usage does not fit the usage model", raw)

    def _deltas(self, data: Mapping[str, Any], raw: str) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        ident = data.get("id") if isinstance(data.get("id"), str) else None
        model = data.get("model") if isinstance(data.get("model"), str) else None
        self._id = ident or self._id
        self._model = model or self._model
        usage = data.get("usage")
        if isinstance(usage, Mapping):
            self._usage = self._usage_of(usage, raw)
        choices = data.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                if not isinstance(choice, Mapping):
                    continue
                delta = choice.get("delta") or choice.get("message") or {}
                text = delta.get("content") if isinstance(delta, Mapping) else None
                if isinstance(text, str) and text:
                    out.append(TextDeltaEvent(text=text, id=ident, model=model))
                reason = choice.get("finish_reason")
                if isinstance(reason, str) and reason:
                    self._finish_reason = reason
        elif isinstance(data.get("response"), str) and data["response"]:
            # Legacy Workers-AI style piece: {"response": "...", "p": ...}
            out.append(TextDeltaEvent(text=data["response"], id=ident, model=model))
        return out
