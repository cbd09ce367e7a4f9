"""AISearchToolSpec.search for models: an optional folder, structured results, descriptions."""

from __future__ import annotations

from typing import Any

import pytest
from llama_index.core.agent.workflow import FunctionAgent, ToolCallResult
from llama_index.core.base.llms.types import ChatMessage, MessageRole, TextBlock, ToolCallBlock
from llama_index.core.llms.mock import MockFunctionCallingLLM

from aisearch import InvalidRequestError
from llamaindex_aisearch import AISearchConnection, AISearchToolSpec

QUESTION = "Why is my espresso sour?"


def test_search_takes_an_optional_folder(conn: AISearchConnection, docs_instance: str) -> None:
    spec = AISearchToolSpec(docs_instance, similarity_top_k=4, connection=conn)
    everywhere = spec.search(QUESTION)
    folders = {n.node.metadata["folder"] for n in everywhere.source_nodes}
    assert folders - {"troubleshooting/"}  # unfiltered, other folders answer too
    narrowed = spec.search(QUESTION, folder="troubleshooting")  # the "/" is added
    assert narrowed.source_nodes
    assert {n.node.metadata["folder"] for n in narrowed.source_nodes} == {"troubleshooting/"}
    assert narrowed.metadata is not None and narrowed.metadata["folder"] == "troubleshooting/"
    # the results as data: key, score, content (and folder, instance) in the node order
    results = narrowed.metadata["results"]
    assert [r["key"] for r in results] == [
        n.node.metadata["filename"] for n in narrowed.source_nodes
    ]
    assert results[0]["score"] == narrowed.source_nodes[0].score
    assert results[0]["content"] == narrowed.source_nodes[0].node.get_content()
    assert f"[1] {results[0]['key']}" in (narrowed.response or "")
    empty = spec.search(QUESTION, folder="no-such-folder/")
    assert empty.source_nodes == []
    assert empty.response == "No matching passages in folder 'no-such-folder/'."


async def test_asearch_takes_an_optional_folder(
    conn: AISearchConnection, docs_instance: str
) -> None:
    spec = AISearchToolSpec(docs_instance, similarity_top_k=3, connection=conn)
    tools = {t.metadata.name: t for t in spec.to_tool_list()}
    out = await tools["search"].acall(query=QUESTION, folder="beans/")
    assert out.raw_output.source_nodes
    assert {n.node.metadata["folder"] for n in out.raw_output.source_nodes} == {"beans/"}


def test_a_model_folder_never_widens_the_configured_filter(
    conn: AISearchConnection, docs_instance: str
) -> None:
    spec = AISearchToolSpec(
        docs_instance, filters={"folder": "beans/"}, connection=conn, similarity_top_k=3
    )
    assert spec.search(QUESTION, folder="beans/").source_nodes
    with pytest.raises(InvalidRequestError, match=r"limited to folder filter 'beans/'"):
        spec.search(QUESTION, folder="troubleshooting/")
    with pytest.raises(InvalidRequestError, match=r"folder: '\.' and '\.\.' are not folder"):
        spec.search(QUESTION, folder="beans/../troubleshooting")


def test_descriptions_tell_the_model_when_to_search_and_when_to_ask_for_an_answer(
    conn: AISearchConnection, docs_instance: str
) -> None:
    tools = {
        t.metadata.name: t for t in AISearchToolSpec(docs_instance, connection=conn).to_tool_list()
    }
    search, answer = tools["search"].metadata, tools["answer"].metadata
    assert "when you write the answer yourself" in search.description
    assert "Use ``answer`` instead" in search.description
    assert 'such as "brewing/"' in search.description
    assert "use ``search`` instead" in answer.description
    params = search.get_parameters_dict()
    assert params["required"] == ["query"]
    assert set(params["properties"]) == {"query", "folder"}


@pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecationWarning:inspect")
async def test_a_bad_folder_from_the_model_comes_back_to_it_as_a_tool_error(
    conn: AISearchConnection, docs_instance: str
) -> None:
    def respond(messages: list[ChatMessage], **kwargs: Any) -> ChatMessage:
        if not any(m.role == MessageRole.TOOL for m in messages):
            call = ToolCallBlock(
                tool_call_id="c1",
                tool_name="search",
                tool_kwargs={"query": QUESTION, "folder": "../../etc"},
            )
            return ChatMessage(role=MessageRole.ASSISTANT, blocks=[call])
        return ChatMessage(role=MessageRole.ASSISTANT, blocks=[TextBlock(text="sorry")])

    llm = MockFunctionCallingLLM(response_generator=respond, is_chat_model=True)
    tools = AISearchToolSpec(docs_instance, connection=conn).to_tool_list()
    handler = FunctionAgent(tools=tools, llm=llm, streaming=False).run(user_msg=QUESTION)
    results = [e async for e in handler.stream_events() if isinstance(e, ToolCallResult)]
    await handler
    [result] = results
    assert result.tool_output.is_error
    assert "folder: '.' and '..' are not folder names" in result.tool_output.content


def test_folders_reuse_their_retriever_and_the_cache_stays_bounded(
    conn: AISearchConnection, docs_instance: str
) -> None:
    spec = AISearchToolSpec(docs_instance, similarity_top_k=1, connection=conn)
    assert spec._retriever_for("beans") is spec._retriever_for("/beans/")
    for i in range(34):
        spec._retriever_for(f"f{i}/")
    assert len(spec._by_folder) == 32 and "beans/" not in spec._by_folder
