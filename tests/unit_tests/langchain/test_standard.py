"""LangChain standard unit suites (no sockets)."""

from __future__ import annotations

from typing import Any, ClassVar

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
    # the suites read these as properties; constant ones are plain class attributes
    chat_model_class = ChatAISearch
    chat_model_params: ClassVar[dict[str, Any]] = {
        "instance_id": "docs",
        "model": "@cf/meta/llama-3.3-70b-instruct-fp8-fast",
    }
    has_tool_calling = False
    has_structured_output = False
    init_from_env_params = (
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
    tool_constructor = AISearchSearchTool
    tool_invoke_params_example: ClassVar[dict[str, Any]] = {"query": "espresso grind size"}

    @property
    def tool_constructor_params(self) -> dict[str, Any]:  # a new retriever for every test
        return {"retriever": AISearchRetriever(instance_id="docs", client=_sync_client())}


class TestAnswerToolUnit(ToolsUnitTests):
    tool_constructor = AISearchAnswerTool
    tool_invoke_params_example: ClassVar[dict[str, Any]] = {
        "query": "How long should espresso extract?"
    }

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {"chat": ChatAISearch(instance_id="docs", client=_sync_client())}


class TestRetrieverToolUnit(ToolsUnitTests):
    tool_invoke_params_example: ClassVar[dict[str, Any]] = {"query": "milk texture"}

    @property
    def tool_constructor(self) -> BaseTool:
        return create_retriever_tool(
            AISearchMultiRetriever(instance_ids=["docs", "blog"], client=_sync_client()),
            "aisearch_multi_search",
            "Search the coffee knowledge base.",
            response_format="content_and_artifact",
        )
