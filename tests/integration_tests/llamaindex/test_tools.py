"""Agent tools: AISearchToolSpec, QueryEngineTool, RetrieverTool and a FunctionAgent run."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pytest
from llama_index.core.agent.workflow import AgentOutput, FunctionAgent, ToolCallResult
from llama_index.core.base.llms.types import ChatMessage, MessageRole, ToolCallBlock
from llama_index.core.base.response.schema import Response
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.tools import QueryEngineTool, RetrieverTool

from llamaindex_aisearch import (
    AISearchConnection,
    AISearchQueryEngine,
    AISearchRetriever,
    AISearchToolSpec,
)

QUESTION = "How long should a pour-over brew take?"


def test_tool_spec_search_and_answer_sync(conn: AISearchConnection, docs_instance: str) -> None:
    tools = {
        t.metadata.name: t for t in AISearchToolSpec(docs_instance, connection=conn).to_tool_list()
    }
    assert set(tools) == {"search", "answer"}
    out = tools["search"].call(query=QUESTION)
    assert isinstance(out.raw_output, Response)
    nodes = out.raw_output.source_nodes
    assert 1 <= len(nodes) <= 5
    assert f"[1] {nodes[0].node.metadata['filename']}" in out.content
    answer = tools["answer"].call(question=QUESTION)
    assert answer.raw_output.source_nodes
    # the listing puts the cited sources first: which one the answer cites first depends on
    # the ranking, so only the listing's shape is checked here
    assert re.search(r"\n\nSources: \[\d+\] ", answer.content), answer.content


def test_tool_spec_answer_lists_the_cited_sources_first_and_marks_them(
    conn: AISearchConnection, docs_instance: str
) -> None:
    answer = AISearchToolSpec(docs_instance, connection=conn).answer(QUESTION)
    text, listing = (answer.response or "").split("\n\nSources: ")
    found = {int(n) for group in re.findall(r"\[([\d, ]+)\]", text) for n in group.split(",")}
    cited = sorted(found)
    rest = [n for n in range(1, len(answer.source_nodes) + 1) if n not in cited]
    # the answer leaves out a source numbered before one it cites: the listing's order is
    # not the service's, so the test shows the reordering
    assert cited and rest and rest[0] < cited[-1], text
    names = [n.node.metadata["filename"] for n in answer.source_nodes]  # the service's order
    assert listing.split(", ") == [f"[{n}] (cited) {names[n - 1]}" for n in cited] + [
        f"[{n}] {names[n - 1]}" for n in rest
    ]


async def test_tool_spec_search_and_answer_async(
    conn: AISearchConnection, docs_instance: str
) -> None:
    spec = AISearchToolSpec(docs_instance, similarity_top_k=2, connection=conn)
    tools = {t.metadata.name: t for t in await spec.to_tool_list_async()}
    out = await tools["search"].acall(query=QUESTION)
    assert len(out.raw_output.source_nodes) == 2
    answer = await tools["answer"].acall(question=QUESTION)
    assert answer.raw_output.response
    assert answer.raw_output.source_nodes


def test_query_engine_tool_and_retriever_tool(conn: AISearchConnection, docs_instance: str) -> None:
    qe_tool = QueryEngineTool.from_defaults(
        AISearchQueryEngine(docs_instance, connection=conn),
        name="coffee_answers",
        description="Answers coffee questions.",
    )
    out = qe_tool.call(QUESTION)
    assert out.content
    assert out.raw_output.source_nodes
    r_tool = RetrieverTool.from_defaults(
        AISearchRetriever(docs_instance, similarity_top_k=3, connection=conn),
        name="coffee_search",
        description="Finds coffee passages.",
    )
    out = r_tool.call(QUESTION)
    assert len(out.raw_output) == 3
    assert "filename: " in out.content  # short metadata only: no scoring details
    assert "scoring_details" not in out.content


def _scripted(messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
    """First turn: call the search tool. After the tool answered: reply with its text."""
    tool_results = [m for m in messages if m.role == MessageRole.TOOL]
    if not tool_results:
        return ChatMessage(
            role=MessageRole.ASSISTANT,
            blocks=[
                ToolCallBlock(
                    tool_call_id="call-1", tool_name="search", tool_kwargs={"query": QUESTION}
                )
            ],
        )
    return ChatMessage(role=MessageRole.ASSISTANT, content=f"Found: {tool_results[-1].content}")


# llama-index-workflows inspects the agent with inspect.getmembers, touching pydantic's
# deprecated ``__fields__``/``__fields_set__`` (third-party; not our code path).
@pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecationWarning:inspect")
async def test_function_agent_calls_the_search_tool(
    conn: AISearchConnection, docs_instance: str
) -> None:
    llm = MockFunctionCallingLLM(response_generator=_scripted, is_chat_model=True)
    tools = AISearchToolSpec(docs_instance, similarity_top_k=3, connection=conn).to_tool_list()
    agent = FunctionAgent(tools=tools, llm=llm, streaming=False)
    handler = agent.run(user_msg=QUESTION)
    results: list[ToolCallResult] = []
    async for event in handler.stream_events():
        if isinstance(event, ToolCallResult):
            results.append(event)
    output = await handler
    assert isinstance(output, AgentOutput)
    assert [r.tool_name for r in results] == ["search"]
    raw = results[0].tool_output.raw_output
    assert isinstance(raw, Response)
    assert len(raw.source_nodes) == 3
    assert all(n.node.metadata["instance_id"] == docs_instance for n in raw.source_nodes)
    assert raw.source_nodes[0].node.metadata["filename"] in str(output.response.content)
