"""LangChain integration for Cloudflare AI Search (formerly AutoRAG).

Retrievers (`AISearchRetriever`, `AISearchMultiRetriever`), a chat model over chat
completions with sources and citations (`ChatAISearch`), and agent tools
(`AISearchSearchTool`, `AISearchAnswerTool`), all built on the `aisearch` core client.
"""

from __future__ import annotations

from importlib import import_module as _import_module

try:
    _import_module("langchain_core")
except ModuleNotFoundError as _exc:  # pragma: no cover - tested in a subprocess
    if (_exc.name or "").partition(".")[0] != "langchain_core":
        raise
    raise ModuleNotFoundError(
        'langchain_aisearch needs the [langchain] extra: pip install "aisearch-py[langchain]"',
        name=_exc.name,
    ) from _exc

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
