"""Management endpoints: namespaces, instances, stats, jobs and items (async).

The async module (``aisearch/_async/``) is written by hand; its sync twin (``aisearch/_sync/``)
is generated from it by ``scripts/unasync.py``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from aisearch._async._transport import _AsyncTransport
from aisearch._deadlines import agather
from aisearch._exceptions import ConflictError
from aisearch._models import Instance, InstanceStats, Item, ItemChunk, Job, JobLog, Namespace
from aisearch._params import (
    MAX_LIST_TEXT,
    check_bool,
    check_item_key,
    check_list_text,
    check_wait_args,
    instance_list_params,
    item_list_params,
)
from aisearch._parse import ITEMS_PER_PAGE, LIST_PER_PAGE, list_result_parser, result_parser
from aisearch._parse import none_parser as _none_parser
from aisearch._requests import ProgressCallback, _Request
from aisearch._retry import already_exists

__all__ = ["_AsyncManagement"]


class _AsyncManagement(_AsyncTransport):
    """Namespaces, instances, jobs and items (async)."""

    # ------------------------------------------------------------------ namespaces

    async def create_namespace(
        self, name: str, *, description: str | None = None, exist_ok: bool = False
    ) -> Namespace:
        """Create a namespace, or with ``exist_ok=True`` get it if it exists (get-or-create).

        Args:
            name: Namespace name.
            description: Up to 256 characters.
            exist_ok: When the namespace already exists (409, code 7009), return it as it is
                (its description is not changed) instead of raising ``ConflictError``.

        Returns:
            The namespace.
        """
        exist_ok = check_bool(exist_ok, "exist_ok")
        req = self._create_namespace_req(name, description)
        try:
            return await self._request(req, result_parser(Namespace, "namespace"))
        except ConflictError as exc:
            if not (exist_ok and already_exists(exc)):
                raise
        return await self.get_namespace(name)

    async def list_namespaces(self, *, search: str | None = None) -> list[Namespace]:
        """List every namespace (all pages).

        Args:
            search: Only namespaces whose name or description contains this text
                (case-insensitive).

        Returns:
            The namespaces.
        """
        params = (
            {} if search is None else {"search": check_list_text(search, "search", MAX_LIST_TEXT)}
        )
        return await self._paginate(self._namespaces_path(), Namespace, params, LIST_PER_PAGE)

    async def get_namespace(self, name: str) -> Namespace:
        """Read a namespace.

        Args:
            name: Namespace name.

        Returns:
            The namespace.
        """
        req = _Request("GET", self._namespace_path(name))
        return await self._request(req, result_parser(Namespace, "namespace"))

    async def update_namespace(
        self,
        name: str,
        *,
        description: str | None = None,
        public_endpoint_params: Mapping[str, Any] | None = None,
    ) -> Namespace:
        """Update a namespace's description and/or public endpoint settings (PUT).

        Only the fields given are sent; the ``default`` namespace's description cannot be
        changed (its public endpoint can).

        Args:
            name: Namespace name.
            description: Up to 256 characters.
            public_endpoint_params: The namespace's public endpoint settings (API.md 18.2; a
                PUT replaces the whole object).

        Returns:
            The updated namespace.

        Raises:
            InvalidRequestError: Neither field given, or a description over 256 characters.
        """
        req = self._update_namespace_req(name, description, public_endpoint_params)
        return await self._request(req, result_parser(Namespace, "namespace"))

    async def delete_namespace(self, name: str) -> None:
        """Delete an (empty) namespace.

        Args:
            name: Namespace name.
        """
        await self._request(_Request("DELETE", self._namespace_path(name)), _none_parser)

    # ------------------------------------------------------------------ instances

    async def create_instance(
        self,
        instance_id: str,
        *,
        namespace: str | None = None,
        exist_ok: bool = False,
        **config: Any,
    ) -> Instance:
        """Create an instance (built-in storage unless ``source`` is given).

        ``type`` may be omitted: the service infers it from ``source`` (an http(s) URL is a
        ``web-crawler``, a bucket name ``r2``; no source: an upload-only instance).

        With ``exist_ok=True`` this is a get-or-create: a second run of the same setup code
        gets the instance instead of failing.

        Args:
            instance_id: The new id.
            namespace: Namespace.
            exist_ok: When the instance already exists (409, code 7009), return it as it is
                (``config`` is not compared or applied; use ``update_instance`` for that)
                instead of raising ``ConflictError``. An "already exists" 409 is never retried.
            **config: Instance configuration fields (API.md section 10).

        Returns:
            The instance.
        """
        exist_ok = check_bool(exist_ok, "exist_ok")
        req = self._create_instance_req(instance_id, namespace, config)
        try:
            return await self._request(req, result_parser(Instance, "instance"))
        except ConflictError as exc:
            if not (exist_ok and already_exists(exc)):
                raise
        return await self.get_instance(instance_id, namespace=namespace)

    async def list_instances(
        self,
        *,
        namespace: str | None = None,
        search: str | None = None,
        hostname: str | None = None,
        order_by: str | None = None,
        order_by_direction: str | None = None,
    ) -> list[Instance]:
        """List every instance of a namespace (all pages).

        Args:
            namespace: Namespace.
            search: Only instances whose id contains this text (case-insensitive; 1 to 64
                characters).
            hostname: Only the instance(s) of this "Search for Agents" hostname (exact,
                case-insensitive; at most 253 characters).
            order_by: ``"created_at"``.
            order_by_direction: ``"asc"`` or ``"desc"``.

        Returns:
            The instances.
        """
        path = f"{self._account_path}/ai-search/namespaces/{self._ns(namespace)}/instances"
        params = instance_list_params(search, hostname, order_by, order_by_direction)
        return await self._paginate(path, Instance, params, LIST_PER_PAGE)

    async def get_instance(self, instance_id: str, *, namespace: str | None = None) -> Instance:
        """Read an instance.

        Args:
            instance_id: The instance id.
            namespace: Namespace.

        Returns:
            The instance.
        """
        req = _Request("GET", self._instance_path(instance_id, namespace))
        return await self._request(req, result_parser(Instance, "instance"))

    async def delete_instance(self, instance_id: str, *, namespace: str | None = None) -> None:
        """Delete an instance and all its indexed data.

        Args:
            instance_id: The instance id.
            namespace: Namespace.
        """
        req = _Request("DELETE", self._instance_path(instance_id, namespace))
        await self._request(req, _none_parser)

    async def update_instance(
        self, instance_id: str, *, namespace: str | None = None, **fields: Any
    ) -> Instance:
        """Update an instance's configuration (only the fields given are sent).

        Args:
            instance_id: The instance id.
            namespace: Namespace.
            **fields: Configuration fields to change (API.md section 10; ``id``, ``type``
                and ``hybrid_search_enabled`` cannot be updated).

        Returns:
            The updated instance.

        Raises:
            InvalidRequestError: No field, a create-only field, or a documented bound broken.
        """
        req = self._update_instance_req(instance_id, namespace, fields)
        return await self._request(req, result_parser(Instance, "instance"))

    async def purge_cache(self, instance_id: str, *, namespace: str | None = None) -> None:
        """Empty an instance's similarity cache: no earlier cached answer is served again.

        ``POST .../namespaces/{namespace}/instances/{id}/purge_cache`` (no body). Use it after
        changing the system prompt or the model, when cached answers would be stale.

        Args:
            instance_id: The instance id.
            namespace: Namespace.
        """
        req = _Request("POST", self._instance_path(instance_id, namespace, "/purge_cache"))
        await self._request(req, _none_parser)

    async def instance_stats(
        self, instance_id: str, *, namespace: str | None = None
    ) -> InstanceStats:
        """Read an instance's indexing statistics (item counts per status, engine figures).

        Args:
            instance_id: The instance id.
            namespace: Namespace.

        Returns:
            The statistics.
        """
        req = _Request("GET", self._instance_path(instance_id, namespace, "/stats"))
        return await self._request(req, result_parser(InstanceStats, "stats"))

    # ------------------------------------------------------------------ jobs

    async def create_job(
        self, instance_id: str, *, description: str | None = None, namespace: str | None = None
    ) -> Job:
        """Start a sync job (re-read the instance's source).

        Args:
            instance_id: The instance id.
            description: Free-text description.
            namespace: Namespace.

        Returns:
            The job.
        """
        req = self._create_job_req(instance_id, description, namespace)
        return await self._request(req, result_parser(Job, "job"))

    async def list_jobs(self, instance_id: str, *, namespace: str | None = None) -> list[Job]:
        """List every sync job of an instance (all pages).

        Args:
            instance_id: The instance id.
            namespace: Namespace.

        Returns:
            The jobs.
        """
        path = self._instance_path(instance_id, namespace, "/jobs")
        return await self._paginate(path, Job, {}, LIST_PER_PAGE)

    async def get_job(self, instance_id: str, job_id: str, *, namespace: str | None = None) -> Job:
        """Read a sync job.

        Args:
            instance_id: The instance id.
            job_id: The job id.
            namespace: Namespace.

        Returns:
            The job.
        """
        req = _Request("GET", self._job_path(instance_id, job_id, namespace))
        return await self._request(req, result_parser(Job, "job"))

    async def cancel_job(
        self, instance_id: str, job_id: str, *, namespace: str | None = None
    ) -> Job:
        """Cancel a sync job (``PATCH {"action": "cancel"}``).

        Args:
            instance_id: The instance id.
            job_id: The job id.
            namespace: Namespace.

        Returns:
            The job as the service returns it.
        """
        path = self._job_path(instance_id, job_id, namespace)
        req = _Request("PATCH", path, json={"action": "cancel"})
        return await self._request(req, result_parser(Job, "job"))

    async def job_logs(
        self, instance_id: str, job_id: str, *, namespace: str | None = None
    ) -> list[JobLog]:
        """List every log line of a sync job (all pages).

        Args:
            instance_id: The instance id.
            job_id: The job id.
            namespace: Namespace.

        Returns:
            The log lines.
        """
        path = self._job_path(instance_id, job_id, namespace, "/logs")
        return await self._paginate(path, JobLog, {}, LIST_PER_PAGE)

    # ------------------------------------------------------------------ items

    async def upload_item(
        self,
        instance_id: str,
        key: str,
        content: bytes | str,
        *,
        metadata: Mapping[str, Any] | None = None,
        wait_for_completion: bool = False,
        namespace: str | None = None,
    ) -> Item:
        """Upload (upsert) a file into a built-in-storage instance (multipart).

        Args:
            instance_id: The instance id.
            key: File name (at most 128 characters).
            content: File content: at most 10 MiB for plain text, code and PDFs (a PDF only
                on an instance with ``indexing_options.use_ocr``), 4 MiB for other formats.
            metadata: Custom metadata (sent as a JSON string).
            wait_for_completion: Ask the service to wait for indexing.
            namespace: Namespace.

        Returns:
            The item.
        """
        req = self._upload_req(instance_id, key, content, metadata, wait_for_completion, namespace)
        return await self._request(req, result_parser(Item, "item"))

    async def create_or_update_item(
        self,
        instance_id: str,
        key: str,
        *,
        wait_for_completion: bool = False,
        namespace: str | None = None,
    ) -> Item:
        """Create or re-index an item by key (``next_action: INDEX``).

        Args:
            instance_id: The instance id.
            key: Item key (at most 128 characters).
            wait_for_completion: Ask the service to wait for indexing.
            namespace: Namespace.

        Returns:
            The item.
        """
        body = {
            "key": check_item_key(key),
            "next_action": "INDEX",
            "wait_for_completion": check_bool(wait_for_completion, "wait_for_completion"),
        }
        req = _Request("PUT", self._instance_path(instance_id, namespace, "/items"), json=body)
        return await self._request(req, result_parser(Item, "item"))

    async def list_items(
        self,
        instance_id: str,
        *,
        metadata_filter: Mapping[str, Any] | None = None,
        status: str | None = None,
        item_id: str | None = None,
        key: str | None = None,
        search: str | None = None,
        source: str | None = None,
        sort_by: str | None = None,
        namespace: str | None = None,
    ) -> list[Item]:
        """List every item of an instance (all pages).

        Args:
            instance_id: The instance id.
            metadata_filter: Vectorize-style filter on item metadata.
            status: Only items with this status.
            item_id: Only the item with this id (at most one).
            key: Only items with this exact key (one per source).
            search: Only items whose key contains this text.
            source: Only items of this source (``"builtin"`` for uploads, or a source id such
                as ``"web-crawler:https://example.com"``).
            sort_by: ``"status"`` (the service's default) or ``"modified_at"`` (newest first).
            namespace: Namespace.

        Returns:
            The items.
        """
        path = self._instance_path(instance_id, namespace, "/items")
        params = self._list_items_params(metadata_filter, status) | item_list_params(
            item_id, key, search, source, sort_by
        )
        return await self._paginate(path, Item, params, ITEMS_PER_PAGE)

    async def get_item(
        self, instance_id: str, item_id: str, *, namespace: str | None = None
    ) -> Item:
        """Read an item.

        Args:
            instance_id: The instance id.
            item_id: The item id.
            namespace: Namespace.

        Returns:
            The item.
        """
        req = _Request("GET", self._item_path(instance_id, item_id, namespace))
        return await self._request(req, result_parser(Item, "item"))

    async def delete_item(
        self, instance_id: str, item_id: str, *, namespace: str | None = None
    ) -> None:
        """Delete an item.

        Args:
            instance_id: The instance id.
            item_id: The item id.
            namespace: Namespace.
        """
        req = _Request("DELETE", self._item_path(instance_id, item_id, namespace))
        await self._request(req, _none_parser)

    async def sync_item(
        self,
        instance_id: str,
        item_id: str,
        *,
        wait_for_completion: bool = False,
        namespace: str | None = None,
    ) -> Item:
        """Re-index one item (``PATCH {"next_action": "INDEX"}``).

        Args:
            instance_id: The instance id.
            item_id: The item id.
            wait_for_completion: Ask the service to wait for indexing.
            namespace: Namespace.

        Returns:
            The item.
        """
        req = self._sync_item_req(instance_id, item_id, wait_for_completion, namespace)
        return await self._request(req, result_parser(Item, "item"))

    async def list_item_chunks(
        self,
        instance_id: str,
        item_id: str,
        *,
        limit: int = 20,
        offset: int = 0,
        namespace: str | None = None,
    ) -> list[ItemChunk]:
        """List one page of an item's stored chunks.

        Args:
            instance_id: The instance id.
            item_id: The item id.
            limit: Chunks per page, 1 to 100.
            offset: Chunks to skip, at least 0.
            namespace: Namespace.

        Returns:
            Up to ``limit`` chunks, in the service's order.
        """
        req = self._item_chunks_req(instance_id, item_id, limit, offset, namespace)
        return await self._request(req, list_result_parser(ItemChunk, "chunks"))

    async def wait_until_indexed(
        self,
        instance_id: str,
        item_ids: Sequence[str] | None = None,
        *,
        timeout: float = 120.0,
        poll_interval: float = 0.5,
        on_progress: ProgressCallback | None = None,
        namespace: str | None = None,
    ) -> list[Item]:
        """Poll until items are indexed, an item fails, or the deadline passes.

        Args:
            instance_id: The instance id.
            item_ids: Items to wait for (every item of the instance when ``None``).
            timeout: Deadline in seconds (never polls forever).
            poll_interval: Seconds between polls.
            on_progress: Called as ``on_progress(done, total, items)`` after every poll.
            namespace: Namespace.

        Returns:
            The items, all ``completed`` (or ``skipped``).

        Raises:
            IndexingError: If an item ends with status ``error``.
            IndexingTimeoutError: If the deadline passes first.
        """
        timeout, poll_interval = check_wait_args(timeout, poll_interval, on_progress)
        ids = self._wait_ids(instance_id, item_ids, namespace)
        deadline = time.monotonic() + timeout
        while True:
            if ids is None:
                items = await self.list_items(instance_id, namespace=namespace)
            else:
                items = await agather(
                    *(self.get_item(instance_id, i, namespace=namespace) for i in ids)
                )
            remaining = self._wait_step(items, on_progress, deadline, timeout)
            if remaining is None:
                return items
            await self._sleep(min(poll_interval, remaining))
