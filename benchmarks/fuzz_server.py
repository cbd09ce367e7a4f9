"""Long fuzz run of aisearch_local over real HTTP: count the requests and the 5xx answers.

The same request strategy as the in-suite test (``tests/integration_tests/server/_fuzz.py``:
every route of the app's route table, hostile bodies, path ids and query parameters), run for
many more requests against a fresh ``LocalServer`` on 127.0.0.1, then every read route over
every stored resource. Prints the number of requests, the status histogram, the 5xx count
(target 0), the errors that were not the Cloudflare envelope, and the read check. Exit status 1
when any request answered 5xx, an error was not an envelope, or a read route failed.

This is what ``make fuzz`` runs. Usage::

    .venv/bin/python benchmarks/fuzz_server.py                      # 5000 requests, seed 0
    .venv/bin/python benchmarks/fuzz_server.py --requests 20000 --seed 7
"""

from __future__ import annotations

import argparse
import collections
import http.client
import logging
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, given, seed, settings  # noqa: E402

from aisearch_local.testing import LocalServer  # noqa: E402
from tests.integration_tests.server._fuzz import (  # noqa: E402
    FuzzRequest,
    check_response,
    fuzz_requests,
    read_everything,
    send,
    setup_target,
)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    # the server logs every refused sidecar and every unexpected error; keep the report readable
    logging.getLogger("aisearch_local").setLevel(logging.CRITICAL)

    statuses: collections.Counter[int] = collections.Counter()
    by_route: collections.Counter[str] = collections.Counter()
    problems: list[str] = []
    dropped = 0
    with tempfile.TemporaryDirectory(prefix="aisearch-fuzz-") as tmp:
        source = Path(tmp) / "source"
        source.mkdir()
        with LocalServer(data_dir=Path(tmp) / "data", token="fuzz-token") as server:
            target = setup_target(server, source)
            state: dict[str, http.client.HTTPConnection] = {}

            def connection() -> http.client.HTTPConnection:
                if "conn" not in state:
                    state["conn"] = http.client.HTTPConnection(
                        server.host, server.port, timeout=120
                    )
                return state["conn"]

            @seed(args.seed)
            @settings(
                max_examples=args.requests,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(req=fuzz_requests(target))
            def run(req: FuzzRequest) -> None:
                nonlocal dropped
                try:
                    status, headers, body = send(connection(), req, server.headers)
                except (ConnectionError, http.client.HTTPException) as exc:
                    dropped += 1
                    problems.append(f"{req.describe()}\n   -> connection dropped: {exc!r}")
                    state.pop("conn").close()
                    return
                statuses[status] += 1
                by_route[f"{req.method} {status // 100}xx"] += 1
                problem = check_response(status, headers, body)
                if problem is not None:
                    problems.append(f"{req.describe()}\n   -> {problem}")

            started = time.perf_counter()
            run()
            seconds = time.perf_counter() - started
            if "conn" in state:
                state["conn"].close()
            calls, failures = read_everything(server)

    total = sum(statuses.values()) + dropped
    five = sum(n for s, n in statuses.items() if s >= 500)
    rate = total / seconds
    print(f"requests sent          {total} in {seconds:.1f} s ({rate:.0f}/s), seed {args.seed}")
    print("status histogram       " + ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items())))
    print("by method and class    " + ", ".join(f"{k}: {n}" for k, n in sorted(by_route.items())))
    print(f"5xx answers            {five}")
    print(f"dropped connections    {dropped}")
    print(
        f"non-envelope errors    {sum(1 for p in problems if 'envelope' in p or 'not JSON' in p)}"
    )
    print(f"read routes afterwards {calls} calls, {len(failures)} not 2xx")
    for line in (problems + failures)[:20]:
        print("  " + line)
    return 1 if problems or failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
