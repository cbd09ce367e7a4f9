from __future__ import annotations

import langchain_aisearch

EXPECTED_ALL = [
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


def test_all_is_pinned_and_sorted():
    assert langchain_aisearch.__all__ == EXPECTED_ALL
    assert sorted(EXPECTED_ALL) == EXPECTED_ALL
    for name in EXPECTED_ALL:
        assert getattr(langchain_aisearch, name) is not None


def test_translator_registered_for_provider():
    from langchain_core.messages.block_translators import get_translator

    translator = get_translator("aisearch")
    assert translator is not None
    assert set(translator) == {"translate_content", "translate_content_chunk"}
