"""Typed Python client for the Cloudflare AI Search (formerly AutoRAG) REST API.

Example:
    >>> from aisearch import AISearchClient
    >>> client = AISearchClient(account_id="...", api_token="...")  # doctest: +SKIP
    >>> client.search("docs", "How do I get started?").chunks  # doctest: +SKIP
"""

from __future__ import annotations

from aisearch._async._client import AsyncAISearchClient
from aisearch._async._public import AsyncAISearchPublicClient
from aisearch._async._streams import AsyncEventStream
from aisearch._config import DEFAULT_BASE_URL, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT
from aisearch._content import (
    ContentPart,
    FileData,
    FilePart,
    ImageURL,
    ImageURLPart,
    OtherPart,
    TextPart,
)
from aisearch._exceptions import (
    AISearchError,
    AllInstancesFailedError,
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    IndexingError,
    IndexingTimeoutError,
    InternalServerError,
    InvalidRequestError,
    MethodNotAllowedError,
    NotFoundError,
    PartialFailureError,
    PermissionDeniedError,
    RateLimitError,
    StreamInterruptedError,
)
from aisearch._fanout import SearchTarget
from aisearch._filters import to_legacy_filter, validate_filters
from aisearch._models import (
    ChatCompletion,
    ChatMessage,
    Choice,
    Chunk,
    ChunkItem,
    EngineStats,
    FanOutResult,
    Instance,
    InstanceError,
    InstanceStats,
    Item,
    ItemChunk,
    Job,
    JobLog,
    Namespace,
    R2Stats,
    ScoringDetails,
    SearchResult,
    SourcesEvent,
    StreamEndEvent,
    StreamEvent,
    TextDeltaEvent,
    Usage,
    VectorizeStats,
)
from aisearch._options import (
    BoostBy,
    CacheOptions,
    QueryRewriteOptions,
    RerankingOptions,
    RetrievalOptions,
    SearchOptions,
    format_validation_error,
)
from aisearch._params import coerce_options
from aisearch._sync._client import AISearchClient
from aisearch._sync._public import AISearchPublicClient
from aisearch._sync._streams import EventStream
from aisearch._version import __version__

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "AISearchClient",
    "AISearchError",
    "AISearchPublicClient",
    "APIConnectionError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AllInstancesFailedError",
    "AsyncAISearchClient",
    "AsyncAISearchPublicClient",
    "AsyncEventStream",
    "AuthenticationError",
    "BadRequestError",
    "BoostBy",
    "CacheOptions",
    "ChatCompletion",
    "ChatMessage",
    "Choice",
    "Chunk",
    "ChunkItem",
    "ConflictError",
    "ContentPart",
    "EngineStats",
    "EventStream",
    "FanOutResult",
    "FileData",
    "FilePart",
    "ImageURL",
    "ImageURLPart",
    "IndexingError",
    "IndexingTimeoutError",
    "Instance",
    "InstanceError",
    "InstanceStats",
    "InternalServerError",
    "InvalidRequestError",
    "Item",
    "ItemChunk",
    "Job",
    "JobLog",
    "MethodNotAllowedError",
    "Namespace",
    "NotFoundError",
    "OtherPart",
    "PartialFailureError",
    "PermissionDeniedError",
    "QueryRewriteOptions",
    "R2Stats",
    "RateLimitError",
    "RerankingOptions",
    "RetrievalOptions",
    "ScoringDetails",
    "SearchOptions",
    "SearchResult",
    "SearchTarget",
    "SourcesEvent",
    "StreamEndEvent",
    "StreamEvent",
    "StreamInterruptedError",
    "TextDeltaEvent",
    "TextPart",
    "Usage",
    "VectorizeStats",
    "__version__",
    "coerce_options",
    "format_validation_error",
    "to_legacy_filter",
    "validate_filters",
]
