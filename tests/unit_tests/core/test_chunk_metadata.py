"""chunk_metadata: the one home of the canonical metadata keys both adapters write."""

from __future__ import annotations

from aisearch import Chunk
from aisearch._models import CHUNK_METADATA_KEYS, chunk_metadata

RAW = {
    "id": "c1",
    "type": "text",
    "score": 0.5,
    "text": "hello",
    "item": {"key": "a.md", "timestamp": 12.0, "metadata": {"id": "mine", "folder": "f"}},
    "scoring_details": {"vector_score": 0.5, "keyword_rank": None},
}


def test_canonical_keys_win_and_the_chunk_is_not_modified() -> None:
    chunk = Chunk.model_validate(RAW)
    meta = chunk_metadata(chunk, search_query="q", instance_id="docs")
    assert meta == {
        "id": "c1",
        "score": 0.5,
        "type": "text",
        "filename": "a.md",
        "folder": "",
        "source": "a.md",
        "timestamp": 12.0,
        "scoring_details": {"vector_score": 0.5},
        "instance_id": "docs",
        "search_query": "q",
    }
    assert set(CHUNK_METADATA_KEYS) <= set(meta)
    assert chunk.item.metadata == {"id": "mine", "folder": "f"}


def test_the_json_form_maps_like_the_model() -> None:
    chunk = Chunk.model_validate({**RAW, "instance_id": "blog"})
    source = chunk.model_dump(mode="json", exclude_none=True)
    assert chunk_metadata(source, instance_id="docs") == chunk_metadata(chunk, instance_id="x")
    assert chunk_metadata(source)["instance_id"] == "blog"
    bare = chunk_metadata({"id": "c2", "score": 1.0})
    assert bare["type"] == "text"
    assert bare["filename"] == ""
    assert bare["scoring_details"] is None


def test_extra_scores_are_kept() -> None:
    chunk = Chunk.model_validate({**RAW, "scoring_details": {"new_score": 0.1}})
    assert chunk_metadata(chunk)["scoring_details"] == {"new_score": 0.1}
    assert chunk_metadata(Chunk(id="c", score=0.0))["scoring_details"] is None


def test_folder_is_the_key_directory_a_folder_filter_matches() -> None:
    def folder(key: str) -> str:
        return chunk_metadata({"id": "c", "score": 0.0, "item": {"key": key}})["folder"]

    assert folder("brewing/v60.md") == "brewing/"
    assert folder("docs/getting-started/guide.pdf") == "docs/getting-started/"
    assert folder("readme.md") == ""
    chunk = Chunk.model_validate({**RAW, "item": {"key": "a/b/c.md", "metadata": {"folder": "x/"}}})
    assert chunk_metadata(chunk)["folder"] == "a/b/"  # the built-in attribute wins
