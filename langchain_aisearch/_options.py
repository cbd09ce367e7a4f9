"""Every AI Search search option as a typed field, built into the core ``SearchOptions``."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr
from pydantic_core import PydanticSerializationError, to_json

from aisearch import (
    BoostBy,
    CacheOptions,
    QueryRewriteOptions,
    RerankingOptions,
    SearchOptions,
    coerce_options,  # the core's own options validation
)

__all__ = ["SearchOptionFields"]

RetrievalType = Literal["vector", "keyword", "hybrid"]
FusionMethod = Literal["rrf", "max"]
KeywordMatchMode = Literal["and", "or", "exact_match", "fuzzy_match"]
"""`and` / `or`; the older `exact_match` / `fuzzy_match` are accepted and sent as `and` / `or`."""

_RETRIEVAL_FIELDS = (
    "retrieval_type",
    "match_threshold",
    "context_expansion",
    "fusion_method",
    "keyword_match_mode",
    "boost_by",
    "metadata_only",
    "return_on_failure",
)
"""Fields sent under `ai_search_options.retrieval` (with `filters` and the result count)."""


class SearchOptionFields(BaseModel):
    """Every AI Search retrieval option as a typed field; unset fields are not sent."""

    model_config = ConfigDict(
        extra="forbid",
        arbitrary_types_allowed=True,
        validate_assignment=True,
        hide_input_in_errors=True,
    )

    retrieval_type: RetrievalType | None = None
    """`vector`, `keyword` or `hybrid` (must match the instance's index method)."""

    match_threshold: float | None = Field(default=None, ge=0.0, le=1.0, strict=True)
    """Minimum vector similarity, 0..1."""

    filters: dict[str, Any] | None = None
    """Vectorize-style metadata filter, e.g. `{"folder": "docs/"}`."""

    context_expansion: int | None = Field(default=None, ge=0, le=3, strict=True)
    """Number of neighbouring chunks to add, 0..3."""

    fusion_method: FusionMethod | None = None
    """How hybrid search fuses vector and keyword ranks: `rrf` or `max`."""

    keyword_match_mode: KeywordMatchMode | None = None
    """BM25 candidate selection: `and` or `or` (`exact_match` / `fuzzy_match` are aliases)."""

    boost_by: list[BoostBy] | None = None
    """Up to 3 boosts, e.g. `[{"field": "timestamp", "direction": "desc"}]`."""

    metadata_only: bool | None = Field(default=None, strict=True)
    """Return chunks without text."""

    return_on_failure: bool | None = Field(default=None, strict=True)
    """Return empty results instead of an error when retrieval fails."""

    query_rewrite: QueryRewriteOptions | None = None
    """Query rewriting options, e.g. `{"enabled": True}`."""

    reranking: RerankingOptions | None = None
    """Reranking options, e.g. `{"enabled": True, "match_threshold": 0.2}`."""

    cache: CacheOptions | None = None
    """Similarity cache options (on `ChatAISearch`: `search_cache`, since `cache` is
    LangChain's own LLM cache there)."""

    custom_metadata: dict[str, str | int | float | bool] | None = None
    """Up to 2 entries copied into AI Gateway logs (keys `ai-search`, `task`, `origin`,
    `cf.*` are reserved)."""

    # search option name -> field holding it (ChatAISearch keeps `cache` for LangChain)
    _option_fields: ClassVar[dict[str, str]] = {
        "query_rewrite": "query_rewrite",
        "reranking": "reranking",
        "cache": "cache",
        "custom_metadata": "custom_metadata",
    }

    extra_options: dict[str, Any] | None = None
    """Raw `ai_search_options` deep-merged last, for fields the service adds later."""

    # Options built for calls without per-call filters, per result count, keyed by the JSON
    # of the option field values they were built from (what those values are sent as). A
    # call reuses them only while that JSON is unchanged, so an assignment or an in-place
    # change (e.g. `retriever.filters["folder"] = ...`, or `1` becoming `True`) rebuilds and
    # revalidates them. Reusing skips the options' validation and a pass over every field.
    # Kept because benchmarks/bench_langchain.py needs it (issue 12, two interleaved runs
    # each): invoke vs the bare-retriever floor 1.010 / 1.041 with it, 1.048 / 1.089
    # without; client CPU per call over the floor about 0 ms with it, +0.27 / +0.31 ms
    # without.
    _options_cache: dict[int | None, tuple[bytes, SearchOptions]] = PrivateAttr(
        default_factory=dict
    )

    @classmethod
    @functools.cache
    def _option_value_fields(cls) -> tuple[str, ...]:
        return (*_RETRIEVAL_FIELDS, "filters", *cls._option_fields.values())

    def _search_options(
        self,
        *,
        max_num_results: int | None = None,
        filters: Mapping[str, Any] | None = None,
    ) -> SearchOptions:
        """The typed `SearchOptions` (only fields that are set are sent).

        Raises:
            InvalidRequestError: Naming the field path and its allowed range.
        """
        if filters is not None:
            return self._build_search_options(max_num_results, filters)
        # keyed before building: an in-place change made meanwhile (another thread) then
        # misses the cache next time instead of hiding behind a key that already has it
        try:
            key = to_json(tuple(getattr(self, name) for name in self._option_value_fields()))
        except PydanticSerializationError:  # not JSON: let the build name the bad value
            return self._build_search_options(max_num_results, None)
        # through the private dict: `self._options_cache` goes through pydantic's slow
        # `__getattr__` (about 2 us)
        cache = self.__pydantic_private__["_options_cache"]  # type: ignore[index]
        cached = cache.get(max_num_results)
        if cached is not None and cached[0] == key:
            return cast(SearchOptions, cached[1])
        options = self._build_search_options(max_num_results, None)
        cache[max_num_results] = (key, options)
        return options

    def _build_search_options(
        self, max_num_results: int | None, filters: Mapping[str, Any] | None
    ) -> SearchOptions:
        """Build the typed `SearchOptions`; only fields that are set are sent."""
        retrieval: dict[str, Any] = {}
        for name in _RETRIEVAL_FIELDS:
            value = getattr(self, name)
            if value is not None:
                retrieval[name] = value
        effective_filters = filters if filters is not None else self.filters
        if effective_filters is not None:
            retrieval["filters"] = dict(effective_filters)
        if max_num_results is not None:
            retrieval["max_num_results"] = max_num_results
        options: dict[str, Any] = {}
        if retrieval:
            options["retrieval"] = retrieval
        for name, field in self._option_fields.items():
            value = getattr(self, field)
            if value is not None:
                options[name] = value
        # validated by the core, so a bad per-call value raises InvalidRequestError naming
        # the field path and range (not a bare pydantic ValidationError)
        coerced = coerce_options(options)
        return coerced if coerced is not None else SearchOptions()
