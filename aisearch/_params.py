"""Parameter coercion and checks: what a caller passes, checked before any request is built.

Every check raises ``InvalidRequestError`` naming the parameter (or field path) and what is
allowed. ``coerce_options`` and ``format_validation_error`` are public (the adapters use them).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, cast

from pydantic import BeforeValidator, field_validator

from aisearch._config import check_path_id, check_seconds, validate_instance_id
from aisearch._content import check_parts
from aisearch._exceptions import InvalidRequestError
from aisearch._filters import is_legacy_filter, to_legacy_filter, validate_legacy_filter
from aisearch._models import ChatMessage
from aisearch._names import printable
from aisearch._options import (
    MaxNumResults,
    SearchOptions,
    StrictBool,
    UnitInterval,
    _RequestModel,
    _short,
    build_model,
)

__all__ = [
    "Messages",
    "Options",
    "check_bool",
    "check_extra",
    "check_generation",
    "check_instance_config",
    "check_instance_ids",
    "check_instance_update",
    "check_int_range",
    "check_item_content",
    "check_item_key",
    "check_json",
    "check_list_text",
    "check_mapping",
    "check_wait_args",
    "coerce_messages",
    "coerce_options",
    "deep_merge",
    "instance_list_params",
    "item_limit",
    "item_list_params",
    "item_metadata_json",
    "json_problem",
    "legacy_options",
    "query_or_messages",
]

Messages = Sequence[ChatMessage | Mapping[str, Any]]
"""Chat messages as callers pass them: ``ChatMessage`` objects or mappings."""
Options = SearchOptions | Mapping[str, Any] | None
"""Search options as callers pass them: ``SearchOptions``, a mapping of its shape, or ``None``."""

MAX_JSON_DEPTH = 64
MAX_INSTANCE_IDS = 10
MAX_ITEM_BYTES = 10 * 1024 * 1024
"""Largest item: plain text, code and PDFs (API.md 18.1; a PDF only on an OCR instance)."""
MAX_OTHER_ITEM_BYTES = 4 * 1024 * 1024
"""Largest item of every other format."""
TEN_MIB_EXTENSIONS = frozenset(
    {
        ".txt", ".md", ".markdown", ".mdx", ".rst", ".json", ".jsonl", ".csv", ".tsv", ".xml",
        ".yaml", ".yml", ".toml", ".ini", ".cfg", ".log", ".tex",
        ".py", ".js", ".mjs", ".cjs", ".ts", ".tsx", ".jsx", ".java", ".kt", ".go", ".rs", ".c",
        ".h", ".cc", ".cpp", ".hpp", ".cs", ".rb", ".php", ".swift", ".scala", ".sh", ".bash",
        ".sql", ".css", ".scss", ".lua", ".r", ".pl", ".dart", ".vue", ".svelte",
        ".pdf",
    }
)  # fmt: skip
"""Extensions sent up to 10 MiB: plain text, code (a local reading of the docs' wording, the
same table as the local server's) and PDFs (which the service takes up to 10 MiB only with
``indexing_options.use_ocr``: it answers 413 otherwise)."""
MAX_ITEM_KEY = 128
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
# local bounds of the generation settings (API.md documents none), as the adapters' and the
# local server's: Workers AI's temperature range, the chat-completions limit of stop sequences
MAX_TEMPERATURE = 5.0
MAX_TOKENS = 2**31 - 1
MAX_STOP_SEQUENCES = 4


def json_problem(value: Any, path: str, depth: int = 0) -> str | None:
    """Name the first part of ``value`` that cannot travel as JSON (``path: problem``), or ``None``.

    ``path`` is its field path (``""``: the body), ``depth`` its nesting (``MAX_JSON_DEPTH``).
    """
    where = path or "body"
    if value is None or isinstance(value, (bool, int)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{where}: must be a finite number (got {value})"
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"{where}: must be valid Unicode text (it holds a lone surrogate)"
        return None
    if depth >= MAX_JSON_DEPTH:
        return f"{where}: nested deeper than {MAX_JSON_DEPTH} levels"
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{where}: keys must be strings (got {type(key).__name__})"
            child = f"{path}.{printable(key)}" if path else printable(key)
            problem = json_problem(key, child, depth + 1) or json_problem(item, child, depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            problem = json_problem(item, f"{where}[{i}]", depth + 1)
            if problem:
                return problem
        return None
    return f"{where}: must be a JSON value (got {type(value).__name__})"


def check_json(value: Any, path: str) -> None:
    """Raise ``InvalidRequestError`` naming the first part of ``value`` that is not JSON."""
    problem = json_problem(value, path)
    if problem:
        raise InvalidRequestError(problem)


def coerce_options(options: Options) -> SearchOptions | None:
    """Accept ``SearchOptions``, a mapping of the same shape, or ``None``.

    Args:
        options: The caller's options.

    Returns:
        A validated ``SearchOptions`` or ``None``.

    Raises:
        InvalidRequestError: Naming the field path (``ai_search_options....``) and range.
    """
    if options is None:
        return None
    return build_model(SearchOptions, options, "ai_search_options")


def coerce_messages(messages: Messages | None, field: str = "messages") -> list[dict[str, Any]]:
    """Validate a non-empty sequence of messages (``ChatMessage`` or dicts) into wire dicts."""
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise InvalidRequestError(
            f"{field}: must be a non-empty list of messages (got {type(messages).__name__})"
        )
    if not messages:
        raise InvalidRequestError(f"{field}: must contain at least one message")
    out: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        model = build_model(ChatMessage, message, f"{field}[{i}]")
        check_parts(model.content, f"{field}[{i}].content")
        out.append(model.model_dump(mode="json", exclude_unset=True))
    return out


def _check_query(query: object) -> str:
    if not isinstance(query, str) or not query.strip():
        raise InvalidRequestError(f"query: must be a non-empty string (got {_short(query)})")
    return query


def query_or_messages(query: str | None, messages: Messages | None) -> dict[str, Any]:
    """Build the ``{"query": ...}`` xor ``{"messages": [...]}`` part of a search body."""
    if query is not None and messages is not None:
        raise InvalidRequestError("query, messages: pass either query or messages, not both")
    if query is None and messages is None:
        raise InvalidRequestError("query, messages: one of them is required")
    if query is not None:
        return {"query": _check_query(query)}
    return {"messages": coerce_messages(messages)}


def deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``extra`` into ``base`` recursively (extra wins); returns ``base``."""
    for key, value in extra.items():
        current = base.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            deep_merge(current, value)
        elif isinstance(value, Mapping):
            base[key] = deep_merge({}, value)
        else:
            base[key] = value
    return base


def check_mapping(value: object, field: str) -> Mapping[str, Any] | None:
    """Check that an escape-hatch argument is a mapping (or ``None``)."""
    if value is None or isinstance(value, Mapping):
        return value
    raise InvalidRequestError(f"{field}: must be a mapping (got {type(value).__name__})")


def check_extra(value: object, field: str) -> Mapping[str, Any] | None:
    """Check an escape hatch: a mapping (or ``None``) of JSON values, named on error."""
    mapping = check_mapping(value, field)
    if mapping:
        check_json(dict(mapping), field)
    return mapping


def check_bool(value: object, field: str) -> bool:
    """Check a flag: ``True`` or ``False`` only."""
    if not isinstance(value, bool):
        raise InvalidRequestError(f"{field}: must be true or false (got {value!r:.80})")
    return value


def check_int_range(value: object, name: str, lo: int, hi: int | None) -> int:
    """Check an integer argument (bools rejected) against ``lo..hi`` (``hi=None``: no bound)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < lo
        or (hi is not None and value > hi)
    ):
        allowed = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise InvalidRequestError(f"{name}: must be an integer {allowed} (got {value!r:.80})")
    return value


def check_generation(params: Mapping[str, Any]) -> dict[str, Any]:
    """The body fields of the generation settings that are set, checked (errors name the field)."""
    temperature, max_tokens, stop = (params.get(k) for k in ("temperature", "max_tokens", "stop"))
    body: dict[str, Any] = {}
    if temperature is not None:
        if (
            isinstance(temperature, bool)
            or not isinstance(temperature, (int, float))
            or not math.isfinite(temperature)
            or not 0 <= temperature <= MAX_TEMPERATURE
        ):
            raise InvalidRequestError(
                f"temperature: must be a number between 0 and 5 (got {temperature!r})"
            )
        body["temperature"] = temperature
    if max_tokens is not None:
        body["max_tokens"] = check_int_range(max_tokens, "max_tokens", 1, MAX_TOKENS)
    if stop is not None:
        if isinstance(stop, str):
            body["stop"] = stop
        elif (
            isinstance(stop, Sequence)
            and len(stop) <= MAX_STOP_SEQUENCES
            and all(isinstance(s, str) for s in stop)
        ):
            body["stop"] = list(stop)
        else:
            got = f"{len(stop)} items" if isinstance(stop, Sequence) else type(stop).__name__
            raise InvalidRequestError(
                f"stop: must be a string or a list of at most {MAX_STOP_SEQUENCES} strings "
                f"(got {got})"
            )
    return body


def check_wait_args(
    timeout: float, poll_interval: float, on_progress: object
) -> tuple[float, float]:
    """Check the arguments of a wait: two durations and an optional progress callback."""
    if on_progress is not None and not callable(on_progress):
        raise InvalidRequestError(
            f"on_progress: must be a callable or None (got {type(on_progress).__name__})"
        )
    return check_seconds(timeout, "timeout"), check_seconds(poll_interval, "poll_interval")


def check_instance_ids(instance_ids: Sequence[str]) -> list[str]:
    """Check the instances of a namespace call: a list of 1 to 10 valid instance ids."""
    if isinstance(instance_ids, str) or not isinstance(instance_ids, Sequence):
        raise InvalidRequestError(
            f"instance_ids: must be a list of 1 to {MAX_INSTANCE_IDS} instance ids "
            f"(got {type(instance_ids).__name__})"
        )
    if not 1 <= len(instance_ids) <= MAX_INSTANCE_IDS:
        raise InvalidRequestError(
            f"instance_ids: must contain between 1 and {MAX_INSTANCE_IDS} ids "
            f"(got {len(instance_ids)})"
        )
    for i, instance_id in enumerate(instance_ids):
        validate_instance_id(instance_id, f"instance_ids[{i}]")
    return list(instance_ids)


# --------------------------------------------------------------------------- list filters

MAX_INSTANCE_SEARCH = 64
"""Longest instance list ``search`` term (API.md 18.1: longer is rejected)."""
MAX_HOSTNAME = 253
"""Longest instance list ``hostname`` (a DNS name)."""
MAX_LIST_TEXT = 256
"""Longest other list filter text (``search``, ``source`` of items and namespaces; local bound)."""


def check_list_text(value: object, name: str, limit: int) -> str:
    """Check a text filter of a list call: a non-empty string of at most ``limit`` characters."""
    if not isinstance(value, str) or not value or len(value) > limit:
        got = f"{len(value)} characters" if isinstance(value, str) else type(value).__name__
        raise InvalidRequestError(
            f"{name}: must be a string of 1 to {limit} characters (got {got})"
        )
    check_json(value, name)
    if _CONTROL_RE.search(value):
        raise InvalidRequestError(f"{name}: must not contain control characters")
    return value


def _choice(value: object, name: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise InvalidRequestError(
            f"{name}: must be one of {', '.join(allowed)} (got {value!r:.80})"
        )
    return value


def instance_list_params(
    search: str | None,
    hostname: str | None,
    order_by: str | None,
    order_by_direction: str | None,
) -> dict[str, Any]:
    """The query string of an instance list: ``search`` (id contains), ``hostname``, order."""
    params: dict[str, Any] = {}
    if search is not None:
        params["search"] = check_list_text(search, "search", MAX_INSTANCE_SEARCH)
    if hostname is not None:
        params["hostname"] = check_list_text(hostname, "hostname", MAX_HOSTNAME)
    if order_by is not None:
        params["order_by"] = _choice(order_by, "order_by", ("created_at",))
    if order_by_direction is not None:
        params["order_by_direction"] = _choice(
            order_by_direction, "order_by_direction", ("asc", "desc")
        )
    return params


def item_list_params(
    item_id: str | None,
    key: str | None,
    search: str | None,
    source: str | None,
    sort_by: str | None,
) -> dict[str, Any]:
    """The query string of an item list: ``item_id``, ``key``, ``search``, ``source``, order."""
    params: dict[str, Any] = {}
    if item_id is not None:
        params["item_id"] = check_path_id(item_id, "item_id", "item")
    if key is not None:
        params["key"] = check_item_key(key)
    if search is not None:
        params["search"] = check_list_text(search, "search", MAX_LIST_TEXT)
    if source is not None:
        params["source"] = check_list_text(source, "source", MAX_LIST_TEXT)
    if sort_by is not None:
        params["sort_by"] = _choice(sort_by, "sort_by", ("status", "modified_at"))
    return params


# --------------------------------------------------------------------------- items


def check_item_key(key: object) -> str:
    """Check an item key: 1 to 128 characters of valid text, no control characters."""
    if not isinstance(key, str) or not key or len(key) > MAX_ITEM_KEY:
        raise InvalidRequestError(
            f"key: must be a non-empty string of at most {MAX_ITEM_KEY} characters "
            f"(got {key!r:.80})"
        )
    check_json(key, "key")
    if _CONTROL_RE.search(key):
        raise InvalidRequestError(f"key: must not contain control characters (got {key!r:.80})")
    return key


def item_limit(key: str) -> int:
    """The largest content of an item named ``key``: 10 MiB or 4 MiB by its extension."""
    dot = key.rfind(".")
    ext = key[dot:].lower() if dot > key.rfind("/") else ""
    return MAX_ITEM_BYTES if ext in TEN_MIB_EXTENSIONS else MAX_OTHER_ITEM_BYTES


def check_item_content(content: object, key: str = "") -> bytes:
    """Check an item's content (bytes, or text sent as UTF-8) against its format's limit.

    10 MiB for plain text, code and PDFs, 4 MiB for other formats (by ``key``'s extension).
    """
    if isinstance(content, str):
        check_json(content, "content")  # a lone surrogate cannot be encoded
        content = content.encode("utf-8")
    if not isinstance(content, (bytes, bytearray)):
        raise InvalidRequestError(f"content: must be bytes or str (got {type(content).__name__})")
    limit = item_limit(key)
    if len(content) > limit:
        if limit == MAX_ITEM_BYTES:
            allowed = f"{limit} bytes (10 MiB)"
        else:
            allowed = (
                f"{limit} bytes (4 MiB) for {key!r:.80}: 10 MiB applies to plain text, code "
                "and PDFs only"
            )
        raise InvalidRequestError(f"content: must be at most {allowed} (got {len(content)})")
    return bytes(content)


def item_metadata_json(metadata: object) -> str:
    """Check an item's metadata (a mapping of JSON values) and encode it as JSON."""
    if not isinstance(metadata, Mapping):
        raise InvalidRequestError(f"metadata: must be a mapping (got {type(metadata).__name__})")
    problem = json_problem(dict(metadata), "metadata")
    if problem:
        raise InvalidRequestError(f"metadata: must be JSON-serialisable ({problem})")
    return json.dumps(dict(metadata), allow_nan=False)


# --------------------------------------------------------------------------- instance config

_INSTANCE_BOUNDS: dict[str, tuple[float, float]] = {
    "max_num_results": (1, 50),
    "score_threshold": (0, 1),
    "chunk_overlap": (0, 30),
}
_SYNC_INTERVALS = (900, 1800, 3600, 7200, 14400, 21600, 43200, 86400)
_NOT_UPDATABLE = {
    "type": "the source type is fixed at creation (create a new instance instead)",
    "hybrid_search_enabled": "deprecated and not accepted by an update (set index_method)",
}


SDK_FIELD_NAMES = {
    "aisearch_model": "ai_search_model",
    "system_prompt_aisearch": "system_prompt_ai_search",
}
"""The official SDK's Python names of instance fields and their wire names (accepted here)."""


def check_instance_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Check the documented bounds of an instance configuration (create or update body).

    The official SDK's Python names (``aisearch_model``, ``system_prompt_aisearch``) are sent
    under their wire names (``ai_search_model``, ``system_prompt_ai_search``).
    """
    if "id" in config:
        raise InvalidRequestError("id: pass the instance id as the instance_id argument")
    config = dict(config)
    for sdk_name, wire in SDK_FIELD_NAMES.items():
        if sdk_name in config:
            if wire in config:
                raise InvalidRequestError(
                    f"{sdk_name}: the official SDK's name of {wire}; pass only one of them"
                )
            config[wire] = config.pop(sdk_name)
    for name, (lo, hi) in _INSTANCE_BOUNDS.items():
        if name in config:
            value = config[name]
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not lo <= value <= hi
            ):
                raise InvalidRequestError(f"{name}: must be between {lo} and {hi} (got {value!r})")
    if "sync_interval" in config and config["sync_interval"] not in _SYNC_INTERVALS:
        raise InvalidRequestError(
            f"sync_interval: must be one of {', '.join(map(str, _SYNC_INTERVALS))} "
            f"(got {config['sync_interval']!r})"
        )
    return dict(config)


def check_instance_update(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Check an update body: at least one field, no create-only field, documented bounds."""
    if not fields:
        raise InvalidRequestError(
            "fields: pass at least one configuration field to update (API.md section 10)"
        )
    for name, reason in _NOT_UPDATABLE.items():
        if name in fields:
            raise InvalidRequestError(f"{name}: cannot be updated; {reason}")
    return check_instance_config(fields)


# --------------------------------------------------------------------------- legacy routes


def _string(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError(f"must be a string (got {type(value).__name__})")
    return value


class _LegacyOptions(_RequestModel):
    """The options of the legacy AutoRAG routes (``/autorag/rags/{id}/search|ai-search``).

    Its bounds are those of ``RetrievalOptions``; ``to_body`` gives the legacy wire names.
    """

    filters: dict[str, Any] | None = None
    """A legacy filter, or a Vectorize-style one converted to the legacy form."""
    max_num_results: MaxNumResults | None = None
    score_threshold: UnitInterval | None = None
    rewrite_query: StrictBool | None = None
    reranking: dict[str, Any] | None = None
    """``{"enabled": ..., "model": ...}`` (a bool means ``{"enabled": bool}``)."""
    model: Annotated[str, BeforeValidator(_string)] | None = None
    system_prompt: Annotated[str, BeforeValidator(_string)] | None = None

    @field_validator("filters", mode="before")
    @classmethod
    def _legacy_filter(cls, value: object) -> object:
        try:
            return (
                validate_legacy_filter(value)
                if is_legacy_filter(value)
                else to_legacy_filter(cast("Mapping[str, Any]", value))
            )
        except InvalidRequestError as exc:  # keep the sub-path: "filters.key: ..."
            message = str(exc).removeprefix("filters")
            raise ValueError(message.removeprefix(":").lstrip()) from None

    @field_validator("reranking", mode="before")
    @classmethod
    def _reranking(cls, value: object) -> object:
        if isinstance(value, bool):
            return {"enabled": value}
        if isinstance(value, Mapping) and set(value) <= {"enabled", "model"}:
            return dict(value)
        raise ValueError(
            f"must be a bool or a mapping with 'enabled' and/or 'model' (got {_short(value)})"
        )

    def to_body(self) -> dict[str, Any]:
        """The legacy body members of the options set (``score_threshold`` is nested)."""
        return {
            "ranking_options" if name == "score_threshold" else name: (
                {"score_threshold": value} if name == "score_threshold" else value
            )
            for name, value in self.model_dump(exclude_none=True).items()
        }


def legacy_options(params: Mapping[str, Any]) -> dict[str, Any]:
    """Check the keyword options of a legacy route (``None``: not given) into wire body members.

    ``extra_body`` is merged by the caller.
    """
    given = {k: v for k, v in params.items() if v is not None and k != "extra_body"}
    return build_model(_LegacyOptions, given, "").to_body()
