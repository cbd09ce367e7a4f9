r"""JSON in and out of the local server: one strict parser for writes, defensive output for reads.

Every JSON the server accepts (request bodies, the ``metadata`` form field of an upload, the
``metadata_filter`` query parameter, ``<file>.meta.json`` sidecars) goes through
:func:`loads_strict`, which refuses what the server could not store and serve back as JSON:

* the constants ``NaN``, ``Infinity`` and ``-Infinity``, and numbers that overflow to infinity
  (``1e400``);
* integers outside the interoperable range of I-JSON (RFC 7493), ``-(2**53 - 1)`` to
  ``2**53 - 1`` (:data:`MAX_INT`); a float such as ``1e300`` is a finite float and is kept;
* strings (values or keys) holding a lone UTF-16 surrogate (``"\ud800"``): they cannot be
  encoded as UTF-8;
* nesting deeper than :data:`MAX_DEPTH` levels (objects and arrays);
* more than :data:`MAX_CONTAINERS` ``[`` and ``{`` or :data:`MAX_SEPARATORS` ``,`` in the raw
  text, counted before parsing (at C speed, strings included): a 15 MiB body of empty arrays
  would otherwise cost over a gigabyte and seconds of parsing before any other check.

The error names the path of the offending value (``metadata.note``, ``messages[0].content``).

Reads go the other way: :func:`loads_lenient` reads JSON stored by an older version (which may
hold ``NaN`` or a lone surrogate) and :class:`SafeJSONResponse` / :func:`dumps_safe` serialise
with a fallback through :func:`sanitize`, which turns non-finite numbers into ``null``, replaces
lone surrogates with U+FFFD and cuts nesting below :data:`MAX_READ_DEPTH`. A value already in the
database can therefore never take a read route down.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable
from typing import Any

import orjson
from starlette.responses import JSONResponse

from aisearch_local.errors import ValidationError

__all__ = [
    "MAX_CONTAINERS",
    "MAX_DEPTH",
    "MAX_INT",
    "MAX_READ_DEPTH",
    "MAX_SEPARATORS",
    "SafeJSONResponse",
    "check_text",
    "dumps_safe",
    "dumps_strict",
    "loads_lenient",
    "loads_strict",
    "render_wire",
    "sanitize",
    "scrub_text",
]

logger = logging.getLogger(__name__)

MAX_DEPTH = 32
"""Deepest nesting of objects and arrays accepted in a JSON input (the top level is 1)."""

MAX_CONTAINERS = 100_000
"""Most ``[`` plus ``{`` characters accepted in a JSON input's raw text (inside strings too)."""

MAX_SEPARATORS = 1_000_000
"""Most ``,`` characters accepted in a JSON input's raw text (inside strings too): a bound on
the number of values. A 10 MiB base64 file part holds none; prose about one per 40 characters."""

MAX_INT = 2**53 - 1
"""Largest integer magnitude accepted in a JSON input (I-JSON's interoperable range)."""

MAX_READ_DEPTH = 64
"""Nesting kept when serialising stored data; deeper values are replaced by ``null``."""

_MAX_INT_DIGITS = len(str(MAX_INT)) + 1  # a sign or a leading zero at most


class _Bad:
    """Marker the parse hooks return for a refused number, reported with its path later."""

    __slots__ = ("why",)

    def __init__(self, why: str) -> None:
        self.why = why


def _bad_constant(name: str) -> _Bad:
    return _Bad(f"{name} is not allowed (only finite numbers can be stored)")


def _parse_float(text: str) -> float | _Bad:
    value = float(text)
    if not math.isfinite(value):
        shown = text if len(text) <= 40 else text[:40] + "..."
        return _Bad(f"the number {shown} overflows to infinity (only finite numbers are allowed)")
    return value


def _parse_int(text: str) -> int | _Bad:
    value = int(text) if len(text) <= _MAX_INT_DIGITS else None
    if value is None or abs(value) > MAX_INT:
        shown = text if len(text) <= 40 else f"{text[:20]}... ({len(text)} digits)"
        return _Bad(
            f"the integer {shown} is out of range (allowed: -{MAX_INT} to {MAX_INT}, i.e. 2^53 - 1)"
        )
    return value


def _has_lone_surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _clean_scalar(value: Any) -> bool:
    kind = type(value)
    if kind is str:
        return not _has_lone_surrogate(value)
    if kind is int:
        return bool(-MAX_INT <= value <= MAX_INT)
    if kind is float:
        return math.isfinite(value)
    return True


def _clean(value: Any) -> bool:
    """Whether a value parsed by plain ``json.loads`` is one :func:`loads_strict` accepts.

    No lone surrogate, no integer past :data:`MAX_INT`, no NaN or infinity, no nesting past
    :data:`MAX_DEPTH`: the checks of the hooks and :func:`_check_tree`, without a Python call
    per number and without the path of every value, which cost most of the parse (a 7 MB body
    of 900,000 numbers: 0.58 s, json.loads alone 0.07 s). Values parsed by ``json.loads`` have
    exact types (no subclasses).
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        kind = type(node)
        children: Iterable[Any]
        if kind is dict:
            if depth > MAX_DEPTH:
                return False
            for key in node:
                if not key.isascii() and _has_lone_surrogate(key):
                    return False
            children = node.values()
        elif kind is list:
            if depth > MAX_DEPTH:
                return False
            children = node
        else:  # the top level only: the values inside containers are checked below
            return _clean_scalar(node)
        for child in children:
            kind = type(child)
            if kind is str:
                if not child.isascii() and _has_lone_surrogate(child):
                    return False
            elif kind is int:
                if not -MAX_INT <= child <= MAX_INT:
                    return False
            elif kind is float:
                if not math.isfinite(child):
                    return False
            elif kind is dict or kind is list:
                stack.append((child, depth + 1))
    return True


def _check_tree(value: Any, root: str, prefix: str) -> None:
    """Walk a parsed value (iteratively) for refused numbers, lone surrogates and depth."""
    stack: list[tuple[Any, str, int]] = [(value, prefix, 1)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, str):
            if _has_lone_surrogate(node):
                raise ValidationError(
                    path or root, "contains a lone UTF-16 surrogate (not encodable as UTF-8)"
                )
        elif isinstance(node, _Bad):
            raise ValidationError(path or root, node.why)
        elif isinstance(node, (dict, list)):
            if depth > MAX_DEPTH:
                raise ValidationError(path or root, f"nests deeper than {MAX_DEPTH} levels")
            if isinstance(node, dict):
                for k, v in node.items():
                    if _has_lone_surrogate(k):
                        shown = k.encode("utf-8", "backslashreplace").decode("ascii", "replace")
                        raise ValidationError(
                            _join(path, shown),
                            "the field name contains a lone UTF-16 surrogate",
                        )
                    stack.append((v, _join(path, k), depth + 1))
            else:
                stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(node))


def _check_size(raw: bytes | str, what: str) -> None:
    """Refuse a text with too many containers or separators, before parsing it."""
    if isinstance(raw, str):
        containers, separators = raw.count("[") + raw.count("{"), raw.count(",")
    else:
        containers, separators = raw.count(b"[") + raw.count(b"{"), raw.count(b",")
    if containers > MAX_CONTAINERS:
        raise ValidationError(
            what,
            f"holds {containers} '[' and '{{' (at most {MAX_CONTAINERS} arrays and objects, "
            "counted in the raw text, strings included)",
        )
    if separators > MAX_SEPARATORS:
        raise ValidationError(
            what,
            f"holds {separators} ',' (at most {MAX_SEPARATORS} values, counted in the raw "
            "text, strings included)",
        )


def loads_strict(raw: bytes | str, *, what: str = "request body", prefix: str = "") -> Any:
    """Parse JSON, refusing anything the server could not store and serve back.

    Args:
        raw: The JSON text (bytes are decoded as UTF-8, or UTF-16/32 with a BOM, as
            :func:`json.loads` does).
        what: The name of the input, used in errors about the whole value.
        prefix: The path prefix of the values inside (``""`` for a request body, whose fields
            are named bare: ``query``; ``"metadata"`` gives ``metadata.note``).

    Returns:
        The parsed value.

    Raises:
        ValidationError: Not JSON, or a value outside what the module docstring allows; the
            error's ``field`` is the path of the value (``what`` for the top level).
    """
    _check_size(raw, what)
    try:
        value = json.loads(raw)  # at C speed; the common case: nothing to refuse
    except (ValueError, RecursionError):
        pass  # the parse below says why, as it always did
    else:
        if _clean(value):
            return value
    # something to refuse: parse again with the hooks and name the first fault's path
    try:
        value = json.loads(
            raw,
            parse_constant=_bad_constant,
            parse_float=_parse_float,
            parse_int=_parse_int,
        )
    except RecursionError:
        raise ValidationError(what, f"nests deeper than {MAX_DEPTH} levels") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationError(what, f"is not valid JSON ({exc})") from exc
    _check_tree(value, what, prefix)
    return value


def check_text(value: str, field: str) -> None:
    """Raise :class:`ValidationError` when a string holds a lone surrogate."""
    if _has_lone_surrogate(value):
        raise ValidationError(field, "contains a lone UTF-16 surrogate (not encodable as UTF-8)")


# -- reads --------------------------------------------------------------------------------------


def scrub_text(text: str) -> str:
    """Return ``text`` with every lone surrogate replaced by U+FFFD (pairs are recombined)."""
    if not _has_lone_surrogate(text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def sanitize(value: Any, _depth: int = 1) -> Any:
    """Return a copy of ``value`` that :func:`json.dumps` can always encode as UTF-8 JSON.

    Non-finite floats become None, strings (and keys) lose their lone surrogates (U+FFFD), and
    containers nested deeper than :data:`MAX_READ_DEPTH` become None. Other JSON types are kept.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, (dict, list, tuple)):
        if _depth > MAX_READ_DEPTH:
            return None
        if isinstance(value, dict):
            return {
                (scrub_text(k) if isinstance(k, str) else k): sanitize(v, _depth + 1)
                for k, v in value.items()
            }
        return [sanitize(v, _depth + 1) for v in value]
    return value


def _finite_or_none(text: str) -> float | None:
    value = float(text)
    return value if math.isfinite(value) else None


# Reads a text as json.loads does, with NaN, infinities and numbers that overflow to infinity
# read as None, as sanitize() would turn them (a hook is called for float literals only).
_LENIENT = json.JSONDecoder(parse_float=_finite_or_none, parse_constant=lambda _name: None)


def _plain(text: str) -> bool:
    r"""Whether the value of ``text``, read by ``_LENIENT``, is one :func:`sanitize` keeps as is.

    It is unless the text holds a character outside ASCII (a lone surrogate may be one), a
    surrogate escape (``\ud800``, paired ones too) or more than :data:`MAX_READ_DEPTH`
    arrays and objects. What the server stores is written by :func:`dumps_strict` (ASCII), so
    this is the common case: a small item's metadata is read in half the time without the
    copy sanitize() makes.
    """
    return (
        text.isascii()
        and text.count("[") + text.count("{") <= MAX_READ_DEPTH
        and "\\ud" not in text
        and "\\uD" not in text
    )


def loads_lenient(text: str | bytes | None, default: Any, *, what: str = "stored JSON") -> Any:
    """Read JSON written by any version of the server; never raises.

    ``NaN`` and infinities become None, integers longer than Python's conversion limit become
    None, lone surrogates become U+FFFD, and a value that cannot be read at all (not JSON,
    nested past the recursion limit) is replaced by ``default`` (logged as a warning).
    """
    if text is None:
        return default

    def big_int(digits: str) -> int | None:
        try:
            return int(digits)
        except ValueError:
            return None

    plain = isinstance(text, str)
    try:
        try:
            # NaN and infinities: None at once from a str, floats sanitize nulls from bytes
            value = _LENIENT.decode(text) if isinstance(text, str) else json.loads(text)
        except json.JSONDecodeError:
            raise
        except ValueError:  # an integer past Python's 4300-digit conversion limit
            value = json.loads(text, parse_int=big_int)
            plain = False
    except (ValueError, RecursionError) as exc:
        logger.warning("unreadable %s replaced by %r: %s", what, default, exc)
        return default
    if plain and isinstance(text, str) and _plain(text):
        return value
    return sanitize(value)


def dumps_strict(value: Any) -> str:
    """Serialise a value for storage; refuses NaN and infinities (``allow_nan=False``)."""
    return json.dumps(value, allow_nan=False)


def dumps_safe(value: Any, **kwargs: Any) -> str:
    """Serialise for the wire: fast path, else through :func:`sanitize` (never raises on data)."""
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False, **kwargs)
        text.encode("utf-8")
    except (ValueError, RecursionError):
        text = json.dumps(sanitize(value), allow_nan=False, ensure_ascii=False, **kwargs)
    return text


# starlette's JSONResponse.render settings, in one encoder made once (json.dumps with
# arguments makes one per call); tests/unit_tests/local/test_jsonsafe.py checks they agree
_WIRE = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))

# orjson writes what _WIRE writes, about ten times faster (a 10-chunk search answer: 6.5 us
# against 57; 25 with the checks of _orjson_may_differ), except: a float in [1e-9, 1e-4)
# (orjson 1e-6 and 0.00001, json 1e-06 and 1e-05), NaN and infinities (orjson null, json
# refuses them), and what orjson refuses (an integer past 64 bits, a lone surrogate, a key that
# is not a str, nesting past 255, a subclass of str, int, float, dict or list: passed through
# to its missing default). orjson also writes a uuid.UUID or an Enum, which json refuses (a
# 500 before); no answer of the server holds one.
_ORJSON_OPTIONS = (
    orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
)


def _orjson_may_differ(out: bytes) -> bool:
    """Whether ``out`` (orjson's) may differ from what ``_WIRE`` writes for the same value.

    It may when it holds ``null`` (perhaps a NaN), ``0.0000`` (a float below 1e-4) or an
    ``e-`` followed by one digit and the end of the number or of the output (``1e-6``; json
    writes ``1e-06``).
    Text holding these goes the slow way too, which is only slower.
    """
    if b"null" in out or b"0.0000" in out:
        return True
    i = out.find(b"e-")
    while i >= 0:
        if out[i + 2 : i + 3].isdigit() and out[i + 3 : i + 4] in (b",", b"]", b"}", b""):
            return True
        i = out.find(b"e-", i + 2)
    return False


def render_wire(content: Any) -> bytes:
    """``content`` as starlette's ``JSONResponse`` renders it, byte for byte; never raises on data.

    orjson first; when its bytes may differ from json's (:func:`_orjson_may_differ`) or it
    refuses the value, the json encoder; when that fails (a NaN, a lone surrogate, nesting
    past the recursion limit), :func:`sanitize` of the content.
    """
    try:
        out = orjson.dumps(content, option=_ORJSON_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError is one
        pass
    else:
        if not _orjson_may_differ(out):
            return out
    try:
        return _WIRE.encode(content).encode("utf-8")
    except (ValueError, RecursionError):
        logger.warning("response held values JSON cannot carry; sent them sanitised")
        return _WIRE.encode(sanitize(content)).encode("utf-8")


class SafeJSONResponse(JSONResponse):
    """A :class:`~starlette.responses.JSONResponse` that cannot fail on the data it carries.

    It renders exactly as starlette does (:func:`render_wire`); when that fails (a NaN, a lone
    surrogate, nesting past the recursion limit), it renders :func:`sanitize` of the content.
    """

    def render(self, content: Any) -> bytes:
        """Render the content as UTF-8 JSON, sanitising it when needed."""
        return render_wire(content)
