"""LlamaIndex MetadataFilters -> AI Search (Vectorize-style) filter translation."""

from __future__ import annotations

import pytest
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)

from aisearch import InvalidRequestError
from llamaindex_aisearch import to_aisearch_filters


def _one(key: str, value: object, op: FilterOperator) -> MetadataFilters:
    return MetadataFilters(filters=[MetadataFilter(key=key, value=value, operator=op)])


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        (FilterOperator.EQ, "beginner", {"$eq": "beginner"}),
        (FilterOperator.NE, "beginner", {"$ne": "beginner"}),
        (FilterOperator.GT, 4, {"$gt": 4}),
        (FilterOperator.GTE, 4.5, {"$gte": 4.5}),
        (FilterOperator.LT, 3, {"$lt": 3}),
        (FilterOperator.LTE, 3.5, {"$lte": 3.5}),
        (FilterOperator.IN, ["a", "b"], {"$in": ["a", "b"]}),
        (FilterOperator.NIN, ["a", "b"], {"$nin": ["a", "b"]}),
    ],
)
def test_each_supported_operator(op: FilterOperator, value: object, expected: dict) -> None:
    assert to_aisearch_filters(_one("field", value, op)) == {"field": expected}


def test_single_metadata_filter_is_accepted() -> None:
    f = MetadataFilter(key="author", value="Lena Fischer")
    assert to_aisearch_filters(f) == {"author": {"$eq": "Lena Fischer"}}


def test_and_merges_keys_and_ranges_on_one_key() -> None:
    filters = MetadataFilters(
        filters=[
            MetadataFilter(key="rating", value=3, operator=FilterOperator.GTE),
            MetadataFilter(key="rating", value=5, operator=FilterOperator.LT),
            MetadataFilter(key="difficulty", value="beginner"),
        ],
        condition=FilterCondition.AND,
    )
    assert to_aisearch_filters(filters) == {
        "rating": {"$gte": 3, "$lt": 5},
        "difficulty": {"$eq": "beginner"},
    }


def test_nested_and_is_flattened() -> None:
    inner = MetadataFilters(
        filters=[MetadataFilter(key="b", value=2, operator=FilterOperator.GT)],
        condition=FilterCondition.AND,
    )
    outer = MetadataFilters(filters=[MetadataFilter(key="a", value="x"), inner])
    assert to_aisearch_filters(outer) == {"a": {"$eq": "x"}, "b": {"$gt": 2}}


def test_or_of_eq_on_one_key_becomes_in() -> None:
    filters = MetadataFilters(
        filters=[
            MetadataFilter(key="author", value="Lena Fischer"),
            MetadataFilter(key="author", value="Maya Okafor"),
            MetadataFilter(key="author", value=["Priya Raman"], operator=FilterOperator.IN),
        ],
        condition=FilterCondition.OR,
    )
    assert to_aisearch_filters(filters) == {
        "author": {"$in": ["Lena Fischer", "Maya Okafor", "Priya Raman"]}
    }


def test_or_with_one_value_becomes_eq_and_nested_or_combines_with_and() -> None:
    single = MetadataFilters(filters=[MetadataFilter(key="a", value=1)], condition="or")
    assert to_aisearch_filters(single) == {"a": {"$eq": 1}}
    either = MetadataFilters(
        filters=[MetadataFilter(key="d", value="x"), MetadataFilter(key="d", value="y")],
        condition=FilterCondition.OR,
    )
    combined = MetadataFilters(
        filters=[MetadataFilter(key="r", value=4, operator=FilterOperator.GTE), either]
    )
    assert to_aisearch_filters(combined) == {"r": {"$gte": 4}, "d": {"$in": ["x", "y"]}}


def test_empty_and_none_mean_no_filter() -> None:
    assert to_aisearch_filters(None) is None
    assert to_aisearch_filters(MetadataFilters(filters=[])) is None
    assert to_aisearch_filters({}) is None


def test_raw_dict_filters_pass_validation() -> None:
    raw = {"folder": "docs/", "timestamp": {"$gte": 1}}
    assert to_aisearch_filters(raw) == raw


def test_raw_dict_filters_are_validated() -> None:
    with pytest.raises(InvalidRequestError, match=r"\$or|operator|unsupported|unknown"):
        to_aisearch_filters({"$or": [{"a": 1}, {"b": 2}]})


@pytest.mark.parametrize(
    "op",
    [
        FilterOperator.TEXT_MATCH,
        FilterOperator.TEXT_MATCH_INSENSITIVE,
        FilterOperator.CONTAINS,
        FilterOperator.ANY,
        FilterOperator.ALL,
        FilterOperator.IS_EMPTY,
    ],
)
def test_unsupported_operators_are_rejected_naming_the_filter(op: FilterOperator) -> None:
    value = ["x"] if op in (FilterOperator.ANY, FilterOperator.ALL) else "x"
    with pytest.raises(ValueError, match=rf"'tags' {op.value} .*operator {op.value!r}"):
        to_aisearch_filters(_one("tags", value, op))


def test_or_across_keys_is_rejected_naming_the_filter() -> None:
    filters = MetadataFilters(
        filters=[MetadataFilter(key="a", value=1), MetadataFilter(key="b", value=2)],
        condition=FilterCondition.OR,
    )
    with pytest.raises(ValueError, match=r"\('a' == 1 or 'b' == 2\).*different keys"):
        to_aisearch_filters(filters)


def test_or_with_range_operator_is_rejected() -> None:
    filters = MetadataFilters(
        filters=[
            MetadataFilter(key="a", value=1),
            MetadataFilter(key="a", value=5, operator=FilterOperator.GT),
        ],
        condition=FilterCondition.OR,
    )
    with pytest.raises(ValueError, match="'==' or 'in' on one key"):
        to_aisearch_filters(filters)


def test_or_containing_a_nested_group_is_rejected() -> None:
    inner = MetadataFilters(filters=[MetadataFilter(key="a", value=1)])
    filters = MetadataFilters(
        filters=[MetadataFilter(key="a", value=2), inner], condition=FilterCondition.OR
    )
    with pytest.raises(ValueError, match="cannot be expressed"):
        to_aisearch_filters(filters)


def test_not_is_rejected_with_a_hint() -> None:
    filters = MetadataFilters(
        filters=[MetadataFilter(key="a", value=1)], condition=FilterCondition.NOT
    )
    with pytest.raises(ValueError, match=r"condition 'not'.*'!=' or 'nin'"):
        to_aisearch_filters(filters)


def test_nested_not_inside_and_is_rejected() -> None:
    inner = MetadataFilters(filters=[MetadataFilter(key="a", value=1)], condition="not")
    with pytest.raises(ValueError, match="condition 'not'"):
        to_aisearch_filters(MetadataFilters(filters=[MetadataFilter(key="b", value=2), inner]))


def test_in_needs_a_non_empty_list() -> None:
    with pytest.raises(ValueError, match="'in' needs a non-empty list"):
        to_aisearch_filters(_one("a", [], FilterOperator.IN))
    with pytest.raises(ValueError, match="'nin' needs a non-empty list"):
        to_aisearch_filters(_one("a", "x", FilterOperator.NIN))


def test_scalar_operator_with_a_list_is_rejected() -> None:
    with pytest.raises(ValueError, match="'==' needs a single value"):
        to_aisearch_filters(_one("a", ["x", "y"], FilterOperator.EQ))


def test_contradictory_conditions_on_one_key_are_rejected() -> None:
    filters = MetadataFilters(
        filters=[MetadataFilter(key="a", value="x"), MetadataFilter(key="a", value="y")]
    )
    with pytest.raises(ValueError, match=r"two different '\$eq' conditions on key 'a'"):
        to_aisearch_filters(filters)


def test_wrong_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="MetadataFilters"):
        to_aisearch_filters(["a"])  # type: ignore[arg-type]
