"""Vectorize-style and legacy filters of aisearch_local (pure functions, no sockets)."""

from __future__ import annotations

import pytest

from aisearch_local.errors import ValidationError
from aisearch_local.filters import compile_filter, compile_legacy_filter
from aisearch_local.store import item_attributes

DOC = item_attributes(
    "docs/guides/setup.md",
    1_735_689_600_500,
    {"Author": "ana", "rating": 4, "verified": True, "long": "x" * 70 + "tail"},
)


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (None, True),
        ({}, True),
        ({"folder": "docs/guides/"}, True),
        ({"folder": "docs/"}, False),
        ({"filename": "docs/guides/setup.md"}, True),
        ({"folder": {"$eq": "docs/guides/"}}, True),
        ({"folder": {"$ne": "docs/guides/"}}, False),
        ({"folder": {"$gte": "docs/", "$lt": "docs0"}}, True),  # documented starts-with idiom
        ({"folder": {"$gte": "blog/", "$lt": "blog0"}}, False),
        ({"author": "ana"}, True),  # field names are case-insensitive
        ({"AUTHOR": {"$in": ["ben", "ana"]}}, True),
        ({"author": {"$nin": ["ben", "ana"]}}, False),
        ({"rating": {"$gt": 3, "$lte": 4}}, True),
        ({"rating": {"$lt": 4}}, False),
        ({"rating": 4.0}, True),
        ({"rating": "4"}, False),  # no type coercion between strings and numbers
        ({"verified": True}, True),
        ({"verified": 1}, False),
        ({"missing": None}, True),
        ({"missing": {"$ne": None}}, False),
        ({"missing": {"$gt": 1}}, False),
        ({"timestamp": {"$gte": 1_735_689_600}}, True),  # seconds
        ({"timestamp": {"$gt": 1_735_689_600}}, False),  # compared at second precision
        ({"timestamp": {"$gte": 1_735_689_600_000}}, True),  # milliseconds
        ({"timestamp": {"$lt": 1_735_689_600_000}}, False),
        ({"long": "x" * 64}, True),  # strings compare on their first 64 bytes
        ({"folder": "docs/guides/", "rating": {"$gte": 5}}, False),  # implicit AND
    ],
)
def test_vectorize_filter(flt, expected):
    assert compile_filter(flt)(DOC) is expected


@pytest.mark.parametrize(
    ("flt", "needle"),
    [
        ([], "filters: must be an object"),
        ({"$and": [{"a": 1}]}, "filters.$and"),
        ({"a": {"$regex": "x"}}, "unknown operator '$regex'"),
        ({"a": {"$in": "x"}}, "filters.a.$in"),
        ({"a": {"$eq": [1]}}, "filters.a.$eq"),
        ({"a": {}}, "filters.a"),
        ({"a": [1, 2]}, "filters.a"),
        ({"": 1}, "non-empty"),
    ],
)
def test_vectorize_filter_errors(flt, needle):
    with pytest.raises(ValidationError, match=None) as info:
        compile_filter(flt)
    assert needle in str(info.value)


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"type": "eq", "key": "folder", "value": "docs/guides/"}, True),
        ({"type": "ne", "key": "folder", "value": "docs/guides/"}, False),
        ({"type": "gte", "key": "timestamp", "value": "1735689600000"}, True),  # ms as a string
        (
            {
                "type": "and",
                "filters": [
                    {"type": "gt", "key": "folder", "value": "docs//"},
                    {"type": "lte", "key": "folder", "value": "docs/z"},
                ],
            },
            True,
        ),
        (
            {
                "type": "or",
                "filters": [
                    {"type": "eq", "key": "author", "value": "ben"},
                    {"type": "eq", "key": "author", "value": "ana"},
                ],
            },
            True,
        ),
        (
            {
                "type": "or",
                "filters": [
                    {"type": "eq", "key": "author", "value": "ben"},
                    {"type": "eq", "key": "author", "value": "cy"},
                ],
            },
            False,
        ),
    ],
)
def test_legacy_filter(flt, expected):
    assert compile_legacy_filter(flt)(DOC) is expected


@pytest.mark.parametrize(
    ("flt", "needle"),
    [
        ({"type": "like", "key": "a", "value": 1}, "filters.type"),
        ({"type": "eq", "value": 1}, "filters.key"),
        ({"type": "eq", "key": "a"}, "filters.value"),
        ({"type": "and", "filters": []}, "filters.filters"),
        (
            {"type": "or", "filters": [{"type": "gt", "key": "a", "value": 1}]},
            "'or' filter only takes 'eq'",
        ),
        (
            {"type": "or", "filters": [{"type": "eq", "key": k, "value": 1} for k in "ab"]},
            "one and the same key",
        ),
        ({"type": "and", "filters": [{"type": "and", "filters": []}]}, "filters.filters[0].type"),
    ],
)
def test_legacy_filter_errors(flt, needle):
    with pytest.raises(ValidationError) as info:
        compile_legacy_filter(flt)
    assert needle in str(info.value)


def test_item_attributes_builtins():
    attrs = item_attributes("root.md", 5, {"Folder2": "x"})
    assert attrs["folder"] == ""
    assert attrs["filename"] == "root.md"
    assert attrs["timestamp"] == 5
    assert attrs["folder2"] == "x"


@pytest.mark.parametrize("value", ["²", "١٢٣", "9" * 5000, "12a"])
def test_a_timestamp_string_that_is_not_ascii_digits_never_raises(value):
    # str.isdigit() accepts "²", which int() refuses: this used to be a 500
    pred = compile_filter({"timestamp": value})
    assert pred(DOC) is False
    assert compile_filter({"timestamp": {"$gte": value}})(DOC) is False


def test_ascii_digit_timestamp_strings_are_seconds():
    assert compile_filter({"timestamp": {"$gte": "1735689600"}})(DOC) is True
    assert compile_filter({"timestamp": {"$gt": "1735689601"}})(DOC) is False


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_operands_are_refused(value):
    with pytest.raises(ValidationError, match="rating"):
        compile_filter({"rating": value})
    with pytest.raises(ValidationError, match="rating"):
        compile_filter({"rating": {"$in": [1, value]}})
    with pytest.raises(ValidationError, match="timestamp"):
        compile_filter({"timestamp": {"$gte": value}})
