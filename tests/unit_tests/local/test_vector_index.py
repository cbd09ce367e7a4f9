"""The vector index lifecycle: updated in place by writes, persisted, reloaded, rebuilt."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aisearch_local import vectors
from aisearch_local.options import resolve_options
from aisearch_local.records import InstanceIndex
from aisearch_local.service import LocalService
from aisearch_local.store import DB_FILENAME, NewChunk, Store

TEXTS = {
    "espresso.md": "Espresso is brewed under nine bars of pressure.",
    "cold-brew.md": "Cold brew steeps coarse grounds in cold water for hours.",
    "kenya.txt": "Kenyan coffee is bright with blackcurrant acidity.",
}


def _svc(path: Path | None) -> LocalService:
    return LocalService(path, embedder="hashing", generator="extractive")


@pytest.fixture
def svc(tmp_path):
    service = _svc(tmp_path)
    yield service
    service.close()


def _keys(svc: LocalService, inst, query: str, **retrieval) -> list[str]:
    opts = resolve_options(
        {"retrieval": {"match_threshold": 0, "max_num_results": 50, **retrieval}}, inst.config
    )
    return [c["item"]["key"] for c in svc.searcher.search(inst, query, opts)]


def _fill(svc: LocalService, iid: str = "v"):
    inst = svc.create_instance("default", {"id": iid})
    for key, text in TEXTS.items():
        svc.index_document(inst, key=key, data=text.encode(), metadata={"origin": key})
    return inst


def _vdir(svc: LocalService, inst) -> Path:
    assert svc.store.data_dir is not None
    return svc.store.data_dir / "vectors" / str(inst.pk)


def _head(svc: LocalService, inst) -> dict:
    return json.loads((_vdir(svc, inst) / "head.json").read_text())


def test_writes_update_the_table_in_place_and_the_next_search_sees_them(svc):
    inst = _fill(svc)
    assert set(_keys(svc, inst, "coffee espresso cold", retrieval_type="vector")) == set(TEXTS)
    table = svc.store._tables[inst.pk]
    first = svc.store.index(inst)

    svc.index_document(inst, key="milk.md", data=b"Steamed milk for a flat white.", metadata={})
    assert svc.store._tables[inst.pk] is table  # appended, not rebuilt
    snap = svc.store.index(inst)
    assert np.shares_memory(snap.matrix, first.matrix)  # same buffer, more rows
    assert "milk.md" in _keys(svc, inst, "steamed milk flat white")

    old = svc.store.get_item_by_key(inst, "espresso.md")
    assert old is not None
    svc.delete_item(inst, old)
    assert "espresso.md" not in _keys(svc, inst, "espresso pressure", retrieval_type="vector")
    assert "espresso.md" not in _keys(svc, inst, "espresso pressure", retrieval_type="hybrid")

    svc.index_document(inst, key="kenya.txt", data=b"Now about kettles and water.", metadata={})
    hits = _keys(svc, inst, "blackcurrant acidity", retrieval_type="keyword")
    assert "kenya.txt" not in hits  # re-indexed: the old chunk is tombstoned
    assert "kenya.txt" in _keys(svc, inst, "kettles water", retrieval_type="vector")
    assert svc.store._tables[inst.pk] is table
    assert table.dead == 2 and table.n == 5

    svc.delete_instance(inst)
    assert inst.pk not in svc.store._tables
    assert not _vdir(svc, inst).exists()


def test_a_snapshot_under_way_is_not_changed_by_a_write(svc):
    inst = _fill(svc)
    snap = svc.store.index(inst)
    rows = len(snap.cids)
    old = svc.store.get_item_by_key(inst, "kenya.txt")
    assert old is not None
    svc.delete_item(inst, old)
    svc.index_document(inst, key="new.md", data=b"A new document on grinders.", metadata={})
    assert len(snap.cids) == rows and snap.alive is None
    assert svc.store.index(inst).alive is not None


def test_listeners_hear_appends_tombstones_and_resets(svc):
    inst = _fill(svc)
    table = svc.store._tables.get(inst.pk) or (svc.store.index(inst).table)
    heard: list[tuple[str, list[int]]] = []

    class Listener:
        def on_append(self, rows: np.ndarray) -> None:
            heard.append(("append", rows.tolist()))

        def on_tombstone(self, rows: np.ndarray) -> None:
            heard.append(("tombstone", rows.tolist()))

        def on_reset(self) -> None:
            heard.append(("reset", []))

    table.add_listener(Listener())
    svc.index_document(inst, key="espresso.md", data=b"Espresso again, shorter.", metadata={})
    assert heard == [("tombstone", [0]), ("append", [3])]
    table.compact()
    assert heard[-1] == ("reset", [])


def test_restart_loads_the_file_without_reading_embeddings_from_sqlite(tmp_path):
    svc = _svc(tmp_path)
    inst = _fill(svc)
    before = _keys(svc, inst, "cold water hours", retrieval_type="vector")
    matrix = svc.store.index(inst).matrix.copy()
    svc.close()
    # zero every stored embedding: a rebuild from SQLite would now rank differently
    with sqlite3.connect(tmp_path / DB_FILENAME) as db:
        db.execute("UPDATE chunks SET embedding = zeroblob(length(embedding))")
    svc = _svc(tmp_path)
    try:
        inst = svc.store.get_instance("default", "v")
        assert inst is not None
        assert np.array_equal(svc.store.index(inst).matrix, matrix)
        assert _keys(svc, inst, "cold water hours", retrieval_type="vector") == before
    finally:
        svc.close()


def _rebuilt(tmp_path: Path, damage) -> None:
    """Damage the file of a filled instance; a restart must rebuild it and search right."""
    svc = _svc(tmp_path)
    inst = _fill(svc)
    matrix = svc.store.index(inst).matrix.copy()
    vdir = _vdir(svc, inst)
    svc.close()
    damage(vdir)
    svc = _svc(tmp_path)
    try:
        inst = svc.store.get_instance("default", "v")
        assert inst is not None
        snap = svc.store.index(inst)
        assert np.array_equal(snap.matrix, matrix)
        assert "cold-brew.md" in _keys(svc, inst, "cold water hours")
        assert _head(svc, inst)["rows"] == 3  # rewritten
    finally:
        svc.close()


def _set_head(**fields):
    def damage(vdir: Path) -> None:
        head = json.loads((vdir / "head.json").read_text())
        head.update(fields)
        (vdir / "head.json").write_text(json.dumps(head))

    return damage


def _write(name: str, data: bytes):
    def damage(vdir: Path) -> None:
        (vdir / name).write_bytes(data)

    return damage


@pytest.mark.parametrize(
    "damage",
    [
        lambda vdir: (vdir / "head.json").unlink(),
        lambda vdir: (vdir / "e0.f32").unlink(),
        lambda vdir: (vdir / "e0.f32").write_bytes((vdir / "e0.f32").read_bytes()[:100]),
        _set_head(gen=0),  # stale: a crash between COMMIT and the file write
        _set_head(rows=10**12),
        _set_head(rows=-1),
        _set_head(rows=2),
        _set_head(dead=5),
        _set_head(dim=16),
        _set_head(nonce="0" * 32),
        _set_head(format=True),
        _set_head(epoch="0"),
        _write("head.json", b"\xff\xfe not json"),
        _write("head.json", b"[" * 10_000),
        _write("head.json", b"{}"),
        _write("e0.cid", np.array([3, 2, 1], dtype=np.int64).tobytes()),
        _write("e0.cid", np.array([-5, 2, 3], dtype=np.int64).tobytes()),
        _write("e0.item", np.array([1, 2, 10**15], dtype=np.int64).tobytes()),
        _write("e0.dead", np.array([99], dtype=np.int64).tobytes()),
        # the right size, NaN or huge values: NaN scores emptied even hybrid's keyword hits
        lambda vdir: (vdir / "e0.f32").write_bytes(
            np.full((vdir / "e0.f32").stat().st_size // 4, np.nan, np.float32).tobytes()
        ),
        lambda vdir: (vdir / "e0.f32").write_bytes(
            np.full((vdir / "e0.f32").stat().st_size // 4, 1e30, np.float32).tobytes()
        ),
    ],
    ids=lambda d: getattr(d, "__name__", "damage"),
)
def test_a_stale_truncated_or_hostile_file_is_rebuilt(tmp_path, damage):
    _rebuilt(tmp_path, damage)


def test_hostile_dead_list_is_rebuilt(tmp_path):
    def damage(vdir: Path) -> None:
        head = json.loads((vdir / "head.json").read_text())
        head.update(dead=1, rows=4)  # claims a tombstone; the live count no longer matches
        (vdir / "head.json").write_text(json.dumps(head))
        (vdir / "e0.dead").write_bytes(np.array([1], dtype=np.int64).tobytes())

    _rebuilt(tmp_path, damage)


def test_kill_9_between_commit_and_file_write_loses_nothing(tmp_path):
    svc = _svc(tmp_path)
    _fill(svc)
    svc.close()
    script = textwrap.dedent(
        f"""
        import os, signal
        from aisearch_local import vectors
        from aisearch_local.service import LocalService

        def die(*_args, **_kwargs):
            os.kill(os.getpid(), signal.SIGKILL)

        svc = LocalService({str(tmp_path)!r}, embedder="hashing", generator="extractive")
        inst = svc.store.get_instance("default", "v")
        svc.store.index(inst)
        vectors.VectorTable.persist = die
        svc.index_document(inst, key="milk.md", data=b"Steamed milk, flat white.", metadata={{}})
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], check=False, timeout=120)
    assert proc.returncode == -9
    svc = _svc(tmp_path)
    try:
        inst = svc.store.get_instance("default", "v")
        assert inst is not None
        assert "milk.md" in _keys(svc, inst, "steamed milk flat white")
        assert _head(svc, inst)["rows"] == 4
    finally:
        svc.close()


def test_a_failed_write_leaves_the_table_and_file_untouched(svc, monkeypatch):
    inst = _fill(svc)
    svc.store.index(inst)
    head = _head(svc, inst)

    def boom(*_args, **_kwargs):
        raise sqlite3.OperationalError("disk full")

    monkeypatch.setattr(svc.store, "_insert_chunks", boom)
    with pytest.raises(sqlite3.OperationalError):
        svc.index_document(inst, key="espresso.md", data=b"Other text.", metadata={})
    assert _head(svc, inst) == head
    assert svc.store._tables[inst.pk].dead == 0
    assert "espresso.md" in _keys(svc, inst, "espresso pressure")


def test_compaction_drops_tombstones_and_rewrites_the_file(svc, monkeypatch):
    monkeypatch.setattr(vectors, "COMPACT_MIN", 2)
    inst = _fill(svc)
    svc.store.index(inst)
    for key in ("espresso.md", "kenya.txt"):
        item = svc.store.get_item_by_key(inst, key)
        assert item is not None
        svc.delete_item(inst, item)
    table = svc.store._tables[inst.pk]
    assert table.dead == 0 and table.n == 1 and table.epoch == 1
    assert _head(svc, inst)["epoch"] == 1
    assert sorted(p.name for p in _vdir(svc, inst).iterdir()) == [
        "e1.cid",
        "e1.dead",
        "e1.f32",
        "e1.item",
        "head.json",
    ]
    assert _keys(svc, inst, "coffee cold espresso") == ["cold-brew.md"]


def test_in_memory_store_writes_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    svc = _svc(None)
    try:
        inst = _fill(svc)
        assert "kenya.txt" in _keys(svc, inst, "blackcurrant")
        assert svc.store._tables[inst.pk].directory is None
    finally:
        svc.close()
    assert list(tmp_path.iterdir()) == []


def test_chunk_ids_never_come_back_after_a_delete(tmp_path):
    store = Store(tmp_path)
    try:
        inst = store.create_instance("default", "c", {}, embedder="e", dim=4)
        assert inst is not None
        emb = np.eye(4, dtype=np.float32)[:1]
        one = [NewChunk("x", 0, 1)]
        store.write_item(inst, key="a", data=b"x", metadata={}, timestamp_ms=None,
                         source_id=None, chunks=one, embeddings=emb)  # fmt: skip
        first = store.index(inst).cids.tolist()
        store.write_item(inst, key="a", data=b"x", metadata={}, timestamp_ms=None,
                         source_id=None, chunks=one, embeddings=emb)  # fmt: skip
        again = store.index(inst)
        assert again.cids.tolist() == [first[0], first[0] + 1]
        assert again.alive is not None and again.alive.tolist() == [False, True]
    finally:
        store.close()


def test_another_process_writing_the_database_is_seen(tmp_path):
    svc = _svc(tmp_path)
    try:
        inst = _fill(svc)
        svc.store.index(inst)
        other = _svc(tmp_path)
        try:
            oinst = other.store.get_instance("default", "v")
            assert oinst is not None
            other.index_document(oinst, key="milk.md", data=b"Steamed milk.", metadata={})
        finally:
            other.close()
        assert "milk.md" in _keys(svc, inst, "steamed milk")
    finally:
        svc.close()


def test_the_index_of_a_deleted_instance_is_empty(svc):
    inst = _fill(svc)
    svc.delete_instance(inst)
    assert len(svc.store.index(inst).cids) == 0
    assert _keys(svc, inst, "coffee") == []


@settings(max_examples=100, deadline=None)
@given(
    cids=st.lists(st.integers(0, 60), max_size=30, unique=True),
    dead=st.sets(st.integers(0, 29)),
    asked=st.lists(st.integers(-3, 70), max_size=40),
)
def test_rows_of_finds_each_live_chunks_row_and_nothing_else(cids, dead, asked):
    ordered = np.asarray(sorted(cids), dtype=np.int64)
    alive = np.asarray([i not in dead for i in range(len(ordered))]) if dead else None
    idx = InstanceIndex(1, np.zeros((len(ordered), 4), np.float32), ordered, ordered, alive)
    where = {int(c): i for i, c in enumerate(ordered) if alive is None or alive[i]}
    got = idx.rows_of(np.asarray(asked, dtype=np.int64))
    assert got.dtype == np.int64
    assert got.tolist() == [where.get(c, -1) for c in asked]
