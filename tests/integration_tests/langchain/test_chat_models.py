"""ChatAISearch end to end over real HTTP: answers, sources, citations, streaming."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage, SystemMessage

from aisearch import StreamInterruptedError
from langchain_aisearch import ChatAISearch, sources_to_documents

from .conftest import QUERY


def _check_answer(message):
    assert message.text
    meta = message.response_metadata
    assert meta["model_name"]
    assert meta["model_provider"] == "aisearch"
    assert meta["sources"]
    assert message.usage_metadata["total_tokens"] > 0


def test_invoke_answer_sources_and_citations(lc_target):
    chat = ChatAISearch(instance_id=lc_target.instance_id)
    message = chat.invoke([SystemMessage("Answer briefly and cite sources."), HumanMessage(QUERY)])
    _check_answer(message)
    assert message.response_metadata["finish_reason"]
    (block,) = message.content_blocks
    citations = block.get("annotations", [])
    assert citations, message.text
    keys = [s["item"]["key"] for s in message.response_metadata["sources"]]
    for citation in citations:
        n = citation["extras"]["source_index"]
        assert citation["title"] == keys[n - 1]
        assert message.text[citation["start_index"] : citation["end_index"]].endswith("]")
    docs = sources_to_documents(message)
    assert [d.metadata["source"] for d in docs] == keys


async def test_ainvoke_and_abatch(lc_target):
    chat = ChatAISearch(instance_id=lc_target.instance_id, k=3)
    message = await chat.ainvoke(QUERY)
    _check_answer(message)
    assert len(message.response_metadata["sources"]) <= 3
    results = await chat.abatch([QUERY, "How long does cold brew steep?"])
    assert all(r.text for r in results)


def _check_stream(chunks):
    first_text = next(i for i, c in enumerate(chunks) if c.text)
    with_sources = [i for i, c in enumerate(chunks) if "sources" in c.response_metadata]
    assert with_sources
    assert with_sources[0] < first_text
    assert chunks[with_sources[0]].response_metadata["sources"]
    assert sum(1 for c in chunks if c.usage_metadata) == 1
    assert sum(1 for c in chunks if c.response_metadata.get("model_name")) == 1
    assert chunks[-1].chunk_position == "last"
    full = chunks[0]
    for c in chunks[1:]:
        full += c
    assert isinstance(full, AIMessageChunk)
    assert full.usage_metadata["output_tokens"] > 0
    (block,) = full.content_blocks
    assert block["text"] == full.text
    return full


def test_stream_sources_first_usage_once(lc_target):
    chat = ChatAISearch(instance_id=lc_target.instance_id)
    chunks = list(chat.stream(QUERY))
    full = _check_stream(chunks)
    assert full.content_blocks[0].get("annotations")
    if not lc_target.live:  # the local generator is deterministic
        assert full.text == chat.invoke(QUERY).text


async def test_astream_sources_first_usage_once(lc_target):
    chat = ChatAISearch(instance_id=lc_target.instance_id)
    chunks = [c async for c in chat.astream(QUERY)]
    _check_stream(chunks)


def test_truncated_stream_raises(local, lc_target):
    local.set_fault(lc_target.instance_id, truncate_stream=True)
    chat = ChatAISearch(instance_id=lc_target.instance_id, max_retries=0)
    with pytest.raises(StreamInterruptedError):
        list(chat.stream(QUERY))


async def test_truncated_astream_raises(local, lc_target):
    local.set_fault(lc_target.instance_id, truncate_stream=True)
    chat = ChatAISearch(instance_id=lc_target.instance_id, max_retries=0)
    with pytest.raises(StreamInterruptedError):
        async for _ in chat.astream(QUERY):
            pass


def test_max_tokens_and_stop_passed_through(lc_target):
    if lc_target.live:
        pytest.skip("exact token accounting depends on the live model")
    chat = ChatAISearch(instance_id=lc_target.instance_id)
    long = chat.invoke(QUERY)
    short = chat.invoke(QUERY, max_tokens=5)
    assert short.usage_metadata["output_tokens"] <= 5
    assert len(short.text) < len(long.text)
    word = long.text.split()[3]
    stopped = chat.invoke(QUERY, stop=[word])
    assert word not in stopped.text
    assert len(stopped.text) < len(long.text)


def test_namespace_chat_reports_a_missing_instance_when_streaming_too(lc_target, request):
    if lc_target.live:
        pytest.skip("needs a local namespace")
    chat = ChatAISearch(instance_ids=[lc_target.instance_id, "no-such-instance-xyz"], k=4)
    answer = chat.invoke("cold brew ratio")
    assert [e["instance_id"] for e in answer.response_metadata["errors"]] == [
        "no-such-instance-xyz"
    ]
    chunks = list(chat.stream("cold brew ratio"))
    with_errors = [c for c in chunks if c.response_metadata.get("errors")]
    assert len(with_errors) == 1
    assert [e["instance_id"] for e in with_errors[0].response_metadata["errors"]] == [
        "no-such-instance-xyz"
    ]
    # the errors come with the sources, before the first token
    first_text = next(i for i, c in enumerate(chunks) if c.content)
    assert chunks.index(with_errors[0]) < first_text
    assert with_errors[0].response_metadata["sources"]


def test_namespace_chat(lc_target, request):
    if lc_target.live:
        pytest.skip("needs two instances")
    second = request.getfixturevalue("lc_second_instance")
    chat = ChatAISearch(instance_ids=[lc_target.instance_id, second], k=8)
    message = chat.invoke("microfoam milk for espresso drinks")
    _check_answer(message)
    instances = {s.get("instance_id") for s in message.response_metadata["sources"]}
    assert instances <= {lc_target.instance_id, second}
    assert second in instances
    chunks = list(chat.stream("microfoam milk for espresso drinks"))
    _check_stream(chunks)
