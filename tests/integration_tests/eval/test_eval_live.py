"""aisearch-eval against Cloudflare: skipped unless credentials and an instance are given.

Set CLOUDFLARE_ACCOUNT_ID, CLOUDFLARE_API_TOKEN and AISEARCH_TEST_INSTANCE (an instance holding
the sample corpus, as the other live tests expect; AISEARCH_EVAL_GOLDEN names another golden
set for an instance holding other documents).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aisearch_eval import SAMPLE_GOLDEN_SET

LIVE_ENV = ("CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_API_TOKEN", "AISEARCH_TEST_INSTANCE")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.live,
    pytest.mark.skipif(
        not all(os.environ.get(name) for name in LIVE_ENV),
        reason=f"live test: set {', '.join(LIVE_ENV)}",
    ),
]


def test_command_runs_against_cloudflare(tmp_path: Path) -> None:
    golden = os.environ.get("AISEARCH_EVAL_GOLDEN", str(SAMPLE_GOLDEN_SET))
    out = tmp_path / "scores.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "aisearch_eval.cli",
            golden,
            "--instance",
            os.environ["AISEARCH_TEST_INSTANCE"],
            "--vary",
            "retrieval_type=vector,hybrid",
            "--concurrency",
            "4",
            "--limit",
            "6",
            "--no-progress",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    summary = json.loads(out.read_text())
    assert [c["failed"] for c in summary["configs"]] == [[], [], []]
    assert all(0 <= c["metrics"]["ndcg@10"] <= 1 for c in summary["configs"])
    assert os.environ["CLOUDFLARE_API_TOKEN"] not in proc.stdout + proc.stderr
