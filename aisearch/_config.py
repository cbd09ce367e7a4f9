"""Client configuration: defaults, environment fallbacks and identifier checks."""

from __future__ import annotations

import enum
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

import httpx
from pydantic import SecretStr

from aisearch._exceptions import AISearchError, InvalidRequestError

__all__ = [
    "ACCOUNT_ID_ENV",
    "API_EMAIL_ENV",
    "API_KEY_ENV",
    "API_TOKEN_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_NAMESPACE",
    "DEFAULT_TIMEOUT",
    "ClientConfig",
    "check_seconds",
    "resolve_config",
    "validate_instance_id",
    "validate_namespace",
]

DEFAULT_BASE_URL = "https://api.cloudflare.com/client/v4"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
DEFAULT_MAX_RETRIES = 2
DEFAULT_NAMESPACE = "default"
MAX_RETRIES_LIMIT = 10

ACCOUNT_ID_ENV = ("CLOUDFLARE_ACCOUNT_ID", "CF_ACCOUNT_ID")
API_TOKEN_ENV = ("CLOUDFLARE_API_TOKEN", "CF_AI_SEARCH_API_TOKEN", "CF_API_TOKEN")
API_EMAIL_ENV = ("CLOUDFLARE_EMAIL",)
API_KEY_ENV = ("CLOUDFLARE_API_KEY",)
BASE_URL_ENV = ("AISEARCH_BASE_URL",)


class Unset(enum.Enum):
    """Marks an argument that was not given (where ``None`` is a meaningful value)."""

    UNSET = "UNSET"


UNSET = Unset.UNSET

_INSTANCE_ID_RE = re.compile(r"[a-z0-9_-]{1,64}")
_ACCOUNT_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def validate_instance_id(value: object, field: str = "instance_id") -> str:
    """Check an instance id (lowercase letters, digits, ``-`` and ``_``; 1 to 64 characters).

    Args:
        value: The candidate id.
        field: The parameter name used in the error message.

    Returns:
        The id, unchanged.

    Raises:
        InvalidRequestError: If the id is not a valid instance id.
    """
    if not isinstance(value, str) or not _INSTANCE_ID_RE.fullmatch(value):
        raise InvalidRequestError(
            f"{field}: must be 1 to 64 characters of lowercase letters, digits, '-' or '_' "
            f"(got {value!r})"
        )
    return value


def validate_namespace(value: object, field: str = "namespace") -> str:
    """Check a namespace name (same character rules as instance ids).

    Args:
        value: The candidate name.
        field: The parameter name used in the error message.

    Returns:
        The name, unchanged.

    Raises:
        InvalidRequestError: If the name is not valid.
    """
    return validate_instance_id(value, field)


def _env(names: tuple[str, ...], environ: Mapping[str, str]) -> str | None:
    for name in names:
        value = environ.get(name)
        if value:
            return value
    return None


@dataclass(frozen=True, repr=False)
class ClientConfig:
    """Resolved client settings. Credentials are kept as ``SecretStr``.

    Attributes:
        account_id: The Cloudflare account id.
        base_url: The API root, without a trailing slash.
        namespace: The default namespace.
        timeout: The default ``httpx.Timeout`` of every call; its largest value also bounds
            each attempt as a whole (see ``aisearch._retry.attempt_budget``).
        max_retries: How many times a retryable failure is retried.
        api_token: The bearer token, if token auth is used.
        api_email: The account email, if global-key auth is used.
        api_key: The global API key, if global-key auth is used.
        total_timeout: Seconds a whole call may take, retries and backoff included (a stream:
            until its last event); ``None`` for no cap beyond the attempts' own.
        stream_idle_timeout: Seconds a stream may go without an event (``None``: the
            attempt budget of ``timeout``).
    """

    account_id: str
    base_url: str
    namespace: str
    timeout: httpx.Timeout
    max_retries: int
    api_token: SecretStr | None = None
    api_email: str | None = None
    api_key: SecretStr | None = None
    total_timeout: float | None = None
    stream_idle_timeout: float | None = None

    def auth_headers(self) -> dict[str, str]:
        """Build the authentication headers of one request.

        Returns:
            ``Authorization: Bearer ...`` or ``X-Auth-Email`` + ``X-Auth-Key``.
        """
        if self.api_token is not None:
            return {"Authorization": f"Bearer {self.api_token.get_secret_value()}"}
        assert self.api_key is not None and self.api_email is not None
        return {"X-Auth-Email": self.api_email, "X-Auth-Key": self.api_key.get_secret_value()}

    def secrets(self) -> tuple[str, ...]:
        """Return the secret values, so messages can be scrubbed of them."""
        out = []
        for secret in (self.api_token, self.api_key):
            if secret is not None and secret.get_secret_value():
                out.append(secret.get_secret_value())
        return tuple(out)

    def __repr__(self) -> str:
        auth = "api_token" if self.api_token is not None else "api_email+api_key"
        return (
            f"ClientConfig(account_id={self.account_id!r}, base_url={self.base_url!r}, "
            f"namespace={self.namespace!r}, auth={auth}, max_retries={self.max_retries})"
        )

    __str__ = __repr__


def make_timeout(timeout: float | httpx.Timeout | None) -> httpx.Timeout:
    """Normalise a timeout argument.

    Args:
        timeout: Seconds, an ``httpx.Timeout``, or ``None`` for the default.

    Returns:
        An ``httpx.Timeout``.

    Raises:
        InvalidRequestError: If a number is not positive and finite.
    """
    if timeout is None:
        return DEFAULT_TIMEOUT
    if isinstance(timeout, httpx.Timeout):
        return timeout
    seconds = check_seconds(timeout, "timeout")
    assert seconds is not None
    return httpx.Timeout(seconds, connect=min(seconds, 5.0))


def check_seconds(value: object, field: str) -> float | None:
    """Check a duration argument: ``None``, or a finite number of seconds greater than 0.

    Args:
        value: The candidate value.
        field: The parameter name used in the error message.

    Returns:
        The value as a float, or ``None``.

    Raises:
        InvalidRequestError: For a bool, a non-number, NaN, an infinity, zero or less.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InvalidRequestError(
            f"{field}: must be a positive number of seconds (got {value!r:.80})"
        )
    try:
        seconds = float(value)
    except OverflowError:  # an int too large for a float
        seconds = math.inf
    if not math.isfinite(seconds):
        raise InvalidRequestError(f"{field}: must be finite (got {value!r:.80})")
    return seconds


def check_max_retries(max_retries: object) -> int:
    """Check ``max_retries`` (an integer from 0 to 10).

    Args:
        max_retries: The candidate value.

    Returns:
        The value.

    Raises:
        InvalidRequestError: If out of range.
    """
    if (
        isinstance(max_retries, bool)
        or not isinstance(max_retries, int)
        or not 0 <= max_retries <= MAX_RETRIES_LIMIT
    ):
        raise InvalidRequestError(
            f"max_retries: must be an integer between 0 and {MAX_RETRIES_LIMIT} "
            f"(got {max_retries!r})"
        )
    return max_retries


def resolve_config(
    *,
    account_id: str | None,
    api_token: str | None,
    api_email: str | None,
    api_key: str | None,
    namespace: str,
    base_url: str | None,
    timeout: float | httpx.Timeout | None,
    max_retries: int,
    environ: Mapping[str, str] | None = None,
) -> ClientConfig:
    """Combine constructor arguments with environment fallbacks.

    Arguments win over the environment. A token (argument) wins over email + key
    (arguments); then the token variables, then ``CLOUDFLARE_EMAIL`` + ``CLOUDFLARE_API_KEY``.

    Args:
        account_id: The account id, or ``None`` to read the environment.
        api_token: The API token, or ``None``.
        api_email: The account email for global-key auth, or ``None``.
        api_key: The global API key, or ``None``.
        namespace: The default namespace.
        base_url: The API root, or ``None`` for ``AISEARCH_BASE_URL`` then the public API.
        timeout: The default timeout.
        max_retries: Retries of retryable failures.
        environ: The environment (``os.environ`` when ``None``).

    Returns:
        The resolved configuration.

    Raises:
        AISearchError: If the account id or the credentials are missing.
        InvalidRequestError: If a value is malformed.
    """
    env = os.environ if environ is None else environ
    account = account_id or _env(ACCOUNT_ID_ENV, env)
    if not account:
        raise AISearchError(
            "account_id: missing; pass account_id=... or set " + " or ".join(ACCOUNT_ID_ENV)
        )
    if not _ACCOUNT_ID_RE.fullmatch(account):
        raise InvalidRequestError(
            "account_id: must be 1 to 64 letters, digits, '-' or '_' "
            f"(got a value of {len(account)} characters)"
        )

    token: str | None = None
    email: str | None = None
    key: str | None = None
    if api_token:
        token = api_token
    elif api_email or api_key:
        if not (api_email and api_key):
            raise AISearchError("api_email and api_key: both are needed for global-key auth")
        email, key = api_email, api_key
    else:
        token = _env(API_TOKEN_ENV, env)
        if token is None:
            email, key = _env(API_EMAIL_ENV, env), _env(API_KEY_ENV, env)
            if not (email and key):
                raise AISearchError(
                    "api_token: missing; pass api_token=... (or api_email=... and api_key=...) "
                    "or set " + ", ".join(API_TOKEN_ENV) + " (or CLOUDFLARE_EMAIL and "
                    "CLOUDFLARE_API_KEY)"
                )

    token, email, key = (
        _header_safe(token, "api_token"),
        _header_safe(email, "api_email"),
        _header_safe(key, "api_key"),
    )

    url = (base_url or _env(BASE_URL_ENV, env) or DEFAULT_BASE_URL).rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise InvalidRequestError(f"base_url: must start with http:// or https:// (got {url!r})")

    return ClientConfig(
        account_id=account,
        base_url=url,
        namespace=validate_namespace(namespace),
        timeout=make_timeout(timeout),
        max_retries=check_max_retries(max_retries),
        api_token=SecretStr(token) if token else None,
        api_email=email,
        api_key=SecretStr(key) if key else None,
    )


_HEADER_SAFE_RE = re.compile(r"[\x21-\x7e]+")


def _header_safe(value: str | None, name: str) -> str | None:
    """Strip surrounding whitespace (a copied token often ends in a newline) and check the rest.

    A credential with spaces, control or non-ASCII characters cannot travel in an HTTP header;
    httpx would put it, escaped, into its error message. The message here never shows it.
    """
    if value is None:
        return None
    value = value.strip()
    if not _HEADER_SAFE_RE.fullmatch(value):
        raise InvalidRequestError(
            f"{name}: must be printable ASCII without spaces or control characters "
            f"(got a value of {len(value)} characters; the value is not shown)"
        )
    return value
