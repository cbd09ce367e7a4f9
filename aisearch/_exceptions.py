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
    │   ├── MethodNotAllowedError            405
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

import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import ValidationError

from aisearch._names import printable
from aisearch._redact import (
    excerpt,
    redact_request,
    redact_response,
    request_of,
    request_secrets,
    scrub,
    scrub_value,
)

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
    "MethodNotAllowedError",
    "NotFoundError",
    "PartialFailureError",
    "PermissionDeniedError",
    "RateLimitError",
    "StreamInterruptedError",
]

MAX_MESSAGE_CHARS = 2048
"""Longest exception message (``str(exc)``, ``exc.message``); longer ones are cut and marked."""


def cap(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Cut ``text`` to ``limit`` characters, saying how much was left out; always printable."""
    text = printable(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text) - limit} more characters]"


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
        hint: What the client adds to the message (e.g. for 401/403, the credential used,
            by name, and what to check), or ``None``.
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
        hint: str | None = None,
    ) -> None:
        secrets = (*secrets, *request_secrets(request_of(response)))
        self.hint = None if hint is None else cap(scrub(hint, secrets), 500)
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
        hint = f"; {self.hint}" if self.hint else ""
        return f"HTTP {self.status_code}{code}: {self.message}{hint}{rid}"


class BadRequestError(APIStatusError):
    """HTTP 400: the server rejected the request body or parameters."""


class AuthenticationError(APIStatusError):
    """HTTP 401: missing or invalid credentials."""


class PermissionDeniedError(APIStatusError):
    """HTTP 403: the credentials lack a permission (AI Search Run / Edit)."""


class NotFoundError(APIStatusError):
    """HTTP 404: unknown account, namespace, instance or item."""


class MethodNotAllowedError(APIStatusError):
    """HTTP 405: the route does not take this method (a public endpoint's code 60016)."""


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
    405: MethodNotAllowedError,
    409: ConflictError,
    429: RateLimitError,
}

_CODE_ERRORS: dict[int, type[APIStatusError]] = {
    60005: RateLimitError,  # the endpoint's rate_limit
    60006: NotFoundError,  # no such route on an instance endpoint
    60007: PermissionDeniedError,  # mcp.disabled
    60008: PermissionDeniedError,  # search_endpoint.disabled
    60009: PermissionDeniedError,  # chat_completions_endpoint.disabled
    60012: BadRequestError,  # malformed instance_ids
    60013: NotFoundError,  # instance unknown or not in instances_allowed
    60014: NotFoundError,  # no such route on a namespace endpoint
    60015: BadRequestError,  # the body is not a JSON object
    60016: MethodNotAllowedError,  # a method other than POST
    60018: NotFoundError,  # the default domain is disabled
    60100: InternalServerError,
}
"""Public-endpoint error codes (API.md 18.2) whose class is not the one of their status
(60007-60009 come with 401 but mean "disabled", not "bad credentials")."""

ERROR_CODE_STATUS: dict[int, int] = {
    7001: 400,  # validation error
    7002: 404,  # unknown instance, item or job
    7003: 404,  # no such route
    7009: 409,  # already exists (never retried)
    7020: 429,  # sync_in_cooldown (result: {}); Retry-After honoured
    7049: 500,  # multi-instance search failed
    7069: 429,  # quota exceeded
    7074: 400,  # more than 10 instances
    7089: 400,  # an image query needs a vector index with an image-capable embedding model
    7096: 400,  # default domain disabled without a custom domain
    7097: 400,  # the allowlist names an unknown instance
    7099: 409,  # namespace modified concurrently (retried)
}
"""Cloudflare AI Search error codes and their HTTP statuses (API.md sections 11 and 18.1).

The class of an error follows its HTTP status; a 2xx body with ``success: false`` (and no
error ``status`` of its own) takes the class of its code's status here, keeping its
``status_code``; so does a namespace endpoint's per-instance entry that carries a code.
"""


def status_error_class(status_code: int, code: object = None) -> type[APIStatusError]:
    """The most specific ``APIStatusError`` subclass for an HTTP status and Cloudflare code.

    A public endpoint's 60xxx ``code`` decides (``_CODE_ERRORS``); otherwise the status.
    """
    if isinstance(code, int) and not isinstance(code, bool) and code in _CODE_ERRORS:
        return _CODE_ERRORS[code]
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
        secrets = (*secrets, *request_secrets(request_of(response)))
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

    def __init__(
        self,
        errors: Sequence[InstanceError],
        results: Sequence[Any] = (),
        *,
        nodes: Sequence[Any] | None = None,
    ) -> None:
        self.errors: list[InstanceError] = list(errors)
        self.results: list[Any] = list(results if nodes is None else nodes)
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


# --------------------------------------------------------------------------- construction
# Every error below is built with the credentials to take out (those of the request, and
# ``secrets``): its constructor scrubs what it keeps; nothing is patched in afterwards.


def request_id(response: httpx.Response) -> str | None:
    """The ``cf-ray`` (or ``x-request-id``) header of a response, when present."""
    rid: str | None = response.headers.get("cf-ray") or response.headers.get("x-request-id")
    return rid


def error_status(value: object) -> int | None:
    """An HTTP error status carried in a body (``status``), if it is one."""
    if isinstance(value, int) and not isinstance(value, bool) and 400 <= value <= 599:
        return value
    return None


ALREADY_EXISTS = 7009
"""Cloudflare's code for a 409 meaning "already exists" (7099 is "modified concurrently")."""

_ACCOUNT = r"/accounts/[^/]+"
_INSTANCE_PATH = re.compile(
    _ACCOUNT + r"/ai-search/(?:namespaces/(?P<ns>[^/]+)/)?instances/(?P<id>[^/]+)"
    r"(?:/(?P<kind>items|jobs)/(?P<sub>[^/]+))?(?:/[^/]+)*\Z"
)
_LEGACY_PATH = re.compile(_ACCOUNT + r"/autorag/rags/(?P<id>[^/]+)(?:/[^/]+)*\Z")
_NAMESPACE_PATH = re.compile(
    _ACCOUNT + r"/ai-search/namespaces/(?P<ns>[^/]+)(?:/instances|/search|/chat/completions)?\Z"
)
_CREATE_PATH = re.compile(
    _ACCOUNT + r"/ai-search/(?:namespaces(?:/(?P<ns>[^/]+)/instances)?|instances)\Z"
)


def resource_hint(status_code: int, code: object, request: httpx.Request | None) -> str | None:
    """What a 404 or an "already exists" 409 should add: what to check, or which call reuses it.

    Read from the request's path (the ids in it are checked before sending): a 404 on an
    instance names the instance id and namespace and the call listing them; on a namespace,
    ``list_namespaces()``; a 409 / 7009 on a create, ``exist_ok=True``.
    """
    if request is None:
        return None
    path = request.url.path
    if status_code == 409 and str(code) == str(ALREADY_EXISTS) and request.method == "POST":
        created = _CREATE_PATH.search(path)
        if created is None:
            return None
        if created.group(0).endswith("/namespaces"):
            return "to reuse the existing namespace, pass exist_ok=True to create_namespace()"
        return (
            "to reuse the existing instance, pass exist_ok=True to create_instance() "
            "(a get-or-create; update_instance() changes its configuration)"
        )
    if status_code != 404:
        return None
    found = _INSTANCE_PATH.search(path) or _LEGACY_PATH.search(path)
    if found is not None:
        parts = found.groupdict()
        ns = parts.get("ns") or "default"
        where = f"the instance id {parts['id']!r} and the namespace {ns!r}"
        if parts.get("kind"):
            return f"check the {parts['kind'][:-1]} id {parts['sub']!r}, {where}"
        return f"check {where}; client.list_instances(namespace={ns!r}) lists its instances"
    named = _NAMESPACE_PATH.search(path)
    if named is not None:
        return f"check the namespace {named.group('ns')!r}; client.list_namespaces() lists them"
    return None


def entry_error(message: str, entry: Mapping[str, Any]) -> APIStatusError | None:
    """The status error a per-instance error entry carries, if it carries a status or a code.

    The service sends ``{instance_id, message}`` only; an entry that also has an HTTP error
    ``status`` (or ``status_code``), or a ``code`` whose status is documented
    (``ERROR_CODE_STATUS``), gives the error of that status, with the entry's code. Otherwise
    ``None``.
    """
    code = entry.get("code")
    if isinstance(code, bool) or not isinstance(code, (int, str)):
        code = None
    status = error_status(entry.get("status")) or error_status(entry.get("status_code"))
    if status is None and code is not None:
        status = next((v for k, v in ERROR_CODE_STATUS.items() if str(k) == str(code)), None)
    if status is None:
        return None
    return status_error_class(status)(message, status_code=status, code=code, body=dict(entry))


def error_from_body(
    body: Any,
    status_code: int,
    request_id: str | None,
    default: str,
    *,
    response: httpx.Response | None = None,
    secrets: Sequence[str] = (),
    hint: str | None = None,
) -> APIStatusError:
    """Build the status error for a Cloudflare error body (envelope or ``{"error": ...}``).

    The error's constructor takes the credentials (``secrets`` and those of
    ``response.request``) out of everything it keeps. ``default`` is the message when the
    body (any JSON value, or text) carries none; ``hint`` is added to it (by default, what
    :func:`resource_hint` reads from the request).
    """
    secrets = (*secrets, *request_secrets(request_of(response)))
    code: int | str | None = None
    message = default
    if isinstance(body, Mapping):
        errors = body.get("errors")
        error = body.get("error")
        if isinstance(errors, list) and errors:
            first = errors[0]
            if isinstance(first, Mapping):
                code = first.get("code")
                message = str(first.get("message") or default)
            else:
                message = str(first)
        elif isinstance(error, Mapping):
            code = error.get("code")
            message = str(error.get("message") or default)
        elif isinstance(error, str) and error:
            message = error
        elif isinstance(body.get("message"), str) and body["message"]:
            message = body["message"]
        carried = error_status(body.get("status"))
        if carried is not None and status_code < 400:
            status_code = carried
    elif isinstance(body, str) and body.strip():
        message = excerpt(body, secrets=secrets)
    if isinstance(code, bool) or (code is not None and not isinstance(code, (int, str))):
        code = str(code)
    if hint is None:
        hint = resource_hint(status_code, code, request_of(response))
    cls = status_error_class(status_code, code)
    if status_code < 400 and isinstance(code, int) and code in ERROR_CODE_STATUS:
        cls = status_error_class(ERROR_CODE_STATUS[code])  # success: false on a 2xx
    return cls(
        message,
        status_code=status_code,
        code=code,
        request_id=request_id,
        body=body,
        response=response,
        secrets=secrets,
        hint=hint,
    )


_REDIRECT_HINT = (
    "a redirect is not followed (the credentials would go with it to another host): "
    "use the URL it points to as the base URL or endpoint"
)


def status_error(
    response: httpx.Response,
    secrets: Sequence[str] = (),
    hints: Mapping[int, str] | None = None,
) -> APIStatusError:
    """Build the error for an error response (a redirect, or 400 or more), from its (read) body.

    ``hints`` maps a status code to what the message adds (e.g. which credential a 401 used).
    """
    try:
        body: Any = json.loads(response.content) if response.content else None
    except ValueError:
        body = response.text
    default = response.reason_phrase or "request failed"
    hint = (hints or {}).get(response.status_code)
    if response.is_redirect and hint is None:
        hint = _REDIRECT_HINT
    return error_from_body(
        body,
        response.status_code,
        request_id(response),
        default,
        response=response,
        secrets=secrets,
        hint=hint,
    )


def _reported_failure(
    response: httpx.Response, content: bytes, default: str, *, error_keys: bool
) -> APIStatusError | None:
    """The status error a JSON body reports, if it reports one.

    ``success: false`` always reports one; with ``error_keys``, so does an ``error`` member
    or a non-empty ``errors`` list.
    """
    try:
        data = json.loads(content)
    except ValueError:
        return None
    if not isinstance(data, Mapping):
        return None
    if data.get("success") is False or (error_keys and ("error" in data or data.get("errors"))):
        return error_from_body(
            data, response.status_code, request_id(response), default, response=response
        )
    return None


def response_validation_error(response: httpx.Response, what: str, exc: Exception) -> AISearchError:
    """Build the error for a 2xx body that does not fit ``what``; ``success: false`` wins.

    The message names the first pydantic error of ``exc``.
    """
    failure = _reported_failure(response, response.content, "success: false", error_keys=False)
    if failure is not None:
        return failure
    if isinstance(exc, ValidationError):
        first = exc.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in first["loc"])
        detail = f": {loc}: {first['msg']}" if loc else f": {first['msg']}"
    else:
        detail = f": {exc}"
    return APIResponseValidationError(f"unexpected {what} response body{detail}", response=response)


def stream_content_error(response: httpx.Response, body: bytes) -> AISearchError:
    """The status error a non-SSE stream body reports, else an ``APIResponseValidationError``."""
    failure = _reported_failure(response, body, "error", error_keys=True)
    if failure is not None:
        return failure
    ctype = response.headers.get("content-type", "")
    return APIResponseValidationError(
        f"expected a text/event-stream response, got content type {ctype!r}",
        content=body,
        response=response,
    )


def target(request: httpx.Request) -> str:
    """``METHOD scheme://host:port/path`` of a request: no credentials, query or fragment."""
    url = request.url
    host = f"[{url.host}]" if ":" in url.host else url.host
    port = url.port or {"https": 443, "http": 80}.get(url.scheme)
    where = f"{host}:{port}" if port else host
    return f"{request.method} {url.scheme}://{where}{url.path}"


def wrap_transport_error(
    exc: httpx.HTTPError, request: httpx.Request, hint: str | None = None
) -> APIConnectionError:
    """Wrap an httpx error; the wrapper and the wrapped error keep a redacted request.

    The message names the URL that was tried (no credentials, query or fragment) and ends
    with ``hint`` when one is given (e.g. how to point the client at a local server).
    """
    scrub_chain(exc, request)  # the cause (and what it chains) shows no credential either
    tried = f" (while trying {target(request)})"
    after = f"; {hint}" if hint else ""
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(
            f"request timed out ({type(exc).__name__}){tried}{after}", request=request
        )
    if isinstance(exc, httpx.LocalProtocolError):  # its text may quote a header value
        return APIConnectionError(
            f"connection error: {type(exc).__name__} (request could not be sent){tried}{after}",
            request=request,
        )
    return APIConnectionError(
        f"connection error: {type(exc).__name__}: {exc}{tried}{after}", request=request
    )


def scrub_chain(exc: BaseException, request: httpx.Request) -> None:
    """Take the credentials of ``request`` out of ``exc`` and everything it chains.

    Used on the httpx error an ``AISearchError`` is raised from: the string arguments of
    every exception in the chain (``__cause__`` and ``__context__``, recursively) are
    scrubbed, and every httpx error keeps a redacted copy of its request.
    """
    secrets = request_secrets(request)
    redacted = redact_request(request)
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        link = todo.pop()
        if link is None or id(link) in seen:
            continue
        seen.add(id(link))
        link.args = tuple(scrub(a, secrets) if isinstance(a, str) else a for a in link.args)
        if isinstance(link, httpx.RequestError):
            link.request = redacted
        todo += [link.__cause__, link.__context__]
