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
    └── AllInstancesFailedError              every instance of a multi-instance call failed

No exception message ever contains the API token or key.
"""

from __future__ import annotations

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
    "PermissionDeniedError",
    "RateLimitError",
    "StreamInterruptedError",
]

_EXCERPT_CHARS = 200


def excerpt(text: str | bytes, limit: int = _EXCERPT_CHARS) -> str:
    """Return a short, single-line excerpt of a body for an error message.

    Args:
        text: The body, as text or bytes.
        limit: Maximum number of characters kept.

    Returns:
        The excerpt, with ``...`` appended when it was cut.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "..."


class AISearchError(Exception):
    """Base class of every error raised by the ``aisearch`` package."""


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
        super().__init__(message)
        self.message = message
        self.request = request


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
        response: The HTTP response, when available.
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
    ) -> None:
        self.status_code = status_code
        self.code = code
        self.message = message
        self.request_id = request_id
        self.body = body
        self.response = response
        super().__init__(self._format())

    def _format(self) -> str:
        code = f" (code {self.code})" if self.code is not None else ""
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
        body_excerpt: A short excerpt of the body.
    """

    def __init__(self, message: str, *, status_code: int | None = None, body_excerpt: str = ""):
        self.status_code = status_code
        self.body_excerpt = body_excerpt
        full = f"{message} (body: {body_excerpt!r})" if body_excerpt else message
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


class AllInstancesFailedError(AISearchError):
    """Every instance of a multi-instance operation failed.

    Attributes:
        errors: One entry per failed instance, with its message and exception.
    """

    def __init__(self, errors: list[InstanceError], message: str | None = None):
        self.errors = list(errors)
        if message is None:
            parts = "; ".join(f"{e.instance_id}: {e.message}" for e in self.errors)
            message = f"all {len(self.errors)} instance(s) failed: {parts}"
        super().__init__(message)
