"""Fixtures for the LlamaIndex adapter tests against the real local server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import llama_index.core.instrumentation as instrument
import pytest
import pytest_asyncio
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from pydantic import Field

from aisearch_local.testing import LocalServer
from llamaindex_aisearch import AISearchConnection


class EventCollector(BaseEventHandler):
    """Records every instrumentation event dispatched while installed."""

    events: list[BaseEvent] = Field(default_factory=list)

    @classmethod
    def class_name(cls) -> str:
        return "EventCollector"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        self.events.append(event)

    def of(self, cls: type[BaseEvent]) -> list[Any]:
        return [e for e in self.events if isinstance(e, cls)]


@pytest_asyncio.fixture
async def conn(local_server: LocalServer) -> AsyncIterator[AISearchConnection]:
    """A connection to the local server (no retries, so injected faults surface at once).

    Async, so that it runs in the test's event loop and can close the async clients that
    loop opened (an unclosed one would warn when garbage-collected in a later test).
    """
    connection = AISearchConnection(
        account_id=local_server.account_id,
        api_token=local_server.token,
        base_url=local_server.base_url,
        max_retries=0,
    )
    yield connection
    connection.close()
    await connection.aclose()


@pytest.fixture
def collector() -> Iterator[EventCollector]:
    root = instrument.get_dispatcher()  # type: ignore[attr-defined]
    handler = EventCollector()
    root.add_event_handler(handler)
    yield handler
    root.event_handlers.remove(handler)


@pytest.fixture(autouse=True)
def _no_faults(local_server: LocalServer) -> Iterator[None]:
    yield
    local_server.clear_faults()
