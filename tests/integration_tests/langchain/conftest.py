"""Target switch for the LangChain integration tests.

By default every test runs against the session's local `aisearch_local` server (the
`local_server` / `docs_instance` fixtures). When CLOUDFLARE_ACCOUNT_ID,
CLOUDFLARE_API_TOKEN and AISEARCH_TEST_INSTANCE are set, the same tests target
Cloudflare instead; tests that need fault injection or extra instances are skipped then.

The connection is passed through the environment (the classes read it on construction),
which is also how the LangChain standard suites, whose parameters are properties, see it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from aisearch import AISearchClient

LIVE_ENV = ("CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_API_TOKEN", "AISEARCH_TEST_INSTANCE")
LIVE = all(os.environ.get(name) for name in LIVE_ENV)

QUERY = os.environ.get(
    "AISEARCH_TEST_QUERY", "How fine should I grind coffee for espresso extraction?"
)
"""A query with well over 3 hits in the sample corpus (the standard suites need >= 3);
set AISEARCH_TEST_QUERY for a live instance holding other documents."""


@dataclass
class Target:
    """Where the tests point, shared with the standard suites' properties."""

    instance_id: str = ""
    second_instance_id: str | None = None
    live: bool = LIVE
    extra: dict[str, str] = field(default_factory=dict)


TARGET = Target()


@pytest.fixture(scope="session")
def lc_second_instance(request):
    """A second local instance holding a few documents (None when live)."""
    if LIVE:
        return None
    server = request.getfixturevalue("local_server")
    instance_id = request.getfixturevalue("make_instance")("lc-milk")
    docs = {
        "milk/steaming.md": "Steaming milk for a flat white: stretch briefly, then texture "
        "the milk to a glossy microfoam at 55 to 60 degrees for espresso drinks.",
        "milk/latte-art.md": "Latte art needs microfoam and a well extracted espresso with "
        "crema; pour from height, then lower the pitcher to draw the heart.",
        "milk/oat-milk.md": "Oat milk foams well for espresso drinks when it is a barista "
        "edition; grind and dose stay the same as for dairy milk.",
    }
    with AISearchClient(
        account_id=server.account_id, api_token=server.token, base_url=server.base_url
    ) as client:
        ids = [client.upload_item(instance_id, key, text).id for key, text in docs.items()]
        client.wait_until_indexed(instance_id, ids, timeout=120)
    return instance_id


@pytest.fixture(autouse=True)
def lc_target(request, monkeypatch):
    """Point the classes at the local server (or Cloudflare when live)."""
    if LIVE:
        TARGET.instance_id = os.environ["AISEARCH_TEST_INSTANCE"]
        TARGET.second_instance_id = None
        yield TARGET
        return
    server = request.getfixturevalue("local_server")
    TARGET.instance_id = request.getfixturevalue("docs_instance")
    TARGET.second_instance_id = request.getfixturevalue("lc_second_instance")
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", server.account_id)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", server.token)
    monkeypatch.setenv("AISEARCH_BASE_URL", server.base_url)
    yield TARGET
    server.clear_faults()


@pytest.fixture
def local(request, lc_target):
    """The local server, for tests that inject faults (skipped when live)."""
    if lc_target.live:
        pytest.skip("needs the local server's fault injection")
    return request.getfixturevalue("local_server")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test of this directory ``integration`` (the one place that says so)."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.integration)
