"""Metadata filters: Vectorize syntax validation and translation to the legacy AutoRAG form.

The AI Search filter syntax (``ai_search_options.retrieval.filters`` and the items
``metadata_filter``) is Vectorize's::

    {"folder": "docs/", "timestamp": {"$gte": 1735689600, "$lt": 1735900000}}

Several keys are ANDed; a bare value means ``$eq``; operators are ``$eq $ne $gt $gte $lt
$lte`` (a scalar or null) and ``$in $nin`` (a non-empty list of scalars); there is no
``$and`` / ``$or`` and no nesting.

The legacy ``/autorag/rags`` routes take ``{"type": "eq", "key": ..., "value": ...}``
comparisons and one level of ``{"type": "and" | "or", "filters": [...]}`` where ``or`` only
allows ``eq`` on a single key.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from aisearch._exceptions import InvalidRequestError

__all__ = ["is_legacy_filter", "to_legacy_filter", "validate_filters", "validate_legacy_filter"]

SCALAR_OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")
LIST_OPERATORS = ("$in", "$nin")
OPERATORS = SCALAR_OPERATORS + LIST_OPERATORS
_ALLOWED = ", ".join(OPERATORS)
_LEGACY_COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte")


def _is_scalar(value: object) -> bool:
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return isinstance(value, (str, int, float, bool))


def _check_scalar(value: object, where: str, *, allow_null: bool) -> None:
    if value is None and allow_null:
        return
    if not _is_scalar(value):
        kinds = "a string, number, boolean or null" if allow_null else "a string, number or boolean"
        raise InvalidRequestError(f"{where}: must be {kinds} (got {value!r})")


def _same_key_values(branches: list[Any]) -> tuple[str, list[Any]] | None:
    """``("k", [a, b])`` when every branch is ``{"k": a}``, ``{"k": {"$eq": a}}`` or ``$in``."""
    keys: set[object] = set()
    values: list[Any] = []
    for branch in branches:
        if not isinstance(branch, Mapping) or len(branch) != 1:
            return None
        ((key, condition),) = branch.items()
        keys.add(key)
        if isinstance(condition, Mapping) and list(condition) == ["$in"]:
            if not isinstance(condition["$in"], (list, tuple)):
                return None
            values.extend(condition["$in"])
        else:
            if isinstance(condition, Mapping):
                if list(condition) != ["$eq"]:
                    return None
                condition = condition["$eq"]
            values.append(condition)
    if len(keys) != 1 or not all(_is_scalar(v) for v in values):
        return None
    (key,) = keys
    if not isinstance(key, str):
        return None
    unique = {(type(v), v): v for v in values}  # 1 and True stay two values
    return key, list(unique.values())


def _merged(branches: list[Any]) -> dict[str, Any] | None:
    """The branches of an ``$and`` as one filter, when no two of them set the same thing."""
    merged: dict[str, Any] = {}
    for branch in branches:
        if not isinstance(branch, Mapping):
            return None
        for key, condition in branch.items():
            if key not in merged:
                merged[key] = dict(condition) if isinstance(condition, Mapping) else condition
                continue
            earlier = merged[key]
            if not (isinstance(earlier, dict) and isinstance(condition, Mapping)):
                return None
            if earlier.keys() & condition.keys():
                return None
            earlier.update(condition)
    return merged


def _logical_hint(op: str, branches: object) -> str:
    """What to write instead of ``$or`` / ``$and`` (Vectorize filters have neither)."""
    listed = list(branches) if isinstance(branches, (list, tuple)) else None
    if op == "$or":
        same = _same_key_values(listed) if listed else None
        if same is not None:
            key, values = same
            return f"$or is not supported; for one key use {_json({key: {'$in': values}})}"
        return (
            "$or is not supported; several keys in one filter are ANDed and there is no OR "
            "across keys (for one key use $in; otherwise search once per alternative)"
        )
    if op == "$and":
        merged = _merged(listed) if listed else None
        if merged:
            return (
                f"$and is not supported; several keys in one filter are ANDed: use {_json(merged)}"
            )
        return (
            "$and is not supported; several keys in one filter are ANDed: write them in one mapping"
        )
    return (
        f"logical operator {op!r} is not supported; several keys are ANDed implicitly and "
        "there is no $and/$or"
    )


def _json(value: object) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def validate_filters(filters: object, *, path: str = "filters") -> dict[str, Any]:
    """Validate a Vectorize-style metadata filter.

    Args:
        filters: The filter mapping.
        path: The field path used in error messages.

    Returns:
        The filter as a plain ``dict`` (unchanged otherwise).

    Raises:
        InvalidRequestError: Naming the offending key and operator.

    Example:
        >>> validate_filters({"folder": "docs/", "timestamp": {"$gte": 1}})
        {'folder': 'docs/', 'timestamp': {'$gte': 1}}
    """
    if not isinstance(filters, Mapping):
        raise InvalidRequestError(
            f"{path}: must be a mapping of metadata key to value or operator object "
            f"(got {type(filters).__name__})"
        )
    for key, condition in filters.items():
        if not isinstance(key, str) or not key:
            raise InvalidRequestError(f"{path}: keys must be non-empty strings (got {key!r})")
        where = f"{path}.{key}"
        if key.startswith("$"):
            raise InvalidRequestError(f"{where}: {_logical_hint(key, condition)}")
        if isinstance(condition, Mapping):
            if not condition:
                raise InvalidRequestError(f"{where}: operator object must not be empty")
            for op, operand in condition.items():
                if op not in OPERATORS:
                    raise InvalidRequestError(
                        f"{where}: unsupported operator {op!r} (allowed: {_ALLOWED})"
                    )
                if op in LIST_OPERATORS:
                    if not isinstance(operand, (list, tuple)) or not operand:
                        raise InvalidRequestError(
                            f"{where}.{op}: must be a non-empty list of strings, numbers or "
                            f"booleans (got {operand!r})"
                        )
                    for i, item in enumerate(operand):
                        _check_scalar(item, f"{where}.{op}[{i}]", allow_null=False)
                else:
                    _check_scalar(operand, f"{where}.{op}", allow_null=True)
        elif isinstance(condition, (list, tuple)):
            raise InvalidRequestError(
                f"{where}: a list is not a valid value; use {{'$in': [...]}} (allowed: {_ALLOWED})"
            )
        else:
            _check_scalar(condition, where, allow_null=True)
    return dict(filters)


def is_legacy_filter(filters: object) -> bool:
    """Tell whether a mapping looks like a legacy ``{type, key, value}`` / compound filter."""
    if not isinstance(filters, Mapping):
        return False
    kind = filters.get("type")
    if kind in _LEGACY_COMPARISONS:
        return set(filters) == {"type", "key", "value"}
    if kind in ("and", "or"):
        return set(filters) == {"type", "filters"} and isinstance(filters["filters"], list)
    return False


def _validate_legacy_comparison(comp: object, where: str) -> None:
    if not isinstance(comp, Mapping) or comp.get("type") not in _LEGACY_COMPARISONS:
        raise InvalidRequestError(
            f"{where}: must be a comparison {{'type': one of {', '.join(_LEGACY_COMPARISONS)}, "
            f"'key': ..., 'value': ...}} (got {comp!r})"
        )
    if set(comp) != {"type", "key", "value"}:
        raise InvalidRequestError(f"{where}: needs exactly the keys type, key and value")
    if not isinstance(comp["key"], str) or not comp["key"]:
        raise InvalidRequestError(f"{where}.key: must be a non-empty string")
    _check_scalar(comp["value"], f"{where}.value", allow_null=False)


def validate_legacy_filter(filters: object, *, path: str = "filters") -> dict[str, Any]:
    """Validate a legacy AutoRAG filter (one comparison, or one level of and/or) into a dict.

    An ``or`` must compare one key with ``eq``; ``path`` is the field path in error messages.
    """
    if not isinstance(filters, Mapping):
        raise InvalidRequestError(f"{path}: must be a mapping (got {type(filters).__name__})")
    kind = filters.get("type")
    if kind in ("and", "or"):
        subs = filters.get("filters")
        if not isinstance(subs, list) or not subs:
            raise InvalidRequestError(f"{path}.filters: must be a non-empty list of comparisons")
        for i, sub in enumerate(subs):
            _validate_legacy_comparison(sub, f"{path}.filters[{i}]")
        if kind == "or":
            if any(sub["type"] != "eq" for sub in subs):
                raise InvalidRequestError(f"{path}: an 'or' filter only allows 'eq' comparisons")
            if len({sub["key"] for sub in subs}) != 1:
                raise InvalidRequestError(f"{path}: an 'or' filter must use one key throughout")
    else:
        _validate_legacy_comparison(filters, path)
    return dict(filters)


def _comparison(op: str, key: str, value: Any, where: str) -> dict[str, Any]:
    if value is None:
        raise InvalidRequestError(
            f"{where}: null cannot be expressed in the legacy filter form "
            "(values must be strings, numbers or booleans)"
        )
    return {"type": op, "key": key, "value": value}


def to_legacy_filter(filters: Mapping[str, Any], *, path: str = "filters") -> dict[str, Any] | None:
    """Translate a Vectorize-style filter into the legacy AutoRAG form.

    ``$in`` becomes an ``or`` of ``eq`` comparisons (legacy ``or`` allows nothing else),
    ``$nin`` an ``and`` of ``ne`` comparisons; several keys become one ``and``.

    Args:
        filters: A Vectorize-style filter (validated first).
        path: The field path used in error messages.

    Returns:
        The legacy filter, or ``None`` for an empty filter.

    Raises:
        InvalidRequestError: If the filter is invalid, or cannot be expressed in the legacy
            form (``$in`` combined with other conditions would need nesting; null values).

    Example:
        >>> to_legacy_filter({"folder": "docs/"})
        {'type': 'eq', 'key': 'folder', 'value': 'docs/'}
    """
    validate_filters(filters, path=path)
    ands: list[dict[str, Any]] = []
    ors: list[dict[str, Any]] = []
    for key, condition in filters.items():
        where = f"{path}.{key}"
        ops = condition.items() if isinstance(condition, Mapping) else [("$eq", condition)]
        for op, operand in ops:
            if op == "$in":
                values = list(dict.fromkeys(operand))
                if len(values) == 1:
                    ands.append(_comparison("eq", key, values[0], f"{where}.$in"))
                else:
                    if ors:
                        raise InvalidRequestError(
                            f"{where}.$in: the legacy filter form allows only one $in "
                            "(an 'or' cannot be nested)"
                        )
                    ors = [_comparison("eq", key, v, f"{where}.$in") for v in values]
            elif op == "$nin":
                ands.extend(_comparison("ne", key, v, f"{where}.$nin") for v in operand)
            else:
                ands.append(_comparison(op[1:], key, operand, f"{where}.{op}"))
    if ors:
        if ands:
            raise InvalidRequestError(
                f"{path}: $in with more than one value cannot be combined with other "
                "conditions in the legacy filter form (an 'or' cannot be nested in an 'and')"
            )
        return {"type": "or", "filters": ors}
    if not ands:
        return None
    if len(ands) == 1:
        return ands[0]
    return {"type": "and", "filters": ands}
