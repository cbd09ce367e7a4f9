# GENERATED from aisearch/_async/_transport.py by scripts/unasync.py: do not edit by hand.
"""Sending (with retries), streaming and paging (sync).

The async module (``aisearch/_async/``) is written by hand; its sync twin (``aisearch/_sync/``)
is generated from it by ``scripts/unasync.py``. Requests are built and responses parsed by
``_BaseClient``; where the two transports differ (deadlines, sleeping), the helpers of
``aisearch/_deadlines.py`` do.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Generator
from functools import partial
from typing import TYPE_CHECKING, Any

import httpx

from aisearch._config import ClientConfig, check_optional_seconds
from aisearch._deadlines import (
    Attempt,
    StreamWatch,
    idle_timeout,
    new_client,
    sleep,
    start_attempt,
    stream_timeout_message,
)
from aisearch._exceptions import (
    AISearchError,
    APITimeoutError,
    InvalidRequestError,
    StreamInterruptedError,
    scrub_chain,
    status_error,
    stream_content_error,
)
from aisearch._exceptions import request_id as _request_id
from aisearch._exceptions import wrap_transport_error as _wrap_transport_error
from aisearch._models import StreamEvent
from aisearch._parse import MAX_ERROR_BODY, MAX_PAGES, page_done, page_items
from aisearch._parse import is_event_stream as _is_event_stream
from aisearch._parse import parse_envelope as _parse_envelope
from aisearch._redact import copy_response, request_secrets
from aisearch._requests import _T, _BaseClient, _Request, logger

if TYPE_CHECKING:
    from typing_extensions import Self
from aisearch._retry import call_end, delay_for, is_retryable, sleep_fits
from aisearch._sse import StreamDecoder

__all__ = ["_Transport"]


def read_error_body(response: httpx.Response) -> httpx.Response:
    """Read at most ``MAX_ERROR_BODY`` bytes of an error body (the caller closes ``response``)."""
    parts: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        parts.append(chunk)
        size += len(chunk)
        if size > MAX_ERROR_BODY:
            break
    return copy_response(response, b"".join(parts)[:MAX_ERROR_BODY], request=response.request)


class _Transport(_BaseClient[httpx.Client]):
    """Send, retry, stream and page (sync); the client and its management build on it."""

    _sleep: Callable[[float], None] = staticmethod(sleep)

    def _setup(
        self,
        config: ClientConfig,
        account_path: str,
        http_client: httpx.Client | None,
        total_timeout: float | None,
        stream_idle_timeout: float | None,
    ) -> None:
        """Keep the resolved settings and the HTTP client (a pool of its own unless injected)."""
        self._config = dataclasses.replace(
            config,
            total_timeout=check_optional_seconds(total_timeout, "total_timeout"),
            stream_idle_timeout=check_optional_seconds(stream_idle_timeout, "stream_idle_timeout"),
        )
        self._account_path = account_path
        if http_client is not None and not isinstance(http_client, httpx.Client):
            raise InvalidRequestError(
                f"http_client: must be an httpx.Client (got {type(http_client).__name__})"
            )
        self._owns_client = http_client is None
        self._client = http_client or new_client(self._config.timeout)

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the pooled HTTP client (unless it was injected or shared)."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _send(self, req: _Request, end: float | None, *, stream: bool = False) -> httpx.Response:
        """Send one attempt, within its budget and the call's deadline ``end``.

        The body (for a stream: an error body only) is read by the attempt's deadline.
        """
        request = self._build(req)
        with Attempt(request, start_attempt(request, self._config, end)) as attempt:
            try:
                # never follow a redirect, even with an injected follow_redirects=True client:
                # httpx drops Authorization across origins, not X-Auth-Key or the Access headers
                response = self._client.send(request, stream=True, follow_redirects=False)
            except httpx.HTTPError as exc:
                raise _wrap_transport_error(exc, request, self._connection_hint()) from exc
            logger.debug("%s %s -> %d", req.method, req.path, response.status_code)
            if stream and response.status_code < 300:
                return response
            attempt.watch_body(response)
            try:
                if response.status_code < 300:
                    response.read()
                    return response
                error_response = read_error_body(response)
            except httpx.HTTPError as exc:
                raise _wrap_transport_error(exc, request, self._connection_hint()) from exc
            finally:
                response.close()
            raise status_error(error_response, self._config.secrets(), self._status_hints())

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
                logger.debug(
                    "retrying %s %s in %.2f s (retry %d of %d) after %s",
                    req.method,
                    req.path,
                    delay,
                    retries,
                    self._config.max_retries,
                    type(exc).__name__,
                )
                self._sleep(delay)

    def _request(self, req: _Request, parse: Callable[[httpx.Response], _T]) -> _T:
        end = call_end(self._config.total_timeout, time.monotonic())

        def call() -> _T:
            return parse(self._send(req, end))

        return self._retrying(req, call, end)

    def _stream(
        self, req: _Request, *, join_errors: bool = False
    ) -> Generator[StreamEvent, None, None]:
        end = call_end(self._config.total_timeout, time.monotonic())
        response = self._retrying(req, lambda: self._send(req, end, stream=True), end)
        watch = StreamWatch(response, end, idle_timeout(self._config))
        try:
            if not _is_event_stream(response):
                raise stream_content_error(response, watch.read())
            decoder = StreamDecoder(
                response.status_code,
                _request_id(response),
                join_errors=join_errors,
                secrets=request_secrets(response.request),
            )
            events = watch.events()
            try:
                for sse in events:
                    for event in decoder.feed(sse):
                        yield event
                    if decoder.done:
                        return
            finally:
                events.close()
            decoder.finish()
        except httpx.TimeoutException as exc:
            scrub_chain(exc, response.request)
            raise APITimeoutError(stream_timeout_message(exc), request=response.request) from exc
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
            batch = page_items(env, model, response)
            out.extend(batch)
            if page_done(env, len(batch), len(out), per_page):
                break
        return out
