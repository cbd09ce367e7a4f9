"""``benchmarks/tune_defaults.py`` runs end to end on a tiny BEIR-format set written here, and
skips with a clear message when the data is absent (the SciFact figures live in
docs/local-server.md, never in a test)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "tune_defaults.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_it_skips_with_a_clear_message_without_the_data(tmp_path: Path) -> None:
    proc = _run("--data", str(tmp_path / "absent"))
    assert proc.returncode == 0, proc.stderr
    assert (
        proc.stdout.strip()
        == f"SciFact not found at {tmp_path / 'absent'}: skipped (pass --data DIR)"
    )


def test_it_measures_a_tiny_beir_set(tmp_path: Path) -> None:
    corpus = [
        {"_id": "d1", "title": "Moka pots", "text": "A moka pot sputters when the heat is high."},
        {"_id": "d2", "title": "Cold brew", "text": "Cold brew steeps for twelve hours."},
        {"_id": "d3", "title": "Grinders", "text": "Burr grinders give an even grind."},
    ]
    with gzip.open(tmp_path / "corpus.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(doc) + "\n" for doc in corpus)
    queries = [
        {"_id": "q1", "text": "why does my moka pot sputter"},
        {"_id": "q2", "text": "an even grind for a moka pot"},  # no document holds every word
        {"_id": "q3", "text": "not judged"},
    ]
    (tmp_path / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (tmp_path / "qrels.json").write_text(json.dumps({"q1": ["d1"], "q2": ["d3"]}))
    proc = _run("--data", str(tmp_path), "--config", "default", "--config", "keyword-and")
    assert proc.returncode == 0, proc.stderr
    rows = [line.split("|") for line in proc.stdout.splitlines() if line.startswith("| hashing")]
    assert [r[2].strip() for r in rows] == ["default", "keyword-and"]
    default, keyword_and = rows
    assert 0.5 < float(default[3]) <= 1.0  # nDCG@10 over q1 and q2
    assert int(default[5]) == 0  # no empty answer
    assert int(keyword_and[5]) == 1  # q2: AND matches nothing


def _tiny_set(path: Path, qrels: dict[str, list[str]]) -> Path:
    docs = [{"_id": "d1", "title": "Moka pots", "text": "A moka pot sputters on high heat."}]
    with gzip.open(path / "corpus.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(doc) + "\n" for doc in docs)
    queries = [{"_id": "q1", "text": "moka pot sputters"}, {"_id": "q2", "text": "moka heat"}]
    (path / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (path / "qrels.json").write_text(json.dumps(qrels))
    return path


def test_a_claim_judged_with_no_relevant_document_is_left_out(tmp_path: Path) -> None:
    # it divided by zero (recall over an empty set of relevant documents)
    proc = _run("--data", str(_tiny_set(tmp_path, {"q1": ["d1"], "q2": []})), "--config", "default")
    assert proc.returncode == 0, proc.stderr
    assert "1 abstracts, 1 claims" in proc.stdout
    row = next(line.split("|") for line in proc.stdout.splitlines() if line.startswith("| hash"))
    assert float(row[3]) == 1.0  # q1 finds d1 first


def test_no_judged_claim_is_a_clear_error(tmp_path: Path) -> None:
    proc = _run("--data", str(_tiny_set(tmp_path, {"q1": [], "q2": []})))
    assert proc.returncode == 1
    assert proc.stderr.strip().endswith("no claim has a relevant document in qrels.json")


def test_the_sample_mode_prints_one_row_per_configuration() -> None:
    proc = _run("--sample")
    assert proc.returncode == 0, proc.stderr
    rows = [line.split("|") for line in proc.stdout.splitlines() if line.startswith("| hashing")]
    assert [r[2].strip() for r in rows] == ["default", "keyword-or", "vector"]
    assert all(r[4].strip().endswith("of 20") for r in rows)
