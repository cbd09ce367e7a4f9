"""The strict JSON parser of aisearch_local and its defensive output (pure functions)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aisearch_local.jsonsafe import (
    MAX_DEPTH,
    MAX_INT,
    JSONValueError,
    SafeJSONResponse,
    dumps_safe,
    dumps_strict,
    loads_lenient,
    loads_strict,
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
    with pytest.raises(JSONValueError) as err:
        loads_strict(text)
    assert err.value.field == field
    assert needle in err.value.message


def test_prefix_names_nested_fields():
    with pytest.raises(JSONValueError) as err:
        loads_strict('{"note": NaN}', what="metadata", prefix="metadata")
    assert str(err.value).startswith("metadata.note: ")
    with pytest.raises(JSONValueError) as err:
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
    except JSONValueError:
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


def test_safe_response_renders_like_starlette_when_it_can():
    assert SafeJSONResponse({"a": 1, "b": "é"}).body == '{"a":1,"b":"é"}'.encode()
    assert json.loads(SafeJSONResponse({"a": math.nan, "b": "\ud800"}).body) == {
        "a": None,
        "b": "\ufffd",
    }
