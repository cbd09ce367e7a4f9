"""Golden sets: what to ask, and which documents should come back.

Two formats are read:

* **BEIR** (a folder): ``queries.jsonl`` (``{"_id", "text"}`` per line), the judgements in
  ``qrels/<split>.tsv`` (``query-id``, ``corpus-id``, ``score``, with a header line) or
  ``qrels.json`` (``{query_id: [doc ids]}`` or ``{query_id: {doc id: grade}}``), and optionally
  ``corpus.jsonl`` or ``corpus.jsonl.gz`` (``{"_id", "title", "text"}``). Only the queries that
  have judgements are asked. A BEIR document id becomes the item key
  ``key_template.format(id=doc_id)`` (``"{id}.txt"`` by default): that is the key the corpus is
  uploaded under, and the key a search result must carry to count as that document.
* **Simple JSONL** (a file): one ``{"query": ..., "expected": [keys...]}`` per line, the keys
  being item keys as the instance knows them (``"brewing/espresso-basics.md"``);
  ``expected`` may also map a key to a grade (``{"a.md": 2, "b.md": 1}``). An optional
  ``"id"`` names the query in reports (the line number otherwise).
"""

from __future__ import annotations

import csv
import gzip
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

__all__ = ["DEFAULT_KEY_TEMPLATE", "Document", "GoldenSet", "GoldenSetError", "load_golden_set"]

DEFAULT_KEY_TEMPLATE = "{id}.txt"


class GoldenSetError(ValueError):
    """A golden set that cannot be read: the message names the file, the line and the field."""


@dataclass(frozen=True)
class Document:
    """One corpus document, and the item key it is uploaded under."""

    key: str
    doc_id: str
    title: str
    text: str

    def content(self) -> str:
        """The uploaded text: the title, a blank line, then the text (or the text alone)."""
        return f"{self.title}\n\n{self.text}" if self.title else self.text


@dataclass
class GoldenSet:
    """Queries and their judgements, keyed by item key.

    Attributes:
        queries: Query id to query text, in file order.
        judgements: Query id to ``{item key: grade}`` (a grade > 0 is relevant).
        corpus_path: The BEIR corpus file, if the folder has one.
        key_template: How a BEIR document id becomes an item key.
        skipped: Queries of ``queries.jsonl`` without judgements in the split (not asked).
    """

    queries: dict[str, str]
    judgements: dict[str, dict[str, float]]
    corpus_path: Path | None = None
    key_template: str = DEFAULT_KEY_TEMPLATE
    skipped: int = 0
    name: str = field(default="golden set")

    def __len__(self) -> int:
        return len(self.queries)

    def limit(self, n: int | None) -> GoldenSet:
        """The first ``n`` queries (all when ``None``)."""
        if n is None:
            return self
        ids = list(self.queries)[:n]
        return GoldenSet(
            {q: self.queries[q] for q in ids},
            {q: self.judgements[q] for q in ids},
            self.corpus_path,
            self.key_template,
            self.skipped,
            self.name,
        )

    def documents(self) -> Iterator[Document]:
        """The corpus documents (none when the set has no corpus)."""
        if self.corpus_path is None:
            return
        for line_no, row in _jsonl(self.corpus_path):
            doc_id = _text(row, "_id", self.corpus_path, line_no)
            title = row.get("title") or ""
            text = row.get("text") or ""
            if not isinstance(title, str) or not isinstance(text, str):
                raise GoldenSetError(
                    f"{self.corpus_path} line {line_no}: title and text: must be strings"
                )
            yield Document(_key(self.key_template, doc_id), doc_id, title, text)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a valid JSON number")


def _loads(text: str, where: str) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise GoldenSetError(f"{where}: not valid JSON ({exc})") from None


def _open(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        with _open(path) as fh:
            for line_no, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                row = _loads(line, f"{path} line {line_no}")
                if not isinstance(row, dict):
                    raise GoldenSetError(f"{path} line {line_no}: must be a JSON object")
                yield line_no, row
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        raise GoldenSetError(f"{path}: cannot be read as UTF-8 text ({exc})") from None


def _text(row: Mapping[str, Any], name: str, path: Path, line_no: int) -> str:
    value = row.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise GoldenSetError(f"{path} line {line_no}: {name}: must be a non-empty string")
    return value


def _grade(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise GoldenSetError(f"{where}: grade: must be a finite number (got {value!r})")
    return float(value)


def _key(template: str, doc_id: str) -> str:
    try:
        return template.format(id=doc_id)
    except (KeyError, IndexError, ValueError) as exc:
        raise GoldenSetError(
            f"key_template: must contain only the field {{id}} (got {template!r}: {exc})"
        ) from None


def _judgements(value: Any, where: str) -> dict[str, float]:
    if isinstance(value, list) and value and all(isinstance(k, str) and k for k in value):
        return dict.fromkeys(value, 1.0)
    if isinstance(value, dict) and value and all(isinstance(k, str) and k for k in value):
        return {k: _grade(g, f"{where}: {k}") for k, g in value.items()}
    raise GoldenSetError(
        f"{where}: must be a non-empty list of keys or a mapping of key to grade "
        f"(got {json.dumps(value)[:80]})"
    )


def _load_simple(path: Path) -> GoldenSet:
    queries: dict[str, str] = {}
    judgements: dict[str, dict[str, float]] = {}
    for line_no, row in _jsonl(path):
        text = _text(row, "query", path, line_no)
        qid = _text(row, "id", path, line_no) if "id" in row else str(line_no)
        if qid in queries:
            raise GoldenSetError(f"{path} line {line_no}: id: {qid!r} is used twice")
        queries[qid] = text
        judgements[qid] = _judgements(row.get("expected"), f"{path} line {line_no}: expected")
    if not queries:
        raise GoldenSetError(f"{path}: holds no queries")
    return GoldenSet(queries, judgements, name=path.name)


def _read_qrels(folder: Path, split: str) -> dict[str, dict[str, float]]:
    tsv, js = folder / "qrels" / f"{split}.tsv", folder / "qrels.json"
    qrels: dict[str, dict[str, float]] = {}
    if tsv.is_file():
        with tsv.open(encoding="utf-8", errors="replace", newline="") as fh:
            for line_no, row in enumerate(csv.reader(fh, delimiter="\t"), 1):
                if not row or (line_no == 1 and row[0] == "query-id"):
                    continue
                if len(row) != 3:
                    raise GoldenSetError(
                        f"{tsv} line {line_no}: must be query-id, corpus-id and score, "
                        "tab-separated"
                    )
                try:
                    grade = float(row[2])
                except ValueError:
                    grade = math.nan
                qrels.setdefault(row[0], {})[row[1]] = _grade(grade, f"{tsv} line {line_no}")
        return qrels
    if js.is_file():
        data = _loads(js.read_text(encoding="utf-8", errors="replace"), str(js))
        if not isinstance(data, dict):
            raise GoldenSetError(f"{js}: must map query ids to judgements")
        return {str(q): _judgements(v, f"{js}: {q}") for q, v in data.items()}
    raise GoldenSetError(f"{folder}: no judgements: expected qrels/{split}.tsv or qrels.json")


def _load_beir(folder: Path, split: str, key_template: str) -> GoldenSet:
    _key(key_template, "x")  # a bad template fails before anything is read
    queries_path = folder / "queries.jsonl"
    if not queries_path.is_file():
        raise GoldenSetError(f"{folder}: not a BEIR folder (no queries.jsonl)")
    qrels = _read_qrels(folder, split)
    texts = {_text(r, "_id", queries_path, n): _text(r, "text", queries_path, n)
             for n, r in _jsonl(queries_path)}  # fmt: skip
    missing = [q for q in qrels if q not in texts]
    if missing:
        raise GoldenSetError(
            f"{folder}: {len(missing)} judged query id(s) missing from queries.jsonl "
            f"(first: {missing[0]!r})"
        )
    queries = {q: t for q, t in texts.items() if q in qrels}
    judgements = {q: {_key(key_template, d): g for d, g in qrels[q].items()} for q in queries}
    corpus = next(
        (p for p in (folder / "corpus.jsonl", folder / "corpus.jsonl.gz") if p.is_file()), None
    )
    return GoldenSet(
        queries, judgements, corpus, key_template, len(texts) - len(queries), folder.name
    )


def load_golden_set(
    path: str | Path, *, split: str = "test", key_template: str = DEFAULT_KEY_TEMPLATE
) -> GoldenSet:
    """Read a golden set: a BEIR folder or a simple JSONL file (see the module docstring).

    Args:
        path: The folder or the file.
        split: The BEIR split whose judgements are read (``qrels/<split>.tsv``).
        key_template: How a BEIR document id becomes an item key.

    Returns:
        The golden set.

    Raises:
        GoldenSetError: If the set is missing or malformed (the message says where).
    """
    path = Path(path)
    if path.is_dir():
        return _load_beir(path, split, key_template)
    if path.is_file():
        return _load_simple(path)
    raise GoldenSetError(f"{path}: no such file or folder")
