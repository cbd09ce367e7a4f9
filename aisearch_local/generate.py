"""Answer generation for the local AI Search server.

* :class:`ExtractiveGenerator` (spec ``"extractive"``, the default) composes a deterministic
  answer from the retrieved chunks' sentences most relevant to the last user message
  (:mod:`aisearch_local.extractive`), each followed by an ``[n]`` citation of its own chunk.
  It needs no model and never returns an empty answer.
* :class:`OpenAICompatibleGenerator` (spec ``"openai:MODEL@BASE_URL"``) sends a RAG prompt to
  any OpenAI-compatible ``/v1/chat/completions`` upstream (Ollama, vLLM, llama.cpp ...).

The local query rewrite is :func:`aisearch_local.text.rewrite_query`, the local reranker
:func:`aisearch_local.search.rerank_scores`.

Tokens are counted as whitespace-delimited words throughout (an approximation of model tokens).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypedDict, runtime_checkable

import httpx
from httpx_sse import SSEError, connect_sse
from typing_extensions import Unpack

from aisearch_local._upstream import (
    checked_key,
    endpoint,
    parse_openai_spec,
    transport_error,
    upstream_error,
)
from aisearch_local.extractive import (  # noqa: F401 (re-exported: the answers' contract)
    NO_CONTEXT_ANSWER,
    NO_MATCH_PREFIX,
    compose_answer,
)
from aisearch_local.search import rerank_scores
from aisearch_local.text import message_text as _content_text
from aisearch_local.text import rewrite_query

__all__ = [
    "DEFAULT_GENERATOR_SPEC",
    "GENERATOR_SPECS",
    "ExtractiveGenerator",
    "Generation",
    "Generator",
    "GeneratorError",
    "OpenAICompatibleGenerator",
    "make_generator",
    "message_text",
    "rerank_scores",
    "rewrite_query",
    "word_pieces",
]

logger = logging.getLogger(__name__)


def message_text(message: dict[str, Any]) -> str:
    """The text of an OpenAI-style message (string content, or the text parts of a list)."""
    return _content_text(message.get("content"), lenient=True)


DEFAULT_GENERATOR_SPEC = "extractive"
GENERATOR_SPECS = ("extractive", "openai:MODEL@BASE_URL")
UPSTREAM_API_KEY_ENV = "AISEARCH_LOCAL_UPSTREAM_API_KEY"


class GeneratorError(Exception):
    """A generator cannot be built or the upstream model failed."""


@dataclass
class Generation:
    """A finished answer.

    Attributes:
        text: The answer text.
        finish_reason: ``"stop"`` (complete, or cut at a stop sequence) or ``"length"``
            (cut at ``max_tokens``).
        prompt_tokens: Prompt size in tokens.
        completion_tokens: Answer size in tokens.
    """

    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


Messages = list[dict[str, Any]]
"""OpenAI-style messages (``role``, ``content``)."""
ChunkDicts = list[dict[str, Any]]
"""API-shaped chunks ``{id, text, score, item{key, metadata}}`` in rank order."""


class Limits(TypedDict, total=False):
    """The keyword arguments of :meth:`Generator.generate` and :meth:`Generator.stream`."""

    max_tokens: int | None
    """Cut the answer after this many tokens (``finish_reason="length"``)."""
    stop: list[str] | None
    """Cut the answer before the earliest of these strings."""
    model: str | None
    """The model asked for (a generator may ignore it)."""


@runtime_checkable
class Generator(Protocol):
    """Writes an answer from a conversation and the retrieved chunks.

    ``chunks`` are API-shaped dicts ``{id, text, score, item{key, metadata}}`` in rank order;
    ``[n]`` in an answer cites ``chunks[n - 1]``. Both methods take the :class:`Limits`
    keywords ``max_tokens``, ``stop`` and ``model``.
    """

    name: str

    def generate(
        self, messages: Messages, chunks: ChunkDicts, **limits: Unpack[Limits]
    ) -> Generation:
        """Return the whole answer."""
        ...

    def stream(
        self, messages: Messages, chunks: ChunkDicts, **limits: Unpack[Limits]
    ) -> Iterator[str | Generation]:
        """Yield text pieces, then exactly one final :class:`Generation` (full text, usage)."""
        ...


# --------------------------------------------------------------------------------------------
# Token counting and limits
# --------------------------------------------------------------------------------------------


def _count_tokens(text: str) -> int:
    return len(text.split())


def _prompt_tokens(messages: Sequence[dict[str, Any]], chunks: Sequence[dict[str, Any]]) -> int:
    return sum(_count_tokens(message_text(m)) for m in messages) + sum(
        _count_tokens(str(c.get("text") or "")) for c in chunks
    )


def _check_limits(limits: Limits) -> tuple[int | None, list[str]]:
    """The checked ``max_tokens`` and the non-empty ``stop`` strings."""
    max_tokens, stop = limits.get("max_tokens"), limits.get("stop")
    if max_tokens is not None and (
        not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1
    ):
        raise ValueError(f"max_tokens must be a positive integer or None, got {max_tokens!r}")
    if stop is None:
        return max_tokens, []
    if isinstance(stop, str) or not all(isinstance(s, str) for s in stop):
        raise ValueError("stop must be a list of strings or None")
    return max_tokens, [s for s in stop if s]


def _apply_limits(text: str, max_tokens: int | None, stop: list[str]) -> tuple[str, str]:
    """Cut ``text`` at the earliest stop string, then at ``max_tokens`` words.

    Returns:
        ``(text, finish_reason)``; the reason is ``"length"`` only for a ``max_tokens`` cut.
    """
    positions = [i for i in (text.find(s) for s in stop) if i >= 0]
    if positions:
        text = text[: min(positions)].rstrip()
    if max_tokens is not None:
        words = list(re.finditer(r"\S+", text))
        if len(words) > max_tokens:
            return text[: words[max_tokens - 1].end()], "length"
    return text, "stop"


def word_pieces(text: str) -> list[str]:
    """Word-sized pieces (word plus following whitespace) whose concatenation is ``text``."""
    return re.findall(r"\s+|\S+\s*", text) if text else []


# --------------------------------------------------------------------------------------------
# Extractive generator
# --------------------------------------------------------------------------------------------

_BRIEF = re.compile(
    r"\b(brief|briefly|concise|concisely|short|succinct|terse|one sentence|single sentence|"
    r"tl;?dr|in a few words)\b",
    re.IGNORECASE,
)
_DETAILED = re.compile(
    r"\b(detailed|in detail|thorough|thoroughly|comprehensive|elaborate|exhaustive|long)\b",
    re.IGNORECASE,
)


class ExtractiveGenerator:
    """Deterministic extractive answers with ``[n]`` citations (no model needed).

    The question is the last user message; :func:`aisearch_local.extractive.compose_answer`
    writes the answer: the chunks' sentences most relevant to it (BM25 with the section
    heading, document title and chunk rank as context; headings, labels and chunk-boundary
    fragments are never emitted), those under half the best score dropped, best first (3 by
    default), each followed by `` [n]`` where ``n`` is the 1-based position of its own chunk in
    ``chunks``. A question naming a section of labelled items ("What causes ...") starts with
    that section's heading and labels.

    System prompt: when a system message asks for brevity (``brief``, ``concise``, ``short``,
    ``one sentence``, ...) only 1 sentence is used; when it asks for detail (``detailed``,
    ``thorough``, ``comprehensive``, ...) up to 6. Any other system prompt only counts towards
    ``prompt_tokens``: the extractive answerer cannot follow free-form instructions.

    Without chunks the answer says in words that no indexed content matched; when no sentence
    shares a word with the question, the answer says so and quotes the top chunk's first
    sentence (retrieval still judged it the closest).
    ``max_tokens`` truncates (finish reason ``length``); ``stop`` cuts at the earliest stop
    string (finish reason ``stop``; as with OpenAI, a stop string at the very start leaves an
    empty answer: that is the caller's explicit request).

    Args:
        sentences: Default number of sentences per answer (1 to 20).
    """

    def __init__(self, sentences: int = 3) -> None:
        if not isinstance(sentences, int) or not 1 <= sentences <= 20:
            raise ValueError(f"sentences must be an integer between 1 and 20, got {sentences!r}")
        self.sentences = sentences
        self.name = "extractive-v2"

    def __repr__(self) -> str:
        return f"ExtractiveGenerator(sentences={self.sentences})"

    def _budget(self, messages: Sequence[dict[str, Any]]) -> int:
        system = " ".join(message_text(m) for m in messages if m.get("role") == "system")
        if not system:
            return self.sentences
        if _BRIEF.search(system):
            return 1
        if _DETAILED.search(system):
            return max(self.sentences, 6)
        return self.sentences

    def compose(self, messages: Sequence[dict[str, Any]], chunks: Sequence[dict[str, Any]]) -> str:
        """The full answer before ``max_tokens``/``stop`` are applied."""
        question = ""
        for m in reversed(messages):
            if m.get("role") == "user":
                question = message_text(m)
                break
        return compose_answer(question, chunks, self._budget(messages))

    def generate(
        self, messages: Messages, chunks: ChunkDicts, **limits: Unpack[Limits]
    ) -> Generation:
        """Compose the answer.

        Args:
            messages: OpenAI-style messages (``role``, ``content``).
            chunks: Retrieved chunks in rank order.
            **limits: ``max_tokens`` cuts the answer after this many words
                (``finish_reason="length"``), ``stop`` before the earliest of these strings;
                ``model`` is ignored (there is no model).

        Returns:
            The generation with word-count usage.

        Raises:
            ValueError: ``max_tokens`` is not a positive integer or ``stop`` not a list of str.
        """
        max_tokens, stops = _check_limits(limits)
        text, reason = _apply_limits(self.compose(messages, chunks), max_tokens, stops)
        return Generation(
            text=text,
            finish_reason=reason,
            prompt_tokens=_prompt_tokens(messages, chunks),
            completion_tokens=_count_tokens(text),
        )

    def stream(
        self, messages: Messages, chunks: ChunkDicts, **limits: Unpack[Limits]
    ) -> Iterator[str | Generation]:
        """Yield the :meth:`generate` text in word-sized pieces, then the :class:`Generation`."""
        generation = self.generate(messages, chunks, **limits)
        yield from word_pieces(generation.text)
        yield generation


# --------------------------------------------------------------------------------------------
# OpenAI-compatible generator
# --------------------------------------------------------------------------------------------

DEFAULT_RAG_INSTRUCTIONS = (
    "You are a helpful assistant answering questions from the provided context documents. "
    "Answer only from the context. Cite the documents you use with their number in square "
    "brackets, like [1]. If the context does not contain the answer, say so."
)
DEFAULT_UPSTREAM_TIMEOUT = httpx.Timeout(120.0, connect=5.0)


def build_rag_messages(
    messages: Sequence[dict[str, Any]], chunks: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The upstream conversation: one system message (instructions + numbered context).

    The caller's system messages replace :data:`DEFAULT_RAG_INSTRUCTIONS` (system messages act
    as the generation system prompt, as in the real API); the other messages follow unchanged.
    """
    system = "\n\n".join(message_text(m) for m in messages if m.get("role") == "system")
    lines = [system or DEFAULT_RAG_INSTRUCTIONS, "", "Context:"]
    if not chunks:
        lines.append("(no indexed content matched the question)")
    for i, chunk in enumerate(chunks, start=1):
        key = (chunk.get("item") or {}).get("key", "")
        lines.append(f"[{i}] ({key})\n{chunk.get('text', '')}")
    out: list[dict[str, Any]] = [{"role": "system", "content": "\n".join(lines)}]
    out.extend(
        {"role": m.get("role", "user"), "content": m.get("content", "")}
        for m in messages
        if m.get("role") != "system"
    )
    return out


class OpenAICompatibleGenerator:
    """Generation by an OpenAI-compatible ``POST /v1/chat/completions`` upstream.

    The configured ``model`` is always sent upstream; the request's ``model`` (a Cloudflare
    catalogue name such as ``@cf/meta/llama-3.3-70b-instruct-fp8-fast``) is ignored because
    the upstream would not know it.

    Args:
        base_url: Upstream base URL, with or without ``/v1`` (e.g. ``http://127.0.0.1:11434``).
        model: Upstream model name (e.g. ``llama3.2``).
        api_key: Optional bearer key (never in ``repr`` or errors).
        client: An ``httpx.Client`` to use (tests inject a ``MockTransport`` one).
        timeout: Request timeout.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        client: httpx.Client | None = None,
        timeout: httpx.Timeout | float = DEFAULT_UPSTREAM_TIMEOUT,
    ) -> None:
        if not model:
            raise GeneratorError("model must be a non-empty string")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._url = endpoint(base_url, "chat/completions", GeneratorError)
        self._api_key = checked_key(api_key, GeneratorError)
        self._client = client or httpx.Client(timeout=timeout)
        self.name = f"openai:{model}@{self.base_url}"

    def __repr__(self) -> str:
        return f"OpenAICompatibleGenerator(name={self.name!r})"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    def _body(
        self,
        messages: Sequence[dict[str, Any]],
        chunks: Sequence[dict[str, Any]],
        max_tokens: int | None,
        stop: list[str],
        stream: bool,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": build_rag_messages(messages, chunks),
            "stream": stream,
        }
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        if stop:
            body["stop"] = stop
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body

    def _fail(self, what: str) -> GeneratorError:
        return GeneratorError(f"generation upstream {self._url} {what}")

    @contextmanager
    def _upstream_errors(self) -> Iterator[None]:
        """Turn a transport failure into a :class:`GeneratorError` naming the upstream."""
        try:
            yield
        except httpx.TimeoutException as exc:
            raise self._fail("timed out") from exc
        except SSEError as exc:
            raise self._fail(f"did not answer with an event stream: {exc}") from exc
        except httpx.HTTPError as exc:
            raise self._fail(f"unreachable: {transport_error(exc)}") from exc

    def _status_error(self, response: httpx.Response) -> GeneratorError:
        return self._fail(f"returned HTTP {response.status_code}: {upstream_error(response)}")

    @staticmethod
    def _generation(
        text: str, reason: str, usage: dict[str, Any], body: dict[str, Any]
    ) -> Generation:
        """The finished answer: the upstream's usage where it sent one, else word counts."""
        return Generation(
            text=text,
            finish_reason=reason,
            prompt_tokens=int(usage.get("prompt_tokens") or _prompt_tokens(body["messages"], [])),
            completion_tokens=int(usage.get("completion_tokens") or _count_tokens(text)),
        )

    def generate(
        self, messages: Messages, chunks: ChunkDicts, **limits: Unpack[Limits]
    ) -> Generation:
        """Ask the upstream for the whole answer (``model`` is ignored: the configured one is used).

        Raises:
            GeneratorError: Unreachable, timed out, HTTP error, or malformed body.
            ValueError: Invalid ``max_tokens`` or ``stop``.
        """
        max_tokens, stops = _check_limits(limits)
        body = self._body(messages, chunks, max_tokens, stops, stream=False)
        with self._upstream_errors():
            response = self._client.post(self._url, json=body, headers=self._headers())
        if response.status_code != 200:
            raise self._status_error(response)
        try:
            data = response.json()
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
            reason = choice.get("finish_reason") or "stop"
            usage = data.get("usage") or {}
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise self._fail(f"sent a malformed completion body: {exc!r}") from exc
        return self._generation(text, str(reason), usage, body)

    def stream(
        self, messages: Messages, chunks: ChunkDicts, **limits: Unpack[Limits]
    ) -> Iterator[str | Generation]:
        """Stream the upstream answer (SSE), then yield one final :class:`Generation`.

        Usage comes from the upstream's final usage event when it sends one
        (``stream_options.include_usage``), else from word counts. ``model`` is ignored.

        Raises:
            GeneratorError: Unreachable, timed out, HTTP error, or malformed event.
            ValueError: Invalid ``max_tokens`` or ``stop``.
        """
        max_tokens, stops = _check_limits(limits)
        body = self._body(messages, chunks, max_tokens, stops, stream=True)
        pieces: list[str] = []
        reason = "stop"
        usage: dict[str, Any] = {}
        with (
            self._upstream_errors(),
            connect_sse(
                self._client, "POST", self._url, json=body, headers=self._headers()
            ) as source,
        ):
            if source.response.status_code != 200:
                source.response.read()
                raise self._status_error(source.response)
            for event in source.iter_sse():
                if event.data.strip() == "[DONE]":
                    break
                try:
                    data = json.loads(event.data)
                except ValueError as exc:
                    raise self._fail(
                        f"sent a malformed stream event: {event.data[:100]!r}"
                    ) from exc
                if not isinstance(data, dict):
                    continue
                if isinstance(data.get("usage"), dict):
                    usage = data["usage"]
                for choice in data.get("choices") or []:
                    delta = (choice or {}).get("delta") or {}
                    content = delta.get("content")
                    if isinstance(content, str) and content:
                        pieces.append(content)
                        yield content
                    if choice.get("finish_reason"):
                        reason = str(choice["finish_reason"])
        yield self._generation("".join(pieces), reason, usage, body)

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()


def make_generator(spec: str | None = None) -> Generator:
    """Build a generator from a spec string.

    Args:
        spec: ``"extractive"`` (default) or ``"openai:MODEL@BASE_URL"`` (key from
            ``AISEARCH_LOCAL_UPSTREAM_API_KEY``).

    Raises:
        GeneratorError: Unknown or malformed spec.
    """
    spec = (spec or DEFAULT_GENERATOR_SPEC).strip()
    if spec == "extractive":
        return ExtractiveGenerator()
    if spec.startswith("openai:"):
        try:
            model, base_url = parse_openai_spec(spec)
        except ValueError as exc:
            raise GeneratorError(f"invalid generator spec: {exc}") from exc
        return OpenAICompatibleGenerator(
            base_url, model, api_key=os.environ.get(UPSTREAM_API_KEY_ENV)
        )
    allowed = ", ".join(repr(s) for s in GENERATOR_SPECS)
    raise GeneratorError(f"unknown generator spec {spec!r}; allowed: {allowed}")
