from __future__ import annotations

import json

import httpx
import pytest
from langchain_core.load import dumpd
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    ChatMessage,
    HumanMessage,
    SystemMessage,
)
from pydantic import ValidationError

from aisearch import StreamInterruptedError
from langchain_aisearch import ChatAISearch, sources_to_documents

from .conftest import TOKEN, Recorder, completion, make_clients, sse_body


def _chat_server(sse: bytes | None = None):
    def respond(request: httpx.Request, body):
        if body.get("stream"):
            return httpx.Response(
                200,
                content=sse or sse_body(["Grind ", "fine [1]."]),
                headers={"content-type": "text/event-stream"},
            )
        return httpx.Response(200, json=completion())

    recorder = Recorder(respond)
    sync, asyncc = make_clients(recorder)
    return recorder, sync, asyncc


def test_invoke_maps_answer_metadata_usage_and_request():
    recorder, sync, _ = _chat_server()
    chat = ChatAISearch(instance_id="docs", client=sync, max_tokens=50, temperature=0.2, k=3)
    msg = chat.invoke(
        [
            SystemMessage("be brief"),
            ChatMessage(role="developer", content="cite"),
            HumanMessage("grind?"),
            AIMessage("which drink?"),
            HumanMessage("espresso"),
        ],
        stop=["END"],
    )
    assert msg.content == "Grind fine [1]."
    assert msg.response_metadata["model_name"] == "@cf/test/model"
    assert msg.response_metadata["finish_reason"] == "stop"
    assert msg.response_metadata["model_provider"] == "aisearch"
    assert [s["id"] for s in msg.response_metadata["sources"]] == ["chunk-1", "chunk-2"]
    assert {s["instance_id"] for s in msg.response_metadata["sources"]} == {"docs"}
    assert msg.usage_metadata == {"input_tokens": 11, "output_tokens": 5, "total_tokens": 16}
    (body,) = recorder.bodies
    assert [m["role"] for m in body["messages"]] == [
        "system",
        "developer",
        "user",
        "assistant",
        "user",
    ]
    assert body["max_tokens"] == 50
    assert body["temperature"] == 0.2
    assert body["stop"] == ["END"]
    assert body["ai_search_options"] == {"retrieval": {"max_num_results": 3}}
    assert "model" not in body  # the instance's default model applies
    assert recorder.paths[0].endswith("/instances/docs/chat/completions")


def test_search_cache_and_langchain_cache_are_separate():
    # `cache` is LangChain's LLM cache on a chat model; the AI Search similarity cache is
    # `search_cache` (a `cache={...}` used to replace LangChain's field and break invoke)
    from langchain_core.caches import InMemoryCache

    recorder, sync, _ = _chat_server()
    chat = ChatAISearch(
        instance_id="docs",
        client=sync,
        search_cache={"enabled": False},
        custom_metadata={"team": "docs"},
        keyword_match_mode="exact_match",
        cache=InMemoryCache(),
    )
    first = chat.invoke("grind?")
    again = chat.invoke("grind?")  # answered by LangChain's cache: no second request
    assert first.content == again.content == "Grind fine [1]."
    (body,) = recorder.bodies
    assert body["ai_search_options"] == {
        "retrieval": {"keyword_match_mode": "and"},
        "cache": {"enabled": False},
        "custom_metadata": {"team": "docs"},
    }
    uncached = ChatAISearch(instance_id="docs", client=sync, cache=False)
    uncached.invoke("grind?")
    uncached.invoke("grind?")
    assert len(recorder.bodies) == 3
    with pytest.raises(ValidationError, match="search_cache"):
        ChatAISearch(instance_id="docs", search_cache={"enabled": "sometimes"})


def test_model_override_per_call_and_ls_params():
    recorder, sync, _ = _chat_server()
    chat = ChatAISearch(instance_id="docs", client=sync, model="@cf/a")
    chat.invoke("hi", model="@cf/b")
    assert recorder.bodies[0]["model"] == "@cf/b"
    assert chat._get_ls_params(model="@cf/b")["ls_model_name"] == "@cf/b"
    assert chat._get_ls_params()["ls_provider"] == "aisearch"
    assert ChatAISearch(instance_id="d")._get_ls_params()["ls_model_name"] == "instance-default"


def test_citations_in_content_blocks():
    _, sync, _ = _chat_server()
    msg = ChatAISearch(instance_id="docs", client=sync).invoke("grind?")
    (block,) = msg.content_blocks
    (citation,) = block["annotations"]
    assert citation["title"] == "doc-1.md"
    assert citation["extras"]["chunk_id"] == "chunk-1"
    assert msg.content[citation["start_index"] : citation["end_index"]] == "Grind fine [1]"
    assert [d.id for d in sources_to_documents(msg)] == ["chunk-1", "chunk-2"]


def test_v1_output_has_citations_in_content():
    _, sync, _ = _chat_server()
    msg = ChatAISearch(instance_id="docs", client=sync, output_version="v1").invoke("x")
    assert msg.content[0]["annotations"][0]["type"] == "citation"


def test_namespace_chat_uses_instance_ids():
    recorder, sync, _ = _chat_server()
    ChatAISearch(instance_ids=["a", "b"], client=sync).invoke("hi")
    assert recorder.bodies[0]["ai_search_options"]["instance_ids"] == ["a", "b"]
    assert recorder.paths[0].endswith("/ai-search/namespaces/default/chat/completions")


def test_stream_order_sources_first_usage_once_last_chunk():
    _, sync, _ = _chat_server()
    chunks = list(ChatAISearch(instance_id="docs", client=sync).stream("grind?"))
    assert chunks[0].content == ""
    assert chunks[0].response_metadata["sources"][0]["id"] == "chunk-1"
    texts = [c.content for c in chunks if c.content]
    assert texts == ["Grind ", "fine [1]."]
    first_text = next(i for i, c in enumerate(chunks) if c.content)
    assert first_text > 0
    assert sum(1 for c in chunks if c.usage_metadata) == 1
    assert sum(1 for c in chunks if c.response_metadata.get("model_name")) == 1
    assert chunks[-1].chunk_position == "last"
    full = chunks[0]
    for c in chunks[1:]:
        full = full + c
    assert isinstance(full, AIMessageChunk)
    assert full.usage_metadata == {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10}
    assert full.response_metadata["finish_reason"] == "stop"
    assert full.content_blocks[0]["annotations"][0]["extras"]["source_index"] == 1


@pytest.mark.parametrize("version", ["v1", "v3-events"])
def test_stream_citations_survive_v1_aggregation(version):
    _, sync, _ = _chat_server()
    if version == "v1":
        chunks = list(
            ChatAISearch(instance_id="docs", client=sync, output_version="v1").stream("x")
        )
        full = chunks[0]
        for c in chunks[1:]:
            full = full + c
        blocks = full.content
    else:
        stream = ChatAISearch(instance_id="docs", client=sync).stream_events("x", version="v3")
        list(stream)
        blocks = stream.output.content_blocks
    (block,) = blocks
    assert block["text"] == "Grind fine [1]."
    (citation,) = block["annotations"]
    assert citation["extras"]["chunk_id"] == "chunk-1"
    assert block["text"][citation["start_index"] : citation["end_index"]] == "Grind fine [1]"


async def test_astream_truncated_raises():
    _, _, asyncc = _chat_server(sse_body(["partial"], done=False))
    chat = ChatAISearch(instance_id="docs", async_client=asyncc)
    seen = []
    with pytest.raises(StreamInterruptedError):
        async for c in chat.astream("x"):
            seen.append(c)
    assert any(c.content == "partial" for c in seen)


def test_streaming_true_invoke_aggregates_stream():
    recorder, sync, _ = _chat_server()
    msg = ChatAISearch(instance_id="docs", client=sync, streaming=True).invoke("grind?")
    assert recorder.bodies[0]["stream"] is True
    assert msg.content == "Grind fine [1]."
    assert msg.response_metadata["sources"][0]["id"] == "chunk-1"
    assert msg.usage_metadata["total_tokens"] == 10
    assert msg.content_blocks[0]["annotations"][0]["extras"]["source_index"] == 1


def test_stream_truncated_raises():
    _, sync, _ = _chat_server(sse_body(["partial"], done=False))
    with pytest.raises(StreamInterruptedError):
        list(ChatAISearch(instance_id="docs", client=sync).stream("x"))


async def test_ainvoke_and_abatch():
    recorder, _, asyncc = _chat_server()
    chat = ChatAISearch(instance_id="docs", async_client=asyncc)
    results = await chat.abatch(["a", "b", "c"])
    assert [r.content for r in results] == ["Grind fine [1]."] * 3
    assert len(recorder.requests) == 3


def test_validation():
    with pytest.raises(ValidationError, match="not both"):
        ChatAISearch(instance_id="a", instance_ids=["b"])
    with pytest.raises(ValidationError, match="instance_ids"):
        ChatAISearch(instance_ids=[f"i{n}" for n in range(11)])
    with pytest.raises(ValidationError, match="maxtokens"):
        ChatAISearch(instance_id="a", maxtokens=3)
    with pytest.raises(ValueError, match="instance_id or instance_ids"):
        ChatAISearch().invoke("x")


@pytest.mark.parametrize(
    ("field", "value"),
    [("k", True), ("k", 0), ("max_tokens", True), ("temperature", True), ("temperature", 9)],
)
def test_numeric_fields_reject_bools_and_out_of_range(field, value):
    with pytest.raises(ValidationError, match=field):
        ChatAISearch(instance_id="a", **{field: value})
    chat = ChatAISearch(instance_id="a")
    with pytest.raises(ValidationError, match=field):
        setattr(chat, field, value)  # validate_assignment


def test_chat_secret_not_serialised():
    chat = ChatAISearch(instance_id="a", api_token=TOKEN)
    assert TOKEN not in repr(chat)
    assert TOKEN not in json.dumps(dumpd(chat))


def test_sources_chunk_emitted_even_without_sources_event():
    body = sse_body(["hi"]).split(b"\n\n", 1)[1]  # drop the chunks event
    _, sync, _ = _chat_server(body)
    chunks = list(ChatAISearch(instance_id="docs", client=sync).stream("x"))
    assert chunks[0].response_metadata["sources"] == []
    assert chunks[1].content == "hi"


def test_tokens_reach_callbacks_in_order():
    from langchain_core.callbacks import BaseCallbackHandler

    class Tokens(BaseCallbackHandler):
        def __init__(self):
            self.tokens = []

        def on_llm_new_token(self, token, **kwargs):
            self.tokens.append(token)

    _, sync, _ = _chat_server()
    handler = Tokens()
    list(ChatAISearch(instance_id="docs", client=sync).stream("x", config={"callbacks": [handler]}))
    assert [t for t in handler.tokens if t] == ["Grind ", "fine [1]."]


def _says_what_to_use(exc: pytest.ExceptionInfo[NotImplementedError]) -> None:
    text = str(exc.value)
    assert "no tool calling" in text
    assert "from langchain_aisearch import AISearchAnswerTool, AISearchSearchTool" in text


def test_bind_tools_and_structured_output_say_what_to_use_instead():
    chat = ChatAISearch(instance_id="docs")
    with pytest.raises(NotImplementedError, match=r"cannot call tools") as exc:
        chat.bind_tools([])
    _says_what_to_use(exc)
    with pytest.raises(NotImplementedError, match=r"cannot return structured output") as exc:
        chat.with_structured_output(dict)
    _says_what_to_use(exc)


def test_create_agent_with_tools_says_what_to_use_instead():
    agents = pytest.importorskip("langchain.agents")
    from langchain_core.tools import tool

    @tool
    def echo(text: str) -> str:
        """Echo the text."""
        return text

    agent = agents.create_agent(ChatAISearch(instance_id="docs"), tools=[echo])
    with pytest.raises(NotImplementedError, match=r"cannot call tools") as exc:
        agent.invoke({"messages": [HumanMessage("hi")]})
    _says_what_to_use(exc)
