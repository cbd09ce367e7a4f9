"""Vectorised filter masks against a per-item reference implementation (property tests).

The reference below is the per-item filter of aisearch_local before masks existed, kept here
verbatim: the masks must keep exactly the items it keeps.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aisearch_local.filters import ItemTable, compile_filter, compile_legacy_filter
from aisearch_local.store import item_attributes

# -- the reference: per item, in Python ---------------------------------------------------------

_LISTS = ("$in", "$nin")
_SECONDS_LIMIT = 100_000_000_000
_DIGITS = re.compile(r"[0-9]{1,18}")


def _norm(field: str, value: Any, *, operand: bool) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8")[:64].decode("utf-8", "ignore")
    if field == "timestamp" and isinstance(value, (int, float)) and not isinstance(value, bool):
        if operand and value < _SECONDS_LIMIT:
            return int(value)
        return int(value) // 1000
    return value


def _num_eq(left: Any, right: Any) -> bool:
    nums = (int, float)
    return (
        isinstance(left, nums)
        and isinstance(right, nums)
        and not isinstance(left, bool)
        and not isinstance(right, bool)
        and float(left) == float(right)
    )


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "$eq":
        return bool(left == right and type(left) is type(right)) or _num_eq(left, right)
    if op == "$ne":
        return not (bool(left == right and type(left) is type(right)) or _num_eq(left, right))
    if left is None or right is None:
        return False
    if isinstance(left, str) != isinstance(right, str):
        return False
    try:
        if op == "$gt":
            return bool(left > right)
        if op == "$gte":
            return bool(left >= right)
        if op == "$lt":
            return bool(left < right)
        return bool(left <= right)
    except TypeError:
        return False


Ref = Callable[[Mapping[str, Any]], bool]


def _field_predicate(field: str, op: str, operand: Any) -> Ref:
    if field == "timestamp" and isinstance(operand, str) and _DIGITS.fullmatch(operand):
        operand = int(operand)
    if op in _LISTS:
        wanted = [_norm(field, v, operand=True) for v in operand]

        def in_list(attrs: Mapping[str, Any]) -> bool:
            value = _norm(field, attrs.get(field), operand=False)
            hit = any(_compare("$eq", value, w) for w in wanted)
            return hit if op == "$in" else not hit

        return in_list
    target = _norm(field, operand, operand=True)

    def compare(attrs: Mapping[str, Any]) -> bool:
        return _compare(op, _norm(field, attrs.get(field), operand=False), target)

    return compare


def reference(filters: Mapping[str, Any]) -> Ref:
    preds = []
    for raw, cond in filters.items():
        field = raw.lower()
        if not isinstance(cond, Mapping):
            preds.append(_field_predicate(field, "$eq", cond))
            continue
        for op, operand in cond.items():
            preds.append(_field_predicate(field, op, operand))
    return lambda attrs: all(p(attrs) for p in preds)


# -- strategies -----------------------------------------------------------------------------------

FIELDS = ["tag", "Rating", "n", "timestamp", "folder", "filename"]
TEXT = st.text(alphabet=st.sampled_from("ab/é\x00Z0"), max_size=6) | st.sampled_from(
    ["a" * 63 + "é", "a" * 70, "b" * 64 + "x", "docs/", "docs0"]
)
INTS = st.integers(-5, 5) | st.sampled_from(
    [2**53, 2**53 + 1, -(2**53) - 1, 2**62, 1_700_000_000_000, 1_700_000_000]
)
FLOATS = st.floats(-6, 6, allow_nan=False, width=64) | st.sampled_from([0.5, 2.0**53, 1e300])
OPERAND = st.none() | st.booleans() | INTS | FLOATS | TEXT
STORED = OPERAND | st.just(math.nan) | st.just(math.inf) | st.lists(INTS, max_size=2)
STORED = STORED | st.dictionaries(st.just("k"), INTS, max_size=1)

METADATA = st.dictionaries(st.sampled_from(["tag", "rating", "RATING", "n", "x"]), STORED)
ITEMS = st.lists(
    st.tuples(
        st.sampled_from(["a.md", "docs/a.md", "docs/b/c.md", "docs0", "é/" + "z" * 70]),
        st.none() | st.sampled_from([0, 999, 1000, 1_700_000_000_000, 1_700_000_000_999]),
        METADATA,
    ),
    min_size=1,
    max_size=12,
)
CONDITION = OPERAND | st.dictionaries(
    st.sampled_from(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]), OPERAND, min_size=1
)
CONDITION = CONDITION | st.builds(
    lambda op, xs: {op: xs},
    st.sampled_from(["$in", "$nin"]),
    st.lists(st.booleans() | INTS | FLOATS | TEXT, max_size=3),
)
FILTERS = st.dictionaries(st.sampled_from(FIELDS), CONDITION, max_size=3)


def _table(items: list[tuple[str, int | None, dict[str, Any]]]) -> tuple[ItemTable, list[dict]]:
    table = ItemTable()
    attrs = []
    for i, (key, ts, meta) in enumerate(items):
        a = item_attributes(key, ts, meta)
        table.set(3 * i + 1, a)  # sparse primary keys
        attrs.append(a)
    return table, attrs


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=ITEMS, filters=FILTERS)
def test_filter_mask_equals_the_per_item_reference(items, filters):
    table, attrs = _table(items)
    flt = compile_filter(filters)
    ref = reference(filters)
    mask = flt.mask(table)
    for i, a in enumerate(attrs):
        assert bool(mask[3 * i + 1]) is ref(a), (a, filters)
        assert flt(a) is ref(a)


@settings(max_examples=60, deadline=None)
@given(items=ITEMS, filters=FILTERS, again=ITEMS)
def test_masks_follow_updates_and_deletes(items, filters, again):
    table, _ = _table(items)
    for i, (key, ts, meta) in enumerate(again):  # re-index some items, delete one
        table.set(3 * i + 1, item_attributes(key, ts, meta))
    table.clear(1)
    flt, ref = compile_filter(filters), reference(filters)
    mask = flt.mask(table)
    for i, (key, ts, meta) in enumerate(again):
        if i:
            assert bool(mask[3 * i + 1]) is ref(item_attributes(key, ts, meta))


@settings(max_examples=60, deadline=None)
@given(
    items=ITEMS,
    key=st.sampled_from(["tag", "n", "folder"]),
    values=st.lists(TEXT | INTS, min_size=1, max_size=3),
)
def test_legacy_or_mask_equals_any_of_its_comparisons(items, key, values):
    table, attrs = _table(items)
    flt = compile_legacy_filter(
        {"type": "or", "filters": [{"type": "eq", "key": key, "value": v} for v in values]}
    )
    mask = flt.mask(table)
    for i, a in enumerate(attrs):
        want = any(_field_predicate(key, "$eq", v)(a) for v in values)
        assert bool(mask[3 * i + 1]) is want


def test_many_distinct_values_take_the_vectorised_path():
    table = ItemTable()
    for pk in range(1, 3001):
        table.set(pk, item_attributes(f"docs/{pk:05d}.md", pk * 1000, {"n": pk, "s": str(pk)}))
    flt = compile_filter({"n": {"$gte": 100, "$lt": 400}, "filename": {"$gte": "docs/00200"}})
    mask = flt.mask(table)
    assert np.flatnonzero(mask).tolist() == list(range(200, 400))
    assert compile_filter({"timestamp": {"$in": [5, 7]}}).mask(table).sum() == 2


STORED_EDGES: list[Any] = [
    *(None, True, False, 0, 1, 1.0, -2.5, 2**53, 2**53 + 1, 1e300, math.inf, math.nan),
    *("", "a", "a\x00", "ab", "é", "a" * 70, [1], {"k": 1}),
]
OPERAND_EDGES: list[Any] = [
    *(None, True, False, 0, 1, 1.5, 2**53, 2**53 + 1, -(2**60)),
    *("a", "a\x00", "b", "a" * 64, ""),
]


@pytest.mark.parametrize("nul", [True, False])  # a stored NUL takes strings off numpy
def test_every_operator_and_operand_type_against_every_stored_type(nul):
    table = ItemTable()
    attrs = []
    stored = [v for v in STORED_EDGES if nul or v != "a\x00"]
    for pk, value in enumerate([*stored, "missing"], start=1):
        a = item_attributes(f"{pk}.md", None, {} if value == "missing" else {"v": value})
        table.set(pk, a)
        attrs.append(a)
    for op in ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte"):
        for operand in OPERAND_EDGES:
            mask = compile_filter({"v": {op: operand}}).mask(table)
            ref = _field_predicate("v", op, operand)
            got = [bool(mask[pk]) for pk in range(1, len(attrs) + 1)]
            assert got == [ref(a) for a in attrs], (op, operand)
    for op in ("$in", "$nin"):
        operand = [x for x in OPERAND_EDGES if x is not None]
        mask = compile_filter({"v": {op: operand}}).mask(table)
        ref = _field_predicate("v", op, operand)
        assert [bool(mask[pk]) for pk in range(1, len(attrs) + 1)] == [ref(a) for a in attrs]
