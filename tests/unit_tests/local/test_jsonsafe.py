"""The strict JSON parser of aisearch_local and its defensive output (pure functions)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.responses import JSONResponse

from aisearch_local.errors import ValidationError
from aisearch_local.jsonsafe import (
    MAX_CONTAINERS,
    MAX_DEPTH,
    MAX_INT,
    MAX_SEPARATORS,
    SafeJSONResponse,
    dumps_safe,
    dumps_strict,
    loads_lenient,
    loads_strict,
    render_wire,
    sanitize,
    scrub_text,
)


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 9007199254740991}',
        '{"a": -9007199254740991}',
        '{"a": 1e308}',
        '{"a": -0.0}',
        '{"a": "\\ud83d\\ude00"}',  # a valid surrogate pair is one code point
        "[" * MAX_DEPTH + "]" * MAX_DEPTH,
        '{"a": "²"}',
    ],
)
def test_accepted_values(text):
    value = loads_strict(text)
    assert json.loads(json.dumps(value, allow_nan=False)) == value


@pytest.mark.parametrize(
    ("text", "field", "needle"),
    [
        ('{"a": NaN}', "a", "NaN"),
        ('{"a": [1, Infinity]}', "a[1]", "Infinity"),
        ('{"a": {"b": -Infinity}}', "a.b", "-Infinity"),
        ('{"a": 1e400}', "a", "infinity"),
        ('{"a": -1e400}', "a", "infinity"),
        ('{"a": 9007199254740992}', "a", "out of range"),
        ('{"a": -9007199254740992}', "a", "out of range"),
        ('{"a": 1' + "0" * 5000 + "}", "a", "5001 digits"),
        ('{"a": "\\ud800"}', "a", "surrogate"),
        ('{"a": ["x", "\\udfffy"]}', "a[1]", "surrogate"),
        ('{"\\ud800": 1}', "\\ud800", "field name"),
        ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "[0]" * MAX_DEPTH, "deeper"),
        ("[" * 100_000 + "]" * 100_000, "request body", "deeper"),
        ("{", "request body", "not valid JSON"),
        (b"\xff", "request body", "not valid JSON"),
    ],
)
def test_refused_values_name_their_path(text, field, needle):
    with pytest.raises(ValidationError) as err:
        loads_strict(text)
    assert err.value.field == field
    assert needle in err.value.message


def test_prefix_names_nested_fields():
    with pytest.raises(ValidationError) as err:
        loads_strict('{"note": NaN}', what="metadata", prefix="metadata")
    assert str(err.value).startswith("metadata.note: ")
    with pytest.raises(ValidationError) as err:
        loads_strict("NaN", what="metadata", prefix="metadata")
    assert str(err.value).startswith("metadata: ")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(alphabet=st.characters(codec=None), max_size=8)
    | st.sampled_from(["\ud800", "a\udfffb", "\udc00\ud800"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=10,
)


def _finite(value):
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return abs(value) <= MAX_INT
    if isinstance(value, str):
        return scrub_text(value) == value
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    if isinstance(value, dict):
        return all(_finite(k) and _finite(v) for k, v in value.items())
    return True


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(json_values)
def test_strict_parse_accepts_exactly_what_can_be_served_back(value):
    text = json.dumps(value, allow_nan=True)  # what a permissive client sends
    try:
        parsed = loads_strict(text)
    except ValidationError:
        assert not _finite(value)
        return
    assert _finite(value)
    # whatever is accepted renders as strict UTF-8 JSON and reads back equal
    out = SafeJSONResponse(parsed).body
    assert json.loads(out) == json.loads(json.dumps(parsed, allow_nan=False))
    assert dumps_strict(parsed)


def _no_constant(name):
    raise AssertionError(f"{name} in the output")


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(json_values)
def test_safe_output_never_fails(value):
    text = dumps_safe(value)
    text.encode("utf-8")
    json.loads(text, parse_constant=_no_constant)  # valid JSON without NaN/Infinity literals
    body = SafeJSONResponse({"result": value}).body
    json.loads(body, parse_constant=_no_constant)
    lenient = loads_lenient(json.dumps(value, allow_nan=True), None)
    json.dumps(lenient, allow_nan=False).encode("utf-8")


def test_lenient_reads_replace_what_cannot_be_served():
    got = loads_lenient('{"a": NaN, "b": "\\ud800x", "c": 1e400, "d": 1' + "0" * 5000 + "}", {})
    assert got == {"a": None, "b": "\ufffdx", "c": None, "d": None}
    assert loads_lenient("not json", {"default": 1}) == {"default": 1}
    assert loads_lenient("[" * 100_000 + "]" * 100_000, []) == []
    assert loads_lenient(None, {}) == {}


_odd_texts = st.sampled_from(
    [
        '{"a": 1e400}',
        '{"a": -1E+309}',
        '{"a": 18e307}',
        '{"a": 1' + "0" * 320 + ".5}",
        '{"a": 1' + "0" * 250 + "e99}",
        '{"a": 1e-400}',
        '{"a": "\\uD800"}',
        '{"a": "\\ud83d\\ude00"}',
        '{"a": -Infinity, "b": NaN}',
        "[" * 70 + "]" * 70,
        "[" * 64 + "]" * 64,
        '{"d": 1' + "0" * 5000 + "}",
    ]
)


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(
    json_values.flatmap(
        lambda v: st.sampled_from(
            [json.dumps(v, allow_nan=True), json.dumps(v, allow_nan=True, ensure_ascii=False)]
        )
    )
    | _odd_texts
)
def test_lenient_reads_equal_sanitize_of_the_parse(text):
    """Skipping sanitize() for a plain text changes no value read (types included)."""

    def big_int(digits):
        try:
            return int(digits)
        except ValueError:
            return None

    try:
        expected = sanitize(json.loads(text, parse_int=big_int))
    except RecursionError:
        return
    assert repr(loads_lenient(text, "default")) == repr(expected)
    raw = text.encode("utf-8", "surrogatepass")  # bytes are read as json.loads reads them
    assert repr(loads_lenient(raw, "default")) == repr(sanitize(json.loads(raw, parse_int=big_int)))


def test_lenient_reads_of_stored_json_skip_the_sanitize_copy(monkeypatch):
    """What dumps_strict stored (ASCII, finite) is parsed only: no sanitize() walk and copy."""

    def walk(value, _depth=1):
        raise AssertionError("sanitize() called on a plain stored value")

    monkeypatch.setattr("aisearch_local.jsonsafe.sanitize", walk)
    value = {"group": "g1", "rating": 1.5, "note": "é ☃", "tags": [1, None], "tiny": 1e-300}
    assert loads_lenient(dumps_strict(value), {}) == value


def test_sanitize_cuts_deep_nesting_and_keeps_pairs():
    deep: list = []
    node = deep
    for _ in range(200):
        node.append([])
        node = node[0]
    out = sanitize({"deep": deep, "pair": "\ud83d\ude00", "lone": "\ud83d"})
    assert out["pair"] == "\U0001f600"
    assert out["lone"] == "\ufffd"
    json.dumps(out)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(json_values)
def test_safe_response_bytes_are_starlettes(value):
    """The encoder made once renders byte for byte what starlette's JSONResponse renders."""
    try:
        expected = JSONResponse(value).body
    except ValueError:  # NaN, a lone surrogate: sanitised instead (the test below)
        return
    assert SafeJSONResponse(value).body == expected


def test_safe_response_renders_like_starlette_when_it_can():
    assert SafeJSONResponse({"a": 1, "b": "é"}).body == '{"a":1,"b":"é"}'.encode()
    assert json.loads(SafeJSONResponse({"a": math.nan, "b": "\ud800"}).body) == {
        "a": None,
        "b": "\ufffd",
    }


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        # the review's shape: 15 MiB of empty arrays cost over 1 GB and seconds to parse
        (b'{"query": "x", "zz": [' + b",".join([b"[]"] * (5 * 1024 * 1024)) + b"]}", "'['"),
        (b'{"zz": [' + b"{}," * MAX_CONTAINERS + b"{}]}", "arrays and objects"),
        (b'{"zz": [' + b"1," * (MAX_SEPARATORS + 1) + b"1]}", "','"),
        ('{"zz": [' + "0," * (MAX_SEPARATORS + 1) + "0]}", "values"),  # str input too
    ],
)
def test_too_many_containers_or_values_are_refused_before_parsing(raw, needle):
    with pytest.raises(ValidationError) as info:
        loads_strict(raw)
    assert info.value.field == "request body"
    assert needle in info.value.message


def test_big_legitimate_bodies_pass_the_structure_caps():
    # a chat file part of 10 MiB in base64, and a long prose query (a comma every 40 bytes)
    b64 = "QUJD" * (10 * 1024 * 1024 * 4 // 3 // 4)
    doc = loads_strict(
        json.dumps({"messages": [{"role": "user", "content": [{"type": "file", "data": b64}]}]})
    )
    assert len(doc["messages"][0]["content"][0]["data"]) == len(b64)
    prose = ("A moka pot brews strong coffee, slowly. " * (6 * 1024 * 1024 // 40))[:-1]
    assert loads_strict(json.dumps({"query": prose}))["query"] == prose
    edge = b"[" + b"[]," * (MAX_CONTAINERS - 2) + b"[]]"  # exactly MAX_CONTAINERS arrays
    assert len(loads_strict(edge)) == MAX_CONTAINERS - 1


def _json_way(value):
    """What SafeJSONResponse rendered before orjson: json, else json of sanitize()."""
    encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    try:
        return encoder.encode(value).encode("utf-8")
    except (ValueError, RecursionError):
        return encoder.encode(sanitize(value)).encode("utf-8")


_wire_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.floats(min_value=1e-10, max_value=2e-4)
    | st.floats(min_value=-2e-4, max_value=-1e-10)
    | st.text(alphabet=st.characters(codec=None), max_size=8)
    | st.sampled_from(["\ud800", "null", "0.00001", "1e-6", "e-5,", "x e-5]"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=4), inner, max_size=4)
        | st.dictionaries(st.integers(), inner, max_size=2)
    ),
    max_leaves=16,
)


@settings(max_examples=1000, deadline=None, derandomize=True, database=None)
@given(_wire_values)
def test_render_wire_writes_the_bytes_json_writes(value):
    assert render_wire({"result": value}) == _json_way({"result": value})


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_render_wire_floats_of_every_decade_as_json(sign):
    values = [sign * m * 10.0**e for e in range(-320, 308) for m in (1.0, 1.5, 3.14159, 9.999999)]
    values += [5e-324, 1e-4, 9.99999e-5, 1e-9, 9.99e-10, 1e16, 1e15, 2.0**53, 0.0, -0.0]
    for v in values:
        assert render_wire([v, {"v": v}]) == _json_way([v, {"v": v}]), v


def test_render_wire_renders_a_search_answer_without_the_json_encoder(monkeypatch):
    """A search answer (floats, text, metadata) is written by orjson: json's encoder unused."""

    class Unused:
        def encode(self, value):
            raise AssertionError("the json encoder was used")

    chunk = {
        "id": "a921c998-7231-5977-979e-be20a0861d47-1",
        "type": "text",
        "score": 0.991935,
        "text": 'espresso é ☃ \U0001f600 "quoted" \\ \n',
        "item": {"key": "a/b.md", "timestamp": 1700000002446, "metadata": {"g": "x", "n": 1.5}},
        "scoring_details": {"vector_score": 0.578532, "vector_rank": 2, "keyword_score": 0.0},
    }
    doc = {"success": True, "errors": [], "messages": [], "result": {"chunks": [chunk] * 10}}
    expected = _json_way(doc)
    monkeypatch.setattr("aisearch_local.jsonsafe._WIRE", Unused())
    assert render_wire(doc) == expected
    assert SafeJSONResponse(doc).body == expected


def _strict_the_old_way(raw):
    """loads_strict before the plain parse: the hooks, then the walk naming every path."""
    from aisearch_local import jsonsafe

    jsonsafe._check_size(raw, "request body")
    try:
        value = json.loads(
            raw,
            parse_constant=jsonsafe._bad_constant,
            parse_float=jsonsafe._parse_float,
            parse_int=jsonsafe._parse_int,
        )
    except RecursionError:
        raise ValidationError("request body", f"nests deeper than {MAX_DEPTH} levels") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationError("request body", f"is not valid JSON ({exc})") from exc
    jsonsafe._check_tree(value, "request body", "")
    return value


def _outcome(fn, raw):
    try:
        return ("value", repr(fn(raw)))
    except ValidationError as exc:
        return ("refused", exc.field, exc.message)


_strict_texts = (
    json_values.map(lambda v: json.dumps({"q": v}, allow_nan=True))
    | json_values.map(lambda v: json.dumps(v, allow_nan=True, ensure_ascii=False))
    | st.sampled_from(
        [
            "[" * 33 + "]" * 33,
            "[" * 32 + "]" * 32,
            '{"a": [' + "[" * 40 + "]" * 40 + "]}",
            '{"a": 1' + "0" * 5000 + "}",
            '{"a": 9007199254740992}',
            '{"a": -9007199254740991}',
            '{"a": 1e400, "b": NaN}',
            '{"\\ud800": 1}',
            '"\\udc00"',
            "1e999",
            "not json",
            '{"a": 1,}',
            "\ufeff{}",
        ]
    )
)


@settings(max_examples=500, deadline=None, derandomize=True, database=None)
@given(_strict_texts)
def test_strict_parse_answers_as_the_hooks_and_the_path_walk_did(text):
    """The plain parse and its check accept, refuse and name the path exactly as before."""
    for raw in (text, text.encode("utf-8", "surrogatepass")):
        assert _outcome(loads_strict, raw) == _outcome(_strict_the_old_way, raw)


def test_a_clean_body_is_parsed_without_hooks_or_paths(monkeypatch):
    """No Python call per number and no path per value for a body with nothing to refuse."""
    from aisearch_local import jsonsafe

    def unused(*args):
        raise AssertionError("a per-value hook or path was built")

    body = {"query": "é ☃", "n": [1, -2, 3.5, 1e300, True, None], "o": {"k": [[{"x": 0}]]}}
    for name in ("_parse_int", "_parse_float", "_join"):
        monkeypatch.setattr(jsonsafe, name, unused)
    assert loads_strict(json.dumps(body)) == body
    assert loads_strict(json.dumps(body).encode()) == body


@pytest.mark.parametrize("value", [1e-07, -5e-05, [1e-06], 1e-9, 0.0001])
def test_render_wire_writes_a_small_float_at_the_end_as_json_does(value):
    # review: a float below 1e-4 ending the output (no , ] or } after it) was orjson's 1e-7
    assert render_wire(value) == _json_way(value)
