"""Write (or compare) the local server's answers to a fixed grid of searches, byte for byte.

A change meant to make searches cheaper must not change one answer. Run this on the same data
folder before and after the change::

    python benchmarks/search_answers.py DATA_DIR --save before.jsonl
    python benchmarks/search_answers.py DATA_DIR --compare before.jsonl

``DATA_DIR`` holds a data folder (``bench_scale.py``'s: instance ``scale`` with a
``queries.json``); the script works on a copy of it in a temporary folder, so the folder itself is
never written. The grid: 60 queries x hybrid, keyword and vector x ``and``/``or`` x no filter, a
filter keeping a tenth of the items and one keeping most of them (1,080 searches), each computed
with hybrid's keyword half on the same thread and on another one, plus fusion ``max``,
``boost_by``, reranking and context expansion on the first 20 queries. Each answer is the JSON
the server renders for the chunks.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_ROOT))

FILTERS: list[Any] = [None, {"group": "g3"}, {"rating": {"$gte": 2}}]
EXTRAS: list[dict[str, Any]] = [
    {"fusion_method": "max"},
    {"boost_by": [{"field": "rating", "direction": "desc"}]},
    {"reranking": {"enabled": True}},
    {"context_expansion": 1},
]


def bodies(queries: list[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every search of the grid: (label, body)."""
    for q in queries[:60]:
        for mode in ("hybrid", "keyword", "vector"):
            for match in ("and", "or"):
                for flt in FILTERS:
                    retrieval: dict[str, Any] = {
                        "retrieval_type": mode,
                        "match_threshold": 0,
                        "keyword_match_mode": match,
                    }
                    if flt is not None:
                        retrieval["filters"] = flt
                    label = f"{q}|{mode}|{match}|{json.dumps(flt)}"
                    yield label, {"query": q, "ai_search_options": {"retrieval": retrieval}}
    for q in queries[:20]:
        for extra in EXTRAS:
            retrieval = {"retrieval_type": "hybrid", "match_threshold": 0}
            opts: dict[str, Any] = {"retrieval": retrieval}
            if "reranking" in extra:
                opts["reranking"] = extra["reranking"]
            elif "context_expansion" in extra:
                retrieval["context_expansion"] = extra["context_expansion"]
            else:
                retrieval.update(extra)
            yield f"{q}|{json.dumps(extra)}", {"query": q, "ai_search_options": opts}


@contextlib.contextmanager
def _searches_running(search_module: Any, others: int) -> Iterator[None]:
    """Make every search see ``others`` other searches running (0: the keyword half hops)."""

    class Fixed:
        @contextlib.contextmanager
        def running(self) -> Iterator[int]:
            yield others

    saved = search_module._SEARCHES
    search_module._SEARCHES = Fixed()
    try:
        yield
    finally:
        search_module._SEARCHES = saved


def answers(data_dir: Path) -> list[tuple[str, str]]:
    """(label, answer JSON) for every search of the grid, both thread layouts."""
    import aisearch_local.search as search_module
    from aisearch_local.models import SearchRequest
    from aisearch_local.query import QueryService
    from aisearch_local.service import LocalService

    queries = json.loads((data_dir / "queries.json").read_text())
    svc = LocalService(data_dir, embedder="hashing", generator="extractive")
    try:
        query = QueryService(svc)
        inst = svc.store.get_instance("default", "scale")
        assert inst is not None, "no instance 'scale' in the data folder"
        grid = list(bodies(queries))
        reqs = [(label, SearchRequest.parse(body, strict=False)) for label, body in grid]
        query._search(inst, reqs[0][1], None)
        while svc.store.indexing():  # the column copy: the pruned scan, as a server uses it
            time.sleep(0.2)
        out: list[tuple[str, str]] = []
        for others in (1, 0):
            with _searches_running(search_module, others):
                for label, req in reqs:
                    chunks = query._search(inst, req, None).chunks
                    out.append((f"{label}|others={others}", json.dumps(chunks)))
        return out
    finally:
        svc.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--save", type=Path, help="write the answers to this file")
    group.add_argument("--compare", type=Path, help="compare the answers with this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="search-answers-") as tmp:
        work = Path(tmp) / "data"
        shutil.copytree(args.data_dir, work)
        got = answers(work)
    lines = [json.dumps({"search": label, "answer": ans}) + "\n" for label, ans in got]
    digest = hashlib.sha256("".join(lines).encode()).hexdigest()[:16]
    empty = sum(1 for _, ans in got if ans == "[]")
    print(f"{len(got)} searches ({empty} with no result), sha256 {digest}")
    if args.save:
        args.save.write_text("".join(lines))
        return 0
    want = args.compare.read_text().splitlines(keepends=True)
    differ = [i for i, (a, b) in enumerate(zip(lines, want, strict=False)) if a != b]
    if len(want) != len(lines):
        print(f"{len(want)} searches in {args.compare}, {len(lines)} now")
        return 1
    for i in differ[:5]:
        print("differs:", json.loads(lines[i])["search"])
    print(f"{len(differ)} of {len(lines)} answers differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
