"""Transport failures shared by the embedder and generator upstream tests."""

from __future__ import annotations

import httpx


def refuse(request: httpx.Request) -> httpx.Response:
    """A mock transport handler whose connection is refused."""
    raise httpx.ConnectError("connection refused", request=request)


def time_out(request: httpx.Request) -> httpx.Response:
    """A mock transport handler whose read times out."""
    raise httpx.ReadTimeout("timed out", request=request)


NETWORK_FAULTS = ((refuse, "unreachable"), (time_out, "timed out"))
"""Each handler and the words the upstream error must hold."""
