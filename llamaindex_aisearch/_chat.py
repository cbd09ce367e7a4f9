"""Chat-completions target shared by the query engine, chat engine, LLM and tool spec."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from aisearch import ChatCompletion, InvalidRequestError, SearchOptions

from ._common import AISearchConnection, check_mapping, resolve_connection
from ._options import SEARCH_KEYS, SearchConfig
from ._streams import AsyncEvents, Events

__all__ = ["ChatTarget", "check_text"]


def check_text(value: Any, name: str) -> None:
    """Check an optional, non-empty string setting (``model``, ``namespace`` ...).

    Raises:
        InvalidRequestError: Naming the setting.
    """
    if value is not None and (not isinstance(value, str) or not value):
        raise InvalidRequestError(
            f"{name}: must be a non-empty string or None (got {type(value).__name__})"
        )


class ChatTarget:
    """Where chat completions go (one instance, or up to 10 in a namespace) and with what."""

    def __init__(
        self,
        *,
        instance_id: str | None,
        instance_ids: Sequence[str] | None,
        model: str | None,
        namespace: str | None,
        extra_body: Mapping[str, Any] | None,
        connection: AISearchConnection | None,
        kwargs: Mapping[str, Any],
    ) -> None:
        if (instance_id is None) == (instance_ids is None):
            raise InvalidRequestError("pass exactly one of instance_id=... or instance_ids=[...]")
        if instance_id is not None and (not isinstance(instance_id, str) or not instance_id):
            raise InvalidRequestError(
                f"instance_id: must be a non-empty string (got {instance_id!r})"
            )
        ids: list[str] | None = None
        if instance_ids is not None:
            if isinstance(instance_ids, str):
                raise InvalidRequestError(
                    "instance_ids: must be a list of instance ids, not a string "
                    "(use instance_id=... for one instance)"
                )
            ids = list(instance_ids)
            if not 1 <= len(ids) <= 10:
                raise InvalidRequestError(
                    f"instance_ids: must hold 1 to 10 instance ids (got {len(ids)})"
                )
            for i, value in enumerate(ids):
                if not isinstance(value, str) or not value:
                    raise InvalidRequestError(
                        f"instance_ids[{i}]: must be a non-empty string (got {value!r})"
                    )
        search = {k: v for k, v in kwargs.items() if k in SEARCH_KEYS}
        connection_kwargs = {k: v for k, v in kwargs.items() if k not in SEARCH_KEYS}
        extra_options = search.pop("extra_options", None)
        check_text(model, "model")
        check_text(namespace, "namespace")
        self.instance_id = instance_id
        self.instance_ids = ids
        self.model = model
        self.namespace = namespace
        self.config = SearchConfig(search)
        self.extra_options: dict[str, Any] | None = check_mapping(extra_options, "extra_options")
        self.extra_body: dict[str, Any] | None = check_mapping(extra_body, "extra_body") or None
        self.connection = resolve_connection(connection, connection_kwargs)

    @property
    def options(self) -> SearchOptions | None:
        """The validated ``ai_search_options`` sent with every request."""
        return self.config.options

    @property
    def label(self) -> str:
        """The instance id, or the comma-joined ids of a namespace target."""
        return self.instance_id or ",".join(self.instance_ids or [])

    def _kwargs(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "options": self.options,
            "namespace": self.namespace,
            "extra_options": self.extra_options,
            "extra_body": self.extra_body,
        }

    def _args(self, messages: list[dict[str, Any]]) -> tuple[Any, ...]:
        """The positional arguments of the single- or the multi-instance method."""
        return (self.instance_id or self.instance_ids, messages)

    def complete(self, messages: list[dict[str, Any]]) -> ChatCompletion:
        """One chat completion (sync)."""
        client = self.connection.client
        send = client.chat_completions if self.instance_id else client.namespace_chat_completions
        return send(*self._args(messages), **self._kwargs())

    async def acomplete(self, messages: list[dict[str, Any]]) -> ChatCompletion:
        """One chat completion (async)."""
        client = self.connection.async_client
        send = client.chat_completions if self.instance_id else client.namespace_chat_completions
        return await send(*self._args(messages), **self._kwargs())

    def stream(self, messages: list[dict[str, Any]]) -> Events:
        """A streamed chat completion (sync): sources event first, then text, then end."""
        client = self.connection.client
        single, multi = client.stream_chat_completions, client.stream_namespace_chat_completions
        send = single if self.instance_id else multi
        # a generator (typed Iterator) today, an EventStream once the core returns one: both
        # close
        return cast("Events", send(*self._args(messages), **self._kwargs()))

    def astream(self, messages: list[dict[str, Any]]) -> AsyncEvents:
        """A streamed chat completion (async)."""
        client = self.connection.async_client
        single, multi = client.stream_chat_completions, client.stream_namespace_chat_completions
        send = single if self.instance_id else multi
        return cast("AsyncEvents", send(*self._args(messages), **self._kwargs()))
