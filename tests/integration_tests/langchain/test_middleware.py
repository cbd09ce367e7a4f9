"""AISearchContextMiddleware in a real `create_agent` loop against aisearch_local.

The agent's model is scripted (it reads the numbered context and tool results it is given and
cites them); retrieval, tenants, folders, failing instances and streaming are real HTTP.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

from aisearch import AISearchClient, InvalidRequestError
from langchain_aisearch import (
    AISearchContextMiddleware,
    AISearchInstanceWarning,
    AISearchMultiRetriever,
    AISearchRetriever,
    AISearchSearchTool,
    InstanceSearchError,
)

LIVE_ENV = ("CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_API_TOKEN", "AISEARCH_TEST_INSTANCE")
WEB_DOCS = {
    "https://example.com/milk/steaming.md": "Steaming milk for a flat white: stretch the milk "
    "briefly, then texture it to a glossy microfoam at 55 to 60 degrees.",
    "https://example.com/milk/latte-art.md": "Latte art needs microfoam and an espresso with "
    "crema; pour from height, then lower the pitcher to draw the heart.",
    "https://example.com/beans/resting.md": "Rest a light roast 10 to 14 days before brewing it "
    "as espresso; filter roasts need 5 to 7 days.",
}


@pytest.fixture(scope="module")
def web_instance(local: Any, make_instance: Callable[..., str]) -> str:
    """An instance whose item keys are URLs (a web crawler's), for the citations' `url`."""
    instance_id = make_instance("lc-mw-web")
    with AISearchClient(
        account_id=local.account_id, api_token=local.token, base_url=local.base_url
    ) as client:
        ids = [client.upload_item(instance_id, key, text).id for key, text in WEB_DOCS.items()]
        client.wait_until_indexed(instance_id, ids, timeout=120)
    return instance_id


@pytest.fixture(scope="module")
def local(request: pytest.FixtureRequest) -> Any:  # module scope: the web instance's server
    if all(os.environ.get(name) for name in LIVE_ENV):
        pytest.skip("needs the local server's instances")
    return request.getfixturevalue("local_server")


class Scripted(BaseChatModel):
    """A stand-in for a tool-calling model: `script(messages)` is its answer; calls are kept."""

    script: Any
    seen: list[list[BaseMessage]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Any, **kwargs: Any) -> Scripted:
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        self.seen.append(list(messages))
        return ChatResult(generations=[ChatGeneration(message=self.script(messages))])


def system_text(messages: list[BaseMessage]) -> str:
    first = messages[0]
    return first.text if isinstance(first, SystemMessage) else ""


def number_of(text: str, needle: str) -> int:
    """The `[n]` of the first passage (or tool result) whose header names `needle`."""
    match = re.search(rf"^\[(\d+)\] [^\n]*{re.escape(needle)}", text, flags=re.M)
    assert match is not None, text
    return int(match.group(1))


def cite_passage(needle: str) -> Callable[[list[BaseMessage]], AIMessage]:
    def script(messages: list[BaseMessage]) -> AIMessage:
        n = number_of(system_text(messages), needle)
        return AIMessage(f"Texture the milk to a glossy microfoam [{n}].")

    return script


def cite_first(messages: list[BaseMessage]) -> AIMessage:
    """Answer with the source of passage [1]."""
    header = re.search(r"^\[1\] (\S+)", system_text(messages), flags=re.M)
    return AIMessage(f"From {header.group(1) if header else 'nothing'} [1].")


def citations(message: BaseMessage) -> list[dict[str, Any]]:
    return [
        note
        for block in message.content_blocks
        if block["type"] == "text"
        for note in block.get("annotations", [])  # type: ignore[typeddict-item]
    ]


def ask(text: str) -> dict[str, Any]:
    return {"messages": [HumanMessage(text)]}


# ------------------------------------------------------------------- context, citations


def test_numbered_context_and_citations_with_the_right_urls(web_instance: str) -> None:
    model = Scripted(script=cite_passage("milk/steaming"))
    retriever = AISearchRetriever(instance_id=web_instance, k=3)
    agent = create_agent(model, middleware=[AISearchContextMiddleware(retriever)])
    state = agent.invoke(ask("How do I steam milk for a flat white?"))

    (request,) = model.seen
    assert "[1] https://example.com/" in system_text(request)
    n = number_of(system_text(request), "milk/steaming")
    answer = state["messages"][-1]
    (note,) = citations(answer)
    assert note["url"] == "https://example.com/milk/steaming.md"
    assert note["extras"]["source_index"] == n
    assert "glossy microfoam" in note["cited_text"]
    assert answer.text[note["start_index"] : note["end_index"]].endswith(f"[{n}]")
    docs = state["aisearch_documents"]
    assert docs[n - 1].metadata["source"] == "https://example.com/milk/steaming.md"
    # the context was given to the model call only: the history holds the question and answer
    assert [type(m) for m in state["messages"]] == [HumanMessage, AIMessage]
    assert state["aisearch_errors"] == []


def test_the_runtime_context_selects_the_tenant(lc_target: Any, local: Any) -> None:
    @dataclass
    class Tenant:
        instance_id: str
        user: str = "u1"

    model = Scripted(script=cite_first)
    retriever = AISearchRetriever(instance_id=lc_target.instance_id, k=2)
    middleware = AISearchContextMiddleware(retriever, require_target=True)
    agent = create_agent(model, middleware=[middleware], context_schema=Tenant)
    question = ask("How should oat milk foam for espresso drinks?")
    coffee = agent.invoke(question, context=Tenant(lc_target.instance_id))
    milk = agent.invoke(question, context=Tenant(lc_target.second_instance_id))

    assert coffee["messages"][-1].text != milk["messages"][-1].text
    assert milk["messages"][-1].text.startswith("From milk/")
    assert {d.metadata["instance_id"] for d in milk["aisearch_documents"]} == {"lc-milk"}
    assert {d.metadata["instance_id"] for d in coffee["aisearch_documents"]} == {
        lc_target.instance_id
    }
    (note,) = citations(milk["messages"][-1])
    assert note["title"] == milk["aisearch_documents"][0].metadata["source"]


def test_the_context_folder_filters_and_a_bad_target_is_named(lc_target: Any, local: Any) -> None:
    model = Scripted(script=cite_first)
    retriever = AISearchRetriever(instance_id=lc_target.instance_id, k=4)
    agent = create_agent(model, middleware=[AISearchContextMiddleware(retriever)])
    state = agent.invoke(ask("Why is my espresso sour?"), context={"folder": "troubleshooting/"})
    folders = {d.metadata["folder"] for d in state["aisearch_documents"]}
    assert folders == {"troubleshooting/"}

    with pytest.raises(InvalidRequestError, match=r"context\.folder: a folder ends with '/'"):
        agent.invoke(ask("Why sour?"), context={"folder": "troubleshooting"})
    with pytest.raises(InvalidRequestError, match=r"context\.instance_id"):
        agent.invoke(ask("Why sour?"), context={"instance_id": "../etc"})
    strict = create_agent(
        model, middleware=[AISearchContextMiddleware(retriever, require_target=True)]
    )
    with pytest.raises(InvalidRequestError, match="context: names no AI Search instance"):
        strict.invoke(ask("Why sour?"), context={"user": "u1"})


# ------------------------------------------------------------------- failing instance


def test_a_failing_instance_is_reported_not_hidden(lc_target: Any, local: Any) -> None:
    second = lc_target.second_instance_id
    local.set_fault(second, status=503)
    model = Scripted(script=cite_first)
    retriever = AISearchMultiRetriever(instance_ids=[lc_target.instance_id], k=3)
    agent = create_agent(model, middleware=[AISearchContextMiddleware(retriever)])
    with pytest.warns(AISearchInstanceWarning, match=second):
        state = agent.invoke(
            ask("espresso grind"), context={"instance_ids": [lc_target.instance_id, second]}
        )
    (error,) = state["aisearch_errors"]
    assert error["instance_id"] == second and "503" in str(error)
    assert state["aisearch_documents"]
    assert all(
        d.metadata["instance_id"] == lc_target.instance_id for d in state["aisearch_documents"]
    )

    strict = AISearchMultiRetriever(instance_ids=[second], on_instance_error="raise")
    agent = create_agent(model, middleware=[AISearchContextMiddleware(strict)])
    with pytest.raises(InstanceSearchError, match=second):
        agent.invoke(
            ask("espresso grind"), context={"instance_ids": [lc_target.instance_id, second]}
        )


async def test_astream_events_show_the_retrieval_and_the_failed_instance(
    lc_target: Any, local: Any
) -> None:
    second = lc_target.second_instance_id
    local.set_fault(second, status=500)
    model = Scripted(script=cite_first)
    retriever = AISearchMultiRetriever(instance_ids=[lc_target.instance_id, second], k=3)
    middleware = AISearchContextMiddleware(retriever)
    agent = create_agent(model, middleware=[middleware])
    events: list[dict[str, Any]] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async for event in agent.astream_events(ask("espresso grind"), version="v2"):
            events.append(event)
    custom = [e for e in events if e["event"] == "on_custom_event"]
    assert [e["name"] for e in custom] == ["aisearch_instance_error"]
    assert custom[0]["data"]["instance_id"] == second
    assert any(e["event"] == "on_chat_model_end" for e in events)
    assert any(issubclass(w.category, AISearchInstanceWarning) for w in caught)
    end = [e for e in events if e["event"] == "on_chain_end" and e["name"] == "LangGraph"]
    assert citations(end[-1]["data"]["output"]["messages"][-1])
    # the async path: the retriever's sync client was never built
    assert retriever._clients._sync is None


async def test_ainvoke_and_astream_cite(lc_target: Any, local: Any) -> None:
    model = Scripted(script=cite_first)
    retriever = AISearchRetriever(instance_id=lc_target.second_instance_id, k=2)
    agent = create_agent(model, middleware=[AISearchContextMiddleware(retriever)])
    state = await agent.ainvoke(ask("latte art"))
    assert citations(state["messages"][-1])[0]["title"].startswith("milk/")
    updates = [u async for u in agent.astream(ask("latte art"), stream_mode="updates")]
    (model_update,) = [u for u in updates if "model" in u]
    assert citations(model_update["model"]["messages"][-1])
    assert model_update["model"]["aisearch_documents"]
    assert retriever._clients._sync is None


# ------------------------------------------------------------------- when to retrieve


def search_then_cite(tool_name: str) -> Callable[[list[BaseMessage]], AIMessage]:
    """Call `tool_name` once, then cite the context's [1] and the tool's first result."""

    def script(messages: list[BaseMessage]) -> AIMessage:
        results = [m for m in messages if isinstance(m, ToolMessage)]
        if not results:
            call = {"name": tool_name, "args": {"query": "latte art pitcher"}, "id": "c1"}
            return AIMessage("", tool_calls=[call])
        n = int(re.match(r"\[(\d+)\]", results[-1].text).group(1))  # type: ignore[union-attr]
        context = " [1]" if "[1]" in system_text(messages) else ""
        return AIMessage(f"Pour from height [{n}].{context}")

    return script


@pytest.mark.parametrize("when", ["every_turn", "first_turn"])
def test_every_turn_and_first_turn(lc_target: Any, local: Any, when: str) -> None:
    tool = AISearchSearchTool(
        retriever=AISearchRetriever(instance_id=lc_target.second_instance_id, k=2)
    )
    model = Scripted(script=search_then_cite(tool.name))
    retriever = AISearchRetriever(instance_id=lc_target.instance_id, k=3)
    middleware = AISearchContextMiddleware(retriever, retrieve=when)  # type: ignore[arg-type]
    agent = create_agent(model, tools=[tool], middleware=[middleware])
    state = agent.invoke(ask("How do I pull a good espresso?"))

    first, second = model.seen
    context = state["aisearch_documents"][:3]
    queries = {d.metadata["search_query"] for d in context}
    if when == "every_turn":  # retrieved again after the tool call, with its argument
        assert queries == {"How do I pull a good espresso? latte art pitcher"}
    else:  # the first call's context, reused
        assert queries == {"How do I pull a good espresso?"}
        assert system_text(second) == system_text(first)
    # the tool's results are numbered after the context in the model's view only
    tool_view = next(m for m in second if isinstance(m, ToolMessage))
    assert tool_view.text.startswith("[4] milk/")
    stored = next(m for m in state["messages"] if isinstance(m, ToolMessage))
    assert stored.text.startswith("[1] milk/")
    notes = {n["extras"]["source_index"]: n for n in citations(state["messages"][-1])}
    assert set(notes) == {1, 4}
    assert notes[4]["title"] == stored.artifact[0].metadata["source"]
    assert notes[1]["title"] == context[0].metadata["source"]
    assert state["aisearch_documents"][3:] == stored.artifact


def test_on_request_gives_the_model_a_search_tool(lc_target: Any, local: Any) -> None:
    retriever = AISearchRetriever(instance_id=lc_target.instance_id, k=2)
    middleware = AISearchContextMiddleware(retriever, retrieve="on_request")
    model = Scripted(script=search_then_cite("search_knowledge_base"))
    agent = create_agent(model, middleware=[middleware])
    state = agent.invoke(
        ask("How do I pour latte art?"), context={"instance_id": lc_target.second_instance_id}
    )
    first, _ = model.seen
    assert not system_text(first)  # no context unless the model asks
    result = next(m for m in state["messages"] if isinstance(m, ToolMessage))
    assert result.name == "search_knowledge_base" and result.text.startswith("[1] milk/")
    assert all(isinstance(d, Document) for d in result.artifact)
    (note,) = citations(state["messages"][-1])
    assert note["extras"]["source_index"] == 1
    assert note["title"] == result.artifact[0].metadata["source"]
    assert state["aisearch_documents"] == result.artifact


# ------------------------------------------------------------------- a real model


@pytest.mark.skipif(
    not os.environ.get("AISEARCH_AGENT_MODEL"),
    reason="set AISEARCH_AGENT_MODEL (e.g. openai:gpt-4.1-mini) and its provider's key",
)
async def test_a_real_model_cites_the_context(lc_target: Any) -> None:
    from langchain.chat_models import init_chat_model

    model = init_chat_model(os.environ["AISEARCH_AGENT_MODEL"], temperature=0)
    retriever = AISearchRetriever(instance_id=lc_target.instance_id, k=4)
    agent = create_agent(model, middleware=[AISearchContextMiddleware(retriever)])
    state = await agent.ainvoke(ask("How long should a light roast rest before espresso?"))
    notes = citations(state["messages"][-1])
    assert notes, state["messages"][-1].text
    sources = {d.metadata["source"] for d in state["aisearch_documents"]}
    assert {n["title"] for n in notes} <= sources


def test_on_request_shows_a_service_error_to_the_model_and_raises_a_bad_context(
    lc_target: Any, local: Any
) -> None:
    second = lc_target.second_instance_id
    local.set_fault(second, status=503)

    def script(messages: list[BaseMessage]) -> AIMessage:
        results = [m for m in messages if isinstance(m, ToolMessage)]
        if not results:
            call = {"name": "search_knowledge_base", "args": {"query": "latte"}, "id": "c1"}
            return AIMessage("", tool_calls=[call])
        return AIMessage(f"The search failed: {results[-1].text}")

    retriever = AISearchRetriever(instance_id=lc_target.instance_id, k=2, max_retries=0)
    middleware = AISearchContextMiddleware(retriever, retrieve="on_request")
    agent = create_agent(Scripted(script=script), middleware=[middleware])
    state = agent.invoke(ask("latte art?"), context={"instance_id": second})
    result = next(m for m in state["messages"] if isinstance(m, ToolMessage))
    assert result.status == "error" and "AI Search error" in result.text and "503" in result.text
    assert "The search failed" in state["messages"][-1].text
    with pytest.raises(InvalidRequestError, match=r"context\.folder"):
        agent.invoke(ask("latte art?"), context={"folder": "milk"})


def test_the_context_namespace_selects_the_instance_in_it(
    local: Any, server_http: Any, make_instance: Callable[..., str]
) -> None:
    created = server_http.post("/ai-search/namespaces", json={"name": "lc-mw-tenants"})
    assert created.status_code < 300, created.text
    make_instance("acme", namespace="lc-mw-tenants")
    with AISearchClient(
        account_id=local.account_id, api_token=local.token, base_url=local.base_url
    ) as client:
        item = client.upload_item(
            "acme",
            "acme/returns.md",
            "Returns of unopened coffee bags are accepted for 30 days.",
            namespace="lc-mw-tenants",
        )
        client.wait_until_indexed("acme", [item.id], namespace="lc-mw-tenants", timeout=60)
    retriever = AISearchRetriever(instance_id="placeholder", k=2)
    agent = create_agent(
        Scripted(script=cite_first), middleware=[AISearchContextMiddleware(retriever)]
    )
    state = agent.invoke(
        ask("Can I return coffee bags?"),
        context={"namespace": "lc-mw-tenants", "instance_id": "acme"},
    )
    assert [d.metadata["source"] for d in state["aisearch_documents"]] == ["acme/returns.md"]
    assert state["messages"][-1].text == "From acme/returns.md [1]."
