"""LlamaIndex integration for Cloudflare AI Search (formerly AutoRAG).

Retrievers (one instance or several), a query engine and a chat engine answered by the
service, the service as an ``LLM``, agent tools, a memory block for agents and a managed
index, built on the ``aisearch`` core client.
"""

from __future__ import annotations

from aisearch._extras import require_extra as _require_extra

_require_extra("llama_index.core", "llamaindex", "llamaindex_aisearch")

from ._common import AISearchConnection
from .chat_engine import AISearchChatEngine
from .events import (
    AISearchInstanceErrorEvent,
    AISearchInstanceWarning,
    AISearchMemoryRetrievalEvent,
)
from .filters import to_aisearch_filters
from .index import AISearchIndex
from .llms import AISearchLLM
from .memory import AISearchMemoryBlock, AISearchMemoryRetrieval, MemoryTargetRequest
from .query_engine import AISearchQueryEngine
from .retrievers import (
    AISearchMultiRetriever,
    AISearchRetriever,
    InstanceFailureError,
    MultiRetrievalResult,
)
from .tools import AISearchToolSpec

__all__ = [
    "AISearchChatEngine",
    "AISearchConnection",
    "AISearchIndex",
    "AISearchInstanceErrorEvent",
    "AISearchInstanceWarning",
    "AISearchLLM",
    "AISearchMemoryBlock",
    "AISearchMemoryRetrieval",
    "AISearchMemoryRetrievalEvent",
    "AISearchMultiRetriever",
    "AISearchQueryEngine",
    "AISearchRetriever",
    "AISearchToolSpec",
    "InstanceFailureError",
    "MemoryTargetRequest",
    "MultiRetrievalResult",
    "to_aisearch_filters",
]
