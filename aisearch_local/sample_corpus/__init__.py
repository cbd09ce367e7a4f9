"""The sample corpus shipped with ``aisearch_local``: a coffee roastery's knowledge base.

Forty-three original documents written for this project, in six folders (``beans/``,
``brewing/``, ``equipment/``, ``roasting/``, ``troubleshooting/``, ``recipes/``) and four
formats (Markdown, plain text, HTML and JSON). Each document has a sidecar
``<file>.meta.json`` holding the same five custom metadata fields, so filters and boosts
have something to work on:

=============  ==========  ====================================================
field          data type   values
=============  ==========  ====================================================
``difficulty``  text        ``beginner`` | ``intermediate`` | ``advanced``
``rating``      number      1.0 to 5.0
``author``      text        one of five recurring (fictional) staff members
``published``   datetime    Unix seconds, between 2021 and 2026
``verified``    boolean     reviewed by a second staff member
=============  ==========  ====================================================

This folder is also a Python package, so a raw walk of :data:`SAMPLE_CORPUS_DIR` also sees
``__init__.py`` (and possibly ``__pycache__/``). Use :func:`iter_sample_documents`, which
yields only the documents.

Example:
    >>> from aisearch_local.sample_corpus import iter_sample_documents
    >>> keys = [doc.key for doc in iter_sample_documents()]
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aisearch_local.ingest import SourceFile

__all__ = ["CUSTOM_METADATA", "SAMPLE_CORPUS_DIR", "iter_sample_documents"]

SAMPLE_CORPUS_DIR: Path = Path(__file__).resolve().parent
"""The folder holding the sample documents and their ``.meta.json`` sidecars."""

CUSTOM_METADATA: list[dict[str, str]] = [
    {"field_name": "difficulty", "data_type": "text"},
    {"field_name": "rating", "data_type": "number"},
    {"field_name": "author", "data_type": "text"},
    {"field_name": "published", "data_type": "datetime"},
    {"field_name": "verified", "data_type": "boolean"},
]
"""The instance ``custom_metadata`` schema matching the sidecars (pass it on instance create)."""

_NOT_DOCUMENTS = (".py", ".pyc")


def iter_sample_documents() -> Iterator[SourceFile]:
    """Yield the sample documents with their custom metadata, sorted by key.

    Returns:
        An iterator of :class:`aisearch_local.ingest.SourceFile` (``key`` is the path relative
        to :data:`SAMPLE_CORPUS_DIR`, e.g. ``brewing/espresso-basics.md``), skipping the
        package's own Python files.
    """
    from aisearch_local.ingest import scan_source_dir

    return (
        doc
        for doc in scan_source_dir(SAMPLE_CORPUS_DIR)
        if not doc.key.endswith(_NOT_DOCUMENTS) and "__pycache__" not in doc.key.split("/")
    )
