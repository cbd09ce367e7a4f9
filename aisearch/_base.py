"""Request building and response parsing shared by the sync and async clients.

``_BaseClient`` builds every request (paths, bodies, validation before any network call)
and the module-level parsers turn responses into models; the clients only send.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import logging
import math
import mimetypes
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from aisearch._config import (
    UNSET,
    ClientConfig,
    Unset,
    check_max_retries,
    check_optional_seconds,
    check_path_id,
    check_seconds,
    make_timeout,
    resolve_config,
    validate_instance_id,
    validate_namespace,
)
from aisearch._exceptions import (
    AISearchError,
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    IndexingError,
    IndexingTimeoutError,
    InvalidRequestError,
    copy_response,
    redact_request,
    request_secrets,
    scrub,
    scrub_value,
)
from aisearch._fanout import (
    MergeMode,
    SearchTarget,
    check_fanout_args,
    normalize_targets,
)
from aisearch._filters import (
    is_legacy_filter,
    to_legacy_filter,
    validate_filters,
    validate_legacy_filter,
)
from aisearch._models import (
    ChatCompletion,
    ChatMessage,
    Chunk,
    ChunkItem,
    Item,
    SearchOptions,
    SearchResult,
    check_mapping,
    coerce_messages,
    coerce_options,
    deep_merge,
    drop_absent_nulls,
    query_or_messages,
    validate_json_tolerant,
)
from aisearch._sse import error_from_body
from aisearch._version import __version__

__all__ = ["_BaseClient"]

logger = logging.getLogger("aisearch")

_T = TypeVar("_T")
_HttpT = TypeVar("_HttpT", httpx.Client, httpx.AsyncClient)

Messages = Sequence[ChatMessage | Mapping[str, Any]]
Options = SearchOptions | Mapping[str, Any] | None
ProgressCallback = Callable[[int, int, list[Item]], None]

MAX_INSTANCE_IDS = 10
MAX_ITEM_BYTES = 4 * 1024 * 1024
MAX_ITEM_KEY = 128
MAX_PAGES = 10_000
ITEMS_PER_PAGE = 50
LIST_PER_PAGE = 100
ITEM_STATUSES = ("queued", "running", "completed", "error", "skipped", "outdated")
_DONE_STATUSES = frozenset({"completed", "skipped"})
USER_AGENT = f"aisearch-py/{__version__}"


MAX_JSON_DEPTH = 64
MAX_FILTER_CHARS = 8192
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def _json_problem(value: Any, path: str, depth: int = 0) -> str | None:
    """Name the first part of ``value`` that cannot travel as JSON, or return ``None``."""
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
            child = f"{path}.{key}" if path else key
            problem = _json_problem(key, child, depth + 1) or _json_problem(item, child, depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            problem = _json_problem(item, f"{where}[{i}]", depth + 1)
            if problem:
                return problem
        return None
    return f"{where}: must be a JSON value (got {type(value).__name__})"


def _check_json(value: Any, path: str) -> None:
    """Raise ``InvalidRequestError`` naming the first part of ``value`` that is not JSON."""
    problem = _json_problem(value, path)
    if problem:
        raise InvalidRequestError(problem)


def _encode_json(body: Any) -> bytes:
    """Encode a request body once, as httpx would; a value that cannot be sent is named."""
    try:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError, RecursionError):
        pass
    _check_json(body, "")
    raise InvalidRequestError("body: cannot be encoded as JSON")  # pragma: no cover - defensive


@dataclass
class _Request:
    """A request to build (and rebuild on every retry); a JSON body is encoded here, once."""

    method: str
    path: str
    json: Any = None
    params: dict[str, Any] | None = None
    files: dict[str, Any] | None = None
    data: dict[str, Any] | None = None
    content: bytes | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.json is not None:
            self.content = _encode_json(self.json)


class _Envelope(BaseModel):
    """The Cloudflare v4 envelope (``result`` left raw here)."""

    success: bool | None = None
    errors: list[Any] = []
    result: Any = None
    result_info: dict[str, Any] | None = None


class _SearchEnvelope(BaseModel):
    success: bool | None = None
    errors: list[Any] = []
    result: SearchResult | None = None


@functools.lru_cache(maxsize=1024)
def _parsed_url(url: str) -> httpx.URL:
    """Parse a request URL once and share it (``httpx.URL`` is immutable).

    httpx checks a string URL character by character on every request: about 25 us, a
    tenth of the client's own CPU for a search.
    """
    return httpx.URL(url)


@functools.lru_cache(maxsize=1024)
def _instance_base(account_path: str, namespace: str, instance_id: str) -> str:
    """Validate the ids once per (account, namespace, instance) and build the path."""
    validate_namespace(namespace)
    validate_instance_id(instance_id)
    return f"{account_path}/ai-search/namespaces/{namespace}/instances/{instance_id}"


def _request_id(response: httpx.Response) -> str | None:
    rid: str | None = response.headers.get("cf-ray") or response.headers.get("x-request-id")
    return rid


def _validation_error(response: httpx.Response, what: str, exc: Exception) -> AISearchError:
    """Build the error for a 2xx body that does not fit; ``success: false`` wins."""
    try:
        data = json.loads(response.content)
    except ValueError:
        data = None
    if isinstance(data, Mapping) and data.get("success") is False:
        return error_from_body(
            data, response.status_code, _request_id(response), "success: false", response=response
        )
    detail = ""
    if isinstance(exc, ValidationError):
        first = exc.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in first["loc"])
        detail = f": {loc}: {first['msg']}" if loc else f": {first['msg']}"
    else:
        detail = f": {exc}"
    return APIResponseValidationError(f"unexpected {what} response body{detail}", response=response)


def _fit(
    response: httpx.Response,
    what: str,
    build: Callable[[], _T],
    errors: tuple[type[Exception], ...] = (ValidationError,),
) -> _T:
    """Run ``build``; if the body does not fit, raise the validation error.

    It is raised outside the ``except`` block, so that the exception chain
    (``__context__``) does not keep pydantic's error, which quotes the body.
    """
    try:
        return build()
    except errors as exc:
        failure: Exception = exc
    raise _validation_error(response, what, failure)


def _parse_search(response: httpx.Response) -> SearchResult:
    env = _fit(
        response, "search", lambda: validate_json_tolerant(_SearchEnvelope, response.content)
    )
    if env.success is False:
        raise error_from_body(
            env.model_dump(),
            response.status_code,
            _request_id(response),
            "success: false",
            response=response,
        )
    if env.result is None:
        raise _validation_error(response, "search", ValueError("no result"))
    return env.result


def _enveloped_completion(response: httpx.Response) -> ChatCompletion | None:
    """A completion wrapped in the v4 envelope (tolerated), else ``None``."""
    try:
        data = json.loads(response.content)
    except ValueError:
        return None
    if isinstance(data, Mapping) and data.get("success") is not False:
        result = data.get("result")
        if isinstance(result, Mapping) and "choices" in result:
            try:
                return ChatCompletion.model_validate(result)
            except ValidationError:
                return None
    return None


def _parse_chat(response: httpx.Response) -> ChatCompletion:
    try:
        return validate_json_tolerant(ChatCompletion, response.content)
    except ValidationError as exc:
        failure = exc
    wrapped = _enveloped_completion(response)
    if wrapped is not None:
        return wrapped
    raise _validation_error(response, "chat completion", failure)


def _parse_envelope(response: httpx.Response, what: str) -> _Envelope:
    if not response.content.strip():
        if response.status_code in (202, 204):
            return _Envelope(success=True)
        raise APIResponseValidationError(
            f"empty {what} response body", status_code=response.status_code
        )
    env = _fit(response, what, lambda: _Envelope.model_validate_json(response.content))
    if env.success is False:
        raise error_from_body(
            env.model_dump(),
            response.status_code,
            _request_id(response),
            "success: false",
            response=response,
        )
    return env


def _result_parser(model: type[BaseModel], what: str) -> Callable[[httpx.Response], Any]:
    def parse(response: httpx.Response) -> Any:
        env = _parse_envelope(response, what)
        return _fit(response, what, lambda: model.model_validate(env.result))

    return parse


def _none_parser(response: httpx.Response) -> None:
    _parse_envelope(response, "delete")


def _list_result_parser(model: type[BaseModel], what: str) -> Callable[[httpx.Response], Any]:
    """Parse an enveloped, unpaginated list (nulls that mean absent take their defaults)."""

    def parse(response: httpx.Response) -> Any:
        env = _parse_envelope(response, what)
        if not isinstance(env.result, list):
            raise _validation_error(response, what, ValueError("result is not a list"))
        entries = env.result
        return _fit(
            response,
            what,
            lambda: [model.model_validate(drop_absent_nulls(entry)) for entry in entries],
        )

    return parse


def _legacy_chunk(entry: Mapping[str, Any]) -> Chunk:
    content = entry.get("content") or []
    texts = [str(c.get("text", "")) for c in content if isinstance(c, Mapping)]
    first_id = next((c.get("id") for c in content if isinstance(c, Mapping) and c.get("id")), None)
    attributes = entry.get("attributes") or {}
    filename = entry.get("filename") or ""
    timestamp = attributes.get("modified_date") if isinstance(attributes, Mapping) else None
    chunk_type = next(
        (c.get("type") for c in content if isinstance(c, Mapping) and c.get("type")), "text"
    )
    return Chunk(
        id=str(entry.get("file_id") or first_id or filename),
        type=str(chunk_type),
        score=entry["score"],
        text="\n".join(texts),
        item=ChunkItem(
            key=filename,
            timestamp=timestamp if isinstance(timestamp, (int, float)) else None,
            metadata=dict(attributes) if isinstance(attributes, Mapping) else {},
        ),
        filename=filename,
        attributes=attributes,
        file_id=entry.get("file_id"),
        content=content,
    )


def _parse_legacy(response: httpx.Response) -> SearchResult:
    result = _parse_envelope(response, "legacy search").result

    def build() -> SearchResult:
        if not isinstance(result, Mapping):
            raise TypeError("result is not an object")
        data = result.get("data") or []
        chunks = [_legacy_chunk(entry) for entry in data]
        extras = {k: v for k, v in result.items() if k not in ("data", "search_query", "response")}
        return SearchResult(
            search_query=result.get("search_query"),
            chunks=chunks,
            response=result.get("response"),
            data=data,
            **extras,
        )

    return _fit(
        response, "legacy search", build, (ValidationError, TypeError, KeyError, AttributeError)
    )


def _check_extra(value: object, field: str) -> Mapping[str, Any] | None:
    """Check an escape hatch: a mapping (or ``None``) of JSON values, named on error."""
    mapping = check_mapping(value, field)
    if mapping:
        _check_json(dict(mapping), field)
    return mapping


def _check_bool(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidRequestError(f"{field}: must be true or false (got {value!r:.80})")
    return value


def _indexing_progress(items: list[Item]) -> tuple[int, list[Item]]:
    done = sum(1 for item in items if item.status in _DONE_STATUSES)
    failed = [item for item in items if item.status == "error"]
    return done, failed


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
MAX_CHUNKS_LIMIT = 100


def _check_instance_config(config: Mapping[str, Any]) -> dict[str, Any]:
    if "id" in config:
        raise InvalidRequestError("id: pass the instance id as the instance_id argument")
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


def _check_instance_update(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Check an update body: at least one field, no create-only field, documented bounds."""
    if not fields:
        raise InvalidRequestError(
            "fields: pass at least one configuration field to update (API.md section 10)"
        )
    for name, reason in _NOT_UPDATABLE.items():
        if name in fields:
            raise InvalidRequestError(f"{name}: cannot be updated; {reason}")
    return _check_instance_config(fields)


def _check_int_range(value: object, name: str, lo: int, hi: int | None) -> int:
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


class _BaseClient(Generic[_HttpT]):
    """Request building and response parsing shared by both clients."""

    _client: _HttpT
    _owns_client: bool

    def __init__(
        self,
        *,
        account_id: str | None,
        api_token: str | None,
        api_email: str | None,
        api_key: str | None,
        namespace: str,
        base_url: str | None,
        timeout: float | httpx.Timeout,
        max_retries: int,
        total_timeout: float | None = None,
        stream_idle_timeout: float | None = None,
    ) -> None:
        config = resolve_config(
            account_id=account_id,
            api_token=api_token,
            api_email=api_email,
            api_key=api_key,
            namespace=namespace,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
        )
        self._config: ClientConfig = dataclasses.replace(
            config,
            total_timeout=check_optional_seconds(total_timeout, "total_timeout"),
            stream_idle_timeout=check_optional_seconds(stream_idle_timeout, "stream_idle_timeout"),
        )
        self._account_path = f"/accounts/{self._config.account_id}"

    # ------------------------------------------------------------------ properties

    @property
    def account_id(self) -> str:
        """The Cloudflare account id."""
        return self._config.account_id

    @property
    def base_url(self) -> str:
        """The API root URL."""
        return self._config.base_url

    @property
    def namespace(self) -> str:
        """The default namespace."""
        return self._config.namespace

    @property
    def timeout(self) -> httpx.Timeout:
        """The default timeout of every call."""
        return self._config.timeout

    @property
    def max_retries(self) -> int:
        """How many times a retryable failure is retried."""
        return self._config.max_retries

    @property
    def total_timeout(self) -> float | None:
        """Seconds a whole call may take, retries included (``None``: no cap of its own)."""
        return self._config.total_timeout

    @property
    def stream_idle_timeout(self) -> float | None:
        """Seconds a stream may go without an event (``None``: the timeout's largest value)."""
        return self._config.stream_idle_timeout

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(account_id={self._config.account_id!r}, "
            f"namespace={self._config.namespace!r}, base_url={self._config.base_url!r})"
        )

    __str__ = __repr__

    def with_options(
        self,
        *,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
        total_timeout: float | Unset | None = UNSET,
        stream_idle_timeout: float | Unset | None = UNSET,
    ) -> Any:
        """Return a copy with other timeouts and/or retry count, sharing the HTTP pool.

        Args:
            timeout: New default timeout (seconds or ``httpx.Timeout``).
            max_retries: New retry count (0 to 10).
            total_timeout: New cap of a whole call in seconds (``None`` removes it).
            stream_idle_timeout: New longest wait between stream events in seconds (``None``:
                the timeout's largest value).

        Returns:
            A client of the same class. Closing it does not close the shared pool.
        """
        changes: dict[str, Any] = {}
        if timeout is not None:
            changes["timeout"] = make_timeout(timeout)
        if max_retries is not None:
            changes["max_retries"] = check_max_retries(max_retries)
        if total_timeout is not UNSET:
            changes["total_timeout"] = check_optional_seconds(total_timeout, "total_timeout")
        if stream_idle_timeout is not UNSET:
            changes["stream_idle_timeout"] = check_optional_seconds(
                stream_idle_timeout, "stream_idle_timeout"
            )
        clone = copy.copy(self)
        clone._config = dataclasses.replace(self._config, **changes)
        clone._owns_client = False
        return clone

    # ------------------------------------------------------------------ request building

    def _ns(self, namespace: str | None) -> str:
        return self._config.namespace if namespace is None else validate_namespace(namespace)

    def _instance_path(self, instance_id: str, namespace: str | None, suffix: str = "") -> str:
        ns = self._config.namespace if namespace is None else namespace
        if not isinstance(ns, str) or not isinstance(instance_id, str):
            validate_namespace(ns)
            validate_instance_id(instance_id)
        return _instance_base(self._account_path, ns, instance_id) + suffix

    def _build(self, req: _Request) -> httpx.Request:
        headers = self._config.auth_headers()
        if req.content is not None:
            headers["Content-Type"] = "application/json"
        return self._client.build_request(
            req.method,
            _parsed_url(self._config.base_url + req.path),
            content=req.content,
            params=req.params,
            files=req.files,
            data=req.data,
            headers=headers,
            timeout=self._config.timeout,
        )

    def _status_error(self, response: httpx.Response) -> APIStatusError:
        try:
            body: Any = json.loads(response.content) if response.content else None
        except ValueError:
            body = response.text
        default = response.reason_phrase or "request failed"
        error = error_from_body(
            body, response.status_code, _request_id(response), default, response=response
        )
        return self._scrubbed(error)

    def _scrubbed(self, error: APIStatusError) -> APIStatusError:
        """Take the client's credentials out of an error's message and body.

        Errors built from a response are already scrubbed by their constructor (with the
        credentials of the request); this also covers one built without the response.
        """
        secrets = self._config.secrets()
        error.message = scrub(error.message, secrets)
        error.args = (error._format(),)
        error.body = scrub_value(error.body, secrets)
        return error

    def _body(
        self,
        base: dict[str, Any],
        options: Options,
        extra_options: Mapping[str, Any] | None,
        extra_body: Mapping[str, Any] | None,
        instance_ids: list[str] | None = None,
    ) -> dict[str, Any]:
        opts = coerce_options(options)
        extra_options = _check_extra(extra_options, "extra_options")
        extra_body = _check_extra(extra_body, "extra_body")
        ai_opts = opts.to_json_dict() if opts is not None else {}
        if instance_ids is not None:
            ai_opts["instance_ids"] = instance_ids
        if extra_options:
            deep_merge(ai_opts, extra_options)
        if ai_opts:
            base["ai_search_options"] = ai_opts
        if extra_body:
            deep_merge(base, extra_body)
        return base

    @staticmethod
    def _instance_ids(instance_ids: Sequence[str]) -> list[str]:
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

    def _search_req(
        self,
        instance_id: str,
        query: str | None,
        messages: Messages | None,
        options: Options,
        namespace: str | None,
        extra_options: Mapping[str, Any] | None,
        extra_body: Mapping[str, Any] | None,
    ) -> _Request:
        path = self._instance_path(instance_id, namespace, "/search")
        body = self._body(query_or_messages(query, messages), options, extra_options, extra_body)
        return _Request("POST", path, json=body)

    def _chat_req(
        self,
        instance_id: str,
        messages: Messages,
        model: str | None,
        options: Options,
        namespace: str | None,
        extra_options: Mapping[str, Any] | None,
        extra_body: Mapping[str, Any] | None,
        *,
        stream: bool,
        generation: Mapping[str, Any] | None = None,
    ) -> _Request:
        path = self._instance_path(instance_id, namespace, "/chat/completions")
        body = self._chat_body(
            messages, model, options, extra_options, extra_body, stream, None, generation
        )
        return _Request("POST", path, json=body)

    def _chat_body(
        self,
        messages: Messages,
        model: str | None,
        options: Options,
        extra_options: Mapping[str, Any] | None,
        extra_body: Mapping[str, Any] | None,
        stream: bool,
        instance_ids: list[str] | None = None,
        generation: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        base: dict[str, Any] = {"messages": coerce_messages(messages)}
        if model is not None:
            if not isinstance(model, str):
                raise InvalidRequestError(f"model: must be a string (got {type(model).__name__})")
            base["model"] = model
        base.update(generation or {})  # checked by _generation.check_generation
        if stream:
            base["stream"] = True
        return self._body(base, options, extra_options, extra_body, instance_ids)

    def _ns_search_req(
        self,
        instance_ids: Sequence[str],
        query: str | None,
        messages: Messages | None,
        options: Options,
        namespace: str | None,
        extra_options: Mapping[str, Any] | None,
        extra_body: Mapping[str, Any] | None,
    ) -> _Request:
        ids = self._instance_ids(instance_ids)
        path = f"{self._account_path}/ai-search/namespaces/{self._ns(namespace)}/search"
        body = self._body(
            query_or_messages(query, messages), options, extra_options, extra_body, ids
        )
        return _Request("POST", path, json=body)

    def _ns_chat_req(
        self,
        instance_ids: Sequence[str],
        messages: Messages,
        model: str | None,
        options: Options,
        namespace: str | None,
        extra_options: Mapping[str, Any] | None,
        extra_body: Mapping[str, Any] | None,
        *,
        stream: bool,
        generation: Mapping[str, Any] | None = None,
    ) -> _Request:
        ids = self._instance_ids(instance_ids)
        path = f"{self._account_path}/ai-search/namespaces/{self._ns(namespace)}/chat/completions"
        body = self._chat_body(
            messages, model, options, extra_options, extra_body, stream, ids, generation
        )
        return _Request("POST", path, json=body)

    def _legacy_req(
        self,
        rag_id: str,
        route: Literal["search", "ai-search"],
        query: str,
        *,
        filters: Mapping[str, Any] | None,
        max_num_results: int | None,
        score_threshold: float | None,
        rewrite_query: bool | None,
        reranking: bool | Mapping[str, Any] | None,
        model: str | None = None,
        system_prompt: str | None = None,
        stream: bool = False,
        extra_body: Mapping[str, Any] | None,
    ) -> _Request:
        validate_instance_id(rag_id, "rag_id")
        body: dict[str, Any] = query_or_messages(query, None)
        if filters is not None:
            body["filters"] = (
                validate_legacy_filter(filters)
                if is_legacy_filter(filters)
                else to_legacy_filter(filters)
            )
            if body["filters"] is None:
                del body["filters"]
        if max_num_results is not None:
            if (
                isinstance(max_num_results, bool)
                or not isinstance(max_num_results, int)
                or not 1 <= max_num_results <= 50
            ):
                raise InvalidRequestError(
                    "max_num_results: must be an integer between 1 and 50 "
                    f"(got {max_num_results!r})"
                )
            body["max_num_results"] = max_num_results
        if score_threshold is not None:
            if (
                isinstance(score_threshold, bool)
                or not isinstance(score_threshold, (int, float))
                or not 0 <= score_threshold <= 1
            ):
                raise InvalidRequestError(
                    f"score_threshold: must be a number between 0 and 1 (got {score_threshold!r})"
                )
            body["ranking_options"] = {"score_threshold": score_threshold}
        if rewrite_query is not None:
            if not isinstance(rewrite_query, bool):
                raise InvalidRequestError(
                    f"rewrite_query: must be true or false (got {rewrite_query!r})"
                )
            body["rewrite_query"] = rewrite_query
        if reranking is not None:
            if isinstance(reranking, bool):
                body["reranking"] = {"enabled": reranking}
            elif isinstance(reranking, Mapping) and set(reranking) <= {"enabled", "model"}:
                body["reranking"] = dict(reranking)
            else:
                raise InvalidRequestError(
                    "reranking: must be a bool or a mapping with 'enabled' and/or 'model' "
                    f"(got {reranking!r})"
                )
        for name, value in (("model", model), ("system_prompt", system_prompt)):
            if value is not None:
                if not isinstance(value, str):
                    raise InvalidRequestError(
                        f"{name}: must be a string (got {type(value).__name__})"
                    )
                body[name] = value
        if stream:
            body["stream"] = True
        extra_body = _check_extra(extra_body, "extra_body")
        if extra_body:
            deep_merge(body, extra_body)
        return _Request("POST", f"{self._account_path}/autorag/rags/{rag_id}/{route}", json=body)

    # management requests

    def _namespaces_path(self) -> str:
        return f"{self._account_path}/ai-search/namespaces"

    def _namespace_path(self, name: str) -> str:
        # no default here: get_namespace(None) must not become a GET (or DELETE) of the list
        return f"{self._namespaces_path()}/{validate_namespace(name, 'name')}"

    def _create_namespace_req(self, name: str, description: str | None) -> _Request:
        body: dict[str, Any] = {"name": validate_namespace(name, "name")}
        if description is not None:
            if not isinstance(description, str) or len(description) > 256:
                raise InvalidRequestError("description: must be a string of at most 256 characters")
            body["description"] = description
        return _Request("POST", self._namespaces_path(), json=body)

    def _create_instance_req(
        self, instance_id: str, namespace: str | None, config: Mapping[str, Any]
    ) -> _Request:
        validate_instance_id(instance_id)
        body = {"id": instance_id, **_check_instance_config(config)}
        path = f"{self._account_path}/ai-search/namespaces/{self._ns(namespace)}/instances"
        return _Request("POST", path, json=body)

    def _upload_req(
        self,
        instance_id: str,
        key: str,
        content: bytes | str,
        metadata: Mapping[str, Any] | None,
        wait_for_completion: bool,
        namespace: str | None,
    ) -> _Request:
        path = self._instance_path(instance_id, namespace, "/items")
        self._check_key(key)
        if isinstance(content, str):
            _check_json(content, "content")  # a lone surrogate cannot be encoded
            content = content.encode("utf-8")
        if not isinstance(content, (bytes, bytearray)):
            raise InvalidRequestError(
                f"content: must be bytes or str (got {type(content).__name__})"
            )
        if len(content) > MAX_ITEM_BYTES:
            raise InvalidRequestError(
                f"content: must be at most {MAX_ITEM_BYTES} bytes (4 MB) (got {len(content)})"
            )
        wait = _check_bool(wait_for_completion, "wait_for_completion")
        data: dict[str, Any] = {"wait_for_completion": "true" if wait else "false"}
        if metadata is not None:
            if not isinstance(metadata, Mapping):
                raise InvalidRequestError(
                    f"metadata: must be a mapping (got {type(metadata).__name__})"
                )
            problem = _json_problem(dict(metadata), "metadata")
            if problem:
                raise InvalidRequestError(f"metadata: must be JSON-serialisable ({problem})")
            data["metadata"] = json.dumps(dict(metadata), allow_nan=False)
        mime = mimetypes.guess_type(key)[0] or "application/octet-stream"
        files = {"file": (key, bytes(content), mime)}
        return _Request("POST", path, files=files, data=data)

    @staticmethod
    def _check_key(key: object) -> str:
        if not isinstance(key, str) or not key or len(key) > MAX_ITEM_KEY:
            raise InvalidRequestError(
                f"key: must be a non-empty string of at most {MAX_ITEM_KEY} characters "
                f"(got {key!r:.80})"
            )
        _check_json(key, "key")
        if _CONTROL_RE.search(key):
            raise InvalidRequestError(f"key: must not contain control characters (got {key!r:.80})")
        return key

    def _item_path(self, instance_id: str, item_id: str, namespace: str | None) -> str:
        item_id = check_path_id(item_id, "item_id", "item")
        return self._instance_path(instance_id, namespace, f"/items/{item_id}")

    def _update_instance_req(
        self, instance_id: str, namespace: str | None, fields: Mapping[str, Any]
    ) -> _Request:
        path = self._instance_path(instance_id, namespace)
        return _Request("PUT", path, json=_check_instance_update(fields))

    def _sync_item_req(
        self, instance_id: str, item_id: str, wait_for_completion: bool, namespace: str | None
    ) -> _Request:
        body = {
            "next_action": "INDEX",
            "wait_for_completion": _check_bool(wait_for_completion, "wait_for_completion"),
        }
        return _Request("PATCH", self._item_path(instance_id, item_id, namespace), json=body)

    def _item_chunks_req(
        self, instance_id: str, item_id: str, limit: int, offset: int, namespace: str | None
    ) -> _Request:
        _check_int_range(limit, "limit", 1, MAX_CHUNKS_LIMIT)
        _check_int_range(offset, "offset", 0, None)
        path = self._item_path(instance_id, item_id, namespace) + "/chunks"
        return _Request("GET", path, params={"limit": limit, "offset": offset})

    def _job_path(
        self, instance_id: str, job_id: str, namespace: str | None, suffix: str = ""
    ) -> str:
        job_id = check_path_id(job_id, "job_id", "job")
        return self._instance_path(instance_id, namespace, f"/jobs/{job_id}{suffix}")

    def _create_job_req(
        self, instance_id: str, description: str | None, namespace: str | None
    ) -> _Request:
        path = self._instance_path(instance_id, namespace, "/jobs")
        body: dict[str, Any] = {}
        if description is not None:
            if not isinstance(description, str):
                raise InvalidRequestError(
                    f"description: must be a string (got {type(description).__name__})"
                )
            body["description"] = description
        return _Request("POST", path, json=body)

    def _list_items_params(
        self, metadata_filter: Mapping[str, Any] | None, status: str | None
    ) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if metadata_filter is not None:
            encoded = json.dumps(validate_filters(metadata_filter, path="metadata_filter"))
            if len(encoded) > MAX_FILTER_CHARS:  # it travels in the URL
                raise InvalidRequestError(
                    f"metadata_filter: must be at most {MAX_FILTER_CHARS} characters as JSON "
                    f"(got {len(encoded)})"
                )
            params["metadata_filter"] = encoded
        if status is not None:
            if status not in ITEM_STATUSES:
                raise InvalidRequestError(
                    f"status: must be one of {', '.join(ITEM_STATUSES)} (got {status!r})"
                )
            params["status"] = status
        return params

    @staticmethod
    def _page_done(env: _Envelope, got: int, total: int, per_page: int) -> bool:
        if got == 0:
            return True
        info = env.result_info or {}
        total_count = info.get("total_count")
        if isinstance(total_count, int):
            return total >= total_count
        total_pages = info.get("total_pages")
        page = info.get("page")
        if isinstance(total_pages, int) and isinstance(page, int):
            return page >= total_pages
        return got < per_page

    @staticmethod
    def _page_items(env: _Envelope, model: type[_T], response: httpx.Response) -> list[_T]:
        if not isinstance(env.result, list):
            raise _validation_error(response, "list", ValueError("result is not a list"))
        entries = env.result
        return _fit(
            response,
            "list",
            lambda: [model.model_validate(entry) for entry in entries],  # type: ignore[attr-defined]
        )

    @staticmethod
    def _wait_args(
        timeout: float, poll_interval: float, on_progress: object
    ) -> tuple[float, float]:
        if on_progress is not None and not callable(on_progress):
            raise InvalidRequestError(
                f"on_progress: must be a callable or None (got {type(on_progress).__name__})"
            )
        return check_seconds(timeout, "timeout"), check_seconds(poll_interval, "poll_interval")

    def _wait_ids(
        self, instance_id: str, item_ids: Sequence[str] | None, namespace: str | None
    ) -> list[str] | None:
        """Check every id of a wait before the first poll (a string is not a list of ids)."""
        self._instance_path(instance_id, namespace)
        if item_ids is None:
            return None
        if isinstance(item_ids, (str, bytes, bytearray)) or not isinstance(item_ids, Sequence):
            raise InvalidRequestError(
                f"item_ids: must be a list of item ids or None (got {type(item_ids).__name__})"
            )
        return [check_path_id(v, f"item_ids[{i}]", "item") for i, v in enumerate(item_ids)]

    def _wait_step(
        self,
        items: list[Item],
        on_progress: ProgressCallback | None,
        deadline: float,
        timeout: float,
    ) -> float | None:
        """Report progress; return ``None`` when done, else the seconds left before the deadline."""
        done, failed = _indexing_progress(items)
        if on_progress is not None:
            on_progress(done, len(items), items)
        if failed:
            names = ", ".join(f"{i.key or i.id}: {i.error or 'error'}" for i in failed)
            message = f"indexing failed for {len(failed)} item(s): {names}"  # server text: scrub
            raise IndexingError(scrub(message, self._config.secrets()), items=failed)
        if done == len(items):
            return None
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise IndexingTimeoutError(
                f"{len(items) - done} of {len(items)} item(s) not indexed after {timeout:g} s",
                items=items,
            )
        return remaining

    def _fanout_prepare(
        self,
        targets: Sequence[str | SearchTarget],
        query: str,
        options: Options,
        merge: MergeMode,
        top_k: int | None,
        max_concurrency: int,
    ) -> tuple[list[SearchTarget], SearchOptions | None]:
        check_fanout_args(merge, top_k, max_concurrency)
        query_or_messages(query, None)
        return normalize_targets(targets), coerce_options(options)

    def _log_retry(self, req: _Request, exc: AISearchError, delay: float, attempt: int) -> None:
        logger.debug(
            "retrying %s %s in %.2f s (retry %d of %d) after %s",
            req.method,
            req.path,
            delay,
            attempt,
            self._config.max_retries,
            type(exc).__name__,
        )

    @staticmethod
    def _stream_content_error(response: httpx.Response, body: bytes) -> AISearchError:
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if isinstance(data, Mapping) and (
            data.get("success") is False or "error" in data or data.get("errors")
        ):
            return error_from_body(
                data, response.status_code, _request_id(response), "error", response=response
            )
        ctype = response.headers.get("content-type", "")
        return APIResponseValidationError(
            f"expected a text/event-stream response, got content type {ctype!r}",
            content=body,
            response=response,
        )


MAX_ERROR_BODY = 1024 * 1024
"""Most bytes of an error body the client reads (the rest is discarded, the connection closed)."""


def _add_capped(parts: list[bytes], size: int, chunk: bytes) -> int:
    """Keep ``chunk`` and return the new size; above ``MAX_ERROR_BODY`` the caller stops."""
    parts.append(chunk)
    return size + len(chunk)


def _capped_response(response: httpx.Response, parts: list[bytes]) -> httpx.Response:
    """A read copy of an error response holding at most ``MAX_ERROR_BODY`` bytes of its body.

    Args:
        response: The response whose body was read (in part) as ``parts`` (decoded bytes).
        parts: The pieces read.

    Returns:
        A response with the same status, headers (but the encoding and length ones, which no
        longer apply) and request, whose content is the first ``MAX_ERROR_BODY`` bytes.
    """
    return copy_response(response, b"".join(parts)[:MAX_ERROR_BODY], request=response.request)


def _is_event_stream(response: httpx.Response) -> bool:
    ctype: str = response.headers.get("content-type", "")
    return ctype.partition(";")[0].strip().lower() == "text/event-stream"


def _wrap_transport_error(exc: httpx.HTTPError, request: httpx.Request) -> APIConnectionError:
    """Wrap an httpx error; the wrapper and the wrapped error keep a redacted request."""
    error: APIConnectionError
    if isinstance(exc, httpx.TimeoutException):
        error = APITimeoutError(f"request timed out ({type(exc).__name__})", request=request)
    elif isinstance(exc, httpx.LocalProtocolError):  # its text may quote a header value
        error = APIConnectionError(
            f"connection error: {type(exc).__name__} (request could not be sent)", request=request
        )
    else:
        error = APIConnectionError(
            f"connection error: {type(exc).__name__}: {exc}", request=request
        )
    scrub_chain(exc, request)  # the cause (and what it chains) shows no credential either
    return error


def scrub_chain(exc: BaseException, request: httpx.Request) -> None:
    """Take the credentials of ``request`` out of ``exc`` and everything it chains.

    Used on the httpx error an ``AISearchError`` is raised from: the string arguments of
    every exception in the chain (``__cause__`` and ``__context__``, recursively) are
    scrubbed, and every httpx error keeps a redacted copy of its request.

    Args:
        exc: The exception to keep as the cause.
        request: The request that was sent.
    """
    secrets = request_secrets(request)
    redacted = redact_request(request)
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        link = todo.pop()
        if link is None or id(link) in seen:
            continue
        seen.add(id(link))
        link.args = tuple(scrub(a, secrets) if isinstance(a, str) else a for a in link.args)
        if isinstance(link, httpx.RequestError):
            link.request = redacted
        todo += [link.__cause__, link.__context__]
