"""``aisearch-local serve --public``: the banner prints the public endpoint URLs, which answer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx


def test_serve_public_prints_the_endpoint_url_which_answers_without_a_token(tmp_path: Path):
    argv = ["serve", "--port", "0", "--data-dir", str(tmp_path), "--log-level", "warning"]
    argv += ["--sample-corpus", "--public", "--token", "admin-token-0123456789"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "aisearch_local.cli", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # ends when the process does
            lines.append(line)
            if "/_public/" in line:
                break
        header = "  public endpoints (no token; append /search, /chat/completions or /mcp):\n"
        assert header in lines
        what, url = lines[-1].split()
        assert what == "default/coffee:"
        r = httpx.post(url + "/search", json={"query": "espresso grind size"}, timeout=60)
        assert r.status_code == 200, r.text
        assert r.json()["result"]["chunks"]
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == 0, "".join(lines)


def test_serve_public_without_an_instance_is_a_one_line_error(tmp_path: Path):
    argv = ["serve", "--public", "--port", "0", "--data-dir", str(tmp_path / "d")]
    proc = subprocess.run(
        [sys.executable, "-m", "aisearch_local.cli", *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr == (
        "aisearch-local: error: --public needs --sample-corpus or --source (the instance it "
        "opens)\n"
    )
    assert not (tmp_path / "d").exists()
