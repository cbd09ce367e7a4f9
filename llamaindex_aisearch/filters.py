"""Translate LlamaIndex ``MetadataFilters`` into AI Search's (Vectorize-style) filter syntax.

AI Search filters are one JSON object: each key is a metadata field, each value either a
bare value (equality) or an object of operators ``$eq $ne $gt $gte $lt $lte $in $nin``; all
keys must match (implicit AND). There is no ``$or`` and no ``$not``. So:

========================================  =========================================
LlamaIndex                                AI Search
========================================  =========================================
``MetadataFilter(key, v, EQ)``            ``{"key": {"$eq": v}}``
``NE`` / ``GT`` / ``GTE`` / ``LT`` / ``LTE``  ``$ne`` / ``$gt`` / ``$gte`` / ``$lt`` / ``$lte``
``IN`` / ``NIN`` (a list)                 ``$in`` / ``$nin``
``condition=AND`` (also nested AND)       keys merged into one object
``condition=OR``, all ``EQ``/``IN`` on    ``{"key": {"$in": [all values]}}``
one key
anything else (``OR`` across keys,        :class:`ValueError` naming the filter
``NOT``, ``TEXT_MATCH``, ``CONTAINS``,
``ANY``, ``ALL``, ``IS_EMPTY``)
========================================  =========================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)

from aisearch import InvalidRequestError, validate_filters

__all__ = ["FilterInput", "to_aisearch_filters"]

FilterInput = MetadataFilters | MetadataFilter | Mapping[str, Any]
"""What the adapters accept as ``filters``: LlamaIndex filters or a raw AI Search filter."""

_OPERATORS: dict[FilterOperator, str] = {
    FilterOperator.EQ: "$eq",
    FilterOperator.NE: "$ne",
    FilterOperator.GT: "$gt",
    FilterOperator.GTE: "$gte",
    FilterOperator.LT: "$lt",
    FilterOperator.LTE: "$lte",
    FilterOperator.IN: "$in",
    FilterOperator.NIN: "$nin",
}
_SUPPORTED = ", ".join(op.value for op in _OPERATORS)


def _describe(item: MetadataFilter | MetadataFilters) -> str:
    if isinstance(item, MetadataFilter):
        return f"{item.key!r} {item.operator.value} {item.value!r}"
    condition = (item.condition or FilterCondition.AND).value
    inner = f" {condition} ".join(_describe(f) for f in item.filters)
    return f"({inner})"


def _unsupported(item: MetadataFilter | MetadataFilters, why: str) -> ValueError:
    return ValueError(
        f"filter {_describe(item)} cannot be expressed in AI Search's filter syntax: {why}"
    )


def _leaf(item: MetadataFilter) -> tuple[str, str, Any]:
    op = _OPERATORS.get(item.operator)
    if op is None:
        raise _unsupported(
            item,
            f"operator {item.operator.value!r} is not supported (supported: {_SUPPORTED})",
        )
    value = item.value
    if op in ("$in", "$nin"):
        if not isinstance(value, list) or not value:
            raise _unsupported(item, f"{item.operator.value!r} needs a non-empty list")
    elif isinstance(value, list):
        raise _unsupported(item, f"{item.operator.value!r} needs a single value, not a list")
    return item.key, op, value


def _merge(target: dict[str, dict[str, Any]], key: str, op: str, value: Any, where: str) -> None:
    ops = target.setdefault(key, {})
    if op in ops and ops[op] != value:
        raise ValueError(
            f"filter {where} cannot be expressed in AI Search's filter syntax: two different "
            f"{op!r} conditions on key {key!r} ({ops[op]!r} and {value!r})"
        )
    ops[op] = value


def _or_group(group: MetadataFilters) -> tuple[str, list[Any]]:
    """An OR of ``==`` / ``in`` on one key becomes ``$in``; anything else is rejected."""
    key: str | None = None
    values: list[Any] = []
    for item in group.filters:
        if not isinstance(item, MetadataFilter) or item.operator not in (
            FilterOperator.EQ,
            FilterOperator.IN,
        ):
            raise _unsupported(
                group, "an 'or' is only supported when every filter is '==' or 'in' on one key"
            )
        if key is not None and item.key != key:
            raise _unsupported(
                group,
                f"an 'or' across different keys ({key!r}, {item.key!r}) has no equivalent "
                "(AI Search filters combine keys with AND only)",
            )
        key = item.key
        _, _, value = _leaf(item)
        for v in value if isinstance(value, list) else [value]:
            if v not in values:
                values.append(v)
    if key is None:
        raise _unsupported(group, "an empty 'or' group matches nothing")
    return key, values


def _collect(group: MetadataFilters, out: dict[str, dict[str, Any]], root: str) -> None:
    condition = group.condition or FilterCondition.AND
    if condition == FilterCondition.OR:
        key, values = _or_group(group)
        if len(values) == 1:
            _merge(out, key, "$eq", values[0], root)
        else:
            _merge(out, key, "$in", values, root)
        return
    if condition != FilterCondition.AND:
        raise _unsupported(
            group,
            f"condition {condition.value!r} is not supported (AI Search filters have no "
            "negation; use '!=' or 'nin' on the key instead)",
        )
    for item in group.filters:
        if isinstance(item, MetadataFilters):
            _collect(item, out, root)
        else:
            key, op, value = _leaf(item)
            _merge(out, key, op, value, root)


class _FilterTypeError(InvalidRequestError, TypeError):
    """``filters`` of an unsupported type.

    An ``InvalidRequestError`` naming the field, and (as before) a ``TypeError``.
    """


def to_aisearch_filters(filters: FilterInput | None) -> dict[str, Any] | None:
    """Translate LlamaIndex filters (or a raw AI Search filter) into AI Search's syntax.

    Args:
        filters: ``MetadataFilters``, a single ``MetadataFilter``, a raw AI Search filter
            dict (validated as is), or ``None``.

    Returns:
        The AI Search filter object, or ``None`` when there is nothing to filter on.

    Raises:
        ValueError: If a filter cannot be expressed (the message names it). The raw-dict
            path raises ``aisearch.InvalidRequestError``, itself a ``ValueError``.
    """
    if filters is None:
        return None
    if isinstance(filters, MetadataFilter):
        filters = MetadataFilters(filters=[filters])
    if isinstance(filters, MetadataFilters):
        if not filters.filters:
            return None
        out: dict[str, dict[str, Any]] = {}
        _collect(filters, out, _describe(filters))
        result: dict[str, Any] = dict(out)
    elif isinstance(filters, Mapping):
        result = dict(filters)
        if not result:
            return None
    else:
        raise _FilterTypeError(
            "filters: must be llama_index MetadataFilters, a MetadataFilter or a dict, "
            f"got {type(filters).__name__}"
        )
    validated: dict[str, Any] = validate_filters(result)
    return validated
