"""Text helpers the core and both adapters share.

The "did you mean" of a misspelt name, a caller's text made printable for a message, and the
``[n]`` citation markers of an answer.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterator
from typing import NamedTuple

__all__ = ["CitationMarker", "citation_markers", "closest_names", "printable"]


def closest_names(key: str, known: Collection[str], n: int = 1) -> list[str]:
    """The names of ``known`` a misspelt or foreign ``key`` most likely meant, best first.

    ``difflib``'s closest matches (``instnce_id`` -> ``instance_id``), else a name that a name
    from another library ends with (``top_k``, ``similarity_top_k`` -> ``k``), else a name that
    ends with ``_<key>`` (``k`` -> ``top_k``). At most ``n``; empty when nothing fits.
    """
    names = sorted(known)
    near = difflib.get_close_matches(key, names, n=n)
    near = near or [name for name in names if key.endswith(f"_{name}")][:n]
    return near or [name for name in names if name.endswith(f"_{key}")][:n]


def printable(text: str) -> str:
    r"""``text`` with what UTF-8 cannot encode (a lone surrogate) escaped: ``\ud800``.

    A key or value of the caller's that goes into a message passes here first, so that
    printing, logging or encoding the message never raises ``UnicodeEncodeError``.
    """
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


# ASCII digits, at most 6 each: "[" + 5,000 digits + "]" in an answer must not reach int()
_MARKER_RE = re.compile(r"\[([0-9]{1,6}(?:\s*,\s*[0-9]{1,6})*)\]")


class CitationMarker(NamedTuple):
    """One ``[n]`` (or ``[1, 3]``) marker of an answer: where it is and the numbers it cites."""

    start: int
    end: int
    numbers: tuple[int, ...]


def citation_markers(text: str) -> Iterator[CitationMarker]:
    """The ``[n]`` markers of ``text`` in order (``[1, 3]`` cites two sources, 1-based)."""
    for match in _MARKER_RE.finditer(text):
        numbers = tuple(int(raw) for raw in match.group(1).split(","))
        yield CitationMarker(match.start(), match.end(), numbers)
