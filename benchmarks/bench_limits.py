"""Benchmark of the server's body-size limits: time to 413 and server memory under big bodies.

Starts ``aisearch-local serve --sample-corpus`` in a subprocess (the real command line), then
sends JSON bodies of 1, 10 and 50 MB (10**6 bytes) to two routes, each ``--repeats`` times, on
raw sockets so that the client stops sending as soon as the server answers:

* ``POST .../instances/coffee/search`` (limit 16 MiB: 1 and 10 MB bodies are read and handled
  by the route; 50 MB is refused);
* ``POST .../instances`` (limit 1 MiB: 10 and 50 MB are refused, 1 MB is read and handled).

Each body is sent with ``Content-Length`` and again chunked. Prints, per case, the median time
from the first byte sent to the answer's status line, the status, how many body bytes had been
sent by then, and the server's RSS (``/proc/<pid>/status``) before the first and after the last
request. Targets: a 50 MB body answered 413 in under a second; RSS flat.

Usage::

    .venv/bin/python benchmarks/bench_limits.py
    .venv/bin/python benchmarks/bench_limits.py --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

MB = 1_000_000
SIZES = (1, 10, 50)
CHUNK = 64 * 1024


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def json_body(size: int, route: str) -> bytes:
    """A valid JSON object of exactly ``size`` bytes."""
    if route == "search":
        head, tail = b'{"query": "', b'"}'
    else:
        head, tail = b'{"id": "big-body", "description": "', b'"}'
    filler = b"espresso " * (size // 9 + 1)
    return head + filler[: size - len(head) - len(tail)] + tail


def body_chunks(body: bytes, chunked: bool) -> Iterator[bytes]:
    for start in range(0, len(body), CHUNK):
        piece = body[start : start + CHUNK]
        yield b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
    if chunked:
        yield b"0\r\n\r\n"


def send(port: int, path: str, body: bytes, chunked: bool) -> tuple[float, int, int]:
    """Send one request; return (seconds to the status line, status, body bytes sent)."""
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\n{framing}\r\nConnection: close\r\n\r\n"
    ).encode()
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        t0 = time.perf_counter()
        sock.sendall(head)
        for piece in body_chunks(body, chunked):
            if select.select([sock], [], [], 0)[0]:
                break  # the server answered: stop sending
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(piece)
        answer = b""
        try:
            while b"\r\n" not in answer:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        except ConnectionResetError:
            pass
        elapsed = time.perf_counter() - t0
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0
    return elapsed, status, min(sent, len(body))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-limits-") as data_dir:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aisearch_local.cli",
                "serve",
                "--sample-corpus",
                "--port",
                str(port),
                "--data-dir",
                data_dir,
                "--log-level",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ},
        )
        try:
            base = f"http://127.0.0.1:{port}/client/v4"
            deadline = time.monotonic() + 120
            while True:
                try:
                    httpx.get(base + "/_local/health", timeout=1)
                    break
                except httpx.TransportError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        print("the server did not start", file=sys.stderr)
                        return 1
                    time.sleep(0.2)
            routes = {
                "search": "/client/v4/accounts/a/ai-search/instances/coffee/search",
                "create": "/client/v4/accounts/a/ai-search/instances",
            }
            start_rss = rss_mb(proc.pid)
            print(f"server pid {proc.pid}, RSS at start {start_rss:.0f} MB")
            print(
                f"{'route':<7} {'size':>6} {'framing':<15} {'status':>6} {'median s':>9} "
                f"{'max s':>7} {'sent MB':>8} {'RSS before':>11} {'RSS after':>10}"
            )
            for route, path in routes.items():
                for size in SIZES:
                    body = json_body(size * MB, route)
                    for chunked in (False, True):
                        before = rss_mb(proc.pid)
                        runs = [send(port, path, body, chunked) for _ in range(args.repeats)]
                        after = rss_mb(proc.pid)
                        times = [r[0] for r in runs]
                        statuses = sorted({r[1] for r in runs})
                        sent = max(r[2] for r in runs) / MB
                        framing = "chunked" if chunked else "Content-Length"
                        print(
                            f"{route:<7} {size:>4}MB {framing:<15} "
                            f"{'/'.join(map(str, statuses)):>6} {statistics.median(times):>9.3f} "
                            f"{max(times):>7.3f} {sent:>8.2f} {before:>9.0f}MB {after:>8.0f}MB"
                        )
            end_rss = rss_mb(proc.pid)
            r = httpx.post(
                f"http://127.0.0.1:{port}{routes['search']}",
                json={"query": "espresso grind"},
                timeout=60,
            )
            print(
                f"RSS at end {end_rss:.0f} MB ({end_rss - start_rss:+.0f} MB); "
                f"a normal search afterwards: {r.status_code}"
            )
            print(json.dumps({"start_rss_mb": round(start_rss), "end_rss_mb": round(end_rss)}))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
