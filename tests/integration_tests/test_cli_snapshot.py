"""``serve --snapshot`` and ``exec --snapshot``: servers seeded from a snapshot file.

Each case runs the ``aisearch-local`` command in a subprocess, as a user would.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from aisearch_local.sample_corpus import SAMPLE_CORPUS_DIR
from aisearch_local.service import LocalService
from aisearch_local.snapshot import export_snapshot

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

BIN = Path(sys.executable).parent
AISEARCH_LOCAL = str(BIN / "aisearch-local")

SEARCH = """
import sys
from aisearch import AISearchClient
with AISearchClient() as client:
    chunks = client.search("brew", "espresso extraction time").chunks
    keys = sorted({c.item.key for c in chunks})
print(len(chunks), keys[0])
sys.exit(5)
"""


@pytest.fixture(scope="module")
def snap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    svc = LocalService(None)
    brew = svc.create_instance(
        "default", {"id": "brew"}, source_dir=str(SAMPLE_CORPUS_DIR / "brewing")
    )
    svc.sync_source(brew)
    path = tmp_path_factory.mktemp("snap") / "brew.zip"
    export_snapshot(svc.store, path)
    svc.close()
    return path


def _run(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run(
        [AISEARCH_LOCAL, *argv], capture_output=True, text=True, timeout=150, env=env, cwd=cwd
    )


def test_exec_seeds_the_server_from_a_snapshot(snap: Path) -> None:
    proc = _run("exec", "--snapshot", str(snap), "--", sys.executable, "-c", SEARCH)
    assert proc.returncode == 5, proc.stderr
    count, key = proc.stdout.split()
    assert int(count) > 0 and (SAMPLE_CORPUS_DIR / "brewing" / key).is_file()
    assert "imported default/brew:" in proc.stderr


def test_exec_with_a_snapshot_and_a_folder_adds_the_folder_to_its_instance(snap: Path) -> None:
    code = (
        "from aisearch import AISearchClient\n"
        "with AISearchClient() as c:\n"
        "    print(' '.join(i.key for i in c.list_items('brew')))\n"
    )
    proc = _run(
        "exec", "--snapshot", str(snap), "--source", str(SAMPLE_CORPUS_DIR / "beans"),
        "--instance", "brew", "--", sys.executable, "-c", code,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    keys = set(proc.stdout.split())
    for folder in ("brewing", "beans"):  # the snapshot's items, then the folder's
        names = {p.name for p in (SAMPLE_CORPUS_DIR / folder).iterdir() if p.suffix != ".json"}
        assert keys & names, (folder, keys)


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (["--snapshot", "missing.zip"], 2, "--snapshot missing.zip: no such file"),
        (["--snapshot", "bad.zip"], 1, "bad.zip: not a snapshot (not a zip archive"),
        (
            ["--snapshot", "{snap}", "--embedder", "hashing:64"],
            1,
            "was embedded with 'hashing-v1-384' (dimension 384) but this server's embedder is "
            "'hashing-v1-64' (dimension 64)",
        ),
    ],
)
def test_exec_refuses_a_bad_snapshot_before_running_the_command(
    snap: Path, tmp_path: Path, argv: list[str], status: int, message: str
) -> None:
    (tmp_path / "bad.zip").write_text("not a zip")
    argv = [a.format(snap=snap) for a in argv]
    proc = _run("exec", *argv, "--", sys.executable, "-c", "print('ran')", cwd=tmp_path)
    assert proc.returncode == status, proc.stderr
    assert "ran" not in proc.stdout and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("aisearch-local: error: ") and message in last


@contextmanager
def _serve(*argv: str, cwd: Path) -> Iterator[tuple[str, list[str]]]:
    """Run ``aisearch-local serve ARGV`` until its banner; yield its base URL and stderr lines."""
    proc = subprocess.Popen(
        [AISEARCH_LOCAL, "serve", "--port", "0", "--log-level", "warning", *argv],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "aisearch-local serving" in line:
                break
        assert lines and "aisearch-local serving" in lines[-1], lines
        base = lines[-1].split()[2]
        # answering: the signal handlers are in place, SIGTERM stops it cleanly
        assert httpx.get(base + "/_local/health", timeout=60).status_code == 200
        yield base, lines
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == 0, "".join(lines)


def test_serve_in_memory_seeded_from_a_snapshot(snap: Path, tmp_path: Path) -> None:
    with _serve("--in-memory", "--snapshot", str(snap), cwd=tmp_path) as (base, lines):
        assert any("imported default/brew:" in line for line in lines)
        r = httpx.post(
            base + "/accounts/a/ai-search/instances/brew/search",
            json={"query": "espresso extraction time"},
            timeout=60,
        )
        assert r.status_code == 200 and r.json()["result"]["chunks"], r.text
    assert list(tmp_path.iterdir()) == []


def test_serve_refuses_to_overwrite_an_instance_unless_replace(snap: Path, tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    assert _run("import", str(snap), "--data-dir", data).returncode == 0
    proc = _run("serve", "--port", "0", "--data-dir", data, "--snapshot", str(snap))
    assert proc.returncode == 1
    assert proc.stderr.strip().endswith(
        "instance default/brew already exists: pass --replace to overwrite it, or import it "
        "under another name (import --as NAMESPACE/ID)"
    )
    with _serve("--data-dir", data, "--snapshot", str(snap), "--replace", cwd=tmp_path):
        pass
    proc = _run("serve", "--port", "0", "--data-dir", data, "--replace")
    assert proc.returncode == 2
    assert "--replace needs --snapshot FILE" in proc.stderr


ROOT = Path(__file__).resolve().parents[2]

APP_TEST = """
from aisearch import AISearchClient

def test_the_snapshot_serves_the_docs():
    with AISearchClient() as client:
        chunks = client.search("my-docs", "how long is a double shot?").chunks
    assert chunks[0].item.key == "espresso.md"
"""


def test_the_readme_snapshot_commands_run_as_written(tmp_path: Path) -> None:
    """README "Testing your application": the export / exec --snapshot / import block."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```bash\n(.*?)```", text, flags=re.S) if "export" in b]
    block = next(b for b in blocks if b.startswith("aisearch-local ingest tests/docs"))
    docs = tmp_path / "tests" / "docs"
    docs.mkdir(parents=True)
    (docs / "espresso.md").write_text("A double shot of espresso takes 25 to 30 seconds.")
    (docs / "tea.md").write_text("Green tea steeps for two minutes at 80 degrees.")
    (tmp_path / "tests" / "test_app.py").write_text(APP_TEST)
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    for line in block.strip().splitlines():
        proc = subprocess.run(
            ["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=150,
        )  # fmt: skip
        assert proc.returncode == 0, f"{line}\n{proc.stdout}\n{proc.stderr}"
        if "pytest" in line:
            assert "1 passed" in proc.stdout, proc.stdout
    svc = LocalService(tmp_path / "elsewhere")
    assert [i.id for i in svc.store.list_instances(None)] == ["my-docs"]
    svc.close()
