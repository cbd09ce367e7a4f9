"""Connection fields, lazy core clients and secret-free errors shared by every class."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from typing import Any

from langchain_core.utils import from_env, secret_from_env
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_core import (
    InitErrorDetails,
    PydanticCustomError,
)
from typing_extensions import Self

from aisearch import (
    AISearchClient,
    AISearchPublicClient,
    AsyncAISearchClient,
    AsyncAISearchPublicClient,
    InvalidRequestError,
)
from aisearch._config import ENV, validate_instance_id
from aisearch._lazy import LazyClients
from aisearch._names import closest_names
from aisearch._public import check_endpoint

__all__ = [
    "AISearchConnection",
    "HidesSecretsInErrors",
    "SettingsValidationError",
    "closest_setting",
    "setting_names",
    "validate_k",
]


def validate_k(k: Any, field: str = "k") -> int:
    """Check a per-call result count (1..50) before any network call.

    Args:
        k: The value passed by the caller.
        field: The field name used in the error message.

    Returns:
        The count as an int.

    Raises:
        InvalidRequestError: When `k` is not an int between 1 and 50 (a `ValueError`).
    """
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 50:
        msg = f"{field}: must be an integer between 1 and 50 (got {_short(k)})"
        raise InvalidRequestError(msg)
    return k


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}..."


# ---------------------------------------------------------------- secrets in errors

SECRET_FIELDS = frozenset({"api_token", "api_key", "access_client_id", "access_client_secret"})
"""Fields whose values never appear in an error (constructor or assignment)."""
_MASK = "**********"
_SECRET_NAME = re.compile(r"token|secret|passw|credential|auth|key$", re.IGNORECASE)


def _is_secret_key(key: Any) -> bool:
    """A secret field, or a name that looks like one (e.g. a misspelt `api_tokn`)."""
    return isinstance(key, str) and (key in SECRET_FIELDS or bool(_SECRET_NAME.search(key)))


def _collect_secrets(value: Any, found: set[str], depth: int = 0) -> None:
    """Gather the secret strings held in constructor data (nested mappings and lists)."""
    if depth > 8:
        return
    if isinstance(value, SecretStr):
        secret = value.get_secret_value()
        if secret:
            found.add(secret)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if _is_secret_key(key) and isinstance(item, str) and item:
                found.add(item)
            else:
                _collect_secrets(item, found, depth + 1)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _collect_secrets(item, found, depth + 1)
    elif isinstance(value, BaseModel):  # e.g. a tool's retriever: its credentials
        for name in SECRET_FIELDS:
            _collect_secrets(getattr(value, name, None), found, depth + 1)
        for name in ("retriever", "chat"):
            if name in type(value).model_fields:
                _collect_secrets(getattr(value, name, None), found, depth + 1)


def _scrub(value: Any, secrets: set[str], depth: int = 0) -> Any:
    """A copy of an error's input without secrets.

    Secret fields, `SecretStr`s and any string holding a secret become `**********`;
    other objects are kept as they are.
    """
    if isinstance(value, SecretStr):
        return _MASK
    if isinstance(value, str):
        return _MASK if any(secret in value for secret in secrets) else value
    if depth > 8:
        return value
    if isinstance(value, Mapping):
        return {
            key: (
                _MASK
                if _is_secret_key(key) and value[key] is not None
                else _scrub(value[key], secrets, depth + 1)
            )
            for key in value
        }
    if isinstance(value, (list, tuple)):
        return type(value)(_scrub(item, secrets, depth + 1) for item in value)
    if isinstance(value, BaseException):
        text = str(value)
        return ValueError(_MASK) if any(secret in text for secret in secrets) else value
    return value


class SettingsValidationError(InvalidRequestError, ValidationError):
    """An invalid setting of a LangChain class of this package (construction or assignment).

    Both a pydantic `ValidationError` (what LangChain code and users catch, with `errors()`
    naming each field) and an `aisearch.InvalidRequestError` (so that one `except
    InvalidRequestError` catches bad values at every layer, as the README promises).
    Its inputs are hidden (see `hide_secrets`).
    """

    def __reduce__(self) -> tuple[Any, ...]:
        # pydantic's own errors are not picklable; keep the text, which names each field
        return (InvalidRequestError, (str(self),))


def closest_setting(key: str, known: Collection[str]) -> str | None:
    """The setting a misspelt or foreign name most likely meant, or `None`.

    The core's `closest_names` (`instnce_id` -> `instance_id`, `top_k` -> `k`, `k` -> `top_k`).
    """
    near = closest_names(key, known)
    return near[0] if near else None


_UNKNOWN = frozenset({"extra_forbidden", "no_such_attribute"})
"""pydantic's error types for a name the class does not have (constructor, assignment)."""


def _unknown_setting(err: Any, known: Collection[str]) -> PydanticCustomError | str:
    """The error type of an unknown setting: pydantic's, with a "did you mean" when one fits."""
    key = err["loc"][0]
    near = closest_setting(key, known) if isinstance(key, str) and known else None
    if near is None:
        return str(err["type"])
    message = str(err["msg"]).replace("{", "{{").replace("}", "}}")
    return PydanticCustomError(err["type"], f"{message} (did you mean {near!r}?)")


def setting_names(model: type[BaseModel]) -> set[str]:
    """The public settings of a model class, by field name and alias."""
    names = {name for name in model.model_fields if not name.startswith("_")}
    names |= {f.alias for f in model.model_fields.values() if f.alias}
    return names


def hide_secrets(
    exc: ValidationError, *sources: Any, known: Collection[str] = ()
) -> SettingsValidationError:
    """Rebuild a pydantic `ValidationError` so that no view of it holds a secret.

    pydantic keeps each error's input: `str(exc)` quotes it (`input_value={...}`, the
    token's first or last characters), and `exc.errors()`, `exc.json()` and a pickled
    error hold it whole. The copy hides the input in its text (`hide_input`) and replaces
    secrets in `errors()` (the `api_token`/`api_key` values, `SecretStr`s, any string
    holding a secret found in `sources`); the field paths and messages are kept.

    An unknown setting (`extra_forbidden`, or `no_such_attribute` on assignment) also
    names the closest of `known`
    ("did you mean 'k'?").

    Args:
        exc: The error pydantic raised.
        *sources: Where the secrets are (the constructor data, the model).
        known: The settings of the class, for the "did you mean" of an unknown one.

    Returns:
        A new `ValidationError` with the same title, locations, types and messages.
    """
    secrets: set[str] = set()
    for source in sources:
        _collect_secrets(source, secrets)
    errors = exc.errors(include_url=False)
    for err in errors:
        # the value of an unknown or secret argument may be a credential under a
        # misspelt name (`api_tokn=...`): never shown
        if err["type"] in _UNKNOWN or any(_is_secret_key(p) for p in err["loc"]):
            value = err["input"]
            if isinstance(value, str) and len(value) >= 8:  # shorter: not worth hiding
                secrets.add(value)
            else:
                _collect_secrets(value, secrets)
            err["input"] = _MASK
    details: list[InitErrorDetails] = []
    for err in errors:
        kind: PydanticCustomError | str = err["type"]
        if kind in _UNKNOWN and len(err["loc"]) == 1:
            kind = _unknown_setting(err, known)
        item = InitErrorDetails(type=kind, loc=err["loc"], input=_scrub(err["input"], secrets))
        if "ctx" in err:
            item["ctx"] = _scrub(dict(err["ctx"]), secrets)
        details.append(item)
    try:
        return SettingsValidationError.from_exception_data(exc.title, details, hide_input=True)
    except (KeyError, TypeError, ValueError):  # a custom error type: keep its message
        plain = [
            InitErrorDetails(
                type=PydanticCustomError(
                    err["type"],
                    str(_scrub(err["msg"], secrets)).replace("{", "{{").replace("}", "}}"),
                ),
                loc=err["loc"],
                input=_scrub(err["input"], secrets),
            )
            for err in errors
        ]
        return SettingsValidationError.from_exception_data(exc.title, plain, hide_input=True)


class HidesSecretsInErrors(BaseModel):
    """Construction errors never carry a secret (see `hide_secrets`).

    Mixed into every LangChain class of this package that holds or may be given a
    credential. The error stays a pydantic `ValidationError` naming the field and the
    rule; only the input values are hidden. It is raised without the original as its
    context (`__context__` is `None`), so the secret does not travel along.
    """

    model_config = ConfigDict(hide_input_in_errors=True)

    def __init__(self, **data: Any) -> None:
        error: ValidationError | None = None
        try:
            super().__init__(**data)
        except ValidationError as exc:
            error = hide_secrets(exc, data, known=setting_names(type(self)))
        if error is not None:  # raised outside the handler: no secret-bearing __context__
            raise error

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Self:
        """`BaseModel.model_validate`, with secrets hidden from its errors."""
        error: ValidationError | None = None
        try:
            return super().model_validate(obj, *args, **kwargs)
        except ValidationError as exc:
            error = hide_secrets(exc, obj, known=setting_names(cls))
        raise error


_UNSET = object()
# Settings the built core clients were made from: changing one drops those clients.
_CLIENT_SETTINGS = frozenset(
    {
        "account_id",
        "api_token",
        "api_email",
        "api_key",
        "namespace",
        "base_url",
        "timeout",
        "max_retries",
        "public_endpoint",
        "access_client_id",
        "access_client_secret",
    }
)
# Arguments that choose an account over a public endpoint found in the environment.
_ACCOUNT_ARGS = ("account_id", "api_token", "api_email", "api_key", "client", "async_client")


class ClosesOnExit:
    """`with` / `async with` for an object whose `close()` / `aclose()` close what it built."""

    def close(self) -> None:
        """Close the clients this object built."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Close the clients this object built (async)."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _choose_target(data: dict[str, Any]) -> dict[str, Any]:
    """Account or public endpoint: arguments win over `AISEARCH_PUBLIC_ENDPOINT`.

    Raises:
        InvalidRequestError: Both a public endpoint and an account given as arguments.
    """
    account = sorted(k for k in _ACCOUNT_ARGS if data.get(k) is not None)
    if account and data.get("public_endpoint") is not None:
        msg = (
            "public_endpoint: pass either public_endpoint (no account or token needed) or "
            f"an account ({', '.join(account)}), not both"
        )
        raise InvalidRequestError(msg)
    if account and "public_endpoint" not in data:
        data = {**data, "public_endpoint": None}  # not read from the environment
    return data


class AISearchConnection(ClosesOnExit, HidesSecretsInErrors):
    """Connection fields and lazily built, cached core clients.

    Every LangChain class of this package mixes this in. Credentials fall back to the
    same environment variables as the core client; nothing is checked at construction,
    a missing credential raises a clear `aisearch.AISearchError` at the first call.
    """

    model_config = ConfigDict(
        extra="forbid",
        arbitrary_types_allowed=True,
        populate_by_name=True,
        validate_assignment=True,
        hide_input_in_errors=True,
    )

    account_id: str | None = Field(default_factory=from_env(ENV["account_id"], default=None))
    """Cloudflare account id (env `CLOUDFLARE_ACCOUNT_ID`, then `CF_ACCOUNT_ID`)."""

    api_token: SecretStr | None = Field(
        default_factory=secret_from_env(ENV["api_token"], default=None), repr=False
    )
    """API token with AI Search:Run (env `CLOUDFLARE_API_TOKEN`, `CF_AI_SEARCH_API_TOKEN`,
    `CF_API_TOKEN`)."""

    api_email: str | None = Field(default_factory=from_env(ENV["api_email"], default=None))
    """Account email for legacy global-key auth (env `CLOUDFLARE_EMAIL`)."""

    api_key: SecretStr | None = Field(
        default_factory=secret_from_env(ENV["api_key"], default=None), repr=False
    )
    """Legacy global API key, used with `api_email` (env `CLOUDFLARE_API_KEY`)."""

    namespace: str = "default"
    """AI Search namespace of the instance(s)."""

    base_url: str | None = Field(default_factory=from_env(ENV["base_url"], default=None))
    """API base URL (env `AISEARCH_BASE_URL`), e.g. a local `aisearch-local` server."""

    timeout: float | None = Field(default=None, gt=0, strict=True)
    """Request timeout in seconds; `None` keeps the core client's default (30 s)."""

    max_retries: int = Field(default=2, ge=0, le=10, strict=True)
    """Retries on connection errors, timeouts, 408/409/429 and 5xx."""

    client: AISearchClient | None = Field(default=None, exclude=True, repr=False)
    """A core client to use instead of building one (shared, never closed by us)."""

    async_client: AsyncAISearchClient | None = Field(default=None, exclude=True, repr=False)
    """An async core client to use instead of building one."""

    public_endpoint: str | None = Field(
        default_factory=from_env(ENV["public_endpoint"], default=None), validate_default=True
    )
    """A public endpoint to use instead of an account and token (env
    `AISEARCH_PUBLIC_ENDPOINT`): `https://<id>.search.ai.cloudflare.com`, `https://ns-<id>...`,
    a custom domain, or `http://127.0.0.1:PORT/_public/<id>` (a local server). The endpoint
    chooses the instance (or the namespace's allowed instances): `instance_id` is then not
    needed. Arguments win over the environment: `account_id=`, `api_token=` or `client=` given
    with the variable set use the account."""

    access_client_id: SecretStr | None = Field(
        default_factory=secret_from_env(ENV["access_client_id"], default=None), repr=False
    )
    """Cloudflare Access service token id, for a public endpoint's custom domain behind
    Access (env `CF_ACCESS_CLIENT_ID`)."""

    access_client_secret: SecretStr | None = Field(
        default_factory=secret_from_env(ENV["access_client_secret"], default=None), repr=False
    )
    """Its secret (env `CF_ACCESS_CLIENT_SECRET`)."""

    _clients: LazyClients = PrivateAttr(default_factory=LazyClients)
    _public_clients: LazyClients = PrivateAttr(default_factory=LazyClients)

    def __init__(self, **data: Any) -> None:
        super().__init__(**_choose_target(data))

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Self:
        """`BaseModel.model_validate`, choosing the account or the endpoint as `__init__` does."""
        if isinstance(obj, Mapping):
            obj = _choose_target(dict(obj))
        return super().model_validate(obj, *args, **kwargs)

    @field_validator("namespace")
    @classmethod
    def _check_namespace(cls, value: str) -> str:
        return validate_instance_id(value, "namespace")

    @field_validator("public_endpoint")
    @classmethod
    def _check_public_endpoint(cls, value: str | None) -> str | None:
        return None if value is None else check_endpoint(value, "public_endpoint")

    @property
    def uses_public_endpoint(self) -> bool:
        """Whether calls go to `public_endpoint` (no account, no API token)."""
        return self.public_endpoint is not None

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in type(self).model_fields:
            unknown: ValidationError | None = None
            try:
                super().__setattr__(name, value)  # a private attribute, or no such setting
            except ValidationError as exc:
                unknown = hide_secrets(exc, {name: value}, known=setting_names(type(self)))
            if unknown is not None:
                raise unknown
            return
        old = self.__dict__.get(name, _UNSET)
        error: ValidationError | None = None
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:
            # pydantic keeps a value that passed its field check but failed a model-level
            # check (e.g. options validated together): put the old one back, so that a
            # rejected assignment changes nothing
            if old is not _UNSET:
                self.__dict__[name] = old
            secret = {name: value} if name in SECRET_FIELDS else None
            error = hide_secrets(
                exc,
                secret,
                self.api_token,
                self.api_key,
                self.access_client_id,
                self.access_client_secret,
            )
        if error is not None:
            raise error
        if name in _CLIENT_SETTINGS:
            self._drop_built_clients()

    def _drop_built_clients(self) -> None:
        """Forget the clients built from the old settings (the next call builds new ones)."""
        self._clients.reset()
        self._public_clients.reset()

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        """Copy the settings; share injected clients; build new clients when first used."""
        memo = {} if memo is None else memo
        for shared in (self.client, self.async_client):
            if shared is not None:
                memo[id(shared)] = shared
        private = self.__pydantic_private__ or {}
        for name in ("_clients", "_public_clients"):
            if name in private:
                memo[id(private[name])] = LazyClients()
        return super().__deepcopy__(memo)

    def __getstate__(self) -> dict[Any, Any]:
        raise TypeError(
            f"{type(self).__name__} cannot be pickled: it holds credentials and pooled HTTP "
            "connections. Build it in the other process (credentials can come from "
            "CLOUDFLARE_ACCOUNT_ID and CLOUDFLARE_API_TOKEN)."
        )

    @property
    def lc_secrets(self) -> dict[str, str]:
        """Secret fields and the environment variables they come from."""
        return {
            "api_token": "CLOUDFLARE_API_TOKEN",
            "api_key": "CLOUDFLARE_API_KEY",
            "access_client_id": "CF_ACCESS_CLIENT_ID",
            "access_client_secret": "CF_ACCESS_CLIENT_SECRET",
        }

    def _client_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "account_id": self.account_id,
            "api_token": self.api_token.get_secret_value() if self.api_token else None,
            "api_email": self.api_email,
            "api_key": self.api_key.get_secret_value() if self.api_key else None,
            "namespace": self.namespace,
            "base_url": self.base_url,
            "max_retries": self.max_retries,
        }
        if self.timeout is not None:
            kwargs["timeout"] = self.timeout
        return kwargs

    def _build_client(self) -> AISearchClient:
        return AISearchClient(**self._client_kwargs())

    def _build_async_client(self) -> AsyncAISearchClient:
        return AsyncAISearchClient(**self._client_kwargs())

    def _get_client(self) -> AISearchClient:
        """Return the injected client, or build one pooled client once."""
        if self.client is not None:
            return self.client
        # through the private dict: `self._clients` goes through pydantic's slow `__getattr__`
        clients: LazyClients = self.__pydantic_private__["_clients"]  # type: ignore[index]
        return clients.sync(self._build_client)

    def _get_async_client(self) -> AsyncAISearchClient:
        """Return the injected async client, or one pooled client per event loop."""
        if self.async_client is not None:
            return self.async_client
        return self._clients.async_(self._build_async_client)

    def _public_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "endpoint": self.public_endpoint,
            "max_retries": self.max_retries,
        }
        for name in ("access_client_id", "access_client_secret"):
            secret: SecretStr | None = getattr(self, name)
            kwargs[name] = secret.get_secret_value() if secret is not None else None
        if self.timeout is not None:
            kwargs["timeout"] = self.timeout
        return kwargs

    def _get_public_client(self) -> AISearchPublicClient:
        """The public-endpoint client (built once, on first use)."""
        return self._public_clients.sync(lambda: AISearchPublicClient(**self._public_kwargs()))

    def _get_async_public_client(self) -> AsyncAISearchPublicClient:
        """The async public-endpoint client of the running event loop (built once per loop)."""
        return self._public_clients.async_(
            lambda: AsyncAISearchPublicClient(**self._public_kwargs())
        )

    def _public_for(
        self, getter: Callable[[], AISearchClient | AsyncAISearchClient]
    ) -> AISearchPublicClient | AsyncAISearchPublicClient:
        """The public-endpoint client of the same kind (sync or async) as `getter`'s."""
        if getter == self._get_async_client:
            return self._get_async_public_client()
        return self._get_public_client()

    def close(self) -> None:
        """Close the sync core client this object built; injected clients stay open.

        The object stays usable: its next call opens a new pool.
        """
        self._clients.close()
        self._public_clients.close()

    async def aclose(self) -> None:
        """Close every core client this object built; injected clients stay open.

        Async clients opened in other, still running event loops are kept for their loop
        (which closes them at its shutdown). The object stays usable: its next call opens
        a new pool.
        """
        self._clients.close()
        self._public_clients.close()
        await self._clients.aclose()
        await self._public_clients.aclose()
