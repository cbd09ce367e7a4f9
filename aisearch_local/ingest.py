"""Document ingestion helpers: text extraction, chunking, and source-folder scanning.

Everything here is pure (no HTTP, no database): the server calls :func:`extract_text` and
:func:`chunk_text` for every item, and :func:`scan_source_dir` for ``--source DIR``.

* Formats: Markdown (``.md``, ``.markdown``), plain text (``.txt``), HTML (``.html``,
  ``.htm``; text extracted with the standard library's :mod:`html.parser`) and JSON
  (``.json``; flattened into ``path: value`` lines). Anything else, a file over
  :data:`MAX_FILE_BYTES`, bytes that are not UTF-8, or a document with no text raises
  :class:`IngestError`, whose message is meant for the item's ``error`` field.
* Chunking: ``chunk_size`` counts whitespace-delimited words (the local approximation of model
  tokens) and ``chunk_overlap`` is a percentage (0 to 30), as in the instance configuration.
"""

from __future__ import annotations

import bisect
import errno
import json
import logging
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from aisearch_local.errors import ValidationError
from aisearch_local.jsonsafe import loads_strict, scrub_text

__all__ = [
    "MAX_CHUNK_OVERLAP",
    "MAX_CHUNK_SIZE",
    "MAX_FILE_BYTES",
    "MAX_OTHER_FILE_BYTES",
    "MIN_CHUNK_SIZE",
    "SIDECAR_SUFFIX",
    "SUPPORTED_EXTENSIONS",
    "TEXT_CODE_EXTENSIONS",
    "ChunkSpan",
    "IngestError",
    "SourceFile",
    "builtin_attributes",
    "chunk_text",
    "extract_text",
    "file_limit",
    "scan_source_dir",
    "size_problem",
]

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
MAX_FILE_BYTES = 10 * MiB
"""Largest accepted document of any format (API.md 18.1: plain text, code and PDFs)."""
MAX_OTHER_FILE_BYTES = 4 * MiB
"""Largest accepted document of every other format (HTML, office documents, images...)."""

TEXT_CODE_EXTENSIONS = frozenset(
    {
        # plain text and markup read as text
        ".txt", ".md", ".markdown", ".mdx", ".rst", ".json", ".jsonl", ".csv", ".tsv", ".xml",
        ".yaml", ".yml", ".toml", ".ini", ".cfg", ".log", ".tex",
        # code
        ".py", ".js", ".mjs", ".cjs", ".ts", ".tsx", ".jsx", ".java", ".kt", ".go", ".rs", ".c",
        ".h", ".cc", ".cpp", ".hpp", ".cs", ".rb", ".php", ".swift", ".scala", ".sh", ".bash",
        ".sql", ".css", ".scss", ".lua", ".r", ".pl", ".dart", ".vue", ".svelte",
    }
)  # fmt: skip
"""Plain text and code: the 10 MiB limit; so do PDFs on an instance with
``indexing_options.use_ocr``; every other format gets 4 MiB (API.md 18.1).

Which extensions count as "plain text / code" is a local reading of the docs' wording."""

SUPPORTED_EXTENSIONS = frozenset({".md", ".markdown", ".txt", ".html", ".htm", ".json"})
"""Extensions (lower case, with the dot) that :func:`extract_text` understands."""

SIDECAR_SUFFIX = ".meta.json"
"""``<file>.meta.json`` next to a source file holds that file's custom metadata."""

MIN_CHUNK_SIZE = 16
MAX_CHUNK_SIZE = 4096
MAX_CHUNK_OVERLAP = 30


class IngestError(Exception):
    """A document cannot be indexed; ``str(error)`` names the key and the reason."""


# --------------------------------------------------------------------------------------------
# Extraction
# --------------------------------------------------------------------------------------------


def _extension(key: str) -> str:
    return PurePosixPath(key).suffix.lower()


def file_limit(key: str, *, use_ocr: bool = False) -> int:
    """The largest size of a document named ``key``, by its extension (case-insensitively).

    10 MiB for plain text and code (:data:`TEXT_CODE_EXTENSIONS`) and, with ``use_ocr``
    (the instance's ``indexing_options.use_ocr``), for PDFs; 4 MiB for everything else.
    """
    ext = _extension(key)
    if ext in TEXT_CODE_EXTENSIONS or (use_ocr and ext == ".pdf"):
        return MAX_FILE_BYTES
    return MAX_OTHER_FILE_BYTES


def size_problem(key: str, size: int, *, use_ocr: bool = False) -> str | None:
    """Why a document of ``size`` bytes named ``key`` is too large, or None when it is not."""
    limit = file_limit(key, use_ocr=use_ocr)
    if size <= limit:
        return None
    if limit == MAX_FILE_BYTES:
        return f"{key}: file is larger than the {limit} byte (10 MiB) limit"
    return (
        f"{key}: file is larger than the {limit} byte (4 MiB) limit of its format "
        "(10 MiB applies to plain text, code, and PDFs with indexing_options.use_ocr)"
    )


def _decode(key: str, data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise IngestError(
            f"{key}: not valid UTF-8 text (undecodable byte at offset {exc.start})"
        ) from exc
    return text.replace("\r\n", "\n").replace("\r", "\n")


_BLOCK_TAGS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "body",
        "br",
        "dd",
        "details",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
    ]
)
_SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "head", "svg", "iframe"})
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_VOID_TAGS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)


class _HTMLText(HTMLParser):
    """Collects visible text as paragraphs; keeps the ``<title>`` separately."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title_parts: list[str] = []
        self.blocks: list[str] = []
        self._current: list[str] = []
        self._skip_depth = 0
        self._in_title = False
        self._pre_depth = 0

    def _flush(self) -> None:
        raw = "".join(self._current)
        self._current = []
        text = raw.strip("\n") if self._pre_depth else " ".join(raw.split())
        if text.strip():
            self.blocks.append(text)

    def handle_starttag(self, tag: str, _attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
            return
        if tag in _SKIP_TAGS:
            if tag != "head":
                self._skip_depth += 1
            return
        if tag in _BLOCK_TAGS:
            self._flush()
        if tag == "pre":
            self._pre_depth += 1

    def handle_startendtag(self, tag: str, _attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
            return
        if tag in _SKIP_TAGS:
            if tag != "head" and self._skip_depth:
                self._skip_depth -= 1
            return
        if tag in _BLOCK_TAGS and tag not in _VOID_TAGS:
            self._flush()
        if tag == "pre" and self._pre_depth:
            self._pre_depth -= 1

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title_parts.append(data)
        elif not self._skip_depth:
            self._current.append(data)

    def text(self) -> str:
        self._flush()
        title = " ".join("".join(self.title_parts).split())
        blocks = list(self.blocks)
        if title and (not blocks or blocks[0] != title):
            blocks.insert(0, title)
        return "\n\n".join(blocks)


def _html_to_text(text: str) -> str:
    parser = _HTMLText()
    parser.feed(text)
    parser.close()
    return parser.text()


MAX_JSON_DEPTH = 100
"""Deepest nesting a ``.json`` document may have; a deeper one becomes an item with an error."""


class _TooDeep(Exception):
    pass


def _flatten_json(value: Any, path: str, lines: list[str], depth: int = 1) -> None:
    if isinstance(value, (dict, list)) and depth > MAX_JSON_DEPTH:
        raise _TooDeep
    if isinstance(value, dict):
        if not value and path:
            lines.append(f"{path}: {{}}")
        for k, v in value.items():
            _flatten_json(v, f"{path}.{k}" if path else str(k), lines, depth + 1)
    elif isinstance(value, list):
        if not value and path:
            lines.append(f"{path}: []")
        scalars = all(not isinstance(v, (dict, list)) for v in value)
        if value and scalars:
            joined = ", ".join(_json_scalar(v) for v in value)
            lines.append(f"{path}: {joined}" if path else joined)
        else:
            for i, v in enumerate(value):
                _flatten_json(v, f"{path}[{i}]", lines, depth + 1)
    else:
        lines.append(f"{path}: {_json_scalar(value)}" if path else _json_scalar(value))


def _json_scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _json_to_text(key: str, text: str) -> str:
    too_deep = f"{key}: the JSON document nests deeper than {MAX_JSON_DEPTH} levels"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise IngestError(
            f"{key}: invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from exc
    except RecursionError:
        raise IngestError(too_deep) from None
    except ValueError as exc:  # an integer longer than Python's 4300-digit conversion limit
        raise IngestError(f"{key}: invalid JSON ({exc})") from None
    lines: list[str] = []
    try:
        _flatten_json(value, "", lines)
    except _TooDeep:
        raise IngestError(too_deep) from None
    # "\ud800" escapes decode to lone surrogates, which cannot be stored as UTF-8 text
    return scrub_text("\n".join(lines))


def extract_text(key: str, data: bytes) -> str:
    r"""Extract indexable text from a document.

    Args:
        key: The item key (its extension selects the format, case-insensitively).
        data: The raw bytes.

    Returns:
        The text: Markdown and plain text as decoded (newlines normalised to ``\n``), HTML as
        paragraphs separated by blank lines with the ``<title>`` first (scripts, styles and
        ``<head>`` skipped), JSON as one ``dotted.path: value`` line per leaf (arrays of scalars
        joined with commas).

    Raises:
        IngestError: Unsupported extension, over :func:`file_limit`, not UTF-8, invalid
            JSON, or no text left after extraction.
    """
    ext = _extension(key)
    if ext not in SUPPORTED_EXTENSIONS:
        shown = ext or "(none)"
        allowed = ", ".join(sorted(SUPPORTED_EXTENSIONS))
        raise IngestError(f"{key}: unsupported file type {shown}; supported: {allowed}")
    problem = size_problem(key, len(data))
    if problem is not None:
        raise IngestError(problem)
    text = _decode(key, data)
    if ext in (".html", ".htm"):
        text = _html_to_text(text)
    elif ext == ".json":
        text = _json_to_text(key, text)
    if not text.strip():
        raise IngestError(f"{key}: no text to index (the document is empty after extraction)")
    return text


# --------------------------------------------------------------------------------------------
# Chunking
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChunkSpan:
    """One chunk: ``text == source[start:end]`` (character offsets into the extracted text)."""

    text: str
    start: int
    end: int


_WHITESPACE = np.array([c for c in range(0x3001) if chr(c).isspace()], dtype=np.uint32)
_IS_WORD = np.ones(0x3002, dtype=bool)
_IS_WORD[_WHITESPACE] = False
_SENTENCE_PUNCT = np.array([ord(c) for c in ".!?:;"], dtype=np.uint32)
_CLOSERS = np.array([ord(c) for c in "\"')]\u201d\u2019"], dtype=np.uint32)


def _code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def _word_spans(text: str) -> tuple[list[int], list[int]]:
    r"""Character offsets of the starts and (exclusive) ends of the whitespace-delimited words.

    Vectorised equivalent of ``[m.span() for m in re.finditer(r"\S+", text)]``: whitespace is
    exactly what ``str.isspace`` accepts.
    """
    if not text:
        return [], []
    # a table lookup (every code point past U+3000 is a word character): np.isin sorted the
    # 0x3000-entry table on every call, the most of what chunking a short document cost
    is_word = _IS_WORD[np.minimum(_code_points(text), len(_IS_WORD) - 1)]
    edges = np.diff(is_word.astype(np.int8), prepend=np.int8(0), append=np.int8(0))
    return np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()


_HEADING_LINE = re.compile(r"^[ \t]{0,3}#{1,6}(?=[ \t])", re.MULTILINE)
_LIST_NUMBER = re.compile(r"^[ \t]*\d{1,3}[.)](?=[ \t])", re.MULTILINE)


def _breaks(
    text: str, starts: list[int], ends: list[int]
) -> tuple[list[int], list[int], list[int]]:
    """Section, paragraph and sentence breaks as exclusive word indexes (sorted).

    Break ``k`` lies between words ``k - 1`` and ``k``: a section break when word ``k`` opens
    a Markdown heading line (``## Causes``); a paragraph break when the gap holds two or more
    newlines; a sentence break also when it holds one newline or word ``k - 1`` ends with
    ``. ! ? : ;`` (optionally followed by a closing quote or bracket). No break follows a word
    of a heading line (a chunk never ends with the heading of the section it leaves out), and
    a list number (``8.`` opening a line) ends no sentence.
    """
    cp = _code_points(text)
    newlines = np.concatenate(([0], np.cumsum(cp == 10)))
    gap_start = np.asarray(ends[:-1])
    gap_end = np.asarray(starts[1:])
    in_gap = newlines[gap_end] - newlines[gap_start]
    last = cp[gap_start - 1]
    before = cp[np.maximum(gap_start - 2, 0)]
    closer = np.isin(last, _CLOSERS)
    punct = np.isin(last, _SENTENCE_PUNCT) | (closer & np.isin(before, _SENTENCE_PUNCT))
    word_starts = np.asarray(starts)
    # "8. **Static ...**": the list number opening a line ends no sentence
    numbers = np.fromiter((m.end() - 1 for m in _LIST_NUMBER.finditer(text)), dtype=np.int64)
    after = np.searchsorted(word_starts, numbers, side="right")  # the word after the number
    after = after[(after > 0) & (after < len(starts))]
    after = after[in_gap[after - 1] == 0]
    punct[after - 1] = False
    # no break inside or right after a heading line: mark its words' gaps with a running sum
    heads = np.fromiter((m.start() for m in _HEADING_LINE.finditer(text)), dtype=np.int64)
    first = np.searchsorted(word_starts, heads, side="left")  # the word "##"
    line_ends = np.flatnonzero(cp == 10)
    at = np.searchsorted(line_ends, heads)
    ends_at = np.where(at < len(line_ends), line_ends[np.minimum(at, len(line_ends) - 1)], len(cp))
    last_word = np.searchsorted(word_starts, ends_at, side="left") - 1
    keep = first < len(starts)
    first, last_word = first[keep], last_word[keep]
    marks = np.zeros(len(starts) + 1, dtype=np.int64)
    np.add.at(marks, first, 1)
    np.add.at(marks, last_word + 1, -1)
    allowed = np.cumsum(marks)[: len(gap_start)] == 0
    sections = first[first > 0].tolist()
    para = np.flatnonzero((in_gap >= 2) & allowed) + 1
    sent = np.flatnonzero(((in_gap >= 1) | punct) & allowed) + 1
    return sections, para.tolist(), sent.tolist()


def _check_int(name: str, value: object, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer between {low} and {high}, got {value!r}")
    return value


def chunk_text(text: str, chunk_size: int = 256, chunk_overlap: int = 10) -> list[ChunkSpan]:
    """Split text into overlapping chunks, preferring paragraph then sentence boundaries.

    A chunk holds at most ``chunk_size`` words (whitespace-delimited, the local stand-in for
    model tokens). When a document is longer, each chunk ends before the last Markdown heading
    in the second half of its window, else at the last paragraph break there, else at the last
    sentence end there, else after exactly ``chunk_size`` words; never right after a heading
    line, nor after a list number (``8.``). The next chunk starts at that heading, or else
    ``floor(chunk_size * chunk_overlap / 100)`` words before the previous end (always advancing
    by at least one word). Every word of the
    text lies in at least one chunk. Deterministic.

    Args:
        text: The extracted text.
        chunk_size: Words per chunk, 16 to 4096.
        chunk_overlap: Overlap between consecutive chunks in percent, 0 to 30.

    Returns:
        The chunks in document order (empty for a text without words).

    Raises:
        ValueError: ``chunk_size`` or ``chunk_overlap`` out of range (the message names it).
    """
    _check_int("chunk_size", chunk_size, MIN_CHUNK_SIZE, MAX_CHUNK_SIZE)
    _check_int("chunk_overlap", chunk_overlap, 0, MAX_CHUNK_OVERLAP)
    starts, ends = _word_spans(text)
    n = len(starts)
    if n == 0:
        return []
    if n <= chunk_size:
        return [ChunkSpan(text[starts[0] : ends[-1]], starts[0], ends[-1])]
    overlap = chunk_size * chunk_overlap // 100
    section_breaks, para_breaks, sent_breaks = _breaks(text, starts, ends)
    chunks: list[ChunkSpan] = []
    start = 0
    min_len = max(1, chunk_size // 2)
    while True:
        limit = start + chunk_size
        at_section = False
        if limit >= n:
            end = n
        else:
            end = limit
            for kind, breaks in enumerate((section_breaks, para_breaks, sent_breaks)):
                j = bisect.bisect_right(breaks, limit) - 1
                if j >= 0 and breaks[j] >= start + min_len:
                    end, at_section = breaks[j], kind == 0
                    break
        s, e = starts[start], ends[end - 1]
        chunks.append(ChunkSpan(text[s:e], s, e))
        if end >= n:
            return chunks
        # a chunk cut before a heading: the next one starts at the heading, without overlap
        start = end if at_section else max(start + 1, end - overlap)


# --------------------------------------------------------------------------------------------
# Source folders
# --------------------------------------------------------------------------------------------


@dataclass
class SourceFile:
    """One document found in a source folder.

    Attributes:
        key: POSIX path relative to the source root (``brewing/espresso.md``).
        data: The file bytes (only the first ``MAX_FILE_BYTES + 1`` of an oversized file, so
            :func:`extract_text` still rejects it without reading it all).
        metadata: Custom metadata from the sidecar ``<file>.meta.json`` (``{}`` without one).
        timestamp_ms: Last modification time in Unix milliseconds.
        metadata_error: Why the sidecar was ignored (invalid JSON, not an object), else None.
    """

    key: str
    data: bytes
    metadata: dict[str, Any]
    timestamp_ms: int
    metadata_error: str | None = field(default=None)


_MAX_SIDECAR_BYTES = 1 << 20
# a source folder is untrusted: never follow a symlink out of it (``notes.md -> ~/.aws/...``)
# and never block on a FIFO or a device (the open would hang the sync job forever)
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)


def read_regular_file(path: Path, limit: int) -> tuple[bytes, os.stat_result]:
    """Read at most ``limit + 1`` bytes of a regular file, refusing symlinks, FIFOs and devices.

    Raises:
        OSError: The file is missing or unreadable, a symbolic link (``ELOOP``) or not a
            regular file.
    """
    if path.is_symlink():  # also where O_NOFOLLOW does not exist
        raise OSError(errno.ELOOP, "a symbolic link (only regular files are indexed)")
    fd = os.open(path, _OPEN_FLAGS)
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file (only regular files are indexed)")
        return fh.read(limit + 1), st


def _read_sidecar(path: Path, key: str) -> tuple[dict[str, Any], str | None]:
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    if not sidecar.is_file():
        return {}, None
    try:
        raw, _ = read_regular_file(sidecar, _MAX_SIDECAR_BYTES)
        if len(raw) > _MAX_SIDECAR_BYTES:
            raise ValidationError("metadata", f"larger than {_MAX_SIDECAR_BYTES} bytes")
        value = loads_strict(raw, what="metadata", prefix="metadata")
    except (OSError, ValidationError) as exc:
        message = f"{key}{SIDECAR_SUFFIX}: unreadable metadata sidecar ({exc})"
        logger.warning("%s", message)
        return {}, message
    if not isinstance(value, dict):
        message = f"{key}{SIDECAR_SUFFIX}: metadata sidecar must be a JSON object"
        logger.warning("%s", message)
        return {}, message
    return value, None


def scan_source_dir(root: Path) -> Iterator[SourceFile]:
    """Walk a folder like an R2 bucket and yield its documents in key order.

    Hidden files and folders (name starting with ``.``) are skipped; every
    ``*.meta.json`` file is treated as a sidecar (read into its document's metadata, never
    yielded itself, ignored when its document does not exist). Files with unsupported
    extensions are yielded: the server records a per-item error for them.

    Args:
        root: The source folder.

    Yields:
        One :class:`SourceFile` per document, sorted by key.

    Raises:
        NotADirectoryError: ``root`` is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"source folder {str(root)!r} does not exist or is not a folder")
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith(".") or name.endswith(SIDECAR_SUFFIX):
                continue
            path = Path(dirpath) / name
            found.append((path.relative_to(root).as_posix(), path))
    found.sort()
    for key, path in found:
        try:
            data, st = read_regular_file(path, MAX_FILE_BYTES)
        except OSError as exc:  # vanished, unreadable, a symlink or not a regular file
            logger.warning("skipping %s: %s", key, exc)
            continue
        metadata, metadata_error = _read_sidecar(path, key)
        yield SourceFile(
            key=key,
            data=data,
            metadata=metadata,
            timestamp_ms=st.st_mtime_ns // 1_000_000,
            metadata_error=metadata_error,
        )


def builtin_attributes(key: str) -> dict[str, str]:
    """The built-in filterable attributes of a key (API.md section 8.1).

    ``filename`` is the full key (the docs' example is ``docs/getting-started/guide.pdf``) and
    ``folder`` is the prefix up to and including the last ``/`` (``docs/getting-started/``).
    A root-level key has the empty prefix, so its ``folder`` is ``""``.

    Args:
        key: The item key.

    Returns:
        ``{"folder": ..., "filename": ...}``.
    """
    cut = key.rfind("/")
    return {"folder": key[: cut + 1] if cut >= 0 else "", "filename": key}
