"""``aisearch-local exec``: a server for one command, stopped whatever way the command ends.

Each case runs the installed ``aisearch-local`` script in a subprocess, as a user would.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from aisearch_local.sample_corpus import SAMPLE_CORPUS_DIR

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

BIN = Path(sys.executable).parent
AISEARCH_LOCAL = str(BIN / "aisearch-local")
SERVING = re.compile(r"aisearch-local serving (http://127\.0\.0\.1:(\d+)/client/v4) for: ")

SEARCH = """
import os, sys
from aisearch import AISearchClient
with AISearchClient() as client:
    chunks = client.search("docs", "espresso extraction").chunks
print(len(chunks), os.environ["AISEARCH_BASE_URL"], "CF_API_TOKEN" in os.environ)
sys.exit(3)
"""


def _env() -> dict[str, str]:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    env["CF_API_TOKEN"] = "a-real-token-that-must-not-reach-the-command"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _exec(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AISEARCH_LOCAL, "exec", *argv],
        capture_output=True,
        text=True,
        timeout=100,
        env=_env(),
        cwd=cwd,
    )


def _port_closed(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_exec_removes_every_variable_the_client_reads() -> None:
    from aisearch._config import ENV_NAMES
    from aisearch_local.cli import CLIENT_ENV_NAMES

    assert set(CLIENT_ENV_NAMES) == set(ENV_NAMES)


def test_runs_the_command_seeded_and_passes_on_its_status() -> None:
    proc = _exec(
        "--source", str(SAMPLE_CORPUS_DIR / "brewing"), "--instance", "docs", "--",
        sys.executable, "-c", SEARCH,
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    match = SERVING.search(proc.stderr)
    assert match, proc.stderr
    count, url, leaked = proc.stdout.split()
    assert int(count) > 0 and url == match[1] and leaked == "False"
    assert _port_closed(int(match[2]))


def test_exec_pytest_works(tmp_path: Path) -> None:
    (tmp_path / "test_app.py").write_text(
        "from aisearch import AISearchClient\n\n"
        "def test_search():\n"
        "    with AISearchClient() as client:\n"
        "        assert client.search('docs', 'grinder burrs').chunks\n",
        encoding="utf-8",
    )
    proc = _exec(
        "--source", str(SAMPLE_CORPUS_DIR / "equipment"), "--instance", "docs", "--",
        "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
        "-p", "no:asyncio", "test_app.py",
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout


def test_an_instance_without_source_is_created_empty() -> None:
    code = "from aisearch import AISearchClient\nprint(AISearchClient().get_instance('empty').id)"
    proc = _exec("--instance", "empty", "--", sys.executable, "-c", code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "empty"


CREATE = """
import os, sys, httpx
url = os.environ["AISEARCH_BASE_URL"] + "/accounts/a/ai-search/instances"
auth = {"Authorization": "Bearer " + os.environ["CLOUDFLARE_API_TOKEN"]}
for name, folder in (("outside", sys.argv[1]), ("inside", sys.argv[2])):
    print(httpx.post(url, headers=auth, json={"id": name, "source": folder}).status_code)
"""


def test_the_command_may_index_only_the_source_folder(tmp_path: Path) -> None:
    source = SAMPLE_CORPUS_DIR / "beans"
    proc = _exec(
        "--source", str(source), "--instance", "docs", "--",
        sys.executable, "-c", CREATE, str(tmp_path), str(source),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["400", "201"]


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        ([], 2, "exec needs a command after --, e.g. aisearch-local exec -- pytest"),
        (["--"], 2, "exec needs a command after --, e.g. aisearch-local exec -- pytest"),
        (["--source", "no-such-folder", "--instance", "d", "--", "true"], 2,
         "--source {cwd}/no-such-folder: not a folder"),
        (["--source", ".", "--", "true"], 2, "--source needs --instance NAME"),
        (["--instance", "Bad_Name", "--", "true"], 1, "id: must be lowercase letters"),
        (["--", "no-such-command-xyz"], 127, "command not found: no-such-command-xyz"),
        (["--", "."], 126, "cannot run .: Permission denied"),
    ],
)  # fmt: skip
def test_user_errors_are_one_line(
    tmp_path: Path, argv: list[str], status: int, message: str
) -> None:
    proc = _exec(*argv, cwd=tmp_path)
    assert proc.returncode == status, proc.stderr
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("aisearch-local: error: ")
    assert message.format(cwd=tmp_path.resolve()) in last


def test_help_names_the_snapshot_option() -> None:
    proc = subprocess.run(
        [AISEARCH_LOCAL, "exec", "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0
    assert "--snapshot FILE" in proc.stdout and "not supported" not in proc.stdout


def test_a_killed_command_stops_the_server() -> None:
    code = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    proc = _exec("--", sys.executable, "-c", code)
    assert proc.returncode == 128 + signal.SIGKILL
    match = SERVING.search(proc.stderr)
    assert match and _port_closed(int(match[2]))


# dies of SIGINT as a C program does (Python's KeyboardInterrupt would print a traceback)
WAIT = (
    "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_DFL)\n"
    "print('ready', flush=True)\nwhile True: time.sleep(1)\n"
)


def _start_waiting() -> tuple[subprocess.Popen[str], int]:
    """exec a command that waits forever, in its own process group; return it and the port."""
    proc = subprocess.Popen(
        [AISEARCH_LOCAL, "exec", "--", sys.executable, "-c", WAIT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        start_new_session=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    match = SERVING.search(proc.stderr.readline())
    assert match
    assert proc.stdout.readline() == "ready\n"
    return proc, int(match[2])


@pytest.mark.parametrize(
    ("send", "status"),
    [
        # Ctrl-C: the terminal signals the whole foreground process group
        (lambda p: os.killpg(p.pid, signal.SIGINT), 128 + signal.SIGINT),
        # `kill`, a CI runner's timeout: exec forwards it to the command
        (lambda p: p.send_signal(signal.SIGTERM), 128 + signal.SIGTERM),
    ],
    ids=["ctrl-c", "sigterm"],
)
def test_stopped_by_a_signal_without_traceback(send, status: int) -> None:
    proc, port = _start_waiting()
    try:
        send(proc)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == status, err
    assert "Traceback" not in err
    assert _port_closed(port)


def test_the_banner_shows_the_command_as_typed() -> None:
    """The command is printed as text: brackets in it are not read as console markup."""
    code = "print([n for n in [1]]) or print('[bold]x[/bold]')"
    proc = _exec("--", sys.executable, "-c", code)
    assert proc.returncode == 0, proc.stderr
    assert f"for: {sys.executable} -c {code}\n" in proc.stderr, proc.stderr
