"""The pure parts of AISearchContextMiddleware: targets, context, numbering, citations, bounds."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from aisearch import InvalidRequestError
from langchain_aisearch import AISearchContextMiddleware, AISearchRetriever, AISearchTarget
from langchain_aisearch.middleware import (
    CONTEXT_HEADER,
    _shift_markers,
    _with_context,
    add_citations,
    check_target,
    default_query,
    format_context,
    number_sources,
    target_from_context,
)
from langchain_aisearch.tools import format_documents


def doc(n: int, text: str | None = None, source: str | None = None) -> Document:
    return Document(
        page_content=text or f"Passage {n}.",
        id=f"chunk-{n}",
        metadata={"source": source or f"doc-{n}.md", "score": 0.5, "instance_id": "docs"},
    )


def retriever() -> AISearchRetriever:
    return AISearchRetriever(
        instance_id="docs", account_id="acc", api_token="tok", base_url="http://x.test/client/v4"
    )


# ----------------------------------------------------------------------- targets


@dataclass
class Ctx:
    instance_id: str | None = None
    folder: str | None = None


def test_default_target_reads_attributes_or_keys() -> None:
    assert target_from_context(None) is None
    assert target_from_context({"user": "x"}) is None  # names no target field
    assert target_from_context(Ctx("acme", "docs/")) == AISearchTarget("acme", folder="docs/")
    found = target_from_context({"instance_ids": ["a", "b"], "namespace": "tenants"})
    assert found == AISearchTarget(instance_ids=("a", "b"), namespace="tenants")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"instance_id": "Bad Id"}, "context.instance_id"),
        ({"instance_id": 5}, "context.instance_id"),
        ({"instance_ids": []}, "context.instance_ids: must be a non-empty list"),
        ({"instance_ids": "abc"}, "context.instance_ids: must be a non-empty list"),
        ({"instance_ids": ["ok", "../x"]}, "context.instance_ids[1]"),
        ({"instance_id": "a", "instance_ids": ["b"]}, "not both"),
        ({"namespace": "a/b"}, "context.namespace"),
        ({"folder": "docs"}, "context.folder: a folder ends with '/'"),
        ({"folder": 3}, "context.folder: must be a string"),
        ({"folder": "a\ud800/"}, "context.folder: must not hold control characters"),
        ({"folder": "a\n/"}, "context.folder: must not hold control characters"),
        ({"folder": "x" * 70 + "/"}, "context.folder: at most 64 bytes"),
    ],
)
def test_a_bad_target_names_the_field(value: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidRequestError, match=re.escape(message)):
        target_from_context(value)


def test_a_target_callable_returning_a_wrong_thing_is_named() -> None:
    with pytest.raises(InvalidRequestError, match=r"unknown target key 'instance' .*'instance_id'"):
        check_target({"instance": "a"})
    with pytest.raises(InvalidRequestError, match="must be an AISearchTarget, a mapping or None"):
        check_target("acme")


def test_require_target_refuses_the_default_instance() -> None:
    middleware = AISearchContextMiddleware(retriever(), require_target=True)
    with pytest.raises(InvalidRequestError, match="context: names no AI Search instance"):
        middleware._retriever_for({"user_id": "u1"})


def test_the_target_selects_the_instance_and_folder_sharing_the_pool() -> None:
    base = retriever()
    middleware = AISearchContextMiddleware(base)
    chosen, filters = middleware._retriever_for({"instance_id": "acme", "folder": "docs/"})
    assert isinstance(chosen, AISearchRetriever) and chosen.instance_id == "acme"
    assert filters == {"folder": "docs/"}
    assert chosen._clients is base._clients  # one connection pool for every tenant
    assert middleware._retriever_for(None) == (base, None)
    with pytest.raises(InvalidRequestError, match=r"context\.instance_ids: several instances"):
        middleware._retriever_for({"instance_ids": ["a", "b"]})


# ----------------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"retrieve": "always"}, "retrieve: must be one of 'every_turn', 'first_turn'"),
        ({"max_chunks": 0}, "max_chunks: must be an integer between 1 and 50 (got 0)"),
        ({"max_chunks": True}, "max_chunks: must be an integer between 1 and 50"),
        ({"max_chars": 10}, "max_chars: must be an integer between 100 and 1000000"),
        ({"rewrite_query": "yes"}, "rewrite_query: must be a chat model, a callable or None"),
        ({"target": "instance_id"}, "target: must be a callable"),
    ],
)
def test_bad_options_name_the_field(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidRequestError, match=re.escape(message)):
        AISearchContextMiddleware(retriever(), **kwargs)  # type: ignore[arg-type]


def test_a_retriever_is_required() -> None:
    with pytest.raises(InvalidRequestError, match="retriever: must be an AISearchRetriever"):
        AISearchContextMiddleware("docs")  # type: ignore[arg-type]


def test_only_on_request_registers_a_tool() -> None:
    assert AISearchContextMiddleware(retriever()).tools == []
    tools = AISearchContextMiddleware(retriever(), retrieve="on_request").tools
    assert [t.name for t in tools] == ["search_knowledge_base"]
    assert set(tools[0].tool_call_schema.model_json_schema()["properties"]) == {"query"}


# ----------------------------------------------------------------------- context


def test_format_context_numbers_and_bounds_the_passages() -> None:
    docs = [doc(1, "a" * 300), doc(2, "b" * 300), doc(3, "c" * 300)]
    text, shown = format_context(docs, max_chars=450)
    assert text.startswith(CONTEXT_HEADER)
    assert "[1] doc-1.md" in text and "[2] doc-2.md" in text and "[3]" not in text
    assert "b" * 150 + " ..." in text and "b" * 151 not in text
    assert shown == docs[:2]  # the documents the numbers point at, uncut
    assert format_context(docs)[1] == docs
    assert format_context([])[0].endswith("No matching documents found.")


def test_the_context_goes_into_the_system_message() -> None:
    assert _with_context(None, "CTX").content == "CTX"
    assert _with_context(SystemMessage("Be brief."), "CTX").content == "Be brief.\n\nCTX"
    blocks = _with_context(SystemMessage([{"type": "text", "text": "Be brief."}]), "CTX").content
    assert blocks == [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "CTX"}]


# ----------------------------------------------------------------------- numbering


def test_tool_results_are_numbered_after_the_context() -> None:
    tool_docs = [doc(7), doc(8)]
    answer_docs = [doc(9)]
    messages = [
        HumanMessage("old question"),
        ToolMessage(format_documents([doc(5)]), tool_call_id="0", artifact=[doc(5)]),
        HumanMessage("question"),
        AIMessage("", tool_calls=[{"name": "s", "args": {"query": "q"}, "id": "1"}]),
        ToolMessage(format_documents(tool_docs), tool_call_id="1", artifact=tool_docs),
        ToolMessage(
            "Answer [1].\n\nSources:\n[1] (cited) doc-9.md", tool_call_id="2", artifact=answer_docs
        ),
        ToolMessage("plain", tool_call_id="3"),
    ]
    out, sources = number_sources(messages, [doc(1)])
    assert sources == [doc(1), *tool_docs, *answer_docs]  # the earlier turn's tool is not a source
    assert out[1] is messages[1]
    assert out[4].content == format_documents(tool_docs, start=2)
    assert out[4].content.startswith("[2] doc-7.md") and "[3] doc-8.md" in out[4].content
    assert out[5].content == "Answer [4].\n\nSources:\n[4] (cited) doc-9.md"
    assert out[6] is messages[6]
    assert messages[4].content.startswith("[1] doc-7.md")  # the state's message is unchanged


def test_shift_markers_leaves_numbers_outside_the_artifact() -> None:
    assert _shift_markers("a [1, 2] b [3] c [x]", 10, 2) == "a [11, 12] b [3] c [x]"


# ----------------------------------------------------------------------- citations


def test_citations_point_at_the_numbered_documents() -> None:
    docs = [doc(1, source="https://example.com/a"), doc(2, text="Two.", source="b.md")]
    message = AIMessage("Alpha holds [1]. Beta too [2]. Nothing [3].", id="m1")
    cited = add_citations(message, docs)
    assert message.content == "Alpha holds [1]. Beta too [2]. Nothing [3]."  # not modified
    assert cited.id == "m1" and cited.text == message.content
    (block,) = cited.content_blocks
    notes = block["annotations"]  # type: ignore[typeddict-item]
    assert [n["extras"]["source_index"] for n in notes] == [1, 2]
    assert notes[0]["url"] == "https://example.com/a" and notes[0]["title"] == notes[0]["url"]
    assert "url" not in notes[1] and notes[1]["title"] == "b.md"
    assert notes[1]["cited_text"] == "Two." and notes[1]["extras"]["chunk_id"] == "chunk-2"
    start, end = notes[0]["start_index"], notes[0]["end_index"]
    assert message.content[start:end] == "Alpha holds [1]"


def test_citations_in_list_content_go_on_each_text_block() -> None:
    message = AIMessage(["See [1].", {"type": "text", "text": "No marker."}])
    cited = add_citations(message, [doc(1)])
    assert isinstance(cited.content, list)
    first, second = cited.content
    assert isinstance(first, dict) and first["annotations"][0]["extras"]["source_index"] == 1
    assert second == {"type": "text", "text": "No marker."}


def test_a_message_without_markers_is_returned_as_is() -> None:
    message = AIMessage("No sources here.")
    assert add_citations(message, [doc(1)]) is message
    assert add_citations(AIMessage("[1]"), []).content == "[1]"


# ----------------------------------------------------------------------- query


def test_the_query_is_the_user_message_then_the_tool_call_arguments() -> None:
    first = [HumanMessage("How long to rest beans?")]
    assert default_query(first) == "How long to rest beans?"
    after_tools = [
        *first,
        AIMessage("", tool_calls=[{"name": "s", "args": {"query": "light roast rest"}, "id": "1"}]),
        ToolMessage("...", tool_call_id="1"),
    ]
    assert default_query(after_tools) == "How long to rest beans? light roast rest"
    assert default_query([AIMessage("hi")]) is None


def test_a_rewriter_runs_only_when_there_is_history() -> None:
    calls: list[int] = []

    def rewrite(messages: object) -> str:
        calls.append(1)
        return "rewritten"

    middleware = AISearchContextMiddleware(retriever(), rewrite_query=rewrite)
    assert middleware._query([HumanMessage("q")]) == "q"
    assert (
        middleware._query([HumanMessage("q"), AIMessage("a"), HumanMessage("and?")]) == "rewritten"
    )
    assert calls == [1]


def test_an_mcp_search_result_is_numbered_and_cited() -> None:
    """langchain-mcp-adapters' artifact of an AI Search MCP `search`: chunks as /search sends."""
    chunks = [
        {"id": "c1", "text": "Rest 10 days.", "score": 0.9, "item": {"key": "https://x.test/a"}},
        {"id": "c2", "text": "Grind fine.", "score": 0.8, "item": {"key": "b.md"}},
    ]
    content = [{"type": "text", "text": "2 results for 'q':\n\n[1] https://x.test/a\n\n[2] b.md"}]
    mcp = ToolMessage(
        content,
        tool_call_id="1",
        artifact={"structured_content": {"search_query": "q", "chunks": chunks}},
    )
    out, sources = number_sources([HumanMessage("q"), mcp], [doc(1)])
    assert [d.id for d in sources] == ["chunk-1", "c1", "c2"]
    assert sources[1].metadata["source"] == "https://x.test/a"
    assert out[1].content[0]["text"] == "2 results for 'q':\n\n[2] https://x.test/a\n\n[3] b.md"
    cited = add_citations(AIMessage("Rest it [2]."), sources)
    (note,) = cited.content_blocks[0]["annotations"]  # type: ignore[typeddict-item]
    assert note["url"] == "https://x.test/a" and note["cited_text"] == "Rest 10 days."


@pytest.mark.parametrize(
    "artifact",
    [
        None,
        {"structured_content": "text"},
        {"structured_content": {"chunks": []}},
        {"structured_content": {"chunks": ["x"]}},
        {"structured_content": {"chunks": [{"item": "key"}]}},
        {"structured_content": {"chunks": [{"item": {"metadata": [1]}}]}},
        ["not documents"],
    ],
)
def test_other_tool_artifacts_are_not_sources(artifact: object) -> None:
    message = ToolMessage("[1] something", tool_call_id="1", artifact=artifact)
    out, sources = number_sources([HumanMessage("q"), message], [doc(1)])
    assert sources == [doc(1)] and out[1] is message


# ----------------------------------------------------------------------- properties

_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=80),
    st.lists(st.text(max_size=20), max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["instance_id", "instance_ids", "namespace", "folder", "instance"]),
        _values,
        max_size=4,
    )
)
def test_any_target_is_accepted_whole_or_refused_by_name(value: dict[str, object]) -> None:
    try:
        found = check_target(value)
    except InvalidRequestError as exc:
        assert str(exc).startswith("context")  # names the field
        str(exc).encode("utf-8")  # printable, even with lone surrogates in the input
        return
    assert found is None or isinstance(found, AISearchTarget)
    if found is not None and found.folder is not None:
        assert found.folder.endswith("/") and len(found.folder.encode()) <= 64


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab .[]0123,4\n\ud800"), max_size=60))
def test_citations_always_span_the_answer(text: str) -> None:
    docs = [doc(1), doc(2), doc(3)]
    cited = add_citations(AIMessage(text), docs)
    for block in cited.content_blocks:
        for note in block.get("annotations", []):  # type: ignore[union-attr]
            assert 0 <= note["start_index"] <= note["end_index"] <= len(text)
            assert 1 <= note["extras"]["source_index"] <= len(docs)


def test_without_langchain_the_middleware_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    import langchain_aisearch

    monkeypatch.setitem(sys.modules, "langchain.agents", None)  # as if `langchain` were missing
    monkeypatch.delitem(sys.modules, "langchain_aisearch.middleware")
    with pytest.raises(ModuleNotFoundError, match=r'pip install "aisearch-py\[langchain-agents\]"'):
        langchain_aisearch.AISearchContextMiddleware  # noqa: B018
    assert langchain_aisearch.AISearchRetriever  # the rest of the package still imports
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        langchain_aisearch.Nope  # noqa: B018


async def test_a_chat_model_rewrites_the_query_from_the_transcript() -> None:
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

    from langchain_aisearch.middleware import REWRITE_PROMPT

    prompts: list[list[object]] = []

    class Recording(GenericFakeChatModel):
        def _generate(self, messages, stop=None, run_manager=None, **kwargs):  # type: ignore[no-untyped-def]
            prompts.append(messages)
            return super()._generate(messages, stop, run_manager, **kwargs)

    rewriter = Recording(messages=iter([AIMessage("sour espresso fix"), AIMessage("  ")]))
    middleware = AISearchContextMiddleware(retriever(), rewrite_query=rewriter)
    history = [
        HumanMessage("My espresso is sour"),
        AIMessage("", tool_calls=[{"name": "s", "args": {"query": "sour"}, "id": "1"}]),
        ToolMessage("...", tool_call_id="1"),
    ]
    assert middleware._query(history) == "sour espresso fix"
    system, transcript = prompts[0]
    assert system.content == REWRITE_PROMPT  # type: ignore[attr-defined]
    assert "human: My espresso is sour" in transcript.content  # type: ignore[attr-defined]
    assert "calls s({'query': 'sour'})" in transcript.content  # type: ignore[attr-defined]
    # an empty rewrite falls back to the default query (async path: the model's ainvoke)
    assert await middleware._aquery(history) == "My espresso is sour"  # "sour" is in it
