"""The agent-facing helpers: the ``folder`` argument, filters narrowed by it, passages."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st
from llama_index.core.schema import NodeWithScore, TextNode

from aisearch import InvalidRequestError
from llamaindex_aisearch import AISearchConnection, AISearchMemoryBlock
from llamaindex_aisearch._agents import check_folder, node_result, passages, with_folder

SECRET = "tok-memory-block-secret"


@pytest.mark.parametrize(
    ("given_folder", "expected"),
    [
        ("brewing/", "brewing/"),
        ("brewing", "brewing/"),
        ("/brewing", "brewing/"),
        ("  docs/guides ", "docs/guides/"),
        (None, None),
    ],
)
def test_check_folder_normalises(given_folder: str | None, expected: str | None) -> None:
    assert check_folder(given_folder) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", r"folder: must be a folder name such as 'docs/' \(leave it out"),
        ("/", r"folder: must be a folder name"),
        (3, r"folder: must be a folder name such as 'docs/' or null \(got int\)"),
        ("a" * 501, r"folder: must be at most 500 characters \(got 501\)"),
        ("a\nb", r"folder: must not contain control characters"),
        ("a\ud800", r"folder: must not contain control characters or lone surrogates"),
        ("../secret", r"folder: '\.' and '\.\.' are not folder names"),
        ("a/./b", r"folder: '\.' and '\.\.' are not folder names"),
    ],
)
def test_check_folder_refuses_with_the_field_named(value: object, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        check_folder(value)


@given(st.text(max_size=600))
def test_check_folder_either_normalises_or_says_why(value: str) -> None:
    try:
        folder = check_folder(value)
    except InvalidRequestError as exc:
        assert str(exc).startswith("folder: ")
        str(exc).encode("utf-8")  # printable: a lone surrogate is escaped
        return
    assert folder is not None and folder.endswith("/") and not folder.startswith("/")
    assert len(folder) <= 501
    folder.encode("utf-8")


def test_with_folder_only_narrows() -> None:
    assert with_folder(None, None) is None
    assert with_folder(None, "a/") == {"folder": "a/"}
    assert with_folder({"rating": {"$gte": 4}}, "a/") == {"rating": {"$gte": 4}, "folder": "a/"}
    assert with_folder({"folder": "a/"}, "a/") == {"folder": "a/"}
    assert with_folder({"folder": {"$eq": "a/"}}, "a/") == {"folder": {"$eq": "a/"}}
    with pytest.raises(InvalidRequestError, match=r"filter 'a/'; 'b/' is outside"):
        with_folder({"folder": "a/"}, "b/")
    with pytest.raises(InvalidRequestError, match="limited to folder filter"):
        with_folder({"folder": {"$in": ["a/", "b/"]}}, "b/")  # never widened, even to a subset


def _node(key: str, text: str, score: float | None = 0.5) -> NodeWithScore:
    meta = {"filename": key, "folder": key[: key.rfind("/") + 1], "instance_id": "docs"}
    return NodeWithScore(node=TextNode(id_=key, text=text, metadata=meta), score=score)


def test_passages_are_numbered_and_fit_the_budget() -> None:
    nodes = [_node(f"d/{i}.md", "word " * 100) for i in range(5)]
    text, shown = passages(nodes, 1200)
    assert len(text) <= 1200
    assert 1 < shown < 5
    assert text.startswith("[1] d/0.md (score 0.500)\nword")
    assert f"\n\n[{shown}] d/{shown - 1}.md" in text
    # the first passage is always there, cut to the budget
    first, one = passages(nodes, 200)
    assert one == 1 and len(first) <= 200 and first.endswith(" ...")
    multi, _ = passages([_node("d/a.md", "x", None)], 500, multi=True)
    assert multi == "[1] d/a.md (no score, instance docs)\nx"


def test_node_result_is_plain_data() -> None:
    assert node_result(_node("d/a.md", "text", 0.25)) == {
        "key": "d/a.md",
        "score": 0.25,
        "content": "text",
        "folder": "d/",
        "instance_id": "docs",
    }


def test_the_memory_block_keeps_its_credentials_out_of_reprs_and_pickles() -> None:
    conn = AISearchConnection(account_id="acct", api_token=SECRET)
    block = AISearchMemoryBlock("docs", connection=conn)
    assert SECRET not in repr(block) and SECRET not in str(block.model_dump())
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(block)


_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.lists(st.one_of(st.text(max_size=10), st.integers(), st.none()), max_size=60),
)


@given(
    st.dictionaries(
        st.one_of(st.sampled_from(["instance_id", "instance_ids", "folder"]), st.text()),
        _values,
        max_size=4,
    )
)
def test_a_run_target_is_taken_whole_or_refused_naming_the_field(given_target: dict) -> None:
    from llamaindex_aisearch.memory import _apply, _check_target

    where = "workflow context store 'aisearch_target'"
    try:
        target = _check_target(_apply({}, given_target, where), where)
    except InvalidRequestError as exc:
        message = str(exc)
        assert message.startswith(where + ": ")
        message.encode("utf-8")  # printable, whatever the keys and values held
        return
    assert set(given_target) <= {"instance_id", "instance_ids", "folder"}
    if target.instance_ids is not None:
        assert target.instance_id is None and 1 <= len(target.instance_ids) <= 50
        assert all(isinstance(i, str) and i for i in target.instance_ids)
    if target.instance_id is not None:
        assert isinstance(target.instance_id, str) and target.instance_id
    assert target.folder is None or target.folder.endswith("/")
