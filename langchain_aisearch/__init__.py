"""LangChain integration for Cloudflare AI Search (formerly AutoRAG).

Retrievers (`AISearchRetriever`, `AISearchMultiRetriever`), a chat model over chat
completions with sources and citations (`ChatAISearch`), and agent tools
(`AISearchSearchTool`, `AISearchAnswerTool`), retrieval middleware for `create_agent`
(`AISearchContextMiddleware`), all built on the `aisearch` core client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from langchain_aisearch.middleware import (
        AISearchAgentState,
        AISearchContextMiddleware,
        AISearchTarget,
    )

_MIDDLEWARE = frozenset({"AISearchAgentState", "AISearchContextMiddleware", "AISearchTarget"})


def __getattr__(name: str) -> Any:
    """The middleware's names, imported on first use: they need `langchain` (agents)."""
    if name in _MIDDLEWARE:
        from importlib import import_module

        return getattr(import_module("langchain_aisearch.middleware"), name)
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)


__all__ = [
    "AISearchAgentState",
    "AISearchAnswerTool",
    "AISearchContextMiddleware",
    "AISearchInstanceWarning",
    "AISearchMultiRetriever",
    "AISearchRetriever",
    "AISearchSearchTool",
    "AISearchTarget",
    "AllInstancesFailedError",
    "ChatAISearch",
    "InstanceError",
    "InstanceSearchError",
    "SearchTarget",
    "SettingsValidationError",
    "chunk_to_document",
    "sources_to_documents",
]
