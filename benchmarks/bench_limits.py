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

First, per body *shape* (a fresh server each run): the review's 15 MiB search body of empty
arrays (``{"query": "x", "zz": [[], [], ...]}``) and a legitimate 10 MiB one-string query; prints
the status, the time to it, the server's peak RSS (``VmHWM``) before and after, and how long a
health probe sent meanwhile waited. ``--shapes-only`` stops there.

Usage::

    .venv/bin/python benchmarks/bench_limits.py
    .venv/bin/python benchmarks/bench_limits.py --repeats 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
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


def hwm_mb(pid: int) -> float:
    """Peak resident set size of a process in MB (``VmHWM``, Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextlib.contextmanager
def serve() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """Run ``aisearch-local serve --sample-corpus`` in a subprocess; yield (process, port)."""
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
                        raise RuntimeError("the server did not start") from None
                    time.sleep(0.2)
            yield proc, port
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def shape_bodies() -> dict[str, bytes]:
    """JSON bodies under the 16 MiB search limit whose cost is not their byte count."""
    containers = b'{"query": "x", "zz": [' + b",".join([b"[]"] * (15 * 1024 * 1024 // 3)) + b"]}"
    return {
        "15MiB [] (review)": containers,
        "10MiB one string": json_body(10 * 1024 * 1024, "search"),
    }


def measure_shapes(repeats: int) -> None:
    """Per body shape, on a fresh server each run: status, time, peak RSS, a health probe."""
    path = "/client/v4/accounts/a/ai-search/instances/coffee/search"
    print(
        f"{'shape':<20} {'status':>6} {'median s':>9} {'HWM before':>11} {'HWM after':>10} "
        f"{'health s':>9}"
    )
    for name, body in shape_bodies().items():
        rows = []
        for _ in range(repeats):
            with serve() as (proc, port):
                before = hwm_mb(proc.pid)
                probe: list[float] = []

                def health(port: int = port, probe: list[float] = probe) -> None:
                    time.sleep(0.3)  # while the big body is parsed
                    t0 = time.perf_counter()
                    httpx.get(f"http://127.0.0.1:{port}/client/v4/_local/health", timeout=120)
                    probe.append(time.perf_counter() - t0)

                thread = threading.Thread(target=health)
                thread.start()
                elapsed, status, _sent = send(port, path, body, False)
                thread.join()
                rows.append((elapsed, status, before, hwm_mb(proc.pid), probe[0]))
        print(
            f"{name:<20} {'/'.join(sorted({str(r[1]) for r in rows})):>6} "
            f"{statistics.median(r[0] for r in rows):>9.3f} "
            f"{statistics.median(r[2] for r in rows):>9.0f}MB "
            f"{statistics.median(r[3] for r in rows):>8.0f}MB "
            f"{statistics.median(r[4] for r in rows):>9.3f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--shapes-only", action="store_true", help="only the body-shape cases (fresh servers)"
    )
    args = parser.parse_args()
    measure_shapes(max(1, min(args.repeats, 3)))
    if args.shapes_only:
        return 0
    with serve() as (proc, port):
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
