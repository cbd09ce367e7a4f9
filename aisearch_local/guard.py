"""The perimeter of the local server: an ASGI middleware run before any route.

:class:`Perimeter` answers in the Cloudflare error envelope, before the application sees the
request, when:

* the ``Host`` header names a host that is neither a loopback name (``localhost``,
  ``127.0.0.1``, ``[::1]``), nor the bound host, nor an allowed host: 403 / 10000. This defeats
  DNS rebinding, where a page on ``evil.example`` re-points its name to 127.0.0.1;
* a state-changing request (``POST``, ``PUT``, ``PATCH``, ``DELETE``) comes from a browser page
  of another origin: an ``Origin`` header that is not the server's own origin nor an allowed
  origin, or ``Sec-Fetch-Site: cross-site`` / ``same-site``: 403 / 10000. Clients that are not
  browsers send neither header and pass. Not on the public endpoints (``/_public/...``), where
  each endpoint's ``authorized_hosts`` decide (:mod:`aisearch_local.public`), and whose
  refusals here take their envelope (``result: {}``, no ``messages``);
* a state-changing request to a JSON route declares another ``Content-Type`` than
  ``application/json`` or ``application/*+json``: 415 / 7001. A cross-site form or ``fetch``
  can only send ``text/plain``, ``application/x-www-form-urlencoded``, ``multipart/form-data``
  or no type at all without a CORS preflight (and then sends ``Origin``);
* the body is larger than the route's limit (:func:`body_limit`): 413 / 7001. A
  ``Content-Length`` over the limit is refused at once, without reading the body; a chunked body
  is counted as it arrives and refused as soon as it passes the limit. Bodies are read here,
  up to the limit, before the route runs: a route never sees a partial body.

See docs/security.md for the threat model.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "BODY_KEY",
    "LOOPBACK_HOSTS",
    "MAX_BULK_BODY_BYTES",
    "MAX_JSON_BYTES",
    "MAX_MANAGEMENT_JSON_BYTES",
    "MAX_UPLOAD_BODY_BYTES",
    "Perimeter",
    "body_limit",
    "normalize_host",
    "parse_host_header",
    "source_outside_roots",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MiB = 1024 * 1024

MAX_JSON_BYTES = 16 * MiB
"""Largest search or chat body: a chat ``file`` content part may carry 10 MiB decoded
(API.md section 5.1), 13.4 MiB once base64-encoded, plus the rest of the conversation."""

MAX_MANAGEMENT_JSON_BYTES = 1 * MiB
"""Largest body of every other JSON route (namespaces, instances, items, jobs, faults)."""

MAX_UPLOAD_BODY_BYTES = 10 * MiB + 64 * 1024
"""Largest multipart item upload: the largest file API.md section 18.1 allows (10 MiB, plain
text / code) plus 64 KiB for the multipart framing and the ``metadata`` part. The file itself
is then checked against its format's limit by the upload route."""

MAX_BULK_BODY_BYTES = 48 * MiB
"""Largest body of the local bulk items route (``POST /client/v4/_local/bulk/.../items``): 32
MiB of documents (:data:`aisearch_local.bulk.MAX_BULK_BYTES`), base64 and JSON framing."""

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
"""Host names always accepted in ``Host`` (with any port)."""

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# the items upload routes live under /client/v4/accounts/ (the bulk route's path, under a
# namespace named "instances", ends the same way: it must not get the upload's limits)
_UPLOAD_RE = re.compile(r"^/client/v4/accounts/[^/]+/.*/instances/[^/]+/items/?$")
_BULK_RE = re.compile(r"^/client/v4/_local/bulk/[^/]+/[^/]+/items/?$")
_QUERY_RE = re.compile(r"/(search|chat/completions|ai-search)/?$")
_JSON_TYPE_RE = re.compile(r"^application/([a-z0-9.+-]+\+)?json$")
_WILDCARD_BINDS = frozenset({"0.0.0.0", "::", ""})
_PUBLIC_PREFIX = "/_public/"

BODY_KEY = "aisearch_local.body"
"""The scope key under which :class:`Perimeter` leaves the body it read (a route may take it
from there instead of reading it again through ``receive``)."""


def body_limit(method: str, path: str) -> int:
    """Return the largest body, in bytes, accepted on a route.

    Args:
        method: HTTP method.
        path: URL path.

    Returns:
        :data:`MAX_UPLOAD_BODY_BYTES` for item uploads, :data:`MAX_BULK_BODY_BYTES` for the
        local bulk items route, :data:`MAX_JSON_BYTES` for search and chat routes,
        :data:`MAX_MANAGEMENT_JSON_BYTES` for everything else.
    """
    if method == "POST" and _UPLOAD_RE.search(path):
        return MAX_UPLOAD_BODY_BYTES
    if method == "POST" and _BULK_RE.match(path):
        return MAX_BULK_BODY_BYTES
    if method == "POST" and _QUERY_RE.search(path):
        return MAX_JSON_BYTES
    return MAX_MANAGEMENT_JSON_BYTES


def normalize_host(value: str) -> str:
    """Return the host part of a ``Host`` header or ``--allowed-host`` value, lower case.

    ``"LocalHost:8787"`` -> ``"localhost"``, ``"[::1]:8787"`` -> ``"::1"``, ``"::1"`` -> ``"::1"``,
    ``"example.com."`` -> ``"example.com"``. Lenient, for configuration values; a request's
    ``Host`` header goes through the strict :func:`parse_host_header`.
    """
    v = value.strip().lower()
    if v.startswith("["):
        end = v.find("]")
        host = v[1:end] if end > 0 else v[1:]
    elif v.count(":") == 1:
        host = v.partition(":")[0]
    else:  # a bare IPv6 address, or a name without port
        host = v
    return host.rstrip(".")


_HOST_HEADER_RE = re.compile(r"(?:\[([0-9a-f:.]+)\]|([a-z0-9_.-]+))(?::([0-9]{1,5}))?")


def parse_host_header(value: str) -> tuple[str, int | None] | None:
    """Parse a ``Host`` header: ``host[:port]``, ``[ipv6][:port]``; None when malformed.

    Only a well-formed value is accepted (RFC 9110 section 7.2): ``[::1]evil.example``,
    ``[::1]@evil``, ``127.0.0.1:18787@evil.example``, an empty value or a port over 65535
    give None, and the request is refused like a Host that is not allowed.

    Returns:
        ``(host, port)``, the host in lower case without a trailing dot, the port None when
        absent; or None.
    """
    m = _HOST_HEADER_RE.fullmatch(value.strip().lower())
    if m is None:
        return None
    host = (m.group(1) or m.group(2) or "").rstrip(".")
    port = int(m.group(3)) if m.group(3) is not None else None
    if not host or (port is not None and port > 65535):
        return None
    return host, port


def _mib(n: int) -> str:
    return f"{n / MiB:.2f}".rstrip("0").rstrip(".") + " MiB"


class Perimeter:
    """ASGI middleware enforcing the Host, Origin, content-type and body-size rules.

    Args:
        app: The ASGI application to protect.
        bind_host: The address the server listens on (``--host``); accepted in ``Host`` unless
            it is a wildcard (``0.0.0.0``, ``::``).
        allowed_hosts: More host names accepted in ``Host`` (no port; ``*`` accepts any host,
            which turns the DNS-rebinding check off).
        allowed_origins: More browser origins (``scheme://host[:port]``) allowed to send
            state-changing requests (``*`` allows any origin).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        bind_host: str | None = None,
        allowed_hosts: Iterable[str] = (),
        allowed_origins: Iterable[str] = (),
    ) -> None:
        self.app = app
        hosts = set(LOOPBACK_HOSTS)
        if bind_host is not None and normalize_host(bind_host) not in _WILDCARD_BINDS:
            hosts.add(normalize_host(bind_host))
        extra = {normalize_host(h) for h in allowed_hosts if h.strip()}
        self.any_host = "*" in extra
        self.hosts = frozenset(hosts | (extra - {"*"}))
        origins = {o.strip().rstrip("/").lower() for o in allowed_origins if o.strip()}
        self.any_origin = "*" in origins
        self.origins = frozenset(origins - {"*"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check an HTTP request, then pass it on with its body already read."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        method = str(scope.get("method", "GET")).upper()
        path = str(scope.get("path", ""))
        scheme = str(scope.get("scheme", "http")).lower()
        public = path.startswith(_PUBLIC_PREFIX)
        refusal = self._check_headers(method, path, headers, scheme)
        if refusal is not None:
            await _refuse(send, *refusal, public=public)
            return
        limit = body_limit(method, path)
        length = headers.get("content-length")
        if length is not None:
            if not (length.isascii() and length.isdigit()):
                await _refuse(
                    send,
                    400,
                    7001,
                    f"Content-Length: not a byte count ({length!r})",
                    public=public,
                )
                return
            if int(length) > limit:
                await _refuse(send, *_too_large(method, path, limit, int(length)), public=public)
                return
        if method not in STATE_CHANGING:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left: nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _refuse(send, *_too_large(method, path, limit, None), public=public)
                return
            if chunk:
                chunks.append(chunk)
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        del chunks
        scope[BODY_KEY] = body
        replayed = False

        async def replay() -> Message:
            nonlocal replayed, body
            if not replayed:
                replayed = True
                out = {"type": "http.request", "body": body, "more_body": False}
                body = b""
                return out
            return await receive()  # after the body: wait for the disconnect

        await self.app(scope, replay, send)

    def _check_headers(
        self, method: str, path: str, headers: dict[str, str], scheme: str = "http"
    ) -> tuple[int, int, str] | None:
        host = headers.get("host")
        # No Host at all (HTTP/1.0) cannot come from a browser, which always sends one: passes.
        parsed = parse_host_header(host) if host is not None else None
        if host is not None and parsed is None:
            return (
                403,
                10000,
                f"Host {host[:100]!r} is not allowed: not a well-formed host[:port]; this "
                f"server answers to {', '.join(sorted(self.hosts))} (--allowed-host NAME "
                "accepts another name)",
            )
        if parsed is not None and not self.any_host and parsed[0] not in self.hosts:
            return (
                403,
                10000,
                f"Host {host!r} is not allowed: this server answers to "
                f"{', '.join(sorted(self.hosts))}; start it with --allowed-host "
                f"{parsed[0]} to accept that name",
            )
        if method not in STATE_CHANGING:
            return None
        if path.startswith(_PUBLIC_PREFIX):
            return self._check_content_type(method, path, headers)
        origin = headers.get("origin")
        site = headers.get("sec-fetch-site", "").strip().lower()
        # a page of an origin the operator listed (--allowed-origin) is another site by
        # design: its browser says same-site or cross-site, and that is allowed
        if site in ("cross-site", "same-site") and not self._listed(origin):
            return (
                403,
                10000,
                f"Sec-Fetch-Site: {site} requests may not change this server's state "
                "(a page of another origin sent it)",
            )
        if origin is not None and not self._origin_allowed(origin, parsed, scheme):
            return (
                403,
                10000,
                f"Origin {origin!r} may not change this server's state; start it with "
                f"--allowed-origin {origin} to allow that page",
            )
        return self._check_content_type(method, path, headers)

    @staticmethod
    def _check_content_type(
        method: str, path: str, headers: dict[str, str]
    ) -> tuple[int, int, str] | None:
        if not (method == "POST" and _UPLOAD_RE.search(path)):
            # No Content-Type at all is accepted (raw-HTTP tools and tests post bytes without
            # one): a browser page sending a body without one still sends Origin, refused above.
            ctype = headers.get("content-type")
            if ctype is not None and not _JSON_TYPE_RE.match(
                ctype.partition(";")[0].strip().lower()
            ):
                return (
                    415,
                    7001,
                    f"Content-Type: must be application/json (got {ctype[:100]!r})",
                )
        return None

    def _listed(self, origin: str | None) -> bool:
        """Whether ``Origin`` is one the operator allowed (``--allowed-origin``)."""
        if origin is None:
            return False
        return self.any_origin or origin.strip().rstrip("/").lower() in self.origins

    def _origin_allowed(
        self, origin: str, host: tuple[str, int | None] | None, scheme: str
    ) -> bool:
        """Whether ``Origin`` is allowed: listed, or the server's own (scheme, host, port)."""
        value = origin.strip().rstrip("/").lower()
        if self._listed(origin):
            return True
        if host is None:
            return False
        try:
            page = urlsplit(value)
            if page.scheme != scheme or not page.hostname:
                return False  # another scheme, "null" (sandboxed frames, file: pages), ...
            default = 443 if scheme == "https" else 80
            return (page.hostname.rstrip("."), page.port or default) == (
                host[0],
                host[1] or default,
            )
        except ValueError:  # a port that is not a number
            return False


def _too_large(method: str, path: str, limit: int, length: int | None) -> tuple[int, int, str]:
    what = "item upload" if limit == MAX_UPLOAD_BODY_BYTES else f"{method} {path}"
    got = f" (Content-Length {length})" if length is not None else ""
    return (
        413,
        7001,
        f"body: larger than the {limit} byte ({_mib(limit)}) limit of {what}{got}",
    )


_CHECKED_HEADERS = frozenset(
    {b"host", b"origin", b"sec-fetch-site", b"content-type", b"content-length"}
    | {b"transfer-encoding"}
)


def _headers(scope: Scope) -> dict[str, str]:
    """The headers the checks read (ASGI servers give names in lower case), first of repeats."""
    out: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        if raw_name in _CHECKED_HEADERS:
            name = raw_name.decode("latin-1")
            if name not in out:
                out[name] = raw_value.decode("latin-1")
    return out


async def _refuse(
    send: Send, status: int, code: int, message: str, *, public: bool = False
) -> None:
    doc: dict[str, Any] = {"success": False, "errors": [{"code": code, "message": message}]}
    doc.update({"result": {}} if public else {"messages": [], "result": None})
    body = json.dumps(doc).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


def source_outside_roots(source: str, roots: Iterable[str | os.PathLike[str]]) -> str | None:
    """Return why an instance may not index the folder ``source``, or None when it may.

    ``source`` is resolved (symbolic links and ``..`` followed) and must then be one of
    ``roots`` or lie under one of them (roots are resolved too).

    Args:
        source: An absolute folder path, as given in an instance's ``source``.
        roots: The folders the operator allowed (``--allow-source-root``, ``--source``).

    Returns:
        None when allowed, else the message of the 400 / 7001 error naming ``source``.
    """
    resolved = Path(source).resolve()
    allowed = [Path(r).resolve() for r in roots]
    if any(resolved == root or resolved.is_relative_to(root) for root in allowed):
        return None
    if not allowed:
        return (
            f"folder {source!r} is not allowed: this server indexes no folder created over "
            "HTTP; start it with --allow-source-root DIR to allow the folders under DIR"
        )
    shown = ", ".join(str(r) for r in allowed)
    return (
        f"folder {source!r} is outside the allowed source roots ({shown}); start the "
        "server with --allow-source-root DIR to allow more"
    )
