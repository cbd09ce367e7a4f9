r"""Text helpers shared by retrieval, embedding and generation: stop words, message text, stems.

One stop-word vocabulary, in named subsets (:data:`FUNCTION_WORDS` is the part all three share).
The subsets differ on purpose, and each is pinned by behaviour that must not move:

* :data:`KEYWORD_STOPWORDS` (49 words) - dropped from the FTS5 query of keyword retrieval. It is
  small so that an ``and`` match keeps every word a user may mean (``not``, ``have``, ``they``),
  and it holds the contraction tails that ``\w+`` splits off (``what's`` -> ``what``, ``s``).
* :data:`EMBED_STOPWORDS` (68 words) - skipped by the hashing embedder. Changing it changes every
  stored vector of an instance indexed with ``hashing`` (the embedder name stored with the
  instance would no longer describe its vectors), so it is frozen.
* :data:`ANSWER_STOPWORDS` (137 words) - everything that is not a content word of a question:
  the extractive generator, the local query rewrite and the local reranker compare content
  terms, so it adds request verbs (``tell``, ``please``, ``explain``) and pronouns. It keeps
  ``us`` as a term, as it always has.

Nothing here imports the rest of the package.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

__all__ = [
    "ANSWER_STOPWORDS",
    "EMBED_STOPWORDS",
    "FUNCTION_WORDS",
    "KEYWORD_STOPWORDS",
    "TOKEN",
    "bm25_idf",
    "bm25_tf",
    "content_terms",
    "message_text",
    "rewrite_query",
    "stem_word",
]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


FUNCTION_WORDS = _words(
    """
    a an and are as at be by can do does for from how i in is it me my of on or so that the
    their this to was we what when where which who why will with you your
    """
)
"""The 41 function words every subset drops."""

KEYWORD_STOPWORDS = FUNCTION_WORDS | _words("should s t d ll re ve m")
"""Dropped from keyword (FTS5) queries: function words and contraction tails."""

EMBED_STOPWORDS = FUNCTION_WORDS | _words(
    """
    been but could did had has have he her his if into its no not our she than them then there
    these they those us were would
    """
)
"""Skipped by the hashing embedder (frozen: stored vectors depend on it)."""

ANSWER_STOPWORDS = (EMBED_STOPWORDS - {"us"}) | _words(
    """
    should about above after again against all also am any because before being below between
    both doing down during each few further having here hers herself him himself itself just
    more most myself nor now off once only other ours ourselves out over own same some such
    through too under until up very while whom yours yourself yourselves
    tell please explain describe give show know want need get
    """
)
"""Not content words of a question (generation, query rewrite, reranking)."""

TOKEN = re.compile(r"\w+", re.UNICODE)


def message_text(content: Any, *, lenient: bool = False) -> str:
    """Return the text of a message content: a string, null, or a list of ``text`` parts.

    Strict (search, validation): a list keeps its ``{"type": "text", "text": ...}`` parts,
    joined by spaces; anything else in it (images, bare values) has no text. Lenient
    (generation and the query rewrite, as they always read it): any part with a string
    ``text`` and bare string parts count too, and content of another type has no text.
    """
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            p if isinstance(p, str) else str(p.get("text", ""))
            for p in content
            if (isinstance(p, dict) and p.get("type") == "text")
            or (
                lenient
                and (isinstance(p, str) or (isinstance(p, dict) and isinstance(p.get("text"), str)))
            )
        ]
        return " ".join(parts)
    return "" if lenient else str(content)


def stem_word(word: str) -> str:
    """A tiny suffix stripper ("stemming-lite"): brewing/brewed/brews -> brew."""
    for suffix, keep in (
        ("ational", "ate"),
        ("ization", "ize"),
        ("iveness", "ive"),
        ("fulness", "ful"),
        ("ousness", "ous"),
        ("ies", "y"),
        ("ied", "y"),
        ("ing", ""),
        ("edly", ""),
        ("ed", ""),
        ("ly", ""),
        ("es", ""),
        ("s", ""),
    ):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word.endswith("ss"):
                return word
            stem = word[: len(word) - len(suffix)] + keep
            if suffix in ("ing", "ed") and len(stem) > 3 and stem[-1] == stem[-2]:
                stem = stem[:-1]  # stopped -> stop, running -> run
            return stem
    return word


def content_terms(text: str) -> list[str]:
    """Content terms: lower-cased words minus stop words, stemmed."""
    return [stem_word(w) for w in TOKEN.findall(text.lower()) if w not in ANSWER_STOPWORDS]


def bm25_idf(n: int, df: int) -> float:
    """BM25's inverse document frequency, never negative: ``ln(1 + (n - df + 0.5) / (df + 0.5))``.

    Args:
        n: How many documents (sentences, chunks...) there are.
        df: How many of them hold the term.
    """
    return math.log(1.0 + (n - df + 0.5) / (df + 0.5))


def bm25_tf(tf: int, length: float, avg: float, k1: float, b: float) -> float:
    """BM25's saturated term frequency: ``tf (k1 + 1) / (tf + k1 (1 - b + b length / avg))``.

    Args:
        tf: The term's count in the document.
        length: The document's length (in terms).
        avg: The average length.
        k1: Saturation (1.2 is usual).
        b: Length normalisation (0 to 1).
    """
    return tf * (k1 + 1.0) / (tf + k1 * (1.0 - b + b * length / avg))


# -- query rewrite (local approximation) ------------------------------------------------------

_FOLLOW_UP_WORDS = _words(
    """
    it its it's they them their theirs this that these those he him his she her hers one ones
    there same such former latter above
    """
)
_FOLLOW_UP_START = re.compile(
    r"^\s*(and|also|what about|how about|and what|why|then|so|or|but|ok|okay)\b", re.IGNORECASE
)


def rewrite_query(messages: list[dict[str, Any]]) -> str:
    """Rewrite a conversation into a standalone search query (a local approximation).

    The real service asks an LLM to rewrite follow-ups using the history. Locally:

    1. The query is the last user message (stripped); with a single user message it is used as
       is (like the real service, which sends the first message unchanged).
    2. The last message is a *follow-up* when it contains a pronoun or demonstrative (``it``,
       ``they``, ``this``, ``those`` ...), starts with ``and``/``what about``/``how about``..., or
       has at most 3 content words.
    3. For a follow-up, up to 6 salient terms from earlier user turns (newest turn first, words
       of 3+ letters that are not stop words, preferring capitalised words and ones repeated
       across turns, not already in the last message) are appended.

    Args:
        messages: OpenAI-style messages.

    Returns:
        The search query ("" when there is no user text).
    """
    users = [
        message_text(m.get("content"), lenient=True).strip()
        for m in messages
        if m.get("role") == "user"
    ]
    users = [u for u in users if u]
    if not users:
        others = [
            message_text(m.get("content"), lenient=True).strip()
            for m in messages
            if message_text(m.get("content"), lenient=True).strip()
        ]
        return others[-1] if others else ""
    last = users[-1]
    if len(users) == 1:
        return last
    last_words = {w.lower() for w in TOKEN.findall(last)}
    content = [w for w in last_words if w not in ANSWER_STOPWORDS]
    follow_up = (
        bool(last_words & _FOLLOW_UP_WORDS)
        or bool(_FOLLOW_UP_START.match(last))
        or len(content) <= 3
    )
    if not follow_up:
        return last
    last_stems = {stem_word(w) for w in content}
    counts: Counter[str] = Counter()
    for turn in users[:-1]:
        counts.update({stem_word(w.lower()) for w in TOKEN.findall(turn)})
    candidates: list[tuple[float, int, str]] = []
    seen: set[str] = set()
    order = 0
    for age, turn in enumerate(reversed(users[:-1])):
        for word in TOKEN.findall(turn):
            low = word.lower()
            stem = stem_word(low)
            if (
                len(low) < 3
                or low in ANSWER_STOPWORDS
                or low in _FOLLOW_UP_WORDS
                or low.isdigit()
                or stem in last_stems
                or stem in seen
            ):
                continue
            seen.add(stem)
            salience = (
                1.0 / (1 + age) + (0.5 if word[:1].isupper() else 0.0) + 0.3 * (counts[stem] - 1)
            )
            candidates.append((salience, order, word))
            order += 1
    best = sorted(candidates, key=lambda c: (-c[0], c[1]))[:6]
    extra = [w for _, _, w in sorted(best, key=lambda c: c[1])]
    return f"{last} {' '.join(extra)}".strip() if extra else last
