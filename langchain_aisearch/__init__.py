"""LangChain integration for Cloudflare AI Search (formerly AutoRAG).

Retrievers (`AISearchRetriever`, `AISearchMultiRetriever`), a chat model over chat
completions with sources and citations (`ChatAISearch`), and agent tools
(`AISearchSearchTool`, `AISearchAnswerTool`), all built on the `aisearch` core client.
"""

from __future__ import annotations

from aisearch._extras import require_extra as _require_extra

_require_extra("langchain_core", "langchain", "langchain_aisearch")

from aisearch import AllInstancesFailedError, InstanceError, SearchTarget
from langchain_aisearch._common import SettingsValidationError
from langchain_aisearch._mapping import chunk_to_document, sources_to_documents
from langchain_aisearch.chat_models import ChatAISearch
from langchain_aisearch.retrievers import (
    AISearchInstanceWarning,
    AISearchMultiRetriever,
    AISearchRetriever,
    InstanceSearchError,
)
from langchain_aisearch.tools import AISearchAnswerTool, AISearchSearchTool

__all__ = [
    "AISearchAnswerTool",
    "AISearchInstanceWarning",
    "AISearchMultiRetriever",
    "AISearchRetriever",
    "AISearchSearchTool",
    "AllInstancesFailedError",
    "ChatAISearch",
    "InstanceError",
    "InstanceSearchError",
    "SearchTarget",
    "SettingsValidationError",
    "chunk_to_document",
    "sources_to_documents",
]
