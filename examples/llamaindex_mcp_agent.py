"""The LlamaIndex agent of llamaindex_agent_workflow.py, through AI Search's MCP endpoint.

Mirrors notebooks/09_llamaindex_mcp_agent.ipynb. Instead of the REST tools the agent takes its
tool from the instance's public MCP endpoint (``/mcp``: one tool, ``search``) through
llama-index-tools-mcp, and the memory block reads the same public endpoint: no account and no
API token anywhere in the agent. Each answer's ``[n]`` is mapped back to its source: the MCP
tool's structured result when the model called it in that turn, else the memory block's.

The model is a scripted stand-in unless ``AISEARCH_AGENT_MODEL`` names a real one
(``openai:gpt-4.1-mini`` ...; see examples/_agent_llm.py).

Needs `pip install "aisearch-py[examples]"`. Nothing to start first: without Cloudflare
credentials the script starts its own local AI Search server (127.0.0.1, a free port, a
temporary data directory) with the sample corpus, switches the instance's public endpoint on
and uses its ``http://127.0.0.1:PORT/_public/<id>`` URL. Against Cloudflare
(``CLOUDFLARE_ACCOUNT_ID``, ``CLOUDFLARE_API_TOKEN``, ``AISEARCH_DEMO_INSTANCE``) set
``AISEARCH_PUBLIC_ENDPOINT`` to the instance's public endpoint
(``https://<id>.search.ai.cloudflare.com``); without it the script says so and stops.

    python examples/llamaindex_mcp_agent.py
"""

from __future__ import annotations

import asyncio
import os
import re
from typing import Any

import httpx
from _agent_llm import agent_llm, cited
from _target import CoffeeTarget, coffee_target
from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent, ToolCall, ToolCallResult
from llama_index.core.memory import Memory
from llama_index.core.tools import FunctionTool
from llama_index.tools.mcp import BasicMCPClient, McpToolSpec
from mcp.types import CallToolResult
from sqlalchemy.ext.asyncio import create_async_engine

from llamaindex_aisearch import AISearchMemoryBlock

TURNS = (
    "How long should I rest a light roast before brewing it as espresso?",
    "What grind size should I use for a V60 pour-over? Look it up in the knowledge base.",
)
SYSTEM = (
    "You answer questions about coffee for a roastery's customers, only from the passages "
    "you are given. Cite every fact with the number of its passage, like [1]: the numbers of "
    "the search tool's results when you called it in this turn, else those of the AI Search "
    "passages in your context. Call the search tool when the user asks you to look something "
    "up or the passages do not answer."
)


def plan(question: str) -> tuple[str, dict[str, Any]] | None:
    """The scripted model's plan: "look it up" means a call of the MCP search tool."""
    if "Look it up" not in question:
        return None
    return "search", {"query": question.split("?")[0] + "?", "max_num_results": 3}


async def mcp_text(result: CallToolResult) -> str:
    """What the model reads of an MCP tool result: its text, not the result object's repr."""
    return "\n".join(part.text for part in result.content if part.type == "text")


def mcp_keys(result: CallToolResult) -> list[str]:
    """The item keys of an MCP search result, in its [n] order (its structured content)."""
    chunks = (result.structuredContent or {}).get("chunks", [])
    return [str((chunk.get("item") or {}).get("key") or chunk.get("id")) for chunk in chunks]


def public_endpoint(target: CoffeeTarget) -> str | None:
    """The public endpoint URL: switched on locally, ``AISEARCH_PUBLIC_ENDPOINT`` live."""
    if target.live:
        return os.environ.get("AISEARCH_PUBLIC_ENDPOINT") or None
    instance = target.client.update_instance(
        target.instance, public_endpoint_params={"enabled": True}
    )
    origin = target.client.base_url.removesuffix("/client/v4")
    return f"{origin}/_public/{instance.public_endpoint_id}"


async def run(url: str) -> None:
    llm, described = agent_llm(plan)
    print(f"model: {described}")
    print(f"MCP endpoint: {url}/mcp")
    async with httpx.AsyncClient(timeout=30) as http:
        spec = McpToolSpec(client=BasicMCPClient(f"{url}/mcp", http_client=http))
        tools = [
            FunctionTool.from_defaults(
                async_fn=tool.async_fn, tool_metadata=tool.metadata, async_callback=mcp_text
            )
            for tool in await spec.to_tool_list_async()
        ]
        print(f"MCP tools: {[t.metadata.name for t in tools]}")
        block = AISearchMemoryBlock(public_endpoint=url, similarity_top_k=3)  # no token
        agent = FunctionAgent(
            name="barista",
            description="Answers coffee questions from the roastery's knowledge base.",
            system_prompt=SYSTEM,
            tools=tools,
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
                tool_keys: list[str] = []
                async for event in handler.stream_events():
                    if isinstance(event, ToolCall) and not isinstance(event, ToolCallResult):
                        print(f"  model   -> calls MCP {event.tool_name}({event.tool_kwargs})")
                    elif isinstance(event, ToolCallResult):
                        tool_keys = mcp_keys(event.tool_output.raw_output)
                        first = event.tool_output.content.splitlines()[0]
                        print(f"  tool    -> {first} {tool_keys}")
                response = await handler
                memory_keys = [n.node.metadata["filename"] for n in block.last_source_nodes]
                print(f"  memory  -> {len(memory_keys)} passages in the system message")
                answer = str(response.response.content)
                print(f"  answer  -> {answer}")
                sources = cited(answer, tool_keys or memory_keys)
                where = "the MCP tool's results" if tool_keys else "the memory block"
                print(f"  cites   -> {', '.join(sources) or 'nothing'} (from {where})")
        finally:
            await engine.dispose()
            await block.connection.aclose()


def main() -> None:
    with coffee_target() as target:
        url = public_endpoint(target)
        if url is None:
            print("skipped: set AISEARCH_PUBLIC_ENDPOINT to the instance's public endpoint")
            return
        asyncio.run(run(re.sub(r"/+$", "", url)))


if __name__ == "__main__":
    main()
