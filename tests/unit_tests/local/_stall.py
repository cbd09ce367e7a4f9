"""A write of a service that commits, then stalls before handing its change to the indexes."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from aisearch_local.service import LocalService
from aisearch_local.store import InstanceRecord

__all__ = ["stall_own_write"]

_NAME = "stalled-write"


def stall_own_write(
    svc: LocalService,
    inst: InstanceRecord,
    monkeypatch: pytest.MonkeyPatch,
    key: str,
    data: bytes,
) -> tuple[threading.Thread, threading.Event]:
    """Start a write of ``key`` that commits, then waits before applying its change.

    Returns once it has committed: its thread, and the event that lets it go on (set it, then
    join the thread). Other writes of ``svc`` are not stalled.
    """
    real = svc.store._after_write
    committed, release = threading.Event(), threading.Event()

    def stalled(inst_pk: int, change: Any) -> None:
        if threading.current_thread().name == _NAME:
            committed.set()
            release.wait(30)
        real(inst_pk, change)

    monkeypatch.setattr(svc.store, "_after_write", stalled)
    writer = threading.Thread(
        target=svc.index_document,
        args=(inst,),
        kwargs={"key": key, "data": data, "metadata": {}},
        name=_NAME,
    )
    writer.start()
    assert committed.wait(30)
    return writer, release
