"""Unit tests for aisearch_local.generate."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from aisearch_local.generate import (
    NO_CONTEXT_ANSWER,
    NO_MATCH_PREFIX,
    ExtractiveGenerator,
    Generation,
    Generator,
    GeneratorError,
    OpenAICompatibleGenerator,
    build_rag_messages,
    make_generator,
    message_text,
    rerank_scores,
    rewrite_query,
)
from tests.unit_tests.local._network import NETWORK_FAULTS


def chunk(i: int, text: str, key: str = "doc.md") -> dict[str, Any]:
    return {
        "id": f"c{i}",
        "text": text,
        "score": 1.0 - i / 10,
        "item": {"key": key, "metadata": {}},
    }


CHUNKS = [
    chunk(
        0,
        "Espresso needs a fine grind. Use 18 grams of coffee for a double shot. "
        "The water should be around 93 degrees Celsius.",
        "brewing/espresso.md",
    ),
    chunk(
        1,
        "Pour-over coffee uses a medium grind. Let the bed bloom for 30 seconds. "
        "A gooseneck kettle helps control the pour.",
        "brewing/pour-over.md",
    ),
    chunk(
        2,
        "# Cleaning\n\nDescale the espresso machine every two months. Citric acid works well.",
        "care/cleaning.md",
    ),
]
USER = [{"role": "user", "content": "How fine should the grind be for espresso?"}]


def citations(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"\[(\d+)\]", text)]


# ------------------------------------------------------------------------------- extractive


def test_extractive_answer_cites_best_sentences() -> None:
    gen = ExtractiveGenerator()
    out = gen.generate(USER, CHUNKS)
    assert isinstance(out, Generation)
    assert isinstance(gen, Generator)
    assert out.text.startswith("Espresso needs a fine grind. [1]")
    assert out.finish_reason == "stop"
    cited = citations(out.text)
    assert cited and all(1 <= n <= len(CHUNKS) for n in cited)
    # every sentence is followed by a citation
    assert re.fullmatch(r"(?:[^\[\]]+ \[\d+\] ?)+", out.text)
    # "Pour-over coffee uses a medium grind." shares only "grind": under half the best overlap
    assert cited == [1]


def test_extractive_default_budget_is_three_sentences() -> None:
    chunks = [
        chunk(i, f"Coffee grind tip {i} is useful. Coffee grind note {i} helps.") for i in range(3)
    ]
    out = ExtractiveGenerator().generate([{"role": "user", "content": "coffee grind"}], chunks)
    assert citations(out.text) == [1, 1, 2]  # best first; ties broken by rank then position


def test_extractive_uses_last_user_message() -> None:
    gen = ExtractiveGenerator()
    messages = [
        *USER,
        {"role": "assistant", "content": "Fine."},
        {"role": "user", "content": "How often should I descale the machine?"},
    ]
    out = gen.generate(messages, CHUNKS)
    assert out.text.startswith("Descale the espresso machine every two months. [3]")


def test_extractive_multipart_content() -> None:
    messages = [{"role": "user", "content": [{"type": "text", "text": "bloom seconds pour-over"}]}]
    out = ExtractiveGenerator().generate(messages, CHUNKS)
    assert out.text.startswith("Let the bed bloom for 30 seconds. [2]")


def test_extractive_is_deterministic() -> None:
    a = ExtractiveGenerator().generate(USER, CHUNKS)
    b = ExtractiveGenerator().generate(USER, CHUNKS)
    assert a == b


def test_extractive_never_empty() -> None:
    gen = ExtractiveGenerator()
    out = gen.generate(USER, [])
    assert out.text == NO_CONTEXT_ANSWER
    assert "could not find any indexed content" in out.text
    assert out.completion_tokens == len(NO_CONTEXT_ANSWER.split())
    # chunks without usable sentences
    assert gen.generate(USER, [chunk(0, "   ")]).text == NO_CONTEXT_ANSWER
    # no user message at all, or nothing in common: says so, quotes the top chunk's first sentence
    expected = f"{NO_MATCH_PREFIX} Espresso needs a fine grind. [1]"
    assert gen.generate([], CHUNKS).text == expected
    out = gen.generate([{"role": "user", "content": "zebra quantum"}], CHUNKS)
    assert out.text == expected


def test_system_prompt_brevity_and_detail() -> None:
    gen = ExtractiveGenerator()
    brief = gen.generate([{"role": "system", "content": "Answer briefly."}, *USER], CHUNKS)
    assert len(citations(brief.text)) == 1
    many = [
        chunk(i, f"Coffee grind tip {i} is useful. Coffee grind note {i} helps.") for i in range(5)
    ]
    broad = [{"role": "user", "content": "coffee grind"}]
    detailed = gen.generate(
        [{"role": "system", "content": "Give a detailed, thorough answer."}, *broad], many
    )
    assert len(citations(detailed.text)) == 6
    assert len(citations(gen.generate(broad, many).text)) == 3
    plain = gen.generate(USER, CHUNKS)
    other = gen.generate([{"role": "system", "content": "You are a barista."}, *USER], CHUNKS)
    assert other.text == plain.text
    assert other.prompt_tokens == plain.prompt_tokens + 4


def test_max_tokens_truncates_with_length() -> None:
    gen = ExtractiveGenerator()
    out = gen.generate(USER, CHUNKS, max_tokens=4)
    assert out.text == "Espresso needs a fine"
    assert out.finish_reason == "length"
    assert out.completion_tokens == 4
    full = gen.generate(USER, CHUNKS)
    exact = gen.generate(USER, CHUNKS, max_tokens=len(full.text.split()))
    assert exact.text == full.text and exact.finish_reason == "stop"


def test_stop_sequences() -> None:
    gen = ExtractiveGenerator()
    out = gen.generate(USER, CHUNKS, stop=["[", "zzz"])
    assert out.text == "Espresso needs a fine grind."
    assert out.finish_reason == "stop"
    # the earliest stop string wins, whichever order they are given in
    out = gen.generate(USER, CHUNKS, stop=["[1]", "fine"])
    assert out.text == "Espresso needs a"
    # max_tokens applies after the stop cut
    out = gen.generate(USER, CHUNKS, stop=["[1]"], max_tokens=2)
    assert out.text == "Espresso needs" and out.finish_reason == "length"


@pytest.mark.parametrize("max_tokens", [0, -5, 2.5, True])
def test_max_tokens_validated(max_tokens: object) -> None:
    with pytest.raises(ValueError, match="max_tokens must be a positive integer"):
        ExtractiveGenerator().generate(USER, CHUNKS, max_tokens=max_tokens)  # type: ignore[arg-type]


def test_stop_validated() -> None:
    with pytest.raises(ValueError, match="stop must be a list of strings"):
        ExtractiveGenerator().generate(USER, CHUNKS, stop="x")  # type: ignore[arg-type]


def test_usage_counts_words() -> None:
    messages = [{"role": "system", "content": "Be nice."}, *USER]
    out = ExtractiveGenerator().generate(messages, CHUNKS)
    expected = 2 + len(USER[0]["content"].split()) + sum(len(c["text"].split()) for c in CHUNKS)
    assert out.prompt_tokens == expected
    assert out.completion_tokens == len(out.text.split())


@pytest.mark.parametrize("kwargs", [{}, {"max_tokens": 7}, {"stop": ["bloom"]}, {"max_tokens": 1}])
def test_stream_concatenation_equals_generate(kwargs: dict[str, Any]) -> None:
    gen = ExtractiveGenerator()
    items = list(gen.stream(USER, CHUNKS, **kwargs))
    *pieces, final = items
    assert isinstance(final, Generation)
    assert all(isinstance(p, str) and p for p in pieces)
    assert len(pieces) >= len(final.text.split())
    assert "".join(pieces) == final.text  # type: ignore[arg-type]
    assert final == gen.generate(USER, CHUNKS, **kwargs)


def test_stream_without_chunks() -> None:
    *pieces, final = ExtractiveGenerator().stream(USER, [])
    assert "".join(pieces) == NO_CONTEXT_ANSWER  # type: ignore[arg-type]
    assert isinstance(final, Generation)


def test_weak_sentences_are_dropped() -> None:
    chunks = [
        chunk(0, "The roast develops sugars. Green tea steeps at 75 degrees for two minutes."),
        chunk(1, "Green coffee is dense. Long roasts taste flat."),
    ]
    out = ExtractiveGenerator().generate(
        [{"role": "user", "content": "How long should green tea steep?"}], chunks
    )
    assert out.text == "Green tea steeps at 75 degrees for two minutes. [1]"


def test_sentence_splitting_handles_headings_and_lists() -> None:
    chunks = [chunk(0, "# Grind guide\n\n- Espresso: fine grind\n- French press: coarse grind")]
    out = ExtractiveGenerator(sentences=5).generate(
        [{"role": "user", "content": "french press grind"}], chunks
    )
    # a list item without end punctuation is a fact, emitted as a sentence
    assert out.text.startswith("French press: coarse grind. [1]")
    assert "#" not in out.text and "- " not in out.text


# ---------------------------------------------------------------------------------- rewrite


def test_rewrite_single_message_is_unchanged() -> None:
    assert rewrite_query(USER) == USER[0]["content"]
    assert rewrite_query([{"role": "user", "content": "  spaced  "}]) == "spaced"


def test_rewrite_follow_up_adds_earlier_terms() -> None:
    messages = [
        {"role": "user", "content": "How do I descale my Breville espresso machine?"},
        {"role": "assistant", "content": "Use a citric acid solution."},
        {"role": "user", "content": "How often should I do it?"},
    ]
    out = rewrite_query(messages)
    assert out.startswith("How often should I do it?")
    for term in ("descale", "Breville", "espresso", "machine"):
        assert term in out
    assert "citric" not in out  # assistant turns are not used
    assert rewrite_query(messages) == out


def test_rewrite_standalone_follow_up_is_unchanged() -> None:
    messages = [
        {"role": "user", "content": "How do I descale my espresso machine?"},
        {"role": "assistant", "content": "..."},
        {"role": "user", "content": "Which grinder works best for French press coffee brewing?"},
    ]
    assert rewrite_query(messages) == messages[-1]["content"]


def test_rewrite_short_follow_up_and_what_about() -> None:
    messages = [
        {"role": "user", "content": "What water temperature for pour-over coffee?"},
        {"role": "user", "content": "What about espresso?"},
    ]
    out = rewrite_query(messages)
    assert out.startswith("What about espresso?")
    assert "temperature" in out and "water" in out
    assert out.count("espresso") == 1


def test_rewrite_edge_cases() -> None:
    assert rewrite_query([]) == ""
    assert rewrite_query([{"role": "system", "content": "Be brief."}]) == "Be brief."
    assert rewrite_query([{"role": "user", "content": ""}]) == ""


# ----------------------------------------------------------------------------------- rerank


def test_rerank_ordering_and_range() -> None:
    texts = [
        "Quarterly tax filings are due at the end of the month.",
        "Grind size matters: espresso needs a fine grind size.",
        "Espresso is served in small cups.",
        "A fine grind size for espresso, and a coarse one for French press.",
    ]
    scores = rerank_scores("espresso grind size", texts)
    assert len(scores) == len(texts)
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores[0] == 0.0
    assert scores[1] > scores[2] and scores[3] > scores[2]
    assert rerank_scores("espresso grind size", texts) == scores


def test_rerank_proximity_breaks_ties() -> None:
    near = "The espresso grind setting is explained in the manual appendix section."
    far = "The espresso machine manual has an appendix section explaining the grind setting."
    close, spread = rerank_scores("espresso grind", [near, far])
    assert close > spread


def test_rerank_edge_cases() -> None:
    assert rerank_scores("anything", []) == []
    assert rerank_scores("", ["a text"]) == [0.0]
    assert rerank_scores("the of and", ["the of and"]) == [0.0]  # only stop words
    (s,) = rerank_scores("espresso", ["espresso espresso espresso"])
    assert 0.5 < s <= 1.0


# ------------------------------------------------------------------------ openai-compatible


def _completion(text: str = "Fine grind [1].") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 120, "completion_tokens": 5, "total_tokens": 125},
    }


def test_openai_generator_json() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=_completion())

    client = httpx.Client(transport=httpx.MockTransport(handler))
    gen = OpenAICompatibleGenerator("http://127.0.0.1:11434", "llama3.2", "sk-key", client=client)
    messages = [{"role": "system", "content": "Answer in French."}, *USER]
    out = gen.generate(messages, CHUNKS, max_tokens=50, stop=["\n\n"], model="@cf/meta/x")
    assert out == Generation("Fine grind [1].", "stop", 120, 5)
    req = seen[0]
    assert str(req.url) == "http://127.0.0.1:11434/v1/chat/completions"
    assert req.headers["authorization"] == "Bearer sk-key"
    body = json.loads(req.content)
    assert body["model"] == "llama3.2"  # the configured upstream model, not the request's
    assert body["max_tokens"] == 50 and body["stop"] == ["\n\n"] and body["stream"] is False
    system, user = body["messages"]
    assert system["role"] == "system"
    assert system["content"].startswith("Answer in French.")  # caller's system prompt wins
    assert "[1] (brewing/espresso.md)\nEspresso needs a fine grind." in system["content"]
    assert "[3] (care/cleaning.md)" in system["content"]
    assert user == USER[0]
    assert "sk-key" not in repr(gen)
    assert gen.name == "openai:llama3.2@http://127.0.0.1:11434"


def test_rag_prompt_default_instructions_and_no_chunks() -> None:
    msgs = build_rag_messages(USER, [])
    assert msgs[0]["content"].startswith("You are a helpful assistant")
    assert "(no indexed content matched the question)" in msgs[0]["content"]


def test_openai_generator_usage_fallback_and_length() -> None:
    body = _completion("one two three")
    body["choices"][0]["finish_reason"] = "length"
    del body["usage"]
    client = httpx.Client(transport=httpx.MockTransport(lambda _r: httpx.Response(200, json=body)))
    out = OpenAICompatibleGenerator("http://h/v1", "m", client=client).generate(USER, CHUNKS)
    assert out.finish_reason == "length"
    assert out.completion_tokens == 3
    assert out.prompt_tokens > sum(len(c["text"].split()) for c in CHUNKS)


def _sse(events: list[str]) -> bytes:
    return "".join(f"data: {e}\n\n" for e in events).encode()


def test_openai_generator_stream() -> None:
    deltas = ["Fine", " grind", " [1]."]
    events = [
        json.dumps({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}),
        *[json.dumps({"choices": [{"index": 0, "delta": {"content": d}}]}) for d in deltas],
        json.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
        json.dumps({"choices": [], "usage": {"prompt_tokens": 90, "completion_tokens": 3}}),
        "[DONE]",
    ]
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(
            200, content=_sse(events), headers={"content-type": "text/event-stream"}
        )

    client = httpx.Client(transport=httpx.MockTransport(handler))
    gen = OpenAICompatibleGenerator("http://h", "m", client=client)
    *pieces, final = list(gen.stream(USER, CHUNKS))
    assert pieces == deltas
    assert final == Generation("Fine grind [1].", "stop", 90, 3)
    assert seen[0]["stream"] is True
    assert seen[0]["stream_options"] == {"include_usage": True}


def test_openai_generator_stream_errors() -> None:
    bad_event = httpx.Response(
        200, content=_sse(["{not json"]), headers={"content-type": "text/event-stream"}
    )
    client = httpx.Client(transport=httpx.MockTransport(lambda _r: bad_event))
    with pytest.raises(GeneratorError, match="malformed stream event"):
        list(OpenAICompatibleGenerator("http://h", "m", client=client).stream(USER, CHUNKS))
    not_sse = httpx.Response(200, json=_completion())
    client = httpx.Client(transport=httpx.MockTransport(lambda _r: not_sse))
    with pytest.raises(GeneratorError, match="did not answer with an event stream"):
        list(OpenAICompatibleGenerator("http://h", "m", client=client).stream(USER, CHUNKS))
    status = httpx.Response(503, json={"error": {"message": "model loading"}})
    client = httpx.Client(transport=httpx.MockTransport(lambda _r: status))
    with pytest.raises(GeneratorError, match="HTTP 503: model loading"):
        list(OpenAICompatibleGenerator("http://h", "m", client=client).stream(USER, CHUNKS))


@pytest.mark.parametrize(
    ("response", "match"),
    [
        (httpx.Response(401, json={"error": {"message": "invalid api key"}}), "HTTP 401"),
        (httpx.Response(200, json={"choices": []}), "malformed completion body"),
        (httpx.Response(200, text="<html>"), "malformed completion body"),
    ],
)
def test_openai_generator_errors(response: httpx.Response, match: str) -> None:
    client = httpx.Client(transport=httpx.MockTransport(lambda _r: response))
    gen = OpenAICompatibleGenerator("http://h", "m", api_key="sk-secret", client=client)
    with pytest.raises(GeneratorError, match=match) as info:
        gen.generate(USER, CHUNKS)
    assert "sk-secret" not in str(info.value)


def test_openai_generator_network_errors() -> None:
    for handler, match in NETWORK_FAULTS:
        client = httpx.Client(transport=httpx.MockTransport(handler))
        gen = OpenAICompatibleGenerator("http://h", "m", client=client)
        with pytest.raises(GeneratorError, match=match):
            gen.generate(USER, CHUNKS)
        with pytest.raises(GeneratorError, match=match):
            list(gen.stream(USER, CHUNKS))


def test_make_generator() -> None:
    assert isinstance(make_generator("extractive"), ExtractiveGenerator)
    assert isinstance(make_generator(None), ExtractiveGenerator)
    gen = make_generator("openai:llama3.2@http://127.0.0.1:11434")
    assert isinstance(gen, OpenAICompatibleGenerator)
    assert gen.model == "llama3.2"
    with pytest.raises(GeneratorError, match="allowed: 'extractive', 'openai:MODEL@BASE_URL'"):
        make_generator("gpt")
    with pytest.raises(GeneratorError, match="openai:MODEL@BASE_URL"):
        make_generator("openai:llama3.2")


def test_long_unpunctuated_chunks_are_split_at_lines() -> None:
    lines = [f"field{i}.name: value number {i}" for i in range(30)]
    lines[17] = "roast.level: medium dark espresso roast"
    out = ExtractiveGenerator().generate(
        [{"role": "user", "content": "espresso roast level"}], [chunk(0, "\n".join(lines))]
    )
    assert out.text.startswith("roast.level: medium dark espresso roast. [1]")
    assert len(out.text.split()) < 40


def test_openai_generator_spec_reads_key_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AISEARCH_LOCAL_UPSTREAM_API_KEY", "sk-env")
    gen = make_generator("openai:m@http://127.0.0.1:1")
    assert isinstance(gen, OpenAICompatibleGenerator)
    assert gen._headers() == {"Authorization": "Bearer sk-env"}
    assert "sk-env" not in repr(gen)


def test_question_headings_and_markdown_emphasis() -> None:
    chunks = [
        chunk(0, "# Why is my espresso sour?\n\n**Roast.** A light roast makes espresso sour.")
    ]
    out = ExtractiveGenerator().generate(
        [{"role": "user", "content": "Why is my espresso sour?"}], chunks
    )
    assert out.text == "Roast. A light roast makes espresso sour. [1]"


def test_generation_reads_every_text_part_of_a_message() -> None:
    # generation has always read untyped {"text": ...} parts and bare strings too; search
    # validation reads only {"type": "text"} parts (aisearch_local.text.message_text)
    content = [{"type": "text", "text": "How hot"}, {"text": "for green tea?"}, "please", {"x": 1}]
    assert message_text({"role": "user", "content": content}) == "How hot for green tea? please"
    assert message_text({"role": "user", "content": 7}) == ""
    chunks = [
        chunk(1, "Coffee is brewed at ninety degrees."),
        chunk(2, "Green tea steeps at 80 degrees for two minutes.", "tea.md"),
    ]
    answer = ExtractiveGenerator().generate([{"role": "user", "content": content}], chunks)
    assert answer.text.startswith("Green tea steeps at 80 degrees")
    assert answer.prompt_tokens == 6 + 6 + 9  # words of the question and of both chunks
