"""The similarity cache of chat completions (``ai_search_options.cache``, API.md section 9).

A local stand-in for AI Gateway's semantic cache: prompts match on word 3-shingle Jaccard
similarity against the threshold named by ``cache_threshold``.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from typing import Generic, TypeVar

__all__ = ["CACHE_THRESHOLDS", "ChatCache"]

V = TypeVar("V")

CACHE_THRESHOLDS = {
    "super_strict_match": 1.0,
    "close_enough": 0.8,
    "flexible_friend": 0.6,
    "anything_goes": 0.4,
}
"""The ``cache_threshold`` names and the prompt similarity each needs."""


def _shingles(text: str) -> frozenset[str]:
    words = re.findall(r"\w+", text.lower())
    if len(words) < 3:
        return frozenset([" ".join(words)])
    return frozenset(" ".join(words[i : i + 3]) for i in range(len(words) - 2))


class ChatCache(Generic[V]):
    """The similarity cache of chat completions (word 3-shingle Jaccard, not MinHash).

    An entry matches when everything but the prompt is identical (instance versions, model,
    options, limits) and the prompts' Jaccard similarity reaches the threshold of the
    requested ``cache_threshold``. Writes to an instance change its version and so invalidate
    its entries.
    """

    def __init__(self, max_entries: int = 512, ttl_s: float = 30 * 24 * 3600) -> None:
        self._entries: OrderedDict[tuple[str, str], tuple[frozenset[str], float, V]] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_entries
        self._ttl = ttl_s

    def get(self, context: str, prompt: str, threshold: str) -> V | None:
        """Return a cached value for a similar prompt in the same context, or None."""
        need = CACHE_THRESHOLDS[threshold]
        sh = _shingles(prompt)
        now = time.monotonic()
        with self._lock:
            exact = self._entries.get((context, prompt))
            if exact is not None and now - exact[1] < self._ttl:
                return exact[2]
            if need >= 1.0:
                return None
            for (ctx, _p), (other, ts, value) in reversed(self._entries.items()):
                if ctx != context or now - ts >= self._ttl:
                    continue
                inter = len(sh & other)
                union = len(sh | other) or 1
                if inter / union >= need:
                    return value
        return None

    def put(self, context: str, prompt: str, value: V) -> None:
        """Store a value."""
        with self._lock:
            self._entries[(context, prompt)] = (_shingles(prompt), time.monotonic(), value)
            self._entries.move_to_end((context, prompt))
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
