"""LangChain standard integration suites against the local server (or Cloudflare when live).

The service has no tool calling and no structured output: both are switched off through
the suites' own properties (`has_tool_calling`, `has_structured_output`), so those tests
skip themselves; nothing is deleted or overridden.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.tools import BaseTool, create_retriever_tool
from langchain_tests.integration_tests import (
    ChatModelIntegrationTests,
    RetrieversIntegrationTests,
    ToolsIntegrationTests,
)

from langchain_aisearch import (
    AISearchAnswerTool,
    AISearchMultiRetriever,
    AISearchRetriever,
    AISearchSearchTool,
    ChatAISearch,
)

from .conftest import QUERY, TARGET

pytestmark = pytest.mark.integration


def _multi_ids() -> list[str]:
    ids = [TARGET.instance_id]
    if TARGET.second_instance_id:
        ids.append(TARGET.second_instance_id)
    return ids


class TestAISearchRetrieverStandard(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[AISearchRetriever]:
        return AISearchRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"instance_id": TARGET.instance_id}

    @property
    def retriever_query_example(self) -> str:
        return QUERY


class TestAISearchMultiRetrieverStandard(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[AISearchMultiRetriever]:
        return AISearchMultiRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"instance_ids": _multi_ids()}

    @property
    def retriever_query_example(self) -> str:
        return QUERY


class TestAISearchFanOutRetrieverStandard(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[AISearchMultiRetriever]:
        return AISearchMultiRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"instance_ids": _multi_ids(), "force_fan_out": True, "merge": "rrf"}

    @property
    def retriever_query_example(self) -> str:
        return QUERY


class TestChatAISearchStandard(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[ChatAISearch]:
        return ChatAISearch

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"instance_id": TARGET.instance_id}

    @property
    def has_tool_calling(self) -> bool:
        return False

    @property
    def has_structured_output(self) -> bool:
        return False

    @property
    def model_override_value(self) -> str | None:
        return "@cf/meta/llama-3.1-8b-instruct-fast"


class TestSearchToolStandard(ToolsIntegrationTests):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return AISearchSearchTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {"retriever": AISearchRetriever(instance_id=TARGET.instance_id, k=3)}

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"query": QUERY}


class TestAnswerToolStandard(ToolsIntegrationTests):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return AISearchAnswerTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {"chat": ChatAISearch(instance_id=TARGET.instance_id)}

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"query": QUERY}


class TestRetrieverToolStandard(ToolsIntegrationTests):
    @property
    def tool_constructor(self) -> BaseTool:
        return create_retriever_tool(
            AISearchMultiRetriever(instance_ids=_multi_ids(), k=3),
            "aisearch_multi_search",
            "Search the coffee knowledge base across instances.",
            response_format="content_and_artifact",
        )

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"query": QUERY}
