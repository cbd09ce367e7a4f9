"""The model behind the LlamaIndex agent recipes: a real one given credentials, else a script.

``agent_llm(plan)`` returns the model ``AISEARCH_AGENT_MODEL`` names as ``provider:model``
(``openai:gpt-4.1-mini`` with ``OPENAI_API_KEY`` and ``pip install llama-index-llms-openai``,
or ``anthropic:claude-sonnet-4-5`` with ``ANTHROPIC_API_KEY`` and ``pip install
llama-index-llms-anthropic``); unset, a scripted stand-in: ``plan(question)`` says which tool
call to make for a user message (``None``: answer at once), and the answer is the sentence of
the given passages that best matches the question, cited by its ``[n]``.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, TextBlock, ToolCallBlock
from llama_index.core.llms import LLM, MessageRole
from llama_index.core.llms.mock import MockFunctionCallingLLM

Plan = Callable[[str], "tuple[str, dict[str, Any]] | None"]


def answer_from(question: str, passages: str) -> str:
    """The scripted model's answer: the passage sentence sharing most words with the question
    (figures count double), cited by the passage's number."""
    words = {w for w in re.findall(r"[a-z]{4,}", question.lower())}

    def score(sentence: str) -> int:
        found = set(re.findall(r"[a-z]{4,}", sentence.lower()))
        return len(words & found) + 2 * any(c.isdigit() for c in sentence)

    best: tuple[int, str, str] = (-1, "", "")
    for passage in re.split(r"\n\s*\n(?=\[\d+\] )", passages.strip()):
        header, _, body = passage.partition("\n")
        number = re.match(r"\[(\d+)\]", header)
        text = " ".join(body.replace("*", "").replace("|", " ").replace("#", "").split())
        for sentence in re.split(r"(?<=[.!?])\s+", text):
            if number and len(sentence) < 300 and score(sentence) > best[0]:
                best = (score(sentence), number.group(1), sentence)
    return f"{best[2]} [{best[1]}]"


def scripted_llm(plan: Plan) -> MockFunctionCallingLLM:
    """Stands in for a tool-calling model: call the tool ``plan`` names, then cite."""

    def respond(messages: list[ChatMessage], **kwargs: Any) -> ChatMessage:  # noqa: ARG001
        last_user = max(i for i, m in enumerate(messages) if m.role == MessageRole.USER)
        question = messages[last_user].content or ""
        results = [m for m in messages[last_user:] if m.role == MessageRole.TOOL]
        if results:  # the search tool answered in this turn: cite its results
            text = answer_from(question, str(results[-1].content))
        elif (step := plan(question)) is not None:  # the plan calls a tool first
            name, args = step
            call = ToolCallBlock(tool_call_id="call-1", tool_name=name, tool_kwargs=args)
            return ChatMessage(role=MessageRole.ASSISTANT, blocks=[call])
        else:  # answer from the memory block's passages
            system = "\n".join(m.content or "" for m in messages if m.role == MessageRole.SYSTEM)
            context = re.search(r"<aisearch_context>\n(.*?)\n</aisearch_context>", system, re.S)
            assert context is not None, system
            text = answer_from(question, context.group(1).split("\n\n", 1)[1])  # no header
        return ChatMessage(role=MessageRole.ASSISTANT, blocks=[TextBlock(text=text)])

    return MockFunctionCallingLLM(response_generator=respond, is_chat_model=True)


PROVIDERS = {
    "openai": ("llama_index.llms.openai", "OpenAI", "llama-index-llms-openai"),
    "anthropic": ("llama_index.llms.anthropic", "Anthropic", "llama-index-llms-anthropic"),
}


def agent_llm(plan: Plan) -> tuple[LLM, str]:
    """The model ``AISEARCH_AGENT_MODEL`` names (``provider:model``), else the scripted one."""
    name = os.environ.get("AISEARCH_AGENT_MODEL", "").strip()
    if not name:
        return scripted_llm(plan), "a scripted stand-in (no LLM, no network)"
    provider, _, model = name.partition(":")
    if provider not in PROVIDERS or not model:
        raise SystemExit(
            f"AISEARCH_AGENT_MODEL={name!r}: use provider:model with provider one of "
            f"{', '.join(PROVIDERS)} (e.g. openai:gpt-4.1-mini)"
        )
    module, cls, package = PROVIDERS[provider]
    try:
        llm_class = getattr(importlib.import_module(module), cls)
    except ImportError:
        raise SystemExit(f"AISEARCH_AGENT_MODEL={name!r} needs pip install {package}") from None
    return llm_class(model=model, temperature=0), f"{name} (a real model)"


def cited(answer: str, keys: list[str]) -> list[str]:
    """``[n] key`` for each passage the answer cites (``keys[n - 1]`` is passage ``n``)."""
    numbers = sorted({int(n) for n in re.findall(r"\[(\d+)\]", answer)})
    return [f"[{n}] {keys[n - 1]}" for n in numbers if 1 <= n <= len(keys)]
