"""`ChatAISearch`: AI Search chat completions (retrieval + generation) as a chat model."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Annotated, Any, ClassVar, cast, overload

from langchain_core.caches import BaseCache
from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.block_translators import register_translator
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from aisearch import (
    AISearchClient,
    AsyncAISearchClient,
    AsyncEventStream,
    CacheOptions,
    ChatCompletion,
    EventStream,
    InstanceError,
    InvalidRequestError,
    SourcesEvent,
    StreamEndEvent,
    StreamEvent,
    TextDeltaEvent,
    Usage,
    format_validation_error,
)
from aisearch._config import validate_instance_id
from aisearch._params import MAX_STOP_SEQUENCES, MAX_TEMPERATURE, MAX_TOKENS
from langchain_aisearch._common import (
    AISearchConnection,
    validate_k,
)
from langchain_aisearch._mapping import (
    MODEL_PROVIDER,
    chunk_to_source,
    find_citations,
    messages_to_api,
    translate_content,
    translate_content_chunk,
)
from langchain_aisearch._options import SearchOptionFields

__all__ = ["ChatAISearch"]

register_translator(MODEL_PROVIDER, translate_content, translate_content_chunk)

NO_TOOLS_MESSAGE = (
    "ChatAISearch cannot {what}: Cloudflare AI Search chat completions have no tool calling "
    "or structured output. To use AI Search in an agent, give its tools to a chat model "
    "that calls tools:\n"
    "    from langchain_aisearch import AISearchAnswerTool, AISearchSearchTool\n"
    "e.g. create_agent(ChatOpenAI(model=...), tools=[AISearchSearchTool("
    "retriever=AISearchRetriever(instance_id=...)), AISearchAnswerTool("
    "chat=ChatAISearch(instance_id=...))])"
)
"""What `bind_tools` and `with_structured_output` raise (`what`: the refused request)."""

DEFAULT_MODEL_NAME = "instance-default"
"""`ls_model_name` reported when no model is set (the instance's model applies)."""

_CALL_KWARGS = frozenset(
    {"model", "max_tokens", "temperature", "filters", "k", "extra_body", "stream"}
)
"""Per-call keyword arguments; `stream` is LangChain's own switch and is not sent."""

# One rule per generation setting, shared by the constructor fields and the per-call check.
Temperature = Annotated[float, Field(ge=0.0, le=MAX_TEMPERATURE, strict=True, allow_inf_nan=False)]
MaxTokens = Annotated[int, Field(ge=1, le=MAX_TOKENS, strict=True)]
StopSequences = Annotated[list[str], Field(max_length=MAX_STOP_SEQUENCES, strict=True)]


class _CallSettings(BaseModel):
    """Per-call generation settings, checked with the constructor's rules."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    model: Annotated[str, Field(strict=True)] | None = None
    temperature: Temperature | None = None
    max_tokens: MaxTokens | None = None
    stop: StopSequences | None = None
    extra_body: dict[str, Any] | None = None
    stream: Annotated[bool, Field(strict=True)] | None = None


def _check_call(stop: Any, kwargs: Mapping[str, Any]) -> None:
    """Check per-call settings before the network, as the constructor checks its fields.

    Raises:
        InvalidRequestError: Naming the argument and its allowed range.
    """
    settings = {k: v for k, v in kwargs.items() if k not in ("k", "filters")}
    if stop is not None:
        settings["stop"] = stop
    try:
        _CallSettings.model_validate(settings)
    except ValidationError as exc:
        error = InvalidRequestError(format_validation_error(exc))
    else:
        filters = kwargs.get("filters")
        if filters is None or isinstance(filters, Mapping):
            return
        error = InvalidRequestError(f"filters: must be a mapping (got {type(filters).__name__})")
    raise error


def _usage(usage: Usage | None) -> UsageMetadata | None:
    if usage is None:
        return None
    return UsageMetadata(
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
    )


def _errors(errors: Sequence[InstanceError]) -> list[dict[str, Any]]:
    return [{"instance_id": e.instance_id, "message": e.message} for e in errors]


_Call = tuple[str | list[str] | None, dict[str, Any]]
"""A checked chat request: its target (an instance id or a namespace's ids) and arguments."""


class _Chunks:
    """A core event stream as LangChain chunks, iterated sync or async.

    The mapping is ``ChatAISearch._chunks``, one step per event with this stream's state;
    only the iteration differs between ``_stream`` and ``_astream``.
    """

    def __init__(self, chat: ChatAISearch, events: EventStream | AsyncEventStream) -> None:
        self._chat = chat
        self._events = events
        self._state: dict[str, Any] = {}

    def __iter__(self) -> Iterator[ChatGenerationChunk]:
        for event in cast(EventStream, self._events):  # from a sync client
            yield from self._chat._chunks(event, self._state)

    async def __aiter__(self) -> AsyncIterator[ChatGenerationChunk]:
        async for event in cast(AsyncEventStream, self._events):  # from an async client
            for chunk in self._chat._chunks(event, self._state):
                yield chunk


class ChatAISearch(AISearchConnection, SearchOptionFields, BaseChatModel):
    """Chat model over AI Search chat completions: retrieval plus generation.

    Works on one instance (`instance_id`) or up to 10 instances of a namespace
    (`instance_ids`). The answer is the message content; `response_metadata` holds
    `model_name`, `finish_reason`, `model_provider="aisearch"` and `sources` (the
    retrieved chunks as dicts, in the order the answer's `[n]` markers refer to);
    `usage_metadata` comes from the service's usage. `message.content_blocks` yields a
    text block whose `annotations` are standard LangChain `Citation`s, one per marker.

    When streaming, the first chunk carries the sources (before any text), the last
    one (`chunk_position="last"`) carries usage, `model_name` and `finish_reason`; a
    stream cut before its end raises `aisearch.StreamInterruptedError`.

    With `public_endpoint=` (or `AISEARCH_PUBLIC_ENDPOINT`) it answers through a public
    endpoint with no account or token; `instance_id` is then not needed, and on a namespace
    endpoint `instance_ids` (optional) picks some of the instances it allows.

    The service has no tool calling and no structured output: `bind_tools`,
    `with_structured_output` and `create_agent(ChatAISearch(...), tools=[...])` raise a
    `NotImplementedError` saying so. For an agent, give another chat model the tools
    `AISearchSearchTool` / `AISearchAnswerTool`.

    Example:
        ```python
        from langchain_aisearch import ChatAISearch

        chat = ChatAISearch(instance_id="docs")
        answer = chat.invoke("How long should espresso extraction take?")
        print(answer.content, answer.response_metadata["sources"][0]["item"]["key"])
        ```
    """

    # the connection's config, but LangChain's base (listed last) sets extra="ignore"
    model_config = ConfigDict(extra="forbid")

    instance_id: str | None = None
    """The instance to answer from (or use `instance_ids`)."""

    instance_ids: list[str] | None = Field(default=None, min_length=1, max_length=10)
    """Up to 10 instances of `namespace` to answer from (namespace chat completions)."""

    model: str | None = None
    """Generation model; `None` uses the instance's configured model."""

    temperature: Temperature | None = None
    """Sampling temperature (0..5), sent as the request's `temperature` when set."""

    max_tokens: MaxTokens | None = None
    """Maximum tokens to generate (>= 1), sent as the request's `max_tokens` when set."""

    stop: StopSequences | None = None
    """Up to 4 stop sequences, sent as the request's `stop` when set."""

    k: int | None = Field(default=None, ge=1, le=50, strict=True)
    """Number of chunks to retrieve (`max_num_results`); `None` uses the instance's."""

    streaming: bool = Field(default=False, strict=True)
    """Stream internally on `invoke` (callbacks get tokens as they arrive)."""

    extra_body: dict[str, Any] | None = None
    """Extra top-level body keys merged last (the API accepts extra keys)."""

    cache: BaseCache | bool | None = Field(default=None, exclude=True)  # type: ignore[assignment]
    """LangChain's LLM response cache, as on every chat model (`False` turns it off). The AI
    Search similarity cache is `search_cache`."""

    search_cache: CacheOptions | None = None
    """AI Search similarity cache options (`ai_search_options.cache`), e.g.
    `{"enabled": False}`."""

    _option_fields: ClassVar[dict[str, str]] = {
        **SearchOptionFields._option_fields,
        "cache": "search_cache",
    }

    @field_validator("instance_id")
    @classmethod
    def _check_instance_id(cls, value: str | None) -> str | None:
        return None if value is None else validate_instance_id(value)

    @field_validator("instance_ids")
    @classmethod
    def _check_instance_ids(cls, value: list[str] | None) -> list[str] | None:
        for i, ident in enumerate(value or []):
            validate_instance_id(ident, f"instance_ids[{i}]")
        return value

    @model_validator(mode="after")
    def _check_target(self) -> ChatAISearch:
        if self.instance_id is not None and self.instance_ids is not None:
            msg = "set exactly one of instance_id or instance_ids, not both"
            raise ValueError(msg)
        self._search_options(max_num_results=self.k)
        return self

    @property
    def _llm_type(self) -> str:
        return "aisearch-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "instance_ids": self.instance_ids,
            "namespace": self.namespace,
            "model": self.model,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "k": self.k,
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider=MODEL_PROVIDER,
            ls_model_name=kwargs.get("model") or self.model or DEFAULT_MODEL_NAME,
            ls_model_type="chat",
        )
        temperature = kwargs.get("temperature", self.temperature)
        if temperature is not None:
            params["ls_temperature"] = temperature
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if max_tokens is not None:
            params["ls_max_tokens"] = max_tokens
        ls_stop = stop or self.stop
        if ls_stop:
            params["ls_stop"] = ls_stop
        return params

    # ------------------------------------------------------------------ no tools

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        """Not supported: AI Search has no tool calling (the error says what to use).

        Raises:
            NotImplementedError: Always; its message points to `AISearchSearchTool` and
                `AISearchAnswerTool` used with another chat model.
        """
        raise NotImplementedError(NO_TOOLS_MESSAGE.format(what="call tools (bind_tools)"))

    def with_structured_output(self, schema: Any, **kwargs: Any) -> Any:  # noqa: ARG002
        """Not supported: AI Search has no structured output (the error says what to use).

        Raises:
            NotImplementedError: Always; its message points to the AI Search tools.
        """
        msg = NO_TOOLS_MESSAGE.format(what="return structured output (with_structured_output)")
        raise NotImplementedError(msg)

    # ------------------------------------------------------------------ request

    def _request(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: Mapping[str, Any]
    ) -> _Call:
        unknown = set(kwargs) - _CALL_KWARGS
        if unknown:
            allowed = ", ".join(sorted(_CALL_KWARGS))
            msg = f"unexpected argument(s) {sorted(unknown)} (allowed per call: {allowed})"
            raise TypeError(msg)
        target: str | list[str] | None
        if self.instance_ids is not None:
            target = self.instance_ids
        elif self.instance_id is not None or self.uses_public_endpoint:
            target = self.instance_id  # through a public endpoint: a label only
        else:
            msg = (
                "ChatAISearch needs instance_id or instance_ids (or public_endpoint, or "
                "AISEARCH_PUBLIC_ENDPOINT)"
            )
            raise InvalidRequestError(msg)
        k = validate_k(kwargs["k"]) if kwargs.get("k") is not None else self.k
        if kwargs or stop is not None:
            _check_call(stop, kwargs)
        body = {**(self.extra_body or {}), **(kwargs.get("extra_body") or {})}
        effective_stop = stop if stop is not None else self.stop
        call = {
            "messages": messages_to_api(messages),
            "model": kwargs.get("model") or self.model,
            "options": self._search_options(max_num_results=k, filters=kwargs.get("filters")),
            "namespace": self.namespace,
            "extra_options": self.extra_options,
            "extra_body": body or None,
            "temperature": kwargs.get("temperature", self.temperature),
            "max_tokens": kwargs.get("max_tokens", self.max_tokens),
            "stop": list(effective_stop) if effective_stop else None,
        }
        return target, call

    @overload
    def _send(self, client: Callable[[], AISearchClient], call: _Call) -> ChatCompletion: ...
    @overload
    def _send(
        self, client: Callable[[], AsyncAISearchClient], call: _Call
    ) -> Awaitable[ChatCompletion]: ...
    @overload
    def _send(
        self, client: Callable[[], AISearchClient | AsyncAISearchClient], call: _Call, stream: bool
    ) -> EventStream | AsyncEventStream: ...

    def _send(
        self,
        client: Callable[[], AISearchClient | AsyncAISearchClient],
        call: _Call,
        stream: bool = False,
    ) -> ChatCompletion | Awaitable[ChatCompletion] | EventStream | AsyncEventStream:
        """Send a checked request (``_request``) to its endpoint, one way of the four.

        Args:
            client: Gets the sync or the async core client (after the checks).
            call: The target (one instance id, or a namespace's list) and the keyword arguments.
            stream: A stream rather than a completion.

        Returns:
            What the core method returns: a completion, a stream, or an awaitable of one.
        """
        target, kwargs = call
        sent: ChatCompletion | Awaitable[ChatCompletion] | EventStream | AsyncEventStream
        if self.uses_public_endpoint:
            public = self._public_for(client)
            method = ("stream_" if stream else "") + "chat_completions"
            ids = target if isinstance(target, list) else None
            kwargs = {k: v for k, v in kwargs.items() if k != "namespace"}
            sent = getattr(public, method)(kwargs.pop("messages"), instance_ids=ids, **kwargs)
            return sent
        kind = "namespace_chat_completions" if isinstance(target, list) else "chat_completions"
        sent = getattr(client(), ("stream_" if stream else "") + kind)(target, **kwargs)
        return sent

    def _result(self, completion: ChatCompletion) -> ChatResult:
        choice = completion.choices[0] if completion.choices else None
        metadata: dict[str, Any] = {
            "model_name": completion.model or self.model or DEFAULT_MODEL_NAME,
            "model_provider": MODEL_PROVIDER,
            "finish_reason": choice.finish_reason if choice is not None else None,
            "sources": [chunk_to_source(c, self.instance_id) for c in completion.chunks],
        }
        if completion.errors:
            metadata["errors"] = _errors(completion.errors)
        message = AIMessage(
            content=completion.content,
            id=completion.id or None,
            response_metadata=metadata,
            usage_metadata=_usage(completion.usage),
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    # ------------------------------------------------------------------ generate

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,  # noqa: ARG002
        **kwargs: Any,
    ) -> ChatResult:
        return self._result(self._send(self._get_client, self._request(messages, stop, kwargs)))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,  # noqa: ARG002
        **kwargs: Any,
    ) -> ChatResult:
        completion = await self._send(self._get_async_client, self._request(messages, stop, kwargs))
        return self._result(completion)

    # ------------------------------------------------------------------ stream

    def _chunk(self, event: StreamEvent, state: dict[str, Any]) -> ChatGenerationChunk | None:
        """Map one stream event to a chunk; `state` tracks the model and sources."""
        if isinstance(event, SourcesEvent):
            state["sources_sent"] = True
            state["sources"] = [chunk_to_source(c, self.instance_id) for c in event.chunks]
            metadata: dict[str, Any] = {
                "model_provider": MODEL_PROVIDER,
                "sources": state["sources"],
            }
            if event.errors:
                metadata["errors"] = _errors(event.errors)
            return ChatGenerationChunk(
                message=AIMessageChunk(content="", response_metadata=metadata)
            )
        if isinstance(event, TextDeltaEvent):
            state["model"] = event.model or state.get("model")
            if not event.text:
                return None
            state.setdefault("text", []).append(event.text)
            return ChatGenerationChunk(
                message=AIMessageChunk(
                    content=event.text, response_metadata={"model_provider": MODEL_PROVIDER}
                )
            )
        if isinstance(event, StreamEndEvent):
            model = event.model or state.get("model") or self.model or DEFAULT_MODEL_NAME
            end_metadata: dict[str, Any] = {
                "model_provider": MODEL_PROVIDER,
                "model_name": model,
                "finish_reason": event.finish_reason,
            }
            citations = find_citations("".join(state.get("text", [])), state.get("sources", []))
            if citations:
                end_metadata["citations"] = citations
            return ChatGenerationChunk(
                message=AIMessageChunk(
                    content="",
                    id=event.id or None,
                    usage_metadata=_usage(event.usage),
                    response_metadata=end_metadata,
                    chunk_position="last",
                )
            )
        return None

    def _chunks(self, event: StreamEvent, state: dict[str, Any]) -> list[ChatGenerationChunk]:
        """The chunks one stream event yields, the sources chunk always first.

        The step both `_stream` and `_astream` take for every event (no I/O): a stream
        without a sources event still starts with an empty-sources chunk.
        """
        chunk = self._chunk(event, state)
        if chunk is None:
            return []
        if state.get("sources_sent"):
            return [chunk]
        state["sources_sent"] = True
        no_sources = AIMessageChunk(
            content="", response_metadata={"model_provider": MODEL_PROVIDER, "sources": []}
        )
        return [ChatGenerationChunk(message=no_sources), chunk]

    def _chunk_stream(
        self,
        client: Callable[[], AISearchClient | AsyncAISearchClient],
        messages: list[BaseMessage],
        stop: list[str] | None,
        kwargs: Mapping[str, Any],
    ) -> _Chunks:
        """A streamed call whose events come out as chunks (sync or async, as the client)."""
        return _Chunks(self, self._send(client, self._request(messages, stop, kwargs), stream=True))

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for chunk in self._chunk_stream(self._get_client, messages, stop, kwargs):
            if run_manager is not None and chunk.text:  # a text delta
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        async for chunk in self._chunk_stream(self._get_async_client, messages, stop, kwargs):
            if run_manager is not None and chunk.text:  # a text delta
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk
