"""The shared text helpers: the "did you mean" and the ``[n]`` citation markers."""

from __future__ import annotations

import pytest

from aisearch._names import CitationMarker, citation_markers, closest_names


@pytest.mark.parametrize(
    ("key", "known", "expected"),
    [
        ("instnce_id", {"instance_id", "namespace"}, ["instance_id"]),  # difflib
        ("similarity_top_k", {"k", "filters"}, ["k"]),  # a foreign name ending in _k
        ("k", {"top_k", "filters"}, ["top_k"]),  # a name ending in _k
        ("zzz", {"k", "filters"}, []),
    ],
)
def test_closest_names(key: str, known: set[str], expected: list[str]) -> None:
    assert closest_names(key, known) == expected


def test_citation_markers() -> None:
    text = "Brew at 93C [1]. Grind fine [2, 3] and [x] is no marker [10]"
    assert list(citation_markers(text)) == [
        CitationMarker(12, 15, (1,)),
        CitationMarker(28, 34, (2, 3)),
        CitationMarker(56, 60, (10,)),
    ]


def test_a_marker_with_a_huge_or_non_ascii_number_is_not_a_citation():
    """An answer is the service's or the model's text: it must never make parsing raise."""
    from aisearch._names import citation_markers

    text = "[" + "9" * 5000 + "] and [\u0663] and [2]"
    assert [m.numbers for m in citation_markers(text)] == [(2,)]
