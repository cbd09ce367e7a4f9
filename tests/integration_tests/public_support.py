"""Public endpoints on the session's local server, for the client and adapter tests.

``PublicSetup`` makes (through the management API, with the server's token) two small
instances in a fresh namespace, switches on the public endpoint of the first instance and of
the namespace, and gives their URLs: what a user copies from the dashboard. The tests then
reach them with no token at all.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from aisearch_local.testing import LocalServer

DOCS: dict[str, dict[str, str]] = {
    "brew": {
        "espresso.md": "Espresso is brewed by forcing hot water through finely ground coffee "
        "for 25 to 30 seconds; grind finer when the shot runs fast.",
        "pour-over.md": "Pour-over coffee uses a medium grind and water just off the boil, "
        "15 grams of coffee to 250 grams of water.",
    },
    "tea": {
        "green.md": "Green tea is steeped at 80 degrees for two minutes; boiling water makes "
        "it bitter.",
        "black.md": "Black tea takes water at a full boil and steeps for four minutes.",
    },
}
QUERY = "How long is espresso brewed?"


@dataclass
class PublicSetup:
    """The URLs of one instance's and one namespace's public endpoints, and their ids."""

    namespace: str
    instances: dict[str, str]  # short name -> instance id
    instance_url: str
    namespace_url: str
    admin: httpx.Client

    def fresh_endpoint(self, params: dict[str, Any]) -> str:
        """The URL of a new one-document instance's endpoint with ``params`` (enabled)."""
        iid = f"solo-{uuid.uuid4().hex[:6]}"
        body = {"id": iid, "public_endpoint_params": {"enabled": True, **params}}
        created = _ok(
            self.admin.post(f"/ai-search/namespaces/{self.namespace}/instances", json=body)
        )
        _ok(
            self.admin.post(
                f"/ai-search/namespaces/{self.namespace}/instances/{iid}/items",
                files={"file": ("tea.md", DOCS["tea"]["green.md"].encode())},
                data={"wait_for_completion": "true"},
            )
        )
        return f"{self.instance_url.rsplit('/', 1)[0]}/{created['public_endpoint_id']}"


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code < 300, f"{response.status_code}: {response.text}"
    result: dict[str, Any] = response.json()["result"]
    return result


def make_public_setup(server: LocalServer, admin: httpx.Client) -> PublicSetup:
    """Create the namespace, its two instances and their documents; enable the endpoints."""
    ns = f"pub-{uuid.uuid4().hex[:8]}"
    _ok(admin.post("/ai-search/namespaces", json={"name": ns}))
    ids: dict[str, str] = {}
    endpoint_id = ""
    for short, docs in DOCS.items():
        iid = f"{short}-{uuid.uuid4().hex[:6]}"
        created = _ok(
            admin.post(
                f"/ai-search/namespaces/{ns}/instances",
                json={"id": iid, "public_endpoint_params": {"enabled": short == "brew"}},
            )
        )
        if short == "brew":
            endpoint_id = str(created["public_endpoint_id"])
        for key, text in docs.items():
            _ok(
                admin.post(
                    f"/ai-search/namespaces/{ns}/instances/{iid}/items",
                    files={"file": (key, text.encode())},
                    data={"wait_for_completion": "true"},
                )
            )
        ids[short] = iid
    params = {"enabled": True, "instances_allowed": list(ids.values())}
    ns_id = _ok(admin.put(f"/ai-search/namespaces/{ns}", json={"public_endpoint_params": params}))[
        "public_endpoint_id"
    ]
    root = f"http://127.0.0.1:{server.port}/_public"
    return PublicSetup(
        namespace=ns,
        instances=ids,
        instance_url=f"{root}/{endpoint_id}",
        namespace_url=f"{root}/ns-{ns_id}",
        admin=admin,
    )
