"""Chat-completions target shared by the query engine, chat engine, LLM and tool spec."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from typing_extensions import TypedDict

from aisearch import ChatCompletion, InvalidRequestError, SearchOptions
from aisearch._config import validate_instance_id
from aisearch._params import check_generation, check_instance_ids

from ._common import AISearchConnection, check_mapping, resolve_connection
from ._options import (
    PLACE_KEYS,
    EngineKwargs,
    EngineOptionAttributes,
    SearchConfig,
    check_option_keywords,
    split_kwargs,
)
from ._streams import AsyncEvents, Events

__all__ = ["GENERATION_KEYS", "ChatKwargs", "ChatTarget", "TargetOwner", "check_text"]

GENERATION_KEYS = ("temperature", "max_tokens", "stop")
"""The typed generation settings (the LLM's fields), checked by the core's rules."""


def check_text(value: Any, name: str) -> None:
    """Check an optional, non-empty string setting (``model``, ``namespace`` ...).

    Raises:
        InvalidRequestError: Naming the setting.
    """
    if value is not None and (not isinstance(value, str) or not value):
        raise InvalidRequestError(
            f"{name}: must be a non-empty string or None (got {type(value).__name__})"
        )


class _TargetKwargs(TypedDict, total=False):
    instance_ids: Sequence[str] | None
    model: str | None
    extra_body: Mapping[str, Any] | None


class ChatKwargs(_TargetKwargs, EngineKwargs, total=False):
    """What every chat-completions adapter (engines, LLM, tool spec) takes as keywords.

    ``instance_ids`` (several instances of one namespace, instead of ``instance_id``),
    ``model``, ``namespace``, ``extra_body`` (raw top-level request fields merged last) and
    ``connection`` (a shared :class:`AISearchConnection`), all ``None`` by default, then the
    search options and the connection settings.
    """


TARGET_KEYS = PLACE_KEYS | frozenset(_TargetKwargs.__annotations__)


def _check_ids(instance_id: Any, instance_ids: Any, public: bool = False) -> list[str] | None:
    """Check the target: exactly one of an instance id or a list of 1 to 10 (the core's checks)."""
    if instance_id is not None and instance_ids is not None:
        raise InvalidRequestError("pass exactly one of instance_id=... or instance_ids=[...]")
    if instance_id is None and instance_ids is None and not public:
        raise InvalidRequestError(
            "pass exactly one of instance_id=... or instance_ids=[...] (or neither with "
            "public_endpoint=... or AISEARCH_PUBLIC_ENDPOINT)"
        )
    if instance_id is not None:
        validate_instance_id(instance_id)
    if instance_ids is None:
        return None
    if isinstance(instance_ids, str):
        raise InvalidRequestError(
            "instance_ids: must be a list of instance ids, not a string "
            "(use instance_id=... for one instance)"
        )
    return check_instance_ids(instance_ids)


class ChatTarget:
    """Where chat completions go (one instance, or up to 10 in a namespace) and with what.

    Built from an adapter's ``instance_id`` and its :class:`ChatKwargs` (an unknown keyword
    is refused in ``owner``'s name); the LLM adds its generation settings. ``settings``
    holds the keyword arguments every request sends (besides the messages and the
    options); :meth:`set` changes one, checked first.
    """

    def __init__(
        self,
        instance_id: str | None,
        kwargs: Mapping[str, Any],
        generation: Mapping[str, Any] | None = None,
        *,
        owner: type | None = None,
    ) -> None:
        if owner is not None:
            check_option_keywords(owner, kwargs, other=TARGET_KEYS)
        target = {k: v for k, v in kwargs.items() if k in TARGET_KEYS}
        search, connection_kwargs = split_kwargs(
            {k: v for k, v in kwargs.items() if k not in TARGET_KEYS}
        )
        self.instance_id = instance_id
        # neither is checked once the connection is known (a public endpoint needs neither)
        self.instance_ids = _check_ids(instance_id, target.get("instance_ids"), public=True)
        extra_options = search.pop("extra_options", None)
        given = {**target, **(generation or {})}
        self.settings: dict[str, Any] = {}
        for name in ("model", "namespace", *GENERATION_KEYS):
            self.set(name, given.get(name))
        self.config = SearchConfig(search)
        self.settings["extra_options"] = check_mapping(extra_options, "extra_options")
        self.settings["extra_body"] = check_mapping(target.get("extra_body"), "extra_body") or None
        self.connection = resolve_connection(target.get("connection"), connection_kwargs)
        _check_ids(instance_id, self.instance_ids, self.connection.uses_public_endpoint)

    def set(self, name: str, value: Any) -> None:
        """Change ``model``, ``namespace`` or a generation setting; the next request sends it.

        Raises:
            InvalidRequestError: A bad value, naming the field (nothing changes then).
        """
        if name in GENERATION_KEYS:
            check_generation({name: value})
        else:
            check_text(value, name)
        self.settings[name] = value

    @property
    def model(self) -> str | None:
        """The generation model (``None``: the instance's)."""
        model: str | None = self.settings["model"]
        return model

    @property
    def options(self) -> SearchOptions | None:
        """The validated ``ai_search_options`` sent with every request."""
        return self.config.options

    @property
    def label(self) -> str:
        """The instance id, the comma-joined ids of a namespace target, or the public endpoint."""
        return (
            self.instance_id
            or ",".join(self.instance_ids or [])
            or (self.connection.public_endpoint or "")
        )

    def _kwargs(self) -> dict[str, Any]:
        return {**self.settings, "options": self.options}

    def _args(self, messages: list[dict[str, Any]]) -> tuple[Any, ...]:
        """The positional arguments of the single- or the multi-instance method."""
        return (self.instance_id or self.instance_ids, messages)

    def _public_kwargs(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """A public endpoint's chat keywords (no namespace; ``instance_ids`` optional)."""
        kwargs = {k: v for k, v in self._kwargs().items() if k != "namespace"}
        return {**kwargs, "messages": messages, "instance_ids": self.instance_ids}

    def complete(self, messages: list[dict[str, Any]]) -> ChatCompletion:
        """One chat completion (sync)."""
        if self.connection.uses_public_endpoint:
            return self.connection.public_client.chat_completions(**self._public_kwargs(messages))
        client = self.connection.client
        send = client.chat_completions if self.instance_id else client.namespace_chat_completions
        return send(*self._args(messages), **self._kwargs())

    async def acomplete(self, messages: list[dict[str, Any]]) -> ChatCompletion:
        """One chat completion (async)."""
        if self.connection.uses_public_endpoint:
            public = self.connection.async_public_client
            return await public.chat_completions(**self._public_kwargs(messages))
        client = self.connection.async_client
        send = client.chat_completions if self.instance_id else client.namespace_chat_completions
        return await send(*self._args(messages), **self._kwargs())

    def stream(self, messages: list[dict[str, Any]]) -> Events:
        """A streamed chat completion (sync): sources event first, then text, then end."""
        if self.connection.uses_public_endpoint:
            public = self.connection.public_client
            return cast("Events", public.stream_chat_completions(**self._public_kwargs(messages)))
        client = self.connection.client
        single, multi = client.stream_chat_completions, client.stream_namespace_chat_completions
        send = single if self.instance_id else multi
        # a generator (typed Iterator) today, an EventStream once the core returns one: both
        # close
        return cast("Events", send(*self._args(messages), **self._kwargs()))

    def astream(self, messages: list[dict[str, Any]]) -> AsyncEvents:
        """A streamed chat completion (async)."""
        if self.connection.uses_public_endpoint:
            apublic = self.connection.async_public_client
            events = apublic.stream_chat_completions(**self._public_kwargs(messages))
            return cast("AsyncEvents", events)
        client = self.connection.async_client
        single, multi = client.stream_chat_completions, client.stream_namespace_chat_completions
        send = single if self.instance_id else multi
        return cast("AsyncEvents", send(*self._args(messages), **self._kwargs()))


class TargetOwner(EngineOptionAttributes):
    """An adapter sending chat completions through its :class:`ChatTarget`.

    Its search options are attributes (see :class:`EngineOptionAttributes`).
    """

    _target: ChatTarget
    _search_config: SearchConfig

    def _set_target(self, target: ChatTarget) -> None:
        self._target = target
        self._search_config = target.config  # what the option attributes read and set

    @property
    def connection(self) -> AISearchConnection:
        """The connection (shared pooled clients) this object uses."""
        return self._target.connection
