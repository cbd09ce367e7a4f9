"""What a user sees when an extra is missing or a command line is wrong: one line, no traceback.

Each case runs in a subprocess. A missing package is simulated without uninstalling it: a
``sys.meta_path`` finder placed first refuses the module as an absent one would (a
``ModuleNotFoundError`` naming it), so the process sees the install a user without the extra has.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.timeout(120)

BLOCKER = """
import sys


class _Absent:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, _Absent())
"""


def _run(code: str, *, blocked: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter where the ``blocked`` packages are not installed."""
    return subprocess.run(
        [sys.executable, "-c", BLOCKER.format(blocked=set(blocked)) + code],
        capture_output=True,
        text=True,
        timeout=100,
    )


def _cli(*argv: str, blocked: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """Run ``aisearch-local ARGV`` (its ``main``) with the ``blocked`` packages absent."""
    code = f"from aisearch_local.cli import main\nsys.exit(main({list(argv)!r}))\n"
    return _run(code, blocked=blocked)


# -- a missing extra names its install command ---------------------------------------------

LOCAL = 'aisearch-local needs the [local] extra: pip install "aisearch-py[local]"\n'


@pytest.mark.parametrize("module", ["starlette", "uvicorn", "numpy", "rich"])
def test_serve_without_the_local_extra_names_the_install_command(tmp_path: Path, module: str):
    data = tmp_path / "data"
    proc = _cli("serve", "--port", "0", "--data-dir", str(data), blocked=(module,))
    assert (proc.returncode, proc.stderr, proc.stdout) == (1, LOCAL, "")
    assert not data.exists()  # nothing was created before the check


@pytest.mark.parametrize("command", ["ingest", "inspect"])
def test_other_commands_without_the_local_extra_name_it_too(tmp_path: Path, command: str):
    (tmp_path / "src").mkdir()
    args = [str(tmp_path / "src"), "--instance", "docs"] if command == "ingest" else []
    proc = _cli(command, *args, "--data-dir", str(tmp_path), blocked=("numpy",))
    assert (proc.returncode, proc.stderr) == (1, LOCAL)


def test_a_module_blocked_through_sys_modules_counts_as_missing(tmp_path: Path):
    code = (
        "sys.modules['starlette'] = None\n"
        "from aisearch_local.cli import main\n"
        f"sys.exit(main(['serve', '--port', '0', '--data-dir', {str(tmp_path)!r}]))\n"
    )
    proc = _run(code)
    assert (proc.returncode, proc.stderr) == (1, LOCAL)


@pytest.mark.parametrize("command", ["serve", "ingest"])
def test_an_embedder_without_its_extra_names_the_install_command(tmp_path: Path, command: str):
    (tmp_path / "src").mkdir()
    data = tmp_path / "data"
    args = ["--port", "0"] if command == "serve" else [str(tmp_path / "src"), "--instance", "d"]
    proc = _cli(
        command, *args, "--embedder", "wordllama", "--data-dir", str(data), blocked=("wordllama",)
    )
    assert proc.returncode == 1
    assert proc.stderr == (
        "aisearch-local: error: --embedder wordllama needs the [semantic] extra: "
        'pip install "aisearch-py[semantic]"\n'
    )
    assert "serving" not in proc.stderr + proc.stdout


@pytest.mark.parametrize(
    ("package", "framework", "extra"),
    [
        ("llamaindex_aisearch", "llama_index", "llamaindex"),
        ("langchain_aisearch", "langchain_core", "langchain"),
    ],
)
def test_an_adapter_without_its_framework_names_the_install_command(
    package: str, framework: str, extra: str
):
    code = (
        "try:\n"
        f"    import {package}\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc.name, exc, sep='|')\n"
    )
    proc = _run(code, blocked=(framework,))
    assert proc.returncode == 0, proc.stderr
    kind, name, message = proc.stdout.rstrip("\n").split("|")
    assert kind == "ModuleNotFoundError"  # an ImportError, as before: `except ImportError` works
    assert name == framework
    assert message == f'{package} needs the [{extra}] extra: pip install "aisearch-py[{extra}]"'


def test_an_adapter_import_error_of_another_module_is_not_rewritten():
    proc = _run("import langchain_aisearch\n", blocked=("httpx",))
    assert proc.returncode == 1
    assert "No module named 'httpx'" in proc.stderr and "[langchain]" not in proc.stderr


# -- user errors: one line on stderr, no traceback, no banner ------------------------------


def test_serve_with_a_missing_source_folder_says_so(tmp_path: Path):
    data = tmp_path / "data"
    missing = tmp_path / "no-such-folder"
    proc = _cli(
        "serve", "--port", "0", "--source", str(missing), "--instance", "x", "--data-dir", str(data)
    )
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == f"aisearch-local: error: --source {missing}: not a folder\n"
    assert not data.exists()


def test_serve_with_source_but_no_instance_says_so_before_indexing(tmp_path: Path):
    proc = _cli("serve", "--port", "0", "--source", str(tmp_path), "--data-dir", str(tmp_path))
    assert (proc.returncode, proc.stderr) == (
        2,
        "aisearch-local: error: --source needs --instance NAME\n",
    )


def test_serve_with_an_unknown_embedder_says_which_are_allowed(tmp_path: Path):
    proc = _cli("serve", "--port", "0", "--embedder", "bert", "--data-dir", str(tmp_path))
    assert proc.returncode == 1
    assert proc.stderr == (
        "aisearch-local: error: --embedder bert: unknown embedder spec 'bert'; allowed: "
        "'hashing', 'wordllama', 'openai:MODEL@BASE_URL'\n"
    )


def test_serve_on_a_port_in_use_fails_before_the_banner(tmp_path: Path):
    data = tmp_path / "data"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = _cli("serve", "--port", str(port), "--sample-corpus", "--data-dir", str(data))
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr == (
        f"aisearch-local: error: port {port} on 127.0.0.1 is already in use "
        "(another aisearch-local?): stop it or pass another --port\n"
    )
    assert not data.exists()  # checked before the sample corpus is indexed


def test_serve_on_an_address_it_cannot_use_says_so(tmp_path: Path):
    proc = _cli("serve", "--host", "203.0.113.7", "--port", "0", "--data-dir", str(tmp_path))
    assert proc.returncode == 1
    assert proc.stderr.startswith("aisearch-local: error: cannot listen on 203.0.113.7:0: ")
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_serve_on_port_0_prints_the_port_it_bound(tmp_path: Path):
    argv = ["serve", "--port", "0", "--data-dir", str(tmp_path), "--log-level", "warning"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "aisearch_local.cli", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        banner = proc.stderr.readline()
        assert banner.startswith("aisearch-local serving http://127.0.0.1:"), banner
        url = banner.split()[2]
        port = int(url.split(":")[2].split("/")[0])
        assert port != 0
        assert httpx.get(url + "/_local/health", timeout=30).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == 0


# -- --version -----------------------------------------------------------------------------


def test_version_prints_the_package_version():
    proc = subprocess.run(
        [sys.executable, "-m", "aisearch_local.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert (proc.returncode, proc.stdout) == (0, f"aisearch-local {version('aisearch-py')}\n")
