"""``aisearch-local ingest --url``: send a folder to a running server through its bulk route.

The folder is read as a sync job reads it (:func:`aisearch_local.ingest.scan_source_dir`: key
order, ``.meta.json`` sidecars, hidden files skipped) and sent in batches of up to
:data:`BATCH_FILES` files (:data:`BATCH_BYTES` of documents) to
``POST /client/v4/_local/bulk/{ns}/{instance_id}/items``, two requests in flight so that the
server embeds one batch while the next is read and sent. The instance is created when missing.
Every file is sent (an upsert by key); nothing is removed from the instance.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from aisearch_local.ingest import SourceFile, scan_source_dir
from aisearch_local.validation import checked_source_file

__all__ = [
    "BATCH_BYTES",
    "BATCH_FILES",
    "RemoteIngestError",
    "ingest_to_server",
    "progress_bar",
]

BATCH_FILES = 256
BATCH_BYTES = 8 * 1024 * 1024
_IN_FLIGHT = 2


class RemoteIngestError(Exception):
    """The server cannot be reached or refused a request (the message says which and why)."""


def progress_bar(console: Any) -> Any:
    """The progress bar of folder ingestion (offline or ``--url``): done/total, time, last key."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[key]}"),
        console=console,
        transient=False,
    )


def _origin(url: str) -> str:
    """``http://host:port`` of ``--url`` (a trailing ``/client/v4`` is accepted)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RemoteIngestError(f"--url must be http(s)://HOST:PORT of the server (got {url!r})")
    return f"{parts.scheme}://{parts.netloc}"


def _message(r: httpx.Response) -> str:
    try:
        errors = r.json().get("errors") or []
        return "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors) or r.text[:300]
    except (ValueError, AttributeError):
        return r.text[:300]


def _check(r: httpx.Response, what: str) -> dict[str, Any]:
    if r.status_code in (401, 403):
        raise RemoteIngestError(
            f"{what}: the server refused the token (HTTP {r.status_code}, {_message(r)}); pass "
            "its token with --token-file or AISEARCH_LOCAL_TOKEN"
        )
    if r.status_code >= 400:
        raise RemoteIngestError(f"{what}: HTTP {r.status_code}, {_message(r)}")
    body: dict[str, Any] = r.json()
    return body


def _batches(files: list[SourceFile]) -> Iterator[list[SourceFile]]:
    batch: list[SourceFile] = []
    size = 0
    for sf in files:
        if batch and (len(batch) >= BATCH_FILES or size + len(sf.data) > BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(sf)
        size += len(sf.data)
    if batch:
        yield batch


def _item(sf: SourceFile) -> dict[str, Any]:
    item: dict[str, Any] = {"key": sf.key, "data": base64.b64encode(sf.data).decode("ascii")}
    if sf.metadata:
        item["metadata"] = sf.metadata
    return item


def ingest_to_server(
    url: str,
    token: str | None,
    namespace: str,
    instance: str,
    folder: Path,
    *,
    console: Any,
) -> dict[str, int]:
    """Send every document of ``folder`` to ``instance`` on the server at ``url``.

    Returns:
        Counts: ``indexed``, ``errors`` (stored with status error), ``refused`` (not stored:
        the server's checks, or a sidecar that is not valid metadata).

    Raises:
        RemoteIngestError: The server cannot be reached, refused the token, or refused a
            whole request.
    """
    origin = _origin(url)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    ns_path = "" if namespace == "default" else f"/namespaces/{quote(namespace, safe='')}"
    inst_path = f"/client/v4/accounts/local/ai-search{ns_path}/instances"
    bulk_path = f"/client/v4/_local/bulk/{quote(namespace, safe='')}/{quote(instance, safe='')}"
    counts = {"indexed": 0, "errors": 0, "refused": 0}
    problems: list[str] = []
    files: list[SourceFile] = []
    for sf in map(checked_source_file, scan_source_dir(folder)):
        if sf.metadata_error is not None:  # the server would store it as an error: say it here
            counts["refused"] += 1
            problems.append(sf.metadata_error)
        else:
            files.append(sf)
    try:
        with httpx.Client(base_url=origin, headers=headers, timeout=300) as http:
            got = http.get(f"{inst_path}/{quote(instance, safe='')}")
            if got.status_code == 404:
                _check(http.post(inst_path, json={"id": instance}), f"creating {instance}")
            else:
                _check(got, f"reading instance {namespace}/{instance}")

            def send(batch: list[SourceFile]) -> dict[str, Any]:
                body = {"items": [_item(sf) for sf in batch]}
                return _check(http.post(bulk_path + "/items", json=body), "bulk upload")

            with (
                progress_bar(console) as progress,
                ThreadPoolExecutor(_IN_FLIGHT) as pool,
            ):
                task = progress.add_task(
                    f"sending to {namespace}/{instance}", total=len(files), key=""
                )
                pending: list[tuple[list[SourceFile], Future[dict[str, Any]]]] = []

                def settle(batch: list[SourceFile], future: Future[dict[str, Any]]) -> None:
                    for result in future.result()["result"]["items"]:
                        if not result["success"]:
                            counts["refused"] += 1
                            message = result["errors"][0]["message"]
                            problems.append(f"{result['key']}: {message}")
                        elif result["result"]["status"] == "error":
                            counts["errors"] += 1
                            problems.append(f"{result['key']}: {result['result'].get('error')}")
                        else:
                            counts["indexed"] += 1
                    progress.update(task, advance=len(batch), key=batch[-1].key)

                for batch in _batches(files):
                    if len(pending) >= _IN_FLIGHT:
                        settle(*pending.pop(0))
                    pending.append((batch, pool.submit(send, batch)))
                for batch, future in pending:
                    settle(batch, future)
    except httpx.TransportError as exc:
        raise RemoteIngestError(f"cannot reach the server at {origin} ({exc})") from None
    for line in problems:
        console.print(f"[red]error[/red] {line}", highlight=False)
    console.print(
        f"{namespace}/{instance}: sent {len(files)} files to {origin}: {counts['indexed']} "
        f"indexed, {counts['errors']} errors, {counts['refused']} refused",
        highlight=False,
    )
    return counts
