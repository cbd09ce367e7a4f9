"""Fixtures of the aisearch_local server tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.integration_tests.server._helpers import upload


@pytest.fixture
def uploader(server_http: httpx.Client) -> Callable[..., dict[str, Any]]:
    def _upload(
        instance: str, key: str, text: str | bytes, metadata: Any = None, **kw: Any
    ) -> dict[str, Any]:
        return upload(server_http, instance, key, text, metadata, **kw)

    return _upload
