"""Closing the core clients that the framework adapters build and own.

A LangChain retriever or a LlamaIndex connection builds its core clients itself, and users
rarely close it (nothing in either framework asks them to). Without these helpers, a dropped
adapter's pooled sockets were closed only by the garbage collector, each with a
``ResourceWarning`` (an unclosed socket, or an asyncio transport of a loop that is gone).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import threading
import weakref
from collections.abc import AsyncGenerator, Callable
from typing import Any

__all__ = ["close_at_loop_shutdown", "close_when_collected"]


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
