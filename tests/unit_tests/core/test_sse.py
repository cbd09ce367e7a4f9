"""Streaming: both first-event forms, every byte split, truncation, errors, content type."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from aisearch import (
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    InternalServerError,
    NotFoundError,
    RateLimitError,
    SourcesEvent,
    StreamEndEvent,
    StreamInterruptedError,
    TextDeltaEvent,
    Usage,
)
from aisearch._sse import StreamDecoder
from tests.unit_tests.core.conftest import body_of, stream_content
from tests.unit_tests.core.payloads import (
    STREAM_CHUNKS_EVENT,
    STREAM_DELTAS,
    STREAM_DONE,
    STREAM_LEGACY,
    STREAM_NEW,
    STREAM_OLD,
    error_body,
)

MESSAGES = [{"role": "user", "content": "What does the document say?"}]
SSE = {"content-type": "text/event-stream; charset=utf-8", "cf-ray": "ray-s"}


def streaming(mode, pieces, status=200, headers=None):
    def handler(request):
        return httpx.Response(
            status, headers=headers or SSE, content=stream_content(mode, list(pieces))
        )

    return handler


def expected_new():
    return [
        SourcesEvent,
        TextDeltaEvent,
        TextDeltaEvent,
        StreamEndEvent,
    ]


def check_events(events, *, finish_reason, usage, old=False):
    assert [type(e) for e in events] == expected_new()
    sources, d1, d2, end = events
    assert sources.type == "sources"
    (chunk,) = sources.chunks
    assert chunk.id == "chunk-001"
    assert chunk.text == "Caf\u00e9 cr\u00e8me \u2615"
    assert chunk.item.key == "about-cloudflare.md"
    assert chunk.item.timestamp == 1775925540000
    assert [d1.text, d2.text] == [" document", " you provided doesn\u2019t"]
    assert d1.type == "text"
    assert end.type == "end"
    assert end.finish_reason == finish_reason
    assert end.usage == usage
    if old:
        assert d1.id == "chatcmpl-abc123" and d1.model is None and end.id == "chatcmpl-abc123"
    else:
        assert d1.id == "id-1776072781845"
        assert d1.model == end.model == "@cf/meta/llama-3.3-70b-instruct-fp8-fast"


def test_new_form_stream(harness, mode):
    h = harness(streaming(mode, [STREAM_NEW.encode()]))
    events = h.collect("stream_chat_completions", "docs", MESSAGES, model="m")
    check_events(
        events,
        finish_reason="stop",
        usage=Usage(prompt_tokens=10, completion_tokens=4, total_tokens=14),
    )
    assert body_of(h.last) == {"messages": MESSAGES, "model": "m", "stream": True}
    assert h.last.url.path.endswith("/instances/docs/chat/completions")


def test_old_form_stream_with_crlf(harness, mode):
    h = harness(streaming(mode, [STREAM_OLD.encode()]))
    check_events(
        h.collect("stream_chat_completions", "docs", MESSAGES),
        finish_reason=None,
        usage=None,
        old=True,
    )


@pytest.mark.parametrize(
    ("name", "stream", "kwargs"),
    [
        (
            "new",
            STREAM_NEW,
            {
                "finish_reason": "stop",
                "usage": Usage(prompt_tokens=10, completion_tokens=4, total_tokens=14),
            },
        ),
        ("old", STREAM_OLD, {"finish_reason": None, "usage": None, "old": True}),
    ],
)
def test_split_at_every_byte_boundary_gives_identical_events(harness, mode, name, stream, kwargs):
    data = stream.encode("utf-8")
    assert len(data) > 300
    reference = None
    for cut in range(len(data) + 1):
        h = harness(streaming(mode, [data[:cut], data[cut:]]))
        events = h.collect("stream_chat_completions", "docs", MESSAGES)
        dumped = [e.model_dump() for e in events]
        if reference is None:
            check_events(events, **kwargs)
            reference = dumped
        assert dumped == reference, f"split at byte {cut} of the {name} stream"


def test_one_byte_pieces(harness, mode):
    data = STREAM_NEW.encode()
    h = harness(streaming(mode, [data[i : i + 1] for i in range(len(data))]))
    events = h.collect("stream_chat_completions", "docs", MESSAGES)
    assert [type(e) for e in events] == expected_new()


@pytest.mark.parametrize(
    "stream",
    [
        STREAM_CHUNKS_EVENT + STREAM_DELTAS,  # no [DONE]
        STREAM_CHUNKS_EVENT,
        "",
        STREAM_NEW[: STREAM_NEW.index("data: [DONE]")] + "data: [DO",  # cut in the terminator
        STREAM_NEW[:-1],  # "[DONE]\n" without the blank line: the event never completes
    ],
)
def test_stream_ending_without_done_raises(harness, mode, stream):
    h = harness(streaming(mode, [stream.encode()]))
    events = []
    with pytest.raises(StreamInterruptedError):
        h.collect_into(events, "stream_chat_completions", "docs", MESSAGES)
    assert not any(isinstance(e, StreamEndEvent) for e in events)


def test_connection_drop_mid_stream_raises_interrupted(harness, mode):
    data = (STREAM_CHUNKS_EVENT + STREAM_DELTAS).encode()

    def handler(request):
        if mode == "sync":

            def gen():
                yield data
                raise httpx.RemoteProtocolError("peer closed connection")

            return httpx.Response(200, headers=SSE, content=gen())

        async def agen():
            yield data
            raise httpx.RemoteProtocolError("peer closed connection")

        return httpx.Response(200, headers=SSE, content=agen())

    h = harness(handler)
    events = []
    with pytest.raises(StreamInterruptedError):
        h.collect_into(events, "stream_chat_completions", "docs", MESSAGES)
    assert [type(e) for e in events] == [SourcesEvent, TextDeltaEvent, TextDeltaEvent]


def test_read_timeout_mid_stream(harness, mode):
    def handler(request):
        if mode == "sync":

            def gen():
                yield STREAM_CHUNKS_EVENT.encode()
                raise httpx.ReadTimeout("slow")

            return httpx.Response(200, headers=SSE, content=gen())

        async def agen():
            yield STREAM_CHUNKS_EVENT.encode()
            raise httpx.ReadTimeout("slow")

        return httpx.Response(200, headers=SSE, content=agen())

    h = harness(handler)
    with pytest.raises(APITimeoutError):
        h.collect("stream_chat_completions", "docs", MESSAGES)


@pytest.mark.parametrize(
    ("stream", "status", "code", "message"),
    [
        (
            'event: error\ndata: {"errors":[{"code":7017,"message":"backend down"}]}\n\n',
            500,
            7017,
            "backend down",
        ),
        (
            'event: error\ndata: {"status":429,"error":{"code":7020,"message":"slow down"}}\n\n',
            429,
            7020,
            "slow down",
        ),
        ("event: error\ndata: plain text failure\n\n", 500, None, "plain text failure"),
        (
            'data: {"success":false,"errors":[{"code":7002,"message":"gone"}]}\n\n',
            500,
            7002,
            "gone",
        ),
        ('data: {"error":"model overloaded"}\n\n', 500, None, "model overloaded"),
    ],
)
def test_error_events_raise_status_errors(harness, mode, stream, status, code, message):
    h = harness(streaming(mode, [(STREAM_CHUNKS_EVENT + stream + STREAM_DONE).encode()]))
    events = []
    with pytest.raises(APIStatusError) as info:
        h.collect_into(events, "stream_chat_completions", "docs", MESSAGES)
    assert info.value.status_code == status
    assert info.value.code == code
    assert info.value.message == message
    assert info.value.request_id == "ray-s"
    assert [type(e) for e in events] == [SourcesEvent]


def test_error_status_before_streaming(harness, mode):
    def handler(request):
        return httpx.Response(
            404, json=error_body(7002, "no such instance"), headers={"cf-ray": "r"}
        )

    h = harness(handler)
    with pytest.raises(NotFoundError) as info:
        h.collect("stream_chat_completions", "docs", MESSAGES)
    assert info.value.code == 7002 and info.value.request_id == "r"


def test_retryable_status_before_streaming_is_retried(harness, mode, monkeypatch):
    monkeypatch.setattr("aisearch._retry.random.random", lambda: 0.0)
    calls = []

    def handler(request):
        calls.append(1)
        if len(calls) == 1:
            return httpx.Response(429, json=error_body(1, "busy"), headers={"retry-after": "2"})
        return httpx.Response(200, headers=SSE, content=stream_content(mode, [STREAM_NEW.encode()]))

    h = harness(handler)
    assert len(h.collect("stream_chat_completions", "docs", MESSAGES)) == 4
    assert h.sleeps == [2.0]


def test_retry_exhausted_before_streaming(harness, mode):
    h = harness(lambda r: httpx.Response(503, text="unavailable"), max_retries=1)
    with pytest.raises(InternalServerError, match="unavailable"):
        h.collect("stream_chat_completions", "docs", MESSAGES)
    assert len(h.requests) == 2


def test_json_error_instead_of_a_stream(harness, mode):
    h = harness(lambda r: httpx.Response(200, json=error_body(7001, "stream not allowed")))
    with pytest.raises(APIStatusError, match="stream not allowed") as info:
        h.collect("stream_chat_completions", "docs", MESSAGES)
    assert info.value.code == 7001


def test_wrong_content_type_raises_validation_error(harness, mode):
    h = harness(
        lambda r: httpx.Response(200, text="<html>hi</html>", headers={"content-type": "text/html"})
    )
    with pytest.raises(APIResponseValidationError, match="text/event-stream") as info:
        h.collect("stream_chat_completions", "docs", MESSAGES)
    assert "<html>hi</html>" in info.value.body_excerpt


@pytest.mark.parametrize(
    "bad",
    [
        "event: chunks\ndata: not json\n\n",
        'event: chunks\ndata: {"nope": 1}\n\n',
        'event: chunks\ndata: [{"id": "x"}]\n\n',
        "data: [1, 2]\n\n",
        'data: {"choices":[],"usage":{"prompt_tokens":"many"}}\n\n',
    ],
)
def test_malformed_events_raise_validation_error(harness, mode, bad):
    h = harness(streaming(mode, [(bad + STREAM_DONE).encode()]))
    with pytest.raises(APIResponseValidationError):
        h.collect("stream_chat_completions", "docs", MESSAGES)


def test_unknown_events_comments_and_empty_data_are_ignored(harness, mode):
    stream = (
        ": keep-alive comment\n\n"
        "event: ping\ndata: {}\n\n"
        + STREAM_CHUNKS_EVENT
        + "data: \n\n"
        + 'data: {"choices":[{"index":0,"delta":{"content":""}}, "junk"]}\n\n'
        + STREAM_DELTAS
        + STREAM_DONE
        + 'data: {"choices":[{"delta":{"content":"after done"}}]}\n\n'
    )
    h = harness(streaming(mode, [stream.encode()]))
    events = h.collect("stream_chat_completions", "docs", MESSAGES)
    assert [type(e) for e in events] == expected_new()


def test_namespace_stream_keeps_errors_and_instance_ids(harness, mode):
    first = {
        "chunks": [
            {"id": "a", "score": 0.5, "text": "t", "item": {"key": "k"}, "instance_id": "docs"}
        ],
        "errors": [{"instance_id": "blog", "message": "not found"}],
    }
    stream = f"event: chunks\ndata: {json.dumps(first)}\n\n" + STREAM_DELTAS + STREAM_DONE
    h = harness(streaming(mode, [stream.encode()]))
    events = h.collect(
        "stream_namespace_chat_completions", ["docs", "blog"], MESSAGES, namespace="shop"
    )
    sources = events[0]
    assert sources.chunks[0].instance_id == "docs"
    assert [(e.instance_id, e.message) for e in sources.errors] == [("blog", "not found")]
    assert h.last.url.path.endswith("/namespaces/shop/chat/completions")
    assert body_of(h.last)["ai_search_options"] == {"instance_ids": ["docs", "blog"]}
    assert body_of(h.last)["stream"] is True


def test_legacy_stream(harness, mode):
    h = harness(streaming(mode, [STREAM_LEGACY.encode()]))
    events = h.collect("stream_legacy_ai_search", "my-rag", "How?", model="m")
    assert [type(e) for e in events] == [TextDeltaEvent, TextDeltaEvent, StreamEndEvent]
    assert "".join(e.text for e in events[:-1]) == "To train a llama"
    assert events[-1].usage == Usage(prompt_tokens=3, completion_tokens=2, total_tokens=5)
    assert body_of(h.last) == {"query": "How?", "model": "m", "stream": True}
    assert h.last.url.path.endswith("/autorag/rags/my-rag/ai-search")


def test_breaking_out_early_closes_the_response(harness, mode):
    closed = []

    class Stream(httpx.SyncByteStream, httpx.AsyncByteStream):
        def __iter__(self):
            yield STREAM_NEW.encode()

        async def __aiter__(self):
            yield STREAM_NEW.encode()

        def close(self):
            closed.append(True)

        async def aclose(self):
            closed.append(True)

    h = harness(lambda r: httpx.Response(200, headers=SSE, stream=Stream()))
    iterator = h.client.stream_chat_completions("docs", MESSAGES)
    if mode == "sync":
        first = next(iterator)
        iterator.close()
    else:
        import asyncio

        async def run():
            event = await iterator.__anext__()
            await iterator.aclose()
            return event

        first = asyncio.run(run())
    assert isinstance(first, SourcesEvent)
    assert closed == [True]


def test_stream_arguments_are_validated_before_iteration(harness):
    h = harness(lambda r: httpx.Response(500))
    with pytest.raises(ValueError, match="messages"):
        h.client.stream_chat_completions("docs", [])
    with pytest.raises(ValueError, match="instance_ids"):
        h.client.stream_namespace_chat_completions([], MESSAGES)
    assert h.requests == []


def test_decoder_is_pure_and_stops_after_done():
    from httpx_sse import ServerSentEvent

    decoder = StreamDecoder()
    assert decoder.feed(ServerSentEvent(data="[DONE]"))[0].type == "end"
    assert decoder.feed(ServerSentEvent(data='{"choices":[{"delta":{"content":"x"}}]}')) == []
    decoder.finish()  # no error once done
    fresh = StreamDecoder()
    with pytest.raises(StreamInterruptedError):
        fresh.finish()


def test_rate_limit_error_event_class():
    from httpx_sse import ServerSentEvent

    with pytest.raises(RateLimitError):
        StreamDecoder().feed(
            ServerSentEvent(
                event="error", data='{"status": 429, "errors": [{"code": 1, "message": "x"}]}'
            )
        )


def test_finish_reason_without_usage_and_message_form():
    from httpx_sse import ServerSentEvent

    decoder = StreamDecoder()
    out = decoder.feed(
        ServerSentEvent(
            data='{"id":"c1","choices":[{"message":{"content":"whole"},"finish_reason":"length"}]}'
        )
    )
    assert out[0].text == "whole"
    end = decoder.feed(ServerSentEvent(data="[DONE]"))[0]
    assert (end.finish_reason, end.usage, end.id) == ("length", None, "c1")


def _decode(*events: tuple[str, str], join_errors: bool = True) -> list[Any]:
    """Feed (event, data) pairs and then [DONE]; return every typed event."""
    from httpx_sse import ServerSentEvent

    decoder = StreamDecoder(join_errors=join_errors)
    out: list[Any] = []
    for name, data in events:
        out += decoder.feed(ServerSentEvent(event=name, data=data))
    out += decoder.feed(ServerSentEvent(data="[DONE]"))
    decoder.finish()
    return out


def test_sources_with_null_metadata():
    data = '[{"id":"a","score":0.5,"item":{"key":"k","metadata":null}}]'
    event, _end = _decode(("chunks", data))
    assert event.chunks[0].item.metadata == {}


def test_sources_with_nulls_that_mean_absent():
    from httpx_sse import ServerSentEvent

    event, _end = _decode(("chunks", '[{"id":"a","score":0.5,"text":null,"item":null}]'))
    assert (event.chunks[0].text, event.chunks[0].item.key) == ("", "")
    event, _end = _decode(("chunks", '{"chunks":null,"errors":null}'))
    assert (event.chunks, event.errors) == ([], [])
    with pytest.raises(APIResponseValidationError, match="neither a JSON array"):
        StreamDecoder().feed(ServerSentEvent(event="chunks", data='{"errors":[]}'))


NS_CHUNKS = '[{"id":"a","score":0.5,"instance_id":"docs"}]'
NS_ERRORS = '[{"instance_id":"gone","message":"instance not found"}]'
DELTA = '{"id":"c","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}'


@pytest.mark.parametrize(
    "events",
    [
        [("chunks", NS_CHUNKS), ("errors", NS_ERRORS), ("message", DELTA)],
        [("chunks", NS_CHUNKS), ("errors", '{"errors":' + NS_ERRORS + "}"), ("message", DELTA)],
        [("errors", NS_ERRORS), ("chunks", NS_CHUNKS), ("message", DELTA)],
        [("chunks", '{"chunks":' + NS_CHUNKS + ',"errors":' + NS_ERRORS + "}"), ("message", DELTA)],
    ],
)
def test_namespace_errors_join_the_sources_before_the_first_token(events):
    # aisearch_local sends per-instance errors as a separate `event: errors` after the
    # sources; the real wire form is undocumented, so every arrangement gives one
    # SourcesEvent carrying both, then the text
    sources, delta, end = _decode(*events)
    assert isinstance(sources, SourcesEvent)
    assert [c.instance_id for c in sources.chunks] == ["docs"]
    assert [(e.instance_id, e.message) for e in sources.errors] == [("gone", "instance not found")]
    assert delta.text == "Hi"
    assert isinstance(end, StreamEndEvent)


def test_sources_alone_are_flushed_at_done_and_a_bad_errors_event_raises():
    (sources, end) = _decode(("chunks", NS_CHUNKS))
    assert sources.chunks and isinstance(end, StreamEndEvent)
    with pytest.raises(APIResponseValidationError, match="'errors' event"):
        _decode(("errors", '"nope"'))


def test_an_error_after_the_sources_still_hands_the_sources_over_first():
    from httpx_sse import ServerSentEvent

    decoder = StreamDecoder(500, "ray-x", join_errors=True)
    assert decoder.feed(ServerSentEvent(event="chunks", data=NS_CHUNKS)) == []
    (sources,) = decoder.feed(ServerSentEvent(event="error", data='{"error":"backend down"}'))
    assert isinstance(sources, SourcesEvent)
    with pytest.raises(APIStatusError, match="backend down"):
        decoder.feed(ServerSentEvent(data="[DONE]"))
    assert decoder.feed(ServerSentEvent(data="[DONE]")) == []  # done after the error
    decoder2 = StreamDecoder(join_errors=True)
    decoder2.feed(ServerSentEvent(event="chunks", data=NS_CHUNKS))
    decoder2.feed(ServerSentEvent(event="error", data='{"error":"x"}'))
    with pytest.raises(APIStatusError, match="x"):
        decoder2.finish()  # the stream ended right after the error event


def test_instance_streams_hand_the_sources_over_at_once():
    # only namespace streams can carry per-instance errors: elsewhere the sources are not
    # held back until the first token (which may take seconds on the real service)
    from httpx_sse import ServerSentEvent

    decoder = StreamDecoder()
    (sources,) = decoder.feed(ServerSentEvent(event="chunks", data=NS_CHUNKS))
    assert isinstance(sources, SourcesEvent)
    assert decoder.feed(ServerSentEvent(event="errors", data=NS_ERRORS)) == []  # not expected


def test_only_namespace_streams_join_errors(harness, mode):
    body = (
        f"event: chunks\ndata: {NS_CHUNKS}\n\nevent: errors\ndata: {NS_ERRORS}\n\n"
        f"data: {DELTA}\n\ndata: [DONE]\n\n"
    ).encode()
    h = harness(streaming(mode, [body]))
    events: list[Any] = []
    h.collect_into(events, "stream_namespace_chat_completions", ["docs", "gone"], MESSAGES)
    assert [type(e) for e in events] == [SourcesEvent, TextDeltaEvent, StreamEndEvent]
    assert [e.instance_id for e in events[0].errors] == ["gone"]
