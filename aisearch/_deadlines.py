"""Where the sync and async transports really differ: deadlines, sleeping, concurrency.

``aisearch/_async/`` calls these helpers by their async names (``new_async_client``,
``AsyncAttempt``, ``AsyncStreamWatch``, ``asleep``, ``agather``); ``scripts/unasync.py``
renames each call to its sync twin here (``new_client``, ``Attempt``, ``StreamWatch``,
``sleep``, ``gather``). The async client bounds an attempt with ``asyncio.timeout``; the sync
one shortens every socket operation and body read to the attempt's deadline, held in a
context variable (docs/client.md, "Timeouts and deadlines").
"""

from __future__ import annotations

import asyncio
import ssl
import sys
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Iterable, Iterator
from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar, Token
from typing import Any, TypeVar, cast

import httpcore
import httpx
from httpx_sse import EventSource, ServerSentEvent

from aisearch._config import ClientConfig
from aisearch._exceptions import APITimeoutError
from aisearch._requests import USER_AGENT
from aisearch._retry import attempt_budget, attempt_time, capped_timeouts

__all__ = [
    "AsyncAttempt",
    "AsyncStreamWatch",
    "Attempt",
    "StreamWatch",
    "agather",
    "asleep",
    "gather",
    "idle_timeout",
    "new_async_client",
    "new_client",
    "sleep",
    "start_attempt",
    "stream_timeout_message",
]

_T = TypeVar("_T")

if sys.version_info >= (3, 11):
    _timeout: Callable[[float], AbstractAsyncContextManager[Any]] = asyncio.timeout
else:  # pragma: no cover - Python 3.10 has no asyncio.timeout
    import contextlib

    import anyio

    @contextlib.asynccontextmanager
    async def _timeout(delay: float) -> AsyncGenerator[None, None]:
        with anyio.fail_after(delay):
            yield


# The async hard deadline fires this long after the phase timeouts given to httpx, so that
# httpx's own, more precise, error (PoolTimeout, ConnectTimeout...) wins when both are due.
_GRACE = 0.05

_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)

sleep = time.sleep
asleep = asyncio.sleep


def gather(*results: _T) -> list[_T]:
    """The results of calls already made one after the other (the sync twin of ``agather``)."""
    return list(results)


async def agather(*calls: Awaitable[_T]) -> list[_T]:
    """Await ``calls`` concurrently; their results in order."""
    return list(await asyncio.gather(*calls))


def idle_timeout(config: ClientConfig) -> float | None:
    """The longest wait between two events of a stream."""
    idle = config.stream_idle_timeout
    return attempt_budget(config.timeout) if idle is None else idle


def start_attempt(request: httpx.Request, config: ClientConfig, end: float | None) -> float | None:
    """Fix the attempt's deadline (``None``: none) and shrink the request's phase timeouts to it.

    Raises ``APITimeoutError`` when ``end`` has already passed.
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


def stream_timeout_message(exc: httpx.TimeoutException) -> str:
    """The message of the ``APITimeoutError`` raised for a stream that timed out."""
    detail = str(exc)
    return f"stream read timed out ({detail})" if detail else "stream read timed out"


# ---------------------------------------------------------------------------- sync


_attempt_end: ContextVar[float | None] = ContextVar("aisearch_attempt_end", default=None)
"""Deadline (monotonic) of the sync attempt being sent in this context, read by the backend."""


def _left(timeout: float | None, error: type[httpcore.TimeoutException]) -> float | None:
    """``timeout`` of one socket operation, shrunk to the time left; ``error`` when none is left."""
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
    """Give every connection pool of ``client`` (one it built) the deadline backend; how many.

    httpx offers no public way to pass a network backend while keeping its own transport
    set-up (limits, proxies from the environment, TLS), so the backend of each pool is
    swapped after the fact; ``test_the_own_pool_has_the_deadline_backend`` fails loudly
    if httpx or httpcore change that shape.
    """
    done = 0
    for transport in [client._transport, *client._mounts.values()]:
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if isinstance(backend, httpcore.NetworkBackend):
            pool._network_backend = _DeadlineBackend(backend)  # type: ignore[union-attr]
            done += 1
    return done


def new_client(timeout: httpx.Timeout) -> httpx.Client:
    """The pooled ``httpx.Client`` a sync client owns; its sockets obey attempt deadlines."""
    client = httpx.Client(headers={"User-Agent": USER_AGENT}, timeout=timeout, limits=_LIMITS)
    _bound_socket_operations(client)
    return client


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


def _watch_body(response: httpx.Response, watch: _Watch) -> None:
    """Make the (not yet read) body of a sync response obey ``watch``."""
    inner = cast(httpx.SyncByteStream, response.stream)
    response.stream = _WatchedStream(inner, watch, response.request)


class Attempt:
    """One sync attempt: its socket operations and its body end by its deadline."""

    __slots__ = ("_deadline", "_request", "_token")

    def __init__(self, request: httpx.Request, deadline: float | None) -> None:
        self._request = request
        self._deadline = deadline
        self._token: Token[float | None] | None = None

    def __enter__(self) -> Attempt:
        self._token = _attempt_end.set(self._deadline)  # every socket read and write ends by then
        return self

    def __exit__(self, *exc_info: object) -> None:
        _attempt_end.reset(cast("Token[float | None]", self._token))

    def watch_body(self, response: httpx.Response) -> None:
        """Make the body (read next) end by the attempt's deadline."""
        if self._deadline is not None:
            _watch_body(response, _Watch(self._deadline, None))


class StreamWatch:
    """The total and idle deadlines of a sync event stream (checked between reads)."""

    def __init__(self, response: httpx.Response, end: float | None, idle: float | None) -> None:
        self._response = response
        self._watch = _Watch(end, idle)
        _watch_body(response, self._watch)

    def read(self) -> bytes:
        """The whole body (of a response that is no event stream)."""
        return self._response.read()

    def events(self) -> Generator[ServerSentEvent, None, None]:
        """The server-sent events; the idle wait starts when the consumer asks for more."""
        for sse in EventSource(self._response).iter_sse():
            yield sse
            self._watch.renew()
            why = self._watch.expired()  # the total may have passed meanwhile
            if why is not None:
                raise httpx.ReadTimeout(why)


# ---------------------------------------------------------------------------- async


def new_async_client(timeout: httpx.Timeout) -> httpx.AsyncClient:
    """The pooled ``httpx.AsyncClient`` an async client owns."""
    return httpx.AsyncClient(headers={"User-Agent": USER_AGENT}, timeout=timeout, limits=_LIMITS)


class AsyncAttempt:
    """One async attempt, bounded as a whole by ``asyncio.timeout`` (``APITimeoutError``)."""

    __slots__ = ("_allowed", "_deadline", "_request", "_timeout")

    def __init__(self, request: httpx.Request, deadline: float | None) -> None:
        self._request = request
        self._deadline = deadline
        self._allowed = 0.0
        self._timeout: AbstractAsyncContextManager[Any] | None = None

    async def __aenter__(self) -> AsyncAttempt:
        if self._deadline is not None:
            self._allowed = self._deadline - time.monotonic()
            self._timeout = _timeout(self._allowed + _GRACE)
            await self._timeout.__aenter__()
        return self

    async def __aexit__(self, typ: Any, exc: BaseException | None, tb: Any) -> None:
        if self._timeout is None:
            return
        try:
            await self._timeout.__aexit__(typ, exc, tb)
        except TimeoutError as error:
            raise self._error() from error
        if isinstance(exc, TimeoutError):
            raise self._error() from exc

    def _error(self) -> APITimeoutError:
        return APITimeoutError(
            f"request timed out (no complete response within {self._allowed:.3g} s)",
            request=self._request,
        )

    def watch_body(self, response: httpx.Response) -> None:
        """Nothing to do: the whole attempt, body included, runs under the timeout."""


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


class AsyncStreamWatch:
    """The total and idle deadlines of an async event stream (each wait is bounded)."""

    def __init__(self, response: httpx.Response, end: float | None, idle: float | None) -> None:
        self._response = response
        self._end = end
        self._idle = idle

    async def read(self) -> bytes:
        """The whole body (of a response that is no event stream)."""
        return await _bounded(self._response.aread(), _wait(self._end, self._idle), "response body")

    async def events(self) -> AsyncGenerator[ServerSentEvent, None]:
        """The server-sent events; each wait for the next one is bounded."""
        events = EventSource(self._response).aiter_sse()
        try:
            while True:
                try:
                    sse = await _bounded(events.__anext__(), _wait(self._end, self._idle), "event")
                except StopAsyncIteration:
                    return
                yield sse
        finally:
            await events.aclose()
