"""Two writes of one process to one instance, acknowledged in either order.

SQLite orders them (generations g+1, g+2); their threads may hand their changes to the vector
table in the other order. The later write's change cannot be applied before the earlier one's:
it is acknowledged only once both are (or once the table was dropped, so that the next search
loads it from SQLite), never while the next search would miss it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from aisearch_local import keyword
from aisearch_local.options import resolve_options
from aisearch_local.service import LocalService
from aisearch_local.store import InstanceRecord
from tests.unit_tests.local._stall import stall_own_write


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[LocalService]:
    service = LocalService(tmp_path, embedder="hashing", keyword_engine="fts5")
    yield service
    service.close()


def _keys(svc: LocalService, inst: InstanceRecord, query: str) -> list[str]:
    opts = resolve_options(
        {"retrieval": {"retrieval_type": "vector", "match_threshold": 0}}, inst.config
    )
    return [c["item"]["key"] for c in svc.searcher.search(inst, query, opts)]


def _second_write(svc: LocalService, inst: InstanceRecord) -> Callable[[], None]:
    return lambda: svc.index_document(
        inst, key="two.md", data=b"Quokkas smile at zeppelins.", metadata={}
    )


def test_the_later_write_waits_for_the_earlier_one_then_both_show(
    svc: LocalService, monkeypatch: pytest.MonkeyPatch
) -> None:
    inst = svc.create_instance("default", {"id": "docs"})
    svc.index_document(inst, key="base.md", data=b"Kettles boil water.", metadata={})
    assert _keys(svc, inst, "kettles boil water")[:1] == ["base.md"]  # the table is loaded
    table = svc.store._tables[inst.pk]
    first, release = stall_own_write(svc, inst, monkeypatch, "one.md", b"Marmalade on toast.")
    waiting = threading.Event()
    real_wait = svc.store._applied.wait

    def wait(timeout: float | None = None) -> bool:
        waiting.set()
        return real_wait(timeout)

    monkeypatch.setattr(svc.store._applied, "wait", wait)
    second = threading.Thread(target=_second_write(svc, inst))
    second.start()
    try:
        assert waiting.wait(30)  # the later write is not acknowledged before the earlier one
    finally:
        release.set()
        first.join(30)
        second.join(30)
    assert svc.store._tables[inst.pk] is table  # both applied in order: no reload
    assert _keys(svc, inst, "quokkas smile at zeppelins")[:1] == ["two.md"]
    assert _keys(svc, inst, "marmalade on toast")[:1] == ["one.md"]


def test_an_acknowledged_write_shows_while_the_earlier_one_stays_stalled(
    svc: LocalService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keyword, "APPLY_WAIT_S", 0.05)
    inst = svc.create_instance("default", {"id": "docs"})
    svc.index_document(inst, key="base.md", data=b"Kettles boil water.", metadata={})
    assert _keys(svc, inst, "kettles boil water")[:1] == ["base.md"]
    first, release = stall_own_write(svc, inst, monkeypatch, "one.md", b"Marmalade on toast.")
    try:
        _second_write(svc, inst)()  # acknowledged: the next search must find it
        assert _keys(svc, inst, "quokkas smile at zeppelins")[:1] == ["two.md"]
    finally:
        release.set()
        first.join(30)
    assert _keys(svc, inst, "marmalade on toast")[:1] == ["one.md"]
    assert _keys(svc, inst, "quokkas smile at zeppelins")[:1] == ["two.md"]
