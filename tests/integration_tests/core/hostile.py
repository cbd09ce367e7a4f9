"""A hostile HTTP/1.1 server on 127.0.0.1 for the deadline tests and ``bench_deadlines.py``.

It speaks raw HTTP over asyncio streams in a background thread and misbehaves according to the
instance id in the request path (``.../instances/<mode>/...``):

* ``trickle``: a valid search answer with its ``Content-Length``, a few bytes per interval;
* ``endless``: a chunked JSON body that never ends (one space per interval);
* ``comments``: an SSE stream of ``: keep-alive`` comments only, forever;
* ``silent``: SSE response headers, then nothing;
* ``slowheaders``: a status line, then header bytes one per interval, forever;
* ``hold``: reads the request and answers nothing until ``release()`` closes the
  connection (``held`` counts them).

Any other id gets the search answer at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from typing import Any

SEARCH_ANSWER: dict[str, Any] = {
    "success": True,
    "errors": [],
    "messages": [],
    "result": {
        "search_query": "espresso grind",
        "query_kind": "text",
        "chunks": [
            {
                "id": "c1",
                "type": "text",
                "score": 0.9,
                "text": "Grind finer when the shot runs fast.",
                "item": {"key": "espresso.md", "timestamp": 1735689600, "metadata": {}},
                "scoring_details": {"vector_score": 0.9},
            }
        ],
    },
}
SEARCH_BODY = json.dumps(SEARCH_ANSWER).encode()
MODES = ("trickle", "endless", "comments", "silent", "slowheaders", "hold")


class HostileServer:
    """Start with ``with HostileServer() as server:``; point clients at ``server.base_url``.

    Args:
        interval: Seconds between two trickled pieces.
        step: Bytes per trickled piece of the search answer.
    """

    def __init__(self, interval: float = 0.05, step: int = 4) -> None:
        self.interval = interval
        self.step = step
        self.port = 0
        self._held = 0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._release: asyncio.Event | None = None

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> HostileServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc_info: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        self._release = asyncio.Event()
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/client/v4"

    @property
    def held(self) -> int:
        """Requests of mode ``hold`` waiting now."""
        with self._lock:
            return self._held

    def wait_held(self, count: int, timeout: float = 10.0) -> None:
        """Block until ``count`` requests are held (``TimeoutError`` after ``timeout`` s)."""
        end = time.monotonic() + timeout
        while self.held < count:
            if time.monotonic() > end:
                raise TimeoutError(f"only {self.held} of {count} requests held")
            time.sleep(0.01)

    def release(self) -> None:
        """Close every connection held now (later ones are held again)."""

        def swap() -> None:
            assert self._release is not None
            self._release.set()
            self._release = asyncio.Event()

        self._loop.call_soon_threadsafe(swap)

    # ------------------------------------------------------------------ behaviours

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        try:
            while True:  # keep-alive: serve requests on this connection until it closes
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                await reader.readexactly(length)
                mode = next((m for m in MODES if f"/instances/{m}/" in path), "ok")
                await getattr(self, f"_{mode}")(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self._tasks.discard(task)  # type: ignore[arg-type]
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @staticmethod
    def _alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        return not (reader.at_eof() or writer.is_closing())

    async def _ok(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(SEARCH_BODY), SEARCH_BODY)
        )
        await writer.drain()

    async def _trickle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(SEARCH_BODY)
        )
        for start in range(0, len(SEARCH_BODY), self.step):
            if not self._alive(reader, writer):
                raise ConnectionResetError
            writer.write(SEARCH_BODY[start : start + self.step])
            await writer.drain()
            await asyncio.sleep(self.interval)

    async def _forever(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ctype: bytes, piece: bytes
    ) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n\r\n" % ctype
        )
        chunk = b"%x\r\n%s\r\n" % (len(piece), piece)
        while self._alive(reader, writer):
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(self.interval)
        raise ConnectionResetError

    async def _endless(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._forever(reader, writer, b"application/json", b" ")

    async def _comments(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._forever(reader, writer, b"text/event-stream", b": keep-alive\n\n")

    async def _silent(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        await writer.drain()
        await reader.read()  # until the client goes away
        raise ConnectionResetError

    async def _slowheaders(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nX-Pad: ")
        while self._alive(reader, writer):
            writer.write(b"a")
            await writer.drain()
            await asyncio.sleep(self.interval)
        raise ConnectionResetError

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._release is not None
        with self._lock:
            self._held += 1
        try:
            await self._release.wait()
        finally:
            with self._lock:
                self._held -= 1
        raise ConnectionResetError
