"""Request options of search and chat: ``ai_search_options`` and ``messages`` (API.md section 9).

:func:`resolve_options` validates a request's ``ai_search_options`` and fills the gaps from the
instance configuration; :func:`validate_messages` checks an OpenAI-style message list. Both
raise :class:`aisearch_local.errors.ValidationError` naming the JSON path of the refused value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aisearch_local.cache import CACHE_THRESHOLDS
from aisearch_local.errors import ValidationError, json_type
from aisearch_local.filters import Predicate, compile_filter
from aisearch_local.text import message_text

__all__ = [
    "CONFIG_FIELDS",
    "RESERVED_CUSTOM_METADATA",
    "OptionsResolver",
    "Query",
    "ResolvedOptions",
    "check_custom_metadata",
    "field_types",
    "query_from_messages",
    "resolve_options",
    "validate_messages",
]

ROLES = ("system", "developer", "user", "assistant", "tool")


# -- option resolution -----------------------------------------------------------------------


@dataclass
class ResolvedOptions:
    """``ai_search_options`` merged with the instance defaults and validated."""

    retrieval_type: str = "hybrid"
    match_threshold: float = 0.4
    max_num_results: int = 10
    filters: Any = None
    context_expansion: int = 0
    fusion_method: str = "rrf"
    keyword_match_mode: str = "and"
    boost_by: list[dict[str, str]] = field(default_factory=list)
    metadata_only: bool = False
    return_on_failure: bool = True
    rewrite: bool = False
    reranking: bool = False
    reranking_threshold: float = 0.4
    cache: bool = False
    cache_threshold: str = "close_enough"
    predicate: Predicate | None = None

    def cache_key(self) -> str:
        """Return a JSON string of every option that changes the result."""
        skip = ("predicate", "cache", "cache_threshold")
        data = {k: v for k, v in self.__dict__.items() if k not in skip}
        return json.dumps(data, sort_keys=True, default=str)


def _obj(raw: Any, path: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValidationError(path, f"must be an object (got {type(raw).__name__})")
    return raw


def _number(value: Any, path: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise ValidationError(path, f"must be a number between {lo:g} and {hi:g} (got {value!r})")
    return float(value)


def _integer(value: Any, path: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValidationError(path, f"must be an integer between {lo} and {hi} (got {value!r})")
    return value


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(path, f"must be a boolean (got {value!r})")
    return value


def _enum(value: Any, path: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise ValidationError(path, f"must be one of {', '.join(allowed)} (got {value!r})")
    return str(value)


def _index_method(config: Mapping[str, Any]) -> tuple[bool, bool]:
    im = config.get("index_method") or {}
    return bool(im.get("vector", True)), bool(im.get("keyword", True))


def field_types(config: Mapping[str, Any]) -> dict[str, str]:
    """Return the declared custom metadata field types (lowercase names) plus ``timestamp``."""
    out = {"timestamp": "datetime"}
    for entry in config.get("custom_metadata") or []:
        if isinstance(entry, dict) and isinstance(entry.get("field_name"), str):
            out[entry["field_name"].lower()] = str(entry.get("data_type", "text"))
    return out


def _boost_by(raw: Any, path: str, types: Mapping[str, str]) -> list[dict[str, str]]:
    if not isinstance(raw, list):
        raise ValidationError(path, "must be a list of {field, direction} objects")
    if len(raw) > 3:
        raise ValidationError(path, f"must have at most 3 entries (got {len(raw)})")
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    for i, entry in enumerate(raw):
        epath = f"{path}[{i}]"
        entry = _obj(entry, epath)
        name = entry.get("field")
        if not isinstance(name, str) or not 1 <= len(name) <= 64:
            raise ValidationError(f"{epath}.field", "must be a string of 1 to 64 characters")
        key = name.lower()
        if key in seen:
            raise ValidationError(f"{epath}.field", f"duplicate field {name!r}")
        seen.add(key)
        kind = types.get(key)
        numeric = kind in (None, "number", "datetime")
        default = "asc" if kind in ("number", "datetime") else "exists"
        direction = entry.get("direction", default) or default
        _enum(direction, f"{epath}.direction", ("asc", "desc", "exists", "not_exists"))
        if direction in ("asc", "desc") and not numeric:
            raise ValidationError(
                f"{epath}.direction",
                f"{direction!r} needs a number or datetime field; {name!r} is {kind}, "
                "use exists or not_exists",
            )
        out.append({"field": key, "direction": direction})
    return out


RESERVED_CUSTOM_METADATA = ("ai-search", "task", "origin")
"""Keys ``custom_metadata`` may not use, besides any key starting with ``cf.``."""


def check_custom_metadata(raw: Any, path: str) -> None:
    """Check ``ai_search_options.custom_metadata`` (search and chat alike; API.md 18.1).

    At most 2 entries of string, number or boolean values, for AI Gateway logs; the keys
    ``ai-search``, ``task``, ``origin`` and ``cf.*`` are reserved. The local server checks and
    otherwise ignores them (it has no AI Gateway).

    Raises:
        ValidationError: Naming the entry and what is allowed.
    """
    cm = _obj(raw, path)
    if len(cm) > 2:
        raise ValidationError(path, f"must have at most 2 entries (got {len(cm)})")
    for key, value in cm.items():
        if not key:
            raise ValidationError(path, "keys must be non-empty strings")
        if key in RESERVED_CUSTOM_METADATA or key.startswith("cf."):
            raise ValidationError(path, f"key {key!r} is reserved (ai-search, task, origin, cf.*)")
        if isinstance(value, (dict, list)) or value is None:
            raise ValidationError(
                f"{path}.{key}", f"must be a string, number or boolean (got {json_type(value)})"
            )


def resolve_options(
    raw: Any, config: Mapping[str, Any], *, path: str = "ai_search_options"
) -> ResolvedOptions:
    """Validate ``ai_search_options`` and fill the gaps from the instance configuration.

    Args:
        raw: The request's ``ai_search_options`` (or None).
        config: The instance configuration.
        path: Field path prefix for error messages.

    Returns:
        The merged options.

    Raises:
        ValidationError: A field is outside its documented range.
    """
    opts = _obj(raw, path)
    retrieval = _obj(opts.get("retrieval"), f"{path}.retrieval")
    rpath = f"{path}.retrieval"
    res = ResolvedOptions()
    has_vector, has_keyword = _index_method(config)
    default_type = (
        "hybrid" if has_vector and has_keyword else ("vector" if has_vector else "keyword")
    )
    rt = retrieval.get("retrieval_type")
    res.retrieval_type = (
        default_type
        if rt is None
        else _enum(rt, f"{rpath}.retrieval_type", ("vector", "keyword", "hybrid"))
    )
    needs_vector = res.retrieval_type in ("vector", "hybrid")
    needs_keyword = res.retrieval_type in ("keyword", "hybrid")
    if (needs_vector and not has_vector) or (needs_keyword and not has_keyword):
        raise ValidationError(
            f"{rpath}.retrieval_type",
            f"{res.retrieval_type!r} is not compatible with the instance's index_method "
            f"(vector={str(has_vector).lower()}, keyword={str(has_keyword).lower()})",
        )
    mt = retrieval.get("match_threshold", config.get("score_threshold"))
    res.match_threshold = 0.4 if mt is None else _number(mt, f"{rpath}.match_threshold", 0, 1)
    mn = retrieval.get("max_num_results", config.get("max_num_results"))
    res.max_num_results = 10 if mn is None else _integer(mn, f"{rpath}.max_num_results", 1, 50)
    if "filters" in retrieval and retrieval["filters"] is not None:
        res.predicate = compile_filter(retrieval["filters"], path=f"{rpath}.filters")
        res.filters = retrieval["filters"]
    ce = retrieval.get("context_expansion")
    res.context_expansion = 0 if ce is None else _integer(ce, f"{rpath}.context_expansion", 0, 3)
    fm = retrieval.get("fusion_method", config.get("fusion_method"))
    res.fusion_method = "rrf" if fm is None else _enum(fm, f"{rpath}.fusion_method", ("rrf", "max"))
    instance_retrieval = config.get("retrieval_options") or {}
    km = retrieval.get("keyword_match_mode", instance_retrieval.get("keyword_match_mode"))
    km = {"exact_match": "and", "fuzzy_match": "or"}.get(km, km) if isinstance(km, str) else km
    res.keyword_match_mode = (
        "and" if km is None else _enum(km, f"{rpath}.keyword_match_mode", ("and", "or"))
    )
    types = field_types(config)
    if "boost_by" in retrieval and retrieval["boost_by"] is not None:
        res.boost_by = _boost_by(retrieval["boost_by"], f"{rpath}.boost_by", types)
    elif instance_retrieval.get("boost_by"):
        res.boost_by = _boost_by(
            instance_retrieval["boost_by"], "retrieval_options.boost_by", types
        )
    if "metadata_only" in retrieval:
        res.metadata_only = _bool(retrieval["metadata_only"], f"{rpath}.metadata_only")
    if "return_on_failure" in retrieval:
        res.return_on_failure = _bool(retrieval["return_on_failure"], f"{rpath}.return_on_failure")

    rewrite = _obj(opts.get("query_rewrite"), f"{path}.query_rewrite")
    en = rewrite.get("enabled", config.get("rewrite_query", False))
    res.rewrite = _bool(en if en is not None else False, f"{path}.query_rewrite.enabled")
    for name in ("model", "rewrite_prompt"):
        if rewrite.get(name) is not None and not isinstance(rewrite[name], str):
            raise ValidationError(f"{path}.query_rewrite.{name}", "must be a string")

    rerank = _obj(opts.get("reranking"), f"{path}.reranking")
    en = rerank.get("enabled", config.get("reranking", False))
    res.reranking = _bool(en if en is not None else False, f"{path}.reranking.enabled")
    if rerank.get("match_threshold") is not None:
        res.reranking_threshold = _number(
            rerank["match_threshold"], f"{path}.reranking.match_threshold", 0, 1
        )
    if rerank.get("model") is not None and not isinstance(rerank["model"], str):
        raise ValidationError(f"{path}.reranking.model", "must be a string")

    cache = _obj(opts.get("cache"), f"{path}.cache")
    en = cache.get("enabled", config.get("cache", True))
    res.cache = _bool(en if en is not None else True, f"{path}.cache.enabled")
    ct = cache.get("cache_threshold", config.get("cache_threshold"))
    res.cache_threshold = (
        "close_enough"
        if ct is None
        else _enum(ct, f"{path}.cache.cache_threshold", tuple(CACHE_THRESHOLDS))
    )

    if opts.get("custom_metadata") is not None:
        check_custom_metadata(opts["custom_metadata"], f"{path}.custom_metadata")
    return res


# -- messages --------------------------------------------------------------------------------


PART_TYPES = ("text", "image_url", "file")
"""The content part types a message may carry (API.md 4.1 and 18.1)."""

MAX_DATA_URL_BYTES = 10 * 1024 * 1024
"""Most decoded bytes a ``data:`` URL may carry: the documented limit of a ``file`` part
(API.md 5.1), applied to ``image_url`` data URLs too (a local choice: the real limit of an
image is undocumented)."""

MAX_URL_CHARS = 8192
"""Longest ``http(s)`` image URL (a local choice: the real limit is undocumented)."""

_DATA_URL = re.compile(r"data:([\w.+-]+/[\w.+-]+)((?:;[\w.+-]+=[\w.+-]+)*);base64,", re.ASCII)
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}", re.ASCII)


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(path, f"must be a string (got {json_type(value)})")
    return value


def _data_url(url: str, path: str, *, image: bool) -> None:
    """Check a base64 ``data:`` URL: its media type, its alphabet and its decoded size."""
    head = _DATA_URL.match(url)
    if head is None:
        want = "data:image/<type>;base64,<data>" if image else "data:<mime>;base64,<data>"
        raise ValidationError(path, f"must be a base64 data URL ({want})")
    if image and not head.group(1).lower().startswith("image/"):
        raise ValidationError(path, f"must be an image data URL (got {head.group(1)!r})")
    data = url[head.end() :]
    size = len(data) * 3 // 4 - (len(data) - len(data.rstrip("=")))
    if size > MAX_DATA_URL_BYTES:
        raise ValidationError(
            path, f"a data URL may carry at most 10 MiB decoded (got {size / 2**20:.1f} MiB)"
        )
    if not data or len(data) % 4 or not _BASE64.fullmatch(data):
        raise ValidationError(path, "must carry non-empty, valid base64 data after 'base64,'")


def _image_url(raw: Any, path: str) -> None:
    if not isinstance(raw, dict):
        raise ValidationError(path, f"must be an object with a url (got {json_type(raw)})")
    url = _string(raw.get("url"), f"{path}.url")
    if url[:5].lower() == "data:":
        _data_url(url, f"{path}.url", image=True)
    elif url[:8].lower() == "https://" or url[:7].lower() == "http://":
        if len(url) > MAX_URL_CHARS:
            raise ValidationError(
                f"{path}.url", f"must be at most {MAX_URL_CHARS} characters (got {len(url)})"
            )
        if len(url) <= url.index("//") + 2 or any(c.isspace() for c in url):
            raise ValidationError(f"{path}.url", "must be an http(s) URL with a host, no spaces")
    else:
        raise ValidationError(
            f"{path}.url", "must be an http(s) URL or a data:image/<type>;base64,... URL"
        )
    if raw.get("detail") is not None:
        _enum(raw["detail"], f"{path}.detail", ("auto", "low", "high"))


def _file(raw: Any, path: str) -> None:
    if not isinstance(raw, dict):
        raise ValidationError(path, f"must be an object (got {json_type(raw)})")
    for name in ("filename", "file_data", "file_id"):
        if raw.get(name) is not None:
            _string(raw[name], f"{path}.{name}")
    if raw.get("file_data") is None and raw.get("file_id") is None:
        raise ValidationError(path, "must carry file_data (a base64 data URL) or file_id")
    if raw.get("file_data") is not None:
        _data_url(raw["file_data"], f"{path}.file_data", image=False)


def _check_parts(content: list[Any], path: str) -> None:
    for j, part in enumerate(content):
        ppath = f"{path}[{j}]"
        if not isinstance(part, dict):
            raise ValidationError(ppath, f"must be a {{type, ...}} object (got {json_type(part)})")
        kind = part.get("type")
        if kind not in PART_TYPES:
            got = repr(kind) if isinstance(kind, str) else json_type(kind)
            raise ValidationError(
                f"{ppath}.type", f"must be one of {', '.join(PART_TYPES)} (got {got[:80]})"
            )
        if kind == "text":
            _string(part.get("text"), f"{ppath}.text")
        elif kind == "image_url":
            _image_url(part.get("image_url"), f"{ppath}.image_url")
        else:
            _file(part.get("file"), f"{ppath}.file")


def validate_messages(messages: Any, path: str = "messages") -> list[dict[str, Any]]:
    """Validate an OpenAI-style message list; return it as plain dicts.

    A content list holds ``text``, ``image_url`` and ``file`` parts, each checked (see
    :func:`_check_parts`); at least one user message must carry text or an image.
    """
    if not isinstance(messages, list) or not messages:
        raise ValidationError(path, "must be a non-empty list of {role, content} objects")
    out: list[dict[str, Any]] = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise ValidationError(f"{path}[{i}]", "must be an object with role and content")
        role = msg.get("role")
        if role not in ROLES:
            raise ValidationError(
                f"{path}[{i}].role", f"must be one of {', '.join(ROLES)} (got {role!r})"
            )
        content = msg.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise ValidationError(
                f"{path}[{i}].content", "must be a string, a list of parts or null"
            )
        if isinstance(content, list):
            _check_parts(content, f"{path}[{i}].content")
        out.append(dict(msg))
    if not any(m["role"] == "user" and _has_content(m.get("content")) for m in out):
        raise ValidationError(
            path,
            "must contain at least one user message with non-empty content (text or an "
            "image_url part; file parts are not searched)",
        )
    return out


def _image_count(content: Any) -> int:
    if not isinstance(content, list):
        return 0
    return sum(1 for p in content if isinstance(p, dict) and p.get("type") == "image_url")


def _has_content(content: Any) -> bool:
    """Whether a message has something to search: text or an image (file parts are not)."""
    return bool(message_text(content).strip()) or _image_count(content) > 0


@dataclass(frozen=True)
class Query:
    """What a search looks for: the last user message with text or images.

    Attributes:
        text: Its text parts, joined (``""`` for an image-only message).
        kind: ``text``, ``image`` (images, no text) or ``multimodal`` (both): the answer's
            ``query_kind``. A ``file`` part is passed on to generation but is not searched and
            does not change the kind (a local choice).
        images: How many ``image_url`` parts it carries.
    """

    text: str
    kind: str = "text"
    images: int = 0


def query_from_messages(messages: Sequence[Mapping[str, Any]]) -> Query:
    """Return the search query of a conversation: its last user message with text or images.

    A later image-only message is the query, not an earlier text one (query rewriting, when
    on, still reads the text of the whole conversation).
    """
    for msg in reversed(messages):
        content = msg.get("content")
        if msg.get("role") == "user" and _has_content(content):
            text = message_text(content).strip()
            images = _image_count(content)
            if not images:
                return Query(text)
            return Query(text, "multimodal" if text else "image", images)
    return Query("")


CONFIG_FIELDS = (
    "index_method",
    "score_threshold",
    "max_num_results",
    "fusion_method",
    "retrieval_options",
    "custom_metadata",
    "rewrite_query",
    "reranking",
    "cache",
    "cache_threshold",
)
"""The instance configuration fields that :func:`resolve_options` reads."""


class OptionsResolver:
    """One request's ``ai_search_options``, resolved once per distinct instance configuration.

    Construction validates the options against the default configuration (a bad field is a
    400 before any instance is searched); :meth:`resolve` then resolves them for an instance,
    reusing the result for every instance whose :data:`CONFIG_FIELDS` are the same.

    Args:
        raw: The request's ``ai_search_options`` (``instance_ids`` already removed).

    Raises:
        ValidationError: A field is outside its documented range.
    """

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self._memo: dict[str, ResolvedOptions] = {}
        self.defaults = self.resolve({})
        """The options resolved against the default configuration."""

    def resolve(self, config: Mapping[str, Any]) -> ResolvedOptions:
        """Return the options for an instance configuration (shared: do not mutate).

        Raises:
            ValidationError: The options do not fit this configuration.
        """
        key = json.dumps([config.get(name) for name in CONFIG_FIELDS], default=str)
        resolved = self._memo.get(key)
        if resolved is None:
            resolved = self._memo[key] = resolve_options(self._raw, config)
        return resolved
