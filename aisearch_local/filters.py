"""Metadata filters: the Vectorize syntax of AI Search and the legacy AutoRAG syntax.

New syntax (``ai_search_options.retrieval.filters``, items ``metadata_filter``)::

    {"folder": "docs/", "timestamp": {"$gte": 1735689600}, "tag": {"$in": ["a", "b"]}}

Operators ``$eq $ne $gt $gte $lt $lte $in $nin``; several keys are an implicit AND; a bare value
means ``$eq``. Legacy syntax (``/autorag/rags/...``)::

    {"type": "eq", "key": "folder", "value": "docs/"}
    {"type": "and" | "or", "filters": [<comparison>, ...]}

Both compile into a :class:`Filter`: a predicate over one item's attributes (see
:func:`aisearch_local.store.item_attributes`) that also computes, with numpy, the mask of every
item of an :class:`ItemTable` (the columnar attributes of an instance: per field, one code per
item and one entry per distinct value). A condition is evaluated once per distinct value (a
dict lookup for equality, one vectorised comparison over the distinct numbers or strings for a
range), then gathered over the items. As in AI Search, strings compare on their first 64 UTF-8
bytes, and a ``timestamp`` value below 10^11 is taken as seconds (stored values are
milliseconds, compared at second precision).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from aisearch_local.errors import ValidationError

__all__ = ["Filter", "ItemTable", "Predicate", "compile_filter", "compile_legacy_filter"]

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


_EXACT = 2**53  # integers up to this magnitude compare the same as float64


def _as_float(value: float) -> float:
    try:
        return float(value)
    except OverflowError:  # an integer past float64 (only from a database of an old version)
        return math.copysign(math.inf, value)


class _Column:
    """One field's values over the items: a code per item, one entry per distinct value.

    Code 0 is "missing or null"; code 1 collects the values no scalar condition matches
    (objects, arrays, NaN). Other codes are keyed by type and value, so ``True`` and ``1``
    stay apart; numbers are kept exactly (``4`` and ``4.0`` share a code: every comparison
    treats them alike).
    """

    def __init__(self, size: int) -> None:
        self.codes = np.zeros(size, dtype=np.int32)
        self.values: list[Any] = [None, None]
        self.lookup: dict[tuple[str, Any], int] = {}
        self._typed: tuple[int, dict[str, Any]] | None = None

    def code(self, value: Any) -> int:
        if value is None:
            return 0
        if isinstance(value, bool):
            key: tuple[str, Any] = ("b", value)
        elif isinstance(value, (int, float)):
            if isinstance(value, float) and math.isnan(value):
                return 1
            key = ("n", value)
        elif isinstance(value, str):
            key = ("s", value)
        else:
            return 1
        code = self.lookup.get(key)
        if code is None:
            code = self.lookup[key] = len(self.values)
            self.values.append(value)
        return code

    def typed(self) -> dict[str, Any]:
        """The distinct values by type, as numpy arrays (rebuilt when new values came)."""
        if self._typed is not None and self._typed[0] == len(self.values):
            return self._typed[1]
        nums = [(c, v) for (t, v), c in self.lookup.items() if t == "n"]
        strs = [(c, v) for (t, v), c in self.lookup.items() if t == "s"]
        num_vals = np.array([_as_float(v) for _, v in nums], dtype=np.float64)
        exact = all(isinstance(v, float) or -_EXACT <= v <= _EXACT for _, v in nums)
        nul = any("\x00" in v for _, v in strs)
        typed = {
            "num_codes": np.array([c for c, _ in nums], dtype=np.int64),
            "num_vals": num_vals,
            "num_raw": [v for _, v in nums],
            "num_exact": exact,
            "str_codes": np.array([c for c, _ in strs], dtype=np.int64),
            "str_vals": np.array([v for _, v in strs], dtype=str) if strs and not nul else None,
            "str_raw": [v for _, v in strs],
            "bools": [(c, v) for (t, v), c in self.lookup.items() if t == "b"],
        }
        self._typed = (len(self.values), typed)
        return typed

    def equal(self, target: Any) -> np.ndarray:
        """Which codes equal ``target`` under ``$eq`` (numbers as floats, as :func:`_num_eq`)."""
        ok = np.zeros(len(self.values), dtype=bool)
        if target is None:
            ok[0] = True
        elif isinstance(target, bool):
            code = self.lookup.get(("b", target))
            if code is not None:
                ok[code] = True
        elif isinstance(target, str):
            code = self.lookup.get(("s", target))
            if code is not None:
                ok[code] = True
        elif isinstance(target, (int, float)):
            typed = self.typed()
            ok[typed["num_codes"][typed["num_vals"] == float(target)]] = True
        return ok

    def compare(self, op: str, target: Any) -> np.ndarray:
        """Which codes satisfy ``value <op> target`` for a range operator (as :func:`_compare`)."""
        ok = np.zeros(len(self.values), dtype=bool)
        if target is None:
            return ok
        typed = self.typed()
        if isinstance(target, str):
            vals = typed["str_vals"]
            if vals is not None and "\x00" not in target:
                ok[typed["str_codes"][_OPS[op](vals, target)]] = True
            else:  # numpy's fixed-width strings drop trailing NULs: compare in Python
                hits = [_compare(op, v, target) for v in typed["str_raw"]]
                ok[typed["str_codes"][np.array(hits, dtype=bool)]] = True
            return ok
        if typed["num_exact"] and (isinstance(target, float) or -_EXACT <= target <= _EXACT):
            ok[typed["num_codes"][_OPS[op](typed["num_vals"], float(target))]] = True
        else:
            hits = [_compare(op, v, target) for v in typed["num_raw"]]
            ok[typed["num_codes"][np.array(hits, dtype=bool)]] = True
        for code, value in typed["bools"]:
            ok[code] = _compare(op, value, target)
        return ok


_OPS: dict[str, Any] = {
    "$gt": np.greater,
    "$gte": np.greater_equal,
    "$lt": np.less,
    "$lte": np.less_equal,
}


class ItemTable:
    """The filterable attributes of an instance's items, columnar and indexed by item key.

    Each field (lower-cased) is a :class:`_Column`; values are stored normalised as
    :func:`_norm` compares them. Updated in place when items are written or deleted.
    """

    def __init__(self) -> None:
        self.size = 0
        self.columns: dict[str, _Column] = {}
        self._present = np.zeros(0, dtype=bool)

    def _reserve(self, pk: int) -> None:
        if pk < self.size:
            return
        size = max(pk + 1, self.size + self.size // 2, 1024)
        for col in self.columns.values():
            codes = np.zeros(size, dtype=np.int32)
            codes[: self.size] = col.codes[: self.size]
            col.codes = codes
        present = np.zeros(size, dtype=bool)
        present[: self.size] = self._present[: self.size]
        self._present = present
        self.size = size

    def set(self, pk: int, attrs: Mapping[str, Any]) -> None:
        """Record an item's attributes (replacing what it had)."""
        self._reserve(pk)
        for name, old in self.columns.items():
            if name not in attrs:
                old.codes[pk] = 0
        for name, value in attrs.items():
            col = self.columns.get(name)
            if col is None:
                col = self.columns[name] = _Column(self.size)
            col.codes[pk] = col.code(_norm(name, value, operand=False))
        self._present[pk] = True

    def clear(self, pk: int) -> None:
        """Forget an item's attributes (deleted, or no chunks any more)."""
        if pk < self.size:
            for col in self.columns.values():
                col.codes[pk] = 0
            self._present[pk] = False

    def column(self, name: str) -> _Column | None:
        """The column of a (lower-cased) field, or None when no item has it."""
        return self.columns.get(name)


class Filter:
    """A compiled filter: call it on one item's attributes, or :meth:`mask` a whole table."""

    def __call__(self, attrs: Mapping[str, Any]) -> bool:
        """Whether the filter keeps an item with these attributes."""
        raise NotImplementedError  # pragma: no cover - abstract

    def mask(self, table: ItemTable) -> np.ndarray:
        """Which items (indexed by primary key, ``table.size`` long) the filter keeps."""
        raise NotImplementedError  # pragma: no cover - abstract

    @property
    def matches_all(self) -> bool:
        """Whether the filter keeps every item (no condition)."""
        return False


class _All(Filter):
    def __init__(self, parts: Sequence[Filter]) -> None:
        self.parts = list(parts)

    def __call__(self, attrs: Mapping[str, Any]) -> bool:
        return all(p(attrs) for p in self.parts)

    def mask(self, table: ItemTable) -> np.ndarray:
        out = np.ones(table.size, dtype=bool)
        for part in self.parts:
            out &= part.mask(table)
        return out

    @property
    def matches_all(self) -> bool:
        return all(p.matches_all for p in self.parts)


class _Any(Filter):
    def __init__(self, parts: Sequence[Filter]) -> None:
        self.parts = list(parts)

    def __call__(self, attrs: Mapping[str, Any]) -> bool:
        return any(p(attrs) for p in self.parts)

    def mask(self, table: ItemTable) -> np.ndarray:
        out = np.zeros(table.size, dtype=bool)
        for part in self.parts:
            out |= part.mask(table)
        return out


class _Field(Filter):
    """One condition on one field."""

    def __init__(self, field: str, op: str, operand: Any) -> None:
        if field == "timestamp" and isinstance(operand, str) and _DIGITS.fullmatch(operand):
            operand = int(operand)
        self.field = field
        self.op = op
        if op in _LISTS:
            self.wanted = [_norm(field, v, operand=True) for v in operand]
        else:
            self.target = _norm(field, operand, operand=True)

    def __call__(self, attrs: Mapping[str, Any]) -> bool:
        value = _norm(self.field, attrs.get(self.field), operand=False)
        if self.op in _LISTS:
            hit = any(_compare("$eq", value, w) for w in self.wanted)
            return hit if self.op == "$in" else not hit
        return _compare(self.op, value, self.target)

    def _codes_ok(self, col: _Column) -> np.ndarray:
        if self.op in _LISTS:
            ok = np.zeros(len(col.values), dtype=bool)
            for w in self.wanted:
                ok |= col.equal(w)
            return ok if self.op == "$in" else ~ok
        if self.op == "$eq":
            return col.equal(self.target)
        if self.op == "$ne":
            return ~col.equal(self.target)
        return col.compare(self.op, self.target)

    def mask(self, table: ItemTable) -> np.ndarray:
        col = table.column(self.field)
        if col is None:  # no item has the field: every value is null
            return np.full(table.size, self({}), dtype=bool)
        return self._codes_ok(col)[col.codes[: table.size]]


Predicate = Filter
"""A compiled filter (the older name)."""


def compile_filter(filters: Any, *, path: str = "filters") -> Filter:
    """Validate a Vectorize-style filter and compile it into a predicate.

    Args:
        filters: The filter object (``None`` or ``{}`` match everything).
        path: Field path used in error messages.

    Returns:
        A :class:`Filter` (callable on an item's attribute mapping).

    Raises:
        ValidationError: When the filter does not follow the syntax.
    """
    if filters is None:
        return _All([])
    if not isinstance(filters, Mapping):
        raise ValidationError(path, "must be an object mapping field names to conditions")
    preds: list[Filter] = []
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
            preds.append(_Field(field, "$eq", cond))
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
            preds.append(_Field(field, op, operand))
    return _All(preds)


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


def compile_legacy_filter(filters: Any, *, path: str = "filters") -> Filter:
    """Validate a legacy AutoRAG filter and compile it into a predicate.

    Args:
        filters: ``{type, key, value}`` or ``{type: "and"|"or", filters: [...]}`` (one level).
        path: Field path used in error messages.

    Returns:
        A :class:`Filter` (callable on an item's attribute mapping).

    Raises:
        ValidationError: When the filter does not follow the legacy syntax.
    """
    if filters is None or filters == {}:
        return _All([])
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
        preds: list[Filter] = [_Field(k, op, v) for op, k, v in parts]
        return _All(preds) if kind == "and" else _Any(preds)
    op, key, value = _legacy_comparison(filters, path)
    return _Field(key, op, value)
