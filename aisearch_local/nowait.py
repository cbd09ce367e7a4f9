"""A search run on the event loop never waits: what it would wait for sends it to a thread.

A cheap search costs less run on the event loop than handed to a search thread and back: two
threads taking turns at the GIL cost more than the search (docs/request-path.md, "Searches on
the event loop"). But the event loop serves every other request of the process, so a search
run there must never wait: not for a lock a writer holds, not for an index to be loaded or
rebuilt. :func:`no_waiting` marks the calling thread for the span of such a search; in it,

* :class:`hold` only *tries* a lock, and raises :class:`WouldWait` when another thread holds
  it (outside, it waits for the lock as ``with lock:`` does);
* :func:`refuse` raises :class:`WouldWait` where the search would start long work (load a
  vector table, build a keyword index or an item table).

The caller (``QueryService``) then runs the same search on a search thread, where waiting is
harmless. Nothing the search did before it stopped changes its answer there.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Protocol

__all__ = ["WouldWait", "active", "hold", "no_waiting", "refuse"]


class WouldWait(Exception):
    """A search on the event loop met something it would wait for: run it on a thread."""


_HERE = threading.local()


def active() -> bool:
    """Whether the calling thread runs a search that must not wait (:func:`no_waiting`)."""
    return bool(getattr(_HERE, "on", False))


@contextmanager
def no_waiting() -> Iterator[None]:
    """Mark the calling thread: :class:`hold` and :func:`refuse` raise instead of waiting."""
    before = active()
    _HERE.on = True
    try:
        yield
    finally:
        _HERE.on = before


def refuse(what: str) -> None:
    """Raise :class:`WouldWait` (naming ``what`` would take long) in a :func:`no_waiting` span."""
    if active():
        raise WouldWait(what)


class _Lock(Protocol):
    def acquire(self, blocking: bool = ..., timeout: float = ...) -> bool: ...

    def release(self) -> None: ...


class hold:
    """``with hold(lock):`` is ``with lock:``, but it never waits in a :func:`no_waiting` span.

    There, a lock held by another thread raises :class:`WouldWait` instead.
    """

    __slots__ = ("_lock",)

    def __init__(self, lock: _Lock) -> None:
        self._lock = lock

    def __enter__(self) -> None:
        if getattr(_HERE, "on", False):
            if not self._lock.acquire(blocking=False):
                raise WouldWait("a lock is held by another thread")
        else:
            self._lock.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._lock.release()
