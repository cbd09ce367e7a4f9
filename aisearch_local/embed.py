"""Pluggable text embedders for the local AI Search server.

Three implementations share the :class:`Embedder` protocol:

* :class:`HashingEmbedder` (spec ``"hashing"``, the default): zero dependencies beyond numpy,
  deterministic across processes and platforms, purely lexical (words, word bigrams and
  character 3-grams, signed feature hashing), vectorised with numpy.
* :class:`WordLlamaEmbedder` (spec ``"wordllama"``): the semantic static-embedding model
  bundled inside the ``wordllama`` wheel, loaded strictly offline.
* :class:`OpenAIEmbedder` (spec ``"openai:MODEL@BASE_URL"``): any OpenAI-compatible
  ``/v1/embeddings`` endpoint (Ollama, vLLM, llama.cpp server, OpenAI itself).

Every embedder returns float32 arrays of shape ``(n, dim)`` whose rows are L2-normalised; an
empty (or token-less) text gives an all-zero row, never NaN, so its cosine similarity with
anything is 0.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import httpx
import numpy as np

from aisearch_local import _upstream
from aisearch_local.text import EMBED_STOPWORDS

__all__ = [
    "DEFAULT_EMBEDDER_SPEC",
    "EMBEDDER_SPECS",
    "Embedder",
    "EmbedderError",
    "HashingEmbedder",
    "OpenAIEmbedder",
    "WordLlamaEmbedder",
    "make_embedder",
]

logger = logging.getLogger(__name__)

DEFAULT_EMBEDDER_SPEC = "hashing"
EMBEDDER_SPECS = ("hashing", "wordllama", "openai:MODEL@BASE_URL")
UPSTREAM_API_KEY_ENV = "AISEARCH_LOCAL_UPSTREAM_API_KEY"
"""Environment variable read by the ``openai:`` specs for the upstream's bearer key."""


class EmbedderError(Exception):
    """An embedder cannot be built or an embedding call failed."""


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors.

    Attributes:
        name: A stable identifier recorded per instance (a different name means the stored
            vectors are incompatible with this embedder).
        dim: The vector dimension.
    """

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` into a float32 array of shape ``(len(texts), dim)``."""
        ...


def _l2_normalise(matrix: np.ndarray) -> np.ndarray:
    """Return ``matrix`` as float32 with unit rows; all-zero rows stay zero (never NaN)."""
    out = np.asarray(matrix, dtype=np.float32)
    if out.size == 0:
        return out
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    np.maximum(norms, np.float32(1e-12), out=norms)
    result: np.ndarray = out / norms
    result[~np.isfinite(result)] = 0.0
    return result


# --------------------------------------------------------------------------------------------
# Hashing embedder
# --------------------------------------------------------------------------------------------

_U64 = np.uint64
_M1 = _U64(0xBF58476D1CE4E5B9)
_M2 = _U64(0x94D049BB133111EB)
_POLY = _U64(0x100000001B3)  # FNV-64 prime: odd, hence invertible modulo 2**64
_POLY_INV = _U64(pow(0x100000001B3, -1, 2**64))
_TAG_BIGRAM = _U64(0x9E3779B97F4A7C15)
_TAG_TRIGRAM = _U64(0xD6E8FEB86659FD93)

# Bytes kept as "word" bytes: ASCII letters/digits and every non-ASCII byte (UTF-8 letters);
# everything else becomes a space. Uppercase ASCII is lowered by str.lower() beforehand.
_BYTE_TABLE = bytes(
    (b if (48 <= b <= 57 or 97 <= b <= 122 or b >= 128) else 32) for b in range(256)
)


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on a uint64 array (wrapping arithmetic, deterministic)."""
    x = x ^ (x >> _U64(30))
    x = x * _M1
    x = x ^ (x >> _U64(27))
    x = x * _M2
    out: np.ndarray = x ^ (x >> _U64(31))
    return out


class HashingEmbedder:
    """Deterministic, dependency-free lexical embedder (signed feature hashing).

    Features of the lower-cased text (ASCII punctuation is a separator, non-ASCII bytes are
    kept as word bytes):

    * every word (weight 1.0; common English stop words 0.2),
    * every pair of consecutive words (weight 0.6),
    * every byte 3-gram of the text with single spaces at word boundaries (weight 0.25; these
      make ``brew``/``brewing`` and typos land near each other).

    Each feature is hashed with a polynomial hash modulo 2**64 followed by a SplitMix64
    finaliser; the high bits choose the bucket and bit 0 the sign. All of it runs as a handful
    of numpy passes over the concatenated bytes of the whole batch, so throughput does not
    depend on a Python loop per feature. The result is purely lexical: a paraphrase with no
    shared words scores near zero.

    Args:
        dim: Vector dimension (16 to 4096).
    """

    WORD_WEIGHT = 1.0
    STOPWORD_WEIGHT = 0.2
    BIGRAM_WEIGHT = 0.6
    TRIGRAM_WEIGHT = 0.25
    BATCH = 256

    def __init__(self, dim: int = 384) -> None:
        if not isinstance(dim, int) or isinstance(dim, bool) or not 16 <= dim <= 4096:
            raise ValueError(f"dim must be an integer between 16 and 4096, got {dim!r}")
        self.dim = dim
        self.name = f"hashing-v1-{dim}"
        self._pow_table = (np.ones(1, dtype=np.uint64), np.ones(1, dtype=np.uint64))
        self._stop_hashes = np.sort(self._word_hashes(sorted(EMBED_STOPWORDS)))

    def __repr__(self) -> str:
        return f"HashingEmbedder(dim={self.dim})"

    def _powers(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        powers, inverses = self._pow_table  # one attribute: safe if threads grow it concurrently
        if powers.shape[0] < n:
            size = max(n, 2 * powers.shape[0], 1 << 16)
            base = np.full(size, _POLY, dtype=np.uint64)
            base[0] = 1
            inv = np.full(size, _POLY_INV, dtype=np.uint64)
            inv[0] = 1
            powers = np.cumprod(base, dtype=np.uint64)
            inverses = np.cumprod(inv, dtype=np.uint64)
            self._pow_table = (powers, inverses)
        return powers[:n], inverses[:n]

    def _word_hashes(self, words: Sequence[str]) -> np.ndarray:
        """Hashes of single words, exactly as computed inside :meth:`embed`."""
        if not words:
            return np.zeros(0, dtype=np.uint64)
        _, _, word_hash, _ = self._analyse(list(words))
        return word_hash

    def _analyse(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Tokenise a batch into byte stream features.

        Returns:
            ``(stream, stream_row, word_hash, word_row)``: the collapsed byte stream (each text
            framed by single spaces), the row index of every stream byte, and the hash and row
            of every word.
        """
        encoded = [t.lower().encode("utf-8", "surrogatepass").translate(_BYTE_TABLE) for t in texts]
        joined = b" " + b"  ".join(encoded) + b" "
        raw = np.frombuffer(joined, dtype=np.uint8)
        lengths = np.fromiter((len(e) + 2 for e in encoded), dtype=np.int64, count=len(encoded))
        # Frame: every text owns one leading and one trailing space (the two-space separator
        # splits evenly), so no word or 3-gram can straddle two texts.
        raw_row = np.repeat(np.arange(len(encoded), dtype=np.int64), lengths)
        is_space = raw == 32
        keep = np.ones(raw.shape[0], dtype=bool)
        keep[1:] = ~(is_space[1:] & is_space[:-1] & (raw_row[1:] == raw_row[:-1]))
        stream = raw[keep]
        stream_row = raw_row[keep]
        word_mask = stream != 32
        n = stream.shape[0]
        if not word_mask.any():
            empty = np.zeros(0, dtype=np.uint64)
            return stream, stream_row, empty, np.zeros(0, dtype=np.int64)
        # Word starts/ends (stream is framed by spaces, so index 0 and n-1 are spaces).
        starts = np.flatnonzero(word_mask[1:] & ~word_mask[:-1]) + 1
        ends = np.flatnonzero(word_mask[:-1] & ~word_mask[1:]) + 1  # exclusive
        powers, inv_powers = self._powers(n)
        values = stream.astype(np.uint64) * powers
        prefix = np.empty(n + 1, dtype=np.uint64)
        prefix[0] = 0
        np.cumsum(values, dtype=np.uint64, out=prefix[1:])
        word_hash = _mix64((prefix[ends] - prefix[starts]) * inv_powers[starts] + _U64(1))
        word_row = stream_row[starts]
        return stream, stream_row, word_hash, word_row

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts.

        Args:
            texts: The texts; empty texts give zero rows.

        Returns:
            A float32 array of shape ``(len(texts), dim)`` with unit (or zero) rows.
        """
        texts = list(texts)
        if len(texts) > self.BATCH:
            # Small batches keep the working arrays in cache (about 10x faster than one pass
            # over 10,000 texts on this machine).
            return np.concatenate(
                [
                    self._embed_batch(texts[i : i + self.BATCH])
                    for i in range(0, len(texts), self.BATCH)
                ]
            )
        return self._embed_batch(texts)

    def _scatter(
        self, h: np.ndarray, row: np.ndarray, weight: np.ndarray | float, size: int
    ) -> np.ndarray:
        """Signed feature hashing: bucket from bits 32-63 (multiply-shift), sign from bit 31."""
        bucket = (((h >> _U64(32)) * _U64(self.dim)) >> _U64(32)).astype(np.int64)
        signed = np.where((h & _U64(1 << 31)) != 0, weight, np.negative(weight))
        counts: np.ndarray = np.bincount(row * self.dim + bucket, weights=signed, minlength=size)
        return counts

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        n_texts = len(texts)
        if n_texts == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        stream, stream_row, word_hash, word_row = self._analyse(texts)
        size = n_texts * self.dim
        flat = np.zeros(size, dtype=np.float64)

        if word_hash.shape[0]:
            weight = np.full(word_hash.shape[0], self.WORD_WEIGHT)
            stop = self._stop_hashes
            pos = np.searchsorted(stop, word_hash)
            pos[pos >= stop.shape[0]] = 0
            weight[stop[pos] == word_hash] = self.STOPWORD_WEIGHT
            flat += self._scatter(word_hash, word_row, weight, size)
            same = word_row[1:] == word_row[:-1]
            if same.any():
                bigram = _mix64(word_hash[:-1][same] * _TAG_BIGRAM ^ word_hash[1:][same])
                flat += self._scatter(bigram, word_row[:-1][same], self.BIGRAM_WEIGHT, size)

        if stream.shape[0] >= 3:
            s = stream.astype(np.uint32)
            tri = s[:-2] | (s[1:-1] << np.uint32(8)) | (s[2:] << np.uint32(16))
            tri_row = stream_row[:-2]
            valid = (tri_row == stream_row[2:]) & (stream[1:-1] != 32)
            # A 24-bit key needs no full finaliser: one odd multiply spreads it over the high
            # 32 bits, which are the only bits _scatter uses.
            tri_hash = (tri[valid].astype(np.uint64) + _TAG_TRIGRAM) * _M1
            flat += self._scatter(tri_hash, tri_row[valid], self.TRIGRAM_WEIGHT, size)

        return _l2_normalise(flat.reshape(n_texts, self.dim))


# --------------------------------------------------------------------------------------------
# WordLlama embedder
# --------------------------------------------------------------------------------------------


class WordLlamaEmbedder:
    """Semantic static embeddings from the weights bundled in the ``wordllama`` wheel.

    Loaded with ``cache_dir`` pointing at the installed package and ``disable_download=True``
    (the library looks for its bundled tokenizer in the wrong folder and would otherwise try
    huggingface.co), so it never opens a network connection.

    Args:
        config: The bundled model configuration (only ``l2_supercat`` ships in the wheel).
        dim: Output dimension: 256 (native) or fewer (Matryoshka truncation, e.g. 64).

    Raises:
        EmbedderError: ``wordllama`` is not installed or its bundled files are missing.
    """

    def __init__(self, config: str = "l2_supercat", dim: int = 256) -> None:
        if not isinstance(dim, int) or isinstance(dim, bool) or not 16 <= dim <= 256:
            raise ValueError(f"dim must be an integer between 16 and 256, got {dim!r}")
        # importing wordllama calls logging.basicConfig(level=INFO), which would make the
        # host application log every HTTP request: undo that side effect
        root = logging.getLogger()
        handlers, level = list(root.handlers), root.level
        try:
            import wordllama
            from wordllama import WordLlama
        except ImportError as exc:
            raise EmbedderError(
                "the 'wordllama' embedder needs the wordllama package: "
                "pip install wordllama (or pip install 'aisearch-py[semantic]')"
            ) from exc
        finally:
            root.handlers[:] = handlers
            root.setLevel(level)
        try:
            self._model: Any = WordLlama.load(
                config=config,
                cache_dir=Path(wordllama.__file__).parent,
                disable_download=True,
                trunc_dim=None if dim == 256 else dim,
            )
        except Exception as exc:  # the library raises assorted types for missing files
            raise EmbedderError(
                f"could not load the bundled wordllama model {config!r} offline: {exc}"
            ) from exc
        self.dim = dim
        self.name = f"wordllama-{config}-{dim}"

    def __repr__(self) -> str:
        return f"WordLlamaEmbedder(name={self.name!r})"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts with wordllama (average pooling, then L2 normalisation here).

        Args:
            texts: The texts; empty texts give zero rows.

        Returns:
            A float32 array of shape ``(len(texts), dim)``.
        """
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # norm=False: wordllama's own normalisation divides by zero (NaN + RuntimeWarning)
        # for an empty text; _l2_normalise keeps such rows at zero.
        raw = self._model.embed(texts, norm=False, return_np=True, batch_size=64)
        return _l2_normalise(np.asarray(raw)[:, : self.dim])


# --------------------------------------------------------------------------------------------
# OpenAI-compatible embedder
# --------------------------------------------------------------------------------------------

DEFAULT_UPSTREAM_TIMEOUT = httpx.Timeout(60.0, connect=5.0)


class OpenAIEmbedder:
    """Embeddings from any OpenAI-compatible ``POST /v1/embeddings`` endpoint.

    Args:
        base_url: The upstream base URL, e.g. ``http://127.0.0.1:11434`` or
            ``http://127.0.0.1:11434/v1`` (``/v1`` is appended when missing).
        model: The upstream model name.
        api_key: Optional bearer key (never shown in ``repr`` or errors).
        dim: The vector dimension if known; otherwise it is probed here, with one request
            (so a wrong URL or a stopped upstream fails at construction, with a clear error).
        client: An ``httpx.Client`` to use (tests inject a ``MockTransport`` one).
        timeout: Request timeout.
        batch_size: Texts per request.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        dim: int | None = None,
        client: httpx.Client | None = None,
        timeout: httpx.Timeout | float = DEFAULT_UPSTREAM_TIMEOUT,
        batch_size: int = 64,
    ) -> None:
        if not model:
            raise EmbedderError("model must be a non-empty string")
        if not 1 <= batch_size <= 2048:
            raise ValueError(f"batch_size must be between 1 and 2048, got {batch_size!r}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._url = _upstream.endpoint(base_url, "embeddings", EmbedderError)
        self._api_key = _upstream.checked_key(api_key, EmbedderError)
        self._client = client or httpx.Client(timeout=timeout)
        self._batch_size = batch_size
        self.name = f"openai:{model}@{self.base_url}"
        # A plain attribute (not a lazy property): isinstance() checks against the runtime
        # Embedder protocol read ``dim`` and must never trigger a request.
        self.dim: int = dim if dim is not None else int(self._request(["dimension probe"]).shape[1])

    def __repr__(self) -> str:
        return f"OpenAIEmbedder(name={self.name!r})"

    def _request(self, texts: list[str]) -> np.ndarray:
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        try:
            response = self._client.post(
                self._url, json={"model": self.model, "input": texts}, headers=headers
            )
        except httpx.TimeoutException as exc:
            raise EmbedderError(f"embedding upstream {self._url} timed out") from exc
        except httpx.HTTPError as exc:
            raise EmbedderError(
                f"embedding upstream {self._url} unreachable: {_upstream.transport_error(exc)}"
            ) from exc
        if response.status_code != 200:
            raise EmbedderError(
                f"embedding upstream {self._url} returned HTTP {response.status_code}: "
                f"{_upstream.upstream_error(response)}"
            )
        try:
            data = response.json()["data"]
            ordered = sorted(data, key=lambda d: d.get("index", 0))
            matrix = np.asarray([d["embedding"] for d in ordered], dtype=np.float32)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise EmbedderError(
                f"embedding upstream {self._url} sent a malformed body (expected "
                f'{{"data": [{{"embedding": [...]}}]}}): {exc}'
            ) from exc
        if matrix.ndim != 2 or matrix.shape[0] != len(texts):
            raise EmbedderError(
                f"embedding upstream {self._url} returned {matrix.shape[0] if matrix.ndim else 0}"
                f" vectors for {len(texts)} inputs"
            )
        return matrix

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts through the upstream, in batches.

        Args:
            texts: The texts. Empty strings are sent as a single space (many servers reject
                empty inputs).

        Returns:
            A float32 array of shape ``(len(texts), dim)``, rows L2-normalised here.

        Raises:
            EmbedderError: The upstream failed, timed out, sent a malformed body or changed
                dimension.
        """
        texts = [t if t.strip() else " " for t in texts]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [
            self._request(texts[i : i + self._batch_size])
            for i in range(0, len(texts), self._batch_size)
        ]
        widths = {p.shape[1] for p in parts}
        if widths != {self.dim}:
            raise EmbedderError(
                f"embedding upstream {self._url} returned dimension {sorted(widths)}, "
                f"expected {self.dim}"
            )
        return _l2_normalise(np.concatenate(parts))

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()


# --------------------------------------------------------------------------------------------
# Factory
# --------------------------------------------------------------------------------------------


def make_embedder(spec: str | None = None, *, client: httpx.Client | None = None) -> Embedder:
    """Build an embedder from a spec string.

    Args:
        spec: ``"hashing"`` (default; ``"hashing:DIM"`` picks the dimension), ``"wordllama"``,
            or ``"openai:MODEL@BASE_URL"`` (key from ``AISEARCH_LOCAL_UPSTREAM_API_KEY``; one
            request probes the dimension).
        client: HTTP client for the ``openai:`` spec (tests inject a mock transport).

    Returns:
        The embedder.

    Raises:
        EmbedderError: Unknown spec, or the chosen backend is unavailable.
    """
    spec = (spec or DEFAULT_EMBEDDER_SPEC).strip()
    allowed = ", ".join(repr(s) for s in EMBEDDER_SPECS)
    if spec == "hashing":
        return HashingEmbedder()
    if spec.startswith("hashing:"):
        try:
            return HashingEmbedder(int(spec.split(":", 1)[1]))
        except ValueError as exc:
            raise EmbedderError(f"invalid embedder spec {spec!r}: {exc}") from exc
    if spec == "wordllama":
        return WordLlamaEmbedder()
    if spec.startswith("openai:"):
        try:
            model, base_url = _upstream.parse_openai_spec(spec)
        except ValueError as exc:
            raise EmbedderError(f"invalid embedder spec: {exc}") from exc
        return OpenAIEmbedder(
            base_url, model, api_key=os.environ.get(UPSTREAM_API_KEY_ENV), client=client
        )
    raise EmbedderError(f"unknown embedder spec {spec!r}; allowed: {allowed}")
