"""Lazily built core clients for the framework adapters: one sync, one async per event loop.

A LangChain class or a LlamaIndex connection builds its core clients on first use and
keeps them: one :class:`~aisearch.AISearchClient`, and one
:class:`~aisearch.AsyncAISearchClient` per running event loop (an ``httpx.AsyncClient``
keeps connections bound to the loop that opened them, so a client built in one
``asyncio.run`` is not reused in the next). Built clients are closed by ``close`` /
``aclose``, or else when the holder is garbage-collected or the loop shuts down (see
``aisearch._lifecycle``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING

from aisearch._lifecycle import close_at_loop_shutdown, close_when_collected

if TYPE_CHECKING:
    from aisearch import AISearchClient, AsyncAISearchClient

__all__ = ["LazyClients"]

_Entry = tuple[asyncio.AbstractEventLoop, "AsyncAISearchClient", AsyncGenerator[None, None]]


class LazyClients:
    """The core clients one adapter object built, and their closing.

    The builders are passed at each call (not kept), so this object holds no reference
    back to its owner; the closers of its async clients watch this object, which dies
    with its owner.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sync: AISearchClient | None = None
        # built without a running loop (e.g. ahead of time): one client for every caller
        self._loopless: AsyncAISearchClient | None = None
        # id(loop) -> (loop, client, closer). Not a WeakKeyDictionary: a client's
        # connections refer back to their loop, so the loop would never be collected;
        # entries of closed loops are dropped when another loop asks instead (the closer
        # closed their clients at loop shutdown).
        self._by_loop: dict[int, _Entry] = {}
        # entries dropped by `reset`: their closers wait for their loop's shutdown (closing
        # at once could cut a request still running on the old client)
        self._retired: list[_Entry] = []

    def sync(self, build: Callable[[], AISearchClient]) -> AISearchClient:
        """The sync client, built by ``build`` on first use, then reused."""
        client = self._sync
        if client is not None:
            return client
        with self._lock:
            if self._sync is None:
                self._sync = build()
                close_when_collected(self._sync)
            return self._sync

    def async_(self, build: Callable[[], AsyncAISearchClient]) -> AsyncAISearchClient:
        """The async client of the running event loop, built by ``build`` once per loop."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            with self._lock:
                if self._loopless is None:
                    self._loopless = build()
                return self._loopless
        with self._lock:
            cached = self._by_loop.get(id(loop))
            if cached is None or cached[0] is not loop:
                # drop the clients of loops that are gone (ids can be reused)
                self._by_loop = {k: v for k, v in self._by_loop.items() if not v[0].is_closed()}
                self._retired = [v for v in self._retired if not v[0].is_closed()]
                client = build()
                cached = (loop, client, close_at_loop_shutdown(client, self))
                self._by_loop[id(loop)] = cached
            return cached[1]

    def reset(self) -> None:
        """Forget the built clients (settings changed): the next call builds new ones.

        The sync client is closed when collected (a running call may still hold it); the
        async ones at their loop's shutdown, or by ``aclose`` in their loop.
        """
        with self._lock:
            self._sync = None
            self._retired.extend(self._by_loop.values())
            self._by_loop = {}

    def close(self) -> None:
        """Close the sync client (the next call builds a new one)."""
        with self._lock:
            client, self._sync = self._sync, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close the async clients of the running loop and the loopless one.

        Clients of other event loops cannot be closed from this one: those of running
        loops are kept for their loop (which closes them at its shutdown), those of closed
        loops are dropped.
        """
        running = asyncio.get_running_loop()
        with self._lock:
            entries = [*self._by_loop.values(), *self._retired]
            closers = [closer for loop, _, closer in entries if loop is running]
            self._by_loop = {
                k: v
                for k, v in self._by_loop.items()
                if v[0] is not running and not v[0].is_closed()
            }
            self._retired = [
                v for v in self._retired if v[0] is not running and not v[0].is_closed()
            ]
            loopless, self._loopless = self._loopless, None
        for closer in closers:
            await closer.aclose()
        if loopless is not None:
            await loopless.aclose()
