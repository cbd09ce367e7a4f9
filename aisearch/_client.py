"""The AI Search clients: ``AISearchClient`` (sync) and ``AsyncAISearchClient`` (async).

Both build on ``_BaseClient`` (``_requests.py``), which builds every request and parses every
response, and on the management mixins (``_management.py``); only sending (with retries),
streaming, paging and polling differ between them.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar
from functools import partial
from typing import Any, cast

import httpcore
import httpx
from httpx_sse import EventSource

from aisearch._config import (
    DEFAULT_NAMESPACE,
    DEFAULT_TIMEOUT,
    ClientConfig,
)
from aisearch._exceptions import (
    AISearchError,
    APIStatusError,
    APITimeoutError,
    InvalidRequestError,
    StreamInterruptedError,
    scrub_chain,
)
from aisearch._exceptions import request_id as _request_id
from aisearch._exceptions import wrap_transport_error as _wrap_transport_error
from aisearch._fanout import (
    MergeMode,
    SearchTarget,
    merge_results,
    run_async,
    run_sync,
)
from aisearch._management import _AsyncManagement, _SyncManagement
from aisearch._models import (
    ChatCompletion,
    FanOutResult,
    SearchResult,
    StreamEvent,
)
from aisearch._params import Messages, Options
from aisearch._parse import MAX_ERROR_BODY, MAX_PAGES
from aisearch._parse import add_capped as _add_capped
from aisearch._parse import capped_response as _capped_response
from aisearch._parse import is_event_stream as _is_event_stream
from aisearch._parse import parse_chat as _parse_chat
from aisearch._parse import parse_envelope as _parse_envelope
from aisearch._parse import parse_legacy as _parse_legacy
from aisearch._parse import parse_search as _parse_search
from aisearch._redact import request_secrets
from aisearch._requests import _T, USER_AGENT, _Request, logger
from aisearch._retry import (
    attempt_budget,
    attempt_time,
    call_end,
    capped_timeouts,
    delay_for,
    is_retryable,
    sleep_fits,
)
from aisearch._sse import StreamDecoder

__all__ = ["AISearchClient", "AsyncAISearchClient"]

if sys.version_info >= (3, 11):
    _timeout: Callable[[float], AbstractAsyncContextManager[Any]] = asyncio.timeout
else:  # pragma: no cover - Python 3.10 has no asyncio.timeout
    import contextlib

    import anyio

    @contextlib.asynccontextmanager
    async def _timeout(delay: float) -> AsyncIterator[None]:
        with anyio.fail_after(delay):
            yield


# The async hard deadline fires this long after the phase timeouts given to httpx, so that
# httpx's own, more precise, error (PoolTimeout, ConnectTimeout...) wins when both are due.
_GRACE = 0.05


def _idle_timeout(config: ClientConfig) -> float | None:
    """The longest wait between two events of a stream."""
    idle = config.stream_idle_timeout
    return attempt_budget(config.timeout) if idle is None else idle


def _start_attempt(request: httpx.Request, config: ClientConfig, end: float | None) -> float | None:
    """Fix the time an attempt may take and shrink the request's phase timeouts to it.

    Args:
        request: The request about to be sent.
        config: The client's configuration (its timeout gives the attempt's budget).
        end: The call's deadline, or ``None``.

    Returns:
        The attempt's deadline (monotonic), or ``None`` when it has none.

    Raises:
        APITimeoutError: If ``end`` has already passed.
    """
    now = time.monotonic()
    allowed = attempt_time(now, attempt_budget(config.timeout), end)
    if allowed is None:
        return None
    if allowed <= 0:
        raise APITimeoutError("request timed out (total_timeout passed)", request=request)
    timeouts = request.extensions.get("timeout")
    if end is not None and timeouts:  # else every phase timeout is within the budget already
        request.extensions["timeout"] = capped_timeouts(timeouts, allowed)
    return now + allowed


_attempt_end: ContextVar[float | None] = ContextVar("aisearch_attempt_end", default=None)
"""Deadline (monotonic) of the sync attempt being sent in this context, read by the backend."""


def _left(timeout: float | None, error: type[httpcore.TimeoutException]) -> float | None:
    """``timeout`` of one socket operation, shrunk to the time left before the attempt's end.

    Raises:
        httpcore.TimeoutException: ``error``, when no time is left.
    """
    end = _attempt_end.get()
    if end is None:
        return timeout
    left = end - time.monotonic()
    if left <= 0:
        raise error("the attempt's deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write ends by the current attempt's deadline.

    httpcore applies the read timeout to each socket read, so a server trickling the
    response headers a byte at a time would otherwise never time out.
    """

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(
            ssl_context, server_hostname, _left(timeout, httpcore.ConnectTimeout)
        )
        return _DeadlineStream(inner)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's sync backend, whose connections obey the current attempt's deadline."""

    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(
            host, port, _left(timeout, httpcore.ConnectTimeout), local_address, socket_options
        )
        return _DeadlineStream(stream)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_unix_socket(
            path, _left(timeout, httpcore.ConnectTimeout), socket_options
        )
        return _DeadlineStream(stream)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _bound_socket_operations(client: httpx.Client) -> int:
    """Give every connection pool of ``client`` (one it built) the deadline backend.

    httpx offers no public way to pass a network backend while keeping its own transport
    set-up (limits, proxies from the environment, TLS), so the backend of each pool is
    swapped after the fact; ``test_the_own_pool_has_the_deadline_backend`` fails loudly
    if httpx or httpcore change that shape.

    Returns:
        How many pools were given the backend.
    """
    done = 0
    for transport in [client._transport, *client._mounts.values()]:
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if isinstance(backend, httpcore.NetworkBackend):
            pool._network_backend = _DeadlineBackend(backend)  # type: ignore[union-attr]
            done += 1
    return done


class _Watch:
    """The deadlines of a response body read synchronously.

    ``end`` is fixed; the idle deadline is renewed by ``renew()`` (after each stream event).
    """

    __slots__ = ("end", "idle", "idle_end")

    def __init__(self, end: float | None, idle: float | None) -> None:
        self.end = end
        self.idle = idle
        self.idle_end: float | None = None
        self.renew()

    def renew(self) -> None:
        if self.idle is not None:
            self.idle_end = time.monotonic() + self.idle

    def left(self) -> float | None:
        """Seconds before the nearer deadline (``None``: no deadline)."""
        end, idle_end = self.end, self.idle_end
        if idle_end is not None and (end is None or idle_end < end):
            end = idle_end
        return None if end is None else end - time.monotonic()

    def expired(self) -> str | None:
        """Why the body has to stop now, or ``None``."""
        now = time.monotonic()
        if self.end is not None and now >= self.end:
            return "deadline passed"
        if self.idle_end is not None and now >= self.idle_end:
            return f"no event within {self.idle:.3g} s"
        return None


class _WatchedStream(httpx.SyncByteStream):
    """A response body that raises ``httpx.ReadTimeout`` once a ``_Watch`` deadline passes.

    httpx bounds each read, not the body: a server trickling bytes never trips a read timeout.
    This checks the deadlines between reads, and shrinks the read timeout of the body to the
    time left when the body starts (httpcore reads it once per body).
    """

    def __init__(self, inner: httpx.SyncByteStream, watch: _Watch, request: httpx.Request):
        self._inner = inner
        self._watch = watch
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        left = self._watch.left()
        if left is not None:
            timeouts = self._request.extensions.get("timeout")
            if timeouts:
                self._request.extensions["timeout"] = capped_timeouts(timeouts, max(left, 0.001))
        for chunk in self._inner:
            why = self._watch.expired()
            if why is not None:
                raise httpx.ReadTimeout(why, request=self._request)
            yield chunk

    def close(self) -> None:
        self._inner.close()


def _read_error_body(response: httpx.Response) -> httpx.Response:
    """Read at most ``MAX_ERROR_BODY`` bytes of an error body (the caller closes ``response``)."""
    parts: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size = _add_capped(parts, size, chunk)
        if size > MAX_ERROR_BODY:
            break
    return _capped_response(response, parts)


async def _aread_error_body(response: httpx.Response) -> httpx.Response:
    """Read at most ``MAX_ERROR_BODY`` bytes of an error body (the caller closes ``response``)."""
    parts: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size = _add_capped(parts, size, chunk)
        if size > MAX_ERROR_BODY:
            break
    return _capped_response(response, parts)


def _watch_body(response: httpx.Response, watch: _Watch) -> None:
    """Make the (not yet read) body of a sync response obey ``watch``."""
    inner = cast(httpx.SyncByteStream, response.stream)
    response.stream = _WatchedStream(inner, watch, response.request)


def _stream_timeout_message(exc: httpx.TimeoutException) -> str:
    detail = str(exc)
    return f"stream read timed out ({detail})" if detail else "stream read timed out"


def _wait(end: float | None, idle: float | None) -> float | None:
    """Seconds an async stream may wait for its next event: the idle limit, within ``end``."""
    return attempt_time(time.monotonic(), idle, end)


async def _bounded(step: Awaitable[_T], wait: float | None, what: str) -> _T:
    """Await one step of a stream within ``wait`` seconds (``httpx.ReadTimeout`` after)."""
    if wait is None:
        return await step
    try:
        if wait <= 0:
            raise TimeoutError
        async with _timeout(wait):
            return await step
    except TimeoutError:
        if asyncio.iscoroutine(step):
            step.close()
        raise httpx.ReadTimeout(f"no {what} within {max(wait, 0.0):.3g} s") from None


class AISearchClient(_SyncManagement):
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

    _sleep: Callable[[float], None] = staticmethod(time.sleep)

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
        super().__init__(
            account_id=account_id,
            api_token=api_token,
            api_email=api_email,
            api_key=api_key,
            namespace=namespace,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            total_timeout=total_timeout,
            stream_idle_timeout=stream_idle_timeout,
        )
        if http_client is not None and not isinstance(http_client, httpx.Client):
            raise InvalidRequestError(
                f"http_client: must be an httpx.Client (got {type(http_client).__name__})"
            )
        self._owns_client = http_client is None
        if http_client is None:
            http_client = httpx.Client(
                headers={"User-Agent": USER_AGENT},
                timeout=self._config.timeout,
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            )
            _bound_socket_operations(http_client)
        self._client = http_client

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the pooled HTTP client (unless it was injected or shared)."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> AISearchClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ transport

    def _send(self, req: _Request, end: float | None, *, stream: bool = False) -> httpx.Response:
        """Send one attempt, within its budget and the call's deadline ``end``.

        The body (for a stream: an error body only) is read by the attempt's deadline.
        """
        request = self._build(req)
        deadline = _start_attempt(request, self._config, end)
        token = _attempt_end.set(deadline)  # every socket read and write ends by then
        try:
            try:
                response = self._client.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise _wrap_transport_error(exc, request) from exc
            logger.debug("%s %s -> %d", req.method, req.path, response.status_code)
            if stream and response.status_code < 400:
                return response
            if deadline is not None:
                _watch_body(response, _Watch(deadline, None))
            try:
                if response.status_code < 400:
                    response.read()
                    return response
                error_response = _read_error_body(response)
            except httpx.HTTPError as exc:
                raise _wrap_transport_error(exc, request) from exc
            finally:
                response.close()
        finally:
            _attempt_end.reset(token)
        raise self._status_error(error_response)

    def _retrying(self, req: _Request, call: Callable[[], _T], end: float | None) -> _T:
        """Run ``call`` until it succeeds or may not be retried (no sleep reaching ``end``)."""
        retries = 0
        while True:
            try:
                return call()
            except AISearchError as exc:
                if retries >= self._config.max_retries or not is_retryable(exc):
                    raise
                delay = delay_for(exc, retries)
                if not sleep_fits(delay, time.monotonic(), end):
                    raise
                retries += 1
                self._log_retry(req, exc, delay, retries)
                self._sleep(delay)

    def _request(self, req: _Request, parse: Callable[[httpx.Response], _T]) -> _T:
        end = call_end(self._config.total_timeout, time.monotonic())
        return self._retrying(req, lambda: parse(self._send(req, end)), end)

    def _stream(self, req: _Request, *, join_errors: bool = False) -> Iterator[StreamEvent]:
        end = call_end(self._config.total_timeout, time.monotonic())
        response = self._retrying(req, lambda: self._send(req, end, stream=True), end)
        watch = _Watch(end, _idle_timeout(self._config))
        _watch_body(response, watch)
        try:
            if not _is_event_stream(response):
                raise self._stream_content_error(response, response.read())
            decoder = StreamDecoder(
                response.status_code,
                _request_id(response),
                join_errors=join_errors,
                secrets=request_secrets(response.request),
            )
            for sse in EventSource(response).iter_sse():
                yield from decoder.feed(sse)
                if decoder.done:
                    return
                watch.renew()  # the idle wait starts when the consumer asks for more
                why = watch.expired()  # the total may have passed meanwhile
                if why is not None:
                    raise httpx.ReadTimeout(why)
            decoder.finish()
        except APIStatusError as exc:  # an error event: scrub what the service echoed
            self._scrubbed(exc)
            raise
        except httpx.TimeoutException as exc:
            scrub_chain(exc, response.request)
            raise APITimeoutError(_stream_timeout_message(exc), request=response.request) from exc
        except httpx.HTTPError as exc:
            scrub_chain(exc, response.request)
            raise StreamInterruptedError(
                f"the event stream broke before 'data: [DONE]': {type(exc).__name__}"
            ) from exc
        finally:
            response.close()

    def _paginate(
        self, path: str, model: type[_T], params: dict[str, Any], per_page: int
    ) -> list[_T]:
        end = call_end(self._config.total_timeout, time.monotonic())
        out: list[_T] = []
        for page in range(1, MAX_PAGES + 1):
            req = _Request("GET", path, params={**params, "page": page, "per_page": per_page})
            response = self._retrying(req, partial(self._send, req, end), end)
            env = _parse_envelope(response, "list")
            batch = self._page_items(env, model, response)
            out.extend(batch)
            if self._page_done(env, len(batch), len(out), per_page):
                break
        return out

    # ------------------------------------------------------------------ search and chat

    def search(
        self,
        instance_id: str,
        query: str | None = None,
        *,
        messages: Messages | None = None,
        options: Options = None,
        namespace: str | None = None,
        extra_options: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> SearchResult:
        """Search one instance (retrieval only).

        Args:
            instance_id: The instance id.
            query: The query text (either this or ``messages``).
            messages: A conversation to search with (either this or ``query``).
            options: ``SearchOptions`` or a mapping of the same shape.
            namespace: Namespace (the client's default when ``None``).
            extra_options: Merged into ``ai_search_options`` last (escape hatch).
            extra_body: Merged into the top-level body last (escape hatch).

        Returns:
            The chunks, best first, with ``search_query`` and ``query_kind``.

        Raises:
            InvalidRequestError: Before any network call, for bad arguments.
            APIStatusError: For error responses (after retries).
            APIResponseValidationError: If the body does not fit.
        """
        req = self._search_req(
            instance_id, query, messages, options, namespace, extra_options, extra_body
        )
        return self._request(req, _parse_search)

    def chat_completions(
        self,
        instance_id: str,
        messages: Messages,
        *,
        model: str | None = None,
        options: Options = None,
        namespace: str | None = None,
        extra_options: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> ChatCompletion:
        """Retrieve from one instance and generate an answer.

        Args:
            instance_id: The instance id.
            messages: The conversation (``ChatMessage`` or dicts).
            model: Generation model (the instance's when ``None``).
            options: ``SearchOptions`` or a mapping of the same shape.
            namespace: Namespace (the client's default when ``None``).
            extra_options: Merged into ``ai_search_options`` last.
            extra_body: Merged into the top-level body last.

        Returns:
            The completion, with the chunks it used.
        """
        req = self._chat_req(
            instance_id,
            messages,
            model,
            options,
            namespace,
            extra_options,
            extra_body,
            stream=False,
        )
        return self._request(req, _parse_chat)

    def stream_chat_completions(
        self,
        instance_id: str,
        messages: Messages,
        *,
        model: str | None = None,
        options: Options = None,
        namespace: str | None = None,
        extra_options: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> Iterator[StreamEvent]:
        """Stream a chat completion: a ``SourcesEvent``, ``TextDeltaEvent``s, a ``StreamEndEvent``.

        Arguments are validated now; the request is sent when iteration starts.

        Args:
            instance_id: The instance id.
            messages: The conversation.
            model: Generation model.
            options: ``SearchOptions`` or a mapping.
            namespace: Namespace.
            extra_options: Merged into ``ai_search_options`` last.
            extra_body: Merged into the top-level body last.

        Returns:
            An iterator of typed events.

        Raises:
            StreamInterruptedError: (while iterating) if the stream ends without ``[DONE]``.
            APIStatusError: (while iterating) for error statuses or error events.
        """
        req = self._chat_req(
            instance_id,
            messages,
            model,
            options,
            namespace,
            extra_options,
            extra_body,
            stream=True,
        )
        return self._stream(req)

    def namespace_search(
        self,
        instance_ids: Sequence[str],
        query: str | None = None,
        *,
        messages: Messages | None = None,
        options: Options = None,
        namespace: str | None = None,
        extra_options: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> SearchResult:
        """Search 1 to 10 instances of a namespace in one call.

        Args:
            instance_ids: 1 to 10 instance ids.
            query: The query text (either this or ``messages``).
            messages: A conversation (either this or ``query``).
            options: ``SearchOptions`` or a mapping.
            namespace: Namespace.
            extra_options: Merged into ``ai_search_options`` last.
            extra_body: Merged into the top-level body last.

        Returns:
            Merged chunks (each with ``instance_id``) and the per-instance ``errors``.
        """
        req = self._ns_search_req(
            instance_ids, query, messages, options, namespace, extra_options, extra_body
        )
        return self._request(req, _parse_search)

    def namespace_chat_completions(
        self,
        instance_ids: Sequence[str],
        messages: Messages,
        *,
        model: str | None = None,
        options: Options = None,
        namespace: str | None = None,
        extra_options: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> ChatCompletion:
        """Chat over 1 to 10 instances of a namespace.

        Args:
            instance_ids: 1 to 10 instance ids.
            messages: The conversation.
            model: Generation model.
            options: ``SearchOptions`` or a mapping.
            namespace: Namespace.
            extra_options: Merged into ``ai_search_options`` last.
            extra_body: Merged into the top-level body last.

        Returns:
            The completion with its chunks and per-instance ``errors``.
        """
        req = self._ns_chat_req(
            instance_ids,
            messages,
            model,
            options,
            namespace,
            extra_options,
            extra_body,
            stream=False,
        )
        return self._request(req, _parse_chat)

    def stream_namespace_chat_completions(
        self,
        instance_ids: Sequence[str],
        messages: Messages,
        *,
        model: str | None = None,
        options: Options = None,
        namespace: str | None = None,
        extra_options: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> Iterator[StreamEvent]:
        """Stream a chat over 1 to 10 instances of a namespace.

        Args:
            instance_ids: 1 to 10 instance ids.
            messages: The conversation.
            model: Generation model.
            options: ``SearchOptions`` or a mapping.
            namespace: Namespace.
            extra_options: Merged into ``ai_search_options`` last.
            extra_body: Merged into the top-level body last.

        Returns:
            An iterator of typed events.
        """
        req = self._ns_chat_req(
            instance_ids,
            messages,
            model,
            options,
            namespace,
            extra_options,
            extra_body,
            stream=True,
        )
        return self._stream(req, join_errors=True)

    # ------------------------------------------------------------------ legacy AutoRAG

    def legacy_search(
        self,
        rag_id: str,
        query: str,
        *,
        filters: Mapping[str, Any] | None = None,
        max_num_results: int | None = None,
        score_threshold: float | None = None,
        rewrite_query: bool | None = None,
        reranking: bool | Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> SearchResult:
        """Search with the legacy ``/autorag/rags/{rag_id}/search`` route.

        Args:
            rag_id: The AutoRAG (instance) name.
            query: The query text.
            filters: A legacy ``{type,key,value}`` filter, or Vectorize syntax (translated).
            max_num_results: 1 to 50.
            score_threshold: 0 to 1 (sent as ``ranking_options.score_threshold``).
            rewrite_query: Rewrite the query with an LLM.
            reranking: ``True``/``False`` or ``{"enabled": ..., "model": ...}``.
            extra_body: Merged into the body last.

        Returns:
            Chunks normalised to ``Chunk`` (``filename``, ``attributes`` kept as extras).
        """
        req = self._legacy_req(
            rag_id,
            "search",
            query,
            filters=filters,
            max_num_results=max_num_results,
            score_threshold=score_threshold,
            rewrite_query=rewrite_query,
            reranking=reranking,
            extra_body=extra_body,
        )
        return self._request(req, _parse_legacy)

    def legacy_ai_search(
        self,
        rag_id: str,
        query: str,
        *,
        model: str | None = None,
        system_prompt: str | None = None,
        filters: Mapping[str, Any] | None = None,
        max_num_results: int | None = None,
        score_threshold: float | None = None,
        rewrite_query: bool | None = None,
        reranking: bool | Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> SearchResult:
        """Search and generate with the legacy ``/autorag/rags/{rag_id}/ai-search`` route.

        Args:
            rag_id: The AutoRAG (instance) name.
            query: The query text.
            model: Generation model.
            system_prompt: Generation system prompt.
            filters: A legacy filter, or Vectorize syntax (translated).
            max_num_results: 1 to 50.
            score_threshold: 0 to 1.
            rewrite_query: Rewrite the query with an LLM.
            reranking: ``True``/``False`` or ``{"enabled": ..., "model": ...}``.
            extra_body: Merged into the body last.

        Returns:
            The result, with the generated text in ``response``.
        """
        req = self._legacy_req(
            rag_id,
            "ai-search",
            query,
            filters=filters,
            max_num_results=max_num_results,
            score_threshold=score_threshold,
            rewrite_query=rewrite_query,
            reranking=reranking,
            model=model,
            system_prompt=system_prompt,
            extra_body=extra_body,
        )
        return self._request(req, _parse_legacy)

    def stream_legacy_ai_search(
        self,
        rag_id: str,
        query: str,
        *,
        model: str | None = None,
        system_prompt: str | None = None,
        filters: Mapping[str, Any] | None = None,
        max_num_results: int | None = None,
        score_threshold: float | None = None,
        rewrite_query: bool | None = None,
        reranking: bool | Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> Iterator[StreamEvent]:
        """Stream the legacy ``/ai-search`` answer: ``TextDeltaEvent``s then a ``StreamEndEvent``.

        Args:
            rag_id: The AutoRAG (instance) name.
            query: The query text.
            model: Generation model.
            system_prompt: Generation system prompt.
            filters: A legacy filter, or Vectorize syntax (translated).
            max_num_results: 1 to 50.
            score_threshold: 0 to 1.
            rewrite_query: Rewrite the query with an LLM.
            reranking: ``True``/``False`` or ``{"enabled": ..., "model": ...}``.
            extra_body: Merged into the body last.

        Returns:
            An iterator of typed events (the legacy stream carries no sources).
        """
        req = self._legacy_req(
            rag_id,
            "ai-search",
            query,
            filters=filters,
            max_num_results=max_num_results,
            score_threshold=score_threshold,
            rewrite_query=rewrite_query,
            reranking=reranking,
            model=model,
            system_prompt=system_prompt,
            stream=True,
            extra_body=extra_body,
        )
        return self._stream(req)

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
        """Search many instances concurrently (threads) and merge the results.

        Args:
            targets: Instance ids or ``SearchTarget`` (another namespace or client).
            query: The query text.
            options: ``SearchOptions`` or a mapping, used for every target.
            merge: ``"score"`` (by chunk score) or ``"rrf"`` (reciprocal rank fusion).
            top_k: Keep at most this many merged chunks.
            max_concurrency: Searches in flight at once (1 to 64).
            extra_options: Merged into every target's ``ai_search_options`` last.

        Returns:
            Merged chunks (each with ``instance_id``) and one ``InstanceError`` per failure.
        """
        tgts, opts = self._fanout_prepare(targets, query, options, merge, top_k, max_concurrency)

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


class AsyncAISearchClient(_AsyncManagement):
    """Asynchronous client of the Cloudflare AI Search REST API (same methods, awaited).

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
        http_client: An ``httpx.AsyncClient`` to use (not closed by ``aclose()``).
        total_timeout: Cap in seconds of a whole call, retries and backoff included (a
            stream: until its last event); ``None`` for no cap beyond the attempts' own.
        stream_idle_timeout: Longest wait in seconds between two events of a stream
            (comments do not count); ``None`` for the timeout's largest value.

    Example:
        >>> async with AsyncAISearchClient(account_id="...", api_token="...") as client:
        ...     result = await client.search("docs", "How do I get started?")
    """

    _sleep: Callable[[float], Awaitable[None]] = staticmethod(asyncio.sleep)

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
        http_client: httpx.AsyncClient | None = None,
        total_timeout: float | None = None,
        stream_idle_timeout: float | None = None,
    ) -> None:
        super().__init__(
            account_id=account_id,
            api_token=api_token,
            api_email=api_email,
            api_key=api_key,
            namespace=namespace,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            total_timeout=total_timeout,
            stream_idle_timeout=stream_idle_timeout,
        )
        if http_client is not None and not isinstance(http_client, httpx.AsyncClient):
            raise InvalidRequestError(
                f"http_client: must be an httpx.AsyncClient (got {type(http_client).__name__})"
            )
        self._owns_client = http_client is None
        self._client = http_client or httpx.AsyncClient(
            headers={"User-Agent": USER_AGENT},
            timeout=self._config.timeout,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        )

    # ------------------------------------------------------------------ lifecycle

    async def aclose(self) -> None:
        """Close the pooled HTTP client (unless it was injected or shared)."""
        if self._owns_client:
            await self._client.aclose()

    async def close(self) -> None:
        """Alias of ``aclose()``."""
        await self.aclose()

    async def __aenter__(self) -> AsyncAISearchClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ transport

    async def _send(
        self, req: _Request, end: float | None, *, stream: bool = False
    ) -> httpx.Response:
        """Send one attempt, within its budget and the call's deadline ``end``, as a whole."""
        request = self._build(req)
        deadline = _start_attempt(request, self._config, end)
        if deadline is None:
            return await self._exchange(req, request, stream)
        allowed = deadline - time.monotonic()
        try:
            async with _timeout(allowed + _GRACE):
                return await self._exchange(req, request, stream)
        except TimeoutError as exc:
            raise APITimeoutError(
                f"request timed out (no complete response within {allowed:.3g} s)",
                request=request,
            ) from exc

    async def _exchange(
        self, req: _Request, request: httpx.Request, stream: bool
    ) -> httpx.Response:
        try:
            response = await self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise _wrap_transport_error(exc, request) from exc
        logger.debug("%s %s -> %d", req.method, req.path, response.status_code)
        if stream and response.status_code < 400:
            return response
        try:
            if response.status_code < 400:
                await response.aread()
                return response
            error_response = await _aread_error_body(response)
        except httpx.HTTPError as exc:
            raise _wrap_transport_error(exc, request) from exc
        finally:
            await response.aclose()
        raise self._status_error(error_response)

    async def _retrying(
        self, req: _Request, call: Callable[[], Awaitable[_T]], end: float | None
    ) -> _T:
        """Await ``call()`` until it succeeds or may not be retried (no sleep reaching ``end``)."""
        retries = 0
        while True:
            try:
                return await call()
            except AISearchError as exc:
                if retries >= self._config.max_retries or not is_retryable(exc):
                    raise
                delay = delay_for(exc, retries)
                if not sleep_fits(delay, time.monotonic(), end):
                    raise
                retries += 1
                self._log_retry(req, exc, delay, retries)
                await self._sleep(delay)

    async def _request(self, req: _Request, parse: Callable[[httpx.Response], _T]) -> _T:
        end = call_end(self._config.total_timeout, time.monotonic())

        async def call() -> _T:
            return parse(await self._send(req, end))

        return await self._retrying(req, call, end)

    async def _stream(
        self, req: _Request, *, join_errors: bool = False
    ) -> AsyncIterator[StreamEvent]:
        end = call_end(self._config.total_timeout, time.monotonic())
        response = await self._retrying(req, lambda: self._send(req, end, stream=True), end)
        idle = _idle_timeout(self._config)
        try:
            if not _is_event_stream(response):
                body = await _bounded(response.aread(), _wait(end, idle), "response body")
                raise self._stream_content_error(response, body)
            decoder = StreamDecoder(
                response.status_code,
                _request_id(response),
                join_errors=join_errors,
                secrets=request_secrets(response.request),
            )
            events = EventSource(response).aiter_sse()
            try:
                while True:
                    try:
                        sse = await _bounded(events.__anext__(), _wait(end, idle), "event")
                    except StopAsyncIteration:
                        break
                    for event in decoder.feed(sse):
                        yield event
                    if decoder.done:
                        return
            finally:
                await events.aclose()
            decoder.finish()
        except APIStatusError as exc:  # an error event: scrub what the service echoed
            self._scrubbed(exc)
            raise
        except httpx.TimeoutException as exc:
            scrub_chain(exc, response.request)
            raise APITimeoutError(_stream_timeout_message(exc), request=response.request) from exc
        except httpx.HTTPError as exc:
            scrub_chain(exc, response.request)
            raise StreamInterruptedError(
                f"the event stream broke before 'data: [DONE]': {type(exc).__name__}"
            ) from exc
        finally:
            await response.aclose()

    async def _paginate(
        self, path: str, model: type[_T], params: dict[str, Any], per_page: int
    ) -> list[_T]:
        end = call_end(self._config.total_timeout, time.monotonic())
        out: list[_T] = []
        for page in range(1, MAX_PAGES + 1):
            req = _Request("GET", path, params={**params, "page": page, "per_page": per_page})
            response = await self._retrying(req, partial(self._send, req, end), end)
            env = _parse_envelope(response, "list")
            batch = self._page_items(env, model, response)
            out.extend(batch)
            if self._page_done(env, len(batch), len(out), per_page):
                break
        return out

    # ------------------------------------------------------------------ search and chat

    async def search(
        self,
        instance_id: str,
        query: str | None = None,
        *,
        messages: Messages | None = None,
        options: Options = None,
        namespace: str | None = None,
        extra_options: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> SearchResult:
        """Search one instance (retrieval only). See ``AISearchClient.search``.

        Args:
            instance_id: The instance id.
            query: The query text (either this or ``messages``).
            messages: A conversation (either this or ``query``).
            options: ``SearchOptions`` or a mapping.
            namespace: Namespace.
            extra_options: Merged into ``ai_search_options`` last.
            extra_body: Merged into the top-level body last.

        Returns:
            The chunks, best first.
        """
        req = self._search_req(
            instance_id, query, messages, options, namespace, extra_options, extra_body
        )
        return await self._request(req, _parse_search)

    async def chat_completions(
        self,
        instance_id: str,
        messages: Messages,
        *,
        model: str | None = None,
        options: Options = None,
        namespace: str | None = None,
        extra_options: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> ChatCompletion:
        """Retrieve from one instance and generate an answer.

        Args:
            instance_id: The instance id.
            messages: The conversation.
            model: Generation model.
            options: ``SearchOptions`` or a mapping.
            namespace: Namespace.
            extra_options: Merged into ``ai_search_options`` last.
            extra_body: Merged into the top-level body last.

        Returns:
            The completion, with the chunks it used.
        """
        req = self._chat_req(
            instance_id,
            messages,
            model,
            options,
            namespace,
            extra_options,
            extra_body,
            stream=False,
        )
        return await self._request(req, _parse_chat)

    def stream_chat_completions(
        self,
        instance_id: str,
        messages: Messages,
        *,
        model: str | None = None,
        options: Options = None,
        namespace: str | None = None,
        extra_options: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Stream a chat completion (use ``async for``); arguments are validated now.

        Args:
            instance_id: The instance id.
            messages: The conversation.
            model: Generation model.
            options: ``SearchOptions`` or a mapping.
            namespace: Namespace.
            extra_options: Merged into ``ai_search_options`` last.
            extra_body: Merged into the top-level body last.

        Returns:
            An async iterator of typed events.
        """
        req = self._chat_req(
            instance_id,
            messages,
            model,
            options,
            namespace,
            extra_options,
            extra_body,
            stream=True,
        )
        return self._stream(req)

    async def namespace_search(
        self,
        instance_ids: Sequence[str],
        query: str | None = None,
        *,
        messages: Messages | None = None,
        options: Options = None,
        namespace: str | None = None,
        extra_options: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> SearchResult:
        """Search 1 to 10 instances of a namespace in one call.

        Args:
            instance_ids: 1 to 10 instance ids.
            query: The query text.
            messages: A conversation.
            options: ``SearchOptions`` or a mapping.
            namespace: Namespace.
            extra_options: Merged into ``ai_search_options`` last.
            extra_body: Merged into the top-level body last.

        Returns:
            Merged chunks (each with ``instance_id``) and the per-instance ``errors``.
        """
        req = self._ns_search_req(
            instance_ids, query, messages, options, namespace, extra_options, extra_body
        )
        return await self._request(req, _parse_search)

    async def namespace_chat_completions(
        self,
        instance_ids: Sequence[str],
        messages: Messages,
        *,
        model: str | None = None,
        options: Options = None,
        namespace: str | None = None,
        extra_options: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> ChatCompletion:
        """Chat over 1 to 10 instances of a namespace.

        Args:
            instance_ids: 1 to 10 instance ids.
            messages: The conversation.
            model: Generation model.
            options: ``SearchOptions`` or a mapping.
            namespace: Namespace.
            extra_options: Merged into ``ai_search_options`` last.
            extra_body: Merged into the top-level body last.

        Returns:
            The completion with its chunks and per-instance ``errors``.
        """
        req = self._ns_chat_req(
            instance_ids,
            messages,
            model,
            options,
            namespace,
            extra_options,
            extra_body,
            stream=False,
        )
        return await self._request(req, _parse_chat)

    def stream_namespace_chat_completions(
        self,
        instance_ids: Sequence[str],
        messages: Messages,
        *,
        model: str | None = None,
        options: Options = None,
        namespace: str | None = None,
        extra_options: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Stream a chat over 1 to 10 instances of a namespace (use ``async for``).

        Args:
            instance_ids: 1 to 10 instance ids.
            messages: The conversation.
            model: Generation model.
            options: ``SearchOptions`` or a mapping.
            namespace: Namespace.
            extra_options: Merged into ``ai_search_options`` last.
            extra_body: Merged into the top-level body last.

        Returns:
            An async iterator of typed events.
        """
        req = self._ns_chat_req(
            instance_ids,
            messages,
            model,
            options,
            namespace,
            extra_options,
            extra_body,
            stream=True,
        )
        return self._stream(req, join_errors=True)

    # ------------------------------------------------------------------ legacy AutoRAG

    async def legacy_search(
        self,
        rag_id: str,
        query: str,
        *,
        filters: Mapping[str, Any] | None = None,
        max_num_results: int | None = None,
        score_threshold: float | None = None,
        rewrite_query: bool | None = None,
        reranking: bool | Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> SearchResult:
        """Search with the legacy ``/autorag/rags/{rag_id}/search`` route.

        Args:
            rag_id: The AutoRAG (instance) name.
            query: The query text.
            filters: A legacy filter, or Vectorize syntax (translated).
            max_num_results: 1 to 50.
            score_threshold: 0 to 1.
            rewrite_query: Rewrite the query with an LLM.
            reranking: ``True``/``False`` or ``{"enabled": ..., "model": ...}``.
            extra_body: Merged into the body last.

        Returns:
            Normalised chunks.
        """
        req = self._legacy_req(
            rag_id,
            "search",
            query,
            filters=filters,
            max_num_results=max_num_results,
            score_threshold=score_threshold,
            rewrite_query=rewrite_query,
            reranking=reranking,
            extra_body=extra_body,
        )
        return await self._request(req, _parse_legacy)

    async def legacy_ai_search(
        self,
        rag_id: str,
        query: str,
        *,
        model: str | None = None,
        system_prompt: str | None = None,
        filters: Mapping[str, Any] | None = None,
        max_num_results: int | None = None,
        score_threshold: float | None = None,
        rewrite_query: bool | None = None,
        reranking: bool | Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> SearchResult:
        """Search and generate with the legacy ``/autorag/rags/{rag_id}/ai-search`` route.

        Args:
            rag_id: The AutoRAG (instance) name.
            query: The query text.
            model: Generation model.
            system_prompt: Generation system prompt.
            filters: A legacy filter, or Vectorize syntax (translated).
            max_num_results: 1 to 50.
            score_threshold: 0 to 1.
            rewrite_query: Rewrite the query with an LLM.
            reranking: ``True``/``False`` or ``{"enabled": ..., "model": ...}``.
            extra_body: Merged into the body last.

        Returns:
            The result, with the generated text in ``response``.
        """
        req = self._legacy_req(
            rag_id,
            "ai-search",
            query,
            filters=filters,
            max_num_results=max_num_results,
            score_threshold=score_threshold,
            rewrite_query=rewrite_query,
            reranking=reranking,
            model=model,
            system_prompt=system_prompt,
            extra_body=extra_body,
        )
        return await self._request(req, _parse_legacy)

    def stream_legacy_ai_search(
        self,
        rag_id: str,
        query: str,
        *,
        model: str | None = None,
        system_prompt: str | None = None,
        filters: Mapping[str, Any] | None = None,
        max_num_results: int | None = None,
        score_threshold: float | None = None,
        rewrite_query: bool | None = None,
        reranking: bool | Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Stream the legacy ``/ai-search`` answer (use ``async for``).

        Args:
            rag_id: The AutoRAG (instance) name.
            query: The query text.
            model: Generation model.
            system_prompt: Generation system prompt.
            filters: A legacy filter, or Vectorize syntax (translated).
            max_num_results: 1 to 50.
            score_threshold: 0 to 1.
            rewrite_query: Rewrite the query with an LLM.
            reranking: ``True``/``False`` or ``{"enabled": ..., "model": ...}``.
            extra_body: Merged into the body last.

        Returns:
            An async iterator of typed events.
        """
        req = self._legacy_req(
            rag_id,
            "ai-search",
            query,
            filters=filters,
            max_num_results=max_num_results,
            score_threshold=score_threshold,
            rewrite_query=rewrite_query,
            reranking=reranking,
            model=model,
            system_prompt=system_prompt,
            stream=True,
            extra_body=extra_body,
        )
        return self._stream(req)

    # ------------------------------------------------------------------ fan-out

    async def fan_out_search(
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
        """Search many instances concurrently (``asyncio.gather``) and merge the results.

        Args:
            targets: Instance ids or ``SearchTarget`` (with an ``AsyncAISearchClient``).
            query: The query text.
            options: ``SearchOptions`` or a mapping, used for every target.
            merge: ``"score"`` or ``"rrf"``.
            top_k: Keep at most this many merged chunks.
            max_concurrency: Searches in flight at once (1 to 64).
            extra_options: Merged into every target's ``ai_search_options`` last.

        Returns:
            Merged chunks (each with ``instance_id``) and one ``InstanceError`` per failure.
        """
        tgts, opts = self._fanout_prepare(targets, query, options, merge, top_k, max_concurrency)

        async def one(client: AsyncAISearchClient, target: SearchTarget) -> SearchResult:
            return await client.search(
                target.instance_id,
                query,
                options=opts,
                namespace=target.namespace,
                extra_options=extra_options,
            )

        outcomes = await run_async(self, tgts, one, max_concurrency)
        return merge_results(outcomes, merge=merge, top_k=top_k)
