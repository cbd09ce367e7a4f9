"""Fixtures shared by every unit test directory."""

from __future__ import annotations

import pytest

from aisearch._config import ENV_NAMES


@pytest.fixture(autouse=True)
def _no_credentials_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests never see the caller's credentials (the core's one table of variables)."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
