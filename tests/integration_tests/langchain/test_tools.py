"""Tools end to end, and a LangChain agent calling them against the server."""

from __future__ import annotations

import re
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import ToolException, create_retriever_tool

from langchain_aisearch import (
    AISearchAnswerTool,
    AISearchMultiRetriever,
    AISearchRetriever,
    AISearchSearchTool,
    ChatAISearch,
)

from .conftest import QUERY


class ScriptedToolModel(GenericFakeChatModel):
    """A fake chat model that replays scripted messages and accepts bound tools."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedToolModel:
        return self


def _tool_call(name: str, query: str, call_id: str = "call-1") -> dict[str, Any]:
    return {"type": "tool_call", "id": call_id, "name": name, "args": {"query": query}}


def test_search_tool_returns_documents_as_artifact(lc_target):
    tool = AISearchSearchTool(retriever=AISearchRetriever(instance_id=lc_target.instance_id, k=3))
    message = tool.invoke(_tool_call(tool.name, QUERY))
    assert isinstance(message, ToolMessage)
    assert message.content.startswith("[1] ")
    assert len(message.artifact) == 3
    assert all(isinstance(d, Document) for d in message.artifact)
    assert message.artifact[0].metadata["source"] in message.content


async def test_answer_tool_async(lc_target):
    tool = AISearchAnswerTool(chat=ChatAISearch(instance_id=lc_target.instance_id))
    message = await tool.ainvoke(_tool_call(tool.name, QUERY))
    assert "Sources:" in message.content
    assert message.artifact
    assert message.artifact[0].metadata["source"] in message.content


def _cited(answer: str) -> list[int]:
    return sorted(
        {int(n) for group in re.findall(r"\[([\d, ]+)\]", answer) for n in group.split(",")}
    )


def test_answer_tool_lists_the_cited_sources_first_and_marks_them(lc_target):
    tool = AISearchAnswerTool(chat=ChatAISearch(instance_id=lc_target.instance_id))
    message = tool.invoke(_tool_call(tool.name, QUERY))
    answer, listing = message.content.split("\n\nSources:\n")
    cited = _cited(answer)
    rest = [n for n in range(1, len(message.artifact) + 1) if n not in cited]
    # the answer leaves out a source numbered before one it cites: the order is not the
    # service's, so the test shows the reordering (locally it always does)
    reordered = bool(cited and rest and rest[0] < cited[-1])
    if lc_target.live and not reordered:
        pytest.skip("the live answer cites its sources in the service's order")
    assert reordered, answer
    sources = [d.metadata["source"] for d in message.artifact]  # the service's order
    assert listing.splitlines() == [f"[{n}] (cited) {sources[n - 1]}" for n in cited] + [
        f"[{n}] {sources[n - 1]}" for n in rest
    ]


@pytest.mark.parametrize("multi", [False, True])
async def test_create_retriever_tool_on_both_retrievers(lc_target, multi):
    retriever = (
        AISearchMultiRetriever(instance_ids=[lc_target.instance_id], k=2)
        if multi
        else AISearchRetriever(instance_id=lc_target.instance_id, k=2)
    )
    tool = create_retriever_tool(
        retriever, "kb", "Search the coffee knowledge base.", response_format="content_and_artifact"
    )
    message = await tool.ainvoke(_tool_call("kb", QUERY))
    assert len(message.artifact) == 2
    assert message.artifact[0].page_content in message.content


def test_service_error_becomes_tool_exception(local, lc_target):
    local.set_fault(lc_target.instance_id, status=429, code=10029)
    tool = AISearchSearchTool(
        retriever=AISearchRetriever(instance_id=lc_target.instance_id, max_retries=0)
    )
    with pytest.raises(ToolException, match="429"):
        tool.invoke(_tool_call(tool.name, QUERY))


@pytest.mark.parametrize("kind", ["search", "answer"])
def test_agent_calls_tool_and_gets_sources(lc_target, kind):
    if kind == "search":
        tool = AISearchSearchTool(
            retriever=AISearchRetriever(instance_id=lc_target.instance_id, k=3)
        )
    else:
        tool = AISearchAnswerTool(chat=ChatAISearch(instance_id=lc_target.instance_id))
    model = ScriptedToolModel(
        messages=iter(
            [
                AIMessage(content="", tool_calls=[_tool_call(tool.name, QUERY)]),
                AIMessage(content="Grind fine, per the knowledge base."),
            ]
        )
    )
    agent = create_agent(model, [tool])
    state = agent.invoke({"messages": [HumanMessage(QUERY)]})
    tool_messages = [m for m in state["messages"] if isinstance(m, ToolMessage)]
    assert len(tool_messages) == 1
    (tool_message,) = tool_messages
    assert tool_message.status == "success"
    assert tool_message.artifact
    assert all(d.metadata["instance_id"] == lc_target.instance_id for d in tool_message.artifact)
    assert tool_message.artifact[0].metadata["source"] in tool_message.content
    assert state["messages"][-1].content == "Grind fine, per the knowledge base."


async def test_the_model_narrows_a_search_by_folder_or_filter(lc_target):
    """The search tool's optional arguments reach the service (sync and async)."""
    tool = AISearchSearchTool(retriever=AISearchRetriever(instance_id=lc_target.instance_id, k=4))
    call = {
        "type": "tool_call",
        "id": "c1",
        "name": tool.name,
        "args": {"query": "sour espresso", "folder": "troubleshooting/"},
    }
    everywhere = tool.invoke(_tool_call(tool.name, "sour espresso grind size"))
    assert {d.metadata["folder"] for d in everywhere.artifact} != {"troubleshooting/"}
    message = tool.invoke(call)
    assert message.artifact
    assert {d.metadata["folder"] for d in message.artifact} == {"troubleshooting/"}
    by_key = {**call, "args": {"query": "grinders", "filters": {"folder": "equipment/"}}}
    message = await tool.ainvoke(by_key)
    assert message.artifact
    assert {d.metadata["folder"] for d in message.artifact} == {"equipment/"}
