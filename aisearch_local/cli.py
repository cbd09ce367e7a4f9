"""Command line of the local AI Search server: ``aisearch-local serve | exec | ingest | inspect``.

Examples::

    aisearch-local serve --sample-corpus                      # 127.0.0.1:8787, instance "coffee"
                                     # the explorer: http://127.0.0.1:8787/client/v4/_local/ui/
    aisearch-local serve --source ./docs --instance my-docs --token "$TOKEN"
    aisearch-local ingest ./docs --instance my-docs --data-dir .aisearch-local
    aisearch-local ingest ./docs --instance my-docs --url http://127.0.0.1:8787  # server running
    aisearch-local inspect --data-dir .aisearch-local
    aisearch-local exec --source ./docs --instance my-docs -- pytest   # a server for one command
    aisearch-local export docs.zip --instance my-docs       # instances to one file (a snapshot)
    aisearch-local import docs.zip --data-dir ./elsewhere   # ... loaded back without re-embedding
    aisearch-local serve --in-memory --snapshot docs.zip    # a throwaway server, seeded

The token can also come from the ``AISEARCH_LOCAL_TOKEN`` environment variable or from
``--token-file``, so that it does not show in the process list. ``serve`` answers only to
loopback names and ``--host`` (``--allowed-host`` adds more), refuses state-changing requests
from other browser origins (``--allowed-origin`` adds more), and lets instances created over
HTTP index only folders under ``--allow-source-root`` (see docs/security.md).
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import shutil
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aisearch_local.errors import APIError, ValidationError
from aisearch_local.workers import MAX_WORKERS, TOKEN_ENV

if TYPE_CHECKING:
    from aisearch_local.service import LocalService
    from aisearch_local.shared import SharedState
    from aisearch_local.testing import LocalServer
    from aisearch_local.watch import SourceWatcher

__all__ = ["main"]

DEFAULT_DATA_DIR = ".aisearch-local"
DEFAULT_SAMPLE_INSTANCE = "coffee"
# the top-level modules of the optional extras, and the extra that installs each
EXTRA_OF_MODULE = {
    "starlette": "local",
    "uvicorn": "local",
    "numpy": "local",
    "rich": "local",
    "multipart": "local",
    "watchfiles": "local",
    "python_multipart": "local",
    "wordllama": "semantic",
}
logger = logging.getLogger("aisearch_local")
# every variable the client (aisearch._config.ENV) reads; exec and the pytest plugin remove
# them before setting their own (the server imports nothing from the client: a test pins it)
CLIENT_ENV_NAMES = (
    "CLOUDFLARE_ACCOUNT_ID",
    "CF_ACCOUNT_ID",
    "CLOUDFLARE_API_TOKEN",
    "CF_AI_SEARCH_API_TOKEN",
    "CF_API_TOKEN",
    "CLOUDFLARE_EMAIL",
    "CLOUDFLARE_API_KEY",
    "AISEARCH_BASE_URL",
    "AISEARCH_PUBLIC_ENDPOINT",
    "CF_ACCESS_CLIENT_ID",
    "CF_ACCESS_CLIENT_SECRET",
)
FAULT_FIELDS = (
    "latency_ms",
    "status",
    "code",
    "retry_after",
    "truncate_stream",
    "malformed_body",
    "times",
)


class UserError(Exception):
    """A mistake in the command line or the environment: one line on stderr, no traceback.

    Args:
        message: What went wrong and what to do.
        code: The exit status (2: a bad argument, 1: the environment).
    """

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def _fail(message: str) -> None:
    """Print one error line on stderr, without rich (which may be the missing extra)."""
    sys.stderr.write(f"aisearch-local: error: {message}\n")


def missing_extra(exc: ImportError) -> str | None:
    """Return the extra that installs the module an ``ImportError`` names, if it is one of ours.

    A module blocked with ``sys.modules[name] = None`` names ``name.sub``; a module that is not
    installed names itself: both count.
    """
    name = exc.name if isinstance(exc, ModuleNotFoundError) else None
    return EXTRA_OF_MODULE.get((name or "").partition(".")[0])


def install_hint(extra: str) -> str:
    """Return ``pip install "aisearch-py[EXTRA]"``."""
    return f'pip install "aisearch-py[{extra}]"'


def _bind(host: str, port: int, reuse_port: bool = False) -> list[socket.socket]:
    """Bind the listening sockets before anything is printed or indexed.

    One socket per address the host resolves to, as asyncio's ``create_server`` (which
    uvicorn uses) binds them: ``localhost`` is both ``127.0.0.1`` and ``::1``. With
    ``--port 0`` the first socket's port is used for the others.

    Raises:
        UserError: The host does not resolve, or an address is in use, cannot be assigned or
            is not allowed.
    """
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise UserError(f"--host {host}: cannot resolve it ({exc.strerror})") from None
    socks: list[socket.socket] = []
    try:
        for family, _, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, socket.SOCK_STREAM, proto)
            socks.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(socks) > 1:
                address = (address[0], socks[0].getsockname()[1], *address[2:])
            sock.bind(address)
    except OSError as exc:
        for sock in socks:
            sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise UserError(
                f"port {port} on {host} is already in use (another aisearch-local?): stop it "
                "or pass another --port",
                code=1,
            ) from None
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror}", code=1) from None
    return socks


def _bind_workers(host: str, port: int, workers: int) -> list[list[socket.socket]]:
    """Bind one group of sockets per worker on the same addresses (``SO_REUSEPORT``).

    The port is first bound without ``SO_REUSEPORT`` (then released at once): a port in use
    fails as with one worker, ``--port 0`` picks one, and a socket without ``SO_REUSEPORT``
    (another ``aisearch-local serve``) can never join the group afterwards.

    Raises:
        UserError: As :func:`_bind`.
    """
    probe = _bind(host, port)
    port = probe[0].getsockname()[1]
    for sock in probe:
        sock.close()
    groups: list[list[socket.socket]] = []
    try:
        for _ in range(workers):
            groups.append(_bind(host, port, reuse_port=True))
    except BaseException:
        for sock in (s for group in groups for s in group):
            sock.close()
        raise
    return groups


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True)


def _parse_fault(spec: str) -> tuple[str, str, dict[str, Any]]:
    """Parse ``[NAMESPACE/]INSTANCE:key=value,...`` into a fault."""
    target, sep, rest = spec.partition(":")
    if not sep or not target:
        raise argparse.ArgumentTypeError(
            f"--fault {spec!r}: expected [NAMESPACE/]INSTANCE:key=value,... "
            "(keys: latency_ms, status, code, retry_after, truncate_stream, malformed_body, times)"
        )
    ns, _, iid = target.rpartition("/")
    values: dict[str, Any] = {}
    for part in filter(None, rest.split(",")):
        key, eq, value = part.partition("=")
        key = key.strip()
        if key not in FAULT_FIELDS:
            raise argparse.ArgumentTypeError(f"--fault {spec!r}: unknown key {key!r}")
        if key in ("truncate_stream", "malformed_body"):
            values[key] = (value or "true").strip().lower() in ("1", "true", "yes")
        else:
            try:
                values[key] = int(value)
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"--fault {spec!r}: {key} must be an integer (got {value!r})"
                ) from None
        del eq
    return ns or "default", iid, values


def _ingest_folder(
    svc: LocalService, namespace: str, instance: str, folder: Path, *, create: dict[str, Any]
) -> None:
    """Create the instance when missing, attach the folder and sync it with a progress bar.

    New and changed files are written in batches (:func:`aisearch_local.bulk.sync_folder`).
    """
    from aisearch_local.remote_ingest import progress_bar

    console = _console()
    inst = svc.store.get_instance(namespace, instance)
    if inst is None:
        if svc.store.get_namespace(namespace) is None:
            svc.store.create_namespace(namespace, None, {})
        inst = svc.create_instance(namespace, {"id": instance, **create}, source_dir=str(folder))
    svc.check_embedder(inst)
    if inst.source_dir != str(folder):
        svc.store.set_source_dir(inst, str(folder))
        inst = svc.store.get_instance(namespace, instance) or inst
    with progress_bar(console) as progress:
        task = progress.add_task(f"indexing {namespace}/{instance}", total=None, key="")

        def on_progress(done: int, total: int, key: str) -> None:
            progress.update(task, completed=done, total=total, key=key)

        reason, log = svc.sync_source(inst, on_progress=on_progress)
    for line in log:
        if line.get("message_type") == 2:
            console.print(f"[red]error[/red] {line['message']}")
    console.print(f"{namespace}/{instance}: {reason}")


def _sample_corpus(svc: LocalService, namespace: str, instance: str) -> None:
    from aisearch_local.sample_corpus import CUSTOM_METADATA, SAMPLE_CORPUS_DIR

    _ingest_folder(
        svc, namespace, instance, SAMPLE_CORPUS_DIR, create={"custom_metadata": CUSTOM_METADATA}
    )


def _enable_public(svc: LocalService, namespace: str, instance: str) -> None:
    """``--public``: enable the instance's public endpoint (kept as it is when enabled)."""
    inst = svc.store.get_instance(namespace, instance)
    if inst is None:  # not reached: --public needs --sample-corpus or --source
        raise UserError(f"--public: no instance {namespace}/{instance}")
    params = inst.config.get("public_endpoint_params")
    if not (isinstance(params, dict) and params.get("enabled")):
        svc.update_instance(inst, {"public_endpoint_params": {"enabled": True}})


_BANNER_ENDPOINTS = 10


def _print_public_endpoints(console: Any, svc: LocalService, origin: str) -> None:
    """The banner's lines of the enabled public endpoints (no token), at most ten."""
    from aisearch_local.public import enabled_endpoints

    found = enabled_endpoints(svc)
    if not found:
        console.print(
            "  public endpoints: none (public_endpoint_params.enabled, or serve --public)",
            highlight=False,
        )
        return
    console.print(
        "  public endpoints (no token; append /search, /chat/completions or /mcp):",
        highlight=False,
    )
    for what, path in found[:_BANNER_ENDPOINTS]:
        console.print(f"    {what}: {origin}{path}", highlight=False, soft_wrap=True)
    if len(found) > _BANNER_ENDPOINTS:
        console.print(f"    ... and {len(found) - _BANNER_ENDPOINTS} more", highlight=False)


def _source_folder(args: argparse.Namespace) -> Path | None:
    """The ``--source`` folder of serve and exec, resolved (None without the flag)."""
    if not args.source:
        return None
    if not args.instance:
        raise UserError("--source needs --instance NAME")
    folder = Path(args.source).resolve()
    if not folder.is_dir():
        raise UserError(f"--source {folder}: not a folder")
    return folder


def _read_token(args: argparse.Namespace) -> str | None:
    """Return the token of ``--token``, else ``--token-file``, else ``$AISEARCH_LOCAL_TOKEN``.

    Raises:
        ValueError: The token file cannot be read or holds no token.
    """
    if args.token:
        return str(args.token)
    if args.token_file:
        try:
            text = Path(args.token_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"--token-file {args.token_file}: cannot read it ({exc})") from None
        token = text.strip()
        if not token or any(c.isspace() for c in token):
            raise ValueError(f"--token-file {args.token_file}: must hold one token without spaces")
        return token
    return os.environ.get(TOKEN_ENV) or None


def _seconds(text: str) -> float:
    """An ``argparse`` type: a finite number of seconds from 0 to one day."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value <= 86400:  # also refuses NaN
        raise argparse.ArgumentTypeError(f"must be between 0 and 86400 seconds (got {text})")
    return value


def _workers(text: str) -> int:
    """Parse ``--workers``: a whole number from 1 to :data:`MAX_WORKERS`."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(
            f"{text!r}: must be a whole number from 1 to {MAX_WORKERS}"
        )
    return n


def _rows(text: str) -> int:
    """An ``argparse`` type: a whole number of rows from 0 to 10**9."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of rows: {text!r}") from None
    if not 0 <= value <= 10**9:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1000000000 rows (got {text})")
    return value


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the server until SIGINT/SIGTERM.

    Everything a user can get wrong is checked before the "serving" banner: the extras
    (imported first), the token, the folders, the port (bound here, then handed to uvicorn)
    and the embedder and generator.
    """
    import uvicorn

    from aisearch_local.app import create_app
    from aisearch_local.routes_ui import UI_PATH
    from aisearch_local.service import Fault

    console = _console()
    try:
        token = _read_token(args)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    roots = [Path(r).resolve() for r in args.allow_source_root or []]
    for root in roots:
        if not root.is_dir():
            raise UserError(f"--allow-source-root {root}: not a folder")
    folder = _source_folder(args)
    if args.watch and not args.source:
        raise UserError("--watch needs --source DIR (the folder it watches)")
    if args.public and not (args.sample_corpus or args.source):
        raise UserError("--public needs --sample-corpus or --source (the instance it opens)")
    if args.in_memory and args.data_dir != DEFAULT_DATA_DIR:
        raise UserError("--in-memory writes nothing to disk: it takes no --data-dir")
    if args.workers > 1 and not sys.platform.startswith("linux"):
        raise UserError(
            f"--workers {args.workers} needs Linux, whose kernel spreads the connections over "
            "the workers' sockets (SO_REUSEPORT); run one process here"
        )
    if args.in_memory and args.workers > 1:
        raise UserError(
            f"--workers {args.workers} needs a data folder (--data-dir) that the workers share: "
            "--in-memory keeps the database inside one process"
        )
    data_dir = None if args.in_memory else args.data_dir
    _check_snapshot_file(args.snapshot)
    if args.replace and not args.snapshot:
        raise UserError("--replace needs --snapshot FILE (the instances it replaces)")
    if args.workers > 1:
        groups = _bind_workers(args.host, args.port, args.workers)
        socks = [sock for group in groups for sock in group]
    else:
        groups, socks = [], _bind(args.host, args.port)
    watcher: SourceWatcher | None = None
    state_dir: Path | None = None
    state: SharedState | None = None
    try:
        if args.workers > 1:  # faults, cooldowns, rate limits: one copy for all the workers
            from aisearch_local.shared import SharedState
            from aisearch_local.workers import state_folder

            state_dir = state_folder()
            state = SharedState.create(state_dir)
        svc = _service(
            data_dir,
            args.embedder,
            args.generator,
            vector_search=args.vector_search,
            ann_min_rows=args.ann_min_rows,
            keyword_engine=args.keyword_engine,
            state=state,
        )
    except BaseException:
        for sock in socks:
            sock.close()
        _drop_state(state, state_dir)
        raise
    closed = False
    try:
        if args.snapshot:
            _import_into(svc, args.snapshot, replace=args.replace)
        if args.sample_corpus:
            _sample_corpus(svc, args.namespace, args.instance or DEFAULT_SAMPLE_INSTANCE)
        if folder is not None:
            _ingest_folder(svc, args.namespace, args.instance, folder, create={})
            roots.append(folder)
        if args.public:
            _enable_public(svc, args.namespace, args.instance or DEFAULT_SAMPLE_INSTANCE)
        svc.sync_cooldown_s = args.sync_cooldown
        svc.strict = args.strict
        for spec in args.fault or []:
            ns, iid, values = spec
            svc.set_fault(ns, iid, Fault(**values))
        app = create_app(  # with --workers, each worker builds its own (workers.py)
            data_dir,
            token=token,
            service=svc,
            bind_host=args.host,
            allowed_hosts=args.allowed_host or [],
            allowed_origins=args.allowed_origin or [],
            source_roots=roots,
        )
        if args.watch:  # watching before the banner: a change made once it shows is seen
            watcher = _watch(console, svc, args.namespace, args.instance)
        # listen before the banner, so that a client that reads it can connect at once
        # (uvicorn's create_server(sock=...) listens again: harmless)
        for sock in socks:
            sock.listen(2048)
        port = socks[0].getsockname()[1]
        host = f"[{args.host}]" if ":" in args.host else args.host
        base = f"http://{host}:{port}/client/v4"
        where = "in memory, lost on exit" if data_dir is None else Path(data_dir).resolve()
        console.print(f"aisearch-local serving {base}  (data: {where})")
        console.print(
            f"  embedder={svc.embedder.name} generator={svc.generator.name} "
            f"auth={'bearer token' if token else 'off'}; any account id is accepted"
        )
        if token is None and args.host not in ("127.0.0.1", "localhost", "::1"):
            console.print(
                f"[yellow]warning:[/yellow] listening on {args.host} without a token: anyone "
                f"who can reach this port can use and change the index; set {TOKEN_ENV} or "
                "--token-file (docs/security.md)"
            )
        bound = [] if args.host in ("0.0.0.0", "::", "") else [args.host]
        hosts = sorted({"localhost", "127.0.0.1", "[::1]", *bound, *(args.allowed_host or [])})
        console.print(
            f"  answers to Host: {', '.join(hosts)}; folders for instances created over HTTP: "
            f"{', '.join(str(r) for r in roots) or 'none (--allow-source-root DIR)'}",
            highlight=False,
        )
        _print_public_endpoints(console, svc, f"http://{host}:{port}")
        # the explorer (docs/explorer.md); a wildcard bind is reached as 127.0.0.1, which the
        # Host check accepts (0.0.0.0 in Host is refused)
        ui_host = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else host
        console.print(
            f"  explorer: http://{ui_host}:{port}{UI_PATH}/  (open it in a browser)",
            highlight=False,
            soft_wrap=True,
        )
        if watcher is not None:
            _print_watching(console, watcher)
        if args.workers > 1:
            assert data_dir is not None and state_dir is not None
            if watcher is None:  # the workers open their own: free this process's indexes
                svc.close()
                closed = True
            _serve_workers(args, groups, token, data_dir, roots, state_dir)
            return 0
        config = uvicorn.Config(
            app, host=args.host, port=port, log_level=args.log_level, lifespan="off"
        )
        server = uvicorn.Server(config)
        # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal to the
        # handler that was installed before it: make that one a no-op so that we return
        # normally, close the database (WAL checkpoint) and exit with status 0.
        received: list[int] = []
        previous = {
            sig: signal.signal(sig, lambda signum, _frame: received.append(signum))
            for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            server.run(sockets=socks)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        console.print("aisearch-local stopped" + (" (signal)" if received else ""))
    except (APIError, ValidationError) as exc:
        raise UserError(str(exc), code=1) from None
    finally:
        if watcher is not None:
            watcher.stop()
        for sock in socks:
            sock.close()
        if not closed:
            svc.close()
        _drop_state(state, state_dir)
    return 0


def _drop_state(state: SharedState | None, state_dir: Path | None) -> None:
    """Close the workers' shared state and delete its folder (``serve --workers N``)."""
    if state is not None:
        state.close()
    if state_dir is not None:
        shutil.rmtree(state_dir, ignore_errors=True)


def _serve_workers(
    args: argparse.Namespace,
    groups: list[list[socket.socket]],
    token: str | None,
    data_dir: str,
    roots: list[Path],
    state_dir: Path,
) -> None:
    """Serve from ``--workers`` processes (docs/workers.md); this one only supervises them.

    Raises:
        UserError: A worker failed to start or ended on its own (the others are stopped).
    """
    from aisearch_local import workers

    settings = workers.WorkerSettings(
        data_dir=str(Path(data_dir).resolve()),
        state_dir=str(state_dir),
        embedder=args.embedder,
        generator=args.generator,
        vector_search=args.vector_search,
        ann_min_rows=args.ann_min_rows,
        keyword_engine=args.keyword_engine,
        bind_host=args.host,
        allowed_hosts=list(args.allowed_host or []),
        allowed_origins=list(args.allowed_origin or []),
        source_roots=[str(r) for r in roots],
        sync_cooldown_s=args.sync_cooldown,
        strict=args.strict,
    )
    problem = workers.run(
        settings,
        groups,
        token,
        host=args.host,
        port=groups[0][0].getsockname()[1],
        log_level=args.log_level,
    )
    if problem is not None:
        raise UserError(f"{problem}: every worker stopped", code=1)
    _console().print("aisearch-local stopped (signal)")


def _watch(console: Any, svc: LocalService, namespace: str, instance: str) -> SourceWatcher:
    """Start re-syncing ``--source`` into the instance on every change; print what it does."""
    from aisearch_local.watch import SourceWatcher

    def report(message: str, error: bool) -> None:
        console.print(message, style="red" if error else None, markup=False, highlight=False)

    try:
        return SourceWatcher(svc, namespace, instance, report).start()
    except OSError as exc:  # e.g. the inotify watch limit (fs.inotify.max_user_watches)
        raise UserError(f"--watch: {exc}", code=1) from None


def _print_watching(console: Any, watcher: SourceWatcher) -> None:
    console.print(
        f"  watching {watcher.folder}: a changed file is re-indexed, a deleted one removed",
        highlight=False,
    )


def client_env(server: LocalServer) -> dict[str, str]:
    """Return the variables that point the client (and its adapters) at ``server``."""
    return {
        "AISEARCH_BASE_URL": server.base_url,
        "CLOUDFLARE_ACCOUNT_ID": server.account_id,
        "CLOUDFLARE_API_TOKEN": server.token or "",
    }


def _exit_status(returncode: int) -> int:
    """A child's exit status as a shell reports it (killed by signal N: 128 + N)."""
    return 128 - returncode if returncode < 0 else returncode


def _check_snapshot_file(path: str | None) -> None:
    """Refuse a ``--snapshot`` that is not a file before anything starts (its content later)."""
    if path is not None and not Path(path).is_file():
        raise UserError(f"--snapshot {path}: no such file")


def cmd_exec(args: argparse.Namespace) -> int:
    """Run a command against a fresh server on a free port; stop the server when it ends.

    The server runs in this process (:class:`~aisearch_local.testing.LocalServer`, a temporary
    data folder, a random token), so it cannot outlive it. Ctrl-C reaches the command from the
    terminal: this process ignores SIGINT while the command runs and forwards SIGTERM and
    SIGHUP to it, then stops the server and exits with the command's status.
    """
    import secrets
    import subprocess

    from aisearch_local.embed import EmbedderError
    from aisearch_local.testing import LocalServer

    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise UserError("exec needs a command after --, e.g. aisearch-local exec -- pytest")
    folder = _source_folder(args)
    _check_snapshot_file(args.snapshot)
    if args.watch and folder is None:
        raise UserError("--watch needs --source DIR (the folder it watches)")
    console = _console()
    # instances the command creates over HTTP may index --source only, as with serve
    roots = [folder] if folder is not None else []
    server = LocalServer(
        token=secrets.token_urlsafe(24), source_roots=roots, embedder=args.embedder
    )
    try:
        server.start()
    except EmbedderError as exc:
        server.stop()
        raise UserError(f"--embedder {args.embedder}: {exc}", code=1) from None
    with server:
        svc = server.service
        assert svc is not None  # started
        try:
            if args.snapshot:
                _import_into(svc, args.snapshot)
            if folder is not None:  # after the snapshot: it may add to one of its instances
                _ingest_folder(svc, "default", args.instance, folder, create={})
            elif args.instance and svc.store.get_instance("default", args.instance) is None:
                if svc.store.get_namespace("default") is None:
                    svc.store.create_namespace("default", None, {})
                svc.create_instance("default", {"id": args.instance})
        except (APIError, ValidationError) as exc:
            raise UserError(str(exc), code=1) from None
        except KeyboardInterrupt:
            raise UserError("interrupted before the command started", code=130) from None
        watcher = _watch(console, svc, "default", args.instance) if args.watch else None
        if watcher is not None:
            _print_watching(console, watcher)
        try:
            env = {k: v for k, v in os.environ.items() if k not in CLIENT_ENV_NAMES}
            env.update(client_env(server))
            console.print(
                f"aisearch-local serving {server.base_url} for: {' '.join(command)}",
                highlight=False,
                markup=False,  # the command is the user's text: "[i for i in x]" is not markup
                soft_wrap=True,  # one line, as typed, whatever the terminal's width
            )
            try:
                child = subprocess.Popen(command, env=env)
            except FileNotFoundError:
                raise UserError(f"command not found: {command[0]}", code=127) from None
            except OSError as exc:  # not executable, a folder, no #! line, ...
                reason = exc.strerror or str(exc)
                raise UserError(f"cannot run {command[0]}: {reason}", code=126) from None

            def forward(signum: int, _frame: object) -> None:
                child.send_signal(signum)

            previous = {signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN)}
            for name in ("SIGTERM", "SIGHUP"):  # no SIGHUP on Windows
                if hasattr(signal, name):
                    sig = getattr(signal, name)
                    previous[sig] = signal.signal(sig, forward)
            try:
                returncode = child.wait()
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
        finally:
            if watcher is not None:
                watcher.stop()
    return _exit_status(returncode)


def _service(
    data_dir: str | None,
    embedder: str,
    generator: str,
    *,
    vector_search: str | None = None,
    ann_min_rows: int | None = None,
    keyword_engine: str | None = None,
    state: SharedState | None = None,
) -> LocalService:
    """Open the data folder with this embedder, generator and vector search mode.

    ``state``: the state ``serve --workers N`` shares (None: the service keeps its own).

    Raises:
        UserError: The embedder's or generator's spec is wrong or its backend is unavailable
            (a missing extra names its install command), or the vector search mode (from
            ``AISEARCH_LOCAL_VECTOR_SEARCH``) is not one of auto, exact, ann, or the keyword
            engine (from ``AISEARCH_LOCAL_KEYWORD_ENGINE``) not one of auto, tantivy, fts5.
    """
    from aisearch_local.embed import EmbedderError
    from aisearch_local.generate import GeneratorError
    from aisearch_local.service import LocalService

    try:
        return LocalService(
            data_dir,
            embedder=embedder,
            generator=generator,
            vector_search=vector_search,
            ann_min_rows=ann_min_rows,
            keyword_engine=keyword_engine,
            state=state,
        )
    except EmbedderError as exc:
        cause = exc.__cause__
        extra = missing_extra(cause) if isinstance(cause, ImportError) else None
        if extra:
            raise UserError(
                f"--embedder {embedder} needs the [{extra}] extra: {install_hint(extra)}", code=1
            ) from None
        raise UserError(f"--embedder {embedder}: {exc}", code=1) from None
    except GeneratorError as exc:
        raise UserError(f"--generator {generator}: {exc}", code=1) from None
    except ValueError as exc:  # the vector search mode or rows (AnnManager), keyword engine
        raise UserError(str(exc)) from None


def cmd_ingest(args: argparse.Namespace) -> int:
    """Index a folder into an instance: into the data folder, or through a running server."""
    folder = Path(args.folder).resolve()
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder")
    if args.url:
        if args.embedder is not None:
            raise UserError(
                "--embedder applies without --url only: the server at --url embeds with its "
                "own --embedder"
            )
        try:
            token = _read_token(args)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        from aisearch_local.remote_ingest import RemoteIngestError, ingest_to_server

        try:
            ingest_to_server(
                args.url, token, args.namespace, args.instance, folder, console=_console()
            )
        except RemoteIngestError as exc:
            raise UserError(str(exc), code=1) from None
        return 0
    svc = _service(args.data_dir, args.embedder or "hashing", "extractive")
    try:
        _ingest_folder(svc, args.namespace, args.instance, folder, create={})
    except (APIError, ValidationError) as exc:
        raise UserError(str(exc), code=1) from None
    finally:
        svc.close()
    return 0


def _targets(
    values: Sequence[str] | None, what: str = "--instance"
) -> list[tuple[str, str]] | None:
    """``--instance NAMESPACE/ID`` values as checked pairs (None when none was given)."""
    from aisearch_local.snapshot import parse_target

    if not values:
        return None
    try:
        return [parse_target(v, what) for v in values]
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _print_written(console: Any, verb: str, done: Sequence[tuple[Any, int, int]]) -> None:
    for inst, n_items, n_chunks in done:
        console.print(
            f"{verb} {inst.namespace}/{inst.id}: {n_items} items, {n_chunks} chunks "
            f"({inst.embedder})",
            highlight=False,
        )


def cmd_export(args: argparse.Namespace) -> int:
    """Write instances of a data folder to one snapshot file."""
    from aisearch_local.snapshot import SnapshotError, export_snapshot
    from aisearch_local.store import DB_FILENAME, Store

    targets = _targets(args.instance)
    if not (Path(args.data_dir) / DB_FILENAME).is_file():
        raise UserError(
            f"no aisearch-local data in {args.data_dir} (no {DB_FILENAME}); "
            "pass the --data-dir the server or ingest used"
        )
    out = Path(args.file)
    if out.is_dir() or not out.parent.is_dir():
        raise UserError(f"{out}: not a file path in an existing folder")
    store = Store(args.data_dir)
    try:
        done = export_snapshot(store, out, targets)
    except SnapshotError as exc:
        raise UserError(str(exc), code=1) from None
    finally:
        store.close()
    _print_written(_console(), "exported", done)
    _console().print(f"wrote {out} ({out.stat().st_size} bytes)", highlight=False)
    return 0


def _import_into(
    svc: LocalService,
    path: str,
    *,
    only: Sequence[tuple[str, str]] | None = None,
    target: tuple[str, str] | None = None,
    replace: bool = False,
) -> None:
    """Import a snapshot into a running or stopped server's store; print what was written."""
    from aisearch_local.snapshot import SnapshotError, import_snapshot

    try:
        done = import_snapshot(svc, path, only=only, target=target, replace=replace)
    except SnapshotError as exc:
        raise UserError(str(exc), code=1) from None
    _print_written(_console(), "imported", done)


def cmd_import(args: argparse.Namespace) -> int:
    """Load instances from a snapshot file into a data folder, without re-embedding."""
    only = _targets(args.instance)
    named = _targets([args.as_], "--as") if args.as_ else None
    target = named[0] if named else None
    svc = _service(args.data_dir, args.embedder, "extractive")
    try:
        _import_into(svc, args.file, only=only, target=target, replace=args.replace)
    finally:
        svc.close()
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    """Print namespaces, instances and their item and chunk counts."""
    from rich.console import Console
    from rich.table import Table

    from aisearch_local.store import DB_FILENAME, Store

    if not (Path(args.data_dir) / DB_FILENAME).is_file():
        raise UserError(
            f"no aisearch-local data in {args.data_dir} (no {DB_FILENAME}); "
            "pass the --data-dir the server or ingest used"
        )
    store = Store(args.data_dir)
    try:
        table = Table(title=f"aisearch-local data in {Path(args.data_dir).resolve()}")
        for col in ("namespace", "instance", "embedder", "items", "completed", "error", "chunks"):
            table.add_column(col)
        for inst in store.list_instances(None):
            if args.instance and inst.id != args.instance:
                continue
            st = store.stats(inst)
            counts = st["counts"]
            table.add_row(
                inst.namespace,
                inst.id,
                inst.embedder,
                str(st["items"]),
                str(counts.get("completed", 0)),
                str(counts.get("error", 0)),
                str(st["chunks"]),
            )
        Console().print(table)
        if args.instance:
            for inst in store.list_instances(None):
                if inst.id != args.instance:
                    continue
                for item in store.list_items(inst):
                    if item["status"] == "error":
                        Console().print(f"[red]{item['key']}[/red]: {item.get('error')}")
    finally:
        store.close()
    return 0


def _version() -> str:
    """Return the installed version of aisearch-py (the source tree's, if not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("aisearch-py")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        from aisearch_local import __version__

        return __version__


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``aisearch-local``."""
    parser = argparse.ArgumentParser(
        prog="aisearch-local", description="A local, wire-compatible Cloudflare AI Search server."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="database directory")
        p.add_argument("--namespace", default="default", help="namespace of --instance")

    serve = sub.add_parser("serve", help="run the HTTP server")
    common(serve)
    serve.add_argument(
        "--in-memory",
        action="store_true",
        help="keep the database in memory: nothing is written to disk, all is lost on exit",
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8787)
    serve.add_argument(
        "--snapshot",
        metavar="FILE",
        help="load the instances of this snapshot at start (aisearch-local export; no "
        "re-embedding; an instance that exists is refused unless --replace)",
    )
    serve.add_argument(
        "--replace", action="store_true", help="with --snapshot: replace instances that exist"
    )
    serve.add_argument("--source", help="folder to index into --instance (re-synced by jobs)")
    serve.add_argument(
        "--watch",
        action="store_true",
        help="with --source: re-index a file when it changes, remove it when deleted",
    )
    serve.add_argument("--instance", help="instance for --source / --sample-corpus")
    serve.add_argument(
        "--token",
        help=f"required bearer token (visible in the process list: prefer env {TOKEN_ENV} "
        "or --token-file)",
    )
    serve.add_argument("--token-file", help="read the required bearer token from this file")
    serve.add_argument(
        "--allowed-host",
        action="append",
        metavar="HOST",
        help="also answer to this Host name (repeatable; loopback names and --host always; "
        "'*' turns the DNS-rebinding check off)",
    )
    serve.add_argument(
        "--allowed-origin",
        action="append",
        metavar="ORIGIN",
        help="also accept POST/PUT/PATCH/DELETE from this browser origin, e.g. "
        "http://localhost:3000 (repeatable)",
    )
    serve.add_argument(
        "--allow-source-root",
        action="append",
        metavar="DIR",
        help="instances created over HTTP may index folders under DIR (repeatable; --source "
        "is always allowed)",
    )
    serve.add_argument(
        "--sample-corpus",
        action="store_true",
        help=f"index the bundled coffee corpus into --instance ({DEFAULT_SAMPLE_INSTANCE!r})",
    )
    serve.add_argument(
        "--public",
        action="store_true",
        help="enable the public endpoint (no token: search, chat, MCP) of the --sample-corpus "
        "or --source instance; the banner prints its URL",
    )
    serve.add_argument(
        "--embedder", default="hashing", help="hashing | wordllama | openai:MODEL@URL"
    )
    serve.add_argument("--generator", default="extractive", help="extractive | openai:MODEL@URL")
    serve.add_argument(
        "--vector-search",
        choices=["auto", "exact", "ann"],
        default=None,
        help="auto: an HNSW graph (usearch) for a dense embedder's instances of --ann-min-rows "
        "rows or more, exact search below; exact: always exact; ann: a graph for every "
        "instance (default: env AISEARCH_LOCAL_VECTOR_SEARCH, else auto)",
    )
    serve.add_argument(
        "--ann-min-rows",
        type=_rows,
        default=None,
        metavar="ROWS",
        help="rows from which --vector-search auto uses the graph (default 20000)",
    )
    serve.add_argument(
        "--keyword-engine",
        choices=["auto", "tantivy", "fts5"],
        default=None,
        help="keyword search of porter instances: auto: tantivy from 20000 chunks, SQLite FTS5 "
        "below; tantivy: always; fts5: never (trigram instances always use FTS5; default: env "
        "AISEARCH_LOCAL_KEYWORD_ENGINE, else auto)",
    )
    serve.add_argument(
        "--fault",
        action="append",
        type=_parse_fault,
        help="inject a fault: [NAMESPACE/]INSTANCE:status=503,retry_after=2,latency_ms=100,...",
    )
    serve.add_argument(
        "--sync-cooldown",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="refuse a sync job started within SECONDS of the instance's last one with "
        "429 / 7020 sync_in_cooldown and Retry-After (Cloudflare: 30; default 0: off)",
    )
    strictness = serve.add_mutually_exclusive_group()
    strictness.add_argument(
        "--strict",
        action="store_true",
        help="refuse unknown instance fields and ai_search_options sections or keys with "
        "400 / 7001 naming them (catches misspelt options)",
    )
    strictness.add_argument(
        "--lenient",
        dest="strict",
        action="store_false",
        help="ignore unknown ai_search_options keys and keep unknown instance fields (default; "
        "how Cloudflare treats them is undocumented)",
    )
    serve.add_argument(
        "--workers",
        type=_workers,
        default=1,
        metavar="N",
        help=f"answer from N processes on the port (1 to {MAX_WORKERS}; each holds its own "
        "in-memory indexes; needs a data folder, not --in-memory; docs/workers.md)",
    )
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.set_defaults(func=cmd_serve)

    exec_text = (
        "start a server on a free port of 127.0.0.1 (a temporary data folder, a random token), "
        "load --snapshot, index --source into --instance, run CMD with AISEARCH_BASE_URL, "
        "CLOUDFLARE_ACCOUNT_ID and CLOUDFLARE_API_TOKEN pointing at it, stop the server when "
        "CMD ends and exit with its status"
    )
    exec_ = sub.add_parser(
        "exec",
        help="run a command against a fresh server, then stop it",
        description=exec_text[0].upper() + exec_text[1:] + ".",
        usage="%(prog)s [--snapshot FILE] [--source DIR [--watch]] [--instance NAME] -- CMD "
        "[ARG ...]",
    )
    exec_.add_argument(
        "--snapshot",
        metavar="FILE",
        help="load the instances of this snapshot first (aisearch-local export; no re-embedding)",
    )
    exec_.add_argument("--source", metavar="DIR", help="folder to index into --instance")
    exec_.add_argument(
        "--watch",
        action="store_true",
        help="with --source: re-index a file when it changes while CMD runs",
    )
    exec_.add_argument(
        "--instance", metavar="NAME", help="instance to create (empty without --source)"
    )
    exec_.add_argument(
        "--embedder", default="hashing", help="hashing | wordllama | openai:MODEL@URL"
    )
    exec_.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    exec_.set_defaults(func=cmd_exec)

    ingest = sub.add_parser(
        "ingest",
        help="index a folder into an instance: into --data-dir (server stopped), or through "
        "the running server at --url",
    )
    common(ingest)
    ingest.add_argument("folder")
    ingest.add_argument("--instance", required=True)
    ingest.add_argument(
        "--embedder", default=None, help="hashing (default) | wordllama | openai:MODEL@URL"
    )
    ingest.add_argument(
        "--url",
        help="send the files to the aisearch-local server running there, e.g. "
        "http://127.0.0.1:8787 (its bulk route, 256 files a request), instead of writing "
        "--data-dir",
    )
    ingest.add_argument(
        "--token",
        help=f"the --url server's token (visible in the process list: prefer env {TOKEN_ENV} "
        "or --token-file)",
    )
    ingest.add_argument("--token-file", help="read the --url server's token from this file")
    ingest.set_defaults(func=cmd_ingest)

    export = sub.add_parser(
        "export",
        help="write instances (config, items, chunks, embeddings) to one snapshot file",
        description="Write instances of --data-dir (all, or each --instance) to FILE, a zip "
        "archive that import, serve --snapshot and exec --snapshot load without re-embedding "
        "(format: docs/snapshots.md). The server may keep running.",
    )
    export.add_argument(
        "file", metavar="FILE", help="the snapshot to write (replaced if it exists)"
    )
    export.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="database directory")
    export.add_argument(
        "--instance",
        action="append",
        metavar="NAMESPACE/ID",
        help="export this instance (repeatable; ID alone is in namespace default; default: all)",
    )
    export.set_defaults(func=cmd_export)

    import_ = sub.add_parser(
        "import",
        help="load instances from a snapshot file (no re-embedding)",
        description="Load the instances of a snapshot FILE into --data-dir, all in one "
        "transaction, without embedding anything: --embedder must be the one the snapshot was "
        "made with. An instance that exists is refused unless --replace.",
    )
    import_.add_argument("file", metavar="FILE", help="the snapshot to read")
    import_.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="database directory")
    import_.add_argument(
        "--instance",
        action="append",
        metavar="NAMESPACE/ID",
        help="import only this instance of the snapshot (repeatable; default: all)",
    )
    import_.add_argument(
        "--as",
        dest="as_",
        metavar="NAMESPACE/ID",
        help="import the one chosen instance under this name",
    )
    import_.add_argument(
        "--replace", action="store_true", help="replace instances that already exist"
    )
    import_.add_argument(
        "--embedder",
        default="hashing",
        help="the server's embedder: the snapshot's must be the same (default hashing)",
    )
    import_.set_defaults(func=cmd_import)

    helps = {
        "inspect": "show each instance's embedder, item and chunk counts (with --instance NAME, "
        "also its failed items)",
        "stats": "an alias of inspect (the same table and options)",
    }
    for name, text in helps.items():
        insp = sub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        common(insp)
        insp.add_argument("--instance", help="also list this instance's failed items")
        insp.set_defaults(func=cmd_inspect)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point of ``aisearch-local``.

    Unless ``OPENBLAS_NUM_THREADS`` (or ``OMP_NUM_THREADS``) is set, numpy's BLAS runs one
    thread per call: a server answers requests concurrently, and multi-threaded BLAS spinning
    on a busy 2-core machine made the vector search 2x slower in ``benchmarks/bench_server.py``.
    """
    if "OMP_NUM_THREADS" not in os.environ:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        code: int = args.func(args)
    except UserError as exc:
        _fail(str(exc))
        return exc.code
    except ModuleNotFoundError as exc:
        extra = missing_extra(exc)
        if extra is None:
            raise
        sys.stderr.write(f"aisearch-local needs the [{extra}] extra: {install_hint(extra)}\n")
        return 1
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
