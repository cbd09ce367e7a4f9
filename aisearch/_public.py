"""Public endpoints: the endpoint URL, the Cloudflare Access headers and the keyword options.

A public endpoint (API.md section 18.2) answers ``POST /search`` and ``POST /chat/completions``
with the REST bodies and no API token, at ``https://<public_endpoint_id>.search.ai.cloudflare.com``
(one instance), ``https://ns-<id>.search.ai.cloudflare.com`` (a namespace) or a custom domain;
the local server serves it at ``http://127.0.0.1:PORT/_public/<id>``. A custom domain behind
Cloudflare Access needs a service token, sent as ``CF-Access-Client-Id`` and
``CF-Access-Client-Secret``: both are kept as secrets.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

import httpx
from pydantic import SecretStr

from aisearch._config import (
    ACCESS_CLIENT_ID_ENV,
    ACCESS_CLIENT_SECRET_ENV,
    PUBLIC_ENDPOINT_ENV,
    ClientConfig,
    _header_safe,
    check_max_retries,
    env_entry,
    env_value,
    make_timeout,
)
from aisearch._exceptions import AISearchError, InvalidRequestError
from aisearch._params import Messages, Options

__all__ = [
    "LOCAL_HOSTS",
    "PublicChatParams",
    "PublicConfig",
    "PublicSearchParams",
    "check_endpoint",
    "resolve_public_config",
]

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
"""Hosts a public endpoint may be reached at over plain ``http://`` (a local server)."""

_FORMS = (
    "https://<public_endpoint_id>.search.ai.cloudflare.com, "
    "https://ns-<id>.search.ai.cloudflare.com, a custom domain, "
    "or http://127.0.0.1:PORT/_public/<id> for a local server"
)


class _PublicBodyParams(TypedDict, total=False):
    options: Options
    extra_options: Mapping[str, Any] | None
    extra_body: Mapping[str, Any] | None


class PublicSearchParams(_PublicBodyParams, total=False):
    """The keyword options of a public endpoint's ``search``."""

    messages: Messages | None


class PublicChatParams(_PublicBodyParams, total=False):
    """The keyword options of a public endpoint's ``chat_completions`` and its stream."""

    model: str | None
    temperature: float | None
    max_tokens: int | None
    stop: str | Sequence[str] | None


def check_endpoint(url: object, field: str = "endpoint") -> str:
    """Check a public endpoint URL; return it without a trailing slash.

    ``https://`` with a host, or ``http://`` to ``localhost``, ``127.0.0.1`` or ``[::1]`` only
    (a local server): an Access secret must not cross a network in clear text. No credentials
    (``user:password@``, never echoed: no ``@`` at all), query, fragment, spaces or control
    characters. A path is allowed (the local server serves each endpoint under
    ``/_public/<id>``).
    """
    if not isinstance(url, str):
        raise InvalidRequestError(f"{field}: must be a URL string (got {type(url).__name__})")
    if "@" in url:  # user:password@ (never echoed); no endpoint URL has an '@' elsewhere
        raise InvalidRequestError(
            f"{field}: must not carry credentials (user:password@); pass a Cloudflare Access "
            "service token as access_client_id and access_client_secret"
        )
    shown = f"{url!r:.120}"
    if "?" in url or "#" in url or any(c.isspace() or not c.isprintable() for c in url):
        raise InvalidRequestError(
            f"{field}: must have no query, fragment, spaces or control characters (got {shown})"
        )
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise InvalidRequestError(f"{field}: not a valid URL ({exc}); expected {_FORMS}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host or parsed.userinfo:
        raise InvalidRequestError(f"{field}: must be {_FORMS} (got {shown})")
    if parsed.scheme == "http" and parsed.host not in LOCAL_HOSTS:
        raise InvalidRequestError(
            f"{field}: must use https:// (http:// only for localhost, 127.0.0.1 or [::1]) "
            f"(got {shown})"
        )
    if parsed.port is not None and not 0 < parsed.port <= 65535:
        raise InvalidRequestError(f"{field}: the port must be from 1 to 65535 (got {shown})")
    segments = url.split("//", 1)[-1].split("/")[1:]
    if any(seg.replace("%2e", ".").replace("%2E", ".") in (".", "..") for seg in segments):
        # httpx resolves them: the calls would go to another path than the one given
        raise InvalidRequestError(f"{field}: must have no '.' or '..' path segments (got {shown})")
    return url.rstrip("/")


@dataclass(frozen=True, repr=False)
class PublicConfig(ClientConfig):
    """Resolved settings of a public-endpoint client: no account, no API token.

    ``base_url`` is the endpoint. The Access service token, when given, travels in
    ``CF-Access-Client-Id`` / ``CF-Access-Client-Secret`` and is scrubbed from every error.
    """

    access_client_id: SecretStr | None = None
    access_client_secret: SecretStr | None = None

    def auth_headers(self) -> dict[str, str]:
        """The Cloudflare Access headers, when a service token was given; else none."""
        if self.access_client_id is None or self.access_client_secret is None:
            return {}
        return {
            "CF-Access-Client-Id": self.access_client_id.get_secret_value(),
            "CF-Access-Client-Secret": self.access_client_secret.get_secret_value(),
        }

    def secrets(self) -> tuple[str, ...]:
        """Return the secret values, so messages can be scrubbed of them."""
        return tuple(
            s.get_secret_value()
            for s in (self.access_client_secret, self.access_client_id)
            if s is not None and s.get_secret_value()
        )

    def __repr__(self) -> str:
        access = "yes" if self.access_client_id is not None else "no"
        return (
            f"PublicConfig(endpoint={self.base_url!r}, access_token={access}, "
            f"max_retries={self.max_retries})"
        )

    __str__ = __repr__


def resolve_public_config(
    *,
    endpoint: str | None,
    access_client_id: str | None,
    access_client_secret: str | None,
    timeout: float | httpx.Timeout | None,
    max_retries: int,
    environ: Mapping[str, str] | None = None,
) -> PublicConfig:
    """Combine constructor arguments with ``AISEARCH_PUBLIC_ENDPOINT`` and the Access variables.

    Arguments win over the environment; the Access id and secret come together (both
    arguments, else both variables) or not at all.
    """
    env = os.environ if environ is None else environ
    for name, value in (
        ("access_client_id", access_client_id),
        ("access_client_secret", access_client_secret),
    ):
        if value is not None and not isinstance(value, str):  # the value is never shown
            raise InvalidRequestError(f"{name}: must be a string (got {type(value).__name__})")
    url = endpoint if endpoint is not None else env_value("public_endpoint", env)
    if not url:
        raise AISearchError(
            "endpoint: missing; pass endpoint=... or set "
            + " or ".join(PUBLIC_ENDPOINT_ENV)
            + f" ({_FORMS})"
        )
    url = check_endpoint(url, "endpoint" if endpoint is not None else PUBLIC_ENDPOINT_ENV[0])
    if access_client_id is None and access_client_secret is None:
        access_client_id = env_entry("access_client_id", env)[1]
        access_client_secret = env_entry("access_client_secret", env)[1]
        names = f"{ACCESS_CLIENT_ID_ENV[0]} and {ACCESS_CLIENT_SECRET_ENV[0]}"
    else:
        names = "access_client_id and access_client_secret"
    if bool(access_client_id) != bool(access_client_secret):
        raise AISearchError(f"{names}: both are needed for Cloudflare Access, or neither")
    client_id = _header_safe(access_client_id or None, "access_client_id")
    secret = _header_safe(access_client_secret or None, "access_client_secret")
    return PublicConfig(
        account_id="",
        base_url=url,
        namespace="",
        timeout=make_timeout(timeout),
        max_retries=check_max_retries(max_retries),
        access_client_id=SecretStr(client_id) if client_id else None,
        access_client_secret=SecretStr(secret) if secret else None,
        credential_source=names if client_id else "",
    )


def public_hint(config: ClientConfig) -> str:
    """What a public endpoint's 401 or 403 should tell (no API token is involved)."""
    if isinstance(config, PublicConfig) and config.access_client_id is not None:
        access = f"a Cloudflare Access service token was sent (from {config.credential_source})"
    else:
        access = (
            "no Cloudflare Access service token was sent (a custom domain behind Access needs "
            "access_client_id and access_client_secret, or CF_ACCESS_CLIENT_ID and "
            "CF_ACCESS_CLIENT_SECRET)"
        )
    return (
        "a public endpoint needs no API token; codes 60007-60009 mean the route is disabled in "
        f"the instance's public_endpoint_params; {access}"
    )
