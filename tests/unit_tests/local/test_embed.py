"""Unit tests for aisearch_local.embed (run with --disable-socket --allow-unix-socket)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap

import httpx
import numpy as np
import pytest

from aisearch_local._upstream import parse_openai_spec
from aisearch_local.embed import (
    Embedder,
    EmbedderError,
    HashingEmbedder,
    OpenAIEmbedder,
    WordLlamaEmbedder,
    make_embedder,
)
from tests.unit_tests.local._network import NETWORK_FAULTS

TEXTS = [
    "How do I brew espresso at home?",
    "Espresso brewing at home needs a fine grind and 9 bars of pressure.",
    "Quarterly tax filings are due at the end of the month.",
    "",
    "Café crème, naïve façade — ünïcödé 漢字 text.",
]


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b))


# ---------------------------------------------------------------------------------- hashing


def test_hashing_shape_dtype_and_normalised_rows() -> None:
    emb = HashingEmbedder()
    out = emb.embed(TEXTS)
    assert out.shape == (len(TEXTS), 384)
    assert out.dtype == np.float32
    norms = np.linalg.norm(out, axis=1)
    assert np.allclose(norms[[0, 1, 2, 4]], 1.0, atol=1e-5)
    assert norms[3] == 0.0  # empty text -> zero row
    assert np.isfinite(out).all()
    assert emb.name == "hashing-v1-384"
    assert isinstance(emb, Embedder)


def test_hashing_empty_batch_and_punctuation_only() -> None:
    emb = HashingEmbedder(dim=64)
    assert emb.embed([]).shape == (0, 64)
    out = emb.embed(["", "   ", "?!.,;", "\n\n"])
    assert out.shape == (4, 64)
    assert not out.any()


def test_hashing_is_deterministic_and_batch_independent() -> None:
    a = HashingEmbedder().embed(TEXTS)
    b = HashingEmbedder().embed(list(reversed(TEXTS)))[::-1]
    singles = np.vstack([HashingEmbedder().embed([t]) for t in TEXTS])
    assert np.array_equal(a, b)
    assert np.allclose(a, singles, atol=1e-7)


def test_hashing_is_stable_across_processes() -> None:
    """Python's str hash is salted per process; the hashing embedder must not depend on it."""
    code = textwrap.dedent(
        """
        import json, sys
        from aisearch_local.embed import HashingEmbedder
        v = HashingEmbedder().embed(["Espresso brewing at home"])[0]
        print(json.dumps([round(float(x), 6) for x in v]))
        """
    )
    outs = []
    for seed in ("1", "2"):
        proc = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
        )
        outs.append(json.loads(proc.stdout))
    assert outs[0] == outs[1]
    here = HashingEmbedder().embed(["Espresso brewing at home"])[0]
    assert np.allclose(here, outs[0], atol=1e-5)


def test_hashing_texts_do_not_leak_into_each_other() -> None:
    emb = HashingEmbedder()
    joined = emb.embed(["alpha beta", "gamma delta"])
    alone = emb.embed(["gamma delta"])[0]
    assert np.allclose(joined[1], alone, atol=1e-7)


def test_hashing_lexical_sanity() -> None:
    emb = HashingEmbedder()
    q, near, far, morph = emb.embed(
        [
            "espresso grind size",
            "For espresso the grind size should be very fine.",
            "Quarterly tax filings are due at the end of the month.",
            "grinding espressos",
        ]
    )
    assert cos(q, near) > 0.3
    assert cos(q, near) > cos(q, far) + 0.2
    assert abs(cos(q, far)) < 0.15
    # character 3-grams put inflected forms near each other
    assert cos(q, morph) > cos(q, far) + 0.1
    # case and punctuation do not matter
    a, b = emb.embed(["Espresso, GRIND size!", "espresso grind size"])
    assert cos(a, b) == pytest.approx(1.0, abs=1e-6)


def test_hashing_word_order_matters_through_bigrams() -> None:
    emb = HashingEmbedder()
    a, b, c = emb.embed(["cold brew coffee", "cold brew coffee", "coffee brew cold"])
    assert cos(a, b) == pytest.approx(1.0, abs=1e-6)
    assert cos(a, c) < 0.99


@pytest.mark.parametrize("dim", [0, 8, 5000, 3.5, True])
def test_hashing_dim_validated(dim: object) -> None:
    with pytest.raises(ValueError, match="dim must be an integer between 16 and 4096"):
        HashingEmbedder(dim=dim)  # type: ignore[arg-type]


def test_hashing_large_batch_matches_small_batches() -> None:
    emb = HashingEmbedder()
    texts = [f"document number {i} about topic {i % 7} with words {i * 31}" for i in range(600)]
    whole = emb.embed(texts)
    parts = np.vstack([emb.embed(texts[i : i + 50]) for i in range(0, 600, 50)])
    assert whole.shape == (600, 384)
    assert np.allclose(whole, parts, atol=1e-7)


# -------------------------------------------------------------------------------- wordllama


@pytest.fixture(scope="module")
def wordllama() -> WordLlamaEmbedder:
    return WordLlamaEmbedder()


def test_wordllama_loads_offline_with_socket_disabled(wordllama: WordLlamaEmbedder) -> None:
    # pytest-socket (--disable-socket) makes any socket creation raise; the fixture loaded the
    # model and this embeds without touching the network.
    with pytest.raises(Exception, match=r"[Ss]ocket"):
        socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    out = wordllama.embed(["offline check"])
    assert out.shape == (1, 256)


def test_wordllama_loads_in_a_fresh_process_without_network() -> None:
    """A fresh interpreter where any connect/DNS lookup aborts, with an empty HOME cache."""
    code = textwrap.dedent(
        """
        import sys
        def hook(event, args):
            if event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname"):
                raise RuntimeError(f"network access attempted: {event} {args!r}")
        sys.addaudithook(hook)
        from aisearch_local.embed import make_embedder
        e = make_embedder("wordllama")
        print(e.name, e.embed(["hello"]).shape)
        """
    )
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HTTP", "HTTPS"))}
        env["HOME"] = home
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
        )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["wordllama-l2_supercat-256", "(1,", "256)"]


def test_wordllama_shape_norm_and_empty(wordllama: WordLlamaEmbedder) -> None:
    out = wordllama.embed(TEXTS)
    assert out.shape == (len(TEXTS), 256)
    assert out.dtype == np.float32
    assert np.isfinite(out).all()
    norms = np.linalg.norm(out, axis=1)
    assert norms[3] == 0.0
    assert np.allclose(norms[[0, 1, 2, 4]], 1.0, atol=1e-5)
    assert wordllama.name == "wordllama-l2_supercat-256"
    assert wordllama.embed([]).shape == (0, 256)


def test_wordllama_is_deterministic(wordllama: WordLlamaEmbedder) -> None:
    assert np.array_equal(wordllama.embed(TEXTS), wordllama.embed(TEXTS))


def test_wordllama_semantic_sanity(wordllama: WordLlamaEmbedder) -> None:
    q, para, unrelated = wordllama.embed(
        [
            "How do I make espresso at home?",
            "Brewing a strong coffee shot with a home machine",
            "Quarterly tax filing deadlines for small businesses",
        ]
    )
    assert cos(q, para) > cos(q, unrelated) + 0.1


def test_wordllama_truncated_dim() -> None:
    emb = WordLlamaEmbedder(dim=64)
    out = emb.embed(["hello world"])
    assert out.shape == (1, 64)
    assert emb.name == "wordllama-l2_supercat-64"
    assert np.linalg.norm(out[0]) == pytest.approx(1.0, abs=1e-5)


def test_wordllama_missing_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "wordllama", None)
    with pytest.raises(EmbedderError, match="pip install wordllama"):
        make_embedder("wordllama")


# ----------------------------------------------------------------------------------- openai


def _vec(i: int, dim: int = 4) -> list[float]:
    v = [0.0] * dim
    v[i % dim] = 2.0
    return v


def test_openai_embedder_against_mock_transport() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = json.loads(request.content)
        data = [
            {"object": "embedding", "index": i, "embedding": _vec(i)}
            for i, _ in enumerate(body["input"])
        ]
        # return out of order: the embedder must sort by index
        return httpx.Response(200, json={"object": "list", "data": data[::-1], "model": "m"})

    client = httpx.Client(transport=httpx.MockTransport(handler))
    emb = OpenAIEmbedder("http://127.0.0.1:11434", "nomic", api_key="sk-secret", client=client)
    assert emb.dim == 4  # probed at construction
    assert json.loads(seen[0].content)["input"] == ["dimension probe"]
    out = emb.embed(["a", "", "c"])
    assert out.shape == (3, 4)
    assert np.allclose(out, np.eye(4, dtype=np.float32)[:3])
    assert len(seen) == 2
    req = seen[1]
    assert str(req.url) == "http://127.0.0.1:11434/v1/embeddings"
    assert req.headers["authorization"] == "Bearer sk-secret"
    assert json.loads(req.content) == {"model": "nomic", "input": ["a", " ", "c"]}
    assert emb.name == "openai:nomic@http://127.0.0.1:11434"
    assert "sk-secret" not in repr(emb)


def test_openai_embedder_batches_and_probes_dim() -> None:
    sizes: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        inputs = json.loads(request.content)["input"]
        sizes.append(len(inputs))
        data = [{"index": i, "embedding": _vec(i, 8)} for i in range(len(inputs))]
        return httpx.Response(200, json={"data": data})

    client = httpx.Client(transport=httpx.MockTransport(handler))
    emb = OpenAIEmbedder("http://h/v1/", "m", client=client, batch_size=2)
    assert emb.dim == 8  # one probe request, at construction
    assert sizes == [1]
    assert isinstance(emb, Embedder)  # the protocol check reads dim without a request
    assert sizes == [1]
    out = emb.embed(["a", "b", "c", "d", "e"])
    assert out.shape == (5, 8)
    assert sizes == [1, 2, 2, 1]


@pytest.mark.parametrize(
    ("response", "match"),
    [
        (httpx.Response(401, json={"error": {"message": "bad key"}}), "HTTP 401: bad key"),
        (httpx.Response(500, text="boom"), "HTTP 500: boom"),
        (httpx.Response(200, json={"nope": 1}), "malformed body"),
        (httpx.Response(200, text="not json"), "malformed body"),
        (httpx.Response(200, json={"data": []}), "returned 0 vectors for 1 inputs"),
    ],
)
def test_openai_embedder_upstream_errors(response: httpx.Response, match: str) -> None:
    client = httpx.Client(transport=httpx.MockTransport(lambda _req: response))
    emb = OpenAIEmbedder("http://h", "m", api_key="sk-secret", client=client, dim=4)
    with pytest.raises(EmbedderError, match=match) as info:
        emb.embed(["x"])
    assert "sk-secret" not in str(info.value)


def test_openai_embedder_connection_and_timeout_errors() -> None:
    for handler, match in NETWORK_FAULTS:
        client = httpx.Client(transport=httpx.MockTransport(handler))
        emb = OpenAIEmbedder("http://h", "m", dim=4, client=client)
        with pytest.raises(EmbedderError, match=match):
            emb.embed(["x"])


def test_openai_embedder_dimension_change_is_an_error() -> None:
    client = httpx.Client(
        transport=httpx.MockTransport(
            lambda _req: httpx.Response(200, json={"data": [{"index": 0, "embedding": [1.0, 0.0]}]})
        )
    )
    emb = OpenAIEmbedder("http://h", "m", client=client, dim=4)
    with pytest.raises(EmbedderError, match="dimension"):
        emb.embed(["x"])


# ---------------------------------------------------------------------------------- factory


def _dim4_client() -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        n = len(json.loads(request.content)["input"])
        return httpx.Response(
            200, json={"data": [{"index": i, "embedding": _vec(i)} for i in range(n)]}
        )

    return httpx.Client(transport=httpx.MockTransport(handler))


def test_make_embedder_specs() -> None:
    assert make_embedder("hashing").name == "hashing-v1-384"
    assert make_embedder(None).name == "hashing-v1-384"
    assert make_embedder("hashing:128").dim == 128
    assert make_embedder("wordllama").name == "wordllama-l2_supercat-256"
    emb = make_embedder("openai:@cf/baai/bge-m3@http://127.0.0.1:8080/v1", client=_dim4_client())
    assert isinstance(emb, OpenAIEmbedder)
    assert emb.dim == 4
    assert emb.model == "@cf/baai/bge-m3"
    assert emb.base_url == "http://127.0.0.1:8080/v1"


@pytest.mark.parametrize(
    "spec", ["minilm", "openai", "openai:model", "openai:@http://x", "hashing:x"]
)
def test_make_embedder_rejects_bad_specs(spec: str) -> None:
    with pytest.raises(EmbedderError) as info:
        make_embedder(spec)
    assert spec in str(info.value) or "openai:MODEL@BASE_URL" in str(info.value)


def test_unknown_spec_names_the_allowed_specs() -> None:
    with pytest.raises(
        EmbedderError, match="allowed: 'hashing', 'wordllama', 'openai:MODEL@BASE_URL'"
    ):
        make_embedder("minilm")


def test_parse_openai_spec() -> None:
    assert parse_openai_spec("openai:llama3@https://x.y/v1") == ("llama3", "https://x.y/v1")
    assert parse_openai_spec("openai:a@b@http://h:1") == ("a@b", "http://h:1")
    with pytest.raises(ValueError, match="openai:MODEL@BASE_URL"):
        parse_openai_spec("openai:llama3")


def test_openai_unreachable_upstream_fails_at_construction() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = httpx.Client(transport=httpx.MockTransport(refuse))
    with pytest.raises(EmbedderError, match=r"http://127\.0\.0\.1:9/v1/embeddings unreachable"):
        make_embedder("openai:m@http://127.0.0.1:9", client=client)


def test_openai_bad_base_url() -> None:
    with pytest.raises(EmbedderError, match="base_url must start with http"):
        OpenAIEmbedder("ftp://h", "m")


def test_openai_spec_reads_key_from_env_and_hides_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AISEARCH_LOCAL_UPSTREAM_API_KEY", "sk-from-env")
    emb = make_embedder("openai:nomic@http://127.0.0.1:11434", client=_dim4_client())
    assert isinstance(emb, OpenAIEmbedder)
    assert isinstance(emb, Embedder)
    assert emb._api_key == "sk-from-env"
    assert "sk-from-env" not in repr(emb) and "sk-from-env" not in emb.name


def test_hashing_embedder_is_thread_safe() -> None:
    from concurrent.futures import ThreadPoolExecutor

    # texts of 20 KB to 300 KB: several threads grow the shared power table (64 KB initially)
    texts = [("word " * (4000 * (i + 1))) + f"text {i}" for i in range(16)]
    expected = HashingEmbedder().embed(texts)
    shared = HashingEmbedder()
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda i: shared.embed([texts[i]])[0], range(len(texts))))
    assert np.allclose(np.vstack(results), expected, atol=1e-7)


def test_wordllama_import_leaves_root_logging_alone():
    # wordllama's import calls logging.basicConfig(INFO); the embedder undoes it
    import logging
    import subprocess
    import sys

    code = (
        "import logging\n"
        "from aisearch_local.embed import WordLlamaEmbedder\n"
        "WordLlamaEmbedder()\n"
        "root = logging.getLogger()\n"
        "print(len(root.handlers), root.level)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", str(logging.WARNING)]


def test_openai_embedder_key_checked_and_never_echoed():
    import httpx

    from aisearch_local.embed import EmbedderError, OpenAIEmbedder

    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    with pytest.raises(EmbedderError) as info:
        OpenAIEmbedder("http://127.0.0.1:1", "m", api_key="SECRET\x00KEY", dim=8, client=client)
    assert "SECRET" not in str(info.value)

    def protocol_error(request):
        raise httpx.LocalProtocolError("Illegal header value b'Bearer SECRETKEY'")

    client = httpx.Client(transport=httpx.MockTransport(protocol_error))
    embedder = OpenAIEmbedder(
        "http://127.0.0.1:1", "m", api_key=" SECRETKEY\n", dim=8, client=client
    )
    with pytest.raises(EmbedderError) as info:
        embedder.embed(["x"])
    assert "SECRETKEY" not in str(info.value)
    assert "LocalProtocolError" in str(info.value)
