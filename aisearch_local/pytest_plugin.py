"""pytest fixtures that give a test suite a local AI Search server, with no code.

Installed with ``pip install "aisearch-py[local]"`` and registered through the ``pytest11``
entry point ``aisearch_local`` (``pytest -p no:aisearch_local`` turns it off). Nothing is
started, and nothing heavier than ``httpx`` imported, until a test uses a fixture:

* ``aisearch_server`` (session): a :class:`~aisearch_local.testing.LocalServer` on a free port
  of 127.0.0.1, with a temporary data directory and a random token.
* ``aisearch_env``: the environment the client reads, set for the test and restored after it
  (``AISEARCH_BASE_URL``, ``CLOUDFLARE_ACCOUNT_ID``, ``CLOUDFLARE_API_TOKEN``; the client's
  other variables are removed), so that application code runs unmodified. Returns them.
* ``aisearch_instance``: a factory, ``aisearch_instance(name=None, *, source=None,
  snapshot=None, **config)``, that creates an instance (indexing the folder ``source``, or
  loading the one instance of the file ``snapshot`` made by ``aisearch-local export``, without
  re-embedding) and returns its id; the instance is deleted after the test. Using it also sets
  the environment.
* ``aisearch_fault``: ``aisearch_fault(instance_id, status=503, times=1, ...)`` injects a fault
  on an instance's search and chat routes (the fields of :class:`aisearch_local.service.Fault`);
  the faults it set are cleared after the test.

Example::

    def test_answers(aisearch_instance):
        name = aisearch_instance(source="tests/docs")
        assert my_app.ask(name, "How long do I pull an espresso?")
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest

if TYPE_CHECKING:
    import httpx

    from aisearch_local.testing import LocalServer

__all__ = [
    "aisearch_env",
    "aisearch_fault",
    "aisearch_instance",
    "aisearch_server",
]


class AISearchFixtureError(Exception):
    """The local server refused what a fixture asked (its status, code and message)."""


def _call(http: httpx.Client, what: str, method: str, url: str, **kwargs: Any) -> Any:
    """Send a request; return the envelope's ``result`` or raise naming the server's error."""
    response = http.request(method, url, **kwargs)
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.is_success and isinstance(body, dict):
        return body.get("result")
    errors = body.get("errors") if isinstance(body, dict) else None
    first = errors[0] if isinstance(errors, list) and errors else {}
    detail = f"{first.get('code')} {first.get('message')}" if isinstance(first, dict) else ""
    raise AISearchFixtureError(f"{what}: HTTP {response.status_code}: {detail or response.text}")


@pytest.fixture(scope="session")
def aisearch_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """A local AI Search server for the session (127.0.0.1, a free port, a temporary folder)."""
    from aisearch_local.testing import LocalServer

    data_dir = tmp_path_factory.mktemp("aisearch-local")
    with LocalServer(data_dir=data_dir, token=secrets.token_urlsafe(24)) as server:
        yield server


@pytest.fixture
def aisearch_env(aisearch_server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point the client's environment variables at ``aisearch_server`` for this test."""
    from aisearch_local.cli import CLIENT_ENV_NAMES, client_env

    for name in CLIENT_ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    env = client_env(aisearch_server)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def _aisearch_http(aisearch_server: LocalServer) -> Iterator[httpx.Client]:
    import httpx

    with httpx.Client(
        base_url=aisearch_server.base_url, headers=aisearch_server.headers, timeout=300.0
    ) as http:
        yield http


@pytest.fixture
def aisearch_instance(
    aisearch_server: LocalServer,
    aisearch_env: dict[str, str],
    _aisearch_http: httpx.Client,
) -> Iterator[Callable[..., str]]:
    """A factory creating instances (seeded from a folder or a snapshot), deleted after the test.

    ``aisearch_instance(name=None, *, source=None, snapshot=None, **config)`` returns the
    instance id (a new ``test-...`` one when ``name`` is None); ``source`` is a folder whose
    files are indexed before it returns; ``snapshot`` a file of ``aisearch-local export``
    holding one instance (or several: pick one with ``snapshot_instance="NAMESPACE/ID"``),
    loaded as it was saved (configuration, items, vectors); ``config`` is the create body (e.g.
    ``custom_metadata=[...]``), not taken with ``snapshot``.
    """
    del aisearch_env  # requested for its effect: the test's environment points at the server
    instances = f"/accounts/{quote(aisearch_server.account_id, safe='')}/ai-search/instances"
    created: list[str] = []

    def create(
        name: str | None = None,
        *,
        source: str | os.PathLike[str] | None = None,
        snapshot: str | os.PathLike[str] | None = None,
        snapshot_instance: str | None = None,
        **config: Any,
    ) -> str:
        name = name or f"test-{uuid.uuid4().hex[:12]}"
        if snapshot is not None:
            _load_snapshot(aisearch_server, name, snapshot, snapshot_instance, source, config)
            created.append(name)
            return name
        body: dict[str, Any] = {**config, "id": name}
        folder: Path | None = None
        if source is not None:
            folder = Path(source).resolve()
            if not folder.is_dir():
                raise AISearchFixtureError(
                    f"aisearch_instance(source={os.fspath(source)!r}): {folder} is not a folder"
                )
            body["source"] = str(folder)
        _call(_aisearch_http, f"aisearch_instance({name!r})", "POST", instances, json=body)
        created.append(name)
        if folder is not None:
            job = _call(
                _aisearch_http,
                f"aisearch_instance({name!r}): indexing {folder}",
                "POST",
                f"{instances}/{quote(name, safe='')}/jobs",
                json={"description": "aisearch_instance"},
            )
            reason = str(job.get("end_reason"))
            if not reason.startswith("completed"):
                raise AISearchFixtureError(f"aisearch_instance({name!r}): indexing {reason}")
        return name

    yield create
    for name in created:
        response = _aisearch_http.delete(f"{instances}/{quote(name, safe='')}")
        if response.status_code != 404:  # deleted by the test itself
            response.raise_for_status()


def _load_snapshot(
    server: LocalServer,
    name: str,
    snapshot: str | os.PathLike[str],
    snapshot_instance: str | None,
    source: object,
    config: dict[str, Any],
) -> None:
    """Import one instance of a snapshot as ``default/name`` into the session's server."""
    from aisearch_local.snapshot import SnapshotError, import_snapshot, parse_target

    what = f"aisearch_instance({name!r}, snapshot={os.fspath(snapshot)!r})"
    if source is not None or config:
        raise AISearchFixtureError(
            f"{what}: a snapshot brings its own items and configuration: pass no source= "
            f"and no configuration ({', '.join(config) or 'source'})"
        )
    if server.service is None:  # pragma: no cover - the session fixture started it
        raise AISearchFixtureError(f"{what}: the server is not running")
    try:
        only = (
            None
            if snapshot_instance is None
            else [parse_target(snapshot_instance, "snapshot_instance")]
        )
        import_snapshot(server.service, snapshot, only=only, target=("default", name))
    except (SnapshotError, ValueError) as exc:
        raise AISearchFixtureError(f"{what}: {exc}") from None


@pytest.fixture
def aisearch_fault(_aisearch_http: httpx.Client) -> Iterator[Callable[..., None]]:
    """Inject faults on instances' search and chat routes; cleared after the test.

    ``aisearch_fault(instance_id, *, namespace="default", **fault)`` where ``fault`` holds the
    fields of :class:`aisearch_local.service.Fault`: ``status`` (400-599), ``code``,
    ``retry_after``, ``latency_ms``, ``truncate_stream``, ``malformed_body``, ``times``.
    A field out of range is refused with the server's 400 message naming it.
    """
    paths: list[str] = []

    def inject(instance_id: str, *, namespace: str = "default", **fault: Any) -> None:
        path = f"/_local/faults/{quote(namespace, safe='')}/{quote(instance_id, safe='')}"
        _call(_aisearch_http, f"aisearch_fault({instance_id!r})", "PUT", path, json=fault)
        paths.append(path)

    yield inject
    for path in paths:
        _aisearch_http.delete(path).raise_for_status()
