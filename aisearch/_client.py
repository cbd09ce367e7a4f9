"""The AI Search clients: ``AISearchClient`` (sync) and ``AsyncAISearchClient`` (async).

Both share ``_BaseClient``, which builds every request and parses every response; only
sending (with retries), streaming, paging and polling differ between them.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import logging
import math
import mimetypes
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

import httpx
from httpx_sse import EventSource
from pydantic import BaseModel, ValidationError

from aisearch._config import (
    DEFAULT_NAMESPACE,
    DEFAULT_TIMEOUT,
    ClientConfig,
    check_max_retries,
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
    StreamInterruptedError,
    excerpt,
)
from aisearch._fanout import (
    MergeMode,
    SearchTarget,
    check_fanout_args,
    merge_results,
    normalize_targets,
    run_async,
    run_sync,
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
    FanOutResult,
    Instance,
    Item,
    Namespace,
    SearchOptions,
    SearchResult,
    StreamEvent,
    check_mapping,
    coerce_messages,
    coerce_options,
    deep_merge,
    query_or_messages,
)
from aisearch._retry import delay_for, is_retryable
from aisearch._sse import StreamDecoder, error_from_body
from aisearch._version import __version__

__all__ = ["AISearchClient", "AsyncAISearchClient"]

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
_USER_AGENT = f"aisearch-py/{__version__}"


class _NotGiven:
    """Sentinel for "argument not passed" where ``None`` is meaningful."""

    def __repr__(self) -> str:
        return "NOT_GIVEN"

    def __bool__(self) -> bool:
        return False


NOT_GIVEN: Any = _NotGiven()


@dataclass
class _Request:
    """A request to build (and rebuild on every retry)."""

    method: str
    path: str
    json: Any = None
    params: dict[str, Any] | None = None
    files: dict[str, Any] | None = None
    data: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


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
        return error_from_body(data, response.status_code, _request_id(response), "success: false")
    detail = ""
    if isinstance(exc, ValidationError):
        first = exc.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in first["loc"])
        detail = f": {loc}: {first['msg']}" if loc else f": {first['msg']}"
    return APIResponseValidationError(
        f"unexpected {what} response body{detail}",
        status_code=response.status_code,
        body_excerpt=excerpt(response.content),
    )


def _parse_search(response: httpx.Response) -> SearchResult:
    try:
        env = _SearchEnvelope.model_validate_json(response.content)
    except ValidationError as exc:
        raise _validation_error(response, "search", exc) from None
    if env.success is False:
        raise error_from_body(
            env.model_dump(), response.status_code, _request_id(response), "success: false"
        )
    if env.result is None:
        raise _validation_error(response, "search", ValueError("no result"))
    return env.result


def _parse_chat(response: httpx.Response) -> ChatCompletion:
    try:
        return ChatCompletion.model_validate_json(response.content)
    except ValidationError as exc:
        # Tolerate a completion wrapped in the v4 envelope.
        try:
            data = json.loads(response.content)
        except ValueError:
            data = None
        if isinstance(data, Mapping) and data.get("success") is not False:
            result = data.get("result")
            if isinstance(result, Mapping) and "choices" in result:
                try:
                    return ChatCompletion.model_validate(result)
                except ValidationError:
                    pass
        raise _validation_error(response, "chat completion", exc) from None


def _parse_envelope(response: httpx.Response, what: str) -> _Envelope:
    if not response.content.strip():
        if response.status_code in (202, 204):
            return _Envelope(success=True)
        raise APIResponseValidationError(
            f"empty {what} response body", status_code=response.status_code
        )
    try:
        env = _Envelope.model_validate_json(response.content)
    except ValidationError as exc:
        raise _validation_error(response, what, exc) from None
    if env.success is False:
        raise error_from_body(
            env.model_dump(), response.status_code, _request_id(response), "success: false"
        )
    return env


def _result_parser(model: type[BaseModel], what: str) -> Callable[[httpx.Response], Any]:
    def parse(response: httpx.Response) -> Any:
        env = _parse_envelope(response, what)
        try:
            return model.model_validate(env.result)
        except ValidationError as exc:
            raise _validation_error(response, what, exc) from None

    return parse


def _none_parser(response: httpx.Response) -> None:
    _parse_envelope(response, "delete")


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
    env = _parse_envelope(response, "legacy search")
    result = env.result
    try:
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
    except (ValidationError, TypeError, KeyError, AttributeError) as exc:
        raise _validation_error(response, "legacy search", exc) from None


def _scrub(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, "***")
    return text


def _indexing_progress(items: list[Item]) -> tuple[int, list[Item]]:
    done = sum(1 for item in items if item.status in _DONE_STATUSES)
    failed = [item for item in items if item.status == "error"]
    return done, failed


def _check_positive(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InvalidRequestError(f"{name}: must be a positive number of seconds (got {value!r})")
    if math.isinf(value):
        raise InvalidRequestError(f"{name}: must be finite (got {value!r})")
    return float(value)


_INSTANCE_BOUNDS: dict[str, tuple[float, float]] = {
    "max_num_results": (1, 50),
    "score_threshold": (0, 1),
    "chunk_overlap": (0, 30),
}
_SYNC_INTERVALS = (900, 1800, 3600, 7200, 14400, 21600, 43200, 86400)


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
    ) -> None:
        self._config: ClientConfig = resolve_config(
            account_id=account_id,
            api_token=api_token,
            api_email=api_email,
            api_key=api_key,
            namespace=namespace,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
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

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(account_id={self._config.account_id!r}, "
            f"namespace={self._config.namespace!r}, base_url={self._config.base_url!r})"
        )

    __str__ = __repr__

    def with_options(
        self, *, timeout: float | httpx.Timeout | None = None, max_retries: int | None = None
    ) -> Any:
        """Return a copy with another timeout and/or retry count, sharing the HTTP pool.

        Args:
            timeout: New default timeout (seconds or ``httpx.Timeout``).
            max_retries: New retry count (0 to 10).

        Returns:
            A client of the same class. Closing it does not close the shared pool.
        """
        changes: dict[str, Any] = {}
        if timeout is not None:
            changes["timeout"] = make_timeout(timeout)
        if max_retries is not None:
            changes["max_retries"] = check_max_retries(max_retries)
        clone = copy.copy(self)
        clone._config = dataclasses.replace(self._config, **changes)
        clone._owns_client = False
        return clone

    # ------------------------------------------------------------------ request building

    def _ns(self, namespace: str | None) -> str:
        return self._config.namespace if namespace is None else validate_namespace(namespace)

    def _instance_path(self, instance_id: str, namespace: str | None, suffix: str = "") -> str:
        validate_instance_id(instance_id)
        return (
            f"{self._account_path}/ai-search/namespaces/{self._ns(namespace)}"
            f"/instances/{instance_id}{suffix}"
        )

    def _build(self, req: _Request) -> httpx.Request:
        headers = {"User-Agent": _USER_AGENT, **self._config.auth_headers(), **req.headers}
        return self._client.build_request(
            req.method,
            self._config.base_url + req.path,
            json=req.json,
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
        error = error_from_body(body, response.status_code, _request_id(response), default)
        error.response = response
        scrubbed = _scrub(error.message, self._config.secrets())
        if scrubbed != error.message:
            error.message = scrubbed
            error.args = (error._format(),)
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
        extra_options = check_mapping(extra_options, "extra_options")
        extra_body = check_mapping(extra_body, "extra_body")
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
    ) -> _Request:
        path = self._instance_path(instance_id, namespace, "/chat/completions")
        return _Request(
            "POST",
            path,
            json=self._chat_body(messages, model, options, extra_options, extra_body, stream),
        )

    def _chat_body(
        self,
        messages: Messages,
        model: str | None,
        options: Options,
        extra_options: Mapping[str, Any] | None,
        extra_body: Mapping[str, Any] | None,
        stream: bool,
        instance_ids: list[str] | None = None,
    ) -> dict[str, Any]:
        base: dict[str, Any] = {"messages": coerce_messages(messages)}
        if model is not None:
            if not isinstance(model, str):
                raise InvalidRequestError(f"model: must be a string (got {type(model).__name__})")
            base["model"] = model
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
    ) -> _Request:
        ids = self._instance_ids(instance_ids)
        path = f"{self._account_path}/ai-search/namespaces/{self._ns(namespace)}/chat/completions"
        body = self._chat_body(messages, model, options, extra_options, extra_body, stream, ids)
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
        extra_body = check_mapping(extra_body, "extra_body")
        if extra_body:
            deep_merge(body, extra_body)
        return _Request("POST", f"{self._account_path}/autorag/rags/{rag_id}/{route}", json=body)

    # management requests

    def _namespaces_path(self, name: str | None = None) -> str:
        base = f"{self._account_path}/ai-search/namespaces"
        return base if name is None else f"{base}/{validate_namespace(name, 'name')}"

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
            content = content.encode("utf-8")
        if not isinstance(content, (bytes, bytearray)):
            raise InvalidRequestError(
                f"content: must be bytes or str (got {type(content).__name__})"
            )
        if len(content) > MAX_ITEM_BYTES:
            raise InvalidRequestError(
                f"content: must be at most {MAX_ITEM_BYTES} bytes (4 MB) (got {len(content)})"
            )
        data: dict[str, Any] = {"wait_for_completion": "true" if wait_for_completion else "false"}
        if metadata is not None:
            if not isinstance(metadata, Mapping):
                raise InvalidRequestError(
                    f"metadata: must be a mapping (got {type(metadata).__name__})"
                )
            try:
                data["metadata"] = json.dumps(dict(metadata), allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise InvalidRequestError(f"metadata: must be JSON-serialisable ({exc})") from None
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
        return key

    def _item_path(self, instance_id: str, item_id: str, namespace: str | None) -> str:
        if not isinstance(item_id, str) or not item_id:
            raise InvalidRequestError(f"item_id: must be a non-empty string (got {item_id!r})")
        return self._instance_path(instance_id, namespace, f"/items/{quote(item_id, safe='')}")

    def _list_items_params(
        self, metadata_filter: Mapping[str, Any] | None, status: str | None
    ) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if metadata_filter is not None:
            params["metadata_filter"] = json.dumps(
                validate_filters(metadata_filter, path="metadata_filter")
            )
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
        try:
            return [model.model_validate(entry) for entry in env.result]  # type: ignore[attr-defined]
        except ValidationError as exc:
            raise _validation_error(response, "list", exc) from None

    @staticmethod
    def _wait_args(timeout: float, poll_interval: float) -> tuple[float, float]:
        return _check_positive(timeout, "timeout"), _check_positive(poll_interval, "poll_interval")

    @staticmethod
    def _wait_step(
        items: list[Item], on_progress: ProgressCallback | None, deadline: float, timeout: float
    ) -> float | None:
        """Report progress; return ``None`` when done, else the seconds left before the deadline."""
        done, failed = _indexing_progress(items)
        if on_progress is not None:
            on_progress(done, len(items), items)
        if failed:
            names = ", ".join(f"{i.key or i.id}: {i.error or 'error'}" for i in failed)
            raise IndexingError(f"indexing failed for {len(failed)} item(s): {names}", items=failed)
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
            return error_from_body(data, response.status_code, _request_id(response), "error")
        ctype = response.headers.get("content-type", "")
        return APIResponseValidationError(
            f"expected a text/event-stream response, got content type {ctype!r}",
            status_code=response.status_code,
            body_excerpt=excerpt(body),
        )


def _is_event_stream(response: httpx.Response) -> bool:
    ctype: str = response.headers.get("content-type", "")
    return ctype.partition(";")[0].strip().lower() == "text/event-stream"


def _wrap_transport_error(exc: httpx.HTTPError, request: httpx.Request) -> APIConnectionError:
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"request timed out ({type(exc).__name__})", request=request)
    return APIConnectionError(f"connection error: {type(exc).__name__}: {exc}", request=request)


class AISearchClient(_BaseClient[httpx.Client]):
    """Synchronous client of the Cloudflare AI Search REST API.

    Args:
        account_id: Cloudflare account id (env ``CLOUDFLARE_ACCOUNT_ID``, ``CF_ACCOUNT_ID``).
        api_token: API token (env ``CLOUDFLARE_API_TOKEN``, ``CF_AI_SEARCH_API_TOKEN``,
            ``CF_API_TOKEN``).
        api_email: Account email for global-key auth (env ``CLOUDFLARE_EMAIL``).
        api_key: Global API key (env ``CLOUDFLARE_API_KEY``).
        namespace: Default namespace.
        base_url: API root (env ``AISEARCH_BASE_URL``, else the public API).
        timeout: Default timeout of every call.
        max_retries: Retries of connection errors, timeouts, 408/409/429/5xx.
        http_client: An ``httpx.Client`` to use (not closed by ``close()``).

    Raises:
        AISearchError: If the account id or the credentials are missing.

    Example:
        >>> with AISearchClient(account_id="...", api_token="...") as client:
        ...     result = client.search("docs", "How do I get started?")
    """

    _sleep: Callable[[float], None] = staticmethod(time.sleep)

    def __init__(
        self,
        *,
        account_id: str | None = None,
        api_token: str | None = None,
        api_email: str | None = None,
        api_key: str | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        base_url: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        http_client: httpx.Client | None = None,
    ) -> None:
        super().__init__(
            account_id=account_id,
            api_token=api_token,
            api_email=api_email,
            api_key=api_key,
            namespace=namespace,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
        )
        if http_client is not None and not isinstance(http_client, httpx.Client):
            raise InvalidRequestError(
                f"http_client: must be an httpx.Client (got {type(http_client).__name__})"
            )
        self._owns_client = http_client is None
        self._client = http_client or httpx.Client(
            timeout=self._config.timeout,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        )

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the pooled HTTP client (unless it was injected or shared)."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> AISearchClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ transport

    def _send(self, req: _Request, *, stream: bool = False) -> httpx.Response:
        request = self._build(req)
        try:
            response = self._client.send(request, stream=stream)
        except httpx.HTTPError as exc:
            raise _wrap_transport_error(exc, request) from exc
        logger.debug("%s %s -> %d", req.method, req.path, response.status_code)
        if response.status_code >= 400:
            if stream:
                try:
                    response.read()
                except httpx.HTTPError as exc:
                    raise _wrap_transport_error(exc, request) from exc
                finally:
                    response.close()
            raise self._status_error(response)
        return response

    def _retrying(self, req: _Request, call: Callable[[], _T]) -> _T:
        retries = 0
        while True:
            try:
                return call()
            except AISearchError as exc:
                if retries >= self._config.max_retries or not is_retryable(exc):
                    raise
                delay = delay_for(exc, retries)
                retries += 1
                self._log_retry(req, exc, delay, retries)
                self._sleep(delay)

    def _request(self, req: _Request, parse: Callable[[httpx.Response], _T]) -> _T:
        return self._retrying(req, lambda: parse(self._send(req)))

    def _stream(self, req: _Request) -> Iterator[StreamEvent]:
        response = self._retrying(req, lambda: self._send(req, stream=True))
        try:
            if not _is_event_stream(response):
                raise self._stream_content_error(response, response.read())
            decoder = StreamDecoder(response.status_code, _request_id(response))
            for sse in EventSource(response).iter_sse():
                yield from decoder.feed(sse)
                if decoder.done:
                    return
            decoder.finish()
        except httpx.TimeoutException as exc:
            raise APITimeoutError("stream read timed out", request=response.request) from exc
        except httpx.HTTPError as exc:
            raise StreamInterruptedError(
                f"the event stream broke before 'data: [DONE]': {type(exc).__name__}"
            ) from exc
        finally:
            response.close()

    def _paginate(
        self, path: str, model: type[_T], params: dict[str, Any], per_page: int
    ) -> list[_T]:
        out: list[_T] = []
        for page in range(1, MAX_PAGES + 1):
            req = _Request("GET", path, params={**params, "page": page, "per_page": per_page})
            response = self._retrying(req, partial(self._send, req))
            env = _parse_envelope(response, "list")
            batch = self._page_items(env, model, response)
            out.extend(batch)
            if self._page_done(env, len(batch), len(out), per_page):
                break
        return out

    # ------------------------------------------------------------------ search and chat

    def search(
        self,
        instance_id: str,
        query: str | None = None,
        *,
        messages: Messages | None = None,
        options: Options = None,
        namespace: str | None = None,
        extra_options: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> SearchResult:
        """Search one instance (retrieval only).

        Args:
            instance_id: The instance id.
            query: The query text (either this or ``messages``).
            messages: A conversation to search with (either this or ``query``).
            options: ``SearchOptions`` or a mapping of the same shape.
            namespace: Namespace (the client's default when ``None``).
            extra_options: Merged into ``ai_search_options`` last (escape hatch).
            extra_body: Merged into the top-level body last (escape hatch).

        Returns:
            The chunks, best first, with ``search_query`` and ``query_kind``.

        Raises:
            InvalidRequestError: Before any network call, for bad arguments.
            APIStatusError: For error responses (after retries).
            APIResponseValidationError: If the body does not fit.
        """
        req = self._search_req(
            instance_id, query, messages, options, namespace, extra_options, extra_body
        )
        return self._request(req, _parse_search)

    def chat_completions(
        self,
        instance_id: str,
        messages: Messages,
        *,
        model: str | None = None,
        options: Options = None,
        namespace: str | None = None,
        extra_options: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> ChatCompletion:
        """Retrieve from one instance and generate an answer.

        Args:
            instance_id: The instance id.
            messages: The conversation (``ChatMessage`` or dicts).
            model: Generation model (the instance's when ``None``).
            options: ``SearchOptions`` or a mapping of the same shape.
            namespace: Namespace (the client's default when ``None``).
            extra_options: Merged into ``ai_search_options`` last.
            extra_body: Merged into the top-level body last.

        Returns:
            The completion, with the chunks it used.
        """
        req = self._chat_req(
            instance_id,
            messages,
            model,
            options,
            namespace,
            extra_options,
            extra_body,
            stream=False,
        )
        return self._request(req, _parse_chat)

    def stream_chat_completions(
        self,
        instance_id: str,
        messages: Messages,
        *,
        model: str | None = None,
        options: Options = None,
        namespace: str | None = None,
        extra_options: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> Iterator[StreamEvent]:
        """Stream a chat completion: a ``SourcesEvent``, ``TextDeltaEvent``s, a ``StreamEndEvent``.

        Arguments are validated now; the request is sent when iteration starts.

        Args:
            instance_id: The instance id.
            messages: The conversation.
            model: Generation model.
            options: ``SearchOptions`` or a mapping.
            namespace: Namespace.
            extra_options: Merged into ``ai_search_options`` last.
            extra_body: Merged into the top-level body last.

        Returns:
            An iterator of typed events.

        Raises:
            StreamInterruptedError: (while iterating) if the stream ends without ``[DONE]``.
            APIStatusError: (while iterating) for error statuses or error events.
        """
        req = self._chat_req(
            instance_id,
            messages,
            model,
            options,
            namespace,
            extra_options,
            extra_body,
            stream=True,
        )
        return self._stream(req)

    def namespace_search(
        self,
        instance_ids: Sequence[str],
        query: str | None = None,
        *,
        messages: Messages | None = None,
        options: Options = None,
        namespace: str | None = None,
        extra_options: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> SearchResult:
        """Search 1 to 10 instances of a namespace in one call.

        Args:
            instance_ids: 1 to 10 instance ids.
            query: The query text (either this or ``messages``).
            messages: A conversation (either this or ``query``).
            options: ``SearchOptions`` or a mapping.
            namespace: Namespace.
            extra_options: Merged into ``ai_search_options`` last.
            extra_body: Merged into the top-level body last.

        Returns:
            Merged chunks (each with ``instance_id``) and the per-instance ``errors``.
        """
        req = self._ns_search_req(
            instance_ids, query, messages, options, namespace, extra_options, extra_body
        )
        return self._request(req, _parse_search)

    def namespace_chat_completions(
        self,
        instance_ids: Sequence[str],
        messages: Messages,
        *,
        model: str | None = None,
        options: Options = None,
        namespace: str | None = None,
        extra_options: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> ChatCompletion:
        """Chat over 1 to 10 instances of a namespace.

        Args:
            instance_ids: 1 to 10 instance ids.
            messages: The conversation.
            model: Generation model.
            options: ``SearchOptions`` or a mapping.
            namespace: Namespace.
            extra_options: Merged into ``ai_search_options`` last.
            extra_body: Merged into the top-level body last.

        Returns:
            The completion with its chunks and per-instance ``errors``.
        """
        req = self._ns_chat_req(
            instance_ids,
            messages,
            model,
            options,
            namespace,
            extra_options,
            extra_body,
            stream=False,
        )
        return self._request(req, _parse_chat)

    def stream_namespace_chat_completions(
        self,
        instance_ids: Sequence[str],
        messages: Messages,
        *,
        model: str | None = None,
        options: Options = None,
        namespace: str | None = None,
        extra_options: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> Iterator[StreamEvent]:
        """Stream a chat over 1 to 10 instances of a namespace.

        Args:
            instance_ids: 1 to 10 instance ids.
            messages: The conversation.
            model: Generation model.
            options: ``SearchOptions`` or a mapping.
            namespace: Namespace.
            extra_options: Merged into ``ai_search_options`` last.
            extra_body: Merged into the top-level body last.

        Returns:
            An iterator of typed events.
        """
        req = self._ns_chat_req(
            instance_ids,
            messages,
            model,
            options,
            namespace,
            extra_options,
            extra_body,
            stream=True,
        )
        return self._stream(req)

    # ------------------------------------------------------------------ legacy AutoRAG

    def legacy_search(
        self,
        rag_id: str,
        query: str,
        *,
        filters: Mapping[str, Any] | None = None,
        max_num_results: int | None = None,
        score_threshold: float | None = None,
        rewrite_query: bool | None = None,
        reranking: bool | Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> SearchResult:
        """Search with the legacy ``/autorag/rags/{rag_id}/search`` route.

        Args:
            rag_id: The AutoRAG (instance) name.
            query: The query text.
            filters: A legacy ``{type,key,value}`` filter, or Vectorize syntax (translated).
            max_num_results: 1 to 50.
            score_threshold: 0 to 1 (sent as ``ranking_options.score_threshold``).
            rewrite_query: Rewrite the query with an LLM.
            reranking: ``True``/``False`` or ``{"enabled": ..., "model": ...}``.
            extra_body: Merged into the body last.

        Returns:
            Chunks normalised to ``Chunk`` (``filename``, ``attributes`` kept as extras).
        """
        req = self._legacy_req(
            rag_id,
            "search",
            query,
            filters=filters,
            max_num_results=max_num_results,
            score_threshold=score_threshold,
            rewrite_query=rewrite_query,
            reranking=reranking,
            extra_body=extra_body,
        )
        return self._request(req, _parse_legacy)

    def legacy_ai_search(
        self,
        rag_id: str,
        query: str,
        *,
        model: str | None = None,
        system_prompt: str | None = None,
        filters: Mapping[str, Any] | None = None,
        max_num_results: int | None = None,
        score_threshold: float | None = None,
        rewrite_query: bool | None = None,
        reranking: bool | Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> SearchResult:
        """Search and generate with the legacy ``/autorag/rags/{rag_id}/ai-search`` route.

        Args:
            rag_id: The AutoRAG (instance) name.
            query: The query text.
            model: Generation model.
            system_prompt: Generation system prompt.
            filters: A legacy filter, or Vectorize syntax (translated).
            max_num_results: 1 to 50.
            score_threshold: 0 to 1.
            rewrite_query: Rewrite the query with an LLM.
            reranking: ``True``/``False`` or ``{"enabled": ..., "model": ...}``.
            extra_body: Merged into the body last.

        Returns:
            The result, with the generated text in ``response``.
        """
        req = self._legacy_req(
            rag_id,
            "ai-search",
            query,
            filters=filters,
            max_num_results=max_num_results,
            score_threshold=score_threshold,
            rewrite_query=rewrite_query,
            reranking=reranking,
            model=model,
            system_prompt=system_prompt,
            extra_body=extra_body,
        )
        return self._request(req, _parse_legacy)

    def stream_legacy_ai_search(
        self,
        rag_id: str,
        query: str,
        *,
        model: str | None = None,
        system_prompt: str | None = None,
        filters: Mapping[str, Any] | None = None,
        max_num_results: int | None = None,
        score_threshold: float | None = None,
        rewrite_query: bool | None = None,
        reranking: bool | Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> Iterator[StreamEvent]:
        """Stream the legacy ``/ai-search`` answer: ``TextDeltaEvent``s then a ``StreamEndEvent``.

        Args:
            rag_id: The AutoRAG (instance) name.
            query: The query text.
            model: Generation model.
            system_prompt: Generation system prompt.
            filters: A legacy filter, or Vectorize syntax (translated).
            max_num_results: 1 to 50.
            score_threshold: 0 to 1.
            rewrite_query: Rewrite the query with an LLM.
            reranking: ``True``/``False`` or ``{"enabled": ..., "model": ...}``.
            extra_body: Merged into the body last.

        Returns:
            An iterator of typed events (the legacy stream carries no sources).
        """
        req = self._legacy_req(
            rag_id,
            "ai-search",
            query,
            filters=filters,
            max_num_results=max_num_results,
            score_threshold=score_threshold,
            rewrite_query=rewrite_query,
            reranking=reranking,
            model=model,
            system_prompt=system_prompt,
            stream=True,
            extra_body=extra_body,
        )
        return self._stream(req)

    # ------------------------------------------------------------------ fan-out

    def fan_out_search(
        self,
        targets: Sequence[str | SearchTarget],
        query: str,
        *,
        options: Options = None,
        merge: MergeMode = "score",
        top_k: int | None = None,
        max_concurrency: int = 8,
    ) -> FanOutResult:
        """Search many instances concurrently (threads) and merge the results.

        Args:
            targets: Instance ids or ``SearchTarget`` (another namespace or client).
            query: The query text.
            options: ``SearchOptions`` or a mapping, used for every target.
            merge: ``"score"`` (by chunk score) or ``"rrf"`` (reciprocal rank fusion).
            top_k: Keep at most this many merged chunks.
            max_concurrency: Searches in flight at once (1 to 64).

        Returns:
            Merged chunks (each with ``instance_id``) and one ``InstanceError`` per failure.
        """
        tgts, opts = self._fanout_prepare(targets, query, options, merge, top_k, max_concurrency)

        def one(client: AISearchClient, target: SearchTarget) -> SearchResult:
            return client.search(
                target.instance_id, query, options=opts, namespace=target.namespace
            )

        outcomes = run_sync(self, tgts, one, max_concurrency)
        return merge_results(outcomes, merge=merge, top_k=top_k)

    # ------------------------------------------------------------------ namespaces

    def create_namespace(self, name: str, *, description: str | None = None) -> Namespace:
        """Create a namespace.

        Args:
            name: Namespace name.
            description: Up to 256 characters.

        Returns:
            The namespace.
        """
        req = self._create_namespace_req(name, description)
        parsed: Namespace = self._request(req, _result_parser(Namespace, "namespace"))
        return parsed

    def list_namespaces(self) -> list[Namespace]:
        """List every namespace (all pages).

        Returns:
            The namespaces.
        """
        return self._paginate(self._namespaces_path(), Namespace, {}, LIST_PER_PAGE)

    def get_namespace(self, name: str) -> Namespace:
        """Read a namespace.

        Args:
            name: Namespace name.

        Returns:
            The namespace.
        """
        req = _Request("GET", self._namespaces_path(name))
        parsed: Namespace = self._request(req, _result_parser(Namespace, "namespace"))
        return parsed

    def delete_namespace(self, name: str) -> None:
        """Delete an (empty) namespace.

        Args:
            name: Namespace name.
        """
        self._request(_Request("DELETE", self._namespaces_path(name)), _none_parser)

    # ------------------------------------------------------------------ instances

    def create_instance(
        self, instance_id: str, *, namespace: str | None = None, **config: Any
    ) -> Instance:
        """Create an instance (built-in storage unless ``type``/``source`` are given).

        Args:
            instance_id: The new id.
            namespace: Namespace.
            **config: Instance configuration fields (API.md section 10).

        Returns:
            The instance.
        """
        req = self._create_instance_req(instance_id, namespace, config)
        parsed: Instance = self._request(req, _result_parser(Instance, "instance"))
        return parsed

    def list_instances(self, *, namespace: str | None = None) -> list[Instance]:
        """List every instance of a namespace (all pages).

        Args:
            namespace: Namespace.

        Returns:
            The instances.
        """
        path = f"{self._account_path}/ai-search/namespaces/{self._ns(namespace)}/instances"
        return self._paginate(path, Instance, {}, LIST_PER_PAGE)

    def get_instance(self, instance_id: str, *, namespace: str | None = None) -> Instance:
        """Read an instance.

        Args:
            instance_id: The instance id.
            namespace: Namespace.

        Returns:
            The instance.
        """
        req = _Request("GET", self._instance_path(instance_id, namespace))
        parsed: Instance = self._request(req, _result_parser(Instance, "instance"))
        return parsed

    def delete_instance(self, instance_id: str, *, namespace: str | None = None) -> None:
        """Delete an instance and all its indexed data.

        Args:
            instance_id: The instance id.
            namespace: Namespace.
        """
        req = _Request("DELETE", self._instance_path(instance_id, namespace))
        self._request(req, _none_parser)

    # ------------------------------------------------------------------ items

    def upload_item(
        self,
        instance_id: str,
        key: str,
        content: bytes | str,
        *,
        metadata: Mapping[str, Any] | None = None,
        wait_for_completion: bool = False,
        namespace: str | None = None,
    ) -> Item:
        """Upload (upsert) a file into a built-in-storage instance (multipart).

        Args:
            instance_id: The instance id.
            key: File name (at most 128 characters).
            content: File content (at most 4 MB).
            metadata: Custom metadata (sent as a JSON string).
            wait_for_completion: Ask the service to wait for indexing.
            namespace: Namespace.

        Returns:
            The item.
        """
        req = self._upload_req(instance_id, key, content, metadata, wait_for_completion, namespace)
        parsed: Item = self._request(req, _result_parser(Item, "item"))
        return parsed

    def create_or_update_item(
        self,
        instance_id: str,
        key: str,
        *,
        wait_for_completion: bool = False,
        namespace: str | None = None,
    ) -> Item:
        """Create or re-index an item by key (``next_action: INDEX``).

        Args:
            instance_id: The instance id.
            key: Item key (at most 128 characters).
            wait_for_completion: Ask the service to wait for indexing.
            namespace: Namespace.

        Returns:
            The item.
        """
        body = {
            "key": self._check_key(key),
            "next_action": "INDEX",
            "wait_for_completion": bool(wait_for_completion),
        }
        req = _Request("PUT", self._instance_path(instance_id, namespace, "/items"), json=body)
        parsed: Item = self._request(req, _result_parser(Item, "item"))
        return parsed

    def list_items(
        self,
        instance_id: str,
        *,
        metadata_filter: Mapping[str, Any] | None = None,
        status: str | None = None,
        namespace: str | None = None,
    ) -> list[Item]:
        """List every item of an instance (all pages).

        Args:
            instance_id: The instance id.
            metadata_filter: Vectorize-style filter on item metadata.
            status: Only items with this status.
            namespace: Namespace.

        Returns:
            The items.
        """
        path = self._instance_path(instance_id, namespace, "/items")
        params = self._list_items_params(metadata_filter, status)
        return self._paginate(path, Item, params, ITEMS_PER_PAGE)

    def get_item(self, instance_id: str, item_id: str, *, namespace: str | None = None) -> Item:
        """Read an item.

        Args:
            instance_id: The instance id.
            item_id: The item id.
            namespace: Namespace.

        Returns:
            The item.
        """
        req = _Request("GET", self._item_path(instance_id, item_id, namespace))
        parsed: Item = self._request(req, _result_parser(Item, "item"))
        return parsed

    def delete_item(self, instance_id: str, item_id: str, *, namespace: str | None = None) -> None:
        """Delete an item.

        Args:
            instance_id: The instance id.
            item_id: The item id.
            namespace: Namespace.
        """
        req = _Request("DELETE", self._item_path(instance_id, item_id, namespace))
        self._request(req, _none_parser)

    def wait_until_indexed(
        self,
        instance_id: str,
        item_ids: Sequence[str] | None = None,
        *,
        timeout: float = 120.0,
        poll_interval: float = 0.5,
        on_progress: ProgressCallback | None = None,
        namespace: str | None = None,
    ) -> list[Item]:
        """Poll until items are indexed, an item fails, or the deadline passes.

        Args:
            instance_id: The instance id.
            item_ids: Items to wait for (every item of the instance when ``None``).
            timeout: Deadline in seconds (never polls forever).
            poll_interval: Seconds between polls.
            on_progress: Called as ``on_progress(done, total, items)`` after every poll.
            namespace: Namespace.

        Returns:
            The items, all ``completed`` (or ``skipped``).

        Raises:
            IndexingError: If an item ends with status ``error``.
            IndexingTimeoutError: If the deadline passes first.
        """
        timeout, poll_interval = self._wait_args(timeout, poll_interval)
        validate_instance_id(instance_id)
        ids = None if item_ids is None else [str(i) for i in item_ids]
        deadline = time.monotonic() + timeout
        while True:
            if ids is None:
                items = self.list_items(instance_id, namespace=namespace)
            else:
                items = [self.get_item(instance_id, i, namespace=namespace) for i in ids]
            remaining = self._wait_step(items, on_progress, deadline, timeout)
            if remaining is None:
                return items
            self._sleep(min(poll_interval, remaining))


class AsyncAISearchClient(_BaseClient[httpx.AsyncClient]):
    """Asynchronous client of the Cloudflare AI Search REST API (same methods, awaited).

    Args:
        account_id: Cloudflare account id (env ``CLOUDFLARE_ACCOUNT_ID``, ``CF_ACCOUNT_ID``).
        api_token: API token (env ``CLOUDFLARE_API_TOKEN``, ``CF_AI_SEARCH_API_TOKEN``,
            ``CF_API_TOKEN``).
        api_email: Account email for global-key auth (env ``CLOUDFLARE_EMAIL``).
        api_key: Global API key (env ``CLOUDFLARE_API_KEY``).
        namespace: Default namespace.
        base_url: API root (env ``AISEARCH_BASE_URL``, else the public API).
        timeout: Default timeout of every call.
        max_retries: Retries of connection errors, timeouts, 408/409/429/5xx.
        http_client: An ``httpx.AsyncClient`` to use (not closed by ``aclose()``).

    Example:
        >>> async with AsyncAISearchClient(account_id="...", api_token="...") as client:
        ...     result = await client.search("docs", "How do I get started?")
    """

    _sleep: Callable[[float], Any] = staticmethod(asyncio.sleep)

    def __init__(
        self,
        *,
        account_id: str | None = None,
        api_token: str | None = None,
        api_email: str | None = None,
        api_key: str | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        base_url: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(
            account_id=account_id,
            api_token=api_token,
            api_email=api_email,
            api_key=api_key,
            namespace=namespace,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
        )
        if http_client is not None and not isinstance(http_client, httpx.AsyncClient):
            raise InvalidRequestError(
                f"http_client: must be an httpx.AsyncClient (got {type(http_client).__name__})"
            )
        self._owns_client = http_client is None
        self._client = http_client or httpx.AsyncClient(
            timeout=self._config.timeout,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        )

    # ------------------------------------------------------------------ lifecycle

    async def aclose(self) -> None:
        """Close the pooled HTTP client (unless it was injected or shared)."""
        if self._owns_client:
            await self._client.aclose()

    async def close(self) -> None:
        """Alias of ``aclose()``."""
        await self.aclose()

    async def __aenter__(self) -> AsyncAISearchClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ transport

    async def _send(self, req: _Request, *, stream: bool = False) -> httpx.Response:
        request = self._build(req)
        try:
            response = await self._client.send(request, stream=stream)
        except httpx.HTTPError as exc:
            raise _wrap_transport_error(exc, request) from exc
        logger.debug("%s %s -> %d", req.method, req.path, response.status_code)
        if response.status_code >= 400:
            if stream:
                try:
                    await response.aread()
                except httpx.HTTPError as exc:
                    raise _wrap_transport_error(exc, request) from exc
                finally:
                    await response.aclose()
            raise self._status_error(response)
        return response

    async def _retrying(self, req: _Request, call: Callable[[], Any]) -> Any:
        retries = 0
        while True:
            try:
                return await call()
            except AISearchError as exc:
                if retries >= self._config.max_retries or not is_retryable(exc):
                    raise
                delay = delay_for(exc, retries)
                retries += 1
                self._log_retry(req, exc, delay, retries)
                await self._sleep(delay)

    async def _request(self, req: _Request, parse: Callable[[httpx.Response], _T]) -> _T:
        async def call() -> _T:
            return parse(await self._send(req))

        result: _T = await self._retrying(req, call)
        return result

    async def _stream(self, req: _Request) -> AsyncIterator[StreamEvent]:
        response: httpx.Response = await self._retrying(req, lambda: self._send(req, stream=True))
        try:
            if not _is_event_stream(response):
                raise self._stream_content_error(response, await response.aread())
            decoder = StreamDecoder(response.status_code, _request_id(response))
            events = EventSource(response).aiter_sse()
            try:
                async for sse in events:
                    for event in decoder.feed(sse):
                        yield event
                    if decoder.done:
                        return
            finally:
                await events.aclose()
            decoder.finish()
        except httpx.TimeoutException as exc:
            raise APITimeoutError("stream read timed out", request=response.request) from exc
        except httpx.HTTPError as exc:
            raise StreamInterruptedError(
                f"the event stream broke before 'data: [DONE]': {type(exc).__name__}"
            ) from exc
        finally:
            await response.aclose()

    async def _paginate(
        self, path: str, model: type[_T], params: dict[str, Any], per_page: int
    ) -> list[_T]:
        out: list[_T] = []
        for page in range(1, MAX_PAGES + 1):
            req = _Request("GET", path, params={**params, "page": page, "per_page": per_page})
            response: httpx.Response = await self._retrying(req, partial(self._send, req))
            env = _parse_envelope(response, "list")
            batch = self._page_items(env, model, response)
            out.extend(batch)
            if self._page_done(env, len(batch), len(out), per_page):
                break
        return out

    # ------------------------------------------------------------------ search and chat

    async def search(
        self,
        instance_id: str,
        query: str | None = None,
        *,
        messages: Messages | None = None,
        options: Options = None,
        namespace: str | None = None,
        extra_options: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> SearchResult:
        """Search one instance (retrieval only). See ``AISearchClient.search``.

        Args:
            instance_id: The instance id.
            query: The query text (either this or ``messages``).
            messages: A conversation (either this or ``query``).
            options: ``SearchOptions`` or a mapping.
            namespace: Namespace.
            extra_options: Merged into ``ai_search_options`` last.
            extra_body: Merged into the top-level body last.

        Returns:
            The chunks, best first.
        """
        req = self._search_req(
            instance_id, query, messages, options, namespace, extra_options, extra_body
        )
        return await self._request(req, _parse_search)

    async def chat_completions(
        self,
        instance_id: str,
        messages: Messages,
        *,
        model: str | None = None,
        options: Options = None,
        namespace: str | None = None,
        extra_options: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> ChatCompletion:
        """Retrieve from one instance and generate an answer.

        Args:
            instance_id: The instance id.
            messages: The conversation.
            model: Generation model.
            options: ``SearchOptions`` or a mapping.
            namespace: Namespace.
            extra_options: Merged into ``ai_search_options`` last.
            extra_body: Merged into the top-level body last.

        Returns:
            The completion, with the chunks it used.
        """
        req = self._chat_req(
            instance_id,
            messages,
            model,
            options,
            namespace,
            extra_options,
            extra_body,
            stream=False,
        )
        return await self._request(req, _parse_chat)

    def stream_chat_completions(
        self,
        instance_id: str,
        messages: Messages,
        *,
        model: str | None = None,
        options: Options = None,
        namespace: str | None = None,
        extra_options: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Stream a chat completion (use ``async for``); arguments are validated now.

        Args:
            instance_id: The instance id.
            messages: The conversation.
            model: Generation model.
            options: ``SearchOptions`` or a mapping.
            namespace: Namespace.
            extra_options: Merged into ``ai_search_options`` last.
            extra_body: Merged into the top-level body last.

        Returns:
            An async iterator of typed events.
        """
        req = self._chat_req(
            instance_id,
            messages,
            model,
            options,
            namespace,
            extra_options,
            extra_body,
            stream=True,
        )
        return self._stream(req)

    async def namespace_search(
        self,
        instance_ids: Sequence[str],
        query: str | None = None,
        *,
        messages: Messages | None = None,
        options: Options = None,
        namespace: str | None = None,
        extra_options: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> SearchResult:
        """Search 1 to 10 instances of a namespace in one call.

        Args:
            instance_ids: 1 to 10 instance ids.
            query: The query text.
            messages: A conversation.
            options: ``SearchOptions`` or a mapping.
            namespace: Namespace.
            extra_options: Merged into ``ai_search_options`` last.
            extra_body: Merged into the top-level body last.

        Returns:
            Merged chunks (each with ``instance_id``) and the per-instance ``errors``.
        """
        req = self._ns_search_req(
            instance_ids, query, messages, options, namespace, extra_options, extra_body
        )
        return await self._request(req, _parse_search)

    async def namespace_chat_completions(
        self,
        instance_ids: Sequence[str],
        messages: Messages,
        *,
        model: str | None = None,
        options: Options = None,
        namespace: str | None = None,
        extra_options: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> ChatCompletion:
        """Chat over 1 to 10 instances of a namespace.

        Args:
            instance_ids: 1 to 10 instance ids.
            messages: The conversation.
            model: Generation model.
            options: ``SearchOptions`` or a mapping.
            namespace: Namespace.
            extra_options: Merged into ``ai_search_options`` last.
            extra_body: Merged into the top-level body last.

        Returns:
            The completion with its chunks and per-instance ``errors``.
        """
        req = self._ns_chat_req(
            instance_ids,
            messages,
            model,
            options,
            namespace,
            extra_options,
            extra_body,
            stream=False,
        )
        return await self._request(req, _parse_chat)

    def stream_namespace_chat_completions(
        self,
        instance_ids: Sequence[str],
        messages: Messages,
        *,
        model: str | None = None,
        options: Options = None,
        namespace: str | None = None,
        extra_options: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Stream a chat over 1 to 10 instances of a namespace (use ``async for``).

        Args:
            instance_ids: 1 to 10 instance ids.
            messages: The conversation.
            model: Generation model.
            options: ``SearchOptions`` or a mapping.
            namespace: Namespace.
            extra_options: Merged into ``ai_search_options`` last.
            extra_body: Merged into the top-level body last.

        Returns:
            An async iterator of typed events.
        """
        req = self._ns_chat_req(
            instance_ids,
            messages,
            model,
            options,
            namespace,
            extra_options,
            extra_body,
            stream=True,
        )
        return self._stream(req)

    # ------------------------------------------------------------------ legacy AutoRAG

    async def legacy_search(
        self,
        rag_id: str,
        query: str,
        *,
        filters: Mapping[str, Any] | None = None,
        max_num_results: int | None = None,
        score_threshold: float | None = None,
        rewrite_query: bool | None = None,
        reranking: bool | Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> SearchResult:
        """Search with the legacy ``/autorag/rags/{rag_id}/search`` route.

        Args:
            rag_id: The AutoRAG (instance) name.
            query: The query text.
            filters: A legacy filter, or Vectorize syntax (translated).
            max_num_results: 1 to 50.
            score_threshold: 0 to 1.
            rewrite_query: Rewrite the query with an LLM.
            reranking: ``True``/``False`` or ``{"enabled": ..., "model": ...}``.
            extra_body: Merged into the body last.

        Returns:
            Normalised chunks.
        """
        req = self._legacy_req(
            rag_id,
            "search",
            query,
            filters=filters,
            max_num_results=max_num_results,
            score_threshold=score_threshold,
            rewrite_query=rewrite_query,
            reranking=reranking,
            extra_body=extra_body,
        )
        return await self._request(req, _parse_legacy)

    async def legacy_ai_search(
        self,
        rag_id: str,
        query: str,
        *,
        model: str | None = None,
        system_prompt: str | None = None,
        filters: Mapping[str, Any] | None = None,
        max_num_results: int | None = None,
        score_threshold: float | None = None,
        rewrite_query: bool | None = None,
        reranking: bool | Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> SearchResult:
        """Search and generate with the legacy ``/autorag/rags/{rag_id}/ai-search`` route.

        Args:
            rag_id: The AutoRAG (instance) name.
            query: The query text.
            model: Generation model.
            system_prompt: Generation system prompt.
            filters: A legacy filter, or Vectorize syntax (translated).
            max_num_results: 1 to 50.
            score_threshold: 0 to 1.
            rewrite_query: Rewrite the query with an LLM.
            reranking: ``True``/``False`` or ``{"enabled": ..., "model": ...}``.
            extra_body: Merged into the body last.

        Returns:
            The result, with the generated text in ``response``.
        """
        req = self._legacy_req(
            rag_id,
            "ai-search",
            query,
            filters=filters,
            max_num_results=max_num_results,
            score_threshold=score_threshold,
            rewrite_query=rewrite_query,
            reranking=reranking,
            model=model,
            system_prompt=system_prompt,
            extra_body=extra_body,
        )
        return await self._request(req, _parse_legacy)

    def stream_legacy_ai_search(
        self,
        rag_id: str,
        query: str,
        *,
        model: str | None = None,
        system_prompt: str | None = None,
        filters: Mapping[str, Any] | None = None,
        max_num_results: int | None = None,
        score_threshold: float | None = None,
        rewrite_query: bool | None = None,
        reranking: bool | Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Stream the legacy ``/ai-search`` answer (use ``async for``).

        Args:
            rag_id: The AutoRAG (instance) name.
            query: The query text.
            model: Generation model.
            system_prompt: Generation system prompt.
            filters: A legacy filter, or Vectorize syntax (translated).
            max_num_results: 1 to 50.
            score_threshold: 0 to 1.
            rewrite_query: Rewrite the query with an LLM.
            reranking: ``True``/``False`` or ``{"enabled": ..., "model": ...}``.
            extra_body: Merged into the body last.

        Returns:
            An async iterator of typed events.
        """
        req = self._legacy_req(
            rag_id,
            "ai-search",
            query,
            filters=filters,
            max_num_results=max_num_results,
            score_threshold=score_threshold,
            rewrite_query=rewrite_query,
            reranking=reranking,
            model=model,
            system_prompt=system_prompt,
            stream=True,
            extra_body=extra_body,
        )
        return self._stream(req)

    # ------------------------------------------------------------------ fan-out

    async def fan_out_search(
        self,
        targets: Sequence[str | SearchTarget],
        query: str,
        *,
        options: Options = None,
        merge: MergeMode = "score",
        top_k: int | None = None,
        max_concurrency: int = 8,
    ) -> FanOutResult:
        """Search many instances concurrently (``asyncio.gather``) and merge the results.

        Args:
            targets: Instance ids or ``SearchTarget`` (with an ``AsyncAISearchClient``).
            query: The query text.
            options: ``SearchOptions`` or a mapping, used for every target.
            merge: ``"score"`` or ``"rrf"``.
            top_k: Keep at most this many merged chunks.
            max_concurrency: Searches in flight at once (1 to 64).

        Returns:
            Merged chunks (each with ``instance_id``) and one ``InstanceError`` per failure.
        """
        tgts, opts = self._fanout_prepare(targets, query, options, merge, top_k, max_concurrency)

        async def one(client: AsyncAISearchClient, target: SearchTarget) -> SearchResult:
            return await client.search(
                target.instance_id, query, options=opts, namespace=target.namespace
            )

        outcomes = await run_async(self, tgts, one, max_concurrency)
        return merge_results(outcomes, merge=merge, top_k=top_k)

    # ------------------------------------------------------------------ namespaces

    async def create_namespace(self, name: str, *, description: str | None = None) -> Namespace:
        """Create a namespace.

        Args:
            name: Namespace name.
            description: Up to 256 characters.

        Returns:
            The namespace.
        """
        req = self._create_namespace_req(name, description)
        parsed: Namespace = await self._request(req, _result_parser(Namespace, "namespace"))
        return parsed

    async def list_namespaces(self) -> list[Namespace]:
        """List every namespace (all pages).

        Returns:
            The namespaces.
        """
        return await self._paginate(self._namespaces_path(), Namespace, {}, LIST_PER_PAGE)

    async def get_namespace(self, name: str) -> Namespace:
        """Read a namespace.

        Args:
            name: Namespace name.

        Returns:
            The namespace.
        """
        req = _Request("GET", self._namespaces_path(name))
        parsed: Namespace = await self._request(req, _result_parser(Namespace, "namespace"))
        return parsed

    async def delete_namespace(self, name: str) -> None:
        """Delete an (empty) namespace.

        Args:
            name: Namespace name.
        """
        await self._request(_Request("DELETE", self._namespaces_path(name)), _none_parser)

    # ------------------------------------------------------------------ instances

    async def create_instance(
        self, instance_id: str, *, namespace: str | None = None, **config: Any
    ) -> Instance:
        """Create an instance.

        Args:
            instance_id: The new id.
            namespace: Namespace.
            **config: Instance configuration fields (API.md section 10).

        Returns:
            The instance.
        """
        req = self._create_instance_req(instance_id, namespace, config)
        parsed: Instance = await self._request(req, _result_parser(Instance, "instance"))
        return parsed

    async def list_instances(self, *, namespace: str | None = None) -> list[Instance]:
        """List every instance of a namespace (all pages).

        Args:
            namespace: Namespace.

        Returns:
            The instances.
        """
        path = f"{self._account_path}/ai-search/namespaces/{self._ns(namespace)}/instances"
        return await self._paginate(path, Instance, {}, LIST_PER_PAGE)

    async def get_instance(self, instance_id: str, *, namespace: str | None = None) -> Instance:
        """Read an instance.

        Args:
            instance_id: The instance id.
            namespace: Namespace.

        Returns:
            The instance.
        """
        req = _Request("GET", self._instance_path(instance_id, namespace))
        parsed: Instance = await self._request(req, _result_parser(Instance, "instance"))
        return parsed

    async def delete_instance(self, instance_id: str, *, namespace: str | None = None) -> None:
        """Delete an instance and all its indexed data.

        Args:
            instance_id: The instance id.
            namespace: Namespace.
        """
        req = _Request("DELETE", self._instance_path(instance_id, namespace))
        await self._request(req, _none_parser)

    # ------------------------------------------------------------------ items

    async def upload_item(
        self,
        instance_id: str,
        key: str,
        content: bytes | str,
        *,
        metadata: Mapping[str, Any] | None = None,
        wait_for_completion: bool = False,
        namespace: str | None = None,
    ) -> Item:
        """Upload (upsert) a file into a built-in-storage instance (multipart).

        Args:
            instance_id: The instance id.
            key: File name (at most 128 characters).
            content: File content (at most 4 MB).
            metadata: Custom metadata (sent as a JSON string).
            wait_for_completion: Ask the service to wait for indexing.
            namespace: Namespace.

        Returns:
            The item.
        """
        req = self._upload_req(instance_id, key, content, metadata, wait_for_completion, namespace)
        parsed: Item = await self._request(req, _result_parser(Item, "item"))
        return parsed

    async def create_or_update_item(
        self,
        instance_id: str,
        key: str,
        *,
        wait_for_completion: bool = False,
        namespace: str | None = None,
    ) -> Item:
        """Create or re-index an item by key (``next_action: INDEX``).

        Args:
            instance_id: The instance id.
            key: Item key.
            wait_for_completion: Ask the service to wait for indexing.
            namespace: Namespace.

        Returns:
            The item.
        """
        body = {
            "key": self._check_key(key),
            "next_action": "INDEX",
            "wait_for_completion": bool(wait_for_completion),
        }
        req = _Request("PUT", self._instance_path(instance_id, namespace, "/items"), json=body)
        parsed: Item = await self._request(req, _result_parser(Item, "item"))
        return parsed

    async def list_items(
        self,
        instance_id: str,
        *,
        metadata_filter: Mapping[str, Any] | None = None,
        status: str | None = None,
        namespace: str | None = None,
    ) -> list[Item]:
        """List every item of an instance (all pages).

        Args:
            instance_id: The instance id.
            metadata_filter: Vectorize-style filter on item metadata.
            status: Only items with this status.
            namespace: Namespace.

        Returns:
            The items.
        """
        path = self._instance_path(instance_id, namespace, "/items")
        params = self._list_items_params(metadata_filter, status)
        return await self._paginate(path, Item, params, ITEMS_PER_PAGE)

    async def get_item(
        self, instance_id: str, item_id: str, *, namespace: str | None = None
    ) -> Item:
        """Read an item.

        Args:
            instance_id: The instance id.
            item_id: The item id.
            namespace: Namespace.

        Returns:
            The item.
        """
        req = _Request("GET", self._item_path(instance_id, item_id, namespace))
        parsed: Item = await self._request(req, _result_parser(Item, "item"))
        return parsed

    async def delete_item(
        self, instance_id: str, item_id: str, *, namespace: str | None = None
    ) -> None:
        """Delete an item.

        Args:
            instance_id: The instance id.
            item_id: The item id.
            namespace: Namespace.
        """
        req = _Request("DELETE", self._item_path(instance_id, item_id, namespace))
        await self._request(req, _none_parser)

    async def wait_until_indexed(
        self,
        instance_id: str,
        item_ids: Sequence[str] | None = None,
        *,
        timeout: float = 120.0,
        poll_interval: float = 0.5,
        on_progress: ProgressCallback | None = None,
        namespace: str | None = None,
    ) -> list[Item]:
        """Poll until items are indexed, an item fails, or the deadline passes.

        Args:
            instance_id: The instance id.
            item_ids: Items to wait for (every item of the instance when ``None``).
            timeout: Deadline in seconds (never polls forever).
            poll_interval: Seconds between polls.
            on_progress: Called as ``on_progress(done, total, items)`` after every poll.
            namespace: Namespace.

        Returns:
            The items, all ``completed`` (or ``skipped``).

        Raises:
            IndexingError: If an item ends with status ``error``.
            IndexingTimeoutError: If the deadline passes first.
        """
        timeout, poll_interval = self._wait_args(timeout, poll_interval)
        validate_instance_id(instance_id)
        ids = None if item_ids is None else [str(i) for i in item_ids]
        deadline = time.monotonic() + timeout
        while True:
            if ids is None:
                items = await self.list_items(instance_id, namespace=namespace)
            else:
                items = list(
                    await asyncio.gather(
                        *(self.get_item(instance_id, i, namespace=namespace) for i in ids)
                    )
                )
            remaining = self._wait_step(items, on_progress, deadline, timeout)
            if remaining is None:
                return items
            await self._sleep(min(poll_interval, remaining))
