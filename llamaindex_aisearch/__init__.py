"""LlamaIndex integration for Cloudflare AI Search (formerly AutoRAG).

Retrievers (one instance or several), a query engine and a chat engine answered by the
service, the service as an ``LLM``, agent tools and a managed index, built on the
``aisearch`` core client.
"""

from __future__ import annotations

from importlib import import_module as _import_module

try:
    _import_module("llama_index.core")
except ModuleNotFoundError as _exc:  # pragma: no cover - tested in a subprocess
    if (_exc.name or "").partition(".")[0] != "llama_index":
        raise
    raise ModuleNotFoundError(
        'llamaindex_aisearch needs the [llamaindex] extra: pip install "aisearch-py[llamaindex]"',
        name=_exc.name,
    ) from _exc

from ._common import AISearchConnection
from .chat_engine import AISearchChatEngine
from .events import AISearchInstanceErrorEvent, AISearchInstanceWarning
from .filters import to_aisearch_filters
from .index import AISearchIndex
from .llms import AISearchLLM
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
    "AISearchMultiRetriever",
    "AISearchQueryEngine",
    "AISearchRetriever",
    "AISearchToolSpec",
    "InstanceFailureError",
    "MultiRetrievalResult",
    "to_aisearch_filters",
]
