"""The explorer and playground: static files served by the server itself (docs/explorer.md).

``GET /client/v4/_local/ui/`` (and ``GET /``, the same page) answers ``ui/index.html``;
``GET /client/v4/_local/ui/app.js`` and ``.../style.css`` its script and style sheet (one route
each in the route table: nothing else is served). The page holds no secret, so
these routes need no token: the page asks for one when the REST API answers 401, and keeps it
in the tab's ``sessionStorage``. It talks to the server only through the REST routes the
client uses, from the same origin, so the perimeter (:mod:`aisearch_local.guard`) lets its
requests through and still refuses other origins'.

Every answer carries a strict Content-Security-Policy (scripts and styles from this origin
only, no inline script, no ``eval``, no frames, requests to this origin only),
``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY`` and ``Cache-Control:
no-store``. The page renders every server-provided string with ``textContent``, never as
HTML: chunk text and metadata come from indexed files, which an attacker may have written.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

__all__ = ["CSP", "SECURITY_HEADERS", "UI_PATH", "ui_asset", "ui_index"]

UI_PATH = "/client/v4/_local/ui"
"""Where the explorer is served (``UI_PATH + "/"``; ``/`` serves the same page)."""

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)
"""The Content-Security-Policy of every explorer file."""

SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}
"""Headers of every explorer answer (see the module docstring)."""

_FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}


@cache
def _read(name: str) -> bytes:
    return files("aisearch_local").joinpath("ui", name).read_bytes()


def _file(name: str) -> Response:
    media_type = _FILES.get(name)
    if media_type is None:
        raise HTTPException(404)  # the 404 / 7003 envelope, as any unknown path
    return Response(_read(name), headers=SECURITY_HEADERS, media_type=media_type)


async def ui_index(request: Request) -> Response:  # noqa: ARG001 - a Starlette handler
    """The explorer and playground page (no auth: it asks for the token itself)."""
    return _file("index.html")


async def ui_asset(request: Request) -> Response:
    """The script or the style sheet of the explorer page (no auth)."""
    return _file(request.url.path.rpartition("/")[2])
