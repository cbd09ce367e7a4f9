"""Helpers shared by the OpenAI-compatible upstreams (embeddings and chat completions)."""

from __future__ import annotations

import re

import httpx

__all__ = ["endpoint", "upstream_error"]


def endpoint(base_url: str, path: str, error: type[Exception]) -> str:
    """Join an OpenAI-style base URL (with or without a trailing ``/v1``) and ``path``.

    Args:
        base_url: E.g. ``http://127.0.0.1:11434`` or ``http://127.0.0.1:11434/v1``.
        path: E.g. ``embeddings``.
        error: The exception class raised for a URL that is not http(s).

    Returns:
        The full endpoint URL.
    """
    base = base_url.rstrip("/")
    if not re.match(r"^https?://", base):
        raise error(f"base_url must start with http:// or https://, got {base_url!r}")
    if not base.endswith("/v1"):
        base += "/v1"
    return f"{base}/{path.lstrip('/')}"


def upstream_error(response: httpx.Response) -> str:
    """A short, key-free description of an upstream error response."""
    try:
        body = response.json()
        err = body.get("error", body) if isinstance(body, dict) else body
        message = err.get("message", err) if isinstance(err, dict) else err
        text = str(message)
    except ValueError:
        text = response.text
    text = " ".join(text.split())
    return text[:300] + ("…" if len(text) > 300 else "")
