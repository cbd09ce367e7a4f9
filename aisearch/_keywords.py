"""The parameters the public methods share: declared, documented and checked once.

The keyword options of the search, chat and legacy methods are ``TypedDict``s taken as
``**params: Unpack[...]`` (PEP 692): mypy checks every call site, ``takes`` shows them in the
signature, ``check_keywords`` rejects an unknown one with ``TypeError`` as Python would.
Their documentation is written once too, in ``PARAM_DOCS``.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypedDict, TypeVar

from aisearch._names import closest_names
from aisearch._params import Messages, Options

__all__ = [
    "PARAM_DOCS",
    "ChatParams",
    "LegacyChatParams",
    "LegacyParams",
    "SearchParams",
    "check_keywords",
    "takes",
]

_F = TypeVar("_F", bound=Callable[..., Any])


class _BodyParams(TypedDict, total=False):
    options: Options
    namespace: str | None
    extra_options: Mapping[str, Any] | None
    extra_body: Mapping[str, Any] | None


class SearchParams(_BodyParams, total=False):
    """The keyword options of ``search`` and ``namespace_search``."""

    messages: Messages | None


class ChatParams(_BodyParams, total=False):
    """The keyword options of the four chat methods."""

    model: str | None
    temperature: float | None
    max_tokens: int | None
    stop: str | Sequence[str] | None


class LegacyParams(TypedDict, total=False):
    """The keyword options of ``legacy_search``."""

    filters: Mapping[str, Any] | None
    max_num_results: int | None
    score_threshold: float | None
    rewrite_query: bool | None
    reranking: bool | Mapping[str, Any] | None
    extra_body: Mapping[str, Any] | None


class LegacyChatParams(LegacyParams, total=False):
    """The keyword options of ``legacy_ai_search`` and ``stream_legacy_ai_search``."""

    model: str | None
    system_prompt: str | None


PARAM_DOCS = {
    "messages": "A conversation to search with (either this or ``query``).",
    "model": "Generation model (the instance's when ``None``).",
    "system_prompt": "Generation system prompt.",
    "options": "``SearchOptions`` or a mapping of the same shape.",
    "namespace": "Namespace (the client's default when ``None``).",
    "filters": "A legacy ``{type,key,value}`` filter, or Vectorize syntax (translated).",
    "max_num_results": "1 to 50.",
    "score_threshold": "0 to 1 (sent as ``ranking_options.score_threshold``).",
    "rewrite_query": "Rewrite the query with an LLM.",
    "reranking": '``True``/``False`` or ``{"enabled": ..., "model": ...}``.',
    "extra_options": "Merged into ``ai_search_options`` last (escape hatch).",
    "extra_body": "Merged into the top-level body last (escape hatch).",
    "temperature": "Sampling temperature, 0 to 5 (a local bound; the API documents none).",
    "max_tokens": "Most tokens to generate, 1 to 2**31 - 1.",
    "stop": "A stop sequence, or a list of at most 4.",
}
"""One line of documentation per shared keyword option, for every method that takes it."""


def takes(spec: type) -> Callable[[_F], _F]:
    """Declare that a method takes the keys of ``spec`` (a ``TypedDict``) as ``**params``.

    ``inspect.signature`` and ``help()`` then show each key as a keyword-only parameter
    defaulting to ``None`` (in ``PARAM_DOCS`` order), and the docstring's ``**params:`` line
    becomes one ``Args`` line per key. The method itself is returned, not wrapped.
    """
    order = list(PARAM_DOCS)
    keys = sorted(spec.__annotations__.items(), key=lambda item: order.index(item[0]))
    named = [
        inspect.Parameter(
            k, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=a.__forward_arg__
        )
        for k, a in keys
    ]
    lines = [f"{key}: {PARAM_DOCS[key]}" for key, _ in keys]

    def apply(fn: _F) -> _F:
        sig = inspect.signature(fn)
        fixed = [p for p in sig.parameters.values() if p.kind is not p.VAR_KEYWORD]
        fn.__signature__ = sig.replace(parameters=[*fixed, *named])  # type: ignore[attr-defined]
        doc = fn.__doc__ or ""
        fn.__doc__ = re.sub(
            r"^( *)\*\*params:.*$",
            lambda m: "\n".join(m[1] + line for line in lines),
            doc,
            flags=re.M,
        )
        return fn

    return apply


def check_keywords(params: Mapping[str, Any], spec: type, method: str) -> None:
    """Raise ``TypeError`` for a keyword that is no key of ``spec``, as Python would.

    The message names ``method`` (``"AISearchClient.search"``), the first unexpected keyword
    and the closest allowed one.
    """
    unexpected = params.keys() - spec.__annotations__.keys()
    if unexpected:
        key = min(unexpected)
        near = closest_names(key, spec.__annotations__)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise TypeError(f"{method}() got an unexpected keyword argument {key!r}{hint}")
