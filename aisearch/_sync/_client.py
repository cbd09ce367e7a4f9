# GENERATED from aisearch/_async/_client.py by scripts/unasync.py: do not edit by hand.
"""``AISearchClient``: search, chat, the legacy AutoRAG routes and fan-out.

The async module (``aisearch/_async/``) is written by hand; its sync twin (``aisearch/_sync/``)
is generated from it by ``scripts/unasync.py``. Management methods come from
``_Management``, sending from ``_Transport``, request building and parsing from
``_BaseClient``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from aisearch._config import (
    DEFAULT_NAMESPACE,
    DEFAULT_TIMEOUT,
    resolve_config,
)
from aisearch._fanout import MergeMode, SearchTarget, merge_results, prepare, run_sync
from aisearch._keywords import ChatParams, LegacyChatParams, LegacyParams, SearchParams, takes
from aisearch._models import ChatCompletion, FanOutResult, SearchResult
from aisearch._params import Messages, Options
from aisearch._parse import parse_chat as _parse_chat
from aisearch._parse import parse_legacy as _parse_legacy
from aisearch._parse import parse_search as _parse_search
from aisearch._sync._management import _Management
from aisearch._sync._streams import EventStream

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["AISearchClient"]


class AISearchClient(_Management):
    """Synchronous client of the Cloudflare AI Search REST API.

    Args:
        account_id: Cloudflare account id (env ``CLOUDFLARE_ACCOUNT_ID``, ``CF_ACCOUNT_ID``).
        api_token: API token (env ``CLOUDFLARE_API_TOKEN``, ``CF_AI_SEARCH_API_TOKEN``,
            ``CF_API_TOKEN``).
        api_email: Account email for global-key auth (env ``CLOUDFLARE_EMAIL``).
        api_key: Global API key (env ``CLOUDFLARE_API_KEY``).
        namespace: Default namespace.
        base_url: API root (env ``AISEARCH_BASE_URL``, else the public API).
        timeout: Default timeout of every call. Its largest value also bounds each attempt
            as a whole, from connect to the last byte of the body.
        max_retries: Retries of connection errors, timeouts, 408/409/429/5xx.
        http_client: An ``httpx.Client`` to use (not closed by ``close()``).
        total_timeout: Cap in seconds of a whole call, retries and backoff included (a
            stream: until its last event); ``None`` for no cap beyond the attempts' own.
        stream_idle_timeout: Longest wait in seconds between two events of a stream
            (comments do not count); ``None`` for the timeout's largest value.

    Raises:
        AISearchError: If the account id or the credentials are missing.

    Example:
        >>> with AISearchClient(account_id="...", api_token="...") as client:
        ...     result = client.search("docs", "How do I get started?")
    """

    def __init__(
        self,
        *,
        account_id: str | None = None,
        api_token: str | None = None,
        api_email: str | None = None,
        api_key: str | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        base_url: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        http_client: httpx.Client | None = None,
        total_timeout: float | None = None,
        stream_idle_timeout: float | None = None,
    ) -> None:
        config = resolve_config(
            account_id=account_id,
            api_token=api_token,
            api_email=api_email,
            api_key=api_key,
            namespace=namespace,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
        )
        self._setup(
            config,
            f"/accounts/{config.account_id}",
            http_client,
            total_timeout,
            stream_idle_timeout,
        )

    @property
    def account_id(self) -> str:
        """The Cloudflare account id."""
        return self._config.account_id

    @property
    def namespace(self) -> str:
        """The default namespace."""
        return self._config.namespace

    # ------------------------------------------------------------------ search and chat

    @takes(SearchParams)
    def search(
        self, instance_id: str, query: str | None = None, **params: Unpack[SearchParams]
    ) -> SearchResult:
        """Search one instance (retrieval only).

        Args:
            instance_id: The instance id.
            query: The query text (either this or ``messages``).
            **params: The keyword options of ``SearchParams``.

        Returns:
            The chunks, best first, with ``search_query`` and ``query_kind``.

        Raises:
            InvalidRequestError: Before any network call, for bad arguments.
            APIStatusError: For error responses (after retries).
            APIResponseValidationError: If the body does not fit.
        """
        return self._request(self._search_req(instance_id, query, params), _parse_search)

    @takes(ChatParams)
    def chat_completions(
        self, instance_id: str, messages: Messages, **params: Unpack[ChatParams]
    ) -> ChatCompletion:
        """Retrieve from one instance and generate an answer.

        Args:
            instance_id: The instance id.
            messages: The conversation (``ChatMessage`` or dicts).
            **params: The keyword options of ``ChatParams``.

        Returns:
            The completion, with the chunks it used.
        """
        req = self._chat_req(instance_id, messages, params, stream=False)
        return self._request(req, _parse_chat)

    @takes(ChatParams)
    def stream_chat_completions(
        self, instance_id: str, messages: Messages, **params: Unpack[ChatParams]
    ) -> EventStream:
        """Stream a chat completion: a ``SourcesEvent``, ``TextDeltaEvent``s, a ``StreamEndEvent``.

        Arguments are validated now; the request is sent when iteration starts.

        Args:
            instance_id: The instance id.
            messages: The conversation.
            **params: The keyword options of ``ChatParams``.

        Returns:
            An ``EventStream`` of typed events (iterate it; ``close()`` it to stop early).

        Raises:
            StreamInterruptedError: (while iterating) if the stream ends without ``[DONE]``.
            APIStatusError: (while iterating) for error statuses or error events.
        """
        req = self._chat_req(instance_id, messages, params, stream=True)
        return EventStream(self._stream(req))

    @takes(SearchParams)
    def namespace_search(
        self, instance_ids: Sequence[str], query: str | None = None, **params: Unpack[SearchParams]
    ) -> SearchResult:
        """Search 1 to 10 instances of a namespace in one call.

        Args:
            instance_ids: 1 to 10 instance ids.
            query: The query text (either this or ``messages``).
            **params: The keyword options of ``SearchParams``.

        Returns:
            Merged chunks (each with ``instance_id``) and the per-instance ``errors``.
        """
        req = self._search_req(instance_ids, query, params, namespaced=True)
        return self._request(req, _parse_search)

    @takes(ChatParams)
    def namespace_chat_completions(
        self, instance_ids: Sequence[str], messages: Messages, **params: Unpack[ChatParams]
    ) -> ChatCompletion:
        """Chat over 1 to 10 instances of a namespace.

        Args:
            instance_ids: 1 to 10 instance ids.
            messages: The conversation.
            **params: The keyword options of ``ChatParams``.

        Returns:
            The completion with its chunks and per-instance ``errors``.
        """
        req = self._chat_req(instance_ids, messages, params, stream=False, namespaced=True)
        return self._request(req, _parse_chat)

    @takes(ChatParams)
    def stream_namespace_chat_completions(
        self, instance_ids: Sequence[str], messages: Messages, **params: Unpack[ChatParams]
    ) -> EventStream:
        """Stream a chat over 1 to 10 instances of a namespace.

        Args:
            instance_ids: 1 to 10 instance ids.
            messages: The conversation.
            **params: The keyword options of ``ChatParams``.

        Returns:
            An ``EventStream`` of typed events (iterate it; ``close()`` it to stop early).
        """
        req = self._chat_req(instance_ids, messages, params, stream=True, namespaced=True)
        return EventStream(self._stream(req, join_errors=True))

    # ------------------------------------------------------------------ legacy AutoRAG

    @takes(LegacyParams)
    def legacy_search(
        self, rag_id: str, query: str, **params: Unpack[LegacyParams]
    ) -> SearchResult:
        """Search with the legacy ``/autorag/rags/{rag_id}/search`` route.

        Args:
            rag_id: The AutoRAG (instance) name.
            query: The query text.
            **params: The keyword options of ``LegacyParams``.

        Returns:
            Chunks normalised to ``Chunk`` (``filename``, ``attributes`` kept as extras).
        """
        req = self._legacy_req(rag_id, "search", query, params)
        return self._request(req, _parse_legacy)

    @takes(LegacyChatParams)
    def legacy_ai_search(
        self, rag_id: str, query: str, **params: Unpack[LegacyChatParams]
    ) -> SearchResult:
        """Search and generate with the legacy ``/autorag/rags/{rag_id}/ai-search`` route.

        Args:
            rag_id: The AutoRAG (instance) name.
            query: The query text.
            **params: The keyword options of ``LegacyChatParams``.

        Returns:
            The result, with the generated text in ``response``.
        """
        req = self._legacy_req(rag_id, "ai-search", query, params)
        return self._request(req, _parse_legacy)

    @takes(LegacyChatParams)
    def stream_legacy_ai_search(
        self, rag_id: str, query: str, **params: Unpack[LegacyChatParams]
    ) -> EventStream:
        """Stream the legacy ``/ai-search`` answer: ``TextDeltaEvent``s then a ``StreamEndEvent``.

        Args:
            rag_id: The AutoRAG (instance) name.
            query: The query text.
            **params: The keyword options of ``LegacyChatParams``.

        Returns:
            An ``EventStream`` of typed events (iterate it; ``close()`` it to stop
            early). The legacy stream carries no sources.
        """
        req = self._legacy_req(rag_id, "ai-search", query, params, stream=True)
        return EventStream(self._stream(req))

    # ------------------------------------------------------------------ fan-out

    def fan_out_search(
        self,
        targets: Sequence[str | SearchTarget],
        query: str,
        *,
        options: Options = None,
        merge: MergeMode = "score",
        top_k: int | None = None,
        max_concurrency: int = 8,
        extra_options: Mapping[str, Any] | None = None,
    ) -> FanOutResult:
        """Search many instances concurrently and merge the results.

        The searches run concurrently: as tasks with the async client, in threads with the
        sync one.

        Args:
            targets: Instance ids or ``SearchTarget`` (another namespace, or another
                ``AISearchClient``).
            query: The query text.
            options: ``SearchOptions`` or a mapping, used for every target.
            merge: ``"score"`` (by chunk score) or ``"rrf"`` (reciprocal rank fusion).
            top_k: Keep at most this many merged chunks.
            max_concurrency: Searches in flight at once (1 to 64).
            extra_options: Merged into every target's ``ai_search_options`` last.

        Returns:
            Merged chunks (each with ``instance_id``) and one ``InstanceError`` per failure.
        """
        tgts, opts = prepare(targets, query, options, merge, top_k, max_concurrency)

        def one(client: AISearchClient, target: SearchTarget) -> SearchResult:
            return client.search(
                target.instance_id,
                query,
                options=opts,
                namespace=target.namespace,
                extra_options=extra_options,
            )

        outcomes = run_sync(self, tgts, one, max_concurrency)
        return merge_results(outcomes, merge=merge, top_k=top_k)
