"""Run every ``benchmarks/bench_*.py`` script, one subprocess each, and print their output.

This is what ``make bench`` calls. Each script prints its own side-by-side figures (medians and
ratios); this runner only streams their output, names each one, and summarises which ran and
how long they took. The exit status is non-zero when any benchmark failed.

Usage::

    python benchmarks/run_all.py                 # every bench_*.py, in name order
    python benchmarks/run_all.py search ingest   # only scripts whose name contains a word
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def discover(words: list[str]) -> list[Path]:
    scripts = sorted(HERE.glob("bench_*.py"))
    if words:
        scripts = [s for s in scripts if any(w in s.stem for w in words)]
    return scripts


def run(script: Path) -> tuple[int, float]:
    rule = "=" * 78
    print(f"\n{rule}\n{script.relative_to(ROOT)}\n{rule}", flush=True)
    started = time.perf_counter()
    # Output is inherited, so progress appears live; cwd is the repository root so that
    # scripts can use paths relative to it, as `make bench` does.
    proc = subprocess.run([sys.executable, str(script)], cwd=ROOT, check=False)
    return proc.returncode, time.perf_counter() - started


def main(argv: list[str]) -> int:
    scripts = discover(argv)
    if not scripts:
        wanted = f" matching {argv}" if argv else ""
        print(f"no benchmarks/bench_*.py scripts{wanted} found")
        return 1 if argv else 0
    results = [(script, *run(script)) for script in scripts]
    print("\nsummary")
    width = max(len(s.name) for s, _, _ in results)
    for script, code, seconds in results:
        status = "ok" if code == 0 else f"FAILED (exit {code})"
        print(f"  {script.name:<{width}}  {seconds:7.1f} s  {status}")
    return 0 if all(code == 0 for _, code, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
