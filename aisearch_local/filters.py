"""Metadata filters: the Vectorize syntax of AI Search and the legacy AutoRAG syntax.

New syntax (``ai_search_options.retrieval.filters``, items ``metadata_filter``)::

    {"folder": "docs/", "timestamp": {"$gte": 1735689600}, "tag": {"$in": ["a", "b"]}}

Operators ``$eq $ne $gt $gte $lt $lte $in $nin``; several keys are an implicit AND; a bare value
means ``$eq``. Legacy syntax (``/autorag/rags/...``)::

    {"type": "eq", "key": "folder", "value": "docs/"}
    {"type": "and" | "or", "filters": [<comparison>, ...]}

Both compile into a predicate over an item's attributes (see
:func:`aisearch_local.store.item_attributes`). As in AI Search, strings compare on their first
64 UTF-8 bytes, and a ``timestamp`` value below 10^11 is taken as seconds (stored values are
milliseconds, compared at second precision).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from aisearch_local.errors import ValidationError

__all__ = ["Predicate", "compile_filter", "compile_legacy_filter"]

Predicate = Callable[[Mapping[str, Any]], bool]

_COMPARISONS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")
_LISTS = ("$in", "$nin")
_LEGACY_OPS = {"eq": "$eq", "ne": "$ne", "gt": "$gt", "gte": "$gte", "lt": "$lt", "lte": "$lte"}
_SECONDS_LIMIT = 100_000_000_000
_DIGITS = re.compile(r"[0-9]{1,18}")  # ASCII only: str.isdigit() also accepts "²" and "٣"


def _scalar(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, (str, int, bool))


def _norm(field: str, value: Any, *, operand: bool) -> Any:
    """Normalise a value for comparison: 64-byte strings, timestamps in whole seconds."""
    if isinstance(value, str):
        return value.encode("utf-8")[:64].decode("utf-8", "ignore")
    if field == "timestamp" and isinstance(value, (int, float)) and not isinstance(value, bool):
        if operand and value < _SECONDS_LIMIT:
            return int(value)
        return int(value) // 1000
    return value


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


def _num_eq(left: Any, right: Any) -> bool:
    nums = (int, float)
    return (
        isinstance(left, nums)
        and isinstance(right, nums)
        and not isinstance(left, bool)
        and not isinstance(right, bool)
        and float(left) == float(right)
    )


def _field_predicate(field: str, op: str, operand: Any) -> Predicate:
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


def compile_filter(filters: Any, *, path: str = "filters") -> Predicate:
    """Validate a Vectorize-style filter and compile it into a predicate.

    Args:
        filters: The filter object (``None`` or ``{}`` match everything).
        path: Field path used in error messages.

    Returns:
        A function of an item's attribute mapping.

    Raises:
        ValidationError: When the filter does not follow the syntax.
    """
    if filters is None:
        return lambda _attrs: True
    if not isinstance(filters, Mapping):
        raise ValidationError(path, "must be an object mapping field names to conditions")
    preds: list[Predicate] = []
    for raw_field, cond in filters.items():
        if not isinstance(raw_field, str) or not raw_field:
            raise ValidationError(path, "field names must be non-empty strings")
        if raw_field.startswith("$"):
            raise ValidationError(
                f"{path}.{raw_field}",
                "logical operators are not supported; several keys are "
                "combined with AND, use $in for OR on one field",
            )
        field = raw_field.lower()
        fpath = f"{path}.{raw_field}"
        if _scalar(cond):
            preds.append(_field_predicate(field, "$eq", cond))
            continue
        if not isinstance(cond, Mapping) or not cond:
            raise ValidationError(
                fpath,
                "must be a string, number, boolean, null or an object of operators "
                f"({', '.join(_COMPARISONS + _LISTS)})",
            )
        for op, operand in cond.items():
            if op in _COMPARISONS:
                if not _scalar(operand):
                    raise ValidationError(
                        f"{fpath}.{op}", "must be a string, number, boolean or null"
                    )
            elif op in _LISTS:
                if not isinstance(operand, list) or not all(
                    _scalar(v) and v is not None for v in operand
                ):
                    raise ValidationError(
                        f"{fpath}.{op}", "must be a list of strings, numbers or booleans"
                    )
            else:
                raise ValidationError(
                    fpath,
                    f"unknown operator {op!r}; allowed: {', '.join(_COMPARISONS + _LISTS)}",
                )
            preds.append(_field_predicate(field, op, operand))
    return lambda attrs: all(p(attrs) for p in preds)


def _legacy_comparison(node: Any, path: str) -> tuple[str, str, Any]:
    if not isinstance(node, Mapping):
        raise ValidationError(path, "must be an object {type, key, value}")
    op = node.get("type")
    if op not in _LEGACY_OPS:
        raise ValidationError(
            f"{path}.type", f"must be one of {', '.join(_LEGACY_OPS)} (or and/or at the top level)"
        )
    key = node.get("key")
    if not isinstance(key, str) or not key:
        raise ValidationError(f"{path}.key", "must be a non-empty string")
    value = node.get("value")
    if not _scalar(value) or value is None:
        raise ValidationError(f"{path}.value", "must be a string, number or boolean")
    return _LEGACY_OPS[op], key.lower(), value


def compile_legacy_filter(filters: Any, *, path: str = "filters") -> Predicate:
    """Validate a legacy AutoRAG filter and compile it into a predicate.

    Args:
        filters: ``{type, key, value}`` or ``{type: "and"|"or", filters: [...]}`` (one level).
        path: Field path used in error messages.

    Returns:
        A function of an item's attribute mapping.

    Raises:
        ValidationError: When the filter does not follow the legacy syntax.
    """
    if filters is None or filters == {}:
        return lambda _attrs: True
    if not isinstance(filters, Mapping):
        raise ValidationError(path, "must be an object")
    kind = filters.get("type")
    if kind in ("and", "or"):
        subs = filters.get("filters")
        if not isinstance(subs, list) or not subs:
            raise ValidationError(f"{path}.filters", "must be a non-empty list of comparisons")
        parts = [_legacy_comparison(s, f"{path}.filters[{i}]") for i, s in enumerate(subs)]
        if kind == "or" and (
            any(op != "$eq" for op, _, _ in parts) or len({k for _, k, _ in parts}) > 1
        ):
            raise ValidationError(
                path, "an 'or' filter only takes 'eq' comparisons on one and the same key"
            )
        preds = [_field_predicate(k, op, v) for op, k, v in parts]
        if kind == "and":
            return lambda attrs: all(p(attrs) for p in preds)
        return lambda attrs: any(p(attrs) for p in preds)
    op, key, value = _legacy_comparison(filters, path)
    return _field_predicate(key, op, value)
