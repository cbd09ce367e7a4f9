"""What the agent-facing adapters share: the ``folder`` argument and numbered passages.

Used by the tool spec (a model's ``folder`` argument) and the memory block (a tenant's folder):
:func:`check_folder` validates a folder, :func:`with_folder` adds it to a filter without ever
widening one, :func:`passages` renders nodes as numbered, attributed passages within a budget.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from llama_index.core.schema import NodeWithScore

from aisearch import InvalidRequestError
from aisearch._names import printable

__all__ = ["MAX_FOLDER_CHARS", "check_folder", "node_result", "passages", "with_folder"]

MAX_FOLDER_CHARS = 500
"""The longest ``folder`` accepted (AI Search compares only a value's first 64 UTF-8 bytes)."""


def check_folder(value: Any, name: str = "folder") -> str | None:
    """A folder as AI Search's ``folder`` attribute holds it: ``brewing/`` (``None``: any).

    A missing trailing ``/`` is added and leading ``/`` are dropped (``"/brewing"`` ->
    ``"brewing/"``); the folder of a key is its directory, so ``brewing/`` matches
    ``brewing/v60.md`` but not ``brewing/gear/kettle.md``.

    Raises:
        InvalidRequestError: Naming ``name``: not a string, empty, too long, with control
            characters or lone surrogates, or with a ``.`` / ``..`` segment.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequestError(
            f"{name}: must be a folder name such as 'docs/' or null (got {type(value).__name__})"
        )
    folder = value.strip().lstrip("/")
    if not folder:
        raise InvalidRequestError(
            f"{name}: must be a folder name such as 'docs/' (leave it out to search every folder)"
        )
    if len(folder) > MAX_FOLDER_CHARS:
        raise InvalidRequestError(
            f"{name}: must be at most {MAX_FOLDER_CHARS} characters (got {len(folder)})"
        )
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in folder):
        raise InvalidRequestError(
            f"{name}: must not contain control characters or lone surrogates "
            f"(got {printable(folder[:80])!r})"
        )
    if not folder.endswith("/"):
        folder += "/"
    if any(part in (".", "..") for part in folder[:-1].split("/")):
        raise InvalidRequestError(
            f"{name}: '.' and '..' are not folder names; give the folder as results show it, "
            f"such as 'docs/' (got {folder[:80]!r})"
        )
    return folder


def with_folder(
    filters: Mapping[str, Any] | None, folder: str | None, name: str = "folder"
) -> dict[str, Any] | None:
    """``filters`` (an AI Search filter) restricted to ``folder`` as well.

    The filter keeps every condition it has: a folder can only narrow it. When it already
    restricts ``folder``, another folder is refused rather than replacing it.

    Raises:
        InvalidRequestError: ``filters`` already restricts the folder to something else.
    """
    base = dict(filters) if filters else None
    if folder is None:
        return base
    if base is None:
        return {"folder": folder}
    if "folder" in base:
        current = base["folder"]
        if current == folder or current == {"$eq": folder}:
            return base
        raise InvalidRequestError(
            f"{name}: this search is limited to folder filter {current!r}; "
            f"{folder!r} is outside it (leave {name} out)"
        )
    return {**base, "folder": folder}


def _source(node: NodeWithScore) -> str:
    meta = node.node.metadata
    return str(meta.get("filename") or meta.get("source") or node.node.node_id)


def node_result(node: NodeWithScore) -> dict[str, Any]:
    """One retrieved chunk as plain data: ``key``, ``score``, ``content`` (and where from)."""
    meta = node.node.metadata
    out: dict[str, Any] = {
        "key": _source(node),
        "score": node.score,
        "content": node.node.get_content(),
    }
    if meta.get("folder") is not None:
        out["folder"] = meta["folder"]
    if meta.get("instance_id"):
        out["instance_id"] = meta["instance_id"]
    return out


def _header(n: int, node: NodeWithScore, multi: bool) -> str:
    meta = node.node.metadata
    where = f", instance {meta['instance_id']}" if multi and meta.get("instance_id") else ""
    score = f"score {node.score:.3f}" if node.score is not None else "no score"
    return f"[{n}] {_source(node)} ({score}{where})"


def passages(
    nodes: Sequence[NodeWithScore], max_chars: int, *, multi: bool = False
) -> tuple[str, int]:
    """Nodes as numbered passages (``[1] key (score 0.812)`` then the text), best first.

    At most ``max_chars`` characters in all: the passage that does not fit is cut (with
    `` ...``) when at least 100 characters of its text fit, else left out with every later
    one. The first passage is always shown, cut if it must be.

    Returns:
        The text and how many passages it holds (the first ``n`` nodes).
    """
    parts: list[str] = []
    used = 0
    for n, node in enumerate(nodes, start=1):
        header = _header(n, node, multi)
        text = node.node.get_content().strip()
        sep = 2 if parts else 0
        block = f"{header}\n{text}"
        if used + sep + len(block) <= max_chars:
            parts.append(block)
            used += sep + len(block)
            continue
        room = max_chars - used - sep - len(header) - 1 - len(" ...")
        if room >= 100 or not parts:
            cut = text[: max(room, 0)].rstrip()
            parts.append(f"{header}\n{cut} ...")
        break
    return "\n\n".join(parts), len(parts)
