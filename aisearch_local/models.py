"""Request models of the query routes: each body is parsed once, into one of these.

* :class:`SearchRequest` - ``query`` or ``messages`` plus ``ai_search_options`` (search, and the
  retrieval half of chat);
* :class:`ChatSettings` - ``model``, ``stream``, ``max_tokens`` and ``stop`` of a chat body;
* :class:`ChatRequest` - both, for ``/chat/completions``.

Parsing raises :class:`aisearch_local.errors.ValidationError` naming the field, in the order the
fields were always checked (chat settings first, then the messages).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aisearch_local.errors import APIError, bad_request
from aisearch_local.options import query_from_messages, validate_messages
from aisearch_local.validation import INSTANCE_ID_RE, check_option_keys

__all__ = ["ChatRequest", "ChatSettings", "SearchRequest"]


@dataclass(frozen=True)
class SearchRequest:
    """A parsed search body (or the retrieval half of a chat body).

    Attributes:
        query: The query text (the last user message's text parts when the body has
            ``messages``).
        messages: The validated messages, or None for a ``query`` body.
        raw_options: ``ai_search_options`` as sent (validated later, per instance).
        query_kind: ``text``, ``image`` or ``multimodal``: the parts of the query message.
        images: How many ``image_url`` parts the query message carries.
    """

    query: str
    messages: list[dict[str, Any]] | None
    raw_options: Any
    query_kind: str = "text"
    images: int = 0

    @classmethod
    def parse(
        cls, body: dict[str, Any], *, chat: bool = False, strict: bool = False
    ) -> SearchRequest:
        """Parse a search body (exactly one of query and messages) or a chat body (messages).

        With ``strict`` (``aisearch-local serve --strict``) an unknown section or key of
        ``ai_search_options`` is refused; otherwise it is ignored (the default).
        """
        if strict:
            check_option_keys(body.get("ai_search_options"))
        query = body.get("query")
        messages = body.get("messages")
        if chat:
            if messages is None:
                raise bad_request("messages", "is required")
        elif (query is None) == (messages is None):
            raise bad_request("query", "provide exactly one of query or messages")
        elif query is not None:
            if not isinstance(query, str) or not query.strip():
                raise bad_request("query", "must be a non-empty string")
            return cls(query, None, body.get("ai_search_options"))
        msgs = validate_messages(messages)
        q = query_from_messages(msgs)
        return cls(q.text, msgs, body.get("ai_search_options"), q.kind, q.images)

    @property
    def options(self) -> Any:
        """``ai_search_options`` without ``instance_ids`` (which only selects instances)."""
        raw = self.raw_options
        if isinstance(raw, dict) and "instance_ids" in raw:
            return {k: v for k, v in raw.items() if k != "instance_ids"}
        return raw

    def instance_ids(self) -> list[str]:
        """The ``ai_search_options.instance_ids`` of a namespace request, without repeats."""
        opts = self.raw_options if isinstance(self.raw_options, dict) else {}
        ids = opts.get("instance_ids")
        if isinstance(ids, list) and len(ids) > 10:  # the service's own code for this case
            raise APIError(
                400,
                7074,
                "ai_search_options.instance_ids: at most 10 instances per request "
                f"(got {len(ids)})",
            )
        if not isinstance(ids, list) or not 1 <= len(ids) <= 10:
            n = len(ids) if isinstance(ids, list) else ids
            raise bad_request(
                "ai_search_options.instance_ids",
                f"must be a list of 1 to 10 instance ids (got {n!r})",
            )
        for i, iid in enumerate(ids):
            if not isinstance(iid, str) or len(iid) > 64 or not INSTANCE_ID_RE.fullmatch(iid):
                raise bad_request(
                    f"ai_search_options.instance_ids[{i}]",
                    "must be an instance id: 1 to 64 lowercase letters, digits, '_' and single '-'",
                )
        return list(dict.fromkeys(ids))

    def max_results(self) -> int:
        """``retrieval.max_num_results`` as sent (10 when absent): the cap of a merged list."""
        opts = self.raw_options.get("retrieval") if isinstance(self.raw_options, dict) else None
        cap = opts.get("max_num_results") if isinstance(opts, dict) else None
        return int(cap or 10)


@dataclass(frozen=True)
class ChatSettings:
    """The generation settings of a chat body.

    Attributes:
        model: The requested model, or None for the instance's.
        stream: Answer with Server-Sent Events.
        max_tokens: ``max_tokens`` (or ``max_completion_tokens``), >= 1.
        stop: Up to 4 stop strings.
    """

    model: str | None = None
    stream: bool = False
    max_tokens: int | None = None
    stop: list[str] | None = None

    @classmethod
    def parse(cls, body: dict[str, Any]) -> ChatSettings:
        """Parse ``model``, ``stream``, ``max_tokens`` and ``stop`` of a body."""
        model = body.get("model")
        if model is not None and not isinstance(model, str):
            raise bad_request("model", "must be a string")
        stream = body.get("stream", False)
        if not isinstance(stream, bool):
            raise bad_request("stream", "must be a boolean")
        mt = body.get("max_tokens", body.get("max_completion_tokens"))
        if mt is not None and (isinstance(mt, bool) or not isinstance(mt, int) or mt < 1):
            raise bad_request("max_tokens", f"must be an integer >= 1 (got {mt!r})")
        stop = body.get("stop")
        if isinstance(stop, str):
            stop = [stop]
        if stop is not None and (
            not isinstance(stop, list) or not all(isinstance(s, str) for s in stop) or len(stop) > 4
        ):
            raise bad_request("stop", "must be a string or a list of at most 4 strings")
        return cls(model=model, stream=stream, max_tokens=mt, stop=stop)


@dataclass(frozen=True)
class ChatRequest:
    """A parsed ``/chat/completions`` body: generation settings and the retrieval request."""

    settings: ChatSettings
    search: SearchRequest

    @classmethod
    def parse(cls, body: dict[str, Any], *, strict: bool = False) -> ChatRequest:
        """Parse a chat body once: the settings, then the messages and options."""
        settings = ChatSettings.parse(body)
        return cls(settings, SearchRequest.parse(body, chat=True, strict=strict))
