"""Response parsing: the v4 envelope, one parser per response kind, and the paging policy.

A parser takes a read ``httpx.Response`` and returns a model, or raises the error the body
reports (``success: false``) or an ``APIResponseValidationError`` naming what does not fit.
The parsers are generic over the model: ``result_parser(Instance, ...)`` parses to ``Instance``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from aisearch._exceptions import (
    APIResponseValidationError,
    APIStatusError,
    error_from_body,
    request_id,
    response_validation_error,
)
from aisearch._models import (
    ChatCompletion,
    Chunk,
    ChunkItem,
    SearchResult,
    drop_absent_nulls,
    validate_json_tolerant,
)

__all__ = [
    "ITEMS_PER_PAGE",
    "LIST_PER_PAGE",
    "MAX_ERROR_BODY",
    "MAX_PAGES",
    "Envelope",
    "is_event_stream",
    "list_result_parser",
    "none_parser",
    "page_done",
    "page_items",
    "parse_chat",
    "parse_envelope",
    "parse_legacy",
    "parse_search",
    "result_parser",
]

_T = TypeVar("_T")
_M = TypeVar("_M", bound=BaseModel)

MAX_PAGES = 10_000
"""Most pages one listing reads."""
ITEMS_PER_PAGE = 50
"""Page size of the item listings."""
LIST_PER_PAGE = 100
"""Page size of the other listings."""


class Envelope(BaseModel):
    """The Cloudflare v4 envelope (``result`` left raw here)."""

    success: bool | None = None
    errors: list[Any] = []
    result: Any = None
    result_info: dict[str, Any] | None = None


class _SearchEnvelope(BaseModel):
    success: bool | None = None
    errors: list[Any] = []
    result: SearchResult | None = None


def _reported(body: Any, response: httpx.Response) -> APIStatusError:
    """The error a 2xx body with ``success: false`` reports."""
    return error_from_body(
        body, response.status_code, request_id(response), "success: false", response=response
    )


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
    raise response_validation_error(response, what, failure)


def parse_search(response: httpx.Response) -> SearchResult:
    """Parse an enveloped search result (``success: false`` raises its status error)."""
    env = _fit(
        response, "search", lambda: validate_json_tolerant(_SearchEnvelope, response.content)
    )
    if env.success is False:
        raise _reported(env.model_dump(), response)
    if env.result is None:
        raise response_validation_error(response, "search", ValueError("no result"))
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


def parse_chat(response: httpx.Response) -> ChatCompletion:
    """Parse a chat completion (bare, as the API sends it, or in the v4 envelope)."""
    try:
        return validate_json_tolerant(ChatCompletion, response.content)
    except ValidationError as exc:
        failure = exc
    wrapped = _enveloped_completion(response)
    if wrapped is not None:
        return wrapped
    raise response_validation_error(response, "chat completion", failure)


def parse_envelope(response: httpx.Response, what: str) -> Envelope:
    """Parse the v4 envelope (an empty 202/204 body is a success), ``result`` left raw."""
    if not response.content.strip():
        if response.status_code in (202, 204):
            return Envelope(success=True)
        raise APIResponseValidationError(
            f"empty {what} response body", status_code=response.status_code
        )
    env = _fit(response, what, lambda: Envelope.model_validate_json(response.content))
    if env.success is False:
        raise _reported(env.model_dump(), response)
    return env


def result_parser(model: type[_M], what: str) -> Callable[[httpx.Response], _M]:
    """A parser of an enveloped ``result`` into ``model`` (``what`` names it in errors)."""

    def parse(response: httpx.Response) -> _M:
        env = parse_envelope(response, what)
        return _fit(response, what, lambda: model.model_validate(env.result))

    return parse


def none_parser(response: httpx.Response) -> None:
    """Check the envelope of an answer without a result (a delete)."""
    parse_envelope(response, "delete")


def list_result_parser(model: type[_M], what: str) -> Callable[[httpx.Response], list[_M]]:
    """A parser of an enveloped, unpaginated list (nulls that mean absent take their defaults)."""

    def parse(response: httpx.Response) -> list[_M]:
        return page_items(parse_envelope(response, what), model, response, what, drop_absent_nulls)

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


def parse_legacy(response: httpx.Response) -> SearchResult:
    """Parse a legacy AutoRAG answer into a ``SearchResult`` (its ``data`` become chunks)."""
    result = parse_envelope(response, "legacy search").result

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


def page_done(env: Envelope, got: int, total: int, per_page: int) -> bool:
    """Tell whether a listing is complete after a page of ``got`` entries (``total`` so far).

    ``result_info.total_count`` decides, else ``page``/``total_pages``, else a short page.
    """
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


def page_items(
    env: Envelope,
    model: type[_T],
    response: httpx.Response,
    what: str = "list",
    prepare: Callable[[Any], Any] = lambda entry: entry,
) -> list[_T]:
    """Validate the entries of one page (each passed through ``prepare``) into ``model``."""
    if not isinstance(env.result, list):
        raise response_validation_error(response, what, ValueError("result is not a list"))
    entries = env.result
    return _fit(
        response,
        what,
        lambda: [model.model_validate(prepare(e)) for e in entries],  # type: ignore[attr-defined]
    )


MAX_ERROR_BODY = 1024 * 1024
"""Most bytes of an error body the client reads (the rest is discarded, the connection closed)."""


def is_event_stream(response: httpx.Response) -> bool:
    """Tell whether a response is a server-sent-events stream (by its content type)."""
    ctype: str = response.headers.get("content-type", "")
    return ctype.partition(";")[0].strip().lower() == "text/event-stream"
