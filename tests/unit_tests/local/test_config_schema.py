"""Nested instance configuration: whatever the server stores, the official SDK can parse back.

A property test (Hypothesis): any JSON value, put anywhere in ``indexing_options``,
``metadata`` or ``source_params``, is either refused naming its path or stored in a form that
``cloudflare``'s ``InstanceReadResponse`` (SDK 5.9.0) validates, so ``instances.list`` and
``read`` never fail on a configuration the local server accepted.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aisearch_local.errors import ValidationError
from aisearch_local.validation import validate_instance_config

cloudflare = pytest.importorskip("cloudflare")
from cloudflare.types.aisearch.namespaces import InstanceReadResponse  # noqa: E402

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6)
    | st.sampled_from(["porter", "trigram", "sitemap", "discover", "all", "links"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)

PATHS = [
    ("indexing_options",),
    ("indexing_options", "use_ocr"),
    ("indexing_options", "keyword_tokenizer"),
    ("metadata",),
    ("metadata", "created_from_aisearch_wizard"),
    ("metadata", "worker_domain"),
    ("source_params",),
    ("source_params", "include_items"),
    ("source_params", "prefix"),
    ("source_params", "web_crawler"),
    ("source_params", "web_crawler", "parse_type"),
    ("source_params", "web_crawler", "parse_options"),
    ("source_params", "web_crawler", "parse_options", "content_selector"),
    ("source_params", "web_crawler", "parse_options", "include_headers"),
    ("source_params", "web_crawler", "discover_options"),
    ("source_params", "web_crawler", "discover_options", "limit"),
    ("source_params", "web_crawler", "discover_options", "source"),
]


def _nest(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out: Any = value
    for name in reversed(path):
        out = {name: out}
    return dict(out)


@settings(max_examples=400, deadline=None)
@given(path=st.sampled_from(PATHS), value=JSON)
def test_stored_config_always_parses_with_the_sdk(path, value):
    body = {"id": "docs", **_nest(path, value)}
    try:
        cfg = validate_instance_config(body, creating=True)
    except ValidationError as exc:
        assert exc.field.startswith(path[0]), (exc.field, path)
        return
    stored = {
        "id": "docs",
        "created_at": "2026-01-01T00:00:00Z",
        "modified_at": "2026-01-01T00:00:00Z",
        **{k: v for k, v in cfg.items() if k in ("indexing_options", "metadata", "source_params")},
    }
    InstanceReadResponse.model_validate(stored)
