"""The two errors of the local server, and the one place that says what a client sees.

* :class:`ValidationError` - a request value outside what the API allows: the JSON path of the
  value (``field``) and why (``message``). Raised by the pure layers (options, filters, strict
  JSON, request models, instance configuration) without knowing about HTTP; the route wrapper
  (:func:`aisearch_local._http.endpoint`) answers it as 400 / 7001 with ``"field: message"``.
* :class:`APIError` - any other error answered with the Cloudflare envelope: its own status,
  code and message (404 / 7002 unknown objects, 409 / 7009 conflicts, 413, auth, faults).

Nothing here imports the rest of the package.
"""

from __future__ import annotations

from typing import Any

__all__ = ["APIError", "ValidationError", "bad_request", "json_type", "not_found"]


class ValidationError(ValueError):
    """A request value the server refuses; answered as 400 / 7001.

    Args:
        field: JSON path of the refused value (``ai_search_options.retrieval.filters.tag``).
        message: Why, naming the allowed values.

    Attributes:
        field: As given.
        message: As given; ``str(error)`` is ``"field: message"``.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class APIError(Exception):
    """An error answered with the Cloudflare envelope.

    Args:
        status: HTTP status.
        code: Cloudflare error code (``errors[0].code``).
        message: Human-readable message naming the field or object.
        headers: Extra response headers (``Retry-After``...).
        error_chain: Optional nested errors (auth header errors).
        result: The envelope's ``result`` (``None``; ``{}`` where Cloudflare sends an empty
            object, e.g. 429 / 7020 ``sync_in_cooldown``).
    """

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        error_chain: list[dict[str, Any]] | None = None,
        result: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.error_chain = error_chain
        self.result = result

    @classmethod
    def from_validation(cls, exc: ValidationError) -> APIError:
        """Return the 400 / 7001 error a client sees for a validation error."""
        return cls(400, 7001, str(exc))


def bad_request(field: str, message: str) -> ValidationError:
    """Return a validation error naming ``field`` (answered as 400 / 7001)."""
    return ValidationError(field, message)


def not_found(message: str) -> APIError:
    """Return a 404 / 7002 error."""
    return APIError(404, 7002, message)


def json_type(value: Any) -> str:
    """Name the JSON type of a value for an error message (``a string``, ``null``...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
