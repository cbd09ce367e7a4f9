# GENERATED from aisearch/_async/_public.py by scripts/unasync.py: do not edit by hand.
"""``AISearchPublicClient``: search and chat through a public endpoint (no API token).

The async module (``aisearch/_async/``) is written by hand; its sync twin (``aisearch/_sync/``)
is generated from it by ``scripts/unasync.py``. Sending, retries, timeouts and streaming are
``_Transport``'s, the bodies ``_BaseClient``'s, the answers the same typed results.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

import httpx

from aisearch._config import DEFAULT_TIMEOUT
from aisearch._keywords import ChatParams, check_keywords, takes
from aisearch._models import ChatCompletion, SearchResult
from aisearch._params import (
    Messages,
    check_generation,
    check_instance_ids,
    query_or_messages,
)
from aisearch._parse import parse_chat as _parse_chat
from aisearch._parse import parse_search as _parse_search
from aisearch._public import (
    PublicChatParams,
    PublicSearchParams,
    public_hint,
    resolve_public_config,
)
from aisearch._requests import _Request, chat_base
from aisearch._sync._streams import EventStream
from aisearch._sync._transport import _Transport

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["AISearchPublicClient"]


class AISearchPublicClient(_Transport):
    """Synchronous client of an AI Search public endpoint: no account, no API token.

    The endpoint of one instance answers for that instance; the endpoint of a namespace
    (``https://ns-<id>...``) searches the instances it allows, all of them unless a call
    names some in ``instance_ids``. Results, streams and errors are the same types as
    ``AISearchClient``'s; a public endpoint's own codes map into the same tree
    (60005 ``RateLimitError``, 60007-60009 ``PermissionDeniedError`` for a disabled route,
    60006/60013/60014/60018 ``NotFoundError``, 60012/60015 ``BadRequestError``, 60016
    ``MethodNotAllowedError``, 60100 ``InternalServerError``).

    Args:
        endpoint: The endpoint URL (env ``AISEARCH_PUBLIC_ENDPOINT``):
            ``https://<public_endpoint_id>.search.ai.cloudflare.com``,
            ``https://ns-<id>.search.ai.cloudflare.com``, a custom domain, or
            ``http://127.0.0.1:PORT/_public/<id>`` (a local server; plain http only there).
        access_client_id: Cloudflare Access service token id, for a custom domain behind
            Access (env ``CF_ACCESS_CLIENT_ID``); sent as ``CF-Access-Client-Id``.
        access_client_secret: Its secret (env ``CF_ACCESS_CLIENT_SECRET``); sent as
            ``CF-Access-Client-Secret``.
        timeout: Default timeout of every call.
        max_retries: Retries of connection errors, timeouts, 408/409/429/5xx.
        http_client: An ``httpx.Client`` to use (not closed by ``close()``).
        total_timeout: Cap in seconds of a whole call, retries and backoff included.
        stream_idle_timeout: Longest wait in seconds between two events of a stream.

    Raises:
        AISearchError: If the endpoint is missing, or only half of the Access token is given.
        InvalidRequestError: If the endpoint is not an https URL (http only for localhost).

    Example:
        >>> with AISearchPublicClient(
        ...     endpoint="https://0123abcd.search.ai.cloudflare.com"
        ... ) as client:
        ...     result = client.search("How do I get started?")
    """

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        access_client_id: str | None = None,
        access_client_secret: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        http_client: httpx.Client | None = None,
        total_timeout: float | None = None,
        stream_idle_timeout: float | None = None,
    ) -> None:
        config = resolve_public_config(
            endpoint=endpoint,
            access_client_id=access_client_id,
            access_client_secret=access_client_secret,
            timeout=timeout,
            max_retries=max_retries,
        )
        self._setup(config, "", http_client, total_timeout, stream_idle_timeout)

    @property
    def endpoint(self) -> str:
        """The public endpoint URL, without a trailing slash."""
        return self._config.base_url

    def __repr__(self) -> str:
        return f"{type(self).__name__}(endpoint={self._config.base_url!r})"

    __str__ = __repr__

    def _status_hints(self) -> dict[int, str]:
        hint = public_hint(self._config)
        return {401: hint, 403: hint}

    def _connection_hint(self) -> str | None:
        return None

    # ------------------------------------------------------------------ requests

    def _ids(self, instance_ids: Sequence[str] | None) -> list[str] | None:
        return None if instance_ids is None else check_instance_ids(instance_ids)

    def _public_search_req(
        self,
        query: str | None,
        instance_ids: Sequence[str] | None,
        params: PublicSearchParams,
    ) -> _Request:
        check_keywords(params, PublicSearchParams, f"{type(self).__name__}.search")
        base = query_or_messages(query, params.get("messages"))
        body = self._body(base, cast(ChatParams, params), self._ids(instance_ids))
        return _Request("POST", "/search", json=body)

    def _public_chat_req(
        self,
        messages: Messages,
        instance_ids: Sequence[str] | None,
        params: PublicChatParams,
        *,
        stream: bool,
    ) -> _Request:
        method = f"{'stream_' if stream else ''}chat_completions"
        check_keywords(params, PublicChatParams, f"{type(self).__name__}.{method}")
        generation = check_generation(params)
        base = chat_base(messages, params.get("model"), generation, stream)
        body = self._body(base, cast(ChatParams, params), self._ids(instance_ids))
        return _Request("POST", "/chat/completions", json=body)

    # ------------------------------------------------------------------ search and chat

    @takes(PublicSearchParams)
    def search(
        self,
        query: str | None = None,
        *,
        instance_ids: Sequence[str] | None = None,
        **params: Unpack[PublicSearchParams],
    ) -> SearchResult:
        """Search through the endpoint (``POST /search``; retrieval only).

        Args:
            query: The query text (either this or ``messages``).
            instance_ids: On a namespace endpoint, 1 to 10 of the instances it allows
                (``None``: every allowed instance). Sent as ``ai_search_options.instance_ids``.
            **params: The keyword options of ``PublicSearchParams``.

        Returns:
            The chunks, best first, with ``search_query`` (and a namespace's per-instance
            ``errors``).

        Raises:
            InvalidRequestError: Before any network call, for bad arguments.
            APIStatusError: For error responses (after retries).
            APIResponseValidationError: If the body does not fit.
        """
        req = self._public_search_req(query, instance_ids, params)
        return self._request(req, _parse_search)

    @takes(PublicChatParams)
    def chat_completions(
        self,
        messages: Messages,
        *,
        instance_ids: Sequence[str] | None = None,
        **params: Unpack[PublicChatParams],
    ) -> ChatCompletion:
        """Retrieve and generate an answer through the endpoint (``POST /chat/completions``).

        Args:
            messages: The conversation (``ChatMessage`` or dicts).
            instance_ids: On a namespace endpoint, 1 to 10 of the instances it allows
                (``None``: every allowed instance).
            **params: The keyword options of ``PublicChatParams``.

        Returns:
            The completion, with the chunks it used.
        """
        req = self._public_chat_req(messages, instance_ids, params, stream=False)
        return self._request(req, _parse_chat)

    @takes(PublicChatParams)
    def stream_chat_completions(
        self,
        messages: Messages,
        *,
        instance_ids: Sequence[str] | None = None,
        **params: Unpack[PublicChatParams],
    ) -> EventStream:
        """Stream a chat completion: a ``SourcesEvent``, ``TextDeltaEvent``s, a ``StreamEndEvent``.

        Arguments are validated now; the request is sent when iteration starts.

        Args:
            messages: The conversation.
            instance_ids: On a namespace endpoint, 1 to 10 of the instances it allows
                (``None``: every allowed instance).
            **params: The keyword options of ``PublicChatParams``.

        Returns:
            An ``EventStream`` of typed events (iterate it; ``close()`` it to stop early).

        Raises:
            StreamInterruptedError: (while iterating) if the stream ends without ``[DONE]``.
            APIStatusError: (while iterating) for error statuses or error events.
        """
        req = self._public_chat_req(messages, instance_ids, params, stream=True)
        return EventStream(self._stream(req, join_errors=True))
