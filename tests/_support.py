"""Values shared by the test suites: a secret to hunt for and hostile inputs."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

SECRET = "tok-SECRET-7f3Qz9Wd"
"""A token that must never appear in an error, a repr or a log."""

FRAGMENTS = (SECRET, SECRET[:7], SECRET[-4:], "7f3Qz9", "Qz9Wd")
"""The token, its start (pydantic's truncation shows 'tok-SEC...') and its end."""


def hostile_values(
    *more: st.SearchStrategy[object], int_bound: int = 2**70, text_size: int = 8
) -> st.SearchStrategy[object]:
    """JSON-ish scalars including the hostile ones (huge ints, NaN, infinities), then ``more``."""
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-int_bound, max_value=int_bound),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=text_size),
        *more,
    )


ANY_VALUE = hostile_values(
    st.lists(st.one_of(st.text(max_size=4), st.integers()), max_size=6),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
"""Any JSON-ish value, including the hostile ones (huge ints, NaN, infinities)."""


def surrogate_text(max_size: int = 4) -> st.SearchStrategy[str]:
    """Text of any code points, lone surrogates often (``st.characters()`` draws none)."""
    return st.text(
        alphabet=st.characters() | st.integers(0xD800, 0xDFFF).map(chr), max_size=max_size
    )


def json_like(keys: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    """JSON-shaped values (NaN and infinities included) whose strings and keys are ``keys``."""
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | keys
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=2) | st.dictionaries(keys, inner, max_size=2),
        max_leaves=4,
    )
