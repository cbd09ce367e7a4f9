"""Request option models: ``SearchOptions`` and its parts, and how their errors read.

Request models forbid unknown fields and check every documented bound on construction and on
assignment (``InvalidRequestError`` names the field path and the allowed range).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from aisearch._exceptions import InvalidRequestError
from aisearch._filters import validate_filters
from aisearch._names import printable

__all__ = [
    "BoostBy",
    "CacheOptions",
    "QueryRewriteOptions",
    "RerankingOptions",
    "RetrievalOptions",
    "SearchOptions",
    "format_validation_error",
]

_M = TypeVar("_M", bound=BaseModel)
_INPUT_REPR_CHARS = 80


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _INPUT_REPR_CHARS else text[:_INPUT_REPR_CHARS] + "..."


def _int_between(lo: int, hi: int) -> BeforeValidator:
    def check(value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise ValueError(f"must be an integer between {lo} and {hi} (got {_short(value)})")
        return value

    return BeforeValidator(check)


def _number_between(lo: float, hi: float) -> BeforeValidator:
    def check(value: object) -> object:
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or math.isnan(value)
            or not lo <= value <= hi
        ):
            raise ValueError(f"must be a number between {lo:g} and {hi:g} (got {_short(value)})")
        return float(value)

    return BeforeValidator(check)


def _strict_bool(value: object) -> object:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false (got {_short(value)})")
    return value


def _strict_str(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError(f"must be a string (got {_short(value)})")
    return value


_Bool = Annotated[bool, BeforeValidator(_strict_bool)]
_Str = Annotated[str, BeforeValidator(_strict_str)]
MaxNumResults = Annotated[int, _int_between(1, 50)]
"""Chunks a search returns, 1 to 50 (the bound of every route, legacy ones too)."""
UnitInterval = Annotated[float, _number_between(0.0, 1.0)]
"""A threshold between 0 and 1."""
StrictBool = _Bool
"""``True`` or ``False`` only (no ``1``, no ``"yes"``)."""


def format_validation_error(exc: ValidationError, prefix: str = "") -> str:
    """Turn a pydantic ``ValidationError`` into one message per problem, naming the field path.

    Args:
        exc: The validation error.
        prefix: A path prepended to every location (e.g. ``ai_search_options``).

    Returns:
        ``path: problem`` lines joined with ``"; "``.
    """
    parts = []
    for err in exc.errors(include_url=False):
        path = prefix
        for loc in err["loc"]:
            if isinstance(loc, int):
                path += f"[{loc}]"
            else:
                path = f"{path}.{printable(str(loc))}" if path else printable(str(loc))
        kind = err["type"]
        ctx = err.get("ctx") or {}
        if kind in ("value_error", "assertion_error") and "error" in ctx:
            problem = str(ctx["error"])
        elif kind == "literal_error":
            problem = f"must be one of {ctx.get('expected')} (got {_short(err['input'])})"
        elif kind == "extra_forbidden":
            problem = (
                "unknown field (pass options this client does not model yet through "
                "extra_options= or extra_body=)"
            )
        elif kind == "missing":
            problem = "field required"
        else:
            problem = f"{err['msg'][:1].lower()}{err['msg'][1:]} (got {_short(err['input'])})"
        if problem.startswith((".", "[")):
            parts.append(f"{path}{problem}")
        else:
            parts.append(f"{path or '<root>'}: {problem}")
    return "; ".join(parts)


def build_model(cls: type[_M], value: object, prefix: str) -> _M:
    """Validate ``value`` (a mapping or an instance) into ``cls``, raising ``InvalidRequestError``.

    ``prefix`` is the field path the messages start with.
    """
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        raise InvalidRequestError(
            f"{prefix}: must be a {cls.__name__} or a mapping (got {type(value).__name__})"
        )
    try:
        return cls.model_validate(dict(value))
    except ValidationError as exc:
        raise InvalidRequestError(format_validation_error(exc, prefix)) from None


class _RequestModel(BaseModel):
    """Base of request models: unknown fields are rejected, assignments re-validated.

    Building one (``RetrievalOptions(max_num_results=0)``) or assigning a field raises
    ``InvalidRequestError`` naming the field and the allowed range, like every other
    client-side check (it is a ``ValueError`` too).
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise InvalidRequestError(format_validation_error(exc, type(self).__name__)) from None

    # Only a wrapper of BaseModel.__init__: marked as such so that pydantic keeps validating
    # nested models without calling it (their errors then keep their full field path).
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    def __setattr__(self, name: str, value: Any) -> None:
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:
            raise InvalidRequestError(format_validation_error(exc, type(self).__name__)) from None

    def to_json_dict(self) -> dict[str, Any]:
        """Serialise only the fields the caller set (so the instance's defaults apply)."""
        return self.model_dump(exclude_unset=True, exclude_none=True, by_alias=True)


class BoostBy(_RequestModel):
    """One ``retrieval.boost_by`` entry.

    Example:
        >>> BoostBy(field="timestamp", direction="desc")
        BoostBy(field='timestamp', direction='desc')
    """

    field: Annotated[str, Field(min_length=1, max_length=64), BeforeValidator(_strict_str)]
    """``timestamp`` or a custom metadata field (1 to 64 characters)."""
    direction: Literal["asc", "desc", "exists", "not_exists"] | None = None
    """Boost direction; the service default depends on the field type."""


_KEYWORD_MODE_ALIASES = {"exact_match": "and", "fuzzy_match": "or"}


class RetrievalOptions(_RequestModel):
    """``ai_search_options.retrieval``: how candidates are found and cut.

    Example:
        >>> RetrievalOptions(max_num_results=5, filters={"folder": "docs/"})
        RetrievalOptions(retrieval_type=None, match_threshold=None, max_num_results=5, ...)
    """

    retrieval_type: Literal["vector", "keyword", "hybrid"] | None = None
    """Vector, keyword (BM25) or hybrid retrieval; must match the instance's index."""
    match_threshold: UnitInterval | None = None
    """Minimum vector similarity, 0 to 1 (service default 0.4)."""
    max_num_results: MaxNumResults | None = None
    """Maximum chunks returned, 1 to 50 (service default 10)."""
    filters: dict[str, Any] | None = None
    """Vectorize-style metadata filter (see ``aisearch.validate_filters``)."""
    context_expansion: Annotated[int, _int_between(0, 3)] | None = None
    """Neighbouring chunks added for context, 0 to 3."""
    fusion_method: Literal["rrf", "max"] | None = None
    """How hybrid results are fused."""
    keyword_match_mode: Literal["and", "or"] | None = None
    """BM25 candidate selection; the older ``exact_match``/``fuzzy_match`` map to ``and``/``or``."""
    boost_by: Annotated[list[BoostBy], Field(max_length=3)] | None = None
    """Up to 3 boosts with distinct fields; ``[]`` disables the instance's boosts."""
    metadata_only: _Bool | None = None
    """Return chunks without text."""
    return_on_failure: _Bool | None = None
    """Return empty results instead of an error when retrieval fails."""

    @field_validator("keyword_match_mode", mode="before")
    @classmethod
    def _map_keyword_mode(cls, value: object) -> object:
        if isinstance(value, str):
            return _KEYWORD_MODE_ALIASES.get(value, value)
        return value

    @field_validator("filters", mode="before")
    @classmethod
    def _check_filters(cls, value: object) -> object:
        if value is None:
            return None
        try:
            return validate_filters(value, path="filters")
        except InvalidRequestError as exc:
            # Keep the sub-path (".key.$op: ...") so the message reads
            # "ai_search_options.retrieval.filters.key.$op: ...".
            message = str(exc).removeprefix("filters")
            raise ValueError(message.removeprefix(":").lstrip()) from None

    @field_validator("boost_by", mode="before")
    @classmethod
    def _check_boost_count(cls, value: object) -> object:
        if isinstance(value, (list, tuple)):
            if len(value) > 3:
                raise ValueError(f"must have at most 3 entries (got {len(value)})")
            return list(value)
        return value

    @field_validator("boost_by")
    @classmethod
    def _check_boost_unique(cls, value: list[BoostBy] | None) -> list[BoostBy] | None:
        if value:
            names = [b.field for b in value]
            for i, name in enumerate(names):
                for earlier in names[:i]:
                    if earlier.lower() == name.lower():
                        raise ValueError(
                            "fields must be distinct, ignoring case "
                            f"(got {earlier!r} and {name!r} in {names})"
                        )
        return value


class QueryRewriteOptions(_RequestModel):
    """``ai_search_options.query_rewrite`` (applies to the ``messages`` form only)."""

    enabled: _Bool | None = None
    """Rewrite the query with an LLM before retrieval."""
    model: _Str | None = None
    """Rewrite model id (free-form; ``""`` uses the instance's)."""
    rewrite_prompt: _Str | None = None
    """System prompt of the rewrite step."""


class RerankingOptions(_RequestModel):
    """``ai_search_options.reranking``."""

    enabled: _Bool | None = None
    """Rerank candidates with a cross-encoder."""
    model: _Str | None = None
    """Reranking model id (e.g. ``@cf/baai/bge-reranker-base``)."""
    match_threshold: UnitInterval | None = None
    """Minimum reranking score, 0 to 1."""


class CacheOptions(_RequestModel):
    """``ai_search_options.cache`` (similarity cache of chat generations)."""

    enabled: _Bool | None = None
    """Use the similarity cache."""
    cache_threshold: (
        Literal["super_strict_match", "close_enough", "flexible_friend", "anything_goes"] | None
    ) = None
    """How similar a prompt must be to hit the cache."""


_RESERVED_CUSTOM_METADATA = ("ai-search", "task", "origin")


class SearchOptions(_RequestModel):
    """The ``ai_search_options`` object of search and chat requests.

    Only the fields you set are sent, so the instance's own defaults apply to the rest.

    Example:
        >>> opts = SearchOptions(retrieval=RetrievalOptions(max_num_results=5))
        >>> opts.to_json_dict()
        {'retrieval': {'max_num_results': 5}}
    """

    retrieval: RetrievalOptions | None = None
    """Retrieval settings."""
    query_rewrite: QueryRewriteOptions | None = None
    """Query rewriting settings."""
    reranking: RerankingOptions | None = None
    """Reranking settings."""
    cache: CacheOptions | None = None
    """Similarity cache settings."""
    custom_metadata: dict[str, str | int | float | bool] | None = None
    """Up to 2 entries copied into AI Gateway logs (keys ai-search, task, origin, cf.* reserved)."""

    @field_validator("custom_metadata", mode="before")
    @classmethod
    def _check_custom_metadata(cls, value: object) -> object:
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise ValueError(f"must be a mapping of at most 2 entries (got {_short(value)})")
        if len(value) > 2:
            raise ValueError(f"must have at most 2 entries (got {len(value)})")
        for key, item in value.items():
            if not isinstance(key, str) or not key:
                raise ValueError(f"keys must be non-empty strings (got {key!r})")
            if key in _RESERVED_CUSTOM_METADATA or key.startswith("cf."):
                raise ValueError(f"key {key!r} is reserved (ai-search, task, origin, cf.*)")
            if isinstance(item, float) and not math.isfinite(item):
                raise ValueError(f"{printable(key)}: must be a finite number (got {item!r})")
            if not isinstance(item, (str, int, float, bool)):
                raise ValueError(
                    f"{printable(key)}: must be a string, number or boolean (got {_short(item)})"
                )
        return dict(value)
