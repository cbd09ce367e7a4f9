"""``public_endpoint_params`` of an instance or a namespace: validation, defaults, the endpoint id.

API.md section 18.2: a PUT replaces the whole object (every omitted field reverts to its
default) except ``custom_domains``, which is kept when omitted (or null) and removed by ``[]``.
``public_endpoint_id`` is generated the first time the endpoint is enabled and kept forever,
also when the endpoint is disabled or ``public_endpoint_params`` is set to null; a client cannot
set it. Every check raises :class:`~aisearch_local.errors.ValidationError` (400 / 7001) naming
the field, or :class:`~aisearch_local.errors.APIError` 400 / 7096 and 400 / 7097.

Nothing here knows about HTTP or the store: :func:`apply_public_params` takes the previous
configuration and, for a namespace, the names of its instances.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Collection, Mapping
from typing import Any

from aisearch_local.errors import APIError, bad_request, json_type

__all__ = [
    "DEFAULT_MCP_DESCRIPTION",
    "ENDPOINT_ID_RE",
    "apply_public_params",
    "effective_params",
    "new_endpoint_id",
    "normalize_public_params",
]

FIELD = "public_endpoint_params"
DEFAULT_MCP_DESCRIPTION = "Finds exactly what you're looking for"
ENDPOINT_ID_RE = re.compile(r"^[0-9a-f]{32}$")
"""What :func:`new_endpoint_id` makes: 128 random bits as lower-case hex (a DNS label)."""

MAX_AUTHORIZED_HOSTS = 100
MAX_DESCRIPTION = 4096
MAX_INSTANCES_ALLOWED = 10
PERIOD_MS = (60_000, 3_600_000)
MAX_REQUESTS = 2**31 - 1
TECHNIQUES = ("fixed", "sliding")

_KEYS = (
    "enabled",
    "authorized_hosts",
    "rate_limit",
    "mcp",
    "search_endpoint",
    "chat_completions_endpoint",
    "custom_domains",
    "default_domain_enabled",
)
_LABEL_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_HOST_RE = re.compile(r"^(?:\*|[a-z0-9.*-]{1,253})$")
_ORIGIN_RE = re.compile(r"^https?://[a-z0-9.-]{1,253}(?::[0-9]{1,5})?$")
_ID_RE = re.compile(r"^[a-z0-9_]+(?:-[a-z0-9_]+)*$")


def new_endpoint_id() -> str:
    """Return a fresh public endpoint id (32 lower-case hex characters, 128 random bits)."""
    return secrets.token_hex(16)


def _defaults(namespace: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "enabled": False,
        "authorized_hosts": [],
        "rate_limit": {"requests": 120, "period_ms": 60_000, "technique": "fixed"},
        "mcp": {"description": DEFAULT_MCP_DESCRIPTION, "disabled": False},
        "search_endpoint": {"disabled": False},
        "chat_completions_endpoint": {"disabled": False},
        "custom_domains": [],
        "default_domain_enabled": True,
    }
    if namespace:
        out["instances_allowed"] = []
    return out


def _object(value: Any, field: str, keys: Collection[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad_request(field, f"must be an object (got {json_type(value)})")
    for key in value:
        if key not in keys:
            shown = key if len(key) <= 64 else key[:64] + "..."
            raise bad_request(
                f"{field}.{shown}", f"unknown field; the fields are {', '.join(keys)}"
            )
    return value


def _bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise bad_request(field, f"must be a boolean (got {json_type(value)})")
    return value


def _int(value: Any, field: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        shown = repr(value) if isinstance(value, (int, float)) else json_type(value)
        raise bad_request(field, f"must be an integer between {lo} and {hi} (got {shown})")
    return value


def _list(value: Any, field: str, most: int) -> list[Any]:
    if not isinstance(value, list) or len(value) > most:
        got = f"{len(value)} entries" if isinstance(value, list) else json_type(value)
        raise bad_request(field, f"must be a list of at most {most} entries (got {got})")
    return value


def _fqdn(value: Any, field: str) -> str:
    text = value.strip().lower().rstrip(".") if isinstance(value, str) else None
    labels = text.split(".") if text else []
    if (
        text is None
        or len(text) > 253
        or len(labels) < 2
        or not all(_LABEL_RE.fullmatch(label) for label in labels)
    ):
        shown = repr(value[:80]) if isinstance(value, str) else json_type(value)
        raise bad_request(
            field,
            "must be a fully qualified domain name of up to 253 characters such as "
            f"search.example.com, without wildcard (got {shown})",
        )
    return text


def _authorized_host(value: Any, field: str) -> str:
    """``*``, a host name (``example.com``, ``*.example.com``) or an origin (``https://a.b:8443``)."""
    text = value.strip().lower().rstrip("/") if isinstance(value, str) else None
    if text is None or not (_HOST_RE.fullmatch(text) or _ORIGIN_RE.fullmatch(text)):
        shown = repr(value[:80]) if isinstance(value, str) else json_type(value)
        raise bad_request(
            field,
            "must be '*', a host name such as example.com or *.example.com, or an origin such "
            f"as https://example.com:8443 (got {shown})",
        )
    return text


def normalize_public_params(
    raw: Any,
    *,
    namespace: bool,
    previous: Mapping[str, Any] | None = None,
    instances: Collection[str] = (),
) -> dict[str, Any] | None:
    """Validate a ``public_endpoint_params`` value and fill in every default.

    Args:
        raw: The value sent (None clears the configuration).
        namespace: Whether it belongs to a namespace (which adds ``instances_allowed``).
        previous: The stored value, whose ``custom_domains`` an omitted field keeps.
        instances: The instances of the namespace (``instances_allowed`` must name them).

    Returns:
        The complete object, or None.

    Raises:
        ValidationError: A field of the wrong type or out of range (400 / 7001).
        APIError: 400 / 7096 (default domain off without a custom domain), 400 / 7097
            (``instances_allowed`` names an unknown instance).
    """
    if raw is None:
        return None
    keys = (*_KEYS, "instances_allowed") if namespace else _KEYS
    body = _object(raw, FIELD, keys)
    out = _defaults(namespace)
    if "enabled" in body:
        out["enabled"] = _bool(body["enabled"], f"{FIELD}.enabled")
    if body.get("authorized_hosts") is not None:
        hosts = _list(body["authorized_hosts"], f"{FIELD}.authorized_hosts", MAX_AUTHORIZED_HOSTS)
        out["authorized_hosts"] = list(
            dict.fromkeys(
                _authorized_host(h, f"{FIELD}.authorized_hosts[{i}]") for i, h in enumerate(hosts)
            )
        )
    if body.get("rate_limit") is not None:
        f = f"{FIELD}.rate_limit"
        rl = _object(body["rate_limit"], f, ("requests", "period_ms", "technique"))
        limit = out["rate_limit"]
        if rl.get("requests") is not None:
            limit["requests"] = _int(rl["requests"], f"{f}.requests", 1, MAX_REQUESTS)
        if rl.get("period_ms") is not None:
            limit["period_ms"] = _int(rl["period_ms"], f"{f}.period_ms", *PERIOD_MS)
        if rl.get("technique") is not None:
            if rl["technique"] not in TECHNIQUES:
                raise bad_request(f"{f}.technique", "must be fixed or sliding")
            limit["technique"] = rl["technique"]
    if body.get("mcp") is not None:
        m = _object(body["mcp"], f"{FIELD}.mcp", ("description", "disabled"))
        if m.get("description") is not None:
            desc = m["description"]
            if not isinstance(desc, str) or not 1 <= len(desc.strip()) <= MAX_DESCRIPTION:
                raise bad_request(
                    f"{FIELD}.mcp.description",
                    f"must be a string of 1 to {MAX_DESCRIPTION} characters",
                )
            out["mcp"]["description"] = desc
        if m.get("disabled") is not None:
            out["mcp"]["disabled"] = _bool(m["disabled"], f"{FIELD}.mcp.disabled")
    for route in ("search_endpoint", "chat_completions_endpoint"):
        if body.get(route) is not None:
            r = _object(body[route], f"{FIELD}.{route}", ("disabled",))
            if r.get("disabled") is not None:
                out[route]["disabled"] = _bool(r["disabled"], f"{FIELD}.{route}.disabled")
    if body.get("custom_domains") is not None:
        domains = _list(body["custom_domains"], f"{FIELD}.custom_domains", 1)
        out["custom_domains"] = [
            _fqdn(d, f"{FIELD}.custom_domains[{i}]") for i, d in enumerate(domains)
        ]
    elif previous is not None and isinstance(previous.get("custom_domains"), list):
        out["custom_domains"] = list(previous["custom_domains"])
    if "default_domain_enabled" in body:
        out["default_domain_enabled"] = _bool(
            body["default_domain_enabled"], f"{FIELD}.default_domain_enabled"
        )
    if not out["default_domain_enabled"] and not out["custom_domains"]:
        raise APIError(
            400,
            7096,
            "disabling_the_default_domain_requires_at_least_one_custom_domain: "
            f"{FIELD}.default_domain_enabled is false and custom_domains is empty",
        )
    if namespace and body.get("instances_allowed") is not None:
        f = f"{FIELD}.instances_allowed"
        allowed = _list(body["instances_allowed"], f, MAX_INSTANCES_ALLOWED)
        for i, iid in enumerate(allowed):
            if not isinstance(iid, str) or len(iid) > 64 or not _ID_RE.fullmatch(iid):
                raise bad_request(
                    f"{f}[{i}]",
                    "must be an instance id: 1 to 64 lowercase letters, digits, '_' and single '-'",
                )
            if iid not in instances:
                raise APIError(
                    400,
                    7097,
                    f"instances_allowed_contains_unknown_instances: {f}[{i}] {iid!r} is not an "
                    "instance of this namespace",
                )
        out["instances_allowed"] = list(dict.fromkeys(allowed))
    return out


def apply_public_params(
    patch: dict[str, Any],
    previous: Mapping[str, Any] | None,
    *,
    namespace: bool,
    instances: Collection[str] = (),
) -> dict[str, Any]:
    """Validate the ``public_endpoint_params`` of a create or update body, in place.

    Drops a client-sent ``public_endpoint_id`` (the server's own), normalises
    ``public_endpoint_params`` when present, and adds ``public_endpoint_id`` the first time the
    endpoint is enabled.

    Args:
        patch: The validated fields about to be stored (an instance configuration, or a
            namespace's extra fields).
        previous: What is stored now (None when creating).
        namespace: Whether the object is a namespace.
        instances: The instances of the namespace.

    Returns:
        ``patch``.
    """
    patch.pop("public_endpoint_id", None)
    if FIELD not in patch:
        return patch
    old = previous.get(FIELD) if previous is not None else None
    params = normalize_public_params(
        patch[FIELD],
        namespace=namespace,
        previous=old if isinstance(old, dict) else None,
        instances=instances,
    )
    patch[FIELD] = params
    old_id = previous.get("public_endpoint_id") if previous is not None else None
    if isinstance(old_id, str) and ENDPOINT_ID_RE.fullmatch(old_id):
        patch["public_endpoint_id"] = old_id
    elif params is not None and params["enabled"]:
        patch["public_endpoint_id"] = new_endpoint_id()
    return patch


def effective_params(stored: Any, *, namespace: bool) -> dict[str, Any]:
    """The configuration a public endpoint runs with: the stored object over the defaults.

    Lenient: a stored value this server did not write (an older version, a hand-edited
    database) never fails a request; when it does not validate, the defaults apply (and so the
    endpoint is not enabled).
    """
    if not isinstance(stored, dict):
        return _defaults(namespace)
    try:
        params = normalize_public_params(
            {k: v for k, v in stored.items() if k in _KEYS}, namespace=False
        )
    except (APIError, ValueError):  # ValidationError is a ValueError
        return _defaults(namespace)
    assert params is not None
    if namespace:
        params["instances_allowed"] = _stored_allowlist(stored.get("instances_allowed"))
    return params


def _stored_allowlist(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [v for v in value if isinstance(v, str)][:MAX_INSTANCES_ALLOWED]
