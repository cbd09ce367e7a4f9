"""Parallel reads: one read-only SQLite connection per thread, one writer (issue #16).

Searches run while a writer re-indexes: every answer is consistent (each chunk belongs to its
item, no 5xx, no "database is locked"), a read never waits for an open write transaction, and
``close()`` with reading threads alive closes every connection and leaves them a clear error.
"""

from __future__ import annotations

import gc
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from aisearch_local.embed import make_embedder
from aisearch_local.service import LocalService
from aisearch_local.store import NewChunk, Store
from aisearch_local.testing import LocalServer

pytestmark = pytest.mark.integration

WORDS = ["espresso", "grinder", "kettle", "roast", "filter", "crema", "brew", "beans"]


def _doc(key: str, version: int) -> str:
    # every chunk of the document names its key and version: a search answer can be checked
    marker = f"marker{key.replace('-', '')}v{version}"
    return "\n\n".join(
        f"{marker} {WORDS[(i + version) % len(WORDS)]} {WORDS[i % len(WORDS)]} " + "coffee " * 30
        for i in range(6)
    )


def _upload(http: httpx.Client, key: str, version: int) -> None:
    r = http.post(
        "/ai-search/instances/conc/items",
        files={"file": (f"{key}.txt", _doc(key, version).encode())},
    )
    assert r.status_code == 200, r.text
    assert r.json()["result"]["status"] == "completed", r.text


@pytest.mark.parametrize("in_memory", [False, True], ids=["file", "in-memory"])
def test_searches_while_one_writer_reindexes_are_consistent(tmp_path: Path, in_memory: bool):
    data_dir = None if in_memory else tmp_path
    with (
        LocalServer(data_dir=data_dir, in_memory=in_memory) as server,
        httpx.Client(base_url=server.account_url, timeout=60) as http,
    ):
        r = http.post("/ai-search/instances", json={"id": "conc"})
        assert r.status_code == 201, r.text
        keys = [f"doc-{i}" for i in range(8)]
        for key in keys:
            _upload(http, key, 0)
        stop = threading.Event()
        problems: list[str] = []
        searches = [0]

        def writer() -> None:
            # at least 5 rewrites, and on until the readers searched meanwhile (a loaded
            # machine may start them late); a reader that failed stops it
            version = 1
            while not stop.is_set() and not problems and version < 200:
                if version >= 6 and searches[0] >= 12:
                    break
                for key in keys:
                    _upload(http, key, version)
                version += 1

        def reader(n: int) -> None:
            with httpx.Client(base_url=server.account_url, timeout=60) as mine:
                while not stop.is_set():
                    mode = ("hybrid", "keyword", "vector")[n % 3]
                    r = mine.post(
                        "/ai-search/instances/conc/search",
                        json={
                            "query": f"{WORDS[n % len(WORDS)]} coffee",
                            "ai_search_options": {
                                "retrieval": {"retrieval_type": mode, "match_threshold": 0}
                            },
                        },
                    )
                    if r.status_code != 200:
                        problems.append(f"{r.status_code}: {r.text[:300]}")
                        return
                    for chunk in r.json()["result"]["chunks"]:
                        stem = chunk["item"]["key"].removesuffix(".txt").replace("-", "")
                        if f"marker{stem}v" not in chunk["text"]:
                            problems.append(f"chunk of another item: {chunk['item']['key']}")
                    searches[0] += 1

        with ThreadPoolExecutor(9) as pool:
            futures = [pool.submit(reader, n) for n in range(6)]
            write = pool.submit(writer)
            write.result(timeout=300)
            stop.set()
            for f in futures:
                f.result(timeout=60)
        assert problems == []
        assert searches[0] > 0
        # the last version of every document is what a keyword search finds now
        r = http.post(
            "/ai-search/instances/conc/search",
            json={
                "query": f"marker{keys[0].replace('-', '')}v0",
                "ai_search_options": {"retrieval": {"retrieval_type": "keyword"}},
            },
        )
        assert r.status_code == 200
        assert r.json()["result"]["chunks"] == []


def _store_with_chunks(path: Path | None) -> tuple[Store, Any]:
    svc = LocalService(path, embedder=make_embedder("hashing"), generator="extractive")
    inst = svc.create_instance("default", {"id": "s"})
    texts = ["alpha beta gamma", "delta epsilon", "alpha zeta"]
    emb = svc.embedder.embed(texts)
    chunks = [NewChunk(text=t, start=0, end=len(t)) for t in texts]
    svc.store.bulk_insert(inst, [("a.txt", b"x", {}, 1, chunks, np.asarray(emb))])
    return svc.store, inst


def test_a_read_does_not_wait_for_an_open_write_transaction(tmp_path: Path):
    store, inst = _store_with_chunks(tmp_path)
    try:
        got: list[Any] = []
        with store.transaction() as cur:
            cur.execute("UPDATE items SET status = 'error' WHERE inst_pk = ?", (inst.pk,))
            # another thread reads while this transaction is open (it held the one lock before)
            t = threading.Thread(
                target=lambda: got.append(
                    (store.keyword(inst, "alpha", 10), store.get_item_by_key(inst, "a.txt"))
                )
            )
            t.start()
            t.join(timeout=20)
            blocked = t.is_alive()
        t.join()
        assert not blocked, "a read waited for the write transaction to end"
        hits, item = got[0]
        assert len(hits) == 2
        assert item is not None and item["status"] == "completed"  # the last commit only
    finally:
        store.close()


def test_close_with_reading_threads_alive_closes_every_connection(tmp_path: Path):
    store, inst = _store_with_chunks(tmp_path)
    started = threading.Barrier(5)
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        store.keyword(inst, "alpha", 10)
        started.wait(timeout=30)
        try:
            while True:
                store.keyword(inst, "alpha", 10)
                store.chunks_by_cid([1, 2, 3])
        except BaseException as exc:  # the store closed under us
            errors.append(exc)
        done.wait(timeout=30)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    started.wait(timeout=30)
    readers = list(store._readers)
    assert len(readers) >= 4  # the four threads' (and this one's, from the set-up)
    store.close()
    store.close()  # idempotent
    assert all(r.closed for r in readers)
    done.set()
    for t in threads:
        t.join(timeout=30)
    assert len(errors) == 4
    assert all(isinstance(e, sqlite3.ProgrammingError) for e in errors), errors
    with pytest.raises(sqlite3.ProgrammingError):
        store.get_item_by_key(inst, "a.txt")
    with pytest.raises(sqlite3.ProgrammingError, match="closed"), store.transaction():
        pass


def test_a_thread_that_ends_takes_its_connection_with_it(tmp_path: Path):
    store, inst = _store_with_chunks(tmp_path)
    try:
        for _ in range(5):
            t = threading.Thread(target=store.keyword, args=(inst, "alpha", 10))
            t.start()
            t.join()
        gc.collect()
        assert len(store._readers) <= 1  # not one per thread that ever read
    finally:
        store.close()


def test_an_in_memory_store_reads_on_its_one_connection():
    store, inst = _store_with_chunks(None)
    try:
        with ThreadPoolExecutor(4) as pool:
            hits = list(pool.map(lambda _: store.keyword(inst, "alpha", 10), range(20)))
        assert all(len(h) == 2 for h in hits)
        assert len(store._readers) == 0
    finally:
        store.close()


def test_a_write_by_another_process_still_drops_the_index(tmp_path: Path):
    store, inst = _store_with_chunks(tmp_path)
    other = Store(tmp_path)
    try:
        before = store.version(inst.pk)
        with other.transaction() as cur:
            cur.execute("UPDATE items SET file_size = 99 WHERE inst_pk = ?", (inst.pk,))
        assert store.version(inst.pk) != before
    finally:
        other.close()
        store.close()


def test_a_search_whose_rows_a_write_deleted_skips_them(tmp_path: Path, monkeypatch):
    # the race, made deterministic: the index was read just before a write deleted the item
    from aisearch_local.options import resolve_options

    svc = LocalService(tmp_path, embedder=make_embedder("hashing"), generator="extractive")
    try:
        inst = svc.create_instance("default", {"id": "s"})
        for key in ("a.txt", "b.txt"):
            svc.index_document(inst, key=key, data=b"alpha beta gamma " + key.encode(), metadata={})
        stale = svc.store.index(inst)
        gone = svc.store.get_item_by_key(inst, "a.txt")
        assert gone is not None
        svc.store.delete_item(inst, gone["_pk"])
        monkeypatch.setattr(svc.store, "index", lambda _inst: stale)
        retrieval = {"retrieval_type": "hybrid", "match_threshold": 0}
        opts = resolve_options({"retrieval": retrieval}, inst.config)
        found = svc.searcher.search(inst, "alpha beta", opts)
        assert [c["item"]["key"] for c in found] == ["b.txt"]
    finally:
        svc.close()
