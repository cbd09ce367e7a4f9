"""A LlamaIndex AgentWorkflow answering with citations: AI Search as memory and as a tool.

Mirrors notebooks/08_llamaindex_agent_workflow.ipynb. The agent gets AI Search twice:

* ``AISearchMemoryBlock`` in its ``Memory``: before each model call it searches AI Search with
  the user's latest message and puts the numbered passages ([1], [2] ...) in the system message;
* ``AISearchToolSpec``: ``search`` (with an optional ``folder``) and ``answer`` tools, for when
  the model wants a different or narrower search.

The answer cites passages by number; the script maps each ``[n]`` back to its source node: the
search tool's result when the model called it in that turn, else the memory block's passages.

The model is a small scripted stand-in (no LLM, no network) that calls the tools as a model
would and answers from what it was given, unless ``AISEARCH_AGENT_MODEL`` names a real one as
``provider:model`` (``openai:gpt-4.1-mini`` with ``OPENAI_API_KEY`` and ``pip install
llama-index-llms-openai``, or ``anthropic:...``); the agent is the same either way.

Needs `pip install "aisearch-py[examples]"`. Nothing to start first: without Cloudflare
credentials the script starts its own local AI Search server (127.0.0.1, a free port, a
temporary data directory) with the sample corpus, and stops it at the end.

    python examples/llamaindex_agent_workflow.py
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from _agent_llm import agent_llm, cited
from _target import coffee_target
from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent, ToolCall, ToolCallResult
from llama_index.core.memory import Memory
from llama_index.core.schema import NodeWithScore
from sqlalchemy.ext.asyncio import create_async_engine

from llamaindex_aisearch import AISearchMemoryBlock, AISearchToolSpec

TURNS = (
    "How long should I rest a light roast before brewing it as espresso?",
    "My espresso tastes sour. What should I change? Only look in the troubleshooting folder.",
)
SYSTEM = (
    "You answer questions about coffee for a roastery's customers, only from the passages "
    "you are given. Cite every fact with the number of its passage, like [1]: the numbers of "
    "the search tool's results when you called it in this turn, else those of the AI Search "
    "passages in your context. Call the search tool (with its folder argument) when the user "
    "limits where to look or the passages do not answer."
)


def plan(question: str) -> tuple[str, dict[str, Any]] | None:
    """The scripted model's plan: a folder named by the user means a search tool call."""
    folder = re.search(r"the (\S+) folder", question)
    if folder is None:
        return None  # the memory block's passages will do
    query = re.split(r"\s*Only look in", question)[0]
    return "search", {"query": query, "folder": folder.group(1)}


async def main() -> None:
    with coffee_target() as target:
        llm, described = agent_llm(plan)
        print(f"model: {described}")
        block = AISearchMemoryBlock(target.instance, similarity_top_k=3, **target.connection)
        tools = AISearchToolSpec(target.instance, similarity_top_k=3, **target.connection)
        agent = FunctionAgent(
            name="barista",
            description="Answers coffee questions from the roastery's knowledge base.",
            system_prompt=SYSTEM,
            tools=tools.to_tool_list(),
            llm=llm,
        )
        workflow = AgentWorkflow(agents=[agent], root_agent="barista")
        engine = create_async_engine("sqlite+aiosqlite:///:memory:")  # the chat history
        memory = Memory.from_defaults(
            session_id="customer-42", memory_blocks=[block], async_engine=engine
        )
        try:
            for question in TURNS:
                print(f"\nuser    -> {question}")
                handler = workflow.run(user_msg=question, memory=memory)
                tool_nodes: list[NodeWithScore] = []
                async for event in handler.stream_events():
                    if isinstance(event, ToolCall) and not isinstance(event, ToolCallResult):
                        print(f"  model   -> calls {event.tool_name}({event.tool_kwargs})")
                    elif isinstance(event, ToolCallResult):
                        tool_nodes = list(event.tool_output.raw_output.source_nodes)
                        keys = [n.node.metadata["filename"] for n in tool_nodes]
                        print(f"  tool    -> {len(keys)} passages: {keys}")
                response = await handler
                memory_nodes = block.last_source_nodes
                keys = [n.node.metadata["filename"] for n in memory_nodes]
                print(f"  memory  -> {len(keys)} passages in the system message: {keys}")
                answer = str(response.response.content)
                print(f"  answer  -> {answer}")
                nodes = tool_nodes or memory_nodes
                sources = cited(answer, [n.node.metadata["filename"] for n in nodes])
                where = "the search tool's results" if tool_nodes else "the memory block"
                print(f"  cites   -> {', '.join(sources) or 'nothing'} (from {where})")
        finally:
            await engine.dispose()
            await block.connection.aclose()
            await tools.retriever.connection.aclose()


if __name__ == "__main__":
    asyncio.run(main())
