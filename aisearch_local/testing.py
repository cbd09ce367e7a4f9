"""Run the local AI Search server inside a test process.

Example:
    >>> from aisearch_local.testing import LocalServer
    >>> with LocalServer(data_dir=tmp_path, token="test-token") as server:  # doctest: +SKIP
    ...     httpx.get(server.base_url + "/accounts/local-account/ai-search/instances",
    ...               headers={"Authorization": f"Bearer {server.token}"})
"""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette

from aisearch_local.app import create_app
from aisearch_local.embed import Embedder
from aisearch_local.generate import Generator
from aisearch_local.service import Fault, LocalService

__all__ = ["LocalServer"]


class LocalServer:
    """uvicorn serving :func:`aisearch_local.app.create_app` in a thread on a free port.

    Args:
        data_dir: Database directory (a temporary one, removed on exit, when None).
        in_memory: Keep the database in memory: nothing is written to disk (no ``data_dir``).
        token: Required bearer token (None: no auth).
        embedder: Embedder spec or object (default ``"hashing"``).
        generator: Generator spec or object (default ``"extractive"``).
        host: Interface to bind (``127.0.0.1``).
        port: Port (0 picks a free one).
        account_id: The account id tests put in paths (any id is accepted).
        allowed_hosts: More names accepted in ``Host`` (loopback names and ``host`` always are).
        allowed_origins: More browser origins allowed to send state-changing requests.
        source_roots: Folders instances created over HTTP may index (None: any folder).
        vector_search: ``auto``, ``exact`` or ``ann`` (``--vector-search``; None: the
            ``AISEARCH_LOCAL_VECTOR_SEARCH`` environment variable, else ``auto``).
        ann_min_rows: Rows from which ``auto`` uses an HNSW graph (``--ann-min-rows``).
        keyword_engine: ``auto``, ``tantivy`` or ``fts5`` (``--keyword-engine``; None: the
            ``AISEARCH_LOCAL_KEYWORD_ENGINE`` environment variable, else ``auto``).
    """

    def __init__(
        self,
        data_dir: Path | str | None = None,
        *,
        token: str | None = None,
        embedder: str | Embedder | None = "hashing",
        generator: str | Generator | None = "extractive",
        host: str = "127.0.0.1",
        port: int = 0,
        account_id: str = "local-account",
        allowed_hosts: Sequence[str] = (),
        allowed_origins: Sequence[str] = (),
        source_roots: Sequence[str | Path] | None = None,
        in_memory: bool = False,
        vector_search: str | None = None,
        ann_min_rows: int | None = None,
        keyword_engine: str | None = None,
    ) -> None:
        if in_memory and data_dir is not None:
            raise ValueError("LocalServer: pass either data_dir or in_memory=True, not both")
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if data_dir is None and not in_memory:
            self._tmp = tempfile.TemporaryDirectory(prefix="aisearch-local-")
            data_dir = self._tmp.name
        self.data_dir: Path | None = None if data_dir is None else Path(data_dir)
        self.token = token
        self.account_id = account_id
        self.host = host
        self._port = port
        self._embedder = embedder
        self._generator = generator
        self._vector_search = vector_search
        self._ann_min_rows = ann_min_rows
        self._keyword_engine = keyword_engine
        self._perimeter: dict[str, Any] = {
            "allowed_hosts": tuple(allowed_hosts),
            "allowed_origins": tuple(allowed_origins),
            "source_roots": None if source_roots is None else tuple(source_roots),
        }
        self.service: LocalService | None = None
        self.app: Starlette | None = None  # the application, once started
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    def __repr__(self) -> str:
        where = "in memory" if self.data_dir is None else str(self.data_dir)
        return f"LocalServer(base_url={self.base_url!r}, data_dir={where!r})"

    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`)."""
        return self._port

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT/client/v4``."""
        return f"http://{self.host}:{self._port}/client/v4"

    @property
    def account_url(self) -> str:
        """``{base_url}/accounts/{account_id}``."""
        return f"{self.base_url}/accounts/{self.account_id}"

    @property
    def headers(self) -> dict[str, str]:
        """Auth headers for raw HTTP calls."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def start(self) -> LocalServer:
        """Start serving; return once the server accepts connections."""
        if self._thread is not None:
            return self
        self.service = LocalService(
            self.data_dir,
            embedder=self._embedder,
            generator=self._generator,
            vector_search=self._vector_search,
            ann_min_rows=self._ann_min_rows,
            keyword_engine=self._keyword_engine,
        )
        app = create_app(
            self.data_dir,
            token=self.token,
            service=self.service,
            bind_host=self.host,
            **self._perimeter,
        )
        self.app = app
        # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose
        # proto is IPPROTO_TCP; with proto 0, Nagle + delayed ACK add ~40 ms to every request.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._port))
        self._port = sock.getsockname()[1]
        self._sock = sock
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="aisearch-local", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("aisearch-local failed to start (see the log above)")
            if time.monotonic() > deadline:
                raise RuntimeError("aisearch-local did not start within 20 s")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving and close the database (idempotent)."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None
        self.app = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self.service is not None:
            self.service.close()
            self.service = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def set_fault(
        self,
        instance_id: str,
        latency_ms: int = 0,
        status: int | None = None,
        code: int | None = None,
        retry_after: int | None = None,
        truncate_stream: bool = False,
        malformed_body: bool = False,
        namespace: str = "default",
        times: int | None = None,
    ) -> None:
        """Inject a fault on an instance's search and chat routes (see :class:`Fault`)."""
        assert self.service is not None, "the server is not running"
        self.service.set_fault(
            namespace,
            instance_id,
            Fault(latency_ms, status, code, retry_after, truncate_stream, malformed_body, times),
        )

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        if self.service is not None:
            self.service.clear_faults()

    def info(self) -> dict[str, Any]:
        """Return the base URL, account id and data directory (handy in notebooks)."""
        return {
            "base_url": self.base_url,
            "account_id": self.account_id,
            "data_dir": None if self.data_dir is None else str(self.data_dir),
        }
