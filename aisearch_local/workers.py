"""``aisearch-local serve --workers N``: N server processes answering on one port.

The CLI binds one group of listening sockets per worker (``SO_REUSEPORT`` on the same
addresses), prepares the data folder (snapshot, sample corpus, ``--source``, ``--fault``) in its
own process, then :func:`run` spawns the workers (fresh interpreters, not forks) and supervises
them. The kernel spreads new connections evenly over the groups, so over the workers (one shared
socket would not: an asyncio server accepts every connection waiting at once, so a burst of
connections lands on one worker). Each worker opens its own
:class:`~aisearch_local.service.LocalService` on the data folder at startup and closes it (WAL
checkpoint, HNSW graphs saved) at shutdown, through the ASGI lifespan (:class:`WorkerApp`). The
token reaches each worker through a pipe of its own, read once at startup: never pickled, never
in a worker's environment (``/proc/<pid>/environ`` keeps a process's initial environment for its
whole life, whatever it later removes) or command line.

The state that must not depend on which worker answers (faults, sync cooldown, the public
endpoints' rate limit) lives in :class:`~aisearch_local.shared.SharedState`. See
docs/workers.md.
"""

from __future__ import annotations

import logging
import os
import signal
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from socket import socket
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # this module is imported by the CLI before the [local] extra is checked
    from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["MAX_WORKERS", "WorkerApp", "WorkerSettings", "run", "state_folder"]

logger = logging.getLogger(__name__)

MAX_WORKERS = 64
"""The largest ``--workers`` (each worker holds its own copy of the in-memory indexes)."""

TOKEN_ENV = "AISEARCH_LOCAL_TOKEN"
"""The bearer token's environment variable (``aisearch_local.cli`` reads it too)."""


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker needs to open the data folder and build the app (no secret: pickled)."""

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
        token: The bearer token (None: no auth).
    """

    def __init__(self, settings: WorkerSettings, token: str | None = None) -> None:
        self.settings = settings
        self._token = token
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
        from aisearch_local.shared import SharedState

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
            state=state,
        )
        self._close.insert(0, svc.close)
        svc.sync_cooldown_s = s.sync_cooldown_s
        svc.strict = s.strict
        app = create_app(
            s.data_dir,
            token=self._token,
            service=svc,
            bind_host=s.bind_host,
            allowed_hosts=s.allowed_hosts,
            allowed_origins=s.allowed_origins,
            source_roots=s.source_roots,
        )
        self.app = app

    def _shut(self) -> None:
        """Close the service (WAL checkpoint, graphs saved), then the shared state."""
        for close in self._close:
            close()
        self._close.clear()


def _die_with(parent: int) -> bool:
    """Have the kernel send this worker SIGTERM when the supervisor ends, even by SIGKILL.

    Linux's parent-death signal (``prctl(PR_SET_PDEATHSIG)``; workers run on Linux only), so
    that no worker keeps serving as an orphan. Returns False when the supervisor ended before.
    """
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)
    return os.getppid() == parent


def _token_bytes(token: str | None) -> bytes:
    """The token as the pipe carries it (empty: none; a command line's undecodable bytes kept)."""
    return (token or "").encode("utf-8", "surrogateescape")


def _token_from(data: bytes) -> str | None:
    """:func:`_token_bytes` read back."""
    return data.decode("utf-8", "surrogateescape") or None


def _worker(
    settings: WorkerSettings,
    sockets: list[socket],
    config: dict[str, Any],
    parent: int,
    token_pipe: Any,
) -> None:
    """A worker process: serve on its own sockets until SIGINT/SIGTERM (spawned, blocking).

    ``token_pipe``: the read end of the pipe the supervisor writes the token into (UTF-8;
    empty: no token).

    Exits with status 0 once stopped by a signal, 3 (uvicorn's ``STARTUP_FAILURE``) when the
    data folder cannot be opened.
    """
    import uvicorn

    if not _die_with(parent):
        return  # the supervisor is gone already
    with token_pipe:
        app = WorkerApp(settings, _token_from(token_pipe.recv_bytes()))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", **config))
    # uvicorn re-raises the signal it stopped on to the handler installed before it: make that
    # one a no-op so that the process ends normally (status 0) once the service is closed
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda _signum, _frame: None)
    server.run(sockets=sockets)


def run(
    settings: WorkerSettings,
    groups: Sequence[Sequence[socket]],
    token: str | None,
    **config: Any,
) -> str | None:
    """Serve with one worker per socket group until SIGINT/SIGTERM (blocking).

    Every worker gets its own sockets (bound with ``SO_REUSEPORT`` on the same addresses, so
    that the kernel spreads new connections evenly over the workers). A worker that ends on
    its own (a crash, a kill, a failed start) stops the others.

    Args:
        settings: The workers' settings.
        groups: The bound, listening sockets of each worker.
        token: The bearer token (handed over through a pipe per worker; see the module
            docstring).
        **config: More :class:`uvicorn.Config` arguments (``host``, ``port``, ``log_level``).

    Returns:
        None when stopped by a signal and every worker stopped cleanly; else what went wrong.
    """
    import multiprocessing
    import threading

    spawn = multiprocessing.get_context("spawn")
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda _signum, _frame: stop.set())
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    # kept out of the workers' environment (serve may have read it from there)
    saved = os.environ.pop(TOKEN_ENV, None)
    procs: list[Any] = []
    problem: str | None = None
    try:
        for group in groups:
            reader, writer = spawn.Pipe(duplex=False)
            with writer:
                with reader:
                    proc = spawn.Process(
                        target=_worker,
                        args=(settings, list(group), config, os.getpid(), reader),
                        name="aisearch-local-worker",
                    )
                    proc.start()
                procs.append(proc)
                writer.send_bytes(_token_bytes(token))  # raw bytes, not a pickle
        while not stop.wait(0.5):
            ended = next((p for p in procs if not p.is_alive()), None)
            if ended is not None:
                if ended.exitcode == 3:
                    problem = f"a worker (pid {ended.pid}) failed to start (its error is above)"
                elif ended.exitcode != 0:
                    problem = f"a worker (pid {ended.pid}) ended with status {ended.exitcode}"
                break
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()  # SIGTERM: the worker finishes its requests, closes its database
        for proc in procs:
            proc.join(timeout=120)
            if proc.is_alive():
                proc.kill()
                proc.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if saved is not None:
            os.environ[TOKEN_ENV] = saved
    if problem is None:
        failed = [p for p in procs if p.exitcode != 0]
        if failed:
            problem = f"a worker (pid {failed[0].pid}) ended with status {failed[0].exitcode}"
    return problem


_STATE_PREFIX = "aisearch-local-workers-"


def state_folder() -> Path:
    """A new private folder for the shared state (removed by the caller).

    Named after this process (``aisearch-local-workers-<pid>-<random>``). Folders a supervisor
    left behind (it was killed) are removed here: those of this user whose pid is no longer
    running; a symlink or another user's folder is never touched.
    """
    import shutil
    import tempfile

    base = Path(tempfile.gettempdir())
    for old in base.glob(_STATE_PREFIX + "*-*"):
        pid = old.name[len(_STATE_PREFIX) :].split("-", 1)[0]
        try:
            st = old.lstat()
            if not (pid.isascii() and pid.isdigit() and 0 < int(pid) < 2**22):  # Linux pid_max
                continue
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
                continue
            os.kill(int(pid), 0)  # running (or reused by another process): kept
        except ProcessLookupError:
            shutil.rmtree(old, ignore_errors=True)
        except OSError:  # gone meanwhile, or another user's process
            continue
    return Path(tempfile.mkdtemp(prefix=f"{_STATE_PREFIX}{os.getpid()}-"))
