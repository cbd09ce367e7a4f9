"""Response models: what the API answers, parsed leniently.

Response models allow extra fields, because the API grows. The request option models
(``SearchOptions`` ...) live in ``_options.py``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from aisearch._content import ContentPart, TextPart, content_error
from aisearch._exceptions import AISearchError, entry_error

__all__ = [
    "CHUNK_METADATA_KEYS",
    "ChatCompletion",
    "ChatMessage",
    "Choice",
    "Chunk",
    "ChunkItem",
    "EngineStats",
    "FanOutResult",
    "IndexingOptions",
    "Instance",
    "InstanceError",
    "InstanceStats",
    "Item",
    "ItemChunk",
    "Job",
    "JobLog",
    "Namespace",
    "R2Stats",
    "ScoringDetails",
    "SearchResult",
    "SourcesEvent",
    "StreamEndEvent",
    "StreamEvent",
    "TextDeltaEvent",
    "UploadWarning",
    "Usage",
    "VectorizeStats",
    "chunk_metadata",
]

_M = TypeVar("_M", bound=BaseModel)


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
    content: str | list[ContentPart] | None = None
    """Text, multimodal parts (``TextPart``, ``ImageURLPart``, ``FilePart``, or mappings of
    their shape), or null."""

    @field_validator("content", mode="wrap")
    @classmethod
    def _readable_content(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        # one message naming the part (``[1].image_url.url: ...``), not one per union branch
        if value is not None and not isinstance(value, (str, list, tuple)):
            raise ValueError(
                f"must be a string, a list of parts or null (got {type(value).__name__})"
            )
        try:
            return handler(value)
        except ValidationError as exc:
            raise ValueError(content_error(exc)) from None


_DATETIME: TypeAdapter[datetime] = TypeAdapter(datetime)


def _lenient_datetime(value: object) -> datetime | None:
    """A datetime from ISO-8601 text or epoch seconds / milliseconds; ``None`` otherwise."""
    if value is None or isinstance(value, bool):
        return None
    try:
        parsed = _DATETIME.validate_python(value)
    except ValidationError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)


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
    vector_rank: int | float | None = None
    """Rank in the vector result list (an ``int`` when sent as one; the SDK types it a number)."""
    keyword_rank: int | float | None = None
    """Rank in the keyword result list (an ``int`` when sent as one; the SDK types it a number)."""
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
    "folder",
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
    key; ``folder`` its directory with a trailing slash (``""`` at the root), as the
    service derives the ``folder`` filter attribute; ``scoring_details`` is a JSON-ready
    dict of the scores that are set.

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
    metadata["folder"] = key[: key.rfind("/") + 1]  # what a {"folder": ...} filter matches
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
    """The exception raised for this instance (client-side fan-out); for an entry a namespace
    endpoint sends, the ``APIStatusError`` of its ``status`` or ``code`` when it carries one
    (the service sends only ``instance_id`` and ``message``: then ``None``)."""

    @model_validator(mode="after")
    def _error_from_entry(self) -> InstanceError:
        if self.error is None and self.model_extra:
            self.error = entry_error(self.message, {"message": self.message, **self.model_extra})
        return self


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
        return "".join(
            part.text if isinstance(part, TextPart) else str(getattr(part, "text", "") or "")
            for part in content
        )


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


class IndexingOptions(_ResponseModel):
    """An instance's ``indexing_options`` (other members are kept as extra fields)."""

    keyword_tokenizer: str | None = None
    """``porter`` (stemming) or ``trigram`` (substring and code search)."""
    use_ocr: bool | None = None
    """OCR ingestion of PDFs and images (PDFs then take up to 10 MiB); default false."""


class Instance(_ResponseModel):
    """An AI Search instance (configuration fields are kept as extra fields)."""

    id: str
    """Instance id."""
    namespace: str | None = None
    """Namespace it belongs to."""
    status: str | None = None
    """Service status, when sent."""
    indexing_options: IndexingOptions | None = None
    """Indexing settings (``keyword_tokenizer``, ``use_ocr``), when sent."""


class UploadWarning(_ResponseModel):
    """A warning of an upload that succeeded (``Item.warnings``).

    ``code`` is ``custom_metadata_field_not_filterable`` (``field`` is not declared in the
    instance's ``custom_metadata``) or ``custom_metadata_value_not_indexed`` (its value is not
    of the declared ``expected_type``); other codes are kept as sent.
    """

    code: str
    """What is wrong."""
    field: str | None = None
    """The metadata field."""
    expected_type: str | None = None
    """The declared type (``text``, ``number``, ``boolean``, ``datetime``), when it applies."""


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
    warnings: list[UploadWarning] = Field(default_factory=list)
    """What an upload's metadata got wrong (only upload answers carry them)."""

    @field_validator("warnings", mode="before")
    @classmethod
    def _warning_list(cls, value: object) -> object:
        if not isinstance(value, list):  # advisory: an unreadable value is no warning
            return []
        return [w for w in value if isinstance(w, Mapping) and isinstance(w.get("code"), str)]

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
    last_activity: Annotated[datetime | None, BeforeValidator(_lenient_datetime)] = None
    """Time of the last indexing activity, timezone-aware: sent as ISO-8601 or as Unix epoch
    seconds or milliseconds (a value that is neither reads as ``None``)."""
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

    A body that still does not fit raises the ``ValidationError`` of the first attempt.
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
