"""LangChain retrievers over Cloudflare AI Search: one instance, or several."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Mapping
from typing import Any, Literal

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
    adispatch_custom_event,
    dispatch_custom_event,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever, LangSmithRetrieverParams
from pydantic import ConfigDict, Field, field_validator, model_validator

from aisearch import (
    AllInstancesFailedError,
    FanOutResult,
    InstanceError,
    InvalidRequestError,
    PartialFailureError,
    SearchOptions,
    SearchResult,
    SearchTarget,
)
from aisearch._config import validate_instance_id
from aisearch._exceptions import error_summary
from langchain_aisearch._common import (
    AISearchConnection,
    validate_k,
)
from langchain_aisearch._mapping import chunk_to_document
from langchain_aisearch._options import SearchOptionFields

__all__ = [
    "AISearchInstanceWarning",
    "AISearchMultiRetriever",
    "AISearchRetriever",
    "InstanceSearchError",
]

INSTANCE_ERROR_EVENT = "aisearch_instance_error"
"""Name of the custom callback event sent for each failed instance."""

NAMESPACE_SEARCH_LIMIT = 10
"""Most instances one namespace search request may name."""

_LS_PROVIDER = "cloudflare-aisearch"


class AISearchInstanceWarning(UserWarning):
    """One or more instances of a multi-instance search failed; the rest answered."""


InstanceSearchError = PartialFailureError
"""Some instances of a multi-instance search failed (`on_instance_error="raise"`).

The core's `aisearch.PartialFailureError` under this package's name; `errors` holds one
entry per failed instance."""


# Packages between the user's call and the warning: LangChain's runnables (invoke, batch,
# chains, agents), this package, the core, and the machinery that runs them.
_LIBRARY_ROOTS = frozenset(
    {
        "aisearch",
        "asyncio",
        "concurrent",
        "contextlib",
        "langchain",
        "langchain_aisearch",
        "langchain_classic",
        "langchain_core",
        "langgraph",
        "langsmith",
        "threading",
    }
)


def _caller_stacklevel() -> int:
    """The `stacklevel` that attributes a warning to the user's code calling LangChain.

    A fixed level fits one path only (`invoke`, not `batch`, a chain or an agent); this
    counts the frames of the libraries in between. Where no user frame is on the stack (a
    `batch` worker thread), the outermost frame is used.

    Returns:
        The level to pass to `warnings.warn` from the function that called this one.
    """
    frame = sys._getframe(1)  # the function calling `warnings.warn`: level 1
    level = 1
    while frame.f_back is not None:
        module = frame.f_globals.get("__name__") or ""
        if module.partition(".")[0] not in _LIBRARY_ROOTS:
            break
        frame = frame.f_back
        level += 1
    return level


def _call_options(
    default_k: int, kwargs: Mapping[str, Any]
) -> tuple[int, Mapping[str, Any] | None]:
    if not kwargs:
        return default_k, None
    unknown = set(kwargs) - {"k", "filters"}
    if unknown:
        msg = f"unexpected search argument(s): {sorted(unknown)} (allowed per call: k, filters)"
        raise TypeError(msg)
    k = validate_k(kwargs["k"]) if kwargs.get("k") is not None else default_k
    filters = kwargs.get("filters")
    if filters is not None and not isinstance(filters, Mapping):
        msg = f"filters: must be a mapping (got {type(filters).__name__})"
        raise InvalidRequestError(msg)
    return k, filters


class AISearchRetriever(AISearchConnection, SearchOptionFields, BaseRetriever):
    """Retriever over one Cloudflare AI Search instance (`POST .../search`).

    With `public_endpoint=` (or `AISEARCH_PUBLIC_ENDPOINT`) it searches a public endpoint
    instead, with no account or token: `instance_id` is then optional (only a label for the
    documents' `instance_id`), and a namespace endpoint searches every instance it allows.

    Each chunk becomes a `Document` whose `id` is the chunk id and whose metadata holds
    the item's custom metadata plus `id`, `score`, `type`, `filename`, `source`,
    `timestamp`, `scoring_details`, `instance_id` and `search_query`.

    Example:
        ```python
        from langchain_aisearch import AISearchRetriever

        retriever = AISearchRetriever(instance_id="docs", k=5, retrieval_type="hybrid")
        docs = retriever.invoke("How do I brew espresso?", k=3, filters={"folder": "guides/"})
        ```
    """

    # the connection's config, but LangChain's base (listed last) sets extra="ignore"
    model_config = ConfigDict(extra="forbid")

    instance_id: str | None = None
    """The AI Search instance to query (not needed with `public_endpoint`)."""

    k: int = Field(default=4, ge=1, le=50, strict=True)
    """Number of documents to return (1..50); also per call: `invoke(q, k=3)`."""

    @field_validator("instance_id")
    @classmethod
    def _check_instance_id(cls, value: str | None) -> str | None:
        return None if value is None else validate_instance_id(value)

    @model_validator(mode="after")
    def _check_options(self) -> AISearchRetriever:
        if self.instance_id is None and not self.uses_public_endpoint:
            msg = (
                "instance_id: required, unless public_endpoint (or AISEARCH_PUBLIC_ENDPOINT) is set"
            )
            raise ValueError(msg)
        self._search_options(max_num_results=self.k)  # bad options fail here, not later
        return self

    def _get_ls_params(self, **kwargs: Any) -> LangSmithRetrieverParams:
        params = super()._get_ls_params(**kwargs)
        params["ls_vector_store_provider"] = _LS_PROVIDER
        return params

    def _to_documents(self, result: SearchResult) -> list[Document]:
        return [
            chunk_to_document(c, search_query=result.search_query, instance_id=self.instance_id)
            for c in result.chunks
        ]

    def _call(self, kwargs: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        """The result count and the search keywords of one call (`k`, `filters` checked)."""
        k, filters = _call_options(self.k, kwargs)
        options = self._search_options(max_num_results=k, filters=filters)
        return k, {"options": options, "extra_options": self.extra_options}

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,  # noqa: ARG002
        **kwargs: Any,
    ) -> list[Document]:
        k, call = self._call(kwargs)
        if self.instance_id is None or self.uses_public_endpoint:
            result = self._get_public_client().search(query, **call)
        else:
            client = self._get_client()
            result = client.search(self.instance_id, query, namespace=self.namespace, **call)
        return self._to_documents(result)[:k]

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,  # noqa: ARG002
        **kwargs: Any,
    ) -> list[Document]:
        k, call = self._call(kwargs)
        if self.instance_id is None or self.uses_public_endpoint:
            result = await self._get_async_public_client().search(query, **call)
        else:
            client = self._get_async_client()
            result = await client.search(self.instance_id, query, namespace=self.namespace, **call)
        return self._to_documents(result)[:k]


class AISearchMultiRetriever(AISearchConnection, SearchOptionFields, BaseRetriever):
    """Retriever over several AI Search instances, with per-instance error reporting.

    Up to 10 instances of one namespace go through the namespace search endpoint (one
    request, merged and ranked by the service). More instances, or targets in other
    namespaces or accounts (`SearchTarget`), run as a concurrent client-side fan-out
    merged by `merge` ("score" or "rrf"). Every Document carries its `instance_id`.

    With `public_endpoint=` (a namespace's public endpoint, `https://ns-<id>...`) it
    searches through that endpoint with no account or token: `instance_ids` is then optional
    (`None`: every instance the endpoint allows) and holds at most 10 plain ids.

    A failing instance never disappears silently: `on_instance_error="warn"` (default)
    emits an `AISearchInstanceWarning` and an `aisearch_instance_error` custom callback
    event (visible in `astream_events`), `"raise"` raises `InstanceSearchError`,
    `"ignore"` drops it. `search_with_errors()` returns documents and errors together.
    When every instance fails, `AllInstancesFailedError` lists each one.

    Example:
        ```python
        from langchain_aisearch import AISearchMultiRetriever

        retriever = AISearchMultiRetriever(instance_ids=["docs", "blog"], k=8)
        docs, errors = retriever.search_with_errors("espresso ratio")
        ```
    """

    # the connection's config, but LangChain's base (listed last) sets extra="ignore"
    model_config = ConfigDict(extra="forbid")

    instance_ids: list[str | SearchTarget] | None = Field(default=None, min_length=1)
    """Instances to search: ids in `namespace`, or `SearchTarget`s for other
    namespaces or accounts. Required unless `public_endpoint` is set."""

    k: int = Field(default=4, ge=1, le=50, strict=True)
    """Number of documents to return in total (1..50); also per call."""

    merge: Literal["score", "rrf"] = "score"
    """How a client-side fan-out merges results: by score, or reciprocal rank fusion."""

    on_instance_error: Literal["raise", "warn", "ignore"] = "warn"
    """What to do when some (not all) instances fail."""

    max_concurrency: int = Field(default=8, ge=1, le=64, strict=True)
    """Concurrent instance requests in a client-side fan-out."""

    force_fan_out: bool = Field(default=False, strict=True)
    """Always fan out client-side, even when the namespace endpoint could serve."""

    @field_validator("instance_ids")
    @classmethod
    def _check_instance_ids(
        cls, value: list[str | SearchTarget] | None
    ) -> list[str | SearchTarget] | None:
        for i, target in enumerate(value or []):
            ident = target if isinstance(target, str) else target.instance_id
            validate_instance_id(ident, f"instance_ids[{i}]")
        return value

    @model_validator(mode="after")
    def _check_options(self) -> AISearchMultiRetriever:
        if self.uses_public_endpoint:
            targets = self.instance_ids or []
            if (
                self.force_fan_out
                or len(targets) > NAMESPACE_SEARCH_LIMIT
                or not all(isinstance(t, str) for t in targets)
            ):
                msg = (
                    "public_endpoint: a public endpoint searches the instances it allows in one "
                    f"request: instance_ids must be None or 1 to {NAMESPACE_SEARCH_LIMIT} plain "
                    "ids (no SearchTarget), and force_fan_out False"
                )
                raise ValueError(msg)
        elif self.instance_ids is None:
            msg = (
                "instance_ids: required, unless public_endpoint (or AISEARCH_PUBLIC_ENDPOINT) "
                "is set"
            )
            raise ValueError(msg)
        self._search_options(max_num_results=self.k)
        return self

    def _get_ls_params(self, **kwargs: Any) -> LangSmithRetrieverParams:
        params = super()._get_ls_params(**kwargs)
        params["ls_vector_store_provider"] = _LS_PROVIDER
        return params

    @property
    def uses_namespace_endpoint(self) -> bool:
        """Whether a search goes through one namespace request (else a fan-out)."""
        targets = self.instance_ids or []
        if self.uses_public_endpoint:
            return True
        if self.force_fan_out or len(targets) > NAMESPACE_SEARCH_LIMIT:
            return False
        return all(
            isinstance(t, str)
            or (t.client is None and (t.namespace is None or t.namespace == self.namespace))
            for t in targets
        )

    def _ids(self) -> list[str]:
        return [t if isinstance(t, str) else t.instance_id for t in self.instance_ids or []]

    def _to_result(
        self, result: SearchResult | FanOutResult, query: str, k: int
    ) -> tuple[list[Document], list[InstanceError]]:
        search_query = (result.search_query if isinstance(result, SearchResult) else None) or query
        docs = [chunk_to_document(c, search_query=search_query) for c in result.chunks]
        return docs[:k], list(result.errors)

    def _search(
        self, query: str, k: int, filters: Mapping[str, Any] | None
    ) -> SearchResult | FanOutResult:
        options = self._search_options(max_num_results=k, filters=filters)
        if self.uses_public_endpoint:
            return self._get_public_client().search(query, **self._public_search_kwargs(options))
        client = self._get_client()
        if self.uses_namespace_endpoint:
            return client.namespace_search(self._ids(), query, **self._namespace_kwargs(options))
        targets = self.instance_ids or []
        return client.fan_out_search(targets, query, **self._fan_out_kwargs(options, k))

    def _namespace_kwargs(self, options: SearchOptions) -> dict[str, Any]:
        return {
            "options": options,
            "namespace": self.namespace,
            "extra_options": self.extra_options,
        }

    def _public_search_kwargs(self, options: SearchOptions) -> dict[str, Any]:
        ids = self._ids() or None  # None: every instance the endpoint allows
        return {"options": options, "instance_ids": ids, "extra_options": self.extra_options}

    def _fan_out_kwargs(self, options: SearchOptions, k: int) -> dict[str, Any]:
        return {
            "options": options,
            "merge": self.merge,
            "top_k": k,
            "max_concurrency": self.max_concurrency,
            "extra_options": self.extra_options,
        }

    async def _asearch(
        self, query: str, k: int, filters: Mapping[str, Any] | None
    ) -> SearchResult | FanOutResult:
        options = self._search_options(max_num_results=k, filters=filters)
        if self.uses_public_endpoint:
            public = self._get_async_public_client()
            return await public.search(query, **self._public_search_kwargs(options))
        client = self._get_async_client()
        if self.uses_namespace_endpoint:
            return await client.namespace_search(
                self._ids(), query, **self._namespace_kwargs(options)
            )
        return await client.fan_out_search(
            self.instance_ids or [], query, **self._fan_out_kwargs(options, k)
        )

    def search_with_errors(
        self, query: str, *, k: int | None = None, filters: Mapping[str, Any] | None = None
    ) -> tuple[list[Document], list[InstanceError]]:
        """Search and return the documents and the per-instance errors together.

        Never raises for failed instances (not even when all fail); transport and
        validation errors still raise.

        Args:
            query: The search query.
            k: Number of documents (1..50); defaults to `self.k`.
            filters: Metadata filter replacing `self.filters` for this call.

        Returns:
            `(documents, errors)`; `errors` holds one `InstanceError` per failed instance.
        """
        k_, filters_ = _call_options(self.k, {"k": k, "filters": filters})
        return self._to_result(self._search(query, k_, filters_), query, k_)

    async def asearch_with_errors(
        self, query: str, *, k: int | None = None, filters: Mapping[str, Any] | None = None
    ) -> tuple[list[Document], list[InstanceError]]:
        """Async `search_with_errors`."""
        k_, filters_ = _call_options(self.k, {"k": k, "filters": filters})
        return self._to_result(await self._asearch(query, k_, filters_), query, k_)

    def _all_failed(self, docs: list[Document], errors: list[InstanceError]) -> bool:
        failed = {e.instance_id for e in errors}
        return not docs and bool(errors) and failed >= set(self._ids())

    def _check_errors(self, docs: list[Document], errors: list[InstanceError]) -> None:
        if not errors:
            return
        if self._all_failed(docs, errors):
            raise AllInstancesFailedError(errors)
        if self.on_instance_error == "raise":
            raise InstanceSearchError(errors)

    def _warn(self, errors: list[InstanceError]) -> None:
        warnings.warn(
            f"AI Search: {len(errors)} instance(s) failed, results are partial: "
            f"{error_summary(errors)}",
            AISearchInstanceWarning,
            stacklevel=_caller_stacklevel(),
        )

    @staticmethod
    def _event(error: InstanceError) -> dict[str, Any]:
        return {
            "instance_id": error.instance_id,
            "message": error.message,
            "error_type": type(error.error).__name__ if error.error is not None else None,
            "status_code": getattr(error.error, "status_code", None),
        }

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        k, filters = _call_options(self.k, kwargs)
        docs, errors = self._to_result(self._search(query, k, filters), query, k)
        self._check_errors(docs, errors)
        if errors and self.on_instance_error == "warn":
            self._warn(errors)
            child = run_manager.get_child()
            for error in errors:
                dispatch_custom_event(
                    INSTANCE_ERROR_EVENT, self._event(error), config={"callbacks": child}
                )
        return docs

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        k, filters = _call_options(self.k, kwargs)
        docs, errors = self._to_result(await self._asearch(query, k, filters), query, k)
        self._check_errors(docs, errors)
        if errors and self.on_instance_error == "warn":
            self._warn(errors)
            child = run_manager.get_child()
            for error in errors:
                await adispatch_custom_event(
                    INSTANCE_ERROR_EVENT, self._event(error), config={"callbacks": child}
                )
        return docs
