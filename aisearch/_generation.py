"""The typed generation settings of the chat methods: ``temperature``, ``max_tokens``, ``stop``.

API.md documents none of their bounds; these are local choices, the same as the LangChain
adapter's and the local server's: ``temperature`` 0 to 5 (Workers AI's range),
``max_tokens`` 1 to 2**31 - 1, ``stop`` one string or a list of at most 4 strings (the
chat-completions limit). Like every other option they are checked before any network call,
and the error names the field.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from aisearch._exceptions import InvalidRequestError
from aisearch._params import check_int_range as _check_int_range

__all__ = ["MAX_STOP_SEQUENCES", "MAX_TEMPERATURE", "MAX_TOKENS", "check_generation"]

MAX_TEMPERATURE = 5.0
MAX_TOKENS = 2**31 - 1
MAX_STOP_SEQUENCES = 4


def check_generation(
    temperature: float | None, max_tokens: int | None, stop: str | Sequence[str] | None
) -> dict[str, Any]:
    """The body fields of the generation settings that are set, checked.

    Args:
        temperature: Sampling temperature, a finite number from 0 to 5.
        max_tokens: Most tokens to generate, an integer from 1 to 2**31 - 1.
        stop: A stop sequence, or a list of at most 4.

    Returns:
        ``{"temperature": ..., "max_tokens": ..., "stop": ...}`` without the unset ones.

    Raises:
        InvalidRequestError: Naming the field, for a wrong type or a value out of range.
    """
    body: dict[str, Any] = {}
    if temperature is not None:
        if (
            isinstance(temperature, bool)
            or not isinstance(temperature, (int, float))
            or not math.isfinite(temperature)
            or not 0 <= temperature <= MAX_TEMPERATURE
        ):
            raise InvalidRequestError(
                f"temperature: must be a number between 0 and 5 (got {temperature!r})"
            )
        body["temperature"] = temperature
    if max_tokens is not None:
        body["max_tokens"] = _check_int_range(max_tokens, "max_tokens", 1, MAX_TOKENS)
    if stop is not None:
        if isinstance(stop, str):
            body["stop"] = stop
        elif (
            isinstance(stop, Sequence)
            and len(stop) <= MAX_STOP_SEQUENCES
            and all(isinstance(s, str) for s in stop)
        ):
            body["stop"] = list(stop)
        else:
            got = f"{len(stop)} items" if isinstance(stop, Sequence) else type(stop).__name__
            raise InvalidRequestError(
                f"stop: must be a string or a list of at most {MAX_STOP_SEQUENCES} strings "
                f"(got {got})"
            )
    return body
