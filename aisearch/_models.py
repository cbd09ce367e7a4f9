"""Request options and response models.

Request models forbid unknown fields and check every documented bound on construction
(``InvalidRequestError`` names the field path and the allowed range). Response models
allow extra fields, because the API grows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from aisearch._exceptions import AISearchError, InvalidRequestError
from aisearch._filters import validate_filters

__all__ = [
    "CHUNK_METADATA_KEYS",
    "BoostBy",
    "CacheOptions",
    "ChatCompletion",
    "ChatMessage",
    "Choice",
    "Chunk",
    "ChunkItem",
    "EngineStats",
    "FanOutResult",
    "Instance",
    "InstanceError",
    "InstanceStats",
    "Item",
    "ItemChunk",
    "Job",
    "JobLog",
    "Namespace",
    "QueryRewriteOptions",
    "R2Stats",
    "RerankingOptions",
    "RetrievalOptions",
    "ScoringDetails",
    "SearchOptions",
    "SearchResult",
    "SourcesEvent",
    "StreamEndEvent",
    "StreamEvent",
    "TextDeltaEvent",
    "Usage",
    "VectorizeStats",
    "chunk_metadata",
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
                path = f"{path}.{loc}" if path else str(loc)
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

    Args:
        cls: The request model.
        value: A model instance or a mapping of its fields.
        prefix: The field path used in messages.

    Returns:
        The model instance.

    Raises:
        InvalidRequestError: If the value does not validate.
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


# --------------------------------------------------------------------------- request options


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
    match_threshold: Annotated[float, _number_between(0.0, 1.0)] | None = None
    """Minimum vector similarity, 0 to 1 (service default 0.4)."""
    max_num_results: Annotated[int, _int_between(1, 50)] | None = None
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
    match_threshold: Annotated[float, _number_between(0.0, 1.0)] | None = None
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
                raise ValueError(f"{key}: must be a finite number (got {item!r})")
            if not isinstance(item, (str, int, float, bool)):
                raise ValueError(f"{key}: must be a string, number or boolean (got {_short(item)})")
        return dict(value)


def coerce_options(options: SearchOptions | Mapping[str, Any] | None) -> SearchOptions | None:
    """Accept ``SearchOptions``, a mapping of the same shape, or ``None``.

    Args:
        options: The caller's options.

    Returns:
        A validated ``SearchOptions`` or ``None``.

    Raises:
        InvalidRequestError: Naming the field path (``ai_search_options....``) and range.
    """
    if options is None:
        return None
    return build_model(SearchOptions, options, "ai_search_options")


# --------------------------------------------------------------------------- responses


class _ResponseModel(BaseModel):
    """Base of response models: extra fields are kept."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class ChatMessage(_ResponseModel):
    """One OpenAI-style chat message (sent in requests, received in completions).

    Example:
        >>> ChatMessage(role="user", content="How do I get started?")
        ChatMessage(role='user', content='How do I get started?')
    """

    role: Literal["system", "developer", "user", "assistant", "tool"]
    """Who wrote the message."""
    content: str | list[Any] | None = None
    """Text, multimodal parts (``text``/``image_url``/``file``), or null."""


def _none_to_empty_dict(value: object) -> object:
    return {} if value is None else value


class ChunkItem(_ResponseModel):
    """The item (file, page) a chunk comes from."""

    key: str = ""
    """File path or URL of the item."""
    timestamp: float | None = None
    """Last modification time as sent by the service (seconds or milliseconds)."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Custom metadata of the item (``{}`` when absent or null)."""


class ScoringDetails(_ResponseModel):
    """Per-stage scores of a chunk (all optional)."""

    vector_score: float | None = None
    """Vector similarity, 0 to 1."""
    keyword_score: float | None = None
    """BM25 keyword score."""
    vector_rank: int | None = None
    """Rank in the vector result list."""
    keyword_rank: int | None = None
    """Rank in the keyword result list."""
    fusion_method: str | None = None
    """``rrf`` or ``max`` for hybrid retrieval."""
    reranking_score: float | None = None
    """Reranker score, 0 to 1."""


class Chunk(_ResponseModel):
    """One retrieved chunk.

    On the legacy routes ``filename``, ``attributes`` and ``file_id`` are kept as extra fields
    and ``item.key`` is the filename.
    """

    id: str
    """Chunk id."""
    type: str = "text"
    """Chunk type, typically ``text``."""
    score: float
    """Overall match score, 0 to 1."""
    text: str = ""
    """Chunk text (empty with ``metadata_only``)."""
    item: ChunkItem = Field(default_factory=ChunkItem)
    """The source item."""
    scoring_details: ScoringDetails | None = None
    """Per-stage scores, when sent."""
    instance_id: str | None = None
    """The instance the chunk comes from (namespace search and fan-out)."""


CHUNK_METADATA_KEYS: tuple[str, ...] = (
    "id",
    "score",
    "type",
    "filename",
    "source",
    "timestamp",
    "scoring_details",
    "instance_id",
    "search_query",
)
"""The canonical metadata keys of a chunk mapped into a framework (see ``chunk_metadata``)."""


def chunk_metadata(
    chunk: Chunk | Mapping[str, Any],
    *,
    search_query: str | None = None,
    instance_id: str | None = None,
) -> dict[str, Any]:
    """The metadata a framework document or node carries for one chunk.

    The item's custom metadata first, then the canonical keys (``CHUNK_METADATA_KEYS``),
    which win over custom keys of the same name. ``filename`` and ``source`` are the item
    key; ``scoring_details`` is a JSON-ready dict of the scores that are set.

    Args:
        chunk: A ``Chunk``, or its JSON form (what the API sends, ``chunk.model_dump(
            mode="json")``), which is read as it is, without validating it again.
        search_query: The query the service actually ran (rewritten when rewriting is on).
        instance_id: Fallback instance id when the chunk carries none (single-instance
            routes); the chunk's own ``instance_id`` always wins.

    Returns:
        A new dict; the chunk is not modified.
    """
    if isinstance(chunk, Mapping):
        item: Mapping[str, Any] = chunk.get("item") or {}
        metadata = dict(item.get("metadata") or {})
        key, timestamp = item.get("key", ""), item.get("timestamp")
        chunk_id, score, kind = chunk.get("id"), chunk.get("score"), chunk.get("type", "text")
        scoring = chunk.get("scoring_details")
        own_instance = chunk.get("instance_id")
    else:
        metadata = dict(chunk.item.metadata)
        key, timestamp = chunk.item.key, chunk.item.timestamp
        chunk_id, score, kind = chunk.id, chunk.score, chunk.type
        details = chunk.scoring_details
        if details is None:
            scoring = None
        elif details.__pydantic_extra__:
            scoring = details.model_dump(mode="json", exclude_none=True)
        else:  # the declared fields are all JSON scalars: skip the serializer
            scoring = {name: value for name, value in details.__dict__.items() if value is not None}
        own_instance = chunk.instance_id
    metadata["id"] = chunk_id
    metadata["score"] = score
    metadata["type"] = kind
    metadata["filename"] = key
    metadata["source"] = key
    metadata["timestamp"] = timestamp
    metadata["scoring_details"] = scoring
    metadata["instance_id"] = own_instance or instance_id
    metadata["search_query"] = search_query
    return metadata


class InstanceError(_ResponseModel):
    """The failure of one instance in a multi-instance call.

    Attributes:
        error: The exception, when the failure happened on the client side (fan-out).
    """

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)

    instance_id: str
    """The instance that failed."""
    message: str = ""
    """What went wrong."""
    error: AISearchError | None = Field(default=None, exclude=True)
    """The exception raised for this instance (client-side fan-out only)."""


class SearchResult(_ResponseModel):
    """The result of a search (instance, namespace or legacy)."""

    search_query: str | None = None
    """The query actually used (rewritten when rewriting is on)."""
    query_kind: str | None = None
    """``text``, ``image`` or ``multimodal``."""
    chunks: list[Chunk] = Field(default_factory=list)
    """Retrieved chunks, best first."""
    errors: list[InstanceError] = Field(default_factory=list)
    """Per-instance failures of a namespace search (never dropped)."""
    response: str | None = None
    """The generated answer (legacy ``/ai-search`` only)."""


class Usage(_ResponseModel):
    """Token usage of a generation."""

    prompt_tokens: int = 0
    """Prompt tokens."""
    completion_tokens: int = 0
    """Generated tokens."""
    total_tokens: int = 0
    """Sum of both."""


class Choice(_ResponseModel):
    """One completion choice."""

    index: int = 0
    """Choice index."""
    message: ChatMessage
    """The assistant message."""
    finish_reason: str | None = None
    """Why generation stopped."""


class ChatCompletion(_ResponseModel):
    """A (non-streamed) RAG chat completion."""

    id: str | None = None
    """Completion id."""
    object: str | None = None
    """``chat.completion``."""
    created: int | None = None
    """Unix time of creation."""
    model: str | None = None
    """Generation model."""
    choices: list[Choice]
    """Completion choices."""
    usage: Usage | None = None
    """Token usage, when sent."""
    chunks: list[Chunk] = Field(default_factory=list)
    """The chunks the answer is grounded on."""
    errors: list[InstanceError] = Field(default_factory=list)
    """Per-instance failures of a namespace chat."""

    @property
    def content(self) -> str:
        """The first choice's text (``""`` when there is none)."""
        if not self.choices:
            return ""
        content = self.choices[0].message.content
        if content is None:
            return ""
        if isinstance(content, str):
            return content
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, Mapping))


class SourcesEvent(_ResponseModel):
    """First stream event: the retrieved chunks (and per-instance errors)."""

    type: Literal["sources"] = "sources"
    """Event discriminator."""
    chunks: list[Chunk] = Field(default_factory=list)
    """Retrieved chunks."""
    errors: list[InstanceError] = Field(default_factory=list)
    """Per-instance failures (namespace streams)."""


class TextDeltaEvent(_ResponseModel):
    """A piece of generated text."""

    type: Literal["text"] = "text"
    """Event discriminator."""
    text: str
    """The text piece."""
    id: str | None = None
    """Completion id, when sent."""
    model: str | None = None
    """Generation model, when sent."""


class StreamEndEvent(_ResponseModel):
    """Last stream event, sent once ``data: [DONE]`` arrived."""

    type: Literal["end"] = "end"
    """Event discriminator."""
    finish_reason: str | None = None
    """Why generation stopped, when the server said."""
    usage: Usage | None = None
    """Token usage, when the server sent it."""
    model: str | None = None
    """Generation model, when sent."""
    id: str | None = None
    """Completion id, when sent."""


StreamEvent = Annotated[SourcesEvent | TextDeltaEvent | StreamEndEvent, Field(discriminator="type")]
"""A streaming event; dispatch with ``isinstance`` or ``.type``."""


class FanOutResult(_ResponseModel):
    """Merged result of a client-side fan-out search."""

    chunks: list[Chunk] = Field(default_factory=list)
    """Merged chunks (each with ``instance_id``)."""
    errors: list[InstanceError] = Field(default_factory=list)
    """One entry per failed target."""


# --------------------------------------------------------------------------- management


class Namespace(_ResponseModel):
    """An AI Search namespace."""

    name: str
    """Namespace name."""
    description: str | None = None
    """Free-text description."""


class Instance(_ResponseModel):
    """An AI Search instance (configuration fields are kept as extra fields)."""

    id: str
    """Instance id."""
    namespace: str | None = None
    """Namespace it belongs to."""
    status: str | None = None
    """Service status, when sent."""


class Item(_ResponseModel):
    """An item (document) of a built-in-storage instance."""

    id: str
    """Item id."""
    key: str = ""
    """File name / key."""
    status: str | None = None
    """``queued``, ``running``, ``completed``, ``error``, ``skipped`` or ``outdated``."""
    metadata: Annotated[dict[str, Any], BeforeValidator(_none_to_empty_dict)] = Field(
        default_factory=dict
    )
    """Custom metadata."""
    error: str | None = None
    """Error message when the status is ``error``."""

    @field_validator("error", mode="before")
    @classmethod
    def _error_to_text(cls, value: object) -> object:
        if value is None or isinstance(value, str):
            return value
        return str(value)


class VectorizeStats(_ResponseModel):
    """Vectorize index figures of an instance (``engine.vectorize``)."""

    dimensions: int | None = None
    """Embedding dimensions."""
    vectors_count: int | None = Field(default=None, alias="vectorsCount")
    """Vectors stored (sent as ``vectorsCount``)."""


class R2Stats(_ResponseModel):
    """Storage figures of an instance's bucket (``engine.r2``), in bytes and objects."""

    metadata_size_bytes: int | None = Field(default=None, alias="metadataSizeBytes")
    """Metadata size (sent as ``metadataSizeBytes``)."""
    object_count: int | None = Field(default=None, alias="objectCount")
    """Objects stored (sent as ``objectCount``)."""
    payload_size_bytes: int | None = Field(default=None, alias="payloadSizeBytes")
    """Payload size (sent as ``payloadSizeBytes``)."""


class EngineStats(_ResponseModel):
    """Engine figures (sent only for managed instances)."""

    vectorize: VectorizeStats | None = None
    """Vectorize index figures."""
    r2: R2Stats | None = None
    """Bucket storage figures."""


class InstanceStats(_ResponseModel):
    """Indexing statistics of an instance (``GET .../instances/{id}/stats``).

    The per-status counts are ``None`` when the service omits them (``degraded`` is then
    true), not zero.
    """

    queued: int | None = None
    """Items waiting to be indexed."""
    running: int | None = None
    """Items being indexed."""
    completed: int | None = None
    """Items indexed."""
    error: int | None = None
    """Items that failed."""
    skipped: int | None = None
    """Items skipped (unsupported or unchanged)."""
    outdated: int | None = None
    """Items whose index is out of date."""
    last_activity: str | None = None
    """Time of the last indexing activity (ISO-8601, as sent)."""
    degraded: bool | None = None
    """True when the service could not compute the counts."""
    file_embed_errors: dict[str, Any] | None = None
    """Embedding errors by file, as sent."""
    index_source_errors: dict[str, Any] | None = None
    """Source errors, as sent."""
    engine: EngineStats | None = None
    """Engine figures (managed instances only)."""

    @property
    def total(self) -> int:
        """The sum of the per-status counts that were sent."""
        counts = (
            self.queued,
            self.running,
            self.completed,
            self.error,
            self.skipped,
            self.outdated,
        )
        return sum(c for c in counts if c is not None)


class ItemChunk(_ResponseModel):
    """One stored chunk of an item (``GET .../items/{item_id}/chunks``)."""

    id: str
    """Chunk id."""
    text: str = ""
    """Chunk text."""
    item: ChunkItem = Field(default_factory=ChunkItem)
    """The item the chunk belongs to (``key``, ``metadata``, ``timestamp``)."""
    start_byte: int | None = None
    """Start offset of the chunk in the item's text, when sent."""
    end_byte: int | None = None
    """End offset of the chunk in the item's text, when sent."""


class Job(_ResponseModel):
    """A sync job of an instance (re-reads the instance's source)."""

    id: str
    """Job id."""
    source: str | None = None
    """``user`` (created through the API) or ``schedule``."""
    description: str | None = None
    """Free-text description given at creation."""
    started_at: str | None = None
    """Start time (ISO-8601, as sent)."""
    ended_at: str | None = None
    """End time, ``None`` while the job runs."""
    last_seen_at: str | None = None
    """Last heartbeat time."""
    end_reason: str | None = None
    """Why the job ended, when it has."""


class JobLog(_ResponseModel):
    """One log line of a sync job."""

    id: int
    """Line id."""
    message: str = ""
    """Log message."""
    message_type: int | None = None
    """Message kind, a number (its meanings are not documented)."""
    created_at: float | None = None
    """Unix time in seconds."""


# --------------------------------------------------------------------------- tolerant parsing


_NULL_MEANS_ABSENT = frozenset(
    {"metadata", "text", "item", "key", "type", "chunks", "errors", "messages"}
)
"""Members whose ``null`` is read as absent (their default applies: ``{}``, ``""``, ``[]``)."""


def drop_absent_nulls(value: Any) -> Any:
    """Drop ``null`` members that mean "absent" anywhere in a decoded JSON value.

    ``"metadata": null``, ``"text": null``, ``"item": null``, ``"chunks": null`` and the like
    then take their defaults. Required members (``id``, ``score`` ...) are left alone, so a
    null there still fails validation. Kept out of the models (a Python validator per chunk
    costs more than the rest of the parse), and applied only when the fast path failed.

    Args:
        value: A decoded JSON value.

    Returns:
        The value without those null members.
    """
    if isinstance(value, dict):
        return {
            k: drop_absent_nulls(v)
            for k, v in value.items()
            if not (v is None and k in _NULL_MEANS_ABSENT)
        }
    if isinstance(value, list):
        return [drop_absent_nulls(v) for v in value]
    return value


def validate_json_tolerant(model: type[_M], content: bytes) -> _M:
    """Validate a JSON body, retrying once without the nulls that mean absent.

    Args:
        model: The response model.
        content: The raw body.

    Returns:
        The validated model.

    Raises:
        ValidationError: The error of the first attempt, when the body does not fit.
    """
    try:
        return model.model_validate_json(content)
    except ValidationError as exc:
        if b"null" not in content:
            raise
        try:
            return model.model_validate(drop_absent_nulls(json.loads(content)))
        except (ValueError, ValidationError):
            raise exc from None


# --------------------------------------------------------------------------- messages


def coerce_messages(
    messages: Sequence[ChatMessage | Mapping[str, Any]] | None, field: str = "messages"
) -> list[dict[str, Any]]:
    """Validate messages (``ChatMessage`` or dicts) and serialise them for the wire.

    Args:
        messages: A non-empty sequence of messages.
        field: The parameter name used in messages.

    Returns:
        JSON-ready message dicts.

    Raises:
        InvalidRequestError: If the sequence is empty or a message is malformed.
    """
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise InvalidRequestError(
            f"{field}: must be a non-empty list of messages (got {type(messages).__name__})"
        )
    if not messages:
        raise InvalidRequestError(f"{field}: must contain at least one message")
    out: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        model = build_model(ChatMessage, message, f"{field}[{i}]")
        out.append(model.model_dump(mode="json", exclude_unset=True))
    return out


def _check_query(query: object) -> str:
    if not isinstance(query, str) or not query.strip():
        raise InvalidRequestError(f"query: must be a non-empty string (got {_short(query)})")
    return query


def query_or_messages(
    query: str | None, messages: Sequence[ChatMessage | Mapping[str, Any]] | None
) -> dict[str, Any]:
    """Build the ``query`` xor ``messages`` part of a search body.

    Args:
        query: The query text.
        messages: Or the conversation.

    Returns:
        ``{"query": ...}`` or ``{"messages": [...]}``.

    Raises:
        InvalidRequestError: Unless exactly one is given and it is valid.
    """
    if query is not None and messages is not None:
        raise InvalidRequestError("query, messages: pass either query or messages, not both")
    if query is None and messages is None:
        raise InvalidRequestError("query, messages: one of them is required")
    if query is not None:
        return {"query": _check_query(query)}
    return {"messages": coerce_messages(messages)}


def deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``extra`` into ``base`` recursively (extra wins); returns ``base``.

    Args:
        base: The dict to update in place.
        extra: The values to merge in.

    Returns:
        ``base``.
    """
    for key, value in extra.items():
        current = base.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            deep_merge(current, value)
        elif isinstance(value, Mapping):
            base[key] = deep_merge({}, value)
        else:
            base[key] = value
    return base


def check_mapping(value: object, field: str) -> Mapping[str, Any] | None:
    """Check that an escape-hatch argument is a mapping (or ``None``).

    Args:
        value: The argument.
        field: Its name.

    Returns:
        The mapping or ``None``.

    Raises:
        InvalidRequestError: If it is neither.
    """
    if value is None or isinstance(value, Mapping):
        return value
    raise InvalidRequestError(f"{field}: must be a mapping (got {type(value).__name__})")
