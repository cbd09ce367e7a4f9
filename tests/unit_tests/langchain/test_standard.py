"""LangChain standard unit suites (no sockets)."""

from __future__ import annotations

from typing import Any

import httpx
from langchain_core.tools import BaseTool, create_retriever_tool
from langchain_tests.unit_tests import ChatModelUnitTests, ToolsUnitTests

from langchain_aisearch import (
    AISearchAnswerTool,
    AISearchMultiRetriever,
    AISearchRetriever,
    AISearchSearchTool,
    ChatAISearch,
)

from .conftest import Recorder, make_clients, search_envelope

_recorder = Recorder(lambda r, b: httpx.Response(200, json=search_envelope([])))


def _sync_client():
    return make_clients(_recorder)[0]


class TestChatAISearchUnit(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[ChatAISearch]:
        return ChatAISearch

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"instance_id": "docs", "model": "@cf/meta/llama-3.3-70b-instruct-fp8-fast"}

    @property
    def has_tool_calling(self) -> bool:
        return False

    @property
    def has_structured_output(self) -> bool:
        return False

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return (
            {
                "CLOUDFLARE_API_TOKEN": "env-token",
                "CLOUDFLARE_ACCOUNT_ID": "env-account",
                "AISEARCH_BASE_URL": "http://127.0.0.1:1/client/v4",
            },
            {"instance_id": "docs"},
            {
                "api_token": "env-token",
                "account_id": "env-account",
                "base_url": "http://127.0.0.1:1/client/v4",
            },
        )


class TestSearchToolUnit(ToolsUnitTests):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return AISearchSearchTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {"retriever": AISearchRetriever(instance_id="docs", client=_sync_client())}

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"query": "espresso grind size"}


class TestAnswerToolUnit(ToolsUnitTests):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return AISearchAnswerTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {"chat": ChatAISearch(instance_id="docs", client=_sync_client())}

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"query": "How long should espresso extract?"}


class TestRetrieverToolUnit(ToolsUnitTests):
    @property
    def tool_constructor(self) -> BaseTool:
        return create_retriever_tool(
            AISearchMultiRetriever(instance_ids=["docs", "blog"], client=_sync_client()),
            "aisearch_multi_search",
            "Search the coffee knowledge base.",
            response_format="content_and_artifact",
        )

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"query": "milk texture"}
