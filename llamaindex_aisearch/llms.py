"""AI Search chat completions as a LlamaIndex ``LLM`` (retrieval-augmented generation)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Generator, Mapping, Sequence
from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.bridge.pydantic import ConfigDict, Field, PrivateAttr, ValidationError
from llama_index.core.callbacks import CallbackManager
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.llm import LLM
from llama_index.core.schema import NodeWithScore
from typing_extensions import Unpack

from aisearch import (
    ChatCompletion,
    InvalidRequestError,
)

from ._chat import GENERATION_KEYS, TARGET_KEYS, ChatKwargs, ChatTarget
from ._common import AISearchConnection, ConnectionKwargs, describe_validation_error
from ._mapping import to_aisearch_messages
from ._options import SEARCH_KEYS, check_option_keywords, coerce_search_options
from ._streams import (
    AsyncDeltas,
    Deltas,
    StreamState,
    acollect_sources,
    collect_sources,
    completion_metadata,
)

__all__ = ["AISearchLLM"]

DEFAULT_CONTEXT_WINDOW = 8192
"""Best guess of the prompt budget left to the caller.

AI Search's default generation model on Workers AI (Llama 3.3 70B fp8-fast) has a context
of about 24k tokens, but the service adds the retrieved chunks and its own system prompt
to every request, so only part of it is left for your messages.
"""
DEFAULT_NUM_OUTPUT = 1024


class AISearchLLM(LLM):
    """AI Search chat completions as a LlamaIndex LLM: every call is retrieval-augmented.

    For pipelines that want the service's own generation (grounded in the instance's
    content). ``chat``, ``complete``, ``stream_chat``, ``stream_complete`` and their async
    forms are native (sync client / async client). The retrieved chunks travel with every
    response: ``additional_kwargs["source_nodes"]`` (``NodeWithScore`` list, as the
    retriever maps them), ``additional_kwargs["sources"]`` (the raw chunks as JSON dicts),
    plus ``model``, ``usage`` and ``search_query``. When streaming, the first response
    already carries the sources. No tool calling (the service has none).

    Args:
        instance_id: The instance to ask (or ``instance_ids``, up to 10 in a namespace).
        instance_ids: Several instances of one namespace.
        model: Generation model (default: the instance's).
        namespace: The instances' namespace (default: the connection's).
        context_window: Prompt budget reported in ``metadata`` (see DEFAULT_CONTEXT_WINDOW).
        num_output: Output budget reported in ``metadata`` (``max_tokens`` when that is set).
        temperature: Sampling temperature, 0 to 5 (``None``: the model's default).
        max_tokens: Most tokens to generate, 1 to 2**31 - 1 (``None``: the model's default).
        stop: A stop sequence, or a list of at most 4.
        system_prompt: System message prepended to every chat.
        extra_body: Raw top-level request fields merged last (over the settings above).
        connection: A shared :class:`AISearchConnection`.
        callback_manager: LlamaIndex (legacy) callback manager.
        search_options: The ``ai_search_options`` as one mapping (instead of the
            individual search options).
        **kwargs: Search options and connection settings, as for the query engine.

    Example:
        .. code-block:: python

            llm = AISearchLLM(instance_id="docs")
            print(llm.complete("What grind size suits a French press?").text)
    """

    model_config = ConfigDict(hide_input_in_errors=True)

    instance_id: str | None = Field(default=None, description="The instance asked.")
    instance_ids: list[str] | None = Field(
        default=None, description="Several instances of one namespace."
    )
    model: str | None = Field(default=None, description="Generation model (None: instance's).")
    namespace: str | None = Field(default=None, description="Namespace of the instances.")
    context_window: int = Field(default=DEFAULT_CONTEXT_WINDOW, gt=0)
    num_output: int = Field(default=DEFAULT_NUM_OUTPUT, gt=0)
    temperature: float | None = Field(
        default=None, description="Sampling temperature, 0 to 5 (None: the model's default)."
    )
    max_tokens: int | None = Field(
        default=None, description="Most tokens to generate (None: the model's default)."
    )
    stop: str | list[str] | None = Field(
        default=None, description="A stop sequence, or a list of at most 4."
    )
    search_options: dict[str, Any] | None = Field(
        default=None, description="The ai_search_options sent (validated; read-only)."
    )

    _target: ChatTarget = PrivateAttr()

    def __init__(
        self,
        instance_id: str | None = None,
        *,
        context_window: int = DEFAULT_CONTEXT_WINDOW,
        num_output: int = DEFAULT_NUM_OUTPUT,
        temperature: float | None = None,
        max_tokens: int | None = None,
        stop: str | list[str] | None = None,
        system_prompt: str | None = None,
        callback_manager: CallbackManager | None = None,
        search_options: Mapping[str, Any] | None = None,
        **kwargs: Unpack[ChatKwargs],
    ) -> None:
        own = SEARCH_KEYS | TARGET_KEYS | set(ConnectionKwargs.__annotations__)
        llm_fields = {k: v for k, v in kwargs.items() if k not in own}  # e.g. from_dict()
        # LlamaIndex's LLM base would silently ignore unknown keywords
        check_option_keywords(
            type(self),
            kwargs,
            other=TARGET_KEYS | set(type(self).model_fields),
            groups={"generation settings": GENERATION_KEYS},
            note="; other raw request fields (e.g. top_p) go in extra_body={...}",
        )
        generation = {"temperature": temperature, "max_tokens": max_tokens, "stop": stop}
        target = ChatTarget(instance_id, {k: v for k, v in kwargs.items() if k in own}, generation)
        if search_options is not None:
            if target.options is not None:
                raise TypeError("pass search_options=... or individual search options, not both")
            target.config.replace(coerce_search_options(search_options))
        fields = {name: target.settings[name] for name in ("model", "namespace", *GENERATION_KEYS)}
        error: InvalidRequestError | None = None
        try:
            super().__init__(
                **llm_fields,
                **fields,
                instance_id=instance_id,
                instance_ids=target.instance_ids,
                context_window=context_window,
                num_output=num_output,
                system_prompt=system_prompt,
                callback_manager=callback_manager,
                search_options=target.options.to_json_dict() if target.options else None,
            )
        except ValidationError as exc:
            error = InvalidRequestError(describe_validation_error(exc))
        if error is not None:  # raised outside the handler: no pydantic __context__
            raise error
        self._target = target

    def __setattr__(self, name: str, value: Any) -> None:
        """Assignments of settings take effect on the next call, or raise.

        ``search_options`` (a mapping or ``SearchOptions``), ``model``, ``namespace``,
        ``temperature``, ``max_tokens`` and ``stop`` are validated and used by the next
        request; ``instance_id`` / ``instance_ids`` cannot change (build another LLM).

        Raises:
            aisearch.InvalidRequestError: A bad value, naming the field.
        """
        target: ChatTarget | None = (self.__pydantic_private__ or {}).get("_target")
        if target is not None and name in type(self).model_fields:
            if name == "search_options":
                options = coerce_search_options(value) if value is not None else None
                target.config.replace(options)
                value = options.to_json_dict() if options is not None else None
            elif name in ("model", "namespace", *GENERATION_KEYS):
                target.set(name, value)
            elif name in ("instance_id", "instance_ids"):
                raise InvalidRequestError(
                    f"{name}: cannot change after construction; build another AISearchLLM"
                )
            elif name in ("context_window", "num_output") and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise InvalidRequestError(f"{name}: must be a positive integer (got {value!r})")
        super().__setattr__(name, value)

    @classmethod
    def class_name(cls) -> str:
        """Return the class name used in serialisation."""
        return "AISearchLLM"

    @property
    def connection(self) -> AISearchConnection:
        """The connection (shared pooled clients) this LLM uses."""
        return self._target.connection

    def __getstate__(self) -> dict[Any, Any]:
        # LlamaIndex's BaseComponent would drop the connection and unpickle a broken LLM;
        # refuse with the connection's reason. to_dict()/from_dict() serialise without secrets.
        self.connection.__getstate__()
        return super().__getstate__()

    @property
    def metadata(self) -> LLMMetadata:
        """LLM metadata: a chat model, no function calling."""
        return LLMMetadata(
            context_window=self.context_window,
            num_output=self.max_tokens if self.max_tokens is not None else self.num_output,
            is_chat_model=True,
            is_function_calling_model=False,
            model_name=self.model or "ai-search-default",
            system_role=MessageRole.SYSTEM,
        )

    # -- helpers ---------------------------------------------------------------------

    def _messages(self, messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
        return to_aisearch_messages(self._extend_messages(list(messages)))

    def _query_of(self, messages: Sequence[ChatMessage]) -> str | None:
        for message in reversed(messages):
            if message.role == MessageRole.USER:
                return message.content
        return None

    def _extras(self, nodes: list[NodeWithScore], metadata: dict[str, Any]) -> dict[str, Any]:
        return {
            **metadata,
            "source_nodes": nodes,
            "sources": [
                {
                    "id": n.node.node_id,
                    "score": n.score,
                    "text": n.node.get_content(),
                    "metadata": n.node.metadata,
                }
                for n in nodes
            ],
        }

    def _chat_response(self, completion: ChatCompletion, query: str | None) -> ChatResponse:
        nodes, metadata = completion_metadata(
            completion, query=query, instance_id=self._target.instance_id
        )
        return ChatResponse(
            message=ChatMessage(role=MessageRole.ASSISTANT, content=completion.content),
            raw=completion.model_dump(mode="json"),
            additional_kwargs=self._extras(nodes, metadata),
        )

    # -- chat --------------------------------------------------------------------------

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:  # noqa: ARG002
        """Chat completion grounded in the instance's content."""
        completion = self._target.complete(self._messages(messages))
        return self._chat_response(completion, self._query_of(messages))

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:  # noqa: ARG002
        """Async form of :meth:`chat`."""
        completion = await self._target.acomplete(self._messages(messages))
        return self._chat_response(completion, self._query_of(messages))

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:  # noqa: ARG002
        """Stream a chat completion; every response carries the sources."""
        query = self._query_of(messages)
        state, events = collect_sources(
            self._target.stream(self._messages(messages)),
            instance_id=self._target.instance_id,
            query=query,
        )
        return self._gen(state, events)

    @llm_chat_callback()
    async def astream_chat(
        self,
        messages: Sequence[ChatMessage],
        **kwargs: Any,  # noqa: ARG002
    ) -> ChatResponseAsyncGen:
        """Async form of :meth:`stream_chat`."""
        query = self._query_of(messages)
        state, events = await acollect_sources(
            self._target.astream(self._messages(messages)),
            instance_id=self._target.instance_id,
            query=query,
        )
        return self._agen(state, events)

    def _gen(self, state: StreamState, deltas: Deltas) -> Generator[ChatResponse, None, None]:
        text = ""
        with contextlib.closing(deltas):
            for delta in deltas:
                text += delta or ""
                yield self._delta(state, text, delta or "")

    async def _agen(
        self, state: StreamState, deltas: AsyncDeltas
    ) -> AsyncGenerator[ChatResponse, None]:
        text = ""
        async with contextlib.aclosing(deltas):
            async for delta in deltas:
                text += delta or ""
                yield self._delta(state, text, delta or "")

    def _delta(self, state: StreamState, text: str, delta: str) -> ChatResponse:
        return ChatResponse(
            message=ChatMessage(role=MessageRole.ASSISTANT, content=text),
            delta=delta,
            additional_kwargs=self._extras(state.nodes, dict(state.metadata)),
        )

    # -- completion --------------------------------------------------------------------

    def _prompt_messages(self, prompt: str, formatted: bool) -> list[ChatMessage]:
        if not formatted and self.completion_to_prompt is not None:
            prompt = self.completion_to_prompt(prompt)
        return [ChatMessage(role=MessageRole.USER, content=prompt)]

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:  # noqa: ARG002
        """Completion of one prompt (sent as a user message)."""
        return _completion(self.chat(self._prompt_messages(prompt, formatted)))

    @llm_completion_callback()
    async def acomplete(
        self,
        prompt: str,
        formatted: bool = False,
        **kwargs: Any,  # noqa: ARG002
    ) -> CompletionResponse:
        """Async form of :meth:`complete`."""
        return _completion(await self.achat(self._prompt_messages(prompt, formatted)))

    @llm_completion_callback()
    def stream_complete(
        self,
        prompt: str,
        formatted: bool = False,
        **kwargs: Any,  # noqa: ARG002
    ) -> CompletionResponseGen:
        """Stream a completion; every response carries the sources."""
        stream = self.stream_chat(self._prompt_messages(prompt, formatted))

        def gen() -> CompletionResponseGen:
            for response in stream:
                yield _completion(response, streamed=True)

        return gen()

    @llm_completion_callback()
    async def astream_complete(
        self,
        prompt: str,
        formatted: bool = False,
        **kwargs: Any,  # noqa: ARG002
    ) -> CompletionResponseAsyncGen:
        """Async form of :meth:`stream_complete`."""
        stream = await self.astream_chat(self._prompt_messages(prompt, formatted))

        async def gen() -> CompletionResponseAsyncGen:
            async for response in stream:
                yield _completion(response, streamed=True)

        return gen()


def _completion(response: ChatResponse, *, streamed: bool = False) -> CompletionResponse:
    """A chat response as a completion response (streamed: with its delta, without raw)."""
    if streamed:
        return CompletionResponse(
            text=response.message.content or "",
            delta=response.delta,
            additional_kwargs=response.additional_kwargs,
        )
    return CompletionResponse(
        text=response.message.content or "",
        raw=response.raw,
        additional_kwargs=response.additional_kwargs,
    )
