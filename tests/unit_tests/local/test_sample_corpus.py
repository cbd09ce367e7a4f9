"""The bundled sample corpus: enough documents, complete metadata, every file indexable."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from aisearch_local.sample_corpus import (
    CUSTOM_METADATA,
    SAMPLE_CORPUS_DIR,
    iter_sample_documents,
)

FIELD_TYPES = {
    "difficulty": str,
    "rating": float,
    "author": str,
    "published": int,
    "verified": bool,
}
SUPPORTED = {".md", ".txt", ".html", ".json"}
# 2021-01-01 and 2027-01-01 UTC
PUBLISHED_RANGE = (1_609_459_200, 1_798_761_600)


def _document_paths() -> list[Path]:
    return sorted(
        p
        for p in SAMPLE_CORPUS_DIR.rglob("*")
        if p.is_file()
        and not p.name.endswith(".meta.json")
        and p.suffix not in {".py", ".pyc"}
        and "__pycache__" not in p.parts
    )


DOCS = _document_paths()


def test_corpus_size_and_folders() -> None:
    assert len(DOCS) >= 30
    folders = Counter(p.relative_to(SAMPLE_CORPUS_DIR).parts[0] for p in DOCS)
    assert len(folders) >= 5
    assert all(count >= 5 for count in folders.values()), folders


def test_only_supported_formats_and_a_mix_of_them() -> None:
    suffixes = Counter(p.suffix for p in DOCS)
    assert set(suffixes) <= SUPPORTED, suffixes
    assert set(suffixes) == SUPPORTED
    assert suffixes[".json"] >= 2
    assert suffixes[".md"] > len(DOCS) // 2


def test_custom_metadata_schema_matches_sidecar_fields() -> None:
    assert [f["field_name"] for f in CUSTOM_METADATA] == list(FIELD_TYPES)
    assert {f["data_type"] for f in CUSTOM_METADATA} <= {"text", "number", "boolean", "datetime"}


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.relative_to(SAMPLE_CORPUS_DIR).as_posix())
def test_every_document_has_complete_sidecar(path: Path) -> None:
    sidecar = path.with_name(path.name + ".meta.json")
    meta = json.loads(sidecar.read_text(encoding="utf-8"))
    assert set(meta) == set(FIELD_TYPES)
    for field, expected in FIELD_TYPES.items():
        value = meta[field]
        assert type(value) is expected, (field, value)
    assert meta["difficulty"] in {"beginner", "intermediate", "advanced"}
    assert 1.0 <= meta["rating"] <= 5.0
    assert PUBLISHED_RANGE[0] <= meta["published"] < PUBLISHED_RANGE[1]


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.relative_to(SAMPLE_CORPUS_DIR).as_posix())
def test_every_document_is_utf8_and_sized(path: Path) -> None:
    text = path.read_bytes().decode("utf-8")
    words = len(text.split())
    assert 150 <= words <= 650, words


def test_no_orphan_sidecars() -> None:
    for sidecar in SAMPLE_CORPUS_DIR.rglob("*.meta.json"):
        assert sidecar.with_name(sidecar.name.removesuffix(".meta.json")).is_file(), sidecar


def test_metadata_is_varied_enough_to_filter_and_boost_on() -> None:
    metas = [json.loads(p.with_name(p.name + ".meta.json").read_text("utf-8")) for p in DOCS]
    assert {m["difficulty"] for m in metas} == {"beginner", "intermediate", "advanced"}
    assert 4 <= len({m["author"] for m in metas}) <= 6
    assert {m["verified"] for m in metas} == {True, False}
    assert len({m["rating"] for m in metas}) >= 8


def test_iter_sample_documents_yields_every_document_with_its_metadata() -> None:
    docs = list(iter_sample_documents())
    assert [d.key for d in docs] == [p.relative_to(SAMPLE_CORPUS_DIR).as_posix() for p in DOCS]
    for doc in docs:
        assert doc.metadata_error is None
        assert set(doc.metadata) == set(FIELD_TYPES)
        assert doc.data


def test_every_document_passes_extract_text() -> None:
    from aisearch_local.ingest import extract_text

    for doc in iter_sample_documents():
        text = extract_text(doc.key, doc.data)
        assert len(text.split()) >= 100, doc.key


def test_html_title_survives_extraction() -> None:
    from aisearch_local.ingest import extract_text

    doc = next(d for d in iter_sample_documents() if d.key == "brewing/chemex.html")
    text = extract_text(doc.key, doc.data)
    assert text.startswith("Brewing with the Chemex")
    assert "<" not in text
