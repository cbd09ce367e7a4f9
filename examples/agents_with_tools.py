"""AI Search as agent tools, in LangChain and LlamaIndex, driven by a scripted model.

Mirrors notebooks/03_agents_with_tools.ipynb. AI Search itself cannot call tools, so it is the
*tool* here; the agent's model is a small scripted stand-in (no LLM, no network) that asks for
the tool once and then answers from what the tool returned. Swap in any tool-calling chat model
(ChatOpenAI, ChatAnthropic, a local Ollama model...) and the rest stays the same.

Needs `pip install "aisearch-py[examples]"`: both frameworks, `langchain` (for `create_agent`)
and the local server. Nothing to start first: without Cloudflare credentials the script starts
its own local AI Search server (`aisearch_local` on 127.0.0.1, a free port, a temporary data
directory) and stops it at the end; `make serve` is not needed.

    python examples/agents_with_tools.py
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from _target import coffee_target
from langchain.agents import create_agent
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import create_retriever_tool
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, TextBlock, ToolCallBlock
from llama_index.core.llms import MessageRole
from llama_index.core.llms.mock import MockFunctionCallingLLM

from langchain_aisearch import AISearchRetriever, AISearchSearchTool
from llamaindex_aisearch import AISearchToolSpec

QUESTION = "How long should I rest a light roast before brewing it as espresso?"


def answer_from(tool_output: str) -> str:
    """What the scripted model says: the figures of the passage that has most, with its source."""
    passages = re.split(r"\n\s*\n(?=\[\d+\] )", tool_output.strip())

    def figures(passage: str) -> list[str]:
        rows = [line.strip() for line in passage.splitlines() if line.strip().startswith("|")]
        return [row for row in rows if any(c.isdigit() for c in row)]

    best = max(passages, key=lambda passage: len(figures(passage)))
    header, _, body = best.partition("\n")
    found = figures(best)
    return f"According to {header}: " + ("; ".join(found[:3]) or " ".join(body.split())[:300])


class ScriptedToolCaller(BaseChatModel):
    """A stand-in for a tool-calling LLM: call `tool_name` once, then answer from its result."""

    tool_name: str

    @property
    def _llm_type(self) -> str:
        return "scripted-tool-caller"

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedToolCaller:  # noqa: ARG002
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: Any = None,  # noqa: ARG002
        run_manager: Any = None,  # noqa: ARG002
        **kwargs: Any,  # noqa: ARG002
    ) -> ChatResult:
        results = [m for m in messages if isinstance(m, ToolMessage)]
        if not results:
            question = next(m.content for m in reversed(messages) if isinstance(m, HumanMessage))
            call = {"name": self.tool_name, "args": {"query": question}, "id": "call-1"}
            message = AIMessage(content="", tool_calls=[call])
        else:
            message = AIMessage(content=answer_from(str(results[-1].content)))
        return ChatResult(generations=[ChatGeneration(message=message)])


def scripted_llamaindex_llm() -> MockFunctionCallingLLM:
    """The same script for LlamaIndex: call the `search` tool once, then answer from it."""

    def respond(messages: list[ChatMessage], **kwargs: Any) -> ChatMessage:  # noqa: ARG001
        results = [m for m in messages if m.role == MessageRole.TOOL]
        if not results:
            question = next(m.content for m in reversed(messages) if m.role == MessageRole.USER)
            call = ToolCallBlock(
                tool_call_id="call-1", tool_name="search", tool_kwargs={"query": question}
            )
            return ChatMessage(role=MessageRole.ASSISTANT, blocks=[call])
        text = answer_from(str(results[-1].content))
        return ChatMessage(role=MessageRole.ASSISTANT, blocks=[TextBlock(text=text)])

    return MockFunctionCallingLLM(response_generator=respond)


def langchain_agent(target: Any) -> None:
    retriever = AISearchRetriever(instance_id=target.instance, k=3, **target.connection)
    tool = AISearchSearchTool(retriever=retriever)
    agent = create_agent(ScriptedToolCaller(tool_name=tool.name), tools=[tool])
    result = agent.invoke({"messages": [{"role": "user", "content": QUESTION}]})
    print("LangChain agent (create_agent + AISearchSearchTool):")
    for message in result["messages"]:
        if isinstance(message, AIMessage) and message.tool_calls:
            call = message.tool_calls[0]
            print(f"  model   -> calls {call['name']}({call['args']})")
        elif isinstance(message, ToolMessage):
            sources = [doc.metadata["source"] for doc in message.artifact]
            print(f"  tool    -> {len(message.artifact)} documents as the artifact: {sources}")
        elif isinstance(message, AIMessage):
            print(f"  model   -> {message.content}")

    # Any LangChain retriever tool works too, e.g. the standard create_retriever_tool:
    standard = create_retriever_tool(retriever, "coffee_kb", "Search the coffee knowledge base.")
    text = standard.invoke({"query": "cold brew ratio"})
    print("  create_retriever_tool ->", " ".join(text.split())[:90], "...")


async def llamaindex_agent(target: Any) -> None:
    spec = AISearchToolSpec(instance_id=target.instance, similarity_top_k=3, **target.connection)
    tools = spec.to_tool_list()
    print("\nLlamaIndex agent (FunctionAgent + AISearchToolSpec):")
    print("  tools:", [t.metadata.name for t in tools])
    agent = FunctionAgent(tools=tools, llm=scripted_llamaindex_llm())
    handler = agent.run(user_msg=QUESTION)
    async for event in handler.stream_events():
        name = type(event).__name__
        if name == "ToolCall":
            print(f"  model   -> calls {event.tool_name}({event.tool_kwargs})")
        elif name == "ToolCallResult":
            sources = [n.node.metadata["source"] for n in event.tool_output.raw_output.source_nodes]
            print(f"  tool    -> {len(sources)} source nodes: {sources}")
    response = await handler
    print(f"  model   -> {response.response.content}")


def main() -> None:
    with coffee_target() as target:
        langchain_agent(target)
        asyncio.run(llamaindex_agent(target))


if __name__ == "__main__":
    main()
