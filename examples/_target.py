"""Where the example scripts run: a local server seeded with the sample corpus, or Cloudflare.

Every example calls :func:`coffee_target`. Without credentials it starts ``aisearch_local`` on
127.0.0.1 (a temporary data directory, a free port), creates the instance(s) it is asked for
and uploads the bundled sample corpus through the core client; the server stops when the
``with`` block ends. With ``CLOUDFLARE_ACCOUNT_ID``, ``CLOUDFLARE_API_TOKEN`` and
``AISEARCH_DEMO_INSTANCE`` set, it yields a client for Cloudflare and that instance instead, and
uploads nothing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from aisearch import AISearchClient

LIVE_ENV = ("CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_API_TOKEN", "AISEARCH_DEMO_INSTANCE")

# The local instance holding the whole corpus, and a split by folder for multi-instance examples.
COFFEE = "coffee"
SPLIT: dict[str, tuple[str, ...]] = {
    "beans-and-roasting": ("beans/", "roasting/"),
    "brewing-and-gear": ("brewing/", "equipment/", "troubleshooting/"),
    "cafe-menu": ("recipes/",),
}


@dataclass
class CoffeeTarget:
    """A connected client, the instance to use, and the local server (None when live)."""

    client: AISearchClient
    instance: str
    server: Any = None

    @property
    def live(self) -> bool:
        """Whether this runs against Cloudflare."""
        return self.server is None

    @property
    def connection(self) -> dict[str, Any]:
        """Connection keyword arguments for the adapters (empty when live: read from the env)."""
        if self.server is None:
            return {}
        return {
            "account_id": self.server.account_id,
            "api_token": self.server.token,
            "base_url": self.server.base_url,
        }


def live_instances() -> list[str]:
    """Live mode's instances: ``AISEARCH_DEMO_INSTANCES`` (comma-separated), else the one."""
    listed = os.environ.get("AISEARCH_DEMO_INSTANCES", "")
    names = [n.strip() for n in listed.split(",") if n.strip()]
    return names or [os.environ["AISEARCH_DEMO_INSTANCE"]]


def is_live() -> bool:
    """True when the three live-mode environment variables are set."""
    return all(os.environ.get(name, "").strip() for name in LIVE_ENV)


def _seed(
    client: AISearchClient, instances: Mapping[str, Sequence[str] | None], config: dict[str, Any]
) -> None:
    from aisearch_local.sample_corpus import CUSTOM_METADATA, iter_sample_documents

    docs = list(iter_sample_documents())
    uploads = []
    for name, folders in instances.items():
        client.create_instance(name, custom_metadata=CUSTOM_METADATA, **config)
        uploads += [(name, d) for d in docs if folders is None or d.key.startswith(tuple(folders))]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(
            pool.map(
                lambda job: client.upload_item(
                    job[0], job[1].key, job[1].data, metadata=job[1].metadata
                ),
                uploads,
            )
        )
    for name in instances:
        client.wait_until_indexed(name, timeout=60)


@contextmanager
def coffee_target(
    instances: Mapping[str, Sequence[str] | None] | None = None,
    **config: Any,
) -> Iterator[CoffeeTarget]:
    """Yield a client and instance: the local server with the sample corpus, or Cloudflare.

    Args:
        instances: Local instances to create, each with the corpus folders it holds (None: the
            whole corpus). Default: one instance ``coffee`` with everything. The target's
            ``instance`` is the first of them.
        **config: Instance configuration for the local instances (API.md section 10).
    """
    logging.basicConfig(level=logging.WARNING)  # before wordllama's basicConfig(INFO), if used
    if is_live():
        with AISearchClient() as client:
            yield CoffeeTarget(client=client, instance=os.environ["AISEARCH_DEMO_INSTANCE"])
        return
    instances = instances or {COFFEE: None}

    from aisearch_local.testing import LocalServer

    config = {
        "index_method": {"vector": True, "keyword": True},
        "retrieval_options": {"keyword_match_mode": "or"},
        **config,
    }
    with (
        LocalServer(token="example-token") as server,
        AISearchClient(
            account_id=server.account_id, api_token=server.token, base_url=server.base_url
        ) as client,
    ):
        _seed(client, instances, config)
        yield CoffeeTarget(client=client, instance=next(iter(instances)), server=server)
