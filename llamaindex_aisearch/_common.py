"""Connection settings shared by every LlamaIndex adapter, and the lazily built core clients."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from typing_extensions import TypedDict

from aisearch import (
    AISearchClient,
    AISearchError,
    AISearchPublicClient,
    AsyncAISearchClient,
    AsyncAISearchPublicClient,
    InvalidRequestError,
)
from aisearch._config import PUBLIC_ENDPOINT_ENV, env_value
from aisearch._lazy import LazyClients
from aisearch._names import closest_names
from aisearch._public import check_endpoint

__all__ = [
    "AISearchConnection",
    "ConnectionKwargs",
    "check_keywords",
    "check_mapping",
    "describe_validation_error",
    "presigned",
    "resolve_connection",
]


def describe_validation_error(exc: ValidationError) -> str:
    """``path: problem`` for each error of a pydantic ``ValidationError``, without inputs.

    pydantic's own text quotes each input (``input_value='tok-...'``), which for a
    connection may be a credential, even one passed under a misspelt name: here only the
    field path and the rule are kept.
    """
    parts = []
    for err in exc.errors(include_url=False, include_input=False):
        path = ""
        for loc in err["loc"]:
            path += f"[{loc}]" if isinstance(loc, int) else (f".{loc}" if path else str(loc))
        ctx = err.get("ctx") or {}
        if err["type"] in ("value_error", "assertion_error") and "error" in ctx:
            problem = str(ctx["error"])
        elif err["type"] == "extra_forbidden":
            problem = "unknown setting"
        else:
            problem = f"{err['msg'][:1].lower()}{err['msg'][1:]}"
        parts.append(f"{path or '<root>'}: {problem}")
    return "; ".join(parts)


def check_keywords(
    owner: type,
    kwargs: Mapping[str, Any],
    groups: Mapping[str, Iterable[str]],
    *,
    other: Iterable[str] = (),
    note: str = "",
) -> None:
    """Refuse a keyword ``owner``'s constructor does not take, as Python would, and say more.

    ``groups`` maps a label (``"search options"``) to the keywords of that kind; the
    constructor's own named parameters and ``other`` are accepted too, listed as "other
    arguments".
    The ``TypeError`` names the first unexpected keyword, the closest accepted one
    (the core's ``closest_names``) and every group, then ``note``.

    Raises:
        TypeError: ``AISearchRetriever() got an unexpected keyword argument
            'similarity_topk' (did you mean 'similarity_top_k'?); search options are: ...``
    """
    named = [
        p.name
        for p in list(inspect.signature(owner.__init__).parameters.values())[1:]  # type: ignore[misc]
        if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    ]
    named += other
    listed = {label: sorted(set(keys)) for label, keys in groups.items()}
    known = set(named).union(*listed.values())
    unexpected = set(kwargs) - known
    if not unexpected:
        return
    key = min(unexpected)
    near = closest_names(key, known)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    others = sorted(set(named) - set().union(*listed.values()))
    listing = [f"{label} are: {', '.join(keys)}" for label, keys in listed.items()]
    if others:
        listing.append(f"other arguments are: {', '.join(others)}")
    raise TypeError(
        f"{owner.__name__}() got an unexpected keyword argument {key!r}{hint}; "
        f"{'; '.join(listing)}{note}"
    )


def check_mapping(value: Any, name: str) -> dict[str, Any] | None:
    """A copy of a mapping argument (``None`` stays ``None``).

    Raises:
        InvalidRequestError: When ``value`` is not a mapping, naming ``name``.
    """
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidRequestError(f"{name}: must be a mapping or None (got {type(value).__name__})")
    return dict(value)


_F = TypeVar("_F", bound=Callable[..., Any])


def presigned(fn: _F) -> _F:
    """Attach ``fn``'s signature to it once (``__signature__``, PEP 362).

    LlamaIndex wraps ``_retrieve`` and friends in an instrumentation span that calls
    ``inspect.signature`` on every call; with ``__signature__`` set, that lookup is a read
    instead of a fresh introspection (about 20 us a call). The span is unchanged.
    """
    fn.__signature__ = inspect.signature(fn)  # type: ignore[attr-defined]
    return fn


class ConnectionKwargs(TypedDict, total=False):
    """Keyword arguments accepted by every adapter to build its :class:`AISearchConnection`."""

    account_id: str | None
    api_token: str | SecretStr | None
    api_email: str | None
    api_key: str | SecretStr | None
    base_url: str | None
    timeout: float | httpx.Timeout | None
    max_retries: int
    client: AISearchClient | None
    async_client: AsyncAISearchClient | None
    http_client: httpx.Client | None
    async_http_client: httpx.AsyncClient | None
    public_endpoint: str | None
    access_client_id: str | SecretStr | None
    access_client_secret: str | SecretStr | None


_ACCOUNT_FIELDS = ("account_id", "api_token", "api_email", "api_key")


class AISearchConnection(BaseModel):
    """How to reach AI Search: account, credentials, namespace, base URL, timeouts.

    Every adapter (retrievers, query and chat engines, the LLM, the tool spec and the
    managed index) holds one. Pass the same connection to several adapters to share the
    pooled HTTP clients. The core clients are built lazily on first use, once (the async
    one once per event loop, because an ``httpx.AsyncClient`` is bound to its loop), unless
    you inject your own ``client`` / ``async_client`` (core clients) or ``http_client`` /
    ``async_http_client`` (``httpx`` clients the core clients should send through; with an
    injected ``httpx.AsyncClient`` one core client serves every event loop, so use it from
    one loop only).

    A public endpoint needs no account or token: ``public_endpoint="https://<id>.search.ai.
    cloudflare.com"`` (or ``https://ns-<id>...``, a custom domain, or
    ``http://127.0.0.1:PORT/_public/<id>``; env ``AISEARCH_PUBLIC_ENDPOINT``), with an optional
    Cloudflare Access service token (``access_client_id`` / ``access_client_secret``, env
    ``CF_ACCESS_CLIENT_ID`` / ``CF_ACCESS_CLIENT_SECRET``). Retrievers, engines, the LLM and
    the tool spec then need no ``instance_id``. An account given as arguments (or an injected
    client) wins over ``AISEARCH_PUBLIC_ENDPOINT``; passing both explicitly is an error.

    Credentials fall back to the environment: ``CLOUDFLARE_ACCOUNT_ID`` (then
    ``CF_ACCOUNT_ID``), ``CLOUDFLARE_API_TOKEN`` (then ``CF_AI_SEARCH_API_TOKEN``,
    ``CF_API_TOKEN``), ``CLOUDFLARE_EMAIL`` + ``CLOUDFLARE_API_KEY`` (legacy auth) and
    ``AISEARCH_BASE_URL``. Secrets are ``SecretStr``: they never appear in ``repr`` and are
    excluded from every serialised form.

    Example:
        .. code-block:: python

            conn = AISearchConnection(account_id="...", api_token="...")
            retriever = AISearchRetriever("docs", connection=conn)
    """

    model_config = ConfigDict(
        extra="forbid", arbitrary_types_allowed=True, hide_input_in_errors=True
    )

    account_id: str | None = None
    """Cloudflare account id (env ``CLOUDFLARE_ACCOUNT_ID``, then ``CF_ACCOUNT_ID``)."""
    api_token: SecretStr | None = Field(default=None, exclude=True, repr=False)
    """API token with AI Search Run (and Edit for the managed index); never serialised."""
    api_email: str | None = Field(default=None, exclude=True, repr=False)
    """Account email for legacy global-key auth (env ``CLOUDFLARE_EMAIL``)."""
    api_key: SecretStr | None = Field(default=None, exclude=True, repr=False)
    """Legacy global API key (env ``CLOUDFLARE_API_KEY``); never serialised."""
    namespace: str = "default"
    """AI Search namespace of the instances."""
    base_url: str | None = None
    """API base URL (env ``AISEARCH_BASE_URL``), e.g. a local ``aisearch-local`` server."""
    timeout: float | httpx.Timeout | None = Field(default=None, exclude=True)
    """Request timeout; ``None`` keeps the core client's default (30 s, connect 5 s)."""
    max_retries: int = Field(default=2, ge=0, le=10, strict=True)
    """Retries on connection errors, timeouts, 408/409/429/5xx (0..10)."""
    public_endpoint: str | None = None
    """A public endpoint URL to use instead of an account (env ``AISEARCH_PUBLIC_ENDPOINT``)."""
    access_client_id: SecretStr | None = Field(default=None, exclude=True, repr=False)
    """Cloudflare Access service token id (env ``CF_ACCESS_CLIENT_ID``); never serialised."""
    access_client_secret: SecretStr | None = Field(default=None, exclude=True, repr=False)
    """Its secret (env ``CF_ACCESS_CLIENT_SECRET``); never serialised."""

    _http_client: httpx.Client | None = None
    _async_http_client: httpx.AsyncClient | None = None
    _client: AISearchClient | None = None  # injected
    _async_client: AsyncAISearchClient | None = None  # injected
    _clients: LazyClients
    _public_clients: LazyClients

    def __init__(
        self,
        *,
        client: AISearchClient | None = None,
        async_client: AsyncAISearchClient | None = None,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
        **data: Any,
    ) -> None:
        error: InvalidRequestError | None = None
        try:
            super().__init__(**data)
        except ValidationError as exc:
            # pydantic's message and errors() hold the inputs (the token among them):
            # raise the field paths and rules only, outside the handler so that the
            # original error does not travel along as __context__
            error = InvalidRequestError(describe_validation_error(exc))
        if error is not None:
            raise error
        self._http_client = http_client
        self._async_http_client = async_http_client
        self._client = client
        self._async_client = async_client
        self._clients = LazyClients()
        self._public_clients = LazyClients()
        given = {**data, "client": client, "async_client": async_client}
        account = sorted(k for k in (*_ACCOUNT_FIELDS, "client", "async_client") if given.get(k))
        if self.public_endpoint is not None and account:
            raise InvalidRequestError(
                "public_endpoint: pass either public_endpoint (no account or token needed) or "
                f"an account ({', '.join(account)}), not both"
            )
        if self.public_endpoint is None and not account:
            # arguments win over the environment: an account given as one chooses the account
            url = env_value("public_endpoint")
            if url:
                self.public_endpoint = check_endpoint(url, PUBLIC_ENDPOINT_ENV[0])
        if client is None and async_client is None and not self.uses_public_endpoint:
            self._check_credentials()

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> AISearchConnection:
        """``BaseModel.model_validate``, raising ``InvalidRequestError`` without inputs."""
        if isinstance(obj, Mapping) and not isinstance(obj, cls):
            return cls(**obj)
        return super().model_validate(obj, *args, **kwargs)

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> AISearchConnection:
        """A connection is a shared resource: a deep copy of an adapter shares it."""
        return self

    def __getstate__(self) -> dict[Any, Any]:
        raise TypeError(
            "AISearchConnection cannot be pickled: it holds credentials and pooled HTTP "
            "connections. Build the adapter in the other process (credentials can come from "
            "CLOUDFLARE_ACCOUNT_ID and CLOUDFLARE_API_TOKEN)."
        )

    @field_validator("namespace")
    @classmethod
    def _check_namespace(cls, value: str) -> str:
        if not value:
            raise ValueError("namespace must be a non-empty string")
        return value

    @field_validator("public_endpoint")
    @classmethod
    def _check_public_endpoint(cls, value: str | None) -> str | None:
        return None if value is None else check_endpoint(value, "public_endpoint")

    @property
    def uses_public_endpoint(self) -> bool:
        """Whether searches and chats go to ``public_endpoint`` (no account, no API token)."""
        return self.public_endpoint is not None

    @field_validator("timeout", mode="before")
    @classmethod
    def _check_timeout(cls, value: Any) -> Any:
        if value is None or isinstance(value, httpx.Timeout):
            return value
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or math.isnan(value)
            or value <= 0
        ):
            raise ValueError(
                "must be a positive number of seconds, an httpx.Timeout or None "
                f"(got {type(value).__name__})"
            )
        return float(value)

    def model_post_init(self, context: Any, /) -> None:  # noqa: ARG002
        """Fill unset settings from the environment."""
        if self.account_id is None:
            self.account_id = env_value("account_id")
        if self.api_token is None:
            token = env_value("api_token")
            self.api_token = SecretStr(token) if token else None
        if self.api_email is None:
            self.api_email = env_value("api_email")
        if self.api_key is None:
            key = env_value("api_key")
            self.api_key = SecretStr(key) if key else None
        if self.base_url is None:
            self.base_url = env_value("base_url")
        for name in ("access_client_id", "access_client_secret"):
            if getattr(self, name) is None:
                value = env_value(name)
                setattr(self, name, SecretStr(value) if value else None)

    def _check_credentials(self) -> None:
        if self.uses_public_endpoint:
            raise AISearchError(
                "this needs an account and an API token (account_id=..., api_token=...): a "
                "public endpoint serves search and chat completions only"
            )
        if not self.account_id:
            raise AISearchError(
                "account_id is required: pass account_id=... or set CLOUDFLARE_ACCOUNT_ID "
                "(or CF_ACCOUNT_ID)"
            )
        if self.api_token is None and (self.api_email is None or self.api_key is None):
            raise AISearchError(
                "credentials are required: pass api_token=... or set CLOUDFLARE_API_TOKEN "
                "(or CF_AI_SEARCH_API_TOKEN, CF_API_TOKEN); or pass api_email=... and "
                "api_key=... (CLOUDFLARE_EMAIL and CLOUDFLARE_API_KEY)"
            )

    def _client_kwargs(self) -> dict[str, Any]:
        self._check_credentials()
        kwargs: dict[str, Any] = {
            "account_id": self.account_id,
            "namespace": self.namespace,
            "max_retries": self.max_retries,
        }
        if self.api_token is not None:
            kwargs["api_token"] = self.api_token.get_secret_value()
        if self.api_email is not None and self.api_key is not None:
            kwargs["api_email"] = self.api_email
            kwargs["api_key"] = self.api_key.get_secret_value()
        if self.base_url is not None:
            kwargs["base_url"] = self.base_url
        if self.timeout is not None:
            kwargs["timeout"] = self.timeout
        return kwargs

    def _build_client(self) -> AISearchClient:
        return AISearchClient(**self._client_kwargs(), http_client=self._http_client)

    def _build_async_client(self) -> AsyncAISearchClient:
        return AsyncAISearchClient(**self._client_kwargs(), http_client=self._async_http_client)

    def _public_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"endpoint": self.public_endpoint, "max_retries": self.max_retries}
        for name in ("access_client_id", "access_client_secret"):
            secret: SecretStr | None = getattr(self, name)
            kwargs[name] = secret.get_secret_value() if secret is not None else None
        if self.timeout is not None:
            kwargs["timeout"] = self.timeout
        return kwargs

    @property
    def public_client(self) -> AISearchPublicClient:
        """The synchronous public-endpoint client (built on first use, then reused)."""
        return self._public_clients.sync(
            lambda: AISearchPublicClient(**self._public_kwargs(), http_client=self._http_client)
        )

    @property
    def async_public_client(self) -> AsyncAISearchPublicClient:
        """The asynchronous public-endpoint client for the running event loop."""
        return self._public_clients.async_(
            lambda: AsyncAISearchPublicClient(
                **self._public_kwargs(), http_client=self._async_http_client
            )
        )

    @property
    def client(self) -> AISearchClient:
        """The synchronous core client (built on first use, then reused)."""
        if self._client is not None:
            return self._client
        return self._clients.sync(self._build_client)

    @property
    def async_client(self) -> AsyncAISearchClient:
        """The asynchronous core client for the running event loop (built once per loop)."""
        if self._async_client is not None:
            return self._async_client
        return self._clients.async_(self._build_async_client)

    def close(self) -> None:
        """Close the synchronous client this connection built (never an injected one)."""
        self._clients.close()
        self._public_clients.close()

    async def aclose(self) -> None:
        """Close the asynchronous clients this connection built (never an injected one).

        Clients of other event loops cannot be closed from this one: those of running loops
        are kept for their loop, those of closed loops dropped (a loop run by ``asyncio.run``
        or an ``asyncio.Runner`` closes its own client at shutdown).
        """
        await self._clients.aclose()
        await self._public_clients.aclose()


def resolve_connection(
    connection: AISearchConnection | None, kwargs: Mapping[str, Any]
) -> AISearchConnection:
    """Return ``connection`` or build one from connection keyword arguments.

    Args:
        connection: An existing connection to share, or ``None``.
        kwargs: Connection keyword arguments (see :class:`ConnectionKwargs`).

    Returns:
        The connection to use.

    Raises:
        TypeError: If both a connection and connection keyword arguments are given, or a
            keyword is not a connection setting.
    """
    unknown = sorted(set(kwargs) - set(ConnectionKwargs.__annotations__))
    if unknown:
        allowed = ", ".join(sorted(ConnectionKwargs.__annotations__))
        raise TypeError(
            f"unexpected keyword argument(s) {unknown}; connection settings are: {allowed}"
        )
    if connection is not None:
        if kwargs:
            raise TypeError(
                "pass either connection=... or connection settings, not both "
                f"(got {sorted(kwargs)})"
            )
        return connection
    return AISearchConnection(**kwargs)
