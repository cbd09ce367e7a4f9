"""``AISearchIndex``: an AI Search instance as a LlamaIndex managed index."""

from __future__ import annotations

import posixpath
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from llama_index.core.base.base_query_engine import BaseQueryEngine
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks import CallbackManager
from llama_index.core.chat_engine.types import BaseChatEngine, ChatMode
from llama_index.core.data_structs.data_structs import IndexDict
from llama_index.core.indices.managed.base import BaseManagedIndex
from llama_index.core.llms.utils import LLMType
from llama_index.core.schema import BaseNode, Document, MetadataMode, TransformComponent
from llama_index.core.storage.storage_context import StorageContext
from typing_extensions import Unpack

from aisearch import InvalidRequestError, Item, NotFoundError

from ._common import AISearchConnection, ConnectionKwargs, check_keywords, resolve_connection
from .chat_engine import AISearchChatEngine
from .query_engine import AISearchQueryEngine
from .retrievers import AISearchRetriever

__all__ = ["READER_BOOKKEEPING", "AISearchIndex"]

DEFAULT_WAIT_TIMEOUT = 120.0


# Extensions whose content the service reads as text: anything else (a PDF, a Word file ...)
# was turned into text by a LlamaIndex reader, so its key gets ".txt" and is parsed as text.
TEXT_EXTENSIONS = frozenset({".md", ".markdown", ".mdx", ".txt", ".html", ".htm", ".json"})


def _natural_key(doc: BaseNode) -> str:
    meta = doc.metadata or {}
    for name in ("file_name", "filename"):
        value = meta.get(name)
        if isinstance(value, str) and value:
            return value
    ref = doc.ref_doc_id if not isinstance(doc, Document) else None
    return f"{ref or doc.node_id}.txt"


def _as_text_key(key: str, part: str | None = None) -> str:
    stem, ext = posixpath.splitext(key)
    if ext.lower() not in TEXT_EXTENSIONS:
        stem, ext = key, ".txt"
    return f"{stem}.{part}{ext}" if part else f"{stem}{ext}"


def item_keys(docs: Sequence[BaseNode]) -> list[str]:
    """The item key of each document of one upload batch, never the same key twice.

    A ``key`` metadata value is used as given (two documents with the same explicit key
    are an error). Otherwise the key is the reader's ``file_name`` (``<doc id>.txt`` when
    there is none), with ``.txt`` appended unless it is a text format the service reads
    (``report.pdf`` -> ``report.pdf.txt``: the reader already extracted the text). Documents
    that would share a key (``team-a/README.md`` and ``team-b/README.md`` as read by
    ``SimpleDirectoryReader``, or the pages of one PDF) are told apart by their folders
    relative to the folder they have in common, then by ``page_label``, then by their
    position: uploading them under one key would keep only the last.

    Raises:
        InvalidRequestError: Two documents carry the same explicit ``key``, or a derived key
            equals another document's key.
    """
    keys: list[str | None] = [None] * len(docs)
    groups: dict[str, list[int]] = {}
    for i, doc in enumerate(docs):
        explicit = (doc.metadata or {}).get("key")
        if isinstance(explicit, str) and explicit:
            keys[i] = explicit
        else:
            groups.setdefault(_natural_key(doc), []).append(i)
    explicit = Counter(k for k in keys if k is not None)
    for key, n in explicit.items():
        if n > 1:
            raise InvalidRequestError(
                f"metadata['key']: {key!r} is given to several documents of one upload; "
                "each item needs its own key"
            )
    for name, members in groups.items():
        if len(members) == 1:
            keys[members[0]] = _as_text_key(name)
            continue
        paths = [str((docs[i].metadata or {}).get("file_path") or "") for i in members]
        folders = [posixpath.dirname(p.replace("\\", "/")) for p in paths]
        if all(folders) and len(set(folders)) > 1:
            common = posixpath.commonpath(folders)
            named = [posixpath.join(posixpath.relpath(f, common), name) for f in folders]
        else:
            named = [name] * len(members)
        for i, key in zip(members, named, strict=True):
            page = (docs[i].metadata or {}).get("page_label")
            part = f"page-{page}" if isinstance(page, (str, int)) and str(page) else None
            keys[i] = _as_text_key(key, part)
        counts = Counter(keys[i] for i in members)
        seen: Counter[str] = Counter()
        for i in members:  # still the same key (same file, no page labels): number them
            key = str(keys[i])
            if counts[key] > 1:
                seen[key] += 1
                keys[i] = _as_text_key(key, f"part-{seen[key]}")
    out = [str(k) for k in keys]
    clashes = {k for k, n in Counter(out).items() if n > 1}
    if clashes:  # a derived key equal to another document's explicit or derived key
        raise InvalidRequestError(
            f"documents of one upload map to the same item key(s) {sorted(clashes)}; "
            "set metadata['key'] to tell them apart"
        )
    return out


READER_BOOKKEEPING = frozenset(
    {
        "file_path",
        "file_type",
        "file_size",
        "creation_date",
        "last_modified_date",
        "last_accessed_date",
    }
)
"""What ``SimpleDirectoryReader`` records about a file and an item does not carry.

Item metadata comes back with every chunk, where an LLM reads it: an absolute local path
(a user name, a directory layout), sizes and file-system dates are noise there, or worse.
``file_name`` is kept (it names the item, and its folders are in the key when needed);
the item's own ``timestamp`` says when it was uploaded.
"""


def _item_metadata(doc: BaseNode) -> dict[str, Any]:
    return {
        k: v
        for k, v in (doc.metadata or {}).items()
        if k != "key" and k not in READER_BOOKKEEPING and isinstance(v, (str, int, float, bool))
    }


class AISearchIndex(BaseManagedIndex):
    """An AI Search instance as a LlamaIndex managed index.

    The service chunks, embeds and indexes: ``from_documents`` / ``insert`` upload each
    document as an item (text plus its scalar metadata but a reader's file bookkeeping,
    ``READER_BOOKKEEPING``) and wait, bounded by
    ``wait_timeout`` seconds, until the items are indexed and searchable. The item key is
    the document's ``key`` metadata, else ``file_name``, else ``<doc id>.txt`` (uploading
    the same key again replaces the item). ``delete_ref_doc`` deletes the item.
    ``as_retriever`` / ``as_query_engine`` / ``as_chat_engine`` return
    :class:`AISearchRetriever` / :class:`AISearchQueryEngine` / :class:`AISearchChatEngine`
    sharing this index's connection; pass ``llm=`` to get LlamaIndex's own engines over
    the AI Search retriever instead.

    Args:
        instance_id: The AI Search instance.
        namespace: Its namespace (default: the connection's).
        wait_timeout: Seconds to wait for uploaded items to be indexed.
        create_if_missing: Create the instance (service defaults) when it does not exist.
        connection: A shared :class:`AISearchConnection`.
        show_progress: Unused (kept for LlamaIndex compatibility).
        callback_manager: LlamaIndex (legacy) callback manager.
        storage_context: LlamaIndex storage context (only the index struct is stored).
        **connection_kwargs: Connection settings (``account_id``, ``api_token`` ...).

    Example:
        .. code-block:: python

            index = AISearchIndex.from_documents(docs, instance_id="notes")
            print(index.as_query_engine().query("What did we decide about the roaster?"))
    """

    def __init__(
        self,
        instance_id: str,
        *,
        namespace: str | None = None,
        wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
        create_if_missing: bool = False,
        connection: AISearchConnection | None = None,
        show_progress: bool = False,
        callback_manager: CallbackManager | None = None,
        storage_context: StorageContext | None = None,
        transformations: list[TransformComponent] | None = None,
        **connection_kwargs: Unpack[ConnectionKwargs],
    ) -> None:
        check_keywords(
            type(self),
            connection_kwargs,
            {"connection settings": ConnectionKwargs.__annotations__},
            note="; search options go to as_retriever() or as_query_engine()",
        )
        if not isinstance(instance_id, str) or not instance_id:
            raise InvalidRequestError(
                f"instance_id: must be a non-empty string (got {instance_id!r})"
            )
        if (
            isinstance(wait_timeout, bool)
            or not isinstance(wait_timeout, (int, float))
            or not wait_timeout > 0  # NaN too
        ):
            raise InvalidRequestError(f"wait_timeout: must be > 0 seconds (got {wait_timeout!r})")
        self.instance_id = instance_id
        """The AI Search instance."""
        self.namespace = namespace
        """Its namespace (``None``: the connection's)."""
        self.wait_timeout = float(wait_timeout)
        """Seconds to wait for uploads to be indexed."""
        self._connection = resolve_connection(connection, connection_kwargs)
        self._doc_items: dict[str, str] = {}
        self._lock = threading.Lock()
        super().__init__(
            index_struct=IndexDict(),
            storage_context=storage_context,
            show_progress=show_progress,
            callback_manager=callback_manager,
            # The service chunks documents itself; nothing to transform locally.
            transformations=transformations or [_Identity()],
        )
        if create_if_missing:
            self._ensure_instance()

    @property
    def connection(self) -> AISearchConnection:
        """The connection (shared pooled clients) of this index and its engines."""
        return self._connection

    def __repr__(self) -> str:
        return f"AISearchIndex({self.instance_id!r}, namespace={self.namespace!r})"

    def _ensure_instance(self) -> None:
        client = self._connection.client
        try:
            client.get_instance(self.instance_id, namespace=self.namespace)
        except NotFoundError:
            client.create_instance(self.instance_id, namespace=self.namespace)

    # -- construction ------------------------------------------------------------------

    @classmethod
    def from_documents(
        cls,
        documents: Sequence[Document],
        storage_context: StorageContext | None = None,
        show_progress: bool = False,
        callback_manager: CallbackManager | None = None,
        transformations: list[TransformComponent] | None = None,
        *,
        instance_id: str | None = None,
        **kwargs: Any,
    ) -> AISearchIndex:
        """Upload documents to an instance and wait until they are searchable.

        Args:
            documents: The documents (text plus metadata).
            storage_context: LlamaIndex storage context.
            show_progress: Unused.
            callback_manager: LlamaIndex (legacy) callback manager.
            transformations: Ignored (the service chunks and embeds).
            instance_id: The AI Search instance (required).
            **kwargs: Other :class:`AISearchIndex` arguments (``namespace``,
                ``wait_timeout``, ``create_if_missing``, connection settings).

        Returns:
            The index.

        Raises:
            aisearch.IndexingTimeoutError: Items not indexed within ``wait_timeout``.
            aisearch.IndexingError: An item failed to index.
        """
        if instance_id is None:
            raise InvalidRequestError("instance_id: required (the AI Search instance to fill)")
        index = cls(
            instance_id,
            storage_context=storage_context,
            show_progress=show_progress,
            callback_manager=callback_manager,
            transformations=transformations,
            **kwargs,
        )
        index.insert_documents(documents)
        return index

    # -- ingestion ---------------------------------------------------------------------

    def insert_documents(self, documents: Sequence[BaseNode], *, wait: bool = True) -> list[Item]:
        """Upload documents (or nodes) as items and, by default, wait until indexed.

        Args:
            documents: Documents or nodes; each becomes one item.
            wait: Wait (bounded by ``wait_timeout``) until the items are searchable.

        Returns:
            The uploaded items (as last seen when waiting).
        """
        client = self._connection.client
        items: list[Item] = []
        for doc, args, kwargs in self._uploads(documents):
            items.append(self._remember(doc, client.upload_item(*args, **kwargs)))
        if wait and items:
            ids = [i.id for i in items]
            items = client.wait_until_indexed(self.instance_id, ids, **self._wait_kwargs())
        return items

    async def ainsert_documents(
        self, documents: Sequence[BaseNode], *, wait: bool = True
    ) -> list[Item]:
        """Async form of :meth:`insert_documents` (on the async client)."""
        client = self._connection.async_client
        items: list[Item] = []
        for doc, args, kwargs in self._uploads(documents):
            items.append(self._remember(doc, await client.upload_item(*args, **kwargs)))
        if wait and items:
            ids = [i.id for i in items]
            items = await client.wait_until_indexed(self.instance_id, ids, **self._wait_kwargs())
        return items

    def _uploads(
        self, documents: Sequence[BaseNode]
    ) -> Iterator[tuple[BaseNode, tuple[str, str, str], dict[str, Any]]]:
        """Each document and the arguments of its upload (instance, key, text; metadata)."""
        for doc, key in zip(documents, item_keys(documents), strict=True):
            text = doc.get_content(metadata_mode=MetadataMode.NONE)
            kwargs = {"metadata": _item_metadata(doc) or None, "namespace": self.namespace}
            yield doc, (self.instance_id, key, text), kwargs

    def _wait_kwargs(self) -> dict[str, Any]:
        return {"timeout": self.wait_timeout, "namespace": self.namespace}

    def _remember(self, doc: BaseNode, item: Item) -> Item:
        with self._lock:
            self._doc_items[doc.ref_doc_id or doc.node_id] = item.id
            self._doc_items[doc.node_id] = item.id
        return item

    def insert(self, document: Document, **insert_kwargs: Any) -> None:
        """Upload one document as an item and wait until it is searchable."""
        self.insert_documents([document], wait=insert_kwargs.get("wait", True))

    async def ainsert(self, document: Document, **insert_kwargs: Any) -> None:
        """Async form of :meth:`insert`."""
        await self.ainsert_documents([document], wait=insert_kwargs.get("wait", True))

    def _insert(self, nodes: Sequence[BaseNode], **insert_kwargs: Any) -> None:
        self.insert_documents(list(nodes), wait=insert_kwargs.get("wait", True))

    async def ainsert_nodes(self, nodes: Sequence[BaseNode], **insert_kwargs: Any) -> None:
        """Upload nodes as items (one item each) on the async client and wait."""
        await self.ainsert_documents(list(nodes), wait=insert_kwargs.get("wait", True))

    async def aupdate_ref_doc(self, document: Document, **update_kwargs: Any) -> None:
        """Async form of :meth:`update_ref_doc`."""
        await self.ainsert_documents([document], wait=update_kwargs.get("wait", True))

    def update_ref_doc(self, document: Document, **update_kwargs: Any) -> None:
        """Replace a document (uploading the same key again replaces the item)."""
        self.insert_documents([document], wait=update_kwargs.get("wait", True))

    def delete_ref_doc(
        self,
        ref_doc_id: str,
        delete_from_docstore: bool = False,  # noqa: ARG002 - nothing stored locally
        **delete_kwargs: Any,  # noqa: ARG002
    ) -> None:
        """Delete the item uploaded for a document.

        The item is found from this index's uploads, else by key (``ref_doc_id`` or
        ``<ref_doc_id>.txt``) among the instance's items.

        Raises:
            KeyError: No item matches ``ref_doc_id``.
        """
        client = self._connection.client
        item_id = self._known_item(ref_doc_id)
        if item_id is None:
            items = client.list_items(self.instance_id, namespace=self.namespace)
            item_id = self._match_item(ref_doc_id, items)
        client.delete_item(self.instance_id, item_id, namespace=self.namespace)
        self._forget(item_id)

    async def adelete_ref_doc(
        self,
        ref_doc_id: str,
        delete_from_docstore: bool = False,  # noqa: ARG002 - nothing stored locally
        **delete_kwargs: Any,  # noqa: ARG002
    ) -> None:
        """Async form of :meth:`delete_ref_doc`."""
        client = self._connection.async_client
        item_id = self._known_item(ref_doc_id)
        if item_id is None:
            items = await client.list_items(self.instance_id, namespace=self.namespace)
            item_id = self._match_item(ref_doc_id, items)
        await client.delete_item(self.instance_id, item_id, namespace=self.namespace)
        self._forget(item_id)

    def _known_item(self, ref_doc_id: str) -> str | None:
        with self._lock:
            return self._doc_items.get(ref_doc_id)

    def _match_item(self, ref_doc_id: str, items: Sequence[Item]) -> str:
        keys = {ref_doc_id, f"{ref_doc_id}.txt"}
        for item in items:
            if item.key in keys or item.id == ref_doc_id:
                return item.id
        raise KeyError(
            f"ref_doc_id {ref_doc_id!r}: no item of instance {self.instance_id!r} matches"
        )

    def _forget(self, item_id: str) -> None:
        with self._lock:
            for doc_id in [d for d, i in self._doc_items.items() if i == item_id]:
                del self._doc_items[doc_id]

    # -- engines -----------------------------------------------------------------------

    def as_retriever(self, **kwargs: Any) -> BaseRetriever:
        """An :class:`AISearchRetriever` over this instance (same connection).

        Args:
            **kwargs: Retriever options (``similarity_top_k``, ``filters`` ...).
        """
        kwargs.setdefault("namespace", self.namespace)
        return AISearchRetriever(self.instance_id, connection=self._connection, **kwargs)

    def as_query_engine(self, llm: LLMType | None = None, **kwargs: Any) -> BaseQueryEngine:
        """An :class:`AISearchQueryEngine` (service-side generation) over this instance.

        Args:
            llm: When given, LlamaIndex's ``RetrieverQueryEngine`` synthesises with this LLM
                over :meth:`as_retriever` instead.
            **kwargs: Query engine options (``streaming``, ``model``, search options ...).
        """
        if llm is not None:
            return super().as_query_engine(llm=llm, **kwargs)
        kwargs.setdefault("namespace", self.namespace)
        return AISearchQueryEngine(self.instance_id, connection=self._connection, **kwargs)

    def as_chat_engine(
        self,
        chat_mode: ChatMode = ChatMode.BEST,
        llm: LLMType | None = None,
        **kwargs: Any,
    ) -> BaseChatEngine:
        """An :class:`AISearchChatEngine` (service-side, multi-turn) over this instance.

        Args:
            chat_mode: Used only with ``llm`` (LlamaIndex's chat engines).
            llm: When given, LlamaIndex's chat engine for ``chat_mode`` runs with this LLM
                over :meth:`as_retriever` instead.
            **kwargs: Chat engine options (``system_prompt``, ``memory``, search options ...).
        """
        if llm is not None:
            return super().as_chat_engine(chat_mode=chat_mode, llm=llm, **kwargs)
        kwargs.setdefault("namespace", self.namespace)
        return AISearchChatEngine(self.instance_id, connection=self._connection, **kwargs)


class _Identity(TransformComponent):
    """A no-op transformation: AI Search chunks and embeds documents itself."""

    def __call__(self, nodes: Sequence[BaseNode], **kwargs: Any) -> Sequence[BaseNode]:  # noqa: ARG002
        return nodes
