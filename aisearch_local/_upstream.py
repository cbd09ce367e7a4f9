"""Helpers shared by the OpenAI-compatible upstreams (embeddings and chat completions)."""

from __future__ import annotations

import re

import httpx

__all__ = ["checked_key", "endpoint", "parse_openai_spec", "transport_error", "upstream_error"]


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


def checked_key(api_key: str | None, error: type[Exception]) -> str | None:
    """Strip an upstream key and check it can travel in a header (never echoing it)."""
    if api_key is None:
        return None
    api_key = api_key.strip()
    if not re.fullmatch(r"[\x21-\x7e]+", api_key):
        raise error(
            "upstream api_key: must be printable ASCII without spaces or control characters "
            "(the value is not shown)"
        )
    return api_key


def transport_error(exc: httpx.HTTPError) -> str:
    """Describe a transport error; a protocol error's text may quote a header, so drop it."""
    if isinstance(exc, httpx.LocalProtocolError):
        return type(exc).__name__
    return f"{type(exc).__name__}: {exc}"


def parse_openai_spec(spec: str) -> tuple[str, str]:
    """Split ``"openai:MODEL@BASE_URL"`` into ``(model, base_url)``.

    The model may itself contain ``@`` (e.g. ``@cf/baai/bge-m3``): the split happens at the
    last ``@`` followed by ``http://`` or ``https://``.

    Raises:
        ValueError: The spec does not have that form.
    """
    rest = spec[len("openai:") :] if spec.startswith("openai:") else spec
    matches = list(re.finditer(r"@(?=https?://)", rest))
    match = matches[-1] if matches else None
    if match is None or match.start() == 0:
        raise ValueError(
            f"expected 'openai:MODEL@BASE_URL' (e.g. openai:nomic-embed-text@http://127.0.0.1:11434),"
            f" got {spec!r}"
        )
    return rest[: match.start()], rest[match.start() + 1 :]
