"""Fixtures for the LlamaIndex adapter tests against the real local server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, TypeVar

import llama_index.core.instrumentation as instrument
import pytest
import pytest_asyncio
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.span_handlers import BaseSpanHandler
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

    def once(self, start: type[BaseEvent], end: type[BaseEvent]) -> Any:
        """The end event, checking that exactly one start and one end event fired."""
        starts, ends = self.of(start), self.of(end)
        assert len(starts) == 1 and len(ends) == 1
        return ends[0]


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


Handler = TypeVar("Handler", BaseEventHandler, BaseSpanHandler)


def installed(handler: Handler) -> Iterator[Handler]:
    """Install an event or span handler on LlamaIndex's root dispatcher for one fixture."""
    root = instrument.get_dispatcher()  # type: ignore[attr-defined]
    if isinstance(handler, BaseSpanHandler):
        root.add_span_handler(handler)
        yield handler
        root.span_handlers.remove(handler)
    else:
        root.add_event_handler(handler)
        yield handler
        root.event_handlers.remove(handler)


@pytest.fixture
def collector() -> Iterator[EventCollector]:
    yield from installed(EventCollector())


@pytest.fixture(autouse=True)
def _no_faults(local_server: LocalServer) -> Iterator[None]:
    yield
    local_server.clear_faults()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test of this directory ``integration`` (the one place that says so)."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.integration)
