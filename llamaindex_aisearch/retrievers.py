"""LlamaIndex retrievers over AI Search: one instance, or several at once."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import llama_index.core.instrumentation as instrument
from llama_index.core.callbacks import CallbackManager
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle
from typing_extensions import Unpack

from aisearch import (
    AllInstancesFailedError,
    APIStatusError,
    Chunk,
    InstanceError,
    InvalidRequestError,
    PartialFailureError,
    SearchOptions,
    SearchTarget,
)
from aisearch._exceptions import error_summary

from ._common import (
    AISearchConnection,
    check_mapping,
    presigned,
    resolve_connection,
)
from ._mapping import chunks_to_nodes
from ._options import (
    PLACE_KEYS,
    RETRIEVER_SEARCH_KEYS,
    RetrieverKwargs,
    RetrieverOptionAttributes,
    SearchConfig,
    check_option_keywords,
    check_top_k,
    split_kwargs,
)
from .events import AISearchInstanceErrorEvent, AISearchInstanceWarning

__all__ = [
    "AISearchMultiRetriever",
    "AISearchRetriever",
    "InstanceFailureError",
    "MultiRetrievalResult",
]

dispatcher = instrument.get_dispatcher(__name__)  # type: ignore[attr-defined]

OnInstanceError = Literal["raise", "warn", "ignore"]
MultiMode = Literal["auto", "namespace", "fan_out"]
_MAX_NAMESPACE_INSTANCES = 10


class _RetrieverBase(RetrieverOptionAttributes, BaseRetriever):
    """Connection, search options and per-instance settings shared by both retrievers.

    Every search option is an attribute: assigning one (``retriever.match_threshold =
    0.4``) validates it at once (``aisearch.InvalidRequestError`` naming the field, and the
    retriever keeps its old value) and the next search sends it.
    """

    def __init__(
        self, kwargs: Mapping[str, Any], callback_manager: CallbackManager | None, verbose: bool
    ) -> None:
        check_option_keywords(type(self), kwargs, RETRIEVER_SEARCH_KEYS)
        search, rest = split_kwargs(kwargs, RETRIEVER_SEARCH_KEYS)
        place, connection_kwargs = split_kwargs(rest, PLACE_KEYS)
        extra_options = search.pop("extra_options", None)
        self._config = SearchConfig(search)
        self.extra_options = extra_options
        self.namespace = place.get("namespace")
        self._connection = resolve_connection(place.get("connection"), connection_kwargs)
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    @property
    def connection(self) -> AISearchConnection:
        """The connection (shared pooled clients) this retriever uses."""
        return self._connection

    @property
    def _search_config(self) -> SearchConfig:
        return self._config

    @property
    def extra_options(self) -> dict[str, Any] | None:
        """Raw ``ai_search_options`` deep-merged last (for fields the service adds later)."""
        return self._extra_options

    @extra_options.setter
    def extra_options(self, value: Mapping[str, Any] | None) -> None:
        self._extra_options = check_mapping(value, "extra_options")

    @property
    def namespace(self) -> str | None:
        """Namespace of the instances; ``None`` uses the connection's (``default``)."""
        return self._namespace

    @namespace.setter
    def namespace(self, value: str | None) -> None:
        if value is not None and (not isinstance(value, str) or not value):
            raise InvalidRequestError(
                f"namespace: must be a non-empty string or None (got {type(value).__name__})"
            )
        self._namespace = value

    @property
    def options(self) -> SearchOptions | None:
        """The validated ``ai_search_options`` sent with every search."""
        return self._config.options

    def _search_kwargs(self) -> dict[str, Any]:
        return {
            "options": self._config.options,
            "namespace": self.namespace,
            "extra_options": self.extra_options,
        }

    def _public_kwargs(self, instance_ids: list[str] | None = None) -> dict[str, Any]:
        """A public endpoint's search keywords (it has no namespace to choose)."""
        return {
            "options": self._config.options,
            "instance_ids": instance_ids,
            "extra_options": self.extra_options,
        }

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self._describe_target()}, "
            f"similarity_top_k={self.similarity_top_k!r}, namespace={self.namespace!r})"
        )

    def _describe_target(self) -> str:
        raise NotImplementedError


class AISearchRetriever(_RetrieverBase):
    """Retrieve chunks from one AI Search instance as LlamaIndex nodes.

    Each chunk becomes ``NodeWithScore(TextNode(id_=chunk id, text=chunk text,
    metadata=...), score=chunk score)``. The metadata is the item's custom metadata, then
    the canonical keys ``id, score, type, filename, source, timestamp, scoring_details,
    instance_id, search_query`` (canonical keys win). Every option left ``None`` is not
    sent, so the instance's own configuration applies. Errors propagate as the core's
    typed exceptions (``aisearch.NotFoundError``, ``aisearch.AuthenticationError`` ...).

    With ``public_endpoint=...`` (or ``AISEARCH_PUBLIC_ENDPOINT``) it searches a public
    endpoint with no account or token: ``instance_id`` may then be left out (it only labels
    the nodes' ``instance_id``).

    Args:
        instance_id: The AI Search instance to search (optional with a public endpoint).
        namespace: The instance's namespace (default: the connection's, ``"default"``).
        connection: A shared :class:`AISearchConnection`; otherwise pass its settings
            (``account_id``, ``api_token``, ``base_url``, ``client`` ...) as keywords.
        callback_manager: LlamaIndex (legacy) callback manager.
        verbose: LlamaIndex verbosity flag.
        **kwargs: The search options below (:class:`RetrieverSearchKwargs`), then
            connection settings (see :class:`AISearchConnection`).

    Search options (keywords; each is also an attribute that re-validates on assignment):
        similarity_top_k: Number of chunks to return, 1..50 (``max_num_results``).
        retrieval_type: ``"vector"``, ``"keyword"`` or ``"hybrid"``.
        match_threshold: Minimum score, 0..1.
        filters: LlamaIndex ``MetadataFilters`` (translated, see ``filters.py``) or a raw
            AI Search (Vectorize-style) filter dict.
        context_expansion: Neighbouring chunks to merge in, 0..3.
        fusion_method: Hybrid fusion, ``"rrf"`` or ``"max"``.
        keyword_match_mode: ``"and"`` or ``"or"`` (``"exact_match"``/``"fuzzy_match"``
            accepted as aliases).
        boost_by: Up to 3 ``BoostBy(field, direction)`` (or dicts).
        metadata_only: Return chunks without text.
        return_on_failure: Return empty results instead of an error when retrieval fails.
        query_rewrite: ``True``/``False`` or ``QueryRewriteOptions`` (or a dict).
        reranking: ``True``/``False`` or ``RerankingOptions`` (or a dict).
        cache: ``True``/``False`` or ``CacheOptions`` (or a dict).
        extra_options: Raw ``ai_search_options`` deep-merged last.

    Example:
        .. code-block:: python

            retriever = AISearchRetriever("docs", similarity_top_k=5)
            nodes = retriever.retrieve("How long should espresso extract?")
    """

    def __init__(
        self,
        instance_id: str | None = None,
        *,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
        **kwargs: Unpack[RetrieverKwargs],
    ) -> None:
        if instance_id is not None and (not isinstance(instance_id, str) or not instance_id):
            raise InvalidRequestError(
                f"instance_id: must be a non-empty string (got {instance_id!r})"
            )
        self.instance_id = instance_id
        """The AI Search instance searched (``None``: the public endpoint's)."""
        super().__init__(kwargs, callback_manager, verbose)
        if instance_id is None and not self._connection.uses_public_endpoint:
            raise InvalidRequestError(
                "instance_id: must be a non-empty string (it may be left out only with "
                "public_endpoint=... or AISEARCH_PUBLIC_ENDPOINT)"
            )

    def _describe_target(self) -> str:
        if self.instance_id is None:
            return f"public_endpoint={self._connection.public_endpoint!r}"
        return repr(self.instance_id)

    @presigned
    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        query = query_bundle.query_str
        if self.instance_id is None or self._connection.uses_public_endpoint:
            result = self._connection.public_client.search(query, **self._public_kwargs())
        else:
            result = self._connection.client.search(
                self.instance_id, query, **self._search_kwargs()
            )
        return chunks_to_nodes(
            result.chunks, search_query=result.search_query, instance_id=self.instance_id
        )

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        query = query_bundle.query_str
        if self.instance_id is None or self._connection.uses_public_endpoint:
            public = self._connection.async_public_client
            result = await public.search(query, **self._public_kwargs())
        else:
            result = await self._connection.async_client.search(
                self.instance_id, query, **self._search_kwargs()
            )
        return chunks_to_nodes(
            result.chunks, search_query=result.search_query, instance_id=self.instance_id
        )


@dataclass
class MultiRetrievalResult:
    """Nodes from the instances that answered, and one error per instance that failed."""

    nodes: list[NodeWithScore] = field(default_factory=list)
    """Merged nodes; each carries ``metadata["instance_id"]``."""
    errors: list[InstanceError] = field(default_factory=list)
    """Per-instance failures (``instance_id``, ``message``, ``error``)."""
    search_query: str | None = None
    """The query the service searched with, when it reported one."""


InstanceFailureError = PartialFailureError
"""Some instances failed and ``on_instance_error="raise"`` was set.

The core's ``aisearch.PartialFailureError`` under this package's name: ``errors`` holds one
entry per failed instance, ``nodes`` the nodes the other instances returned."""


class AISearchMultiRetriever(_RetrieverBase):
    """Retrieve from several AI Search instances at once, reporting each instance's failure.

    Up to 10 plain instance ids in one namespace use the namespace search endpoint (one
    request; the service merges). More instances, ``SearchTarget`` objects with their own
    namespace or client, or ``mode="fan_out"`` use client-side fan-out: one concurrent
    search per instance, merged by score (or RRF). Every node carries
    ``metadata["instance_id"]``.

    When some instances fail, ``on_instance_error`` decides: ``"warn"`` (default) issues an
    :class:`AISearchInstanceWarning`, ``"ignore"`` stays silent, ``"raise"`` raises
    :class:`InstanceFailureError`. Whatever the policy, each failure is dispatched as an
    :class:`AISearchInstanceErrorEvent` through LlamaIndex instrumentation, and
    :meth:`retrieve_with_errors` returns the nodes and the errors together. When every
    instance fails, ``aisearch.AllInstancesFailedError`` is raised.

    With ``public_endpoint=...`` (a namespace's public endpoint) it searches through that
    endpoint in one request with no account or token: ``instance_ids`` is then optional
    (``None``: every instance the endpoint allows) and holds at most 10 plain ids.

    Args:
        instance_ids: Instance ids, or ``aisearch.SearchTarget`` objects.
        similarity_top_k: Number of merged chunks to return, 1..50.
        on_instance_error: ``"warn"``, ``"ignore"`` or ``"raise"``.
        mode: ``"auto"``, ``"namespace"`` (one namespace request, at most 10 ids) or
            ``"fan_out"`` (one request per instance, concurrently).
        merge: Fan-out merge: ``"score"`` or ``"rrf"``.
        max_concurrency: Fan-out concurrency limit.
        **kwargs: Every other argument as for :class:`AISearchRetriever`.

    Example:
        .. code-block:: python

            retriever = AISearchMultiRetriever(["docs", "blog"], similarity_top_k=8)
            result = retriever.retrieve_with_errors("espresso ratio")
    """

    def __init__(
        self,
        instance_ids: Sequence[str | SearchTarget] | None = None,
        *,
        on_instance_error: OnInstanceError = "warn",
        mode: MultiMode = "auto",
        merge: Literal["score", "rrf"] = "score",
        max_concurrency: int = 8,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
        **kwargs: Unpack[RetrieverKwargs],
    ) -> None:
        targets: list[str | SearchTarget] = (
            [instance_ids] if isinstance(instance_ids, str) else list(instance_ids or [])
        )
        if not targets and instance_ids is not None:
            raise InvalidRequestError("instance_ids: must name at least one instance")
        for i, target in enumerate(targets):
            if not (isinstance(target, SearchTarget) or (isinstance(target, str) and target)):
                raise InvalidRequestError(
                    f"instance_ids[{i}]: must be a non-empty instance id or a SearchTarget "
                    f"(got {target!r})"
                )
        if mode not in ("auto", "namespace", "fan_out"):
            raise InvalidRequestError(
                f"mode: must be one of 'auto', 'namespace', 'fan_out' (got {mode!r})"
            )
        plain = all(isinstance(t, str) for t in targets)
        if mode == "namespace" and (not plain or len(targets) > _MAX_NAMESPACE_INSTANCES):
            raise InvalidRequestError(
                "mode='namespace' needs 1 to 10 plain instance ids in one namespace "
                f"(got {len(targets)} target(s)); use mode='fan_out' or 'auto'"
            )
        check_top_k(kwargs.get("similarity_top_k"))
        self.use_namespace_endpoint = mode == "namespace" or (
            mode == "auto" and plain and len(targets) <= _MAX_NAMESPACE_INSTANCES
        )
        """``True``: one namespace search request; ``False``: client-side fan-out."""
        self.targets = targets
        """The instances searched."""
        self.on_instance_error = on_instance_error
        self.merge = merge
        self.max_concurrency = max_concurrency
        super().__init__(kwargs, callback_manager, verbose)
        if self._connection.uses_public_endpoint:
            if mode == "fan_out" or not plain or len(targets) > _MAX_NAMESPACE_INSTANCES:
                raise InvalidRequestError(
                    "public_endpoint: a public endpoint searches the instances it allows in "
                    f"one request: instance_ids must be None or 1 to {_MAX_NAMESPACE_INSTANCES} "
                    "plain ids (no SearchTarget), and mode not 'fan_out'"
                )
            self.use_namespace_endpoint = True
        elif not targets:
            raise InvalidRequestError(
                "instance_ids: must name at least one instance (it may be left out only with "
                "public_endpoint=... or AISEARCH_PUBLIC_ENDPOINT)"
            )

    @property
    def on_instance_error(self) -> OnInstanceError:
        """Policy when some (not all) instances fail: ``"raise"``, ``"warn"``, ``"ignore"``."""
        return self._on_instance_error

    @on_instance_error.setter
    def on_instance_error(self, value: OnInstanceError) -> None:
        if not isinstance(value, str) or value not in ("raise", "warn", "ignore"):
            raise InvalidRequestError(
                f"on_instance_error: must be one of 'raise', 'warn', 'ignore' (got {value!r})"
            )
        self._on_instance_error = value

    @property
    def merge(self) -> Literal["score", "rrf"]:
        """How fan-out results are merged: ``"score"`` or ``"rrf"``."""
        return self._merge

    @merge.setter
    def merge(self, value: Literal["score", "rrf"]) -> None:
        if not isinstance(value, str) or value not in ("score", "rrf"):
            raise InvalidRequestError(f"merge: must be 'score' or 'rrf' (got {value!r})")
        self._merge = value

    @property
    def max_concurrency(self) -> int:
        """Fan-out concurrency limit (a positive integer)."""
        return self._max_concurrency

    @max_concurrency.setter
    def max_concurrency(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidRequestError(
                f"max_concurrency: must be a positive integer (got {value!r})"
            )
        self._max_concurrency = value

    @property
    def instance_ids(self) -> list[str]:
        """The ids of the instances searched."""
        return [t if isinstance(t, str) else t.instance_id for t in self.targets]

    def _describe_target(self) -> str:
        return repr(self.instance_ids)

    def _fan_out_targets(self) -> list[str | SearchTarget]:
        if self.namespace is None:
            return list(self.targets)
        return [
            SearchTarget(t, namespace=self.namespace) if isinstance(t, str) else t
            for t in self.targets
        ]

    def _finish(
        self,
        query: str,
        chunks: list[Chunk],
        errors: list[InstanceError],
        search_query: str | None,
    ) -> MultiRetrievalResult:
        if self.use_namespace_endpoint and self.similarity_top_k is not None:
            chunks = sorted(chunks, key=lambda c: c.score, reverse=True)[: self.similarity_top_k]
        nodes = chunks_to_nodes(chunks, search_query=search_query or query)
        for error in errors:
            exc = error.error
            dispatcher.event(
                AISearchInstanceErrorEvent(
                    instance_id=error.instance_id,
                    message=error.message,
                    error_type=type(exc).__name__ if exc is not None else None,
                    status_code=exc.status_code if isinstance(exc, APIStatusError) else None,
                    code=(
                        exc.code
                        if isinstance(exc, APIStatusError) and isinstance(exc.code, int)
                        else None
                    ),
                    query=query,
                )
            )
        failed = {e.instance_id for e in errors}
        if errors and not chunks and failed >= set(self.instance_ids):
            raise AllInstancesFailedError(list(errors))
        return MultiRetrievalResult(nodes=nodes, errors=list(errors), search_query=search_query)

    def retrieve_with_errors(self, query: str | QueryBundle) -> MultiRetrievalResult:
        """Search every instance; return the nodes and the per-instance errors together.

        No warning is issued and nothing is raised for partial failures (the events are
        still dispatched).

        Raises:
            aisearch.AllInstancesFailedError: Every instance failed.
        """
        query_str = query.query_str if isinstance(query, QueryBundle) else query
        if self._connection.uses_public_endpoint:
            public = self._connection.public_client
            result = public.search(query_str, **self._public_kwargs(self.instance_ids or None))
            return self._finish(query_str, result.chunks, result.errors, result.search_query)
        client = self._connection.client
        if self.use_namespace_endpoint:
            result = client.namespace_search(self.instance_ids, query_str, **self._search_kwargs())
            return self._finish(query_str, result.chunks, result.errors, result.search_query)
        fan = client.fan_out_search(self._fan_out_targets(), query_str, **self._fan_out_kwargs())
        return self._finish(query_str, fan.chunks, fan.errors, None)

    async def aretrieve_with_errors(self, query: str | QueryBundle) -> MultiRetrievalResult:
        """Async form of :meth:`retrieve_with_errors`."""
        query_str = query.query_str if isinstance(query, QueryBundle) else query
        if self._connection.uses_public_endpoint:
            apublic = self._connection.async_public_client
            kwargs = self._public_kwargs(self.instance_ids or None)
            result = await apublic.search(query_str, **kwargs)
            return self._finish(query_str, result.chunks, result.errors, result.search_query)
        client = self._connection.async_client
        if self.use_namespace_endpoint:
            result = await client.namespace_search(
                self.instance_ids, query_str, **self._search_kwargs()
            )
            return self._finish(query_str, result.chunks, result.errors, result.search_query)
        fan = await client.fan_out_search(
            self._fan_out_targets(), query_str, **self._fan_out_kwargs()
        )
        return self._finish(query_str, fan.chunks, fan.errors, None)

    def _fan_out_kwargs(self) -> dict[str, Any]:
        return {
            "options": self._config.options,
            "merge": self.merge,
            "top_k": self.similarity_top_k,
            "max_concurrency": self.max_concurrency,
            "extra_options": self.extra_options,
        }

    def _apply_policy(self, result: MultiRetrievalResult) -> list[NodeWithScore]:
        if result.errors:
            if self.on_instance_error == "raise":
                raise InstanceFailureError(result.errors, result.nodes)
            if self.on_instance_error == "warn":
                warnings.warn(
                    f"AI Search: {len(result.errors)} of {len(self.targets) or 'the'} instance(s) "
                    f"failed: {error_summary(result.errors)}",
                    AISearchInstanceWarning,
                    stacklevel=4,
                )
        return result.nodes

    @presigned
    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return self._apply_policy(self.retrieve_with_errors(query_bundle))

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return self._apply_policy(await self.aretrieve_with_errors(query_bundle))
