"""Lazily built core clients for the framework adapters, and their closing.

A LangChain class or a LlamaIndex connection builds its core clients on first use and
keeps them: one :class:`~aisearch.AISearchClient`, and one
:class:`~aisearch.AsyncAISearchClient` per running event loop (an ``httpx.AsyncClient``
keeps connections bound to the loop that opened them, so a client built in one
``asyncio.run`` is not reused in the next). Built clients are closed by ``close`` /
``aclose``, or else when the holder is garbage-collected or the loop shuts down: users
rarely close an adapter (nothing in either framework asks them to), and without that a
dropped adapter's pooled sockets were closed only by the garbage collector, each with a
``ResourceWarning`` (an unclosed socket, or an asyncio transport of a loop that is gone).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import threading
import weakref
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

if TYPE_CHECKING:
    from aisearch import AISearchClient, AsyncAISearchClient

# the clients built: an account client (AISearchClient) or a public-endpoint one
_S = TypeVar("_S")
_A = TypeVar("_A")

__all__ = ["LazyClients", "close_at_loop_shutdown", "close_when_collected"]


# Finalizers run wherever the last reference goes or the garbage collector runs, which may be
# deep in a recursion (a parser refusing a document nested 100,000 levels): with no stack left
# they fail with RecursionError. Such a close is deferred to the next helper call or exit.
_DEFERRED: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []


def _safely(fn: Callable[..., Any], *args: Any) -> None:
    try:
        fn(*args)
    except RecursionError:
        _DEFERRED.append((fn, args))


def _run_deferred() -> None:
    while _DEFERRED:
        fn, args = _DEFERRED.pop()
        _safely(fn, *args)
        if _DEFERRED and _DEFERRED[-1] == (fn, args):  # still no stack: leave it for later
            return


atexit.register(_run_deferred)


def close_when_collected(client: Any) -> None:
    """Close a built sync client's own HTTP pool (never an injected one) when it is collected."""
    _run_deferred()
    if client._owns_client:
        # the finalizer holds the httpx client only, never the core client it watches
        weakref.finalize(client, _safely, client._client.close)


# every started closer, until it has run: a closer must outlive its owner when the owner is
# collected while its loop runs (see close_at_loop_shutdown)
_PENDING: dict[AsyncGenerator[None, None], asyncio.AbstractEventLoop] = {}
_PENDING_LOCK = threading.Lock()


# tasks closing a client soon after its owner was collected, kept until they are done (the
# loop holds only weak references to its tasks)
_TASKS: set[asyncio.Task[None]] = set()


async def _close_at_shutdown(
    client: Any, finalizers: list[weakref.finalize[Any, Any]], me: list[Any]
) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        try:
            await client.aclose()
        finally:
            for finalizer in finalizers:  # the owner's finalizer no longer needs this loop
                finalizer.detach()
            with _PENDING_LOCK:
                for closer in me:  # this generator: it has run
                    _PENDING.pop(closer, None)
            me.clear()
            _prune()


def _prune() -> None:
    # drop finished closers and those of loops closed without shutting their generators down
    with _PENDING_LOCK:
        done = [g for g, loop in _PENDING.items() if _finished(g) or loop.is_closed()]
        for gen in done:
            del _PENDING[gen]


def _finished(closer: AsyncGenerator[None, None]) -> bool:
    return getattr(closer, "ag_frame", None) is None


async def _aclose(closer: AsyncGenerator[None, None]) -> None:
    # a coroutine, not closer.aclose() itself: a task cancelled before it starts (the loop
    # shutting down) then leaves the closer untouched, for the loop's shutdown to run it
    await closer.aclose()
    with _PENDING_LOCK:
        _PENDING.pop(closer, None)


def _start_close(loop: asyncio.AbstractEventLoop, closer: AsyncGenerator[None, None]) -> None:
    task = loop.create_task(_aclose(closer))
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)


def _close_soon(loop: asyncio.AbstractEventLoop, closer: AsyncGenerator[None, None]) -> None:
    if not loop.is_closed():
        with contextlib.suppress(RuntimeError):  # closed meanwhile
            loop.call_soon_threadsafe(_start_close, loop, closer)


def close_at_loop_shutdown(client: Any, owner: object) -> AsyncGenerator[None, None]:
    """Have the running event loop close an async client at its shutdown, or sooner.

    Must be called from a coroutine running in that loop. The returned async generator is
    started here (it reaches its ``yield`` without awaiting anything), which registers it
    with the running loop; ``asyncio.run`` and ``asyncio.Runner`` finalise such generators
    at shutdown (``loop.shutdown_asyncgens``), running its ``finally`` in the loop the
    client's connections belong to. When ``owner`` (what the client was built for) is
    garbage-collected while the loop still runs, the client is closed in the loop soon
    after. ``await gen.aclose()`` closes it now.
    """
    _run_deferred()
    loop = asyncio.get_running_loop()
    finalizers: list[weakref.finalize[Any, Any]] = []
    me: list[Any] = []
    closer = _close_at_shutdown(client, finalizers, me)
    me.append(closer)
    with contextlib.suppress(StopIteration):  # the generator's yield ends the first send
        closer.asend(None).send(None)
    _prune()
    with _PENDING_LOCK:
        _PENDING[closer] = loop
    # detached once the closer has run, so a long-lived owner used with one asyncio.run per
    # call does not keep every finished loop alive
    finalizers.append(weakref.finalize(owner, _safely, _close_soon, loop, closer))
    return closer


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

    def sync(self, build: Callable[[], _S]) -> _S:
        """The sync client, built by ``build`` on first use, then reused.

        One ``LazyClients`` holds one kind of client (``build`` always returns the same type).
        """
        client = self._sync
        if client is not None:
            return cast(_S, client)
        with self._lock:
            if self._sync is None:
                self._sync = cast("AISearchClient", build())
                close_when_collected(self._sync)
            return cast(_S, self._sync)

    def async_(self, build: Callable[[], _A]) -> _A:
        """The async client of the running event loop, built by ``build`` once per loop."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            with self._lock:
                if self._loopless is None:
                    self._loopless = cast("AsyncAISearchClient", build())
                return cast(_A, self._loopless)
        with self._lock:
            cached = self._by_loop.get(id(loop))
            if cached is None or cached[0] is not loop:
                # drop the clients of loops that are gone (ids can be reused)
                self._by_loop = {k: v for k, v in self._by_loop.items() if not v[0].is_closed()}
                self._retired = [v for v in self._retired if not v[0].is_closed()]
                client = cast("AsyncAISearchClient", build())
                cached = (loop, client, close_at_loop_shutdown(client, self))
                self._by_loop[id(loop)] = cached
            return cast(_A, cached[1])

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
