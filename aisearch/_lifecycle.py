"""Closing the core clients that the framework adapters build and own.

A LangChain retriever or a LlamaIndex connection builds its core clients itself, and users
rarely close it (nothing in either framework asks them to). Without these helpers, a dropped
adapter's pooled sockets were closed only by the garbage collector, each with a
``ResourceWarning`` (an unclosed socket, or an asyncio transport of a loop that is gone).
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import AsyncGenerator
from typing import Any

__all__ = ["close_at_loop_shutdown", "close_when_collected"]


def close_when_collected(client: Any) -> None:
    """Close a built sync client's own HTTP pool when the client is garbage-collected.

    Args:
        client: An :class:`aisearch.AISearchClient` the caller built (an injected
            ``http_client`` is never closed).
    """
    if client._owns_client:
        # the finalizer holds the httpx client only, never the core client it watches
        weakref.finalize(client, client._client.close)


async def _close_at_shutdown(client: Any) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await client.aclose()


def close_at_loop_shutdown(client: Any) -> AsyncGenerator[None, None]:
    """Have the running event loop close an async client when the loop shuts down.

    Must be called from a coroutine running in that loop. The returned async generator is
    started here (it reaches its ``yield`` without awaiting anything), which registers it
    with the running loop; ``asyncio.run`` and ``asyncio.Runner`` finalise such generators
    at shutdown (``loop.shutdown_asyncgens``), running its ``finally`` in the loop the
    client's connections belong to. The caller must keep the generator referenced until
    then (a collected one is finalised at once, closing the client early); ``await
    gen.aclose()`` closes the client sooner.

    Args:
        client: An :class:`aisearch.AsyncAISearchClient` built for the running loop.

    Returns:
        The started generator.
    """
    closer = _close_at_shutdown(client)
    with contextlib.suppress(StopIteration):  # the generator's yield ends the first send
        closer.asend(None).send(None)
    return closer
