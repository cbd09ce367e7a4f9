"""Query routes: search and chat on an instance or a namespace, and the legacy AutoRAG routes.

Each handler parses its body once into a request model (:mod:`aisearch_local.models`), applies
an injected fault, calls :class:`~aisearch_local.query.QueryService` and shapes the answer: the
envelope for search, an OpenAI-style completion or Server-Sent Events for chat.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from aisearch_local._http import (
    EarlyResponse,
    endpoint,
    envelope,
    instance_of,
    json_body,
    namespace_of,
    queries,
    service,
)
from aisearch_local.errors import bad_request
from aisearch_local.generate import Generation
from aisearch_local.guard import BODY_KEY
from aisearch_local.jsonsafe import SafeJSONResponse, dumps_safe
from aisearch_local.models import ChatRequest, ChatSettings, SearchRequest
from aisearch_local.query import ChatPlan, QueryService, Retrieval, fault_error
from aisearch_local.records import InstanceRecord
from aisearch_local.service import Fault

__all__ = [
    "instance_chat",
    "instance_search",
    "legacy_ai_search",
    "legacy_search",
    "namespace_chat",
    "namespace_search",
]

_SSE_HEADERS = {"cache-control": "no-cache"}


def _malformed(kind: str) -> Response:
    body = (
        '{"success": true, "result": {"chunks": [{"id": "'
        if kind == "search"
        else '{"id": "chatcmpl-'
    )
    return Response(body, media_type="application/json")


async def _fault(qs: QueryService, inst: InstanceRecord, kind: str) -> Fault | None:
    """Take the instance's fault: raise its error or its malformed answer, or return it."""
    fault = await qs.take_fault(inst.namespace, inst.id)
    if fault is None:
        return None
    err = fault_error(fault)
    if err is not None:
        raise err
    if fault.malformed_body:
        raise EarlyResponse(_malformed(kind))
    return fault


def _search_result(found: Retrieval) -> dict[str, Any]:
    result: dict[str, Any] = {
        "search_query": found.query,
        "query_kind": found.query_kind,
        "chunks": found.chunks,
    }
    if found.errors:
        result["errors"] = found.errors
    return result


@endpoint
async def instance_search(request: Request) -> Response:
    """Search one instance (enveloped)."""
    qs = queries(request)
    body = request.scope.get(BODY_KEY)  # read by the perimeter
    if not isinstance(body, bytes):
        body = await request.body()
    # the instance, the body, the fault and the search, in that order, in one thread hop
    inst, req, fault, found = await qs.search_request(
        namespace_of(request), str(request.path_params["instance_id"]), body
    )
    if fault is not None:  # as _fault does: the latency, then the error or the bad body
        if fault.latency_ms:
            await asyncio.sleep(fault.latency_ms / 1000)
        err = fault_error(fault)
        if err is not None:
            raise err
        if fault.malformed_body:
            raise EarlyResponse(_malformed("search"))
    if found is None:
        found = await qs.search_instance(inst, req)
    return envelope(_search_result(found))


@endpoint
async def namespace_search(request: Request) -> Response:
    """Search several instances of a namespace; failures go to ``errors``."""
    ns = namespace_of(request)
    service(request).require_namespace(ns)
    req = SearchRequest.parse(await json_body(request), strict=service(request).strict)
    return envelope(_search_result(await queries(request).search_namespace(ns, req)))


@endpoint
async def instance_chat(request: Request) -> Response:
    """RAG chat completion on one instance (not enveloped; SSE when ``stream``)."""
    qs, inst = queries(request), instance_of(request)
    req = ChatRequest.parse(await json_body(request), strict=service(request).strict)
    fault = await _fault(qs, inst, "chat")
    found = await qs.search_instance(inst, req.search)
    return await _chat(qs, req, found, fault)


@endpoint
async def namespace_chat(request: Request) -> Response:
    """RAG chat completion over several instances of a namespace."""
    ns = namespace_of(request)
    service(request).require_namespace(ns)
    req = ChatRequest.parse(await json_body(request), strict=service(request).strict)
    qs = queries(request)
    found = await qs.search_namespace(ns, req.search)
    return await _chat(qs, req, found, None)


async def _chat(
    qs: QueryService, req: ChatRequest, found: Retrieval, fault: Fault | None
) -> Response:
    plan = qs.plan_chat(req, found)
    if req.settings.stream:
        return StreamingResponse(
            iterate_in_threadpool(_stream_chat(qs, plan, fault)),
            media_type="text/event-stream",
            headers={**_SSE_HEADERS, **plan.headers},
        )
    gen = await run_in_threadpool(qs.answer, plan)
    return SafeJSONResponse(_completion(gen, plan), headers=plan.headers)


def _usage(gen: Generation) -> dict[str, int]:
    return {
        "prompt_tokens": gen.prompt_tokens,
        "completion_tokens": gen.completion_tokens,
        "total_tokens": gen.prompt_tokens + gen.completion_tokens,
    }


def _completion(gen: Generation, plan: ChatPlan) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": plan.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": gen.text},
                "finish_reason": gen.finish_reason,
            }
        ],
        "usage": _usage(gen),
        "chunks": plan.chunks,
    }
    if plan.errors is not None:
        out["errors"] = plan.errors
    return out


def _sse(data: Any, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else dumps_safe(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


def _stream_chat(qs: QueryService, plan: ChatPlan, fault: Fault | None) -> Iterator[bytes]:
    cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())

    def delta(
        content: str | None, finish: str | None = None, usage: dict[str, int] | None = None
    ) -> bytes:
        choice: dict[str, Any] = {
            "index": 0,
            "delta": {} if content is None else {"content": content},
        }
        if content is not None and finish is None:
            choice["finish_reason"] = None
        if finish is not None:
            choice["finish_reason"] = finish
        body: dict[str, Any] = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": plan.model,
            "choices": [choice],
        }
        if usage is not None:
            body["usage"] = usage
        return _sse(body)

    yield _sse(plan.chunks, event="chunks")
    if plan.errors:
        yield _sse(plan.errors, event="errors")
    for piece in qs.answer_stream(plan):
        if isinstance(piece, Generation):
            plan.remember(piece)
            yield delta(None, piece.finish_reason, _usage(piece))
            break
        if not piece:
            continue
        yield delta(piece)
        if fault is not None and fault.truncate_stream:
            return
    yield b"data: [DONE]\n\n"


# -- legacy AutoRAG -----------------------------------------------------------------------------


async def _legacy_common(
    request: Request,
) -> tuple[QueryService, InstanceRecord, dict[str, Any], str, list[dict[str, Any]]]:
    qs = queries(request)
    inst = service(request).require_instance("default", str(request.path_params["rag_id"]))
    body = await json_body(request)
    query, opts = qs.legacy_options(body, inst)
    await _fault(qs, inst, "search")
    text, chunks = await run_in_threadpool(qs.legacy_search, inst, query, opts)
    return qs, inst, body, text, chunks


def _legacy_page(text: str, data: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "object": "vector_store.search_results.page",
        "search_query": text,
        **extra,
        "data": data,
        "has_more": False,
        "next_page": None,
    }


@endpoint
async def legacy_search(request: Request) -> Response:
    """Legacy ``/autorag/rags/{id}/search``."""
    qs, inst, _body, text, chunks = await _legacy_common(request)
    return envelope(_legacy_page(text, qs.legacy_data(chunks, inst)))


@endpoint
async def legacy_ai_search(request: Request) -> Response:
    """Legacy ``/autorag/rags/{id}/ai-search`` (search + answer; ``stream`` supported)."""
    qs, inst, body, text, chunks = await _legacy_common(request)
    settings = ChatSettings.parse(
        {k: v for k, v in body.items() if k in ("model", "stream", "max_tokens", "stop")}
    )
    model = qs.chat_model(settings, inst)
    messages: list[dict[str, Any]] = []
    sp = body.get("system_prompt")
    if sp is not None:
        if not isinstance(sp, str):
            raise bad_request("system_prompt", "must be a string")
        messages.append({"role": "system", "content": sp})
    messages.append({"role": "user", "content": body["query"]})
    if settings.stream:

        def legacy_stream() -> Iterator[bytes]:
            for piece in qs.stream(messages, chunks, settings, model):
                if isinstance(piece, Generation):
                    break
                if piece:
                    yield _sse({"response": piece, "p": "local"})
            yield b"data: [DONE]\n\n"

        return StreamingResponse(
            iterate_in_threadpool(legacy_stream()),
            media_type="text/event-stream",
            headers=dict(_SSE_HEADERS),
        )
    gen = await run_in_threadpool(qs.generate, messages, chunks, settings, model)
    return envelope(_legacy_page(text, qs.legacy_data(chunks, inst), response=gen.text))
