"""Configurations to compare: a grid of search options, from the command line or a file.

A configuration is a name and the ``ai_search_options`` sent with every query. Options are
named by a dotted path into ``SearchOptions`` (``retrieval.fusion_method``,
``reranking.enabled``) or by a short name: a field of ``RetrievalOptions``
(``retrieval_type``, ``fusion_method``, ``keyword_match_mode``, ``match_threshold``,
``max_num_results``, ``boost_by``, ``filters``, ``context_expansion``), ``reranking``
(``reranking.enabled``), ``reranking_model`` or ``query_rewrite`` (``query_rewrite.enabled``).

Every configuration is checked with the client's own ``SearchOptions`` before a query is sent,
so a bad value fails at once with the field and its allowed range.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aisearch import InvalidRequestError, RetrievalOptions, coerce_options

__all__ = ["Config", "GridError", "build_grid", "load_grid_file", "parse_assignment", "set_option"]

SHORT_NAMES = {
    **{name: f"retrieval.{name}" for name in RetrievalOptions.model_fields},
    "reranking": "reranking.enabled",
    "reranking_model": "reranking.model",
    "query_rewrite": "query_rewrite.enabled",
}


class GridError(ValueError):
    """A grid that cannot be built: the message names the option or the configuration."""


@dataclass(frozen=True)
class Config:
    """One configuration: a name and its search options (``{}``: the instance's defaults)."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)


def _path(name: str) -> str:
    name = name.strip()
    if not name:
        raise GridError("option name: must not be empty")
    return SHORT_NAMES.get(name, name)


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_assignment(text: str) -> tuple[str, list[Any]]:
    """Read ``NAME=V1,V2,...`` (the values to try) into a dotted path and its values.

    Each value is read as JSON when it can be (``true``, ``0.5``, ``null``), as a string
    otherwise. A value starting with ``[`` is one JSON list of the values to try (for values
    holding commas: ``boost_by=[[{"field": "rating", "direction": "desc"}], []]``).

    Args:
        text: The assignment.

    Returns:
        The dotted path and the values.

    Raises:
        GridError: If it has no ``=`` or no value.
    """
    name, sep, rest = text.partition("=")
    if not sep or not rest.strip():
        raise GridError(f"{text!r}: must be NAME=VALUE[,VALUE...]")
    rest = rest.strip()
    if rest.startswith("["):
        values = _value(rest)
        if not isinstance(values, list) or not values:
            raise GridError(f"{name}: a value starting with '[' must be a non-empty JSON list")
        return _path(name), values
    return _path(name), [_value(v.strip()) for v in rest.split(",")]


def set_option(options: dict[str, Any], path: str, value: Any) -> None:
    """Set a dotted path in nested options (``None`` removes it)."""
    *parents, leaf = path.split(".")
    node = options
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise GridError(f"{path}: {part} is not an object")
        node = child
    if value is None:
        node.pop(leaf, None)
    else:
        node[leaf] = value


def _label(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def check_config(config: Config) -> Config:
    """Validate a configuration's options with the client's ``SearchOptions``.

    Raises:
        GridError: Naming the configuration, the field and the allowed values.
    """
    try:
        coerce_options(dict(config.options))
    except InvalidRequestError as exc:
        raise GridError(f"configuration {config.name!r}: {exc}") from None
    return config


def build_grid(
    vary: Sequence[tuple[str, Sequence[Any]]] = (),
    *,
    base: Mapping[str, Any] | None = None,
    configs: Iterable[Config] = (),
    include_default: bool = True,
) -> list[Config]:
    """Every configuration to run: the default, the given ones, then the product of ``vary``.

    Args:
        vary: Dotted paths and the values to try: every combination is one configuration.
        base: Options every configuration starts from (the product's and the given ones').
        configs: Named configurations (from a file).
        include_default: Run the instance's defaults (``options`` = ``base``) first.

    Returns:
        The configurations, each validated, with distinct names.

    Raises:
        GridError: For a bad option or two configurations with the same name.
    """
    base = dict(base or {})
    out: list[Config] = []
    if include_default:
        out.append(Config("default", _merged(base, {})))
    out.extend(Config(c.name, _merged(base, c.options)) for c in configs)
    if vary:
        paths = [p for p, _ in vary]
        for combo in itertools.product(*(values for _, values in vary)):
            options: dict[str, Any] = json.loads(json.dumps(base))
            for path, value in zip(paths, combo, strict=True):
                set_option(options, path, value)
            name = " ".join(
                f"{p.rsplit('.', 1)[-1]}={_label(v)}" for p, v in zip(paths, combo, strict=True)
            )
            out.append(Config(name, options))
    names = [c.name for c in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise GridError(f"configuration names must be distinct ({', '.join(map(repr, dupes))})")
    return [check_config(c) for c in out]


def _merged(base: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(base))
    for key, value in options.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def load_grid_file(path: str | Path) -> tuple[list[Config], list[tuple[str, list[Any]]]]:
    """Read a grid file (JSON): named configurations, values to vary, or both.

    The file is a list of ``{"name": ..., "options": {...}}``, or an object with ``configs``
    (that list) and/or ``vary`` (``{"retrieval_type": ["vector", "hybrid"], ...}``).

    Returns:
        The named configurations and the values to vary.

    Raises:
        GridError: If the file is missing or malformed.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise GridError(f"{path}: cannot read a JSON grid ({exc})") from None
    if isinstance(data, list):
        data = {"configs": data}
    if not isinstance(data, dict) or not set(data) <= {"configs", "vary"}:
        raise GridError(f"{path}: must be a list of configurations or an object with configs/vary")
    configs: list[Config] = []
    for i, entry in enumerate(data.get("configs") or []):
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("name"), str)
            or not entry["name"]
            or not isinstance(entry.get("options", {}), dict)
        ):
            raise GridError(f"{path}: configs[{i}]: must be {{'name': str, 'options': object}}")
        configs.append(Config(entry["name"], entry.get("options", {})))
    vary_in = data.get("vary") or {}
    if not isinstance(vary_in, dict) or not all(
        isinstance(v, list) and v for v in vary_in.values()
    ):
        raise GridError(f"{path}: vary: must map option names to non-empty lists of values")
    return configs, [(_path(k), list(v)) for k, v in vary_in.items()]
