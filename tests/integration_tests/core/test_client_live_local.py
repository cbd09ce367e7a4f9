"""The core client over real HTTP against aisearch_local on 127.0.0.1 (sync and async)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from aisearch import (
    AISearchClient,
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ChatCompletion,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    SearchOptions,
    SearchTarget,
    SourcesEvent,
    StreamEndEvent,
    StreamInterruptedError,
    TextDeltaEvent,
)

pytestmark = pytest.mark.integration

QUERY = "How do I dial in espresso grind size?"
MESSAGES = [{"role": "user", "content": QUERY}]


@pytest.fixture(autouse=True)
def _no_faults(local_server):
    local_server.clear_faults()
    yield
    local_server.clear_faults()


@pytest.fixture
def sleeps(client):
    recorded: list[float] = []
    client._sleep = recorded.append
    return recorded


# --------------------------------------------------------------------------- search and chat


def test_search(client, docs_instance):
    result = client.search(docs_instance, QUERY, options={"retrieval": {"max_num_results": 5}})
    assert 1 <= len(result.chunks) <= 5
    assert result.search_query
    scores = [c.score for c in result.chunks]
    assert scores == sorted(scores, reverse=True)
    for chunk in result.chunks:
        assert chunk.id and chunk.text and "/" in chunk.item.key
        assert 0.0 <= chunk.score <= 1.0
    assert any("espresso" in c.text.lower() for c in result.chunks)


def test_search_with_filter_and_messages(client, docs_instance):
    result = client.search(
        docs_instance,
        messages=MESSAGES,
        options=SearchOptions.model_validate(
            {"retrieval": {"max_num_results": 10, "filters": {"folder": "brewing/"}}}
        ),
    )
    assert result.chunks
    assert all(c.item.key.startswith("brewing/") for c in result.chunks)


def test_search_max_num_results_is_respected(client, docs_instance):
    assert (
        len(
            client.search(
                docs_instance, "coffee", options={"retrieval": {"max_num_results": 1}}
            ).chunks
        )
        == 1
    )


async def test_async_search_and_chat(async_client, docs_instance):
    result = await async_client.search(docs_instance, QUERY)
    assert result.chunks
    completion = await async_client.chat_completions(docs_instance, MESSAGES)
    assert isinstance(completion, ChatCompletion)
    assert completion.content
    assert completion.chunks


def test_chat_completions(client, docs_instance):
    completion = client.chat_completions(
        docs_instance, MESSAGES, options={"retrieval": {"max_num_results": 3}}
    )
    assert completion.content.strip()
    assert completion.choices[0].message.role == "assistant"
    assert 1 <= len(completion.chunks) <= 3
    if completion.usage is not None:
        assert completion.usage.total_tokens >= completion.usage.completion_tokens


def test_stream_chat_completions(client, docs_instance):
    events = list(client.stream_chat_completions(docs_instance, MESSAGES))
    assert isinstance(events[0], SourcesEvent) and events[0].chunks
    assert isinstance(events[-1], StreamEndEvent)
    deltas = [e for e in events if isinstance(e, TextDeltaEvent)]
    assert deltas
    streamed = "".join(d.text for d in deltas)
    whole = client.chat_completions(docs_instance, MESSAGES).content
    assert streamed.strip() == whole.strip()
    assert sum(isinstance(e, StreamEndEvent) for e in events) == 1


async def test_async_stream(async_client, docs_instance):
    events = [e async for e in async_client.stream_chat_completions(docs_instance, MESSAGES)]
    assert isinstance(events[0], SourcesEvent)
    assert isinstance(events[-1], StreamEndEvent)
    assert any(isinstance(e, TextDeltaEvent) for e in events)


# --------------------------------------------------------------------------- namespace and fan-out


def test_namespace_search_keeps_partial_failures(client, docs_instance, make_instance):
    empty = make_instance()
    missing = f"missing-{uuid.uuid4().hex[:8]}"
    result = client.namespace_search([docs_instance, empty, missing], QUERY)
    assert result.chunks
    assert {c.instance_id for c in result.chunks} == {docs_instance}
    assert [e.instance_id for e in result.errors] == [missing]
    assert result.errors[0].message


def test_namespace_chat_and_stream(client, docs_instance):
    completion = client.namespace_chat_completions([docs_instance], MESSAGES)
    assert completion.content and all(c.instance_id == docs_instance for c in completion.chunks)
    events = list(client.stream_namespace_chat_completions([docs_instance], MESSAGES))
    assert isinstance(events[0], SourcesEvent)
    assert events[0].chunks[0].instance_id == docs_instance
    assert isinstance(events[-1], StreamEndEvent)


def test_fan_out_search(client, docs_instance, make_instance):
    other = make_instance()
    result = client.fan_out_search(
        [docs_instance, other, "nope-" + uuid.uuid4().hex[:6]], QUERY, top_k=3
    )
    assert len(result.chunks) == 3
    assert {c.instance_id for c in result.chunks} == {docs_instance}
    assert len(result.errors) == 1 and isinstance(result.errors[0].error, NotFoundError)


async def test_async_fan_out_rrf(async_client, docs_instance):
    result = await async_client.fan_out_search(
        [docs_instance, SearchTarget(docs_instance, namespace="default")], QUERY, merge="rrf"
    )
    assert result.errors == []
    assert result.chunks[0].rrf_score == result.chunks[1].rrf_score


# --------------------------------------------------------------------------- legacy


def test_legacy_search_and_ai_search(client, docs_instance):
    result = client.legacy_search(
        docs_instance, QUERY, max_num_results=3, filters={"folder": "brewing/"}
    )
    assert 1 <= len(result.chunks) <= 3
    assert all(c.filename.startswith("brewing/") for c in result.chunks)
    assert all(c.item.key == c.filename for c in result.chunks)
    answer = client.legacy_ai_search(docs_instance, QUERY)
    assert answer.response
    events = list(client.stream_legacy_ai_search(docs_instance, QUERY))
    assert isinstance(events[-1], StreamEndEvent)
    assert "".join(e.text for e in events if isinstance(e, TextDeltaEvent)).strip()


# --------------------------------------------------------------------------- management


def test_management_round_trip(client):
    ns = f"ns-{uuid.uuid4().hex[:8]}"
    assert client.create_namespace(ns, description="integration").name == ns
    assert ns in {n.name for n in client.list_namespaces()}
    assert client.get_namespace(ns).description == "integration"
    inst = client.create_instance("kb", namespace=ns)
    assert inst.id == "kb"
    assert [i.id for i in client.list_instances(namespace=ns)] == ["kb"]
    assert client.get_instance("kb", namespace=ns).id == "kb"

    uploaded = [
        client.upload_item(
            "kb",
            f"notes/{n}.md",
            f"# Note {n}\nThe kettle number {n} is stored on shelf {n}.",
            metadata={"shelf": n},
            namespace=ns,
        )
        for n in range(3)
    ]
    progress: list[tuple[int, int]] = []
    items = client.wait_until_indexed(
        "kb",
        [u.id for u in uploaded],
        timeout=60,
        poll_interval=0.1,
        on_progress=lambda done, total, _items: progress.append((done, total)),
        namespace=ns,
    )
    assert {i.status for i in items} == {"completed"}
    assert progress[-1] == (3, 3)
    assert len(client.list_items("kb", namespace=ns)) == 3
    assert len(client.list_items("kb", status="completed", namespace=ns)) == 3
    hit = client.search("kb", "kettle on shelf 2", namespace=ns)
    assert hit.chunks and hit.chunks[0].item.key.startswith("notes/")

    client.delete_item("kb", uploaded[0].id, namespace=ns)
    remaining = client.wait_until_indexed("kb", timeout=30, poll_interval=0.1, namespace=ns)
    assert {i.id for i in remaining} == {u.id for u in uploaded[1:]}
    with pytest.raises(NotFoundError):
        client.get_item("kb", uploaded[0].id, namespace=ns)

    client.delete_instance("kb", namespace=ns)
    with pytest.raises(NotFoundError):
        client.get_instance("kb", namespace=ns)
    client.delete_namespace(ns)
    assert ns not in {n.name for n in client.list_namespaces()}


def test_many_items_are_listed_across_pages(client, make_instance):
    iid = make_instance()
    for n in range(55):
        client.upload_item(iid, f"bulk/{n:02d}.txt", f"item {n}")
    items = client.wait_until_indexed(iid, timeout=120, poll_interval=0.2)
    assert len(items) == 55
    assert len({i.id for i in items}) == 55


async def test_async_management(async_client, make_instance):
    iid = make_instance()
    item = await async_client.upload_item(iid, "a.md", "# A\nasync upload", metadata={"k": "v"})
    done = await async_client.wait_until_indexed(iid, [item.id], timeout=30, poll_interval=0.1)
    assert done[0].status == "completed"
    assert (await async_client.get_item(iid, item.id)).key == "a.md"
    assert [i.id for i in await async_client.list_items(iid)] == [item.id]


# --------------------------------------------------------------------------- errors and faults


def test_unknown_instance_is_not_found(client):
    with pytest.raises(NotFoundError) as info:
        client.search("does-not-exist", QUERY)
    assert info.value.status_code == 404
    assert info.value.code is not None
    assert info.value.message


def test_server_side_validation_error_is_bad_request(client, docs_instance):
    with pytest.raises(BadRequestError) as info:
        client.search(docs_instance, QUERY, extra_options={"retrieval": {"max_num_results": 500}})
    assert info.value.status_code == 400


def test_wrong_token(local_server, docs_instance):
    with (
        AISearchClient(
            account_id=local_server.account_id,
            api_token="wrong-token",
            base_url=local_server.base_url,
        ) as bad,
        pytest.raises((AuthenticationError, PermissionDeniedError)) as info,
    ):
        bad.search(docs_instance, QUERY)
    assert "wrong-token" not in str(info.value)


def test_503_is_retried_then_succeeds(client, docs_instance, local_server, sleeps):
    local_server.set_fault(docs_instance, status=503, times=2)
    assert client.search(docs_instance, QUERY).chunks
    assert len(sleeps) == 2


def test_429_retry_after_is_honoured(client, docs_instance, local_server, sleeps):
    local_server.set_fault(docs_instance, status=429, retry_after=3, times=1)
    assert client.search(docs_instance, QUERY).chunks
    assert sleeps == [3.0]


def test_persistent_failure_exhausts_retries(client, docs_instance, local_server, sleeps):
    local_server.set_fault(docs_instance, status=500)
    with pytest.raises(InternalServerError) as info:
        client.search(docs_instance, QUERY)
    assert len(sleeps) == client.max_retries
    local_server.set_fault(docs_instance, status=429)
    with pytest.raises(RateLimitError):
        client.with_options(max_retries=0).search(docs_instance, QUERY)
    assert info.value.code is not None


def test_malformed_body(client, docs_instance, local_server):
    local_server.set_fault(docs_instance, malformed_body=True)
    with pytest.raises(APIResponseValidationError) as info:
        client.search(docs_instance, QUERY)
    assert info.value.body_excerpt


def test_truncated_stream(client, docs_instance, local_server):
    local_server.set_fault(docs_instance, truncate_stream=True)
    events = []
    with pytest.raises(StreamInterruptedError):
        for event in client.stream_chat_completions(docs_instance, MESSAGES):
            events.append(event)
    assert not any(isinstance(e, StreamEndEvent) for e in events)


def test_timeout_against_a_slow_instance(client, docs_instance, local_server):
    local_server.set_fault(docs_instance, latency_ms=1500)
    fast = client.with_options(timeout=httpx.Timeout(0.3), max_retries=0)
    with pytest.raises(APITimeoutError):
        fast.search(docs_instance, QUERY)


def test_connection_refused_is_retried_then_raised():
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with AISearchClient(
        account_id="a", api_token="t", base_url=f"http://127.0.0.1:{port}/client/v4", max_retries=2
    ) as refused:
        recorded: list[float] = []
        refused._sleep = recorded.append
        with pytest.raises(APIConnectionError):
            refused.search("docs", QUERY)
    assert len(recorded) == 2


async def test_async_errors(async_client, docs_instance, local_server):
    with pytest.raises(NotFoundError):
        await async_client.search("does-not-exist", QUERY)
    local_server.set_fault(docs_instance, truncate_stream=True)
    with pytest.raises(StreamInterruptedError):
        async for _ in async_client.stream_chat_completions(docs_instance, MESSAGES):
            pass
