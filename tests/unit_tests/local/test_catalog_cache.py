"""The store's cache of instance records and namespace names (one SQLite read less per request).

A cached record is served until the next commit to the database, by this process or another:
each test shows the write that must empty the cache doing so.
"""

from __future__ import annotations

import json
import sqlite3
import threading

import pytest

from aisearch_local.service import LocalService
from aisearch_local.store import DB_FILENAME


@pytest.fixture(params=["file", "memory"])
def svc(request, tmp_path):
    service = LocalService(
        tmp_path if request.param == "file" else None, embedder="hashing", generator="extractive"
    )
    yield service
    service.close()


def test_records_are_cached_until_a_write(svc):
    inst = svc.create_instance("default", {"id": "a"})
    first = svc.store.get_instance("default", "a")
    assert first is not None and first.pk == inst.pk
    assert svc.store.get_instance("default", "a") is first  # served from the cache
    svc.update_instance(first, {"max_num_results": 7})
    after = svc.require_instance("default", "a")
    assert after is not first and after.config["max_num_results"] == 7


def test_a_delete_is_seen_at_once(svc):
    svc.create_namespace("ns1", None, {})
    inst = svc.create_instance("ns1", {"id": "gone"})
    assert svc.require_instance("ns1", "gone").pk == inst.pk
    svc.delete_instance(inst)
    assert svc.store.get_instance("ns1", "gone") is None
    assert svc.store.has_namespace("ns1")
    svc.delete_namespace("ns1")
    assert not svc.store.has_namespace("ns1")
    with pytest.raises(Exception, match="namespace 'ns1' not found"):
        svc.require_instance("ns1", "gone")


def test_any_write_empties_the_cache(svc):
    """An item write commits too: the instance's record is read again (modified by nothing)."""
    svc.create_instance("default", {"id": "b"})
    first = svc.require_instance("default", "b")
    svc.index_document(first, key="x.md", data=b"Espresso crema.", metadata={})
    again = svc.require_instance("default", "b")
    assert again is not first and again == first


def test_another_threads_cache_is_emptied_too(svc):
    svc.create_instance("default", {"id": "c"})
    seen = []

    def read() -> None:
        seen.append(svc.store.get_instance("default", "c"))

    t = threading.Thread(target=read)
    t.start()
    t.join()
    svc.update_instance(seen[0], {"max_num_results": 3})
    t = threading.Thread(target=read)
    t.start()
    t.join()
    assert seen[1] is not None and seen[1].config["max_num_results"] == 3


def test_a_write_by_another_process_empties_the_cache(tmp_path):
    """``aisearch-local ingest`` or another server on the same file: ``PRAGMA data_version``."""
    svc = LocalService(tmp_path, embedder="hashing", generator="extractive")
    try:
        svc.create_instance("default", {"id": "d"})
        first = svc.require_instance("default", "d")
        assert svc.require_instance("default", "d") is first
        other = sqlite3.connect(tmp_path / DB_FILENAME, isolation_level=None)
        try:
            config = {**first.config, "max_num_results": 9}
            other.execute(
                "UPDATE instances SET config = ? WHERE pk = ?", (json.dumps(config), first.pk)
            )
            assert svc.require_instance("default", "d").config["max_num_results"] == 9
            other.execute("DELETE FROM instances WHERE pk = ?", (first.pk,))
            assert svc.store.get_instance("default", "d") is None
            other.execute(
                "INSERT INTO namespaces(name, created_at, modified_at) VALUES ('n2', '', '')"
            )
            assert svc.store.has_namespace("n2")
            other.execute("DELETE FROM namespaces WHERE name = 'n2'")
            assert not svc.store.has_namespace("n2")
        finally:
            other.close()
    finally:
        svc.close()


def test_derived_values_are_built_once_until_a_commit(svc):
    builds: list[int] = []

    def build() -> list[str]:
        builds.append(1)
        return [i.id for i in svc.store.list_instances()]

    svc.create_instance("default", {"id": "d1"})
    first = svc.store.derived("ids", build)
    assert first == ["d1"] and svc.store.derived("ids", build) is first and len(builds) == 1
    svc.create_instance("default", {"id": "d2"})
    assert svc.store.derived("ids", build) == ["d1", "d2"] and len(builds) == 2
    assert svc.store.derived("other", lambda: 5) == 5  # keys are apart


def test_derived_values_see_another_process_commit(tmp_path):
    svc = LocalService(tmp_path, embedder="hashing", generator="extractive")
    try:
        svc.create_instance("default", {"id": "p1"})
        ids = lambda: [i.id for i in svc.store.list_instances()]  # noqa: E731
        assert svc.store.derived("ids", ids) == ["p1"]
        conn = sqlite3.connect(tmp_path / DB_FILENAME)  # another process's write, in effect
        with conn:
            conn.execute("UPDATE instances SET id = 'p2' WHERE id = 'p1'")
        conn.close()
        assert svc.store.derived("ids", ids) == ["p2"]
    finally:
        svc.close()
