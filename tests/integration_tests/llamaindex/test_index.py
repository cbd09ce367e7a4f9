"""AISearchIndex: upload documents, wait until searchable, delete, and build engines."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from llama_index.core import Document
from llama_index.core.llms.mock import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.readers.file.base import default_file_metadata_func

from aisearch import NotFoundError
from llamaindex_aisearch import (
    AISearchChatEngine,
    AISearchConnection,
    AISearchIndex,
    AISearchQueryEngine,
    AISearchRetriever,
)
from llamaindex_aisearch.index import READER_BOOKKEEPING

DOCS = [
    Document(
        text="The Probat roaster needs its chaff collector emptied after every third batch.",
        metadata={"file_name": "ops/roaster.txt", "team": "roastery"},
        doc_id="roaster-doc",
    ),
    Document(
        text="Our cold brew steeps for eighteen hours at fridge temperature before filtering.",
        metadata={"team": "bar"},
        doc_id="coldbrew",
    ),
]


def _filenames(nodes: list) -> set[str]:
    return {n.node.metadata["filename"] for n in nodes}


def test_from_documents_insert_delete_round_trip(
    conn: AISearchConnection, make_instance: Callable[..., str]
) -> None:
    iid = make_instance(custom_metadata=[{"field_name": "team", "data_type": "text"}])
    index = AISearchIndex.from_documents(DOCS, instance_id=iid, connection=conn, wait_timeout=60)
    retriever = index.as_retriever(similarity_top_k=5)
    assert isinstance(retriever, AISearchRetriever)
    nodes = retriever.retrieve("chaff collector roaster")
    assert "ops/roaster.txt" in _filenames(nodes)
    assert nodes[0].node.metadata["team"] == "roastery"
    assert "coldbrew.txt" in _filenames(retriever.retrieve("cold brew steeping hours"))

    index.insert(
        Document(text="Decaf is stored on the bottom shelf, left side.", doc_id="decaf-shelf")
    )
    assert "decaf-shelf.txt" in _filenames(retriever.retrieve("decaf shelf"))

    index.delete_ref_doc("coldbrew")
    assert "coldbrew.txt" not in _filenames(retriever.retrieve("cold brew steeping hours"))
    with pytest.raises(KeyError, match="coldbrew"):
        index.delete_ref_doc("coldbrew")


def test_delete_by_key_from_a_fresh_index(
    conn: AISearchConnection, make_instance: Callable[..., str]
) -> None:
    iid = make_instance()
    AISearchIndex.from_documents(DOCS[1:], instance_id=iid, connection=conn)
    fresh = AISearchIndex(iid, connection=conn)  # knows nothing of the earlier upload
    fresh.delete_ref_doc("coldbrew")
    assert conn.client.list_items(iid) == []


def test_update_ref_doc_replaces_the_item(
    conn: AISearchConnection, make_instance: Callable[..., str]
) -> None:
    iid = make_instance()
    index = AISearchIndex.from_documents(DOCS[1:], instance_id=iid, connection=conn)
    index.update_ref_doc(
        Document(text="Cold brew now steeps for twelve hours only.", doc_id="coldbrew")
    )
    items = conn.client.list_items(iid)
    assert [i.key for i in items] == ["coldbrew.txt"]
    nodes = index.as_retriever().retrieve("cold brew hours")
    assert "twelve" in nodes[0].node.get_content()


async def test_engines_from_the_index(
    conn: AISearchConnection, make_instance: Callable[..., str]
) -> None:
    iid = make_instance()
    index = AISearchIndex.from_documents(DOCS, instance_id=iid, connection=conn)
    engine = index.as_query_engine()
    assert isinstance(engine, AISearchQueryEngine)
    response = await engine.aquery("How often is the chaff collector emptied?")
    assert "ops/roaster.txt" in _filenames(response.source_nodes)
    chat = index.as_chat_engine(system_prompt="Be brief.")
    assert isinstance(chat, AISearchChatEngine)
    assert chat.chat("How long does cold brew steep?").source_nodes
    local = index.as_query_engine(llm=MockLLM())
    assert isinstance(local, RetrieverQueryEngine)
    assert local.query("chaff collector").source_nodes


def test_create_if_missing(conn: AISearchConnection) -> None:
    with pytest.raises(NotFoundError):
        conn.client.get_instance("li-created-by-index")
    index = AISearchIndex("li-created-by-index", create_if_missing=True, connection=conn)
    assert conn.client.get_instance("li-created-by-index").id == "li-created-by-index"
    index.insert(DOCS[0])
    assert index.as_retriever().retrieve("chaff")


async def test_async_insert_update_delete(
    conn: AISearchConnection, make_instance: Callable[..., str]
) -> None:
    iid = make_instance()
    index = AISearchIndex(iid, connection=conn)
    await index.ainsert(DOCS[1])
    retriever = index.as_retriever()
    assert "coldbrew.txt" in _filenames(await retriever.aretrieve("cold brew steeping hours"))
    await index.aupdate_ref_doc(
        Document(text="Cold brew now steeps for twelve hours only.", doc_id="coldbrew")
    )
    nodes = await retriever.aretrieve("cold brew hours")
    assert "twelve" in nodes[0].node.get_content()
    await index.ainsert_nodes([DOCS[0]])
    assert "ops/roaster.txt" in _filenames(await retriever.aretrieve("chaff collector"))
    await index.adelete_ref_doc("coldbrew")
    assert [i.key for i in await conn.async_client.list_items(iid)] == ["ops/roaster.txt"]
    with pytest.raises(KeyError):
        await index.adelete_ref_doc("coldbrew")


def test_directory_reader_files_with_the_same_name_stay_separate_items(
    conn: AISearchConnection, make_instance: Callable[..., str], tmp_path
) -> None:
    # SimpleDirectoryReader gives both files file_name="README.md": uploading them under
    # one key used to keep only the last
    from llama_index.core import SimpleDirectoryReader

    for team, fact in (("team-a", "grinds on the Mahlkonig"), ("team-b", "brews on the V60")):
        (tmp_path / team).mkdir()
        (tmp_path / team / "README.md").write_text(f"# {team}\n\nThe {team} crew {fact}.\n")
    docs = SimpleDirectoryReader(str(tmp_path), recursive=True).load_data()
    assert [d.metadata["file_name"] for d in docs] == ["README.md", "README.md"]
    iid = make_instance()
    index = AISearchIndex.from_documents(docs, instance_id=iid, connection=conn, wait_timeout=60)
    keys = sorted(item.key for item in conn.client.list_items(iid))
    assert keys == ["team-a/README.md", "team-b/README.md"]
    nodes = index.as_retriever(similarity_top_k=1).retrieve("Mahlkonig grinder crew")
    assert nodes[0].node.metadata["filename"] == "team-a/README.md"
    assert "Mahlkonig" in nodes[0].node.get_content()


def test_directory_reader_bookkeeping_is_not_item_metadata(
    conn: AISearchConnection, make_instance: Callable[..., str], tmp_path
) -> None:
    # The item metadata comes back with every chunk, in the text an LLM reads: the reader's
    # absolute path, size and file-system dates must not travel there; file_name and the
    # user's own metadata do.
    from llama_index.core import SimpleDirectoryReader
    from llama_index.core.schema import MetadataMode

    (tmp_path / "ops").mkdir()
    (tmp_path / "ops" / "roaster.md").write_text("The Probat chaff collector is emptied daily.\n")
    docs = SimpleDirectoryReader(
        str(tmp_path),
        recursive=True,
        file_metadata=lambda path: {
            **default_file_metadata_func(path),
            "team": "roastery",
        },
    ).load_data()
    dropped = set(READER_BOOKKEEPING)
    recorded = dropped & docs[0].metadata.keys()  # the reader did record them
    assert {"file_path", "file_type", "file_size", "last_modified_date"} <= recorded
    assert str(tmp_path) in docs[0].metadata["file_path"]
    iid = make_instance()  # no schema: the local server keeps every metadata field
    index = AISearchIndex.from_documents(docs, instance_id=iid, connection=conn, wait_timeout=60)
    [item] = conn.client.list_items(iid)
    assert item.metadata == {"file_name": "roaster.md", "team": "roastery"}
    [node] = index.as_retriever(similarity_top_k=1).retrieve("chaff collector")
    assert node.node.metadata["file_name"] == "roaster.md"
    assert node.node.metadata["team"] == "roastery"
    llm_text = node.node.get_content(metadata_mode=MetadataMode.LLM)
    assert str(tmp_path) not in llm_text
    assert not dropped & node.node.metadata.keys()
