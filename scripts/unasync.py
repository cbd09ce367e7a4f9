"""Generate ``aisearch/_sync/`` from the hand-written ``aisearch/_async/`` (httpcore's way).

Every line of every ``aisearch/_async/*.py`` goes through a table of regex substitutions
(``AsyncAISearchClient`` -> ``AISearchClient``, ``async def`` -> ``def``, ``await`` -> nothing...)
and is written to ``aisearch/_sync/`` under the same name, after a first line saying the file
is generated. Lines between ``# unasync: async only`` and ``# unasync: end`` are left out of
the sync file (the async client's ``close()`` alias of ``aclose()``).

Where sync and async really differ (deadlines, sleeping, concurrency), the async code calls a
hand-written helper of ``aisearch/_deadlines.py`` whose sync twin has the substituted name.

Usage::

    python scripts/unasync.py          # write aisearch/_sync/
    python scripts/unasync.py --check  # exit 1 when a generated file differs (make lint)
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "aisearch" / "_async"
TARGET = ROOT / "aisearch" / "_sync"

SUBS = [
    (r"aread_error_body", "read_error_body"),
    # the async names of the hand-written helpers in aisearch/_deadlines.py
    (r"new_async_client", "new_client"),
    (r"asleep", "sleep"),
    (r"agather", "gather"),
    (r"run_async", "run_sync"),
    # types, classes and the two client classes of httpx (AsyncX and _AsyncX lose "Async")
    (r"AsyncGenerator\[([^\[\]]+), None\]", r"Generator[\1, None, None]"),
    (r"(?<![A-Za-z0-9])(_?)Async(?=[A-Z])", r"\1"),
    (r"Awaitable\[([^\[\]]+)\]", r"\1"),
    (r"aisearch\._async\.", "aisearch._sync."),
    # the language
    (r"async def", "def"),
    (r"async with", "with"),
    (r"async for", "for"),
    (r"await ", ""),
    # dunder and method names of the async protocols (httpx, generators, context managers)
    (r"__aenter__", "__enter__"),
    (r"__aexit__", "__exit__"),
    (r"__aiter__", "__iter__"),
    (r"__anext__", "__next__"),
    (r"aclose", "close"),
    (r"aread", "read"),
    (r"aiter_bytes", "iter_bytes"),
    # prose
    (r"Asynchronous", "Synchronous"),
    (r"\(async\)", "(sync)"),
]


def _compile(pattern: str) -> re.Pattern[str]:
    """``pattern``, matched only as whole words where it starts or ends with a word character."""
    start = r"(?<![A-Za-z0-9_])" if re.match(r"\w", pattern) else ""
    end = r"(?![A-Za-z0-9_])" if re.search(r"\w$", pattern) else ""
    return re.compile(start + pattern + end)


COMPILED = [(_compile(pattern), repl) for pattern, repl in SUBS]

SKIP_START = "# unasync: async only"
SKIP_END = "# unasync: end"


def header(name: str) -> str:
    """The first line of a generated file."""
    return f"# GENERATED from aisearch/_async/{name} by scripts/unasync.py: do not edit by hand.\n"


def unasync_line(line: str, used: set[int]) -> str:
    """``line`` with every substitution applied; the rules that changed it go to ``used``."""
    for index, (regex, repl) in enumerate(COMPILED):
        new = regex.sub(repl, line)
        if new != line:
            used.add(index)
            line = new
    return line


def ruff(args: list[str], text: str, path: Path) -> str:
    """``text`` put through ``ruff`` (the generated file obeys the same lint and format)."""
    command = [sys.executable, "-m", "ruff", *args, "--stdin-filename", str(path), "-"]
    done = subprocess.run(command, input=text, capture_output=True, text=True, check=True)
    return done.stdout


def unasync_text(name: str, text: str, used: set[int]) -> str:
    """The sync twin of the async module ``name`` whose source is ``text``."""
    out = [header(name)]
    skipping = False
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if stripped == SKIP_START:
            skipping = True
        elif stripped == SKIP_END:
            skipping = False
        elif not skipping:
            out.append(unasync_line(line, used))
    return "".join(out)


def main(argv: list[str]) -> int:
    """Write (or with ``--check`` compare) every generated file; 1 on drift or an unused rule."""
    check = "--check" in argv
    used: set[int] = set()
    drift = []
    TARGET.mkdir(exist_ok=True)
    expected_names = set()
    for source in sorted(SOURCE.glob("*.py")):
        expected_names.add(source.name)
        target = TARGET / source.name
        text = unasync_text(source.name, source.read_text(encoding="utf-8"), used)
        # imports re-sorted and unused ones dropped (``Awaitable``), lines re-wrapped
        text = ruff(["check", "--fix", "--exit-zero", "-q", "--select", "I,F401"], text, target)
        text = ruff(["format", "--quiet"], text, target)
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current == text:
            continue
        drift.append(target.relative_to(ROOT).as_posix())
        if not check:
            target.write_text(text, encoding="utf-8")
    for stale in sorted(TARGET.glob("*.py")):
        if stale.name not in expected_names:
            drift.append(f"{stale.relative_to(ROOT).as_posix()} (no source)")
            if not check:
                stale.unlink()
    unused = [SUBS[i][0] for i in range(len(SUBS)) if i not in used]
    if unused:
        print(f"unasync: rules no line uses: {unused}", file=sys.stderr)
        return 1
    if drift and check:
        print("unasync: out of date (run python scripts/unasync.py): " + ", ".join(drift))
        return 1
    for path in drift:
        print(f"unasync: wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
