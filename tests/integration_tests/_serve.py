"""``aisearch-local serve`` as a subprocess for the CLI tests, and a poll with a deadline.

Its stderr is read by a thread, so the server never blocks on a full pipe, and the lines stay
searchable (:meth:`ServeProcess.find`). Used by test_cli_watch.py and test_workers.py.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

__all__ = ["AISEARCH_LOCAL", "WAIT", "ServeProcess", "until"]

AISEARCH_LOCAL = str(Path(sys.executable).parent / "aisearch-local")
WAIT = 60.0


def until(what: str, check: Callable[[], Any]) -> Any:
    """Poll ``check`` until it returns something truthy; fail after WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"after {WAIT:.0f} s: {what}")
        time.sleep(0.05)


class ServeProcess:
    """``aisearch-local serve --port PORT --log-level warning ARGV...`` in ``cwd``.

    Started when made: returns once the serving banner is printed (``base``: its URL).
    """

    def __init__(self, *argv: str, cwd: Path, port: int = 0) -> None:
        self.proc = subprocess.Popen(
            [AISEARCH_LOCAL, "serve", "--port", str(port), "--log-level", "warning", *argv],
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        banner = until("the serving banner", lambda: self.find("aisearch-local serving"))
        self.base = banner.split()[2]

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def find(self, text: str) -> str | None:
        """The first line of stderr holding ``text`` (None: none yet); fails if serve ended."""
        if self.proc.poll() is not None and not self._reader.is_alive():
            pytest.fail("serve ended early:\n" + "".join(self.lines))
        return next((line for line in self.lines if text in line), None)

    def stop(self) -> int:
        """SIGTERM; return the exit status."""
        self.proc.terminate()
        code = self.proc.wait(timeout=60)
        self._reader.join(timeout=10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        return code
