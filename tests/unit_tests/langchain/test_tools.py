from __future__ import annotations

import re

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


def _searches(tool_args: dict, filters: dict | None = None):
    """Invoke the search tool with `tool_args`; return the message and the request bodies."""
    recorder = Recorder(lambda r, b: httpx.Response(200, json=search_envelope([chunk(1)])))
    sync, _ = make_clients(recorder)
    retriever = AISearchRetriever(instance_id="docs", client=sync, filters=filters)
    tool = AISearchSearchTool(retriever=retriever)
    call = {"type": "tool_call", "id": "c", "name": tool.name, "args": tool_args}
    return tool.invoke(call), recorder.bodies


def test_search_tool_schema_offers_folder_and_filters_and_says_when_to_use_it():
    sync, _ = _clients()
    tool = AISearchSearchTool(retriever=AISearchRetriever(instance_id="docs", client=sync))
    schema = tool.tool_call_schema.model_json_schema()
    assert set(schema["properties"]) == {"query", "folder", "filters"}
    assert schema["required"] == ["query"]
    assert "ending in '/'" in schema["properties"]["folder"]["description"]
    assert "prefer aisearch_answer" in tool.description
    answer = AISearchAnswerTool(chat=ChatAISearch(instance_id="docs", client=sync))
    assert "use aisearch_search" in answer.description


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"folder": "docs"}, "folder: a folder ends with '/'"),
        ({"folder": "a\x00/"}, "folder: must not hold control characters"),
        ({"folder": "é" * 40 + "/"}, "folder: at most 64 bytes"),
        ({"filters": {"year": {"$regex": "x"}}}, "filters.year"),
        ({"filters": {"$and": [{"a": 1}]}}, "filters"),
    ],
)
def test_search_tool_refuses_a_bad_folder_or_filter_before_any_request(args, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        _searches({"query": "q", **args})


def test_search_tool_adds_the_models_filters_to_the_retrievers():
    message, bodies = _searches(
        {"query": "q", "folder": "docs/", "filters": {"year": {"$gte": 2024}}},
        filters={"lang": "en"},
    )
    sent = bodies[0]["ai_search_options"]["retrieval"]["filters"]
    assert sent == {"lang": "en", "folder": "docs/", "year": {"$gte": 2024}}
    assert message.artifact


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"folder": "other/"}, "filters: 'folder' is fixed by this tool's configuration"),
        ({"filters": {"folder": "other/"}}, "'folder' is fixed"),
        (
            {"folder": "a/", "filters": {"folder": "b/"}},
            "give folder or filters['folder'], not both",
        ),
    ],
)
def test_search_tool_never_widens_the_retrievers_filters(args, message):
    with pytest.raises(ToolException, match=re.escape(message)):
        _searches({"query": "q", **args}, filters={"folder": "tenant-a/"})
