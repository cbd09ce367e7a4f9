"""Watch mode: re-sync an instance from its source folder whenever a file in it changes.

``aisearch-local serve --source DIR --instance NAME --watch`` (and ``exec --watch``) start a
:class:`SourceWatcher`: a thread that waits on the operating system's file events (watchfiles,
Rust ``notify``: inotify, FSEvents, ReadDirectoryChangesW; no polling) and, once the folder has
been quiet for 100 ms (or at most 400 ms after the first change of a burst, so that an editor's
save-rename-delete dance is one update), runs one sync job: new and edited files are indexed,
deleted ones removed, unchanged ones skipped by checksum. Each update is a job of the instance
(its log in the jobs API and the explorer) and is printed on the console; a file that fails to
parse becomes an item with status error and an error line, and watching goes on. The thread
stops within ~50 ms of :meth:`SourceWatcher.stop`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aisearch_local.service import LocalService

__all__ = ["DEBOUNCE_MS", "STEP_MS", "SourceWatcher"]

logger = logging.getLogger(__name__)

DEBOUNCE_MS = 400
"""Longest a burst of changes is gathered before the sync starts."""
STEP_MS = 100
"""Quiet time after the last change that ends a burst (and how often the stop flag is read)."""


class SourceWatcher:
    """Keep an instance in step with its source folder while the server runs.

    Args:
        svc: The server's service.
        namespace: The instance's namespace.
        instance_id: The instance, whose ``source_dir`` is watched.
        report: Called with ``(message, is_error)`` for every indexed, removed or failed file,
            and for a sync that failed as a whole.
    """

    def __init__(
        self,
        svc: LocalService,
        namespace: str,
        instance_id: str,
        report: Callable[[str, bool], None],
    ) -> None:
        inst = svc.require_instance(namespace, instance_id)
        if not inst.source_dir:
            raise ValueError(f"instance {namespace}/{instance_id} has no source folder to watch")
        self.folder = Path(inst.source_dir)
        self._svc = svc
        self._where = (namespace, instance_id)
        self._report = report
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread: threading.Thread | None = None
        self.updates = 0  # syncs run (for tests and the console)

    def start(self) -> SourceWatcher:
        """Start watching (a daemon thread); return self once a change would be seen.

        Raises:
            OSError: The folder cannot be watched (e.g. the inotify watch limit is reached).
        """
        import watchfiles  # noqa: F401 - a missing [local] extra fails here, not in the thread

        self._thread = threading.Thread(target=self._run, name="aisearch-local-watch", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._failure is not None:
            self.stop()
            raise OSError(f"cannot watch {self.folder}: {self._failure}") from self._failure
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop watching and wait for a running sync to end (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> SourceWatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        from watchfiles import watch

        try:
            # yield_on_timeout: an empty batch every 200 ms while idle; the first one says that
            # the operating system's watch is in place (start() waits for it)
            for changes in watch(
                self.folder,
                stop_event=self._stop,
                debounce=DEBOUNCE_MS,
                step=STEP_MS,
                rust_timeout=200,
                yield_on_timeout=True,
                raise_interrupt=False,
                ignore_permission_denied=True,
            ):
                self._ready.set()
                if self._stop.is_set():
                    break
                if changes:
                    self._update(len(changes))
        except Exception as exc:  # pragma: no cover - the watch itself failed (inotify limit)
            self._failure = exc
            if self._ready.is_set():
                self._report(f"watch: stopped: {exc}", True)
        finally:
            self._ready.set()

    def _update(self, n_changes: int) -> None:
        try:
            self.sync(n_changes)
        except Exception as exc:  # the folder vanished, the instance was deleted, ...
            logger.debug("watch: sync failed", exc_info=True)
            self._report(f"watch: sync failed: {exc}", True)

    def sync(self, n_changes: int) -> None:
        """Run one sync job (what a burst of ``n_changes`` file events triggers)."""
        store = self._svc.store
        inst = self._svc.require_instance(*self._where)  # re-read: it may have been updated
        job = store.create_job(inst, f"watch: {n_changes} file change(s)")
        reason: str
        log: list[dict[str, Any]] = []
        try:
            reason, log = self._svc.sync_source(inst)
        except Exception as exc:
            reason = f"error: {exc}"
            raise
        finally:
            store.finish_job(inst, job["id"], reason, log)
            self.updates += 1
        for line in log:
            self._report(f"watch: {line['message']}", line.get("message_type") == 2)
