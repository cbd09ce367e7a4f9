"""Request building shared by the sync and async clients: one request type, every builder.

``_BaseClient`` holds the configuration and builds every request (paths, bodies, checks
before any network call); the clients (``_async/``, generated ``_sync/``) only send them and
parse the answers with ``_parse``. Parameter checks live in ``_params``.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import logging
import mimetypes
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, cast

import httpx

from aisearch._config import (
    UNSET,
    ClientConfig,
    Unset,
    auth_hint,
    check_max_retries,
    check_optional_seconds,
    check_path_id,
    connection_hint,
    make_timeout,
    validate_instance_id,
)
from aisearch._exceptions import (
    IndexingError,
    IndexingTimeoutError,
    InvalidRequestError,
)
from aisearch._filters import validate_filters
from aisearch._keywords import (
    ChatParams,
    LegacyChatParams,
    LegacyParams,
    SearchParams,
    check_keywords,
)
from aisearch._models import Item
from aisearch._params import (
    Messages,
    check_bool,
    check_extra,
    check_generation,
    check_instance_config,
    check_instance_ids,
    check_instance_update,
    check_int_range,
    check_item_content,
    check_item_key,
    check_json,
    check_mapping,
    coerce_messages,
    coerce_options,
    deep_merge,
    item_metadata_json,
    legacy_options,
    query_or_messages,
)
from aisearch._redact import scrub
from aisearch._version import __version__

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["USER_AGENT", "ProgressCallback", "_BaseClient", "_Request"]

logger = logging.getLogger("aisearch")

_T = TypeVar("_T")
_HttpT = TypeVar("_HttpT", httpx.Client, httpx.AsyncClient)

ProgressCallback = Callable[[int, int, list[Item]], None]

MAX_CHUNKS_LIMIT = 100
MAX_FILTER_CHARS = 8192
ITEM_STATUSES = ("queued", "running", "completed", "error", "skipped", "outdated")
_DONE_STATUSES = frozenset({"completed", "skipped"})
USER_AGENT = f"aisearch-py/{__version__}"


def _encode_json(body: Any) -> bytes:
    """Encode a request body once, as httpx would; a value that cannot be sent is named."""
    try:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError, RecursionError):
        pass
    check_json(body, "")
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


@functools.lru_cache(maxsize=1024)
def _parsed_url(url: str) -> httpx.URL:
    """Parse a request URL once and share it (``httpx.URL`` is immutable).

    httpx checks a string URL character by character on every request: about 25 us, a
    tenth of the client's own CPU for a search.
    """
    return httpx.URL(url)


def chat_base(
    messages: Messages, model: object, generation: Mapping[str, Any], stream: bool
) -> dict[str, Any]:
    """The top of a chat completions body: messages, model, generation parameters, stream."""
    base: dict[str, Any] = {"messages": coerce_messages(messages)}
    if model is not None:
        if not isinstance(model, str):
            raise InvalidRequestError(f"model: must be a string (got {type(model).__name__})")
        base["model"] = model
    base.update(generation)
    if stream:
        base["stream"] = True
    return base


@functools.lru_cache(maxsize=1024)
def _instance_base(account_path: str, namespace: str, instance_id: str) -> str:
    """Validate the ids once per (account, namespace, instance) and build the path."""
    check_path_id(namespace, "namespace")
    validate_instance_id(instance_id)
    return f"{account_path}/ai-search/namespaces/{namespace}/instances/{instance_id}"


MAX_NAMESPACE_DESCRIPTION = 256
"""Longest namespace description (API.md section 3: `description?(≤256)`)."""


def _check_description(description: object) -> str:
    if not isinstance(description, str) or len(description) > MAX_NAMESPACE_DESCRIPTION:
        raise InvalidRequestError(
            f"description: must be a string of at most {MAX_NAMESPACE_DESCRIPTION} characters"
        )
    return description


class _BaseClient(Generic[_HttpT]):
    """Configuration and request building shared by both clients."""

    _client: _HttpT
    _owns_client: bool
    _config: ClientConfig
    _account_path: str

    # ------------------------------------------------------------------ properties

    @property
    def base_url(self) -> str:
        """The API root URL."""
        return self._config.base_url

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
    ) -> Self:
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
        return (
            self._config.namespace if namespace is None else check_path_id(namespace, "namespace")
        )

    def _instance_path(self, instance_id: str, namespace: str | None, suffix: str = "") -> str:
        ns = self._config.namespace if namespace is None else namespace
        if not isinstance(ns, str) or not isinstance(instance_id, str):
            check_path_id(ns, "namespace")
            validate_instance_id(instance_id)
        return _instance_base(self._account_path, ns, instance_id) + suffix

    def _status_hints(self) -> dict[int, str]:
        """What a status error's message adds, by status: the credential used for 401 and 403."""
        hint = auth_hint(self._config)
        return {401: hint, 403: hint}

    def _connection_hint(self) -> str | None:
        """What a connection error's message adds (how to reach a local server), if anything."""
        return connection_hint(self._config)

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

    def _body(
        self, base: dict[str, Any], params: ChatParams | SearchParams, ids: list[str] | None
    ) -> dict[str, Any]:
        opts = coerce_options(params.get("options"))
        extra_options = check_extra(params.get("extra_options"), "extra_options")
        extra_body = check_extra(params.get("extra_body"), "extra_body")
        ai_opts = opts.to_json_dict() if opts is not None else {}
        if ids is not None:
            ai_opts["instance_ids"] = ids
        if extra_options:
            deep_merge(ai_opts, extra_options)
        if ai_opts:
            base["ai_search_options"] = ai_opts
        if extra_body:
            deep_merge(base, extra_body)
        return base

    def _target(
        self, target: str | Sequence[str], namespace: str | None, suffix: str, namespaced: bool
    ) -> tuple[str, list[str] | None]:
        """The path of a search or chat; the instance ids too when it spans a namespace."""
        if not namespaced:
            return self._instance_path(cast(str, target), namespace, suffix), None
        ids = check_instance_ids(target)
        return f"{self._account_path}/ai-search/namespaces/{self._ns(namespace)}{suffix}", ids

    def _search_req(
        self,
        target: str | Sequence[str],
        query: str | None,
        params: SearchParams,
        *,
        namespaced: bool = False,
    ) -> _Request:
        method = "namespace_search" if namespaced else "search"
        check_keywords(params, SearchParams, f"{type(self).__name__}.{method}")
        path, ids = self._target(target, params.get("namespace"), "/search", namespaced)
        base = query_or_messages(query, params.get("messages"))
        return _Request("POST", path, json=self._body(base, params, ids))

    def _chat_req(
        self,
        target: str | Sequence[str],
        messages: Messages,
        params: ChatParams,
        *,
        stream: bool,
        namespaced: bool = False,
    ) -> _Request:
        method = (
            f"{'stream_' if stream else ''}{'namespace_' if namespaced else ''}chat_completions"
        )
        check_keywords(params, ChatParams, f"{type(self).__name__}.{method}")
        generation = check_generation(params)
        suffix = "/chat/completions"
        path, ids = self._target(target, params.get("namespace"), suffix, namespaced)
        base = chat_base(messages, params.get("model"), generation, stream)
        return _Request("POST", path, json=self._body(base, params, ids))

    def _legacy_req(
        self,
        rag_id: str,
        route: Literal["search", "ai-search"],
        query: str,
        params: LegacyParams | LegacyChatParams,
        *,
        stream: bool = False,
    ) -> _Request:
        method = "legacy_search" if route == "search" else "legacy_ai_search"
        check_keywords(
            params,
            LegacyParams if route == "search" else LegacyChatParams,
            f"{type(self).__name__}.{'stream_' if stream else ''}{method}",
        )
        validate_instance_id(rag_id, "rag_id")
        body: dict[str, Any] = query_or_messages(query, None) | legacy_options(params)
        if stream:
            body["stream"] = True
        extra_body = check_extra(params.get("extra_body"), "extra_body")
        if extra_body:
            deep_merge(body, extra_body)
        return _Request("POST", f"{self._account_path}/autorag/rags/{rag_id}/{route}", json=body)

    # management requests

    def _namespaces_path(self) -> str:
        return f"{self._account_path}/ai-search/namespaces"

    def _namespace_path(self, name: str) -> str:
        # no default here: get_namespace(None) must not become a GET (or DELETE) of the list
        return f"{self._namespaces_path()}/{check_path_id(name, 'name')}"

    def _create_namespace_req(self, name: str, description: str | None) -> _Request:
        body: dict[str, Any] = {"name": check_path_id(name, "name")}
        if description is not None:
            body["description"] = _check_description(description)
        return _Request("POST", self._namespaces_path(), json=body)

    def _update_namespace_req(
        self, name: str, description: str | None, public_endpoint_params: object
    ) -> _Request:
        path = self._namespace_path(name)
        body: dict[str, Any] = {}
        if description is not None:
            body["description"] = _check_description(description)
        pep = check_mapping(public_endpoint_params, "public_endpoint_params")
        if pep is not None:
            check_json(dict(pep), "public_endpoint_params")
            body["public_endpoint_params"] = dict(pep)
        if not body:
            raise InvalidRequestError(
                "update_namespace: pass description= and/or public_endpoint_params="
            )
        return _Request("PUT", path, json=body)

    def _create_instance_req(
        self, instance_id: str, namespace: str | None, config: Mapping[str, Any]
    ) -> _Request:
        validate_instance_id(instance_id)
        body = {"id": instance_id, **check_instance_config(config)}
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
        check_item_key(key)
        content = check_item_content(content, key)
        wait = check_bool(wait_for_completion, "wait_for_completion")
        data: dict[str, Any] = {"wait_for_completion": "true" if wait else "false"}
        if metadata is not None:
            data["metadata"] = item_metadata_json(metadata)
        mime = mimetypes.guess_type(key)[0] or "application/octet-stream"
        files = {"file": (key, bytes(content), mime)}
        return _Request("POST", path, files=files, data=data)

    def _item_path(self, instance_id: str, item_id: str, namespace: str | None) -> str:
        item_id = check_path_id(item_id, "item_id", "item")
        return self._instance_path(instance_id, namespace, f"/items/{item_id}")

    def _update_instance_req(
        self, instance_id: str, namespace: str | None, fields: Mapping[str, Any]
    ) -> _Request:
        path = self._instance_path(instance_id, namespace)
        return _Request("PUT", path, json=check_instance_update(fields))

    def _sync_item_req(
        self, instance_id: str, item_id: str, wait_for_completion: bool, namespace: str | None
    ) -> _Request:
        body = {
            "next_action": "INDEX",
            "wait_for_completion": check_bool(wait_for_completion, "wait_for_completion"),
        }
        return _Request("PATCH", self._item_path(instance_id, item_id, namespace), json=body)

    def _item_chunks_req(
        self, instance_id: str, item_id: str, limit: int, offset: int, namespace: str | None
    ) -> _Request:
        check_int_range(limit, "limit", 1, MAX_CHUNKS_LIMIT)
        check_int_range(offset, "offset", 0, None)
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
        done = sum(1 for item in items if item.status in _DONE_STATUSES)
        failed = [item for item in items if item.status == "error"]
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
