"""Exceptions raised by the AI Search client.

The hierarchy::

    AISearchError
    ├── InvalidRequestError(ValueError)      client-side validation, before any network call
    ├── APIConnectionError                   the request never got an HTTP response
    │   └── APITimeoutError
    ├── APIStatusError                       the server answered with an error
    │   ├── BadRequestError                  400
    │   ├── AuthenticationError              401
    │   ├── PermissionDeniedError            403
    │   ├── NotFoundError                    404
    │   ├── ConflictError                    409
    │   ├── RateLimitError                   429
    │   └── InternalServerError              >= 500
    ├── APIResponseValidationError           a 2xx body that does not fit the expected shape
    ├── StreamInterruptedError               an SSE stream ended without ``data: [DONE]``
    ├── IndexingError                        an item ended with status ``error``
    ├── IndexingTimeoutError                 ``wait_until_indexed`` ran out of time
    ├── PartialFailureError                  some instances of a multi-instance call failed
    │                                        (raised only when the caller asks for it)
    └── AllInstancesFailedError              every instance of a multi-instance call failed

No exception message ever contains the API token or key.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from aisearch._models import InstanceError, Item

__all__ = [
    "AISearchError",
    "APIConnectionError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AllInstancesFailedError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "IndexingError",
    "IndexingTimeoutError",
    "InternalServerError",
    "InvalidRequestError",
    "NotFoundError",
    "PartialFailureError",
    "PermissionDeniedError",
    "RateLimitError",
    "StreamInterruptedError",
]

_EXCERPT_CHARS = 200
MAX_MESSAGE_CHARS = 2048
"""Longest exception message (``str(exc)``, ``exc.message``); longer ones are cut and marked."""

SENSITIVE_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-auth-key",
        "cf-access-client-id",
        "cf-access-client-secret",
        "cookie",
    }
)
"""Request headers whose values are redacted in exceptions and scrubbed from messages."""

_ALWAYS_SCRUB_LENGTH = 16
_TOKEN_CHARS = r"A-Za-z0-9_.\-"
_REDACTED = "***"


def scrub(text: str, secrets: Sequence[str]) -> str:
    """Replace secrets in ``text`` by ``***``.

    A secret of 16 or more characters is replaced wherever it appears. A shorter one (a
    local test token such as ``local``) only where it stands alone, not inside a longer
    word, so that ``instance 'local-notes'`` or ``<html>`` are not mangled.

    Args:
        text: The text.
        secrets: The values to take out.

    Returns:
        The text without the secrets.
    """
    for secret in secrets:
        if not secret or secret not in text:
            continue
        if len(secret) >= _ALWAYS_SCRUB_LENGTH:
            text = text.replace(secret, _REDACTED)
        else:
            alone = rf"(?<![{_TOKEN_CHARS}]){re.escape(secret)}(?![{_TOKEN_CHARS}])"
            text = re.sub(alone, _REDACTED, text)
    return text


def scrub_value(value: Any, secrets: Sequence[str]) -> Any:
    """``scrub`` every string (keys too) in a decoded JSON value (an error body).

    Args:
        value: A JSON value, or text.
        secrets: The values to take out.

    Returns:
        A scrubbed copy (the value itself when there is nothing to scrub).
    """
    if not secrets:
        return value
    if isinstance(value, str):
        return scrub(value, secrets)
    if isinstance(value, Mapping):
        return {scrub_value(k, secrets): scrub_value(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub_value(v, secrets) for v in value]
    return value


def cap(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Cut ``text`` to ``limit`` characters, saying how much was left out.

    Args:
        text: The text.
        limit: The longest text kept.

    Returns:
        The text, or its first ``limit`` characters and a marker.
    """
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text) - limit} more characters]"


def excerpt(text: str | bytes, limit: int = _EXCERPT_CHARS, secrets: Sequence[str] = ()) -> str:
    """Return a short, single-line excerpt of a body for an error message.

    The secrets are taken out of the whole text first, so a cut can never leave part of one.

    Args:
        text: The body, as text or bytes.
        limit: Maximum number of characters kept.
        secrets: Values to replace by ``***`` (credentials the server may echo).

    Returns:
        The excerpt, with ``...`` appended when it was cut.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    flat = " ".join(scrub(text, secrets).split())
    return flat if len(flat) <= limit else flat[:limit] + "..."


def request_secrets(request: httpx.Request | None) -> tuple[str, ...]:
    """Return the credential values a request carried (to scrub them from what answers it).

    Args:
        request: The request, or ``None``.

    Returns:
        The values of its sensitive headers (``Bearer`` and similar schemes stripped too).
    """
    if request is None:
        return ()
    out: list[str] = []
    for name, value in request.headers.items():
        if name.lower() in SENSITIVE_HEADERS and value:
            scheme, _, credential = value.partition(" ")
            # "Bearer <token>": the token is the secret (so "Bearer ***" stays readable)
            out.append(credential.strip() if scheme.isalpha() and credential.strip() else value)
    return tuple(sorted(set(out), key=len, reverse=True))


def _request_of(response: httpx.Response | None) -> httpx.Request | None:
    if response is None:
        return None
    try:
        return response.request
    except RuntimeError:  # a response built by hand has none
        return None


def redact_request(request: httpx.Request) -> httpx.Request:
    """Copy a request with the values of its sensitive headers replaced by ``***``.

    Args:
        request: The request that was sent.

    Returns:
        A copy safe to keep in an exception (and to pickle); the body is kept when it was read.
    """
    headers = [
        (name, _REDACTED if name.lower() in SENSITIVE_HEADERS else value)
        for name, value in request.headers.multi_items()
    ]
    try:
        content: bytes | None = request.content
    except httpx.RequestNotRead:
        content = None
    return httpx.Request(request.method, request.url, headers=headers, content=content)


_HOP_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


def copy_response(
    response: httpx.Response,
    content: bytes,
    *,
    request: httpx.Request | None,
    header: Callable[[str], str] = str,
) -> httpx.Response:
    """A read copy of a response with another body.

    Args:
        response: The response copied: its status, headers and HTTP version are kept, but the
            encoding and length headers, which no longer apply to ``content``.
        content: The copy's (decoded) body.
        request: The copy's request.
        header: Applied to every header value kept.

    Returns:
        The copy.
    """
    headers = [
        (name, header(value))
        for name, value in response.headers.multi_items()
        if name.lower() not in _HOP_HEADERS
    ]
    extensions = {
        k: v for k, v in response.extensions.items() if k in ("http_version", "reason_phrase")
    }
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=content,
        request=request,
        extensions=extensions,
    )


def redact_response(response: httpx.Response, secrets: Sequence[str]) -> httpx.Response:
    """Copy a response without credentials: body and headers scrubbed, request redacted.

    Args:
        response: The (read) response.
        secrets: Values to replace by ``***``.

    Returns:
        A copy safe to keep in an exception (and to pickle).
    """
    try:
        content = response.content
    except httpx.ResponseNotRead:
        content = b""
    if secrets:  # latin-1 maps every byte to one character and back
        content = scrub(content.decode("latin-1"), secrets).encode("latin-1")
    request = _request_of(response)
    return copy_response(
        response,
        content,
        request=None if request is None else redact_request(request),
        header=lambda value: scrub(value, secrets),
    )


_BODY_IS_TEXT = "__aisearch_body_is_the_response_text__"
"""Pickled in place of ``APIStatusError.body`` when it is the text of ``response`` (kept once)."""


def _restore(cls: type[AISearchError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    if state.get("body") == _BODY_IS_TEXT:
        error.__dict__["body"] = state["response"].text
    return error


class AISearchError(Exception):
    """Base class of every error raised by the ``aisearch`` package.

    A text argument is cut to ``MAX_MESSAGE_CHARS``; every error pickles and unpickles.
    """

    def __init__(self, *args: object) -> None:
        super().__init__(*(cap(a) if isinstance(a, str) else a for a in args))

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (type(self), self.args, dict(self.__dict__)))


class InvalidRequestError(AISearchError, ValueError):
    """A request was rejected on the client side, before any network call.

    The message names the offending field path and the allowed values.
    """


class APIConnectionError(AISearchError):
    """The request did not get an HTTP response (DNS, refused connection, reset...).

    Attributes:
        request: The request that failed, when known.
    """

    def __init__(self, message: str = "Connection error.", *, request: httpx.Request | None = None):
        self.message = cap(scrub(message, request_secrets(request)))
        self.request = None if request is None else redact_request(request)
        super().__init__(self.message)


class APITimeoutError(APIConnectionError):
    """The request timed out."""

    def __init__(
        self, message: str = "Request timed out.", *, request: httpx.Request | None = None
    ):
        super().__init__(message, request=request)


class APIStatusError(AISearchError):
    """The server answered with an error status, or with ``success: false``.

    Attributes:
        status_code: The HTTP status code.
        code: Cloudflare's ``errors[0].code``, when the body carried one.
        message: Cloudflare's ``errors[0].message``, else a short excerpt of the body.
        request_id: The ``cf-ray`` (or ``x-request-id``) response header, when present.
        body: The decoded JSON body (or the raw text when it was not JSON).
        response: The HTTP response, when available: a copy whose body and headers are
            scrubbed of the credentials and whose ``request`` has them redacted.

    The credentials of ``response.request`` and ``secrets`` are taken out of the message,
    code, request id and body here, before anything is stored.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: int | str | None = None,
        request_id: str | None = None,
        body: Any = None,
        response: httpx.Response | None = None,
        secrets: Sequence[str] = (),
    ) -> None:
        secrets = (*secrets, *request_secrets(_request_of(response)))
        self.status_code = status_code
        self.code = scrub(code, secrets) if isinstance(code, str) else code
        self.message = cap(scrub(message, secrets))
        self.request_id = None if request_id is None else cap(scrub(request_id, secrets), 200)
        self.body = scrub_value(body, secrets)
        self.response = None if response is None else redact_response(response, secrets)
        super().__init__(self._format())

    def __reduce__(self) -> tuple[Any, ...]:
        state = dict(self.__dict__)
        response = self.response
        if isinstance(self.body, str) and response is not None and self.body:
            text = response.content.decode(response.encoding or "utf-8", errors="replace")
            if text == self.body:  # a text body: pickled once, as the response's content
                state["body"] = _BODY_IS_TEXT
        return (_restore, (type(self), self.args, state))

    def _format(self) -> str:
        code = f" (code {cap(str(self.code), 200)})" if self.code is not None else ""
        rid = f" [request id {self.request_id}]" if self.request_id else ""
        return f"HTTP {self.status_code}{code}: {self.message}{rid}"


class BadRequestError(APIStatusError):
    """HTTP 400: the server rejected the request body or parameters."""


class AuthenticationError(APIStatusError):
    """HTTP 401: missing or invalid credentials."""


class PermissionDeniedError(APIStatusError):
    """HTTP 403: the credentials lack a permission (AI Search Run / Edit)."""


class NotFoundError(APIStatusError):
    """HTTP 404: unknown account, namespace, instance or item."""


class ConflictError(APIStatusError):
    """HTTP 409: the resource already exists or is busy."""


class RateLimitError(APIStatusError):
    """HTTP 429: too many requests."""


class InternalServerError(APIStatusError):
    """HTTP 5xx: the service failed."""


_STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimitError,
}


def status_error_class(status_code: int) -> type[APIStatusError]:
    """Map an HTTP status code to the exception class raised for it.

    Args:
        status_code: The HTTP status code.

    Returns:
        The most specific ``APIStatusError`` subclass.
    """
    if status_code >= 500:
        return InternalServerError
    return _STATUS_ERRORS.get(status_code, APIStatusError)


class APIResponseValidationError(AISearchError):
    """A successful (2xx) response body did not fit the expected shape.

    Attributes:
        status_code: The HTTP status code, when known.
        body_excerpt: A short excerpt of the body (at most 200 characters), scrubbed.

    Pass the raw body as ``content`` (or the ``response``): the credentials of
    ``response.request`` and ``secrets`` are taken out before the excerpt is cut.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        body_excerpt: str = "",
        content: str | bytes | None = None,
        response: httpx.Response | None = None,
        secrets: Sequence[str] = (),
    ):
        secrets = (*secrets, *request_secrets(_request_of(response)))
        if response is not None:
            status_code = response.status_code if status_code is None else status_code
            if content is None:
                content = response.content
        if content is not None:
            body_excerpt = excerpt(content, secrets=secrets)
        self.status_code = status_code
        self.body_excerpt = cap(scrub(body_excerpt, secrets))
        message = scrub(message, secrets)
        full = f"{message} (body: {self.body_excerpt!r})" if self.body_excerpt else message
        super().__init__(full)


class StreamInterruptedError(AISearchError):
    """A server-sent-events stream ended before ``data: [DONE]``."""


class IndexingError(AISearchError):
    """An item ended with status ``error`` while waiting for indexing.

    Attributes:
        items: The items that failed.
    """

    def __init__(self, message: str, *, items: list[Item] | None = None):
        super().__init__(message)
        self.items: list[Item] = list(items or [])


class IndexingTimeoutError(AISearchError):
    """``wait_until_indexed`` reached its deadline before every item was indexed.

    Attributes:
        items: The items as last seen.
    """

    def __init__(self, message: str, *, items: list[Item] | None = None):
        super().__init__(message)
        self.items: list[Item] = list(items or [])


def error_summary(errors: Sequence[InstanceError]) -> str:
    """``instance: message`` for each failed instance, joined by ``; ``."""
    return "; ".join(f"{e.instance_id}: {e.message}" for e in errors)


class PartialFailureError(AISearchError):
    """Some instances of a multi-instance search failed while the others answered.

    Raised only when the caller asks for it (the adapters' ``on_instance_error="raise"``);
    LangChain's ``InstanceSearchError`` and LlamaIndex's ``InstanceFailureError`` are this
    class under their old names.

    Attributes:
        errors: One entry per failed instance, with its message and exception.
        results: What the other instances returned (e.g. LlamaIndex nodes); may be empty.
        nodes: The same list as ``results`` (LlamaIndex's name for it).
    """

    def __init__(self, errors: Sequence[InstanceError], results: Sequence[Any] = ()) -> None:
        self.errors: list[InstanceError] = list(errors)
        self.results: list[Any] = list(results)
        self.nodes = self.results
        super().__init__(f"{len(self.errors)} instance(s) failed: {error_summary(self.errors)}")


class AllInstancesFailedError(AISearchError):
    """Every instance of a multi-instance operation failed.

    Attributes:
        errors: One entry per failed instance, with its message and exception.
    """

    def __init__(self, errors: list[InstanceError], message: str | None = None):
        self.errors = list(errors)
        if message is None:
            message = f"all {len(self.errors)} instance(s) failed: {error_summary(self.errors)}"
        super().__init__(message)
