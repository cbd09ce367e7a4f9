"""Vectorize filter validation and translation to the legacy AutoRAG form."""

from __future__ import annotations

import math

import pytest

from aisearch import InvalidRequestError, to_legacy_filter, validate_filters
from aisearch._filters import is_legacy_filter, validate_legacy_filter

VALID = [
    {},
    {"folder": "docs/getting-started/"},
    {"folder": {"$eq": "docs/getting-started/"}},
    {"timestamp": {"$gte": 1735689600, "$lt": 1735900000}},
    {"folder": "customer-a/", "timestamp": {"$gte": 1735689600}},
    {"folder": {"$in": ["docs/guides/", "docs/tutorials/"]}},
    {"folder": {"$gte": "docs/", "$lt": "docs0"}},
    {"draft": False, "score": 1.5, "owner": None},
    {"owner": {"$ne": None}},
    {"tag": {"$nin": ["a", 1, True]}},
]


@pytest.mark.parametrize("flt", VALID)
def test_documented_filters_are_valid(flt):
    assert validate_filters(flt) == flt


INVALID = [
    (
        ["folder"],
        "filters: must be a mapping of metadata key to value or operator object (got list)",
    ),
    ({"": 1}, "filters: keys must be non-empty strings (got '')"),
    ({1: 1}, "filters: keys must be non-empty strings (got 1)"),
    ({"$not": {"a": 1}}, "filters.$not: logical operator '$not' is not supported"),
    (
        {"folder": {"$regex": "x"}},
        "filters.folder: unsupported operator '$regex' (allowed: $eq, $ne, $gt, $gte, $lt, "
        "$lte, $in, $nin)",
    ),
    ({"folder": {"eq": "x"}}, "filters.folder: unsupported operator 'eq'"),
    ({"folder": {}}, "filters.folder: operator object must not be empty"),
    ({"folder": ["a", "b"]}, "filters.folder: a list is not a valid value; use {'$in': [...]}"),
    (
        {"folder": {"$in": []}},
        "filters.folder.$in: must be a non-empty list of strings, numbers or booleans (got [])",
    ),
    ({"folder": {"$nin": "abc"}}, "filters.folder.$nin: must be a non-empty list"),
    (
        {"folder": {"$in": ["a", None]}},
        "filters.folder.$in[1]: must be a string, number or boolean (got None)",
    ),
    ({"folder": {"$in": [["a"]]}}, "filters.folder.$in[0]: must be a string, number or boolean"),
    (
        {"folder": {"$eq": ["a"]}},
        "filters.folder.$eq: must be a string, number, boolean or null (got ['a'])",
    ),
    (
        {"folder": {"$gt": {"x": 1}}},
        "filters.folder.$gt: must be a string, number, boolean or null",
    ),
    ({"n": math.nan}, "filters.n: must be a string, number, boolean or null (got nan)"),
    (
        {"n": {"$lt": math.inf}},
        "filters.n.$lt: must be a string, number, boolean or null (got inf)",
    ),
    ({"n": object}, "filters.n: must be a string, number, boolean or null"),
]


@pytest.mark.parametrize(("flt", "message"), INVALID)
def test_invalid_filters_name_key_and_operator(flt, message):
    with pytest.raises(InvalidRequestError) as info:
        validate_filters(flt)
    assert message in str(info.value)


def test_custom_path_in_messages():
    with pytest.raises(InvalidRequestError, match=r"^metadata_filter\.a: unsupported"):
        validate_filters({"a": {"$x": 1}}, path="metadata_filter")


TRANSLATIONS = [
    ({}, None),
    ({"folder": "llama/"}, {"type": "eq", "key": "folder", "value": "llama/"}),
    ({"folder": {"$ne": "a/"}}, {"type": "ne", "key": "folder", "value": "a/"}),
    (
        {"folder": "customer-a/", "timestamp": {"$gte": 1735689600}},
        {
            "type": "and",
            "filters": [
                {"type": "eq", "key": "folder", "value": "customer-a/"},
                {"type": "gte", "key": "timestamp", "value": 1735689600},
            ],
        },
    ),
    (
        {"folder": {"$gt": "customer-a//", "$lte": "customer-a/z"}},
        {
            "type": "and",
            "filters": [
                {"type": "gt", "key": "folder", "value": "customer-a//"},
                {"type": "lte", "key": "folder", "value": "customer-a/z"},
            ],
        },
    ),
    (
        {"folder": {"$in": ["a/", "b/", "a/"]}},
        {
            "type": "or",
            "filters": [
                {"type": "eq", "key": "folder", "value": "a/"},
                {"type": "eq", "key": "folder", "value": "b/"},
            ],
        },
    ),
    (
        {"folder": {"$in": ["a/"]}, "x": 1},
        {
            "type": "and",
            "filters": [
                {"type": "eq", "key": "folder", "value": "a/"},
                {"type": "eq", "key": "x", "value": 1},
            ],
        },
    ),
    (
        {"folder": {"$nin": ["a/", "b/"]}, "lang": "en"},
        {
            "type": "and",
            "filters": [
                {"type": "ne", "key": "folder", "value": "a/"},
                {"type": "ne", "key": "folder", "value": "b/"},
                {"type": "eq", "key": "lang", "value": "en"},
            ],
        },
    ),
    ({"draft": {"$lt": 3.5}}, {"type": "lt", "key": "draft", "value": 3.5}),
]


@pytest.mark.parametrize(("flt", "legacy"), TRANSLATIONS)
def test_translation_to_legacy(flt, legacy):
    result = to_legacy_filter(flt)
    assert result == legacy
    if result is not None:
        assert is_legacy_filter(result)
        assert validate_legacy_filter(result) == result


@pytest.mark.parametrize(
    ("flt", "message"),
    [
        (
            {"a": {"$in": ["x", "y"]}, "b": 1},
            "filters: $in with more than one value cannot be combined",
        ),
        (
            {"a": {"$in": ["x", "y"]}, "b": {"$in": [1, 2]}},
            "filters.b.$in: the legacy filter form allows only one $in",
        ),
        ({"a": None}, "filters.a.$eq: null cannot be expressed in the legacy filter form"),
        ({"a": {"$ne": None}}, "filters.a.$ne: null cannot be expressed"),
        ({"a": {"$bad": 1}}, "unsupported operator"),
    ],
)
def test_untranslatable_filters(flt, message):
    with pytest.raises(InvalidRequestError) as info:
        to_legacy_filter(flt)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("flt", "legacy"),
    [
        ({"type": "eq", "key": "folder", "value": "x"}, True),
        ({"type": "and", "filters": []}, True),
        ({"type": "or", "filters": [{"type": "eq", "key": "a", "value": 1}]}, True),
        ({"type": "pdf"}, False),  # a metadata key named "type"
        ({"type": "eq"}, False),
        ({"type": "and", "filters": "x"}, False),
        ("eq", False),
    ],
)
def test_is_legacy_filter(flt, legacy):
    assert is_legacy_filter(flt) is legacy


@pytest.mark.parametrize(
    ("flt", "message"),
    [
        ("x", "filters: must be a mapping (got str)"),
        (
            {"type": "and", "filters": []},
            "filters.filters: must be a non-empty list of comparisons",
        ),
        (
            {"type": "and", "filters": [{"type": "and", "filters": []}]},
            "filters.filters[0]: must be a comparison",
        ),
        (
            {"type": "and", "filters": [{"type": "eq", "key": "a"}]},
            "filters.filters[0]: needs exactly the keys type, key and value",
        ),
        ({"type": "eq", "key": "", "value": 1}, "filters.key: must be a non-empty string"),
        (
            {"type": "eq", "key": "a", "value": None},
            "filters.value: must be a string, number or boolean (got None)",
        ),
        (
            {
                "type": "or",
                "filters": [
                    {"type": "eq", "key": "a", "value": 1},
                    {"type": "eq", "key": "b", "value": 1},
                ],
            },
            "an 'or' filter must use one key throughout",
        ),
        ({"type": "regex", "key": "a", "value": 1}, "filters: must be a comparison"),
    ],
)
def test_invalid_legacy_filters(flt, message):
    with pytest.raises(InvalidRequestError) as info:
        validate_legacy_filter(flt)
    assert message in str(info.value)


_OR_OTHER = (
    "$or is not supported; several keys in one filter are ANDed and there is no OR across "
    "keys (for one key use $in; otherwise search once per alternative)"
)
_AND_OTHER = (
    "$and is not supported; several keys in one filter are ANDed: write them in one mapping"
)

LOGICAL = [
    # $or over one key's values: the $in the user meant
    (
        {"$or": [{"k": "a"}, {"k": "b"}]},
        '$or is not supported; for one key use {"k": {"$in": ["a", "b"]}}',
    ),
    ({"$or": [{"k": "a"}]}, '$or is not supported; for one key use {"k": {"$in": ["a"]}}'),
    (
        {"$or": [{"n": {"$eq": 1}}, {"n": {"$in": [2, 1, True]}}]},
        '$or is not supported; for one key use {"n": {"$in": [1, 2, true]}}',
    ),
    # anything else: say that keys are ANDed and there is no OR across keys
    ({"$or": [{"k": "a"}, {"j": "b"}]}, _OR_OTHER),
    ({"$or": [{"k": "a", "j": "b"}]}, _OR_OTHER),
    ({"$or": ["k"]}, _OR_OTHER),
    ({"$or": [{"k": {"$ne": "a"}}]}, _OR_OTHER),
    ({"$or": [{"k": {"$in": "ab"}}]}, _OR_OTHER),
    ({"$or": [{"k": ["a"]}]}, _OR_OTHER),
    ({"$or": [{1: "a"}]}, _OR_OTHER),
    ({"$or": []}, _OR_OTHER),
    ({"$or": {"k": "a"}}, _OR_OTHER),
    # $and: the one mapping that means the same, when there is one
    (
        {"$and": [{"a": 1}, {"b": {"$gte": 2}}]},
        "$and is not supported; several keys in one filter are ANDed: "
        'use {"a": 1, "b": {"$gte": 2}}',
    ),
    (
        {"$and": [{"t": {"$gte": 1}}, {"t": {"$lt": 5}}]},
        "$and is not supported; several keys in one filter are ANDed: "
        'use {"t": {"$gte": 1, "$lt": 5}}',
    ),
    ({"$and": [{"a": 1}, {"a": 2}]}, _AND_OTHER),
    ({"$and": [{"t": {"$gte": 1}}, {"t": {"$gte": 2}}]}, _AND_OTHER),
    ({"$and": ["a"]}, _AND_OTHER),
    ({"$and": []}, _AND_OTHER),
    ({"$and": [{"a": object}]}, "ANDed: use {'a': <class 'object'>}"),
]


@pytest.mark.parametrize(("flt", "message"), LOGICAL)
def test_and_or_say_what_to_write_instead(flt, message):
    op = next(iter(flt))
    with pytest.raises(InvalidRequestError) as info:
        validate_filters(flt)
    assert str(info.value).startswith(f"filters.{op}: ")
    assert str(info.value).endswith(message)
