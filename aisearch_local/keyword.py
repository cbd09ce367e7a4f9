"""The keyword engine of ``porter`` instances: a tantivy index per instance, a cache of SQLite.

SQLite stays the source of truth, and its FTS5 table stays too: it serves ``trigram``
instances, ``--keyword-engine fts5``, and ``auto`` while a large instance's tantivy index is
being built (docs/DEPS-keyword.md has the measurements that chose tantivy).

The index lives in memory, like the vector table, and follows SQLite's generation of the
instance (``meta`` ``vectors:<pk>``, bumped by every write):

1. The first keyword search of an instance builds it from SQLite, in one read transaction
   that also reads the generation (``Store.keyword_source``). ``tantivy`` builds it in the
   search, for every ``porter`` instance. ``auto`` (the default) keeps FTS5 below
   :data:`AUTO_MIN_ROWS` chunks, and above builds the index in a background thread while FTS5
   answers.
2. After a write's COMMIT, ``Store._after_write`` hands the change to :meth:`KeywordIndexes.
   apply`: the dead chunk ids are deleted, the new chunks added (their text read back from
   SQLite) and the index committed and reloaded before the write is acknowledged, so the very
   next search sees it. A change that arrives during a build waits and is applied after it,
   in generation order. A failed transaction records no change: it leaves nothing.
3. A search trusts the index only at SQLite's generation (or one behind while a write of this
   process is being applied). Anything else (another process wrote the database, a change
   was missed) drops it and builds it again; so does any error of the engine. Nothing is
   written to disk, so there is no file to corrupt, and a restart rebuilds.

Tokenization follows FTS5's ``porter unicode61 remove_diacritics 2`` as closely as tantivy
allows: split on what is not a letter or digit, lowercase, fold to ASCII, English stemming
(tantivy's is Snowball's Porter2, FTS5's the original Porter). A query term is analysed with
the same analyzer and becomes a term query (a phrase query when it splits into several
tokens, as FTS5 reads a quoted term); terms join with MUST (``and``) or SHOULD (``or``). No
query syntax is ever parsed from the user's text. Scores are tantivy's BM25 (Lucene's idf,
``ln(1 + (N - n + 0.5) / (n + 0.5))``, k1 1.2, b 0.75).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import re
import shutil
import stat
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tantivy

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock, the indexes stay in memory
    fcntl = None  # type: ignore[assignment]

from aisearch_local.nowait import refuse
from aisearch_local.vectors import VectorChange, own_ahead

__all__ = [
    "AUTO_MIN_ROWS",
    "ENGINES",
    "ENGINE_ENV",
    "KeywordIndexes",
    "TantivyIndex",
    "check_engine",
    "engine_from_env",
    "fts_expression",
]

log = logging.getLogger("aisearch_local.keyword")

ENGINES = ("auto", "tantivy", "fts5")
ENGINE_ENV = "AISEARCH_LOCAL_KEYWORD_ENGINE"
AUTO_MIN_ROWS = 20_000
"""``auto`` uses tantivy from this many chunks (FTS5 costs about 2-10 ms an ``or`` query at
100,000, tantivy 0.1 ms), FTS5 below: small instances keep FTS5's scores exactly. Its index is
built in a background thread while FTS5 answers."""
_NO_GENERATION = ("", -1)
"""The tag of an instance without a generation (imported, not written since): its first
write creates one, with a new nonce, and the index is rebuilt."""
APPLY_WAIT_S = 5.0
"""How long a write waits for the writes committed before it to reach the keyword index."""
_BUILD_HEAP = 128_000_000
_WRITE_HEAP = 32_000_000


def fts_expression(terms: Sequence[str], mode: str) -> str:
    """Build an FTS5 MATCH expression joining quoted terms with AND or OR."""
    joiner = " AND " if mode == "and" else " OR "
    return joiner.join('"' + t.replace('"', '""') + '"' for t in terms)


def check_engine(engine: str) -> str:
    """Return the engine name, or raise ``ValueError`` naming the option and the choices."""
    if engine not in ENGINES:
        raise ValueError(
            f"keyword engine (--keyword-engine, {ENGINE_ENV}) must be one of "
            f"{', '.join(ENGINES)}, got {engine!r}"
        )
    return engine


def _analyzer() -> Any:
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )


def _clean(text: str) -> str:
    """Text tantivy accepts (a lone surrogate cannot be encoded; SQLite never holds one)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def _trim() -> None:
    """Give the memory a build freed back to the system (glibc keeps it otherwise)."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL(None).malloc_trim(0)


_FOLDER_RE = re.compile(r"\d+-[a-z0-9_]{8}")  # what mkdtemp(prefix="<pid>-") makes
_LOCK = ".owner.lock"


def real_folder(directory: Path) -> bool:
    """Whether ``directory`` is a folder itself (not a symlink to one, not a file)."""
    try:
        return stat.S_ISDIR(os.lstat(directory).st_mode)
    except OSError:
        return False


def _claim(folder: str) -> int:
    """Create and lock the folder's owner lock: held while its index lives (an fd)."""
    fd = os.open(os.path.join(folder, _LOCK), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def _release(folder: str, fd: int) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):
        os.close(fd)


def remove_stale(directory: Path) -> None:
    """Remove the index folders that no running process holds in ``directory``.

    Each index is built in a folder of its own, ``<pid>-<random>``, whose owner lock
    (``.owner.lock``, ``flock``) its process holds until the index is let go and the folder
    removed; a process killed with ``kill -9`` leaves the folder, unlocked. Only real folders
    with that name and an owner lock that can be taken are removed (never a symlink, a file or
    anything else, and never a folder a process holds, in any pid namespace).
    """
    if fcntl is None or not real_folder(directory):
        return
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        if not _FOLDER_RE.fullmatch(entry.name) or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            fd = os.open(os.path.join(entry.path, _LOCK), os.O_RDWR | os.O_NOFOLLOW)
        except OSError:
            continue  # no owner lock: not one of ours, or just being made
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue  # held: a live index
        _release(entry.path, fd)


class TantivyIndex:
    """One instance's tantivy index: chunk ids (a fast field) and their text.

    Args:
        path: A folder to keep the index in (the benchmark), or None.
        directory: With no ``path``: build the index in a new folder of its own under this one
            (``<pid>-<random>``), removed when the index is let go, so that its segments are
            memory-mapped files (the page cache) rather than process memory; None keeps the
            index in memory. Either way nothing is read back after a restart.
    """

    _TOKENIZER = "aisearch_porter"

    def __init__(self, path: str | None = None, *, directory: Path | None = None) -> None:
        if path is None and directory is not None:
            with contextlib.suppress(OSError):
                directory.mkdir(parents=True, exist_ok=True)
            if fcntl is not None and real_folder(directory):  # never through a symlink
                path = tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=directory)
                weakref.finalize(self, _release, path, _claim(path))
            else:
                log.warning("%s is not a folder: the keyword index stays in memory", directory)
        self.path = path
        builder = tantivy.SchemaBuilder()
        builder.add_integer_field("cid", indexed=True, fast=True)
        builder.add_text_field("text", tokenizer_name=self._TOKENIZER)
        self.schema = builder.build()
        self.analyzer = _analyzer()
        self.index = tantivy.Index(self.schema, path=path)  # a path: the benchmark only
        self.index.register_tokenizer(self._TOKENIZER, self.analyzer)
        self.index.config_reader(reload_policy="Manual")
        self._writer: Any = None
        self._heap = _BUILD_HEAP

    def close(self) -> None:
        """Let go of the writer (and its lock on a directory)."""
        if self._writer is not None:
            self._writer.wait_merging_threads()
            self._writer = None

    def _w(self) -> Any:
        if self._writer is None:
            self._writer = self.index.writer(heap_size=self._heap, num_threads=1)
        return self._writer

    def add_many(self, docs: Iterable[tuple[int, str]]) -> None:
        """Add ``(cid, text)`` documents (visible after :meth:`commit`)."""
        writer = self._w()
        for cid, text in docs:
            writer.add_document(tantivy.Document(cid=int(cid), text=_clean(text)))

    def delete(self, cids: Iterable[int]) -> None:
        """Delete chunks by id (visible after :meth:`commit`)."""
        writer = self._w()
        for cid in cids:
            writer.delete_documents_by_term("cid", int(cid))

    def commit(self) -> None:
        """Publish the added and deleted documents to the next search."""
        writer = self._w()
        writer.commit()
        if self._heap == _BUILD_HEAP:  # the build is done: a smaller writer for the updates
            writer.wait_merging_threads()
            self._writer = None
            self._heap = _WRITE_HEAP
        self.index.reload()

    @property
    def num_docs(self) -> int:
        """How many documents a search sees."""
        return int(self.index.searcher().num_docs)

    def query(self, terms: Sequence[str], mode: str) -> Any | None:
        """The query of ``terms`` (analysed here, never parsed), None when nothing is left."""
        occur = tantivy.Occur.Must if mode == "and" else tantivy.Occur.Should
        parts: list[tuple[Any, Any]] = []
        for term in terms:
            tokens = self.analyzer.analyze(_clean(term))
            if not tokens:  # as FTS5's empty phrase: matches nothing
                if mode == "and":
                    return None
                continue
            if len(tokens) == 1:
                q = tantivy.Query.term_query(self.schema, "text", tokens[0], index_option="freq")
            else:
                q = tantivy.Query.phrase_query(self.schema, "text", tokens)
            parts.append((occur, q))
        return tantivy.Query.boolean_query(parts) if parts else None

    def search(self, terms: Sequence[str], mode: str, limit: int) -> list[tuple[int, float]]:
        """Return ``(cid, bm25)`` best first (ties by ascending cid), at most ``limit``."""
        query = self.query(terms, mode)
        if query is None or limit <= 0:
            return []
        searcher = self.index.searcher()
        hits = searcher.search(query, limit, count=False).hits
        if not hits:
            return []
        cids = searcher.fast_field_values("cid", [addr for _, addr in hits])
        out = [(int(cid or 0), float(score)) for (score, _), cid in zip(hits, cids, strict=True)]
        out.sort(key=lambda h: (-h[1], h[0]))
        return out


@dataclass
class _Live:
    """An instance's index and the generation it holds."""

    index: TantivyIndex
    nonce: str
    gen: int
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class _Build:
    """A build under way."""

    done: threading.Event = field(default_factory=threading.Event)
    background: bool = False
    dropped: bool = False


Source = Callable[[int], tuple[tuple[str, int] | None, int, Iterator[tuple[int, str]]] | None]
"""``Store.keyword_source``: for an instance pk, its generation, chunk count and ``(cid, text)``
rows read in one transaction (None when the instance is gone)."""
Texts = Callable[[int, Sequence[int]], list[tuple[int, str]]]
"""``Store.chunk_texts``: the ``(cid, text)`` of some chunk ids still in SQLite."""


class KeywordIndexes:
    """The tantivy indexes of a store's instances, kept at SQLite's generation.

    Args:
        engine: ``auto``, ``tantivy`` or ``fts5`` (:data:`ENGINES`); ``fts5`` keeps none.
        source: Reads an instance's chunks for a build (``Store.keyword_source``).
        texts: Reads the text of new chunks after a write (``Store.chunk_texts``).
        min_rows: ``auto`` uses tantivy from this many chunks (built in a thread meanwhile).
        directory: Where indexes are built as files (:class:`TantivyIndex`), None: in memory.
            Folders that dead processes left there are removed first.
        own: The generations of this process's writes to an instance under way
            (``Store._own_gens``): an index behind SQLite by those only is current (their
            changes are coming), behind by another process's generation it is stale.
    """

    def __init__(
        self,
        engine: str,
        source: Source,
        texts: Texts,
        *,
        min_rows: int = AUTO_MIN_ROWS,
        directory: Path | None = None,
        own: Callable[[int], Collection[int]] = lambda _pk: (),
    ) -> None:
        self.engine = check_engine(engine)
        self.directory = directory
        if directory is not None:
            remove_stale(directory)
        self._source = source
        self._texts = texts
        self._own = own
        self.min_rows = min_rows
        self._lock = threading.Lock()
        self._advanced = threading.Condition(self._lock)  # an index took a change
        self._live: dict[int, _Live] = {}
        self._builds: dict[int, _Build] = {}
        # committed changes not applied yet, by generation (writes finish in any order)
        self._pending: dict[int, dict[int, VectorChange]] = {}

    def building(self) -> int:
        """How many indexes are being built (in a search or in the background)."""
        with self._lock:
            return len(self._builds)

    def close(self) -> None:
        """Let every index go (their folders are removed as they are collected)."""
        with self._lock:
            self._live.clear()
            self._pending.clear()
            for build in self._builds.values():
                build.dropped = True

    def drop(self, inst_pk: int) -> None:
        """Forget an instance's index (deleted, replaced, re-tokenized): rebuilt when needed."""
        with self._lock:
            self._live.pop(inst_pk, None)
            self._pending.pop(inst_pk, None)
            build = self._builds.get(inst_pk)
            if build is not None:  # what the build read may be outdated: it is not kept
                build.dropped = True

    def apply(self, inst_pk: int, change: VectorChange) -> None:
        """Apply one committed write (after its COMMIT), in generation order.

        Returns once the index holds it, so that the write is acknowledged only then.
        Writes can finish in any order: a change waits for the ones before it, whose threads
        apply it with theirs. When they do not come within :data:`APPLY_WAIT_S` (a thread
        stalls), or at once when one of them is another process's (``serve --workers``,
        ``aisearch-local ingest``: its change is only in SQLite), the index is dropped and
        the next search builds it again from SQLite.
        """
        with self._lock:
            live = self._live.get(inst_pk)
            if live is None and inst_pk not in self._builds:
                return  # no index: the next search builds one from SQLite
            self._pending.setdefault(inst_pk, {})[change.gen] = change
        if live is None:
            return  # a build is under way: it applies the change before it is published
        self._catch_up(inst_pk, live)
        deadline = time.monotonic() + APPLY_WAIT_S
        with self._lock:
            while live.gen < change.gen and self._live.get(inst_pk) is live:
                left = deadline - time.monotonic()
                own = {*self._own(inst_pk), change.gen}
                if not own_ahead(live.gen, change.gen, own, self._pending.get(inst_pk)):
                    log.info("keyword index of instance %s dropped: another process wrote", inst_pk)
                    del self._live[inst_pk]
                    self._pending.pop(inst_pk, None)
                    return
                if left <= 0:
                    log.warning(
                        "keyword index of instance %s dropped: generation %s did not arrive",
                        inst_pk,
                        live.gen + 1,
                    )
                    del self._live[inst_pk]
                    self._pending.pop(inst_pk, None)
                    return
                self._advanced.wait(left)

    def _catch_up(self, inst_pk: int, live: _Live) -> bool:
        """Apply the pending changes that follow the index's generation.

        Returns False on an error (the index is dropped: the next search rebuilds it).
        """
        try:
            with live.lock:
                while True:
                    with self._lock:
                        pending = self._pending.get(inst_pk, {})
                        for gen in [g for g in pending if g <= live.gen]:
                            del pending[gen]
                        change = pending.pop(live.gen + 1, None)
                    if change is None:
                        return True
                    if change.nonce != live.nonce:
                        raise LookupError("the instance was replaced")
                    self._apply(inst_pk, live, change)
        except Exception:
            log.warning("keyword index of instance %s dropped", inst_pk, exc_info=True)
            with self._lock:
                if self._live.get(inst_pk) is live:
                    del self._live[inst_pk]
                    self._pending.pop(inst_pk, None)
            return False

    def _apply(self, inst_pk: int, live: _Live, change: VectorChange) -> None:
        new = [int(c) for arr in change.cids for c in arr.tolist()]
        if change.dead_cids:
            live.index.delete(change.dead_cids)
        if new:  # chunks a later write deleted already are not read: never added
            live.index.add_many(self._texts(inst_pk, new))
        live.index.commit()
        with self._lock:
            live.gen = change.gen
            self._advanced.notify_all()

    def wants(self, inst_pk: int, rows: int) -> bool:
        """Whether tantivy should answer an instance of ``rows`` live chunks."""
        if self.engine == "fts5":
            return False
        if self.engine == "auto" and rows < self.min_rows:
            if inst_pk in self._live or inst_pk in self._builds:
                self.drop(inst_pk)  # shrank below: FTS5 again, no index to keep up
            return False
        return True

    def search(
        self,
        inst_pk: int,
        info: tuple[str, int] | None,
        terms: Sequence[str],
        mode: str,
        limit: int,
        rows: int,
    ) -> list[tuple[int, float]] | None:
        """Return the hits, or None when FTS5 must answer (``auto`` while a build runs).

        Args:
            inst_pk: The instance.
            info: SQLite's generation of the instance (``nonce, gen``), None if it has none.
            terms: The query terms (:func:`~aisearch_local.search.keyword_terms`).
            mode: ``and`` or ``or``.
            limit: The most hits returned.
            rows: The instance's live chunks (``auto`` compares them with ``min_rows``).
        """
        if not self.wants(inst_pk, rows):
            return None
        live = self._current(inst_pk, info)
        if live is None:
            return None
        return live.index.search(terms, mode, limit)

    def _current(self, inst_pk: int, info: tuple[str, int] | None) -> _Live | None:
        nonce, gen = info or _NO_GENERATION
        own = self._own(inst_pk)
        with self._lock:
            live = self._live.get(inst_pk)
            if (
                live is not None
                and live.nonce == nonce
                and own_ahead(live.gen, gen, own, self._pending.get(inst_pk))
            ):
                return live
            refuse("the keyword index is to be built")  # by a search thread, not the event loop
            self._live.pop(inst_pk, None)  # behind SQLite (another process wrote): rebuilt
            self._pending.pop(inst_pk, None)
            build = self._builds.get(inst_pk)
            owner = build is None
            if build is None:
                build = self._builds[inst_pk] = _Build()
        if owner:
            return self._build(inst_pk, build)
        if not build.background:  # a build in a search: as long as this search would take
            build.done.wait()
            with self._lock:
                return self._live.get(inst_pk)
        return None

    def _build(self, inst_pk: int, build: _Build) -> _Live | None:
        """Read the instance and build its index: here, or (``auto``, large) in a thread."""
        try:
            read = self._source(inst_pk)
        except BaseException:
            self._finish(inst_pk, build, None)
            raise
        if read is None:  # gone
            self._finish(inst_pk, build, None)
            return None
        info = read[0] or _NO_GENERATION
        docs = read[2]
        if self.engine == "auto":
            build.background = True
            threading.Thread(
                target=self._build_now,
                args=(inst_pk, build, info, docs),
                name=f"aisearch-local-keyword-build-{inst_pk}",
                daemon=True,
            ).start()
            return None
        return self._build_now(inst_pk, build, info, docs)

    def _build_now(
        self,
        inst_pk: int,
        build: _Build,
        info: tuple[str, int],
        docs: Iterator[tuple[int, str]],
    ) -> _Live | None:
        live: _Live | None = None
        try:
            index = TantivyIndex(directory=self.directory)
            index.add_many(docs)
            index.commit()
            _trim()
            live = _Live(index, info[0], info[1])
        except Exception:
            log.warning("keyword index of instance %s not built", inst_pk, exc_info=True)
        finally:
            close = getattr(docs, "close", None)
            if close is not None:
                close()
        return self._finish(inst_pk, build, live)

    def _finish(self, inst_pk: int, build: _Build, live: _Live | None) -> _Live | None:
        """Apply the changes that came during the build, then publish the index."""
        try:
            while live is not None and self._catch_up(inst_pk, live):
                with self._lock:
                    if build.dropped:
                        break
                    if live.gen + 1 not in self._pending.get(inst_pk, {}):
                        # published as the build ends, under one lock: no change falls between
                        self._live[inst_pk] = live
                        self._builds.pop(inst_pk, None)
                        return live
            with self._lock:
                self._builds.pop(inst_pk, None)
                self._pending.pop(inst_pk, None)
            return None
        finally:
            build.done.set()


def engine_from_env(engine: str | None) -> str:
    """The engine asked for, else ``AISEARCH_LOCAL_KEYWORD_ENGINE``, else ``auto``."""
    return check_engine(engine or os.environ.get(ENGINE_ENV) or "auto")
