"""benchmarks/bench_quality.py runs end to end on a tiny BEIR folder, and skips without data.

Only that it runs and prints its table is asserted: the figures are read by people (README).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_quality.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_skips_with_a_clear_message_without_the_data(tmp_path: Path) -> None:
    proc = _run("--data", str(tmp_path / "absent"))
    assert proc.returncode == 0, proc.stderr
    assert f"skipped: no BEIR SciFact at {tmp_path / 'absent'} (pass --data PATH)" in proc.stdout


def test_runs_on_a_tiny_beir_folder(tmp_path: Path) -> None:
    docs = {"a": "cold brew steeps for hours", "b": "espresso uses pressure", "c": "tea"}
    (tmp_path / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": k, "title": "", "text": v}) + "\n" for k, v in docs.items())
    )
    (tmp_path / "queries.jsonl").write_text('{"_id": "1", "text": "cold brew"}\n')
    (tmp_path / "qrels.json").write_text('{"1": ["a"]}')
    out = tmp_path / "table.md"
    proc = _run("--data", str(tmp_path), "--embedders", "hashing", "--markdown", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "hashing: uploaded 3 documents in" in proc.stdout
    table = out.read_text()
    assert "| hashing | default |" in table
    assert "| hashing | hybrid or, max |" in table
    if "bm25s is not installed" not in proc.stdout:
        assert "| - | bm25s (reference) |" in table
