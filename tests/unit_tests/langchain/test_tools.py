from __future__ import annotations

import httpx
import pytest
from langchain_core.documents import Document
from langchain_core.messages import ToolMessage
from langchain_core.tools import ToolException, create_retriever_tool
from pydantic import ValidationError

from langchain_aisearch import (
    AISearchAnswerTool,
    AISearchRetriever,
    AISearchSearchTool,
    ChatAISearch,
)

from .conftest import Recorder, chunk, completion, make_clients, search_envelope


def _call(query: str) -> dict:
    return {"type": "tool_call", "id": "call-1", "name": "t", "args": {"query": query}}


def _clients(status: int = 200, payload: dict | None = None):
    def respond(request: httpx.Request, body):
        if status != 200:
            return httpx.Response(status, json=payload)
        if request.url.path.endswith("/search"):
            return httpx.Response(200, json=search_envelope([chunk(1), chunk(2)]))
        return httpx.Response(200, json=completion())

    return make_clients(Recorder(respond))


def test_search_tool_content_and_artifact():
    sync, _ = _clients()
    tool = AISearchSearchTool(retriever=AISearchRetriever(instance_id="docs", client=sync))
    message = tool.invoke(_call("espresso"))
    assert isinstance(message, ToolMessage)
    assert message.content.startswith("[1] doc-1.md (score 0.850, instance docs)\nPassage 1")
    assert "[2] doc-2.md" in message.content
    assert all(isinstance(d, Document) for d in message.artifact)
    assert [d.id for d in message.artifact] == ["chunk-1", "chunk-2"]
    assert tool.invoke({"query": "espresso"}) == message.content


async def test_answer_tool_async_artifact_is_sources():
    _, asyncc = _clients()
    tool = AISearchAnswerTool(chat=ChatAISearch(instance_id="docs", async_client=asyncc))
    message = await tool.ainvoke(_call("grind?"))
    expected = "Grind fine [1].\n\nSources:\n[1] (cited) doc-1.md\n[2] doc-2.md"
    assert message.content.startswith(expected)
    assert [d.metadata["source"] for d in message.artifact] == ["doc-1.md", "doc-2.md"]


@pytest.mark.parametrize("tool_kind", ["search", "answer"])
def test_errors_become_tool_exception_with_service_message(tool_kind):
    payload = {"success": False, "errors": [{"code": 7002, "message": "instance docs not found"}]}
    sync, _ = _clients(404, payload)
    tool = (
        AISearchSearchTool(retriever=AISearchRetriever(instance_id="docs", client=sync))
        if tool_kind == "search"
        else AISearchAnswerTool(chat=ChatAISearch(instance_id="docs", client=sync))
    )
    with pytest.raises(ToolException, match="instance docs not found"):
        tool.invoke(_call("x"))
    tool.handle_tool_error = True
    message = tool.invoke(_call("x"))
    assert "instance docs not found" in message.content
    assert message.status == "error"


def test_create_retriever_tool_on_retriever():
    sync, _ = _clients()
    tool = create_retriever_tool(
        AISearchRetriever(instance_id="docs", client=sync),
        "kb",
        "Search the knowledge base.",
        response_format="content_and_artifact",
    )
    message = tool.invoke(_call("x"))
    assert "Passage 1 about espresso." in message.content
    assert [d.id for d in message.artifact] == ["chunk-1", "chunk-2"]


def test_empty_query_rejected_by_schema():
    sync, _ = _clients()
    tool = AISearchSearchTool(retriever=AISearchRetriever(instance_id="docs", client=sync))
    with pytest.raises(ValidationError, match="query"):
        tool.invoke({"query": ""})
