"""AISearchMemoryBlock: numbered AI Search context in an agent's or chat engine's memory."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest
import pytest_asyncio
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, MessageRole, TextBlock, ToolCallBlock
from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.memory import Memory
from workflows import Context

from aisearch import AISearchClient, InvalidRequestError
from aisearch_local.testing import LocalServer
from llamaindex_aisearch import (
    AISearchConnection,
    AISearchInstanceErrorEvent,
    AISearchInstanceWarning,
    AISearchMemoryBlock,
    AISearchMemoryRetrievalEvent,
    AISearchToolSpec,
    InstanceFailureError,
    MemoryTargetRequest,
)

from .conftest import EventCollector

QUESTION = "How long should a pour-over brew take?"
TEA = "Green tea steeping: water at 80 degrees, three minutes, loose Sencha leaves."
TEA_QUESTION = "How hot should the water be for sencha green tea?"

pytestmark = pytest.mark.filterwarnings(
    # llama-index-workflows inspects the agent with inspect.getmembers, touching pydantic's
    # deprecated ``__fields__``/``__fields_set__`` (third-party; not our code path)
    "ignore::pydantic.warnings.PydanticDeprecationWarning:inspect"
)


@pytest.fixture(scope="module")
def tea_instance(make_instance: Callable[..., str], local_server: LocalServer) -> str:
    iid = make_instance()
    with AISearchClient(
        account_id=local_server.account_id,
        api_token=local_server.token,
        base_url=local_server.base_url,
    ) as client:
        client.upload_item(iid, "tea/sencha.txt", TEA, wait_for_completion=True)
    return iid


MakeMemory = Callable[..., Memory]


@pytest_asyncio.fixture
async def make_memory() -> AsyncIterator[MakeMemory]:
    """``Memory.from_defaults``, its in-memory SQLite chat store closed after the test."""
    made: list[Memory] = []

    def make(**kwargs: Any) -> Memory:
        memory = Memory.from_defaults(**kwargs)
        made.append(memory)
        return memory

    yield make
    for memory in made:
        engine = getattr(memory.sql_store, "_async_engine", None)
        if engine is not None:
            await engine.dispose()


class Recorder:
    """A scripted LLM that records the messages of every call and answers citing [1]."""

    def __init__(self, tool_first: bool = False) -> None:
        self.calls: list[list[ChatMessage]] = []
        self.tool_first = tool_first

    def __call__(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
        self.calls.append(list(messages))
        if self.tool_first and not any(m.role == MessageRole.TOOL for m in messages):
            question = next(m.content for m in reversed(messages) if m.role == MessageRole.USER)
            call = ToolCallBlock(
                tool_call_id="call-1", tool_name="search", tool_kwargs={"query": question}
            )
            return ChatMessage(role=MessageRole.ASSISTANT, blocks=[call])
        return ChatMessage(role=MessageRole.ASSISTANT, blocks=[TextBlock(text="See [1].")])

    def system_text(self, call: int = -1) -> str:
        return "\n".join(m.content or "" for m in self.calls[call] if m.role == MessageRole.SYSTEM)


def _llm(recorder: Recorder) -> MockFunctionCallingLLM:
    return MockFunctionCallingLLM(response_generator=recorder, is_chat_model=True)


async def test_the_memory_block_feeds_a_function_agent_numbered_context(
    conn: AISearchConnection, make_memory: MakeMemory, docs_instance: str, collector: EventCollector
) -> None:
    block = AISearchMemoryBlock(docs_instance, similarity_top_k=3, connection=conn)
    memory = make_memory(session_id="user-1", memory_blocks=[block])
    recorder = Recorder()
    agent = FunctionAgent(tools=[], llm=_llm(recorder), streaming=False)
    response = await agent.run(user_msg=QUESTION, memory=memory)
    assert str(response.response.content) == "See [1]."
    nodes = block.last_source_nodes
    assert len(nodes) == 3
    system = recorder.system_text()
    assert "<aisearch_context>" in system
    # the model sees every passage under the number its source node has
    for n, node in enumerate(nodes, start=1):
        assert f"[{n}] {node.node.metadata['filename']} (score {node.score:.3f})" in system
    assert nodes[0].node.get_content().strip()[:60] in system
    retrieval = block.last_retrieval
    assert retrieval is not None and retrieval.query == QUESTION
    assert retrieval.cited(str(response.response.content)) == [nodes[0]]
    assert block.retrieval_for("user-1") is retrieval
    # the agent reads its memory again after answering: the turn's result is reused
    events = collector.of(AISearchMemoryRetrievalEvent)
    assert [e.cached for e in events] == [False] + [True] * (len(events) - 1)
    assert events[0].session_id == "user-1" and events[0].instance_id == docs_instance
    assert [n.node.node_id for n in events[0].nodes] == [n.node.node_id for n in nodes]


async def test_each_user_turn_retrieves_with_its_own_message(
    conn: AISearchConnection,
    make_memory: MakeMemory,
    docs_instance: str,
    collector: EventCollector,
) -> None:
    block = AISearchMemoryBlock(docs_instance, similarity_top_k=2, connection=conn)
    memory = make_memory(memory_blocks=[block])
    agent = FunctionAgent(tools=[], llm=_llm(Recorder()), streaming=False)
    await agent.run(user_msg=QUESTION, memory=memory)
    first = block.last_source_nodes
    await agent.run(user_msg="What is a cold brew ratio?", memory=memory)
    assert block.last_retrieval is not None
    assert block.last_retrieval.query == "What is a cold brew ratio?"
    turns = [e for e in collector.of(AISearchMemoryRetrievalEvent) if not e.cached]
    assert [e.query for e in turns] == [QUESTION, "What is a cold brew ratio?"]
    assert [n.node.node_id for n in block.last_source_nodes] != [n.node.node_id for n in first]


async def test_the_memory_block_and_the_tool_spec_together(
    conn: AISearchConnection, make_memory: MakeMemory, docs_instance: str
) -> None:
    block = AISearchMemoryBlock(docs_instance, similarity_top_k=2, connection=conn)
    memory = make_memory(memory_blocks=[block])
    recorder = Recorder(tool_first=True)
    tools = AISearchToolSpec(docs_instance, similarity_top_k=2, connection=conn).to_tool_list()
    agent = FunctionAgent(tools=tools, llm=_llm(recorder), streaming=False)
    await agent.run(user_msg=QUESTION, memory=memory)
    # both model calls (before and after the tool call) carry the context
    assert len(recorder.calls) == 2
    assert all("<aisearch_context>" in recorder.system_text(i) for i in (0, 1))
    assert any(m.role == MessageRole.TOOL for m in recorder.calls[1])


@pytest.mark.parametrize("via", ["context_store", "state", "callable", "async_callable"])
async def test_the_run_chooses_the_instance(
    conn: AISearchConnection,
    make_memory: MakeMemory,
    docs_instance: str,
    tea_instance: str,
    via: str,
) -> None:
    """One agent and one block serve two tenants, each run searching its own instance."""

    def choose(request: MemoryTargetRequest) -> dict[str, str]:
        assert request.context is not None  # called inside the agent's step
        return {"instance_id": tenants[request.session_id or ""]}

    async def achoose(request: MemoryTargetRequest) -> dict[str, str]:
        return choose(request)

    tenants = {"tea-user": tea_instance, "coffee-user": docs_instance}
    target = {"callable": choose, "async_callable": achoose}.get(via)
    block = AISearchMemoryBlock(target=target, similarity_top_k=2, connection=conn)
    recorder = Recorder()
    agent = FunctionAgent(tools=[], llm=_llm(recorder), streaming=False)
    for user, instance in tenants.items():
        memory = make_memory(session_id=user, memory_blocks=[block])
        ctx = Context(agent)
        if via == "context_store":
            await ctx.store.set("aisearch_target", {"instance_id": instance})
        elif via == "state":
            await ctx.store.set("state", {"aisearch_target": {"instance_id": instance}})
        await agent.run(user_msg=TEA_QUESTION, memory=memory, ctx=ctx)
        retrieval = block.retrieval_for(user)
        assert retrieval is not None and retrieval.instance_id == instance
        found = {n.node.metadata["instance_id"] for n in retrieval.source_nodes}
        assert found == {instance}
    tea = block.retrieval_for("tea-user")
    assert tea is not None and tea.source_nodes[0].node.metadata["filename"] == "tea/sencha.txt"
    coffee = block.retrieval_for("coffee-user")
    assert coffee is not None
    assert "tea/sencha.txt" not in {n.node.metadata["filename"] for n in coffee.source_nodes}


async def test_a_run_narrows_the_search_to_a_folder(
    conn: AISearchConnection, make_memory: MakeMemory, docs_instance: str
) -> None:
    block = AISearchMemoryBlock(docs_instance, similarity_top_k=4, connection=conn)
    agent = FunctionAgent(tools=[], llm=_llm(Recorder()), streaming=False)
    ctx = Context(agent)
    await ctx.store.set("aisearch_target", {"folder": "troubleshooting"})
    memory = make_memory(memory_blocks=[block])
    await agent.run(user_msg="Why is my espresso sour?", memory=memory, ctx=ctx)
    assert block.last_retrieval is not None
    assert block.last_retrieval.folder == "troubleshooting/"
    assert block.last_source_nodes
    assert {n.node.metadata["folder"] for n in block.last_source_nodes} == {"troubleshooting/"}


async def test_a_bad_run_target_is_a_clear_error(
    conn: AISearchConnection, make_memory: MakeMemory, docs_instance: str
) -> None:
    block = AISearchMemoryBlock(docs_instance, connection=conn)
    memory = make_memory(memory_blocks=[block])
    with pytest.raises(
        InvalidRequestError,
        match=r"^Memory\.aget\(aisearch_target=\.\.\.\): must be a mapping with any of folder, "
        r"instance_id, instance_ids \(got str\)",
    ):
        await memory.aget(aisearch_target="tenant-a")
    with pytest.raises(InvalidRequestError, match=r"unknown key 'instance'.*'instance_id'"):
        await memory.aget(aisearch_target={"instance": "x"})
    with pytest.raises(InvalidRequestError, match=r"folder: '\.' and '\.\.' are not folder"):
        await memory.aget(aisearch_target={"folder": "../other-tenant/"})
    no_instance = AISearchMemoryBlock(connection=conn)
    with pytest.raises(InvalidRequestError, match="has no instance to search"):
        await make_memory(memory_blocks=[no_instance]).aget(input="hi")


@pytest.fixture
def tea_fails(local_server: LocalServer, tea_instance: str) -> str:
    local_server.set_fault(tea_instance, status=500, code=7017)
    return tea_instance


@pytest.mark.parametrize("mode", ["warn", "ignore"])
async def test_a_failing_instance_is_reported(
    conn: AISearchConnection,
    make_memory: MakeMemory,
    docs_instance: str,
    tea_fails: str,
    collector: EventCollector,
    mode: str,
) -> None:
    block = AISearchMemoryBlock(
        instance_ids=[docs_instance, tea_fails],
        on_instance_error=mode,  # type: ignore[arg-type]
        similarity_top_k=3,
        connection=conn,
    )
    memory = make_memory(memory_blocks=[block])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        messages = await memory.aget(input=QUESTION)
    warned = [w for w in caught if issubclass(w.category, AISearchInstanceWarning)]
    assert len(warned) == (1 if mode == "warn" else 0)
    retrieval = block.last_retrieval
    assert retrieval is not None
    assert [e.instance_id for e in retrieval.errors] == [tea_fails]
    assert retrieval.source_nodes  # the other instance answered
    assert f"Could not be searched (failed): {tea_fails}." in (messages[0].content or "")
    assert [e.instance_id for e in collector.of(AISearchInstanceErrorEvent)] == [tea_fails]
    [event] = collector.of(AISearchMemoryRetrievalEvent)
    assert event.failed_instances == [tea_fails]
    assert event.instance_ids == [docs_instance, tea_fails]


async def test_a_failing_instance_can_raise(
    conn: AISearchConnection, make_memory: MakeMemory, docs_instance: str, tea_fails: str
) -> None:
    block = AISearchMemoryBlock(
        instance_ids=[docs_instance, tea_fails], on_instance_error="raise", connection=conn
    )
    with pytest.raises(InstanceFailureError) as caught:
        await make_memory(memory_blocks=[block]).aget(input=QUESTION)
    assert [e.instance_id for e in caught.value.errors] == [tea_fails]


def test_sync_chat_engine_with_the_memory_block(
    conn: AISearchConnection, make_memory: MakeMemory, docs_instance: str
) -> None:
    """The sync path: a chat engine's ``chat`` reads ``Memory.get``, which runs the block."""
    block = AISearchMemoryBlock(docs_instance, similarity_top_k=2, connection=conn)
    memory = make_memory(memory_blocks=[block])
    recorder = Recorder()
    engine = SimpleChatEngine.from_defaults(llm=_llm(recorder), memory=memory)
    assert str(engine.chat(QUESTION)) == "See [1]."
    assert len(block.last_source_nodes) == 2
    source = block.last_source_nodes[0].node.metadata["filename"]
    assert f"[1] {source}" in recorder.system_text()


async def test_context_stays_within_max_chars_and_numbers_match_the_nodes(
    conn: AISearchConnection, docs_instance: str
) -> None:
    block = AISearchMemoryBlock(
        docs_instance, similarity_top_k=10, max_chars=700, header="", connection=conn
    )
    text = await block.aget([ChatMessage(role="user", content=QUESTION)])
    assert len(text) <= 700
    shown = block.last_source_nodes
    assert 1 <= len(shown) < 10
    assert text.count("\n\n[") == len(shown) - 1
    assert text.startswith(f"[1] {shown[0].node.metadata['filename']}")


async def test_no_user_text_searches_nothing(conn: AISearchConnection, docs_instance: str) -> None:
    block = AISearchMemoryBlock(docs_instance, connection=conn)
    assert await block.aget([ChatMessage(role="assistant", content="hello")]) == ""
    assert block.last_retrieval is not None and block.last_retrieval.query == ""
    assert block.last_source_nodes == []


async def test_query_from_the_latest_user_messages(
    conn: AISearchConnection, docs_instance: str
) -> None:
    block = AISearchMemoryBlock(docs_instance, query_messages=2, connection=conn)
    history = [
        ChatMessage(role="user", content="first"),
        ChatMessage(role="user", content="Tell me about pour-over."),
        ChatMessage(role="assistant", content="Sure."),
        ChatMessage(role="user", content="How long should it brew?"),
    ]
    await block.aget(history)
    assert block.last_retrieval is not None
    assert block.last_retrieval.query == "Tell me about pour-over.\nHow long should it brew?"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_chars": 10}, r"max_chars: must be between 200 and 200,000 \(got 10\)"),
        ({"query_messages": 0}, r"query_messages: must be between 1 and 20"),
        ({"similarity_top_k": 99}, r"similarity_top_k: must be between 1 and 50"),
        ({"folder": "\ud800x"}, r"folder: must not contain control characters"),
        ({"folder": "a/../b"}, r"folder: '\.' and '\.\.' are not folder names"),
        ({"on_instance_error": "loud"}, r"on_instance_error: must be one of"),
        ({"max_chars": 1000.0}, r"max_chars: must be an integer between 200 and 200,000"),
        ({"context_key": ""}, r"context_key: must be a non-empty string"),
        ({"header": None}, r"header: must be a string \(got NoneType\)"),
        ({"instance_id": ""}, r"^instance_id must be a non-empty string"),
        ({"instance_id": None, "instance_ids": []}, r"^instance_ids must hold 1 to 50"),
        (
            {"instance_id": None, "instance_ids": ["a", 3]},
            r"^instance_ids\[1\] must be a non-empty",
        ),
        ({"instance_id": None, "instance_ids": "abc"}, r"^instance_ids must be a list of"),
        ({"instance_ids": ["x"]}, r"^pass instance_id or instance_ids, not both"),
        ({"target": "tenant"}, r"target: must be a callable"),
        (
            {"filters": {"folder": "a/"}, "folder": "b/"},
            r"folder: this search is limited to folder filter 'a/'",
        ),
    ],
)
def test_bad_arguments_name_the_field(
    conn: AISearchConnection, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        AISearchMemoryBlock(connection=conn, **{"instance_id": "docs", **kwargs})


def test_a_misspelt_option_is_refused(conn: AISearchConnection) -> None:
    with pytest.raises(TypeError, match=r"'similarity_topk' \(did you mean 'similarity_top_k'"):
        AISearchMemoryBlock("docs", connection=conn, similarity_topk=3)  # type: ignore[call-arg]


async def test_truncation_drops_the_last_passages(
    conn: AISearchConnection, docs_instance: str
) -> None:
    block = AISearchMemoryBlock(docs_instance, similarity_top_k=4, connection=conn)
    text = await block.aget([ChatMessage(role="user", content=QUESTION)])
    shorter = await block.atruncate(text, 10)
    assert shorter is not None and text.startswith(shorter) and shorter.count("\n\n[") == 3
    assert await block.atruncate(text, 100_000) is None


async def test_nothing_matched_and_the_caches_stay_bounded(
    conn: AISearchConnection, docs_instance: str
) -> None:
    block = AISearchMemoryBlock(docs_instance, connection=conn, max_chars=300, query_messages=2)
    assert (block.connection, block.max_chars, block.query_messages) == (conn, 300, 2)
    question = [ChatMessage(role="user", content=QUESTION)]
    text = await block.aget(question, aisearch_target={"folder": "no-such-folder/"})
    assert text.endswith("No passages matched.") and block.last_source_nodes == []
    # one retriever per target (the latest 32), one result per session (the latest 256)
    for i in range(34):
        await block.aget(question, aisearch_target={"folder": f"f{i}/"}, session_id=f"s{i}")
    for i in range(260):
        await block.aget([], session_id=f"empty-{i}")  # no user text: no request
    assert len(block._retrievers) == 32
    assert block.retrieval_for("s0") is None and block.retrieval_for("empty-259") is not None
    assert len(block._sessions) == len(block._keys) == 256
