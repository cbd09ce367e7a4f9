"""Typed search options shared by the adapters, built into the core ``SearchOptions``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from typing_extensions import TypedDict

from aisearch import (
    BoostBy,
    CacheOptions,
    InvalidRequestError,
    QueryRewriteOptions,
    RerankingOptions,
    SearchOptions,
    coerce_options,  # the core's own options validation
)

from ._common import AISearchConnection, ConnectionKwargs, check_keywords
from .filters import FilterInput, to_aisearch_filters

__all__ = [
    "PLACE_KEYS",
    "EngineKwargs",
    "PlaceKwargs",
    "RetrieverKwargs",
    "RetrieverSearchKwargs",
    "SearchConfig",
    "SearchKwargs",
    "SearchOption",
    "build_search_options",
    "check_option_keywords",
    "check_top_k",
    "coerce_search_options",
    "split_kwargs",
]

RetrievalType = Literal["vector", "keyword", "hybrid"]
FusionMethod = Literal["rrf", "max"]
KeywordMatchMode = Literal["and", "or", "exact_match", "fuzzy_match"]


class RetrieverSearchKwargs(TypedDict, total=False):
    """Search options accepted by the retrievers (and the rest).

    Every option left unset is not sent, so the instance's own configuration applies.
    """

    similarity_top_k: int | None
    retrieval_type: RetrievalType | None
    match_threshold: float | None
    filters: FilterInput | None
    context_expansion: int | None
    fusion_method: FusionMethod | None
    keyword_match_mode: KeywordMatchMode | None
    boost_by: Sequence[BoostBy | Mapping[str, Any]] | None
    metadata_only: bool | None
    return_on_failure: bool | None
    query_rewrite: bool | QueryRewriteOptions | Mapping[str, Any] | None
    reranking: bool | RerankingOptions | Mapping[str, Any] | None
    cache: bool | CacheOptions | Mapping[str, Any] | None
    custom_metadata: Mapping[str, str | int | float | bool] | None
    extra_options: Mapping[str, Any] | None


class SearchKwargs(RetrieverSearchKwargs, total=False):
    """Search options accepted by the query engine, chat engine, LLM and tool spec (the same)."""


SEARCH_KEYS = frozenset(SearchKwargs.__annotations__)
RETRIEVER_SEARCH_KEYS = frozenset(RetrieverSearchKwargs.__annotations__)


def split_kwargs(
    kwargs: Mapping[str, Any], keys: frozenset[str] = SEARCH_KEYS
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split keyword arguments into (search options, everything else)."""
    search = {k: v for k, v in kwargs.items() if k in keys}
    rest = {k: v for k, v in kwargs.items() if k not in keys}
    return search, rest


def check_top_k(value: int | None, name: str = "similarity_top_k") -> int | None:
    """Check a result count is an integer between 1 and 50 (the API's range).

    Raises:
        InvalidRequestError: Naming the argument and the allowed range.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequestError(f"{name}: must be an integer between 1 and 50 (got {value!r})")
    if not 1 <= value <= 50:
        raise InvalidRequestError(f"{name}: must be between 1 and 50 (got {value})")
    return value


def _toggle(value: Any) -> Any:
    if isinstance(value, bool):
        return {"enabled": value}
    if isinstance(value, Mapping):
        return dict(value)
    return value


_TOGGLES = ("query_rewrite", "reranking", "cache")
_RETRIEVAL_KEYS = (
    "retrieval_type",
    "match_threshold",
    "context_expansion",
    "fusion_method",
    "keyword_match_mode",
    "metadata_only",
    "return_on_failure",
)


def build_search_options(values: Mapping[str, Any]) -> SearchOptions | None:
    """Build and validate the core ``SearchOptions`` from flat, typed options.

    ``values`` holds :class:`SearchKwargs` entries except ``extra_options``.
    ``query_rewrite``, ``reranking`` and ``cache`` accept ``True``/``False`` (shorthand for
    ``{"enabled": ...}``), the core option model, or a mapping of it. Unset (``None``)
    options are not sent.

    Returns:
        The validated options, or ``None`` when nothing is set.

    Raises:
        InvalidRequestError: A bad value, naming the field path and the allowed range.
        ValueError: A filter that AI Search cannot express (see ``filters.py``).
    """
    top_k = check_top_k(values.get("similarity_top_k"))
    boost_by = values.get("boost_by")
    retrieval: dict[str, Any] = {
        "max_num_results": top_k,
        "filters": to_aisearch_filters(values.get("filters")),
        "boost_by": list(boost_by) if boost_by is not None else None,
    }
    retrieval.update((name, values.get(name)) for name in _RETRIEVAL_KEYS)
    custom_metadata = values.get("custom_metadata")
    data: dict[str, Any] = {
        "retrieval": {k: v for k, v in retrieval.items() if v is not None} or None,
        **{name: _toggle(values.get(name)) for name in _TOGGLES},
        "custom_metadata": dict(custom_metadata) if custom_metadata is not None else None,
    }
    data = {k: v for k, v in data.items() if v is not None}
    if not data:
        return None
    return coerce_search_options(data)


def coerce_search_options(data: SearchOptions | Mapping[str, Any]) -> SearchOptions:
    """Validate a mapping (or model) into the core ``SearchOptions``.

    Raises:
        InvalidRequestError: A bad value, naming the field path and the allowed range.
    """
    return coerce_options(data) or SearchOptions()  # the core's validation and messages


class SearchConfig:
    """Flat search options and the ``SearchOptions`` built from them, kept in step.

    Changing one option rebuilds and validates the whole set first, so a rejected value
    changes nothing and an accepted one is sent with the next request.
    """

    def __init__(self, options: Mapping[str, Any]) -> None:
        self._values = {k: v for k, v in options.items() if v is not None}
        self.options: SearchOptions | None = build_search_options(self._values)

    def get(self, name: str) -> Any:
        """The flat value of one option (``None`` when unset)."""
        return self._values.get(name)

    def set(self, name: str, value: Any) -> None:
        """Change one option; the next request sends it.

        Raises:
            InvalidRequestError: A bad value, naming the field and the allowed range.
        """
        values = {**self._values, name: value}
        self.options = build_search_options(values)  # validate before committing
        self._values = {k: v for k, v in values.items() if v is not None}

    def replace(self, options: SearchOptions | None) -> None:
        """Send these (already validated) options; the flat values no longer apply."""
        self.options = options
        self._values = {}


class SearchOption:
    """A search option as an attribute: reads and assignments go to ``_search_config``.

    An assignment is validated at once (``InvalidRequestError`` naming the field) and
    takes effect on the next request.
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return obj._search_config.get(self.name)

    def __set__(self, obj: Any, value: Any) -> None:
        obj._search_config.set(self.name, value)


class RetrieverOptionAttributes:
    """The search options of a retriever as attributes, each a :class:`SearchOption`.

    ``similarity_top_k`` is the number of chunks to return (1..50; ``None`` uses the
    instance's setting), ``filters`` LlamaIndex ``MetadataFilters`` or a raw AI Search
    filter; the others are described with :class:`RetrieverSearchKwargs`.
    """

    similarity_top_k = SearchOption()
    filters = SearchOption()
    retrieval_type = SearchOption()
    match_threshold = SearchOption()
    context_expansion = SearchOption()
    fusion_method = SearchOption()
    keyword_match_mode = SearchOption()
    boost_by = SearchOption()
    metadata_only = SearchOption()
    return_on_failure = SearchOption()
    query_rewrite = SearchOption()
    reranking = SearchOption()
    cache = SearchOption()
    custom_metadata = SearchOption()


class EngineOptionAttributes(RetrieverOptionAttributes):
    """Every search option of an engine as an attribute, each a :class:`SearchOption`."""


class PlaceKwargs(TypedDict, total=False):
    """Where every adapter sends its requests: ``namespace`` and a shared ``connection``.

    ``namespace`` is the instances' namespace (``None``: the connection's, ``"default"``);
    ``connection`` an :class:`AISearchConnection` to share (``None``: one is built from the
    connection settings).
    """

    namespace: str | None
    connection: AISearchConnection | None


PLACE_KEYS = frozenset(PlaceKwargs.__annotations__)


class EngineKwargs(PlaceKwargs, ConnectionKwargs, SearchKwargs, total=False):
    """Place, connection settings and search options, as keywords (engines, LLM, tool spec)."""


class RetrieverKwargs(PlaceKwargs, ConnectionKwargs, RetrieverSearchKwargs, total=False):
    """Place, connection settings and search options, as keywords (the retrievers)."""


CONNECTION_KEYS = frozenset(ConnectionKwargs.__annotations__)


def check_option_keywords(
    owner: type,
    kwargs: Mapping[str, Any],
    search_keys: frozenset[str] = SEARCH_KEYS,
    other: frozenset[str] = PLACE_KEYS,
    *,
    groups: Mapping[str, Sequence[str]] | None = None,
    note: str = "",
) -> None:
    """Refuse a keyword that is no search option, connection setting or other argument.

    Raises:
        TypeError: Naming the keyword and the closest real one, and listing the search
            options, the connection settings (then ``groups``) and the other arguments.
    """
    check_keywords(
        owner,
        kwargs,
        {"search options": search_keys, "connection settings": CONNECTION_KEYS, **(groups or {})},
        other=other,
        note=note,
    )
