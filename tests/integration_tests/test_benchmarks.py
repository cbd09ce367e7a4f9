"""The adapter benchmark scripts still run end to end (a smoke run with tiny rounds).

Only that they run and print every comparison is asserted here: speed is judged by running
them in full (`make bench`), never by timed assertions in tests.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RATIO = re.compile(r"ratio \d+\.\d{3}")


@pytest.mark.parametrize(
    ("script", "first"),
    [("bench_langchain.py", "invoke median"), ("bench_llamaindex.py", "retrieve median")],
)
def test_adapter_benchmark_runs_and_prints_every_ratio(script: str, first: str) -> None:
    tiny = ["--rounds", "3", "--repeats", "1", "--multi-rounds", "1"]
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *tiny],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = proc.stdout.split("summary", 1)[1].strip().splitlines()[1:]
    names = [line.split("  ours")[0].strip() for line in summary]
    assert names[0].startswith(first)
    assert "floor: bare BaseRetriever, raw POST" in names
    assert sum(1 for n in names if n.startswith("multi x8")) == 2
    assert all(RATIO.search(line) for line in summary if "ms   ratio" in line)
    assert sum(1 for line in summary if "target <=" in line) == 4


def test_the_scale_benchmark_runs_and_prints_every_figure() -> None:
    tiny = ["--sizes", "1000", "--rounds", "3", "--upload-rounds", "2", "--seconds", "0.5"]
    tiny += ["--ingest-docs", "20", "--workers", "2", "--repeats", "1"]
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_scale.py"), *tiny],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    for label in (
        "first search after one upload (s)",
        "restart to first search (s)",
        "one upload's latency (ms)",
        "server RSS (MB)",
        "dense (vector) search, served (ms)",
        "10 % filtered hybrid (ms)",
        "ingest over HTTP (chunks/s)",
        "16-client hybrid (req/s)",
        "bare numpy: matrix @ q + top 50 (ms)",
        "bare FTS5: the same `or` MATCH (ms)",
        "canned Starlette endpoint, 16 clients (req/s)",
        "hybrid search in process, CPU (ms)",
    ):
        line = next(x for x in out.splitlines() if x.startswith(f"| {label} |"))
        assert re.search(r"\| [\d,.]+ \|$", line), line
    assert "of the canned endpoint" in out
    assert re.search(
        r"1,000 chunks: ceiling of the 16-client hybrid throughput with this ranking "
        r"= [\d,]+ req/s = \d+% of the canned endpoint's [\d,]+ req/s",
        out,
    ), out
    line = next(x for x in out.splitlines() if "serve --workers 2:" in x)
    assert re.search(r"RSS of the workers [\d,]+ \+ [\d,]+ MB, supervisor [\d,]+ MB$", line), line
