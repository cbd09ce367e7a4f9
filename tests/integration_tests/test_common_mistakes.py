"""The ten common mistakes, each producing the message a user sees (issue 13's closing list).

Each case makes the mistake against a real local server (``aisearch_local`` over HTTP on
127.0.0.1) or fails before the network, and returns ``(exception type, message)``; the tests
assert the important words of each message. ``docs/troubleshooting.md`` shows the real
output, printed by running this module (from the repository root)::

    .venv/bin/python -m tests.integration_tests.test_common_mistakes

which serves on 127.0.0.1:8787 (``--port`` to change) with the instance ``coffee``.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from aisearch import (
    AISearchClient,
    AISearchError,
    APIConnectionError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    SearchOptions,
)
from aisearch._config import ENV_NAMES
from aisearch_local.testing import LocalServer

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Context:
    """Where the cases run: a server started with ``--token``, the namespace they use, and the
    base URL of a server that is not running."""

    server: LocalServer
    namespace: str
    down_url: str

    def client(self, **kwargs: Any) -> AISearchClient:
        settings: dict[str, Any] = {
            "account_id": self.server.account_id,
            "api_token": self.server.token,
            "base_url": self.server.base_url,
            "namespace": self.namespace,
            "max_retries": 0,
            **kwargs,
        }
        return AISearchClient(**settings)


Outcome = tuple[type[BaseException], str]


def _caught(call: Callable[[], object]) -> Outcome:
    try:
        call()
    except Exception as exc:  # the case's mistake: returned, never swallowed by a test
        return type(exc), str(exc)
    raise AssertionError("the mistake raised nothing")


def _closed_port() -> int:
    with socket.socket() as s:  # a port nobody listens on once closed
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


_BLOCKER = """
import sys


class _Absent:  # the package is not installed: what a user without the extra has
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, _Absent())
"""


def _run_without(blocked: str, code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter where the package ``blocked`` is not installed."""
    return subprocess.run(
        [sys.executable, "-c", _BLOCKER.format(blocked=blocked) + code],
        capture_output=True,
        text=True,
        timeout=100,
    )


def _without(framework: str, package: str) -> Outcome:
    """Import ``package`` where ``framework`` is not installed."""
    code = f"try:\n    import {package}\nexcept ImportError as exc:\n    print(exc, end='')\n"
    proc = _run_without(framework, code)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    return ModuleNotFoundError, proc.stdout


SERVE = ["serve", "--sample-corpus", "--instance", "coffee"]


def _serve_without(module: str) -> Outcome:
    """Run ``aisearch-local serve`` where ``module`` is not installed: stderr, no traceback."""
    with tempfile.TemporaryDirectory() as tmp:
        argv = [*SERVE, "--data-dir", os.path.join(tmp, "data")]
        code = f"from aisearch_local.cli import main\nsys.exit(main({argv!r}))\n"
        proc = _run_without(module, code)
    assert (proc.returncode, proc.stdout) == (1, ""), proc.stderr
    return SystemExit, proc.stderr.rstrip("\n")


# -- the ten mistakes ---------------------------------------------------------------------------


def missing_account_id(ctx: Context) -> Outcome:
    return _caught(lambda: AISearchClient(api_token="my-token"))


def missing_token(ctx: Context) -> Outcome:
    return _caught(lambda: AISearchClient(account_id="my-account"))


def wrong_token(ctx: Context) -> Outcome:
    def call() -> None:
        with ctx.client(api_token="not-the-token") as client:
            client.search("coffee", "espresso")

    return _caught(call)


def misspelt_instance(ctx: Context) -> Outcome:
    def call() -> None:
        with ctx.client() as client:
            client.search("cofee", "espresso")

    return _caught(call)


def k_out_of_range_core(ctx: Context) -> Outcome:
    return _caught(lambda: SearchOptions(retrieval={"max_num_results": 80}))


def k_out_of_range_langchain(ctx: Context) -> Outcome:
    from langchain_aisearch import AISearchRetriever

    def call() -> None:
        retriever = AISearchRetriever(
            instance_id="coffee",
            account_id=ctx.server.account_id,
            api_token=ctx.server.token,
            base_url=ctx.server.base_url,
        )
        retriever.invoke("espresso", k=100)

    return _caught(call)


def k_out_of_range_langchain_field(ctx: Context) -> Outcome:
    from langchain_aisearch import AISearchRetriever

    return _caught(
        lambda: AISearchRetriever(
            instance_id="coffee", k=100, account_id="my-account", api_token="my-token"
        )
    )


def unsupported_filter_operator(ctx: Context) -> Outcome:
    def call() -> None:
        with ctx.client() as client:
            filters = {"$or": [{"folder": "brewing/"}, {"folder": "roasting/"}]}
            client.search("coffee", "espresso", options={"retrieval": {"filters": filters}})

    return _caught(call)


def misspelt_option_core(ctx: Context) -> Outcome:
    def call() -> None:
        with ctx.client() as client:
            client.search("coffee", "espresso", optons={"retrieval": {"max_num_results": 5}})

    return _caught(call)


def misspelt_option_llamaindex(ctx: Context) -> Outcome:
    from llamaindex_aisearch import AISearchRetriever

    return _caught(
        lambda: AISearchRetriever(
            instance_id="coffee",
            account_id="my-account",
            api_token="my-token",
            similarity_top_kk=3,
        )
    )


def misspelt_option_langchain(ctx: Context) -> Outcome:
    from langchain_aisearch import AISearchRetriever

    return _caught(
        lambda: AISearchRetriever(
            instance_id="coffee", account_id="my-account", api_token="my-token", top_k=3
        )
    )


def server_not_running(ctx: Context) -> Outcome:
    def call() -> None:
        with ctx.client(base_url=ctx.down_url) as client:
            client.search("coffee", "espresso")

    return _caught(call)


def forgotten_base_url(ctx: Context) -> Outcome:
    def refuse(request: httpx.Request) -> httpx.Response:  # what DNS or a firewall answers
        raise httpx.ConnectError("[Errno -3] Temporary failure in name resolution", request=request)

    def call() -> None:
        http = httpx.Client(transport=httpx.MockTransport(refuse))  # never touches the network
        with AISearchClient(
            account_id="my-account", api_token="my-token", http_client=http, max_retries=0
        ) as client:
            client.search("coffee", "espresso")

    return _caught(call)


def forgotten_base_url_online(ctx: Context) -> Outcome:
    def refuse(request: httpx.Request) -> httpx.Response:  # Cloudflare's answer to a bad token
        body = {
            "success": False,
            "errors": [{"code": 10000, "message": "Authentication error"}],
            "messages": [],
            "result": None,
        }
        return httpx.Response(403, json=body)

    def call() -> None:
        http = httpx.Client(transport=httpx.MockTransport(refuse))  # never touches the network
        with AISearchClient(
            account_id="my-account", api_token="my-token", http_client=http, max_retries=0
        ) as client:
            client.search("coffee", "espresso")

    return _caught(call)


def missing_extra_langchain(ctx: Context) -> Outcome:
    return _without("langchain_core", "langchain_aisearch")


def missing_extra_llamaindex(ctx: Context) -> Outcome:
    return _without("llama_index", "llamaindex_aisearch")


def missing_extra_local(ctx: Context) -> Outcome:
    return _serve_without("starlette")


# (title, case, exception type it raises, words its message must hold)
MISTAKES: list[tuple[str, Callable[[Context], Outcome], type[BaseException], list[str]]] = [
    (
        "Missing account id",
        missing_account_id,
        AISearchError,
        ["account_id: missing", "account_id=", "CLOUDFLARE_ACCOUNT_ID"],
    ),
    (
        "Missing token",
        missing_token,
        AISearchError,
        ["api_token: missing", "api_token=", "CLOUDFLARE_API_TOKEN"],
    ),
    (
        "Wrong token (the local server was started with --token)",
        wrong_token,
        PermissionDeniedError,
        ["HTTP 403", "the API token from api_token=", "--token", "AISEARCH_LOCAL_TOKEN"],
    ),
    (
        "Misspelt instance",
        misspelt_instance,
        NotFoundError,
        ["HTTP 404", "instance 'cofee' not found", "did you mean 'coffee'?", "list_instances("],
    ),
    (
        "k out of range (core)",
        k_out_of_range_core,
        InvalidRequestError,
        ["retrieval.max_num_results", "between 1 and 50", "(got 80)"],
    ),
    (
        "k out of range (LangChain, per call)",
        k_out_of_range_langchain,
        InvalidRequestError,
        ["k:", "between 1 and 50", "(got 100)"],
    ),
    (
        "k out of range (LangChain, as a field)",
        k_out_of_range_langchain_field,
        InvalidRequestError,
        ["AISearchRetriever", "\nk\n", "less than or equal to 50"],
    ),
    (
        "Unsupported filter operator",
        unsupported_filter_operator,
        InvalidRequestError,
        ["$or is not supported", '{"folder": {"$in": ["brewing/", "roasting/"]}}'],
    ),
    (
        "Misspelt option (core)",
        misspelt_option_core,
        TypeError,
        ["unexpected keyword argument 'optons'", "did you mean 'options'?"],
    ),
    (
        "Misspelt option (LlamaIndex)",
        misspelt_option_llamaindex,
        TypeError,
        ["'similarity_top_kk'", "did you mean 'similarity_top_k'?", "search options are:"],
    ),
    (
        "Misspelt option (LangChain)",
        misspelt_option_langchain,
        InvalidRequestError,
        ["AISearchRetriever", "top_k", "did you mean 'k'?", "extra_forbidden"],
    ),
    (
        "Server not running",
        server_not_running,
        APIConnectionError,
        ["ConnectError", "while trying POST http://127.0.0.1:", "aisearch-local serve"],
    ),
    (
        "Forgotten base URL (offline)",
        forgotten_base_url,
        APIConnectionError,
        ["https://api.cloudflare.com:443/client/v4/accounts/", "AISEARCH_BASE_URL", "base_url="],
    ),
    (
        "Forgotten base URL (online: Cloudflare refuses the token)",
        forgotten_base_url_online,
        PermissionDeniedError,
        ["HTTP 403", "the public API (https://api.cloudflare.com/client/v4)", "AISEARCH_BASE_URL"],
    ),
    (
        "Missing extra (LangChain)",
        missing_extra_langchain,
        ModuleNotFoundError,
        ['langchain_aisearch needs the [langchain] extra: pip install "aisearch-py[langchain]"'],
    ),
    (
        "Missing extra (LlamaIndex)",
        missing_extra_llamaindex,
        ModuleNotFoundError,
        ['pip install "aisearch-py[llamaindex]"'],
    ),
    (
        "Missing extra (the local server)",
        missing_extra_local,
        SystemExit,  # the command exits with status 1 and this one line on stderr
        ['aisearch-local needs the [local] extra: pip install "aisearch-py[local]"'],
    ),
]


def _prepare(server: LocalServer, namespace: str, down_url: str) -> Context:
    """Create ``coffee`` (and its namespace) on the server, if missing."""
    with AISearchClient(
        account_id=server.account_id, api_token=server.token, base_url=server.base_url
    ) as client:
        client.create_namespace(namespace, exist_ok=True)
        client.create_instance("coffee", namespace=namespace, exist_ok=True)
    return Context(server, namespace, down_url)


@pytest.fixture(scope="module")
def ctx(local_server: LocalServer) -> Context:
    # its own namespace, where "coffee" is the only id near "cofee"
    return _prepare(local_server, "mistakes", f"http://127.0.0.1:{_closed_port()}/client/v4")


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(("title", "case", "kind", "words"), MISTAKES, ids=[m[0] for m in MISTAKES])
def test_each_mistake_says_what_to_do(ctx: Context, title, case, kind, words):
    raised, message = case(ctx)
    assert issubclass(raised, kind), (title, raised)
    for word in words:
        assert word in message, f"{title}: {word!r} not in {message!r}"
    for secret in (ctx.server.token, "not-the-token", "my-token"):
        assert secret not in message
    assert "Traceback" not in message


def test_the_ten_are_all_there():
    topics = {title.split(" (")[0] for title, *_ in MISTAKES}
    assert len(topics) == 10, sorted(topics)


# -- the text of docs/troubleshooting.md --------------------------------------------------------


def _public_name(kind: type[BaseException]) -> str:
    """``aisearch.NotFoundError`` rather than ``aisearch._exceptions.NotFoundError``."""
    if kind.__module__ == "builtins":
        return kind.__qualname__
    package = sys.modules[kind.__module__.partition(".")[0]]
    if getattr(package, kind.__name__, None) is kind:
        return f"{package.__name__}.{kind.__name__}"
    return f"{kind.__module__}.{kind.__qualname__}"


def _report(port: int) -> Iterator[str]:
    for name in ENV_NAMES:
        os.environ.pop(name, None)
    server = LocalServer(token="local-token", port=port)
    down = server_not_running(Context(server, "default", server.base_url))  # before it starts
    with server:
        ctx = _prepare(server, "default", server.base_url)
        for title, case, _kind, _words in MISTAKES:
            raised, message = down if case is server_not_running else case(ctx)
            if raised is SystemExit:
                shown = f"$ aisearch-local {' '.join(SERVE)}\n{message}"
            else:
                shown = f"{_public_name(raised)}: {message}"
            yield f"### {title}\n\n```\n{shown}\n```\n"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Print the message of each common mistake.")
    parser.add_argument("--port", type=int, default=8787)
    for block in _report(parser.parse_args().port):
        print(block)


def test_troubleshooting_doc_shows_the_real_messages(monkeypatch):
    """docs/troubleshooting.md quotes what each case prints today, word for word."""
    from pathlib import Path

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for name in ENV_NAMES:  # _report clears them; monkeypatch restores them afterwards
        monkeypatch.delenv(name, raising=False)
    doc = (Path(__file__).parents[2] / "docs" / "troubleshooting.md").read_text(encoding="utf-8")
    stale = []
    for block in _report(port):
        title, _, rest = block.partition("\n\n```\n")
        shown = rest.rsplit("\n```", 1)[0].replace(f"127.0.0.1:{port}", "127.0.0.1:8787")
        if shown not in doc:
            stale.append(title)
    assert not stale, f"regenerate docs/troubleshooting.md for: {stale}"
