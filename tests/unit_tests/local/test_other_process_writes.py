"""Another process's write shows in this process's next search, even while it writes itself.

Two services on one data folder stand for two ``serve --workers`` workers (or a server and
``aisearch-local ingest``): each has its own store, vector tables and keyword indexes. A table
behind SQLite only by this process's own writes under way is kept (they apply their changes);
behind by another process's generation, it is reloaded.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aisearch_local.options import resolve_options
from aisearch_local.service import LocalService
from aisearch_local.store import InstanceRecord
from tests.unit_tests.local._stall import stall_own_write


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[LocalService, LocalService]]:
    a = LocalService(tmp_path, embedder="hashing", keyword_engine="tantivy")
    b = LocalService(tmp_path, embedder="hashing", keyword_engine="tantivy")
    yield a, b
    a.close()
    b.close()


def _keys(svc: LocalService, inst: InstanceRecord, query: str, mode: str) -> list[str]:
    opts = resolve_options(
        {"retrieval": {"retrieval_type": mode, "match_threshold": 0}}, inst.config
    )
    return [c["item"]["key"] for c in svc.searcher.search(inst, query, opts)]


@pytest.mark.parametrize("mode", ["vector", "keyword"])
def test_a_write_of_another_process_shows_while_an_own_write_is_under_way(
    pair: tuple[LocalService, LocalService], monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    a, b = pair
    inst = a.create_instance("default", {"id": "docs"})
    a.index_document(inst, key="base.md", data=b"Kettles boil water.", metadata={})
    assert _keys(a, inst, "kettles boil water", mode)[:1] == ["base.md"]  # a's indexes built
    b.index_document(
        b.require_instance("default", "docs"),
        key="theirs.md",
        data=b"Quokkas smile at zeppelins.",
        metadata={},
    )
    # a's own write commits, then stalls before applying its change to a's indexes
    writer, release = stall_own_write(a, inst, monkeypatch, "mine.md", b"Marmalade on toast.")
    try:
        assert _keys(a, inst, "quokkas smile at zeppelins", mode)[:1] == ["theirs.md"]
    finally:
        release.set()
        writer.join(30)
    assert _keys(a, inst, "marmalade on toast", mode)[:1] == ["mine.md"]
    assert _keys(a, inst, "quokkas smile at zeppelins", mode)[:1] == ["theirs.md"]


def test_own_writes_under_way_keep_the_table(
    pair: tuple[LocalService, LocalService], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Behind SQLite only by an own write under way: the table is kept, not reloaded."""
    a, _ = pair
    inst = a.create_instance("default", {"id": "docs"})
    a.index_document(inst, key="base.md", data=b"Kettles boil water.", metadata={})
    _keys(a, inst, "kettles", "vector")
    table = a.store._tables[inst.pk]
    writer, release = stall_own_write(a, inst, monkeypatch, "mine.md", b"Marmalade on toast.")
    try:
        _keys(a, inst, "kettles", "vector")
        assert a.store._tables[inst.pk] is table
    finally:
        release.set()
        writer.join(30)
    assert a.store._tables[inst.pk] is table
    assert _keys(a, inst, "marmalade on toast", "vector")[:1] == ["mine.md"]


def test_a_worker_stopping_saves_no_graph_of_an_instance_another_one_deleted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``serve --workers``: the graph files of a deleted instance do not come back at stop."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # the graphs' signing key
    a = LocalService(tmp_path / "data", embedder="hashing", vector_search="ann", ann_min_rows=0)
    b = LocalService(tmp_path / "data", embedder="hashing", vector_search="ann", ann_min_rows=0)
    try:
        gone = a.create_instance("default", {"id": "gone"})
        kept = a.create_instance("default", {"id": "kept"})
        for inst in (gone, kept):
            for n in range(20):
                data = f"Note {n} on kettles.".encode()
                a.index_document(inst, key=f"{n}.md", data=data, metadata={})
            ann = b.searcher.ann
            assert ann is not None
            ann.warm(inst, b.store.index(inst))  # b builds both graphs (as a search would)
            assert ann.wait(inst, 60)
        a.delete_instance(gone)  # deletes its graph's files (none saved yet)
    finally:
        a.close()
        b.close()  # b holds both graphs: it saves the kept one only
    names = {p.name.split(".")[0] for p in (tmp_path / "data" / "ann").iterdir()}
    assert names == {str(kept.pk)}


def test_the_generation_is_read_once_per_commit_of_any_process(
    pair: tuple[LocalService, LocalService], monkeypatch: pytest.MonkeyPatch
) -> None:
    # a search reads the instance's generation from SQLite only when something was committed
    # since (by this process or another); while this process's writer is busy it always reads
    a, b = pair
    inst = a.create_instance("default", {"id": "docs"})
    a.index_document(inst, key="base.md", data=b"Kettles boil water.", metadata={})
    reads: list[int] = []
    real = a.store._generation

    def counted(inst_pk: int) -> Any:
        reads.append(inst_pk)
        return real(inst_pk)

    monkeypatch.setattr(a.store, "_generation", counted)
    a.store.index(inst)
    a.store.index(inst)
    assert len(reads) == 1
    a.index_document(inst, key="mine.md", data=b"Quokkas smile.", metadata={})  # own commit
    assert _keys(a, inst, "quokkas smile", "vector")[:1] == ["mine.md"]
    reads.clear()
    b.index_document(  # another process's commit
        b.require_instance("default", "docs"),
        key="theirs.md",
        data=b"Zeppelins hum softly.",
        metadata={},
    )
    assert _keys(a, inst, "zeppelins hum softly", "vector")[:1] == ["theirs.md"]
    assert _keys(a, inst, "zeppelins hum softly", "vector")[:1] == ["theirs.md"]
    assert len([pk for pk in reads if pk == inst.pk]) >= 1
    reads.clear()
    with a.store._lock:  # as during a write of this process: no stamp to trust
        done = threading.Event()
        threading.Thread(target=lambda: (a.store.index(inst), done.set())).start()
        assert done.wait(10)
    assert reads == [inst.pk]
    a.store.index(inst)  # the writer is free again: the stamp cached before still holds
    assert reads == [inst.pk]
