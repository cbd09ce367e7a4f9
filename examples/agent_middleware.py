"""A `create_agent` agent with AI Search retrieval middleware and tools, citing its sources.

Mirrors notebooks/07_agent_middleware_and_mcp.ipynb, in three parts:

1. One agent, two tenants: `AISearchContextMiddleware` retrieves from the instance the
   runtime context names (`context=Tenant(instance_id=...)`) before the model is called, and
   the answer's `[n]` markers become standard `Citation` annotations.
2. The middleware plus `AISearchSearchTool` (passages) and `AISearchAnswerTool` (AI Search's
   own answer): every source the model sees has one number, and the answer cites all three.
3. The same agent with AI Search's MCP endpoint (`/mcp` of a public endpoint, through
   langchain-mcp-adapters) in place of the REST tools, streamed with `astream_events`.

The model is a small scripted stand-in (no LLM, no network) unless `AISEARCH_AGENT_MODEL`
names a real one for `init_chat_model` (e.g. `anthropic:claude-sonnet-4-5`, with
`ANTHROPIC_API_KEY` and `pip install langchain-anthropic`); the agent is the same either way.

Needs `pip install "aisearch-py[examples]"` (LangChain, langchain-mcp-adapters and the local
server). Nothing to start first: without Cloudflare credentials the script starts its own
local AI Search server (`aisearch_local` on 127.0.0.1, a free port, a temporary data
directory) and stops it at the end; `make serve` is not needed.

    python examples/agent_middleware.py
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass
from typing import Any

from _target import coffee_target, live_instances
from langchain.agents import create_agent
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_mcp_adapters.client import MultiServerMCPClient

from langchain_aisearch import (
    AISearchAnswerTool,
    AISearchContextMiddleware,
    AISearchRetriever,
    AISearchSearchTool,
    ChatAISearch,
)

TENANTS = {"beans-and-roasting": ("beans/", "roasting/"), "brewing-and-gear": ("brewing/",)}
SYSTEM = (
    "You answer questions about coffee. Use the context and your tools; cite every passage "
    "you use by its number in square brackets, e.g. [1]."
)


@dataclass
class Tenant:
    """The agent's runtime context: which AI Search instance holds this customer's documents."""

    instance_id: str


# ----------------------------------------------------------------------- the model

_STOP = frozenset(
    {"a", "an", "and", "are", "as", "at", "be", "before", "by", "can", "do", "does", "for"}
    | {"from", "how", "i", "in", "is", "it", "my", "of", "on", "or", "should", "so", "than"}
    | {"that", "the", "this", "to", "what", "when", "which", "why", "with", "you", "your"}
)


def keywords(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z][a-z-]{2,}", text.lower()) if w not in _STOP}


def best_claim(question: str, text: str) -> tuple[int, str] | None:
    """`(n, sentence)`: the numbered passage of `text` sharing most words with the question."""
    found = []
    for number, body in re.findall(r"^\[(\d+)\] [^\n]*\n(.*?)(?=^\[\d+\] |\Z)", text, re.M | re.S):
        sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", body)]
        claims = [s for s in sentences if len(s) > 30 and s[0].isupper() and s[-1] != "?"]
        for sentence in claims:
            found.append((len(keywords(question) & keywords(sentence)), int(number), sentence))
    if not found:
        return None
    _, n, sentence = max(found, key=lambda f: f[0])
    return n, sentence.rstrip(".")


class ScriptedAgentModel(BaseChatModel):
    """A stand-in for a tool-calling LLM.

    With tools and no tool result yet, it calls every tool with the user's question; then it
    answers with one sentence from the context and from each tool result, each with its `[n]`.
    """

    tool_names: tuple[str, ...] = ()

    @property
    def _llm_type(self) -> str:
        return "scripted-agent"

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedAgentModel:  # noqa: ARG002
        names = tuple(t.name if hasattr(t, "name") else t["name"] for t in tools)
        return self.model_copy(update={"tool_names": names})

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: Any = None,  # noqa: ARG002
        run_manager: Any = None,  # noqa: ARG002
        **kwargs: Any,  # noqa: ARG002
    ) -> ChatResult:
        last_user = max(i for i, m in enumerate(messages) if isinstance(m, HumanMessage))
        question = messages[last_user].text
        results = [m for m in messages[last_user:] if isinstance(m, ToolMessage)]
        if self.tool_names and not results:
            calls = [
                {"name": name, "args": {"query": question}, "id": f"call-{i}"}
                for i, name in enumerate(self.tool_names)
            ]
            return ChatResult(generations=[ChatGeneration(message=AIMessage("", tool_calls=calls))])
        parts = []
        context = best_claim(question, messages[0].text) if messages[0].type == "system" else None
        if context:
            parts.append(f"{context[1]} [{context[0]}].")
        for result in results:
            text = result.text
            claim = best_claim(question, text)
            if claim:  # passages: "[n] source (score ...)\ntext"
                parts.append(f"{claim[1]} [{claim[0]}].")
            elif "Sources:" in text:  # AI Search's answer, its markers already numbered for us
                parts.append(f"AI Search answers: {text.split(chr(10))[0]}")
        answer = " ".join(parts) or "The knowledge base has nothing on this."
        return ChatResult(generations=[ChatGeneration(message=AIMessage(answer))])


def pick_model() -> BaseChatModel:
    """`AISEARCH_AGENT_MODEL` through `init_chat_model` when set, else the scripted stand-in."""
    name = os.environ.get("AISEARCH_AGENT_MODEL")
    if not name:
        return ScriptedAgentModel()
    from langchain.chat_models import init_chat_model

    return init_chat_model(name, temperature=0)


def show_citations(message: BaseMessage, documents: list[Any]) -> None:
    print(f"   answer: {message.text}")
    for block in message.content_blocks:
        for note in dict(block).get("annotations", []):
            n = note["extras"]["source_index"]
            where = note.get("url") or note.get("title")
            instance = documents[n - 1].metadata.get("instance_id") or "the MCP endpoint's"
            print(f"   citation [{n}] -> {where} ({instance})")


# ----------------------------------------------------------------------- the parts


def tenants(target: Any, model: BaseChatModel) -> None:
    print("1. One agent, two tenants (the runtime context picks the instance)")
    retriever = AISearchRetriever(instance_id=target.instance, k=3, **target.connection)
    middleware = AISearchContextMiddleware(retriever, require_target=True, max_chunks=3)
    agent = create_agent(
        model, system_prompt=SYSTEM, middleware=[middleware], context_schema=Tenant
    )
    names = list(TENANTS) if not target.live else (live_instances() * 2)[:2]
    question = "How long should coffee rest after roasting before I brew it?"
    for name in names:
        state = agent.invoke({"messages": [HumanMessage(question)]}, context=Tenant(name))
        print(f"  tenant {name}:")
        show_citations(state["messages"][-1], state["aisearch_documents"])


def with_tools(target: Any, model: BaseChatModel) -> None:
    print("\n2. Middleware + search tool + answer tool, one numbering for every source")
    connection = {"instance_id": target.instance, **target.connection}
    tools = [
        AISearchSearchTool(retriever=AISearchRetriever(k=2, **connection)),
        AISearchAnswerTool(chat=ChatAISearch(**connection)),
    ]
    middleware = AISearchContextMiddleware(AISearchRetriever(k=2, **connection))
    agent = create_agent(model, tools=tools, system_prompt=SYSTEM, middleware=[middleware])
    question = "Why does my espresso taste sour?"
    state = agent.invoke({"messages": [HumanMessage(question)]})
    for message in state["messages"]:
        if isinstance(message, AIMessage) and message.tool_calls:
            print("   model calls:", ", ".join(c["name"] for c in message.tool_calls))
    show_citations(state["messages"][-1], state["aisearch_documents"])
    kinds = ["context"] * 2 + [
        f"tool {m.name}"
        for m in state["messages"]
        if isinstance(m, ToolMessage)
        for _ in m.artifact
    ]
    print("   sources in number order:", ", ".join(f"[{n}] {k}" for n, k in enumerate(kinds, 1)))


async def over_mcp(target: Any, model: BaseChatModel) -> None:
    print("\n3. The same agent over AI Search's MCP endpoint (langchain-mcp-adapters)")
    if target.live:
        print("   skipped in live mode: it would switch on your instance's public endpoint")
        return
    instance = target.client.update_instance(
        target.instance, public_endpoint_params={"enabled": True}
    )
    base = target.client.base_url.removesuffix("/client/v4")
    mcp_url = f"{base}/_public/{instance.public_endpoint_id}/mcp"
    # on Cloudflare: "https://<public_endpoint_id>.search.ai.cloudflare.com/mcp"
    mcp = MultiServerMCPClient({"coffee": {"transport": "streamable_http", "url": mcp_url}})
    tools = await mcp.get_tools()  # one tool: search
    print("   MCP tools:", [t.name for t in tools])
    connection = {"instance_id": target.instance, **target.connection}
    middleware = AISearchContextMiddleware(AISearchRetriever(k=2, **connection))
    agent = create_agent(model, tools=tools, system_prompt=SYSTEM, middleware=[middleware])
    question = "What grind size should I use for a V60 pour-over?"
    seen: list[str] = []
    state: dict[str, Any] = {}
    async for event in agent.astream_events({"messages": [HumanMessage(question)]}, version="v2"):
        kind, name = event["event"], event["name"]
        if kind in ("on_retriever_end", "on_tool_end", "on_chat_model_end"):
            seen.append(f"{kind.removeprefix('on_').removesuffix('_end')}:{name}")
        if kind == "on_chain_end" and name == "LangGraph":
            state = event["data"]["output"]
    print("   events:", " -> ".join(seen))
    show_citations(state["messages"][-1], state["aisearch_documents"])


def main() -> None:
    model = pick_model()
    scripted = isinstance(model, ScriptedAgentModel)
    print("model:", type(model).__name__, "(scripted stand-in)" if scripted else "", "\n")
    with coffee_target({"coffee": None, **TENANTS}) as target:
        tenants(target, model)
        with_tools(target, model)
        asyncio.run(over_mcp(target, model))


if __name__ == "__main__":
    main()
