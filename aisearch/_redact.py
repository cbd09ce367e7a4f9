"""Taking credentials out: of text, of JSON values, of requests and responses kept in errors.

The values of the sensitive request headers are the secrets; ``scrub`` replaces them by
``***``, ``redact_request``/``redact_response`` copy an exchange without them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx

__all__ = [
    "SENSITIVE_HEADERS",
    "copy_response",
    "excerpt",
    "redact_request",
    "redact_response",
    "request_of",
    "request_secrets",
    "scrub",
    "scrub_value",
]

_EXCERPT_CHARS = 200
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
    """``scrub`` every string (keys too) of a decoded JSON value; the value itself if no secret."""
    if not secrets:
        return value
    if isinstance(value, str):
        return scrub(value, secrets)
    if isinstance(value, Mapping):
        return {scrub_value(k, secrets): scrub_value(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub_value(v, secrets) for v in value]
    return value


def excerpt(text: str | bytes, limit: int = _EXCERPT_CHARS, secrets: Sequence[str] = ()) -> str:
    """A short, single-line excerpt of a body for an error message (``...`` when cut).

    The secrets are taken out of the whole text first, so a cut can never leave part of one.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    flat = " ".join(scrub(text, secrets).split())
    return flat if len(flat) <= limit else flat[:limit] + "..."


def request_secrets(request: httpx.Request | None) -> tuple[str, ...]:
    """The credential values a request carried (``Bearer`` and similar schemes stripped)."""
    if request is None:
        return ()
    out: list[str] = []
    for name, value in request.headers.items():
        if name.lower() in SENSITIVE_HEADERS and value:
            scheme, _, credential = value.partition(" ")
            # "Bearer <token>": the token is the secret (so "Bearer ***" stays readable)
            out.append(credential.strip() if scheme.isalpha() and credential.strip() else value)
    return tuple(sorted(set(out), key=len, reverse=True))


def request_of(response: httpx.Response | None) -> httpx.Request | None:
    if response is None:
        return None
    try:
        return response.request
    except RuntimeError:  # a response built by hand has none
        return None


def redact_request(request: httpx.Request) -> httpx.Request:
    """A copy of a request safe to keep and pickle: sensitive header values are ``***``."""
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
    """A read copy of a response with another (decoded) body and ``request``.

    Status, headers and HTTP version are kept, but not the encoding and length headers,
    which no longer apply to ``content``; ``header`` is applied to every value kept.
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
    """Copy a response without credentials: body and headers scrubbed, request redacted."""
    try:
        content = response.content
    except httpx.ResponseNotRead:
        content = b""
    if secrets:  # latin-1 maps every byte to one character and back
        content = scrub(content.decode("latin-1"), secrets).encode("latin-1")
    request = request_of(response)
    return copy_response(
        response,
        content,
        request=None if request is None else redact_request(request),
        header=lambda value: scrub(value, secrets),
    )
