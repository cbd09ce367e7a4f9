"""How AISearchIndex names the items it uploads (pure: no I/O)."""

from __future__ import annotations

from typing import Any

import pytest
from llama_index.core.schema import Document, TextNode

from aisearch import InvalidRequestError
from llamaindex_aisearch.index import item_keys


def _doc(text: str = "x", **metadata: Any) -> Document:
    return Document(text=text, metadata=metadata)


def test_unique_file_names_are_kept_and_non_text_formats_become_text():
    docs = [
        _doc(file_name="guide.md"),
        _doc(file_name="notes.TXT"),
        _doc(file_name="report.pdf"),
        _doc(file_name="page.html"),
    ]
    assert item_keys(docs) == ["guide.md", "notes.TXT", "report.pdf.txt", "page.html"]


def test_same_name_in_different_folders_keeps_the_folders():
    # SimpleDirectoryReader(recursive=True): two README.md files used to become one item
    docs = [
        _doc("A", file_name="README.md", file_path="/home/u/kb/team-a/README.md"),
        _doc("B", file_name="README.md", file_path="/home/u/kb/team-b/README.md"),
        _doc("C", file_name="other.md", file_path="/home/u/kb/other.md"),
    ]
    assert item_keys(docs) == ["team-a/README.md", "team-b/README.md", "other.md"]


def test_pages_of_one_file_are_told_apart():
    pages = [
        _doc(f"page {n}", file_name="report.pdf", file_path="/d/report.pdf", page_label=str(n))
        for n in (1, 2, 3)
    ]
    assert item_keys(pages) == [
        "report.pdf.page-1.txt",
        "report.pdf.page-2.txt",
        "report.pdf.page-3.txt",
    ]
    sections = [_doc(f"s{n}", file_name="guide.md", file_path="/d/guide.md") for n in (1, 2)]
    assert item_keys(sections) == ["guide.part-1.md", "guide.part-2.md"]


def test_explicit_keys_win_and_must_be_unique():
    docs = [_doc(key="kb/a.md", file_name="README.md"), _doc(file_name="README.md")]
    assert item_keys(docs) == ["kb/a.md", "README.md"]
    with pytest.raises(InvalidRequestError, match=r"metadata\['key'\]: 'same.md'"):
        item_keys([_doc(key="same.md"), _doc(key="same.md")])
    with pytest.raises(InvalidRequestError, match=r"same item key\(s\) \['a.md'\]"):
        item_keys([_doc(key="a.md"), _doc(file_name="a.md")])


def test_nodes_without_a_file_name_use_their_document_id():
    node = TextNode(text="t", id_="n1")
    assert item_keys([node]) == ["n1.txt"]
    doc = Document(text="t", id_="d1")
    assert item_keys([doc]) == ["d1.txt"]
