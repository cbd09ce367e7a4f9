"""Typed Python client for the Cloudflare AI Search (formerly AutoRAG) REST API.

Example:
    >>> from aisearch import AISearchClient
    >>> client = AISearchClient(account_id="...", api_token="...")  # doctest: +SKIP
    >>> client.search("docs", "How do I get started?").chunks  # doctest: +SKIP
"""

from __future__ import annotations

from aisearch._client import AISearchClient, AsyncAISearchClient
from aisearch._config import DEFAULT_BASE_URL, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT
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
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    StreamInterruptedError,
)
from aisearch._fanout import SearchTarget
from aisearch._filters import to_legacy_filter, validate_filters
from aisearch._models import (
    BoostBy,
    CacheOptions,
    ChatCompletion,
    ChatMessage,
    Choice,
    Chunk,
    ChunkItem,
    FanOutResult,
    Instance,
    InstanceError,
    Item,
    Namespace,
    QueryRewriteOptions,
    RerankingOptions,
    RetrievalOptions,
    ScoringDetails,
    SearchOptions,
    SearchResult,
    SourcesEvent,
    StreamEndEvent,
    StreamEvent,
    TextDeltaEvent,
    Usage,
)
from aisearch._version import __version__

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "AISearchClient",
    "AISearchError",
    "APIConnectionError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AllInstancesFailedError",
    "AsyncAISearchClient",
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
    "FanOutResult",
    "IndexingError",
    "IndexingTimeoutError",
    "Instance",
    "InstanceError",
    "InternalServerError",
    "InvalidRequestError",
    "Item",
    "Namespace",
    "NotFoundError",
    "PermissionDeniedError",
    "QueryRewriteOptions",
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
    "Usage",
    "__version__",
    "to_legacy_filter",
    "validate_filters",
]
