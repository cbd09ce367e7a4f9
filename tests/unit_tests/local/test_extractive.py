"""The extractive answerer (aisearch_local.extractive): clean, relevant, cited answers.

Two kinds of test:

* small chunks built here, one per rule (headings, fragments, labels, the relative threshold,
  citations, the section summary, tables, the answer type);
* the 12 questions about the sample corpus in ``tests/data/answer_questions.json``. Each names
  the document that answers it and two distractor documents; the chunks are the sample
  documents cut by the server's own chunker, a distractor first. Every answer must be *clean*
  (:func:`problems`): each sentence is in the chunk it cites, no heading or chunk-boundary
  fragment is emitted, every cited chunk is of the answering document (or one the case allows),
  and the answer contains the sentences the case expects. The same checks but the topic run on
  the answers to the chunks the local search really returns.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aisearch_local.extractive import NO_CONTEXT_ANSWER, NO_MATCH_PREFIX, compose_answer
from aisearch_local.generate import ExtractiveGenerator
from aisearch_local.ingest import chunk_text, extract_text
from aisearch_local.options import resolve_options
from aisearch_local.sample_corpus import CUSTOM_METADATA, iter_sample_documents
from aisearch_local.service import LocalService

CASES: list[dict[str, Any]] = json.loads(
    (Path(__file__).parents[2] / "data" / "answer_questions.json").read_text("utf-8")
)


def chunk(text: str, key: str = "doc.md", seq: int = 0) -> dict[str, Any]:
    return {"id": f"item-{seq}", "text": text, "score": 0.5, "item": {"key": key, "metadata": {}}}


def answer(question: str, chunks: list[dict[str, Any]], sentences: int = 3) -> str:
    return (
        ExtractiveGenerator(sentences)
        .generate([{"role": "user", "content": question}], chunks)
        .text
    )


_MARK = r"(.*?)\s\[(\d+(?:, \d+)*)\]"


def cited(text: str) -> list[tuple[str, int]]:
    """``(sentence, n)`` for every ``sentence [n]`` of an answer (the last of ``[m, n]``)."""
    return [(s.strip(), int(n.split(", ")[-1])) for s, n in re.findall(_MARK, text)]


# ---------------------------------------------------------------------------------- the checks

_WORD = re.compile(r"\w+")


def _norm(text: str) -> str:
    return " ".join(re.sub(r"\*\*|`|^#+\s|^\s*(?:[-*]|\d+\.)\s", " ", text, flags=re.M).split())


def _headings(text: str) -> set[str]:
    """Lines a reader sees as headings: Markdown ones and short lines without punctuation."""
    out = set()
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#"):
            out.add(line.lstrip("#").strip().lower())
        elif (
            line
            and not re.match(r"^(?:[-*|]|\d+\.)", line)
            and not re.search(r"[.!?:;,)]$", line)
            and len(line.split()) <= 8
        ):
            out.add(line.lower())
    return out


def _cut_start(ch: dict[str, Any]) -> str | None:
    """The tail of a sentence a chunk starts with, when the chunker cut it."""
    text = ch["text"].lstrip()
    starts_a_document = not re.search(r"-[1-9]\d*$", ch["id"])
    if starts_a_document and re.match(r"[A-Z0-9#*\"“(-]", text):
        return None
    match = re.match(r"(.+?[.!?])(?:\s|$)", text, flags=re.S)
    return " ".join(match.group(1).split()) if match else None


def problems(text: str, chunks: list[dict[str, Any]]) -> list[str]:
    """What makes an answer not clean (empty: clean)."""
    found = []
    marked = re.findall(_MARK + r"(;?)", text)
    if not marked:
        return [f"no cited sentence in {text!r}"]
    rest = re.sub(_MARK, "", text).strip()
    if rest:
        found.append(f"text after the last citation: {rest!r}")
    continued = False  # the previous group ended "[n];": this one continues its list
    for raw, marks, more in marked:
        sentence = raw.strip()
        numbers = [int(n) for n in marks.split(", ")]
        if not all(1 <= n <= len(chunks) for n in numbers):
            found.append(f"[{marks}] cites no chunk")
            continue
        texts = [chunks[n - 1]["text"] for n in numbers]
        source = " ".join(_norm(t).lower() for t in texts)
        body = sentence.rstrip(".")
        verbatim = _norm(body).lower() in source
        if not verbatim and not set(_WORD.findall(body.lower())) <= set(_WORD.findall(source)):
            found.append(f"not in the chunk it cites [{marks}]: {sentence!r}")
        if any(body.lower() in _headings(t) for t in texts):
            found.append(f"a heading: {sentence!r}")
        if not continued and not re.match(r"[A-Z0-9\"“(]", sentence):
            found.append(f"starts like a fragment: {sentence!r}")
        continued = bool(more)
        for n in numbers:
            cut = _cut_start(chunks[n - 1])
            if cut and body and body in cut:
                found.append(f"the chunk's cut first sentence: {sentence!r}")
        if sentence.endswith("?"):
            found.append(f"a question: {sentence!r}")
        # a sentence ends with its punctuation; only a summary's label group ends with "[n];"
        if not more and not re.search(r"[.!]$", sentence):
            found.append(f"does not end like a sentence: {sentence!r}")
    return found


@cache
def _documents() -> dict[str, str]:
    return {d.key: extract_text(d.key, d.data) for d in iter_sample_documents()}


def chunks_of(key: str) -> list[dict[str, Any]]:
    """A sample document cut by the server's chunker (default size and overlap), local ids."""
    spans = chunk_text(_documents()[key])
    return [
        {"id": f"{key}-{i}", "text": s.text, "score": 0.5, "item": {"key": key, "metadata": {}}}
        for i, s in enumerate(spans)
    ]


def cut_chunks(key: str, *cuts: str) -> list[dict[str, Any]]:
    """A sample document cut where each of ``cuts`` starts (a chunker cutting mid-section)."""
    text = _documents()[key]
    bounds = [0, *(text.index(cut) for cut in cuts), len(text)]
    return [
        {"id": f"{key}-{i}", "text": text[a:b], "score": 0.5, "item": {"key": key, "metadata": {}}}
        for i, (a, b) in enumerate(itertools.pairwise(bounds))
    ]


def case_chunks(case: dict[str, Any]) -> list[dict[str, Any]]:
    """A distractor's first chunk, the answering document, then another distractor."""
    first, second = case["distractors"]
    return chunks_of(first)[:1] + chunks_of(case["key"]) + chunks_of(second)[:2]


# ------------------------------------------------------------------------------ the 12 questions


@pytest.mark.parametrize("case", CASES, ids=[c["question"] for c in CASES])
def test_every_answer_to_the_questions_is_clean(case: dict[str, Any]) -> None:
    chunks = case_chunks(case)
    text = answer(case["question"], chunks)
    assert problems(text, chunks) == [], text
    allowed = {case["key"], *case["also"]}
    keys = {chunks[n - 1]["item"]["key"] for _, n in cited(text)}
    assert keys <= allowed, f"off topic: cites {keys - allowed} in {text!r}"
    for expected in case["expect"]:
        assert expected in text, text


def test_there_are_twelve_questions() -> None:
    assert len(CASES) == 12
    assert all({"question", "key", "distractors", "expect", "also"} <= set(c) for c in CASES)


def _case(question_start: str) -> dict[str, Any]:
    return next(c for c in CASES if c["question"].startswith(question_start))


def test_a_question_about_causes_gets_the_section_that_lists_them() -> None:
    case = _case("What causes a slow drawdown")
    chunks = case_chunks(case)  # chemex, slow drawdown (2 chunks), burr grinders
    text = answer(case["question"], chunks)
    # every "Common causes" label, each group citing the chunk it is in, the section carried
    # from the document's first chunk to its second
    assert text.startswith(
        "Common causes: grind too fine; too many fines; too much agitation; the filter [2]; "
        "stale or very fresh coffee; large doses; light roasts at a fine grind. [3] "
    )
    assert "Slow Drawdown in Pour-Over [" not in text  # the title is no sentence
    assert {n for _, n in cited(text)} == {2, 3}


def test_a_section_is_carried_to_a_later_chunk_of_its_document() -> None:
    # the first chunk ends with the "Causes and fixes" heading, the second (not retrieved) holds
    # items 1 to 6, the third starts with items 7 and 8: they are still causes and fixes, and
    # the heading cites the chunk it is in (a chunking that cuts a section: the server's own
    # starts a chunk at each heading, see test_ingest)
    first, _, third = cut_chunks("troubleshooting/channeling.md", "1. **Clumps", "puck.\n7.")
    chunks = [first, third]
    text = answer("How do I fix channeling in espresso?", chunks)
    assert text.startswith(
        "Causes and fixes: aggressive pressure ramp; static and very fresh coffee. [1, 2] "
    )
    assert problems(text, chunks) == []


def test_the_answer_starts_with_the_sentence_that_answers() -> None:
    case = _case("Why is my espresso sour")
    text = answer(case["question"], case_chunks(case))
    # "sourness" and "sour" are one term; the position of the sentence does not matter
    assert text.startswith(
        "Sourness in espresso is almost always a sign of under-extraction: the water has "
        "dissolved the fast-extracting acids but not enough of the sugars and heavier compounds "
        "that balance them. [2]"
    )
    assert "Why Is My Espresso Sour?" not in text


def test_a_table_row_reads_as_a_sentence_with_its_header() -> None:
    case = _case("How many days should coffee beans rest")
    text = answer(case["question"], case_chunks(case))
    assert cited(text) == [
        (
            "Light roast, filter: rest before brewing 5 to 7 days, best within 5 weeks from roast.",
            2,
        ),
        ("Dark roast: rest before brewing 3 to 5 days, best within 4 weeks.", 2),
        ("Light roast, espresso: rest before brewing 10 to 14 days, best within 6 weeks.", 2),
    ]


def test_how_long_prefers_the_sentence_with_a_duration() -> None:
    case = _case("How long should cold brew steep")
    # the chunk-boundary fragment: the cold brew document's second chunk starts with it
    chunks = case_chunks(case)[:1] + cut_chunks(case["key"], "chocolate and nut flavours")
    text = answer(case["question"], chunks)
    steep = "Steep: 16 hours at room temperature (20 to 22 °C) or 20 to 24 hours in the fridge."
    assert f"{steep} [2]" in text
    assert chunks[2]["text"].startswith("chocolate and nut flavours that suit cold")
    assert "chocolate and nut flavours" not in text


# ---------------------------------------------------------------------- with the local search


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalService, Any]]:
    svc = LocalService(tmp_path_factory.mktemp("answers"), embedder="hashing")
    inst = svc.create_instance("default", {"id": "coffee", "custom_metadata": CUSTOM_METADATA})
    for doc in iter_sample_documents():
        svc.index_document(inst, key=doc.key, data=doc.data, metadata=doc.metadata)
    record = svc.store.get_instance("default", "coffee")
    yield svc, record
    svc.close()


@pytest.mark.parametrize(("k", "context"), [(4, 0), (10, 0), (4, 1)])
def test_answers_to_what_the_local_search_returns_are_clean(
    sample: tuple[LocalService, Any], k: int, context: int
) -> None:
    svc, inst = sample
    retrieval = {"max_num_results": k, "context_expansion": context}
    opts = resolve_options({"retrieval": retrieval}, inst.config)
    for case in CASES:
        chunks = svc.searcher.search(inst, case["question"], opts)
        text = answer(case["question"], chunks)
        assert problems(text, chunks) == [], (case["question"], text)


# ----------------------------------------------------------------------------------- the rules


def test_headings_are_never_sentences() -> None:
    chunks = [
        chunk(
            "# Smoking fish\n\n## Using a smoker\n\nA smoker holds the fish above smouldering "
            "wood chips for about two hours.\n\nUSING A SMOKER SAFELY\nKeep the smoker outside.",
            "fish.md",
        )
    ]
    text = answer("Using a smoker", chunks)
    assert "Using a smoker [" not in text and "USING A SMOKER SAFELY" not in text
    assert sorted(cited(text)) == [
        ("A smoker holds the fish above smouldering wood chips for about two hours.", 1),
        ("Keep the smoker outside.", 1),
    ]


def test_chunk_boundary_fragments_are_dropped() -> None:
    cold = (
        "chocolate and nut flavours that suit cold brew. Cold brew steeps for 16 hours at room "
        "temperature."
    )
    # a lower-case start is a cut sentence, whatever the id
    assert answer("cold brew flavours", [chunk(cold)]) == (
        "Cold brew steeps for 16 hours at room temperature. [1]"
    )
    # a later chunk of a document (id "...-1") starts mid-sentence even with a capital
    later = chunk("Brazil and Colombia suit cold brew. Cold brew is smooth and sweet.", seq=1)
    assert answer("cold brew", [later]) == "Cold brew is smooth and sweet. [1]"
    # the first chunk of a document starts at its start
    first = chunk("Brazil and Colombia suit cold brew. Cold brew is smooth and sweet.", seq=0)
    assert "Brazil and Colombia suit cold brew. [1]" in answer("cold brew", [first])
    # a sentence cut at the chunk's end has no end punctuation
    tail = chunk("Cold brew is smooth and sweet. The cold brew ratio for a concentrate is")
    assert answer("cold brew ratio", [tail]) == "Cold brew is smooth and sweet. [1]"


def test_how_do_i_fix_prefers_the_instruction() -> None:
    text = "Channeling is common. Use a WDT tool to stir the grounds and channeling goes away."
    out = answer("How do I fix channeling?", [chunk(text)])
    assert out.startswith("Use a WDT tool to stir the grounds and channeling goes away. [1]"), out
    # a question that asks for no instruction keeps the plain BM25 order
    out = answer("Is channeling common?", [chunk(text)])
    assert out.startswith("Channeling is common. [1]"), out


def test_a_cross_reference_to_another_page_is_left_out() -> None:
    text = (
        'That shot points to channeling. Fix the puck preparation first (see "Channeling"). '
        "Soak baskets daily (See machine maintenance), and rinse them."
    )
    out = answer("fix channeling baskets", [chunk(text)])
    assert "Fix the puck preparation first. [1]" in out
    assert "Soak baskets daily, and rinse them. [1]" in out
    assert "see" not in out.lower()


def test_labels_stay_with_their_item_and_short_verbless_sentences_go() -> None:
    text = "## Common causes\n\n**Grind too fine.** The most frequent reason. Grind coarser."
    out = answer("grind", [chunk(text)])
    assert "Grind too fine: the most frequent reason. [1]" in out
    assert "The most frequent reason. [" not in out  # never on its own
    assert "Grind coarser. [1]" in out  # a short sentence with a verb is one


def test_relevance_not_position_and_the_relative_threshold() -> None:
    chunks = [
        chunk("Grinders come in many shapes. A burr grinder crushes beans between two burrs."),
        chunk("Descale the kettle monthly. Burr grinders make an even grind for espresso.", "b"),
    ]
    out = answer("How does a burr grinder work?", chunks)
    assert out.startswith("A burr grinder crushes beans between two burrs. [1]")
    assert "Descale" not in out  # shares nothing with the question
    assert "Grinders come in many shapes" not in out  # far below the best sentence


def test_each_sentence_cites_its_own_chunk() -> None:
    chunks = [
        chunk("Espresso is brewed at 9 bar of pressure.", "a.md"),
        chunk("A moka pot brews at about 1.5 bar of pressure.", "b.md"),
    ]
    out = answer("What pressure does a moka pot brew at?", chunks)
    assert cited(out)[0] == ("A moka pot brews at about 1.5 bar of pressure.", 2)
    for sentence, n in cited(out):
        assert sentence.rstrip(".") in chunks[n - 1]["text"]


def test_questions_and_json_keys_are_read_as_structure() -> None:
    text = "title: Iced espresso\nwhy_it_works: Shaking chills the espresso quickly.\nyield: 1"
    assert answer("Why does shaking chill espresso?", [chunk(text)]) == (
        "Shaking chills the espresso quickly. [1]"
    )
    faq = chunk("Is decaf bitter?\n\nDecaf tastes as sweet as regular coffee when fresh.")
    assert answer("Is decaf bitter or sweet?", [faq]) == (
        "Decaf tastes as sweet as regular coffee when fresh. [1]"
    )


def test_setext_headings_json_titles_and_tables_cut_from_their_header() -> None:
    text = (
        "Espresso guide\n==============\n\nEspresso is brewed at nine bar.\n\n"
        "| Light | 7 days |\n| Dark | 3 days |\n\nRoast and espresso rest\n\n"
        "| Roast | Espresso rest |\n|---|---|\n| Light | 14 days | extra |\n| | 3 days |"
    )
    out = answer("espresso guide light dark", [chunk(text)])
    assert out == "Espresso is brewed at nine bar. [1]"  # rows without their header: skipped
    card = "title: Espresso guide\nbody: Espresso is brewed at nine bar."
    assert answer("espresso guide", [chunk(card)]) == "Espresso is brewed at nine bar. [1]"
    # the title is the document's heading: a question on it gets the sentences under it
    assert answer("guide", [chunk(card)]) == "Espresso is brewed at nine bar. [1]"
    assert "title" not in answer("guide", [chunk(card)])


def test_a_section_summary_needs_two_labels_and_lists_at_most_twelve() -> None:
    one = "## Causes\n\nIntro to causes of sourness.\n\n**Grind.** Coarse grinds cause sourness."
    out = answer("What causes sourness?", [chunk(one, "sour.md", seq=1)])
    assert not out.startswith("Causes:")  # one label is no list
    many = "## Causes\n\n" + "\n".join(
        f"- **Cause {i}.** Reason {i} makes it sour." for i in range(15)
    )
    out = answer("What causes sourness?", [chunk(many, "sour.md", seq=1)])
    summary = out.split(" [1]")[0]
    assert summary.startswith("Causes: cause 0; cause 1;") and summary.count(";") == 11


def test_without_usable_text_it_says_so() -> None:
    assert compose_answer("anything", [], 3) == NO_CONTEXT_ANSWER
    only_headings = [chunk("# Espresso\n\n## Grind")]
    assert compose_answer("espresso grind", only_headings, 3) == NO_CONTEXT_ANSWER
    out = compose_answer("zebra", [chunk("# Espresso\n\nEspresso is strong.")], 3)
    assert out == f"{NO_MATCH_PREFIX} Espresso is strong. [1]"


_TEXT = st.text(
    st.characters(codec="utf-8") | st.sampled_from(list("#*-|.?:\n ")),
    max_size=300,
)


@settings(max_examples=200, deadline=None)
@given(question=_TEXT | st.text(max_size=50), texts=st.lists(_TEXT | st.text(), max_size=5))
def test_any_text_gets_an_answer_citing_a_chunk(question: str, texts: list[str]) -> None:
    chunks = [chunk(t, f"k{i}.md", seq=i % 2) for i, t in enumerate(texts)]
    out = compose_answer(question, chunks, 3)
    assert out == compose_answer(question, chunks, 3)  # deterministic
    assert out  # never empty
    for n in re.findall(r"\[(\d+)\]", out):
        if out.startswith((NO_CONTEXT_ANSWER, NO_MATCH_PREFIX)) or any(
            f"[{n}]" in t for t in texts
        ):
            continue
        assert 1 <= int(n) <= len(chunks), out
