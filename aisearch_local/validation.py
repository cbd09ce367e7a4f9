"""Validation of what clients send the server besides search options: bodies, configs, keys.

Instance configurations (API.md section 10), item metadata and keys, and JSON bodies. Every
check raises :class:`aisearch_local.errors.ValidationError` naming the field.
"""

from __future__ import annotations

import difflib
import math
import re
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from aisearch_local.cache import CACHE_THRESHOLDS
from aisearch_local.errors import ValidationError, bad_request, json_type
from aisearch_local.ingest import SourceFile
from aisearch_local.jsonsafe import MAX_INT, check_text, loads_strict, scrub_text
from aisearch_local.options import resolve_options

__all__ = [
    "INSTANCE_ID_RE",
    "KNOWN_CONFIG_FIELDS",
    "KNOWN_OPTIONS",
    "NAMESPACE_RE",
    "check_option_keys",
    "check_searchable",
    "checked_source_file",
    "instance_hostnames",
    "metadata_warnings",
    "parse_json",
    "parse_json_object",
    "validate_instance_config",
    "validate_item_metadata",
    "validate_key",
]

MAX_KEY_LENGTH = 128
INSTANCE_ID_RE = re.compile(r"^[a-z0-9_]+(?:-[a-z0-9_]+)*$")
NAMESPACE_RE = re.compile(r"^[a-z0-9_]+(?:-[a-z0-9_]+)*$")
RESERVED_FIELDS = frozenset({"timestamp", "folder", "filename"})
DATA_TYPES = ("text", "number", "boolean", "datetime")
SYNC_INTERVALS = (900, 1800, 3600, 7200, 14400, 21600, 43200, 86400)
CACHE_TTLS = (600, 1800, 3600, 7200, 21600, 43200, 86400, 172800, 259200, 518400)


def _check(cond: bool, field: str, message: str) -> None:
    if not cond:
        raise bad_request(field, message)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


_STRING_FIELDS = (
    "source",
    "token_id",
    "ai_gateway_id",
    "ai_search_model",
    "embedding_model",
    "rewrite_model",
    "reranking_model",
    "summarization_model",
    "system_prompt_ai_search",
    "system_prompt_index_summarization",
    "system_prompt_rewrite_query",
)
_OBJECT_FIELDS = ("public_endpoint_params",)
_BOOLEAN_FIELDS = (
    "chunk",
    "rewrite_query",
    "reranking",
    "cache",
    "hybrid_search_enabled",
    "paused",
    "summarization",
)


KNOWN_CONFIG_FIELDS = frozenset(
    {
        "id", "type", "source", "source_params", "token_id", "ai_gateway_id", "ai_search_model",
        "embedding_model", "rewrite_model", "reranking_model", "summarization_model",
        "rewrite_query", "reranking", "cache", "cache_threshold", "cache_ttl", "chunk",
        "chunk_size", "chunk_overlap", "max_num_results", "score_threshold", "fusion_method",
        "index_method", "indexing_options", "retrieval_options", "custom_metadata", "metadata",
        "public_endpoint_params", "sync_interval", "hybrid_search_enabled", "paused",
        "summarization", "system_prompt_ai_search", "system_prompt_index_summarization",
        "system_prompt_rewrite_query",
    }
)  # fmt: skip
"""The create and update fields of an instance (API.md section 10, SDK 5.9.0)."""


KNOWN_OPTIONS: dict[str, frozenset[str] | None] = {
    "retrieval": frozenset(
        {
            "retrieval_type", "match_threshold", "max_num_results", "filters",
            "context_expansion", "fusion_method", "keyword_match_mode", "boost_by",
            "metadata_only", "return_on_failure",
        }
    ),
    "query_rewrite": frozenset({"enabled", "model", "rewrite_prompt"}),
    "reranking": frozenset({"enabled", "model", "match_threshold"}),
    "cache": frozenset({"enabled", "cache_threshold"}),
    "custom_metadata": None,  # free keys (checked by the options)
    "instance_ids": None,
}  # fmt: skip
"""The sections of ``ai_search_options`` and their keys (SDK 5.9.0, plus ``metadata_only``)."""


def _unknown(kind: str, name: str, known: Any) -> str:
    """The message for an unknown name under ``--strict``: a did-you-mean, then the known ones."""
    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown {kind} (the server runs with --strict); {hint}known: {', '.join(names)}"


def check_option_keys(raw: Any, path: str = "ai_search_options") -> None:
    """Refuse an unknown section or key of ``ai_search_options`` (the ``--strict`` server).

    Only names are checked here; values are checked by :func:`resolve_options`.
    """
    if not isinstance(raw, dict):
        return
    for section, value in raw.items():
        _check(
            section in KNOWN_OPTIONS,
            f"{path}.{section}",
            _unknown("section", str(section), KNOWN_OPTIONS),
        )
        keys = KNOWN_OPTIONS[section]
        if keys is None or not isinstance(value, dict):
            continue
        for key in value:
            _check(
                key in keys,
                f"{path}.{section}.{key}",
                _unknown("option", str(key), keys),
            )


def check_searchable(config: dict[str, Any]) -> None:
    """Check that a complete instance configuration resolves into search options.

    Run on the merged configuration of every create and update, so a stored configuration can
    always be searched (``retrieval_options.boost_by`` entries, thresholds, enums).

    Raises:
        APIError: 400 / 7001 naming the configuration field.
    """
    try:
        resolve_options(None, config, path="")
    except ValidationError as exc:  # the paths of instance fields have no prefix
        raise ValidationError(exc.field.lstrip("."), exc.message) from None


_BOUNDED_FIELDS = (
    # API.md gives no chunk_size bound (Cloudflare: "the option range may vary depending on
    # the model"): any positive integer is stored; the local chunker clamps it (service.py)
    ("chunk_size", "an integer", 1, MAX_INT),
    ("chunk_overlap", "an integer", 0, 30),
    ("max_num_results", "an integer", 1, 50),
    ("score_threshold", "a number", 0, 1),
)


# The nested instance configuration objects, typed as the official SDK parses them back
# (cloudflare 5.9.0 ``InstanceReadResponse``): a value the SDK cannot parse is never stored.
# A spec is a type name, a tuple of allowed values, ("list", spec), ("map", spec) or a dict
# of member specs (an object; members not listed are kept, see ``--strict``).
Spec = Any
_NESTED_CONFIG: dict[str, Spec] = {
    "indexing_options": {"keyword_tokenizer": ("porter", "trigram"), "use_ocr": "boolean"},
    "metadata": {"created_from_aisearch_wizard": "boolean", "worker_domain": "string"},
    "source_params": {
        "exclude_items": ("list", "string"),
        "include_items": ("list", "string"),
        "prefix": "string",
        "r2_jurisdiction": "string",
        "web_crawler": {
            "parse_type": ("sitemap", "discover", "crawl", "feed-rss"),
            "parse_options": {
                "content_selector": ("list", {"path": "string", "selector": "string"}),
                "include_headers": ("map", "string"),
                "include_images": "boolean",
                "specific_sitemaps": ("list", "string"),
                "use_browser_rendering": "boolean",
            },
            "discover_options": {
                "depth": "number",
                "include_external_links": "boolean",
                "include_subdomains": "boolean",
                "limit": "number",
                "max_age": "number",
                "source": ("all", "sitemaps", "links"),
            },
        },
    },
}
_REQUIRED_MEMBERS = {"content_selector": ("path", "selector")}


def _check_spec(value: Any, spec: Spec, path: str, strict: bool) -> None:
    """Check ``value`` (not None) against a nested config spec; raise naming ``path``."""
    if spec == "boolean":
        _check(isinstance(value, bool), path, f"must be a boolean (got {json_type(value)})")
    elif spec == "string":
        _check(isinstance(value, str), path, f"must be a string (got {json_type(value)})")
    elif spec == "number":
        _check(
            _is_num(value) and math.isfinite(value),
            path,
            f"must be a number (got {json_type(value)})",
        )
    elif isinstance(spec, tuple) and spec[0] in ("list", "map") and len(spec) == 2:
        kind, inner = spec
        if kind == "list":
            _check(isinstance(value, list), path, f"must be a list (got {json_type(value)})")
            for i, v in enumerate(value):
                _check(v is not None, f"{path}[{i}]", "must not be null")
                _check_spec(v, inner, f"{path}[{i}]", strict)
        else:
            _check(isinstance(value, dict), path, f"must be an object (got {json_type(value)})")
            for k, v in value.items():
                _check_spec(v, inner, f"{path}.{k}", strict)
    elif isinstance(spec, tuple):
        _check(
            isinstance(value, str) and value in spec,
            path,
            f"must be one of {', '.join(spec)} (got {str(value)[:80]!r})",
        )
    else:
        _check(isinstance(value, dict), path, f"must be an object (got {json_type(value)})")
        for name in _REQUIRED_MEMBERS.get(path.rsplit(".", 1)[-1].split("[")[0], ()):
            _check(name in value, f"{path}.{name}", "is required")
        for k, v in value.items():
            if k not in spec:
                _check(not strict, f"{path}.{k}", _unknown("field", str(k), spec))
            elif v is not None:
                _check_spec(v, spec[k], f"{path}.{k}", strict)


def validate_instance_config(
    body: dict[str, Any], *, creating: bool, strict: bool = False
) -> dict[str, Any]:
    """Validate the configuration fields of an instance create/update body (API.md section 10).

    Documented fields are checked, nested objects to the types the official SDK parses back.
    Unknown fields (top level or nested) are kept and echoed when ``strict`` is false (the
    default: the API grows) and refused naming the field with ``strict`` (``--strict``).

    Raises:
        ValidationError: 400 / 7001 naming the field and the allowed values.
    """
    if strict:
        for name in body:
            _check(
                name in KNOWN_CONFIG_FIELDS,
                name,
                _unknown("instance field", name, KNOWN_CONFIG_FIELDS),
            )
    cfg = dict(body)
    cfg.pop("id", None)
    if not creating:
        for name in ("type", "hybrid_search_enabled"):
            cfg.pop(name, None)
    t = cfg.get("type")
    _check(t in (None, "r2", "web-crawler"), "type", "must be r2, web-crawler or null")
    for names, kind, label in (
        (_STRING_FIELDS, str, "a string"),
        (_OBJECT_FIELDS, dict, "an object"),
    ):
        for name in names:
            if cfg.get(name) is not None:
                _check(
                    isinstance(cfg[name], kind),
                    name,
                    f"must be {label} or null (got {json_type(cfg[name])})",
                )
    for name in _BOOLEAN_FIELDS:
        if name in cfg:
            _check(isinstance(cfg[name], bool), name, f"must be a boolean (got {cfg[name]!r})")
    for name, number, lo, hi in _BOUNDED_FIELDS:
        if name in cfg:
            v = cfg[name]
            ok = _is_int(v) if number == "an integer" else _is_num(v)
            _check(
                ok and lo <= v <= hi, name, f"must be {number} between {lo} and {hi} (got {v!r})"
            )
    if "fusion_method" in cfg:
        _check(cfg["fusion_method"] in ("rrf", "max"), "fusion_method", "must be rrf or max")
    if "cache_threshold" in cfg:
        _check(
            isinstance(cfg["cache_threshold"], str) and cfg["cache_threshold"] in CACHE_THRESHOLDS,
            "cache_threshold",
            f"must be one of {', '.join(CACHE_THRESHOLDS)}",
        )
    if "cache_ttl" in cfg:
        _check(cfg["cache_ttl"] in CACHE_TTLS, "cache_ttl", f"must be one of {CACHE_TTLS}")
    if "sync_interval" in cfg:
        _check(
            cfg["sync_interval"] in SYNC_INTERVALS,
            "sync_interval",
            f"must be one of {SYNC_INTERVALS}",
        )
    if cfg.get("index_method") is not None:
        im = cfg["index_method"]
        _check(isinstance(im, dict), "index_method", "must be an object {vector, keyword}")
        vec, kw = im.get("vector", True), im.get("keyword", True)
        _check(isinstance(vec, bool), "index_method.vector", "must be a boolean")
        _check(isinstance(kw, bool), "index_method.keyword", "must be a boolean")
        _check(vec or kw, "index_method", "at least one of vector and keyword must be true")
        cfg["index_method"] = {"vector": vec, "keyword": kw}
    elif "hybrid_search_enabled" in cfg and creating:
        cfg["index_method"] = {"vector": True, "keyword": bool(cfg["hybrid_search_enabled"])}
    for name, spec in _NESTED_CONFIG.items():
        if cfg.get(name) is not None:
            _check_spec(cfg[name], spec, name, strict)
    if cfg.get("retrieval_options") is not None:
        ro = cfg["retrieval_options"]
        _check(isinstance(ro, dict), "retrieval_options", "must be an object")
        km = ro.get("keyword_match_mode")
        if km is not None:
            if isinstance(km, str):
                km = {"exact_match": "and", "fuzzy_match": "or"}.get(km, km)
            _check(km in ("and", "or"), "retrieval_options.keyword_match_mode", "must be and or or")
            ro = {**ro, "keyword_match_mode": km}
            cfg["retrieval_options"] = ro
        bb = ro.get("boost_by")
        if bb is not None:
            _check(
                isinstance(bb, list) and len(bb) <= 3,
                "retrieval_options.boost_by",
                "must be a list of at most 3 entries",
            )
    if cfg.get("custom_metadata") is not None:
        cm = cfg["custom_metadata"]
        _check(
            isinstance(cm, list) and len(cm) <= 5,
            "custom_metadata",
            "must be a list of at most 5 fields",
        )
        seen: set[str] = set()
        for i, entry in enumerate(cm):
            path = f"custom_metadata[{i}]"
            _check(isinstance(entry, dict), path, "must be an object {field_name, data_type}")
            name = entry.get("field_name")
            _check(
                isinstance(name, str) and 1 <= len(name) <= 64,
                f"{path}.field_name",
                "must be a string of 1 to 64 characters",
            )
            _check(
                name.lower() not in RESERVED_FIELDS,
                f"{path}.field_name",
                f"{name!r} is reserved (timestamp, folder, filename)",
            )
            _check(name.lower() not in seen, f"{path}.field_name", f"duplicate field {name!r}")
            seen.add(name.lower())
            _check(
                entry.get("data_type") in DATA_TYPES,
                f"{path}.data_type",
                f"must be one of {', '.join(DATA_TYPES)}",
            )
    return cfg


def instance_hostnames(config: dict[str, Any]) -> set[str]:
    """The hostnames an instance answers for, lowercased: the instance list's ``hostname``.

    A local choice (the SDK says only "exact Search for Agents hostname"): the host of a
    web-crawler ``source`` URL and every ``public_endpoint_params.custom_domains`` entry.
    """
    names: set[str] = set()
    src = config.get("source")
    if config.get("type") == "web-crawler" and isinstance(src, str):
        try:
            host = urlsplit(src).hostname
        except ValueError:  # "http://[": not a URL
            host = None
        if host:
            names.add(host.lower())
    pep = config.get("public_endpoint_params")
    domains = pep.get("custom_domains") if isinstance(pep, dict) else None
    if isinstance(domains, list):
        names.update(d.lower().rstrip(".") for d in domains if isinstance(d, str))
    return names


def validate_item_metadata(raw: Any, field: str = "metadata") -> dict[str, Any]:
    """Validate custom item metadata: an object of strings (<= 500 chars), numbers, booleans.

    Field names are 1 to 64 characters; numbers are finite and integers within +-(2^53 - 1);
    strings are valid Unicode (no lone surrogate). Everything accepted can be stored and served
    back as JSON.
    """
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise bad_request(field, "must be a JSON object of string, number or boolean values")
    for k, v in raw.items():
        path = f"{field}.{k}"
        if not isinstance(k, str) or not 1 <= len(k) <= 64 or not _encodable(k):
            raise bad_request(path, "field names must be strings of 1 to 64 characters")
        if not isinstance(v, (str, int, float, bool)):
            raise bad_request(path, f"must be a string, number or boolean (got {json_type(v)})")
        if isinstance(v, float) and not math.isfinite(v):
            raise bad_request(path, "must be a finite number")
        if isinstance(v, int) and not isinstance(v, bool) and abs(v) > MAX_INT:
            raise bad_request(path, f"integers must be between -{MAX_INT} and {MAX_INT}")
        if isinstance(v, str):
            if len(v) > 500:
                raise bad_request(path, f"text values are limited to 500 characters (got {len(v)})")
            if not _encodable(v):
                raise bad_request(path, "contains a lone UTF-16 surrogate")
    return dict(raw)


def _fits_type(value: Any, data_type: str) -> bool:
    if data_type == "text":
        return isinstance(value, str)
    if data_type == "number":
        return _is_num(value)
    if data_type == "boolean":
        return isinstance(value, bool)
    if _is_num(value):  # datetime: epoch seconds or milliseconds, or ISO-8601 text
        return True
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return False
    return True


def metadata_warnings(metadata: dict[str, Any], config: dict[str, Any]) -> list[dict[str, str]]:
    """The ``warnings`` of an upload whose metadata does not fit the instance's schema.

    A field not declared in ``custom_metadata`` is not filterable
    (``custom_metadata_field_not_filterable``); a value of another type than its declared
    field's is not indexed (``custom_metadata_value_not_indexed`` with ``expected_type``).
    The upload still succeeds (the official SDK's ``ItemUploadResponse.warnings``); the local
    server keeps filtering on every key (a documented difference).
    """
    declared = {
        str(e["field_name"]).lower(): str(e.get("data_type", "text"))
        for e in config.get("custom_metadata") or []
        if isinstance(e, dict) and isinstance(e.get("field_name"), str)
    }
    out: list[dict[str, str]] = []
    for name, value in metadata.items():
        expected = declared.get(name.lower())
        if expected is None:
            out.append({"code": "custom_metadata_field_not_filterable", "field": name})
        elif not _fits_type(value, expected):
            out.append(
                {
                    "code": "custom_metadata_value_not_indexed",
                    "expected_type": expected,
                    "field": name,
                }
            )
    return out


def _encodable(text: str) -> bool:
    try:
        check_text(text, "")
    except ValidationError:
        return False
    return True


_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def validate_key(key: Any, field: str = "key") -> str:
    """Validate an item key: 1 to 128 characters, a relative POSIX path without dot segments.

    Refused: control characters, lone surrogates, a leading ``/``, and ``.`` or ``..`` as a
    path segment (a key names a file under an instance's source folder, never outside it).

    Raises:
        APIError: 400 / 7001 naming ``field``.
    """
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_LENGTH:
        n = len(key) if isinstance(key, str) else json_type(key)
        raise bad_request(field, f"must be a string of 1 to {MAX_KEY_LENGTH} characters (got {n})")
    if _CONTROL_RE.search(key) or not _encodable(key):
        raise bad_request(field, "must not contain control characters or lone surrogates")
    if key.startswith("/") or any(part in (".", "..") for part in key.split("/")):
        raise bad_request(
            field, f"must be a relative path without '.' or '..' segments (got {key!r})"
        )
    return key


def checked_source_file(sf: SourceFile) -> SourceFile:
    """Apply the upload rules to a source file's key and sidecar metadata (errors: the item's)."""
    if not _encodable(sf.key):  # a file name that is not valid UTF-8 (surrogate-escaped)
        sf.key = scrub_text(sf.key)
        sf.metadata, sf.metadata_error = {}, f"{sf.key}: the file name is not valid UTF-8"
    if sf.metadata_error is not None:
        return sf
    try:
        validate_key(sf.key)
        sf.metadata = validate_item_metadata(sf.metadata)
    except ValidationError as exc:
        sf.metadata = {}
        sf.metadata_error = f"{sf.key}: {exc}"
    return sf


def parse_json(raw: bytes | str, what: str = "request body") -> Any:
    """Parse JSON with :func:`aisearch_local.jsonsafe.loads_strict` or raise 400 / 7001.

    The error names the path of the refused value: bare for a request body (``query``), under
    ``what`` otherwise (``metadata.note``).
    """
    return loads_strict(raw, what=what, prefix="" if what == "request body" else what)


def parse_json_object(raw: bytes, what: str = "request body") -> dict[str, Any]:
    """Parse a JSON object body (strictly, see :func:`parse_json`) or raise 400 / 7001."""
    if not raw.strip():
        raise bad_request(what, "must be a JSON object (got an empty body)")
    value = parse_json(raw, what)
    if not isinstance(value, dict):
        raise bad_request(what, f"must be a JSON object (got {json_type(value)})")
    return value
