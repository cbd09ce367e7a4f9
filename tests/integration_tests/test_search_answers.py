"""``benchmarks/search_answers.py`` runs end to end: the same code gives the same answers.

The script is how a change meant to make searches cheaper shows that no answer changed
(docs/request-path.md, "A hybrid search's CPU"); this runs it on a small data folder.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "search_answers.py"


def test_search_answers_saves_then_finds_every_answer_identical(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench_scale
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    rng = np.random.default_rng(7)
    vocab = bench_scale.make_vocab(rng)
    data = tmp_path / "data"
    bench_scale.build(data, bench_scale.make_texts(2_000, vocab, rng))
    queries = [" ".join(rng.choice(vocab[200:3000], 3)) for _ in range(60)]
    (data / "queries.json").write_text(json.dumps(queries))
    saved = tmp_path / "answers.jsonl"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(SCRIPT), str(data), *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    first = run("--save", str(saved))
    assert first.returncode == 0, first.stderr[-2000:]
    assert first.stdout.startswith("2320 searches")
    assert len(saved.read_text().splitlines()) == 2320
    again = run("--compare", str(saved))
    assert again.returncode == 0, again.stdout + again.stderr[-2000:]
    assert "0 of 2320 answers differ" in again.stdout
    # one changed answer is found and named
    lines = saved.read_text().splitlines()
    changed = json.loads(lines[5])
    changed["answer"] = "[]"
    lines[5] = json.dumps(changed)
    saved.write_text("\n".join(lines) + "\n")
    differ = run("--compare", str(saved))
    assert differ.returncode == 1
    assert "1 of 2320 answers differ" in differ.stdout
    assert f"differs: {changed['search']}" in differ.stdout
