"""``aisearch-local serve --workers N``: N server processes answering on one port.

The CLI binds the listening sockets, prepares the data folder (snapshot, sample corpus,
``--source``, ``--fault``) in its own process, then hands the sockets to uvicorn's
:class:`~uvicorn.supervisors.Multiprocess` supervisor, which spawns N workers (fresh
interpreters, not forks) that accept on the same sockets: the kernel spreads the connections.
Each worker imports :func:`worker_app` (a uvicorn app factory) and reads its settings from the
environment variable :data:`SETTINGS_ENV` (JSON, never the token: the token travels in
``AISEARCH_LOCAL_TOKEN``, like any child's environment). Each worker opens its own
:class:`~aisearch_local.service.LocalService` on the data folder at startup and closes it
(WAL checkpoint, HNSW graphs saved) at shutdown, through the ASGI lifespan.

The state that must not depend on which worker answers (faults, sync cooldown, the public
endpoints' rate limit) lives in :class:`~aisearch_local.shared.SharedState`. See
docs/workers.md.
"""

from __future__ import annotations

import json
import logging
import os
import signal
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from socket import socket
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # this module is imported by the CLI before the [local] extra is checked
    from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["MAX_WORKERS", "SETTINGS_ENV", "WorkerApp", "WorkerSettings", "run", "worker_app"]

logger = logging.getLogger(__name__)

MAX_WORKERS = 64
"""The largest ``--workers`` (each worker holds its own copy of the in-memory indexes)."""

SETTINGS_ENV = "AISEARCH_LOCAL_WORKER_SETTINGS"
"""The environment variable that hands :class:`WorkerSettings` (JSON) to the workers."""

TOKEN_ENV = "AISEARCH_LOCAL_TOKEN"
"""The bearer token's environment variable (``aisearch_local.cli`` reads it too)."""


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker needs to open the data folder and build the app (no secret)."""

    data_dir: str
    state_dir: str
    embedder: str
    generator: str
    vector_search: str | None
    ann_min_rows: int | None
    keyword_engine: str | None
    bind_host: str
    allowed_hosts: list[str]
    allowed_origins: list[str]
    source_roots: list[str]
    sync_cooldown_s: float
    strict: bool


class WorkerApp:
    """The ASGI app of one worker: the server's app once the lifespan startup opened it.

    Args:
        settings: What to open and how to serve it.
    """

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.app: ASGIApp | None = None
        self._close: list[Any] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer the lifespan messages here, everything else in the server's app."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        assert self.app is not None  # uvicorn serves nothing before the startup completed
        await self.app(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        from starlette.concurrency import run_in_threadpool

        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await run_in_threadpool(self._open)
                except Exception as exc:  # the supervisor then stops every worker
                    logger.exception("worker %d cannot start", os.getpid())
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await run_in_threadpool(self._shut)
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _open(self) -> None:
        """Open the data folder and the shared state; build the server's app."""
        from aisearch_local.app import create_app
        from aisearch_local.service import LocalService
        from aisearch_local.shared import SharedRateLimiter, SharedState

        s = self.settings
        state = SharedState(s.state_dir)
        self._close.append(state.close)
        svc = LocalService(
            s.data_dir,
            embedder=s.embedder,
            generator=s.generator,
            vector_search=s.vector_search,
            ann_min_rows=s.ann_min_rows,
            keyword_engine=s.keyword_engine,
        )
        self._close.insert(0, svc.close)
        svc.shared = state
        svc.sync_cooldown_s = s.sync_cooldown_s
        svc.strict = s.strict
        app = create_app(
            s.data_dir,
            token=os.environ.get(TOKEN_ENV) or None,
            service=svc,
            bind_host=s.bind_host,
            allowed_hosts=s.allowed_hosts,
            allowed_origins=s.allowed_origins,
            source_roots=s.source_roots,
        )
        app.state.public.limiter = SharedRateLimiter(state)
        self.app = app

    def _shut(self) -> None:
        """Close the service (WAL checkpoint, graphs saved), then the shared state."""
        for close in self._close:
            close()
        self._close.clear()


def worker_app() -> WorkerApp:
    """The app factory each worker imports (``aisearch_local.workers:worker_app``)."""
    return WorkerApp(WorkerSettings(**json.loads(os.environ[SETTINGS_ENV])))


def run(
    settings: WorkerSettings,
    workers: int,
    sockets: Sequence[socket],
    token: str | None,
    **config: Any,
) -> bool:
    """Serve with ``workers`` processes until SIGINT/SIGTERM (blocking).

    A worker that dies while serving is replaced (uvicorn's supervisor); one that fails to
    start stops them all.

    Args:
        settings: The workers' settings.
        workers: How many.
        sockets: The bound, listening sockets.
        token: The bearer token (handed over in the workers' environment).
        **config: More :class:`uvicorn.Config` arguments (``host``, ``port``, ``log_level``).

    Returns:
        Whether every worker started (False: one failed to start, see the log).
    """
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess
    from uvicorn.supervisors.multiprocess import SIGNALS

    saved = {name: os.environ.get(name) for name in (SETTINGS_ENV, TOKEN_ENV)}
    os.environ[SETTINGS_ENV] = json.dumps(asdict(settings))
    if token is None:
        os.environ.pop(TOKEN_ENV, None)
    else:
        os.environ[TOKEN_ENV] = token
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}  # the supervisor takes them
    try:
        cfg = uvicorn.Config(
            "aisearch_local.workers:worker_app",
            factory=True,
            lifespan="on",
            workers=workers,
            # a worker busy loading an index still answers the supervisor's pings (a thread)
            timeout_worker_healthcheck=30,
            **config,
        )
        supervisor = Multiprocess(cfg, sockets=list(sockets))
        supervisor.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return all(p.exitcode != STARTUP_FAILURE for p in supervisor.processes)


def state_folder() -> Path:
    """A new private folder for the shared state (removed by the caller)."""
    import tempfile

    return Path(tempfile.mkdtemp(prefix="aisearch-local-workers-"))
