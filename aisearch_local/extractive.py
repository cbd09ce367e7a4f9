"""The extractive answerer: sentences chosen by relevance to the question, each citing its chunk.

:func:`compose_answer` reads the retrieved chunks as documents, not as bags of sentences:

1. **Structure.** Each chunk is read line by line. Markdown headings (``#``), setext
   underlines, short lines without end punctuation ("Using a smoker", ``KENYA NYERI``, an HTML
   ``<h2>`` turned into a line) and standalone questions are *headings*: they are never
   emitted, but they give the sentences under them their section. List markers and JSON keys
   are removed; a bold list label (``**Grind too fine.** The most frequent reason.``) stays
   with the first sentence of its item, never on its own.
2. **Fragments.** A chunk that starts mid-document (the local server's chunk ids end in
   ``-N``, ``N > 0``) or with a lower-case letter or punctuation begins with the tail of a
   sentence cut by the chunker: that piece is dropped, and so is a last piece without end
   punctuation (a sentence cut at the chunk's end). A cross-reference in parentheses ("(see
   "Channeling")") is removed: the answer's reader has no such page. Short sentences with no
   verb ("The most frequent reason.") are dropped unless a label carries them. Questions are
   never answers.
3. **Relevance.** Every remaining sentence is scored by BM25 (stemmed content terms, see
   :func:`content_terms`) against the question, plus half the weight of question terms found
   only in its section heading and a quarter of those found only in the document's title or
   file name; then weighted by how much of the question it, its section and its document
   cover, by whether its document's title names the question's subject, by its document's
   coverage of the question (squared), by 1.5 when it holds what the question asks for (a
   duration for "how long", a temperature, an instruction for "how do I fix", ...), and
   divided by ``1 + 0.1 * rank`` of its chunk. A sentence needs a question term in its own
   text or its section heading. Sentences under half the best score are dropped. A sentence
   leaning back on the one before ("Try it if ...") is written with it.
4. **Document structure.** When the question names a section ("What *causes* ...") whose items
   carry bold labels ("Common causes"), the answer starts with the section heading and its
   labels ("Common causes: grind too fine; too many fines; ..."), each group of labels citing
   the chunk it is in. A later chunk of a document starts in the section the nearest earlier
   retrieved chunk of it ended in; when the heading is in that chunk, the first group cites
   both (``[1, 2]``).
5. **Citations.** Each sentence is followed by `` [n]``, ``n`` the 1-based number of its own
   chunk. Deterministic: ties go to the better-ranked chunk, then the earlier sentence.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aisearch_local.text import TOKEN, bm25_idf, bm25_tf
from aisearch_local.text import content_terms as _content_terms

__all__ = [
    "NO_CONTEXT_ANSWER",
    "NO_MATCH_PREFIX",
    "RELATIVE_THRESHOLD",
    "Unit",
    "compose_answer",
    "read_chunk",
]

NO_CONTEXT_ANSWER = (
    "I could not find any indexed content that matches your question, so I cannot answer it "
    "from this AI Search instance."
)
NO_MATCH_PREFIX = (
    "None of the retrieved passages shares a word with the question; the closest one says:"
)
RELATIVE_THRESHOLD = 0.5
SUMMARY_THRESHOLD = 0.25
HEADING_WEIGHT = 0.5
TITLE_WEIGHT = 0.25
TITLE_BONUS = 1.0
RANK_DECAY = 0.1
_K1, _B = 1.2, 0.5

_MD_HEADING = re.compile(r"^#{1,6}\s+(.*?)[\s#]*$")
_SETEXT = re.compile(r"^(?:=+|-{2,})$")
_LIST_MARKER = re.compile(r"^(?:[-*+•]|\d{1,3}[.)])\s+")
_BOLD_LABEL = re.compile(r"^\*\*(?P<label>[^*\n]{1,80}?)\*\*\s*(?P<rest>.*)$")
_JSON_KEY = re.compile(
    r"^(?P<key>[a-z_][a-z0-9_]*(?:\[\d+\])?(?:\.[a-z_][a-z0-9_]*)*):\s+(?P<v>.*)$"
)
_TITLE_KEYS = frozenset({"title", "name", "heading"})
_TERMINAL = re.compile(r"[.!?…][\"'”’)\]]*$")
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?…])[\"'”’)\]]*,?\s+(?=[\"'“‘(\[]?[A-Z0-9])")
_TABLE_RULE = re.compile(r"^:?-{1,}:?$")
_EMPHASIS = re.compile(r"\*\*|__|`")
# "(see "Channeling")", "(see machine maintenance)": a pointer to a page the reader of an answer
# does not have
_CROSS_REFERENCE = re.compile(r"\s*\((?:see|cf\.?)\s[^()]{1,80}\)", re.IGNORECASE)
_CHUNK_SEQ = re.compile(r"-(\d+)$")
_MAX_HEADING_WORDS = 15
_MAX_SUMMARY_LABELS = 12
_SHORT_SENTENCE_WORDS = 4
# Auxiliaries and common verbs: a short sentence needs one of these (or a past/3rd-person form)
# to be a sentence rather than a label ("The most frequent reason.").
_VERBS = frozenset(
    """
    is are was were be been being am has have had do does did can could should would will
    shall may might must need needs let lets use add make take keep give go get put set stop
    start try avoid check grind pour stir brew wait rinse tamp steam serve heat cool store
    buy taste drink drain press fill shake mix clean turn see look run pull weigh measure
    """.split()  # noqa: SIM905 (a word list reads better as text)
)


@dataclass
class Unit:
    """One sentence (or labelled item) that may be emitted, with its context.

    Attributes:
        chunk: 0-based index of its chunk (the citation is ``chunk + 1``).
        order: Its position in the chunk.
        text: The text emitted.
        terms: Its stemmed content terms.
        heading: The stemmed terms of its section heading.
        title: The stemmed terms of its document's title and file name.
        section: ``(chunk, section number)`` of its section, for the section summary.
        label: The bold label it starts with, if any.
    """

    chunk: int
    order: int
    text: str
    terms: Counter[str]
    heading: frozenset[str]
    title: frozenset[str]
    section: tuple[int, int]
    label: str | None = None
    heading_text: str = ""
    heading_chunk: int = -1


@dataclass
class _Section:
    heading: str = ""
    number: int = 0
    origin: int = -1  # the chunk the heading line is in


@dataclass
class _Reader:
    """Reads one chunk into :class:`Unit` s, keeping the heading it is under."""

    chunk: int
    title: frozenset[str]
    section: _Section
    units: list[Unit] = field(default_factory=list)
    headings: dict[int, str] = field(default_factory=dict)

    def heading_line(self, text: str) -> None:
        self.section = _Section(text, self.section.number + 1, self.chunk)

    def extend(self, text: str) -> None:
        last = self.units[-1]
        last.text = f"{last.text} {text.strip()}"
        last.terms.update(content_terms(text))

    def add(self, text: str, label: str | None = None) -> None:
        text = text.strip().rstrip(",;").strip()
        heading = frozenset(content_terms(self.section.heading))
        self.headings[self.section.number] = self.section.heading
        self.units.append(
            Unit(
                chunk=self.chunk,
                order=len(self.units),
                text=text,
                terms=Counter(content_terms(text)),
                heading=heading,
                title=self.title,
                section=(self.chunk, self.section.number),
                label=label,
                heading_text=self.section.heading,
                heading_chunk=self.section.origin,
            )
        )


_QUESTION_FRAME = re.compile(r"\bhow\s+(?:long|many|much|often|far)\b", re.IGNORECASE)
_GENERIC_WORDS = re.compile(
    r"\b(?:use|using|make|way|ways|thing|things|good|many|much|differ|differs|different|"
    r"difference|differences|compare|compared|versus|vs)\b",
    re.IGNORECASE,
)
_NAME = re.compile(r"(?<!^)(?<![.?!]\s)\b(?:[A-Z][\w-]*|\w*\d\w*)")
_DURATION = re.compile(
    r"\d\s*(?:hours?|hrs?|minutes?|mins?|seconds?|secs?|days?|weeks?|months?|years?|h|s)\b"
    r"|\b\d{1,2}:\d{2}\b",
    re.IGNORECASE,
)
# verbs an instruction starts with (after an item's label, if any)
_INSTRUCTIONS = """
    use stir tamp add try grind keep clean rinse pour let make check replace remove switch lower
    raise reduce increase wait swap set adjust dial move level distribute tap press descale flush
    purge store rest
    """.split()  # noqa: SIM905 (a word list reads better as text)
_ANSWER_TYPES = (
    (
        re.compile(r"\bhow\s+(?:long|many\s+(?:days|weeks|hours|minutes|seconds))\b", re.I),
        _DURATION,
    ),
    (
        re.compile(r"\bhow\s+often\b", re.I),
        re.compile(r"\b(?:daily|weekly|monthly|yearly|every|once|twice|each|per)\b", re.I),
    ),
    (re.compile(r"\btemperature\b|\bhow\s+hot\b", re.I), re.compile(r"°|\bdegrees?\b|\d\s?C\b")),
    (re.compile(r"\bhow\s+(?:much|many)\b", re.I), re.compile(r"\d")),
    # "how do I fix ...": an instruction ("Use a WDT tool ...", "Static coffee: add a drop ...")
    (
        re.compile(
            r"\bhow\s+(?:do|can|should)\s+(?:i|you|we)\s+(?:fix|solve|prevent|avoid|stop|cure)\b",
            re.I,
        ),
        re.compile(
            r"^(?:[^:]{1,60}:\s)?(?:do\s+not|don't|" + "|".join(_INSTRUCTIONS) + r")\b", re.I
        ),
    ),
)
ANSWER_TYPE_BOOST = 1.5
_ANAPHORA = frozenset({"it", "they", "them", "this", "these", "those", "he", "she"})
ANAPHORA_PENALTY = 0.75
_SUFFIXES = (("ness", ""), ("ity", ""), ("ation", ""), ("ment", ""))


def content_terms(text: str) -> list[str]:
    """:func:`aisearch_local.text.content_terms`, stemmed a little further.

    Nouns made of adjectives and verbs are reduced too (sourness -> sour, acidity -> acid,
    extraction -> extract), and a final ``e`` goes (descale -> descal, as descaling).
    """
    out = []
    for term in _content_terms(text):
        for suffix, keep in _SUFFIXES:
            if term.endswith(suffix) and len(term) - len(suffix) >= 4:
                term = term[: len(term) - len(suffix)] + keep
                break
        if term.endswith("e") and len(term) >= 5 and not term.endswith("ee"):
            term = term[:-1]  # descale -> descal, as descaling -> descal
        out.append(term)
    return out


def _leans_back(sentence: str) -> bool:
    """Whether a pronoun in its first three words refers to an earlier sentence."""
    return bool(_ANAPHORA & {w.lower() for w in TOKEN.findall(sentence)[:3]})


def _words(text: str) -> int:
    return len(TOKEN.findall(text))


def _is_sentence(text: str) -> bool:
    """Ends like a sentence, is not a question, and is no verbless label."""
    if not _TERMINAL.search(text) or text.rstrip("\"'”’)]").endswith("?"):
        return False
    words = TOKEN.findall(text.lower())
    if len(words) < 2:
        return False
    if len(words) <= _SHORT_SENTENCE_WORDS:
        return any(w in _VERBS or w.endswith("ed") for w in words)
    return True


def _looks_like_heading(line: str) -> bool:
    """A line that names a section: short, without end punctuation, or a lone question."""
    if _words(line) > _MAX_HEADING_WORDS:
        return False
    if not _TERMINAL.search(line) and not line.endswith((":", ";", ",")):
        return len(_split(line)) == 1  # "Cold brew is sweet. The ratio is" was cut, not a title
    return line.endswith("?") and len(_SENTENCE_SPLIT.split(line)) == 1


def _split(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_SPLIT.split(text) if s.strip()]


def _lines(text: str) -> list[str]:
    """The chunk's lines, blank ones kept, hard-wrapped prose joined back into one line."""
    out: list[str] = []
    for raw in text.splitlines():
        line = " ".join(raw.split())
        prev = out[-1] if out else ""
        if (
            line
            and prev
            and len(prev) >= 60
            and not _TERMINAL.search(prev)
            and not _MD_HEADING.match(line)
            and not _LIST_MARKER.match(line)
            and not _SETEXT.match(line)
            and line[:1].islower()
        ):
            out[-1] = f"{prev} {line}"
        else:
            out.append(line)
    return out


def _continues(chunk: dict[str, Any]) -> bool:
    """Whether the chunk is not the first of its document (local ids end in ``-seq``)."""
    match = _CHUNK_SEQ.search(str(chunk.get("id") or ""))
    return match is not None and int(match.group(1)) > 0


def _title_terms(chunk: dict[str, Any], text: str) -> frozenset[str]:
    key = str((chunk.get("item") or {}).get("key") or "")
    name = key.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    title = ""
    if not _continues(chunk) and (_MD_HEADING.match(first.strip()) or _looks_like_heading(first)):
        title = first
    return frozenset(content_terms(f"{name.replace('-', ' ').replace('_', ' ')} {title}"))


def read_chunk(
    index: int, chunk: dict[str, Any], section: tuple[str, int, int] | None = None
) -> tuple[list[Unit], tuple[str, int, int], dict[int, str]]:
    """Read one chunk.

    Args:
        index: The chunk's 0-based position in the retrieved list.
        chunk: The API-shaped chunk.
        section: The section an earlier retrieved chunk of the same document ended in
            (``(heading, number, chunk index of the heading)``).

    Returns:
        The units, the section the chunk ends in, and its section headings by number.
    """
    text = str(chunk.get("text") or "")
    title = _title_terms(chunk, text)
    start = _Section(*section) if section else _Section()
    reader = _Reader(index, title, start)
    lines = _lines(text)
    nonblank = [i for i, ln in enumerate(lines) if ln]
    first_i = nonblank[0] if nonblank else -1
    header: list[str] | None = None
    pending: list[str] | None = None
    for i, line in enumerate(lines):
        if not line:
            continue
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if all(_TABLE_RULE.match(c) for c in cells):
                header, pending = pending, None
            elif header is not None:
                row = _row_text(header, cells)
                if row:
                    reader.add(row)
            else:
                pending = cells  # the header, if a rule follows; else a row cut from its header
            continue
        header = pending = None
        md = _MD_HEADING.match(line)
        if md:
            reader.heading_line(_EMPHASIS.sub("", md.group(1)))
            continue
        if _SETEXT.match(line):
            continue  # the line above it was already read as a heading (no end punctuation)
        item = _LIST_MARKER.match(line)
        body = line[item.end() :] if item else line
        if (
            i == first_i
            and not item
            and (_continues(chunk) or not (_starts_sentence(body) or _JSON_KEY.match(body)))
        ):
            # the chunker cut this sentence: drop its tail, keep what follows
            body = " ".join(_split(body)[1:])
            if not body:
                continue
        key = _JSON_KEY.match(body)
        if key:
            if key.group("key") in _TITLE_KEYS:
                reader.heading_line(key.group("v"))
                continue
            if not _TERMINAL.search(body):
                if _words(body) >= 3:
                    reader.add(f"{body}.")  # a JSON field: "roast.level: medium dark roast."
                continue
            body = key.group("v")
        label_match = _BOLD_LABEL.match(body)
        label = None
        if label_match and not _starts_sentence(label_match.group("rest").lstrip(".:) ")):
            label_match = None  # "**Store at room temperature**, away from ...": emphasis only
        if label_match:
            label = label_match.group("label").strip().rstrip(".:").strip()
            body = label_match.group("rest").lstrip(".:) ").strip()
        body = _CROSS_REFERENCE.sub("", _EMPHASIS.sub("", body)).strip()
        if not item and not label and not key and _looks_like_heading(body):
            reader.heading_line(body)
            continue
        if item and not label and not _TERMINAL.search(body):
            # a list item ("Coffee: 15 g, medium-fine") is a fact (chunks end at line breaks)
            if _words(body) >= 3:
                reader.add(f"{body}.")
            continue
        pieces = _split(body)
        first = True
        line_start = len(reader.units)
        for piece in pieces:
            if label and first:
                first = False
                carried = (
                    f"{label}: {piece[:1].lower()}{piece[1:]}"
                    if _lower_ok(piece)
                    else (f"{label}. {piece}")
                )
                if _TERMINAL.search(piece) and not piece.endswith("?"):
                    reader.add(carried, label)
                continue
            first = False
            if not _is_sentence(piece):
                continue
            if len(reader.units) > line_start and _leans_back(piece):
                reader.extend(piece)  # "Try it if ..." goes with the sentence it refers to
            else:
                reader.add(piece)
    end = (reader.section.heading, reader.section.number, reader.section.origin)
    return reader.units, end, reader.headings


def _row_text(header: list[str], cells: list[str]) -> str | None:
    """A table row as a sentence: ``Dark roast: rest before brewing 3 to 5 days, ...``."""
    if len(cells) != len(header) or len(cells) < 2 or not cells[0]:
        return None
    parts = [
        f"{_lower_first(h)} {c}".strip() for h, c in zip(header[1:], cells[1:], strict=True) if c
    ]
    if not parts:
        return None
    return f"{_EMPHASIS.sub('', cells[0])}: {', '.join(parts)}."


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if _lower_ok(text) else text


def _starts_sentence(text: str) -> bool:
    return text[:1].isupper() or text[:1].isdigit() or text[:1] in "\"'“‘(*"


def _lower_ok(piece: str) -> bool:
    """Whether the first word may be lower-cased after a label (not an acronym or a name)."""
    word = piece.split(" ", 1)[0]
    return len(word) > 1 and word[:1].isupper() and word[1:].islower() and word not in ("I",)


def _bm25(units: Sequence[Unit], question: frozenset[str]) -> dict[str, float]:
    n = len(units)
    df = Counter(t for u in units for t in set(u.terms) & question)
    return {t: bm25_idf(n, df[t]) for t in question}


def _score(
    unit: Unit,
    question: frozenset[str],
    idf: dict[str, float],
    avg: float,
    wanted: re.Pattern[str] | None = None,
) -> float:
    length = sum(unit.terms.values()) or 1
    own = 0.0
    for t in question & set(unit.terms):
        tf = unit.terms[t]
        own += idf[t] * bm25_tf(tf, length, avg, _K1, _B)
    heading = sum(idf[t] for t in (question & unit.heading) - set(unit.terms))
    title = sum(idf[t] for t in (question & unit.title) - set(unit.terms) - unit.heading)
    if own == 0 and not heading:
        return 0.0
    total = own + HEADING_WEIGHT * heading + TITLE_WEIGHT * title
    # how much of the question the sentence, its section and its document cover together
    weight = sum(idf.values()) or 1.0
    covered = question & (set(unit.terms) | unit.heading | unit.title)
    total *= sum(idf[t] for t in covered) / weight
    # a sentence of a document about the question's subject (its title names it) is on topic
    total *= 1.0 + TITLE_BONUS * sum(idf[t] for t in question & unit.title) / weight
    if wanted is not None and (wanted.search(unit.text) or wanted.search(unit.heading_text)):
        total *= ANSWER_TYPE_BOOST
    if _leans_back(unit.text):
        total *= ANAPHORA_PENALTY  # "Try it if ..." needs a sentence this chunk does not have
    return total / (1 + RANK_DECAY * unit.chunk)


def _named_terms(question: str) -> frozenset[str]:
    """Terms of the names in a question (capitalised or with digits: AeroPress, V60)."""
    return frozenset(t for word in _NAME.findall(question.strip()) for t in content_terms(word))


def _document_coverage(
    chunks: Sequence[dict[str, Any]], question: frozenset[str], names: frozenset[str]
) -> list[float]:
    """Per chunk: how much of the question its document's retrieved text covers.

    Each term is weighted by how few of the documents hold it (a question's rare word names
    its topic), twice for a name the question mentions.
    """
    keys = [str((c.get("item") or {}).get("key") or f"#{i}") for i, c in enumerate(chunks)]
    terms: dict[str, set[str]] = {}
    for key, chunk in zip(keys, chunks, strict=True):
        name = key.rsplit("/", 1)[-1].rsplit(".", 1)[0].replace("-", " ").replace("_", " ")
        found = set(content_terms(f"{name} {chunk.get('text') or ''}")) & question
        terms.setdefault(key, set()).update(found)
    n = len(terms)
    df = Counter(t for found in terms.values() for t in found)
    idf = {t: bm25_idf(n, df[t]) * (2.0 if t in names else 1.0) for t in question}
    total = sum(idf.values()) or 1.0
    return [sum(idf[t] for t in terms[key]) / total for key in keys]


def answer_type(question: str) -> re.Pattern[str] | None:
    """What an answer to ``question`` contains, when its form says.

    A duration ("how long"), a frequency ("how often"), a temperature, a number ("how many"),
    an instruction ("how do I fix": a sentence starting with a verb such as "Use" or "Stir").
    """
    for asks, answer in _ANSWER_TYPES:
        if asks.search(question):
            return answer
    return None


def _read_all(chunks: Sequence[dict[str, Any]]) -> tuple[list[Unit], dict[tuple[int, int], str]]:
    """All units, reading consecutive chunks of one document with their section carried over."""
    seqs: dict[tuple[str, int], int] = {}
    for ci, chunk in enumerate(chunks):
        match = _CHUNK_SEQ.search(str(chunk.get("id") or ""))
        key = str((chunk.get("item") or {}).get("key") or "")
        if match and key:
            seqs.setdefault((key, int(match.group(1))), ci)
    ends: dict[int, tuple[str, int, int]] = {}
    units: list[Unit] = []
    headings: dict[tuple[int, int], str] = {}
    order = sorted(
        range(len(chunks)),
        key=lambda ci: _sequence_position(chunks[ci], ci),
    )
    for ci in order:
        chunk = chunks[ci]
        carried = None
        match = _CHUNK_SEQ.search(str(chunk.get("id") or ""))
        key = str((chunk.get("item") or {}).get("key") or "")
        if match and key:
            # the nearest earlier chunk of the document that was retrieved: a chunk starts in
            # the section that one ends in, or in a later one that began in between
            seq = int(match.group(1))
            earlier = [(s, ci) for (k, s), ci in seqs.items() if k == key and s < seq]
            if earlier and max(earlier)[1] in ends:
                carried = ends[max(earlier)[1]]
        found, end, names = read_chunk(ci, chunk, carried)
        ends[ci] = end
        units.extend(found)
        headings.update({(ci, number): name for number, name in names.items()})
    units.sort(key=lambda u: (u.chunk, u.order))
    return units, headings


def _sequence_position(chunk: dict[str, Any], ci: int) -> tuple[str, int, int]:
    """Sort key reading a document's chunks in order (the previous one's sections first)."""
    match = _CHUNK_SEQ.search(str(chunk.get("id") or ""))
    key = str((chunk.get("item") or {}).get("key") or "")
    return (key, int(match.group(1)) if match else 0, ci)


def _summary(
    section_units: list[Unit], heading: str, seen_labels: set[str], heading_chunk: int
) -> str | None:
    """``Heading: label; label [n]; label [m].`` for a section's labelled items.

    When the heading is in an earlier chunk than the labels' first group, that group cites
    both (``Heading: label; label [h, n].``).
    """
    groups: list[tuple[int, list[str]]] = []
    for unit in section_units:
        if unit.label is None or unit.label.lower() in seen_labels:
            continue
        if sum(len(g) for _, g in groups) >= _MAX_SUMMARY_LABELS:
            break
        seen_labels.add(unit.label.lower())
        label = unit.label
        if _lower_ok(label):
            label = label[:1].lower() + label[1:]
        if groups and groups[-1][0] == unit.chunk:
            groups[-1][1].append(label)
        else:
            groups.append((unit.chunk, [label]))
    if sum(len(g) for _, g in groups) < 2:
        return None
    marks = [str(ci + 1) for ci, _ in groups]
    if heading_chunk >= 0 and heading_chunk != groups[0][0]:
        # the heading is in an earlier chunk of the document: the first group cites both
        marks[0] = ", ".join(str(n + 1) for n in sorted({heading_chunk, groups[0][0]}))
    body = "; ".join(f"{'; '.join(g)} [{m}]" for (_, g), m in zip(groups, marks, strict=True))
    cut = body.rfind(" [")
    return f"{heading.rstrip(':')}: {body[:cut]}.{body[cut:]}"


def compose_answer(question: str, chunks: Sequence[dict[str, Any]], budget: int) -> str:
    """The extractive answer to ``question`` from ``chunks`` (before ``max_tokens``/``stop``).

    Args:
        question: The last user message.
        chunks: API-shaped chunks in rank order.
        budget: How many sentences (a section summary counts as one).

    Returns:
        The answer, every sentence followed by ``[n]``; :data:`NO_CONTEXT_ANSWER` without usable
        text; :data:`NO_MATCH_PREFIX` and the best-ranked chunk's first sentence when nothing
        shares a word with the question.
    """
    if not chunks:
        return NO_CONTEXT_ANSWER
    units, headings = _read_all(chunks)
    if not units:
        return NO_CONTEXT_ANSWER
    asked = _GENERIC_WORDS.sub(" ", _QUESTION_FRAME.sub(" ", question))
    q = frozenset(content_terms(asked))
    names = _named_terms(asked)
    idf = _bm25(units, q)
    avg = sum(sum(u.terms.values()) for u in units) / len(units) or 1.0
    wanted = answer_type(question)
    topical = _document_coverage(chunks, q, names)
    scored = [(_score(u, q, idf, avg, wanted) * topical[u.chunk] ** 2, u) for u in units]
    best = max(s for s, _ in scored)
    if best <= 0:
        first = min(units, key=lambda u: (u.chunk, u.order))
        return f"{NO_MATCH_PREFIX} {first.text} [{first.chunk + 1}]"
    kept = [(s, u) for s, u in scored if s >= RELATIVE_THRESHOLD * best]
    kept.sort(key=lambda su: (-su[0], su[1].chunk, su[1].order))
    picked: list[str] = []
    seen_labels: set[str] = set()
    done: set[tuple[frozenset[str], str]] = set()
    ranked = sorted(scored, key=lambda su: (-su[0], su[1].chunk, su[1].order))
    for score, unit in ranked:
        # the question names this section ("causes" -> "Common causes"): its labels first
        heading = headings.get(unit.section, "")
        section = (unit.title, heading.lower())
        if score < SUMMARY_THRESHOLD * best:
            break
        if len(picked) >= budget or not unit.label or section in done:
            continue
        if not (q & unit.heading) - unit.title:
            continue
        done.add(section)
        same = [u for u in units if (u.title, headings.get(u.section, "").lower()) == section]
        summary = _summary(same, heading, seen_labels, unit.heading_chunk)
        if summary:
            picked.append(summary)
    seen: set[str] = set()
    for _, unit in kept:
        if len(picked) >= budget:
            break
        if unit.text.lower() in seen:
            continue
        seen.add(unit.text.lower())
        picked.append(f"{unit.text} [{unit.chunk + 1}]")
    return " ".join(picked)
