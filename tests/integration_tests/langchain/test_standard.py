"""LangChain standard integration suites against the local server (or Cloudflare when live).

The service has no tool calling and no structured output: both are switched off through
the suites' own properties (`has_tool_calling`, `has_structured_output`), so those tests
skip themselves; nothing is deleted or overridden.
"""

from __future__ import annotations

from typing import Any, ClassVar

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


def _multi_ids() -> list[str]:
    ids = [TARGET.instance_id]
    if TARGET.second_instance_id:
        ids.append(TARGET.second_instance_id)
    return ids


# The suites read their settings as properties; the constant ones are class attributes here,
# the ones naming TARGET (set up when the session starts) stay properties.


class TestAISearchRetrieverStandard(RetrieversIntegrationTests):
    retriever_constructor = AISearchRetriever
    retriever_query_example = QUERY

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"instance_id": TARGET.instance_id}


class TestAISearchMultiRetrieverStandard(TestAISearchRetrieverStandard):
    retriever_constructor = AISearchMultiRetriever  # type: ignore[assignment]

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"instance_ids": _multi_ids()}


class TestAISearchFanOutRetrieverStandard(TestAISearchMultiRetrieverStandard):
    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"instance_ids": _multi_ids(), "force_fan_out": True, "merge": "rrf"}


class TestChatAISearchStandard(ChatModelIntegrationTests):
    chat_model_class = ChatAISearch
    has_tool_calling = False
    has_structured_output = False
    model_override_value = "@cf/meta/llama-3.1-8b-instruct-fast"

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"instance_id": TARGET.instance_id}


class TestSearchToolStandard(ToolsIntegrationTests):
    tool_constructor = AISearchSearchTool
    tool_invoke_params_example: ClassVar[dict[str, Any]] = {"query": QUERY}

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {"retriever": AISearchRetriever(instance_id=TARGET.instance_id, k=3)}


class TestAnswerToolStandard(TestSearchToolStandard):
    tool_constructor = AISearchAnswerTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {"chat": ChatAISearch(instance_id=TARGET.instance_id)}


class TestRetrieverToolStandard(TestSearchToolStandard):
    tool_constructor_params: ClassVar[dict[str, Any]] = {}  # a built tool takes none

    @property
    def tool_constructor(self) -> BaseTool:  # type: ignore[override]
        return create_retriever_tool(
            AISearchMultiRetriever(instance_ids=_multi_ids(), k=3),
            "aisearch_multi_search",
            "Search the coffee knowledge base across instances.",
            response_format="content_and_artifact",
        )
