"""check_auth reads the credentials in one pass over the headers, with the same answers as
reading them through Starlette's ``request.headers`` (the first of repeated headers)."""

from __future__ import annotations

import hmac
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.requests import Request

from aisearch_local._http import check_auth
from aisearch_local.errors import APIError

TOKEN = "s3cret-token"


def _request(headers: list[tuple[bytes, bytes]], token: str | None = TOKEN) -> Request:
    app = SimpleNamespace(state=SimpleNamespace(token=token))
    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers, "app": app}
    return Request(scope)


def _reference(request: Request) -> None:
    """check_auth as it read the headers before (request.headers.get, str.isspace)."""
    token: str | None = request.app.state.token
    if token is None:
        return
    auth = request.headers.get("authorization")
    key = request.headers.get("x-auth-key")
    email = request.headers.get("x-auth-email")
    if auth is None and key is None:
        raise APIError(401, 1001, 'Missing "Authorization" header')
    if auth is not None:
        scheme, _, value = auth.partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer" or not value or any(c.isspace() for c in value):
            raise APIError(400, 6003, "Invalid request headers")
        if not hmac.compare_digest(value.encode(), token.encode()):
            raise APIError(403, 10000, "Authentication error")
        return
    if not email:
        raise APIError(400, 6003, "Invalid request headers")
    if not hmac.compare_digest((key or "").encode(), token.encode()):
        raise APIError(403, 10000, "Authentication error")


def _outcome(fn: Any, request: Request) -> tuple[int, int] | None:
    try:
        fn(request)
    except APIError as exc:
        return exc.status, exc.code
    return None


_NAMES = st.sampled_from(
    [b"authorization", b"x-auth-key", b"x-auth-email", b"host", b"content-type"]
)
_VALUES = st.one_of(
    st.sampled_from(
        [
            b"Bearer " + TOKEN.encode(),
            b"bearer " + TOKEN.encode(),
            b"Bearer  " + TOKEN.encode() + b" ",
            b"Bearer s3cret\xa0token",  # NBSP (latin-1): whitespace to str.isspace
            b"Bearer s3cret\x85token",  # NEL
            b"Bearer " + TOKEN.encode() + b"\x1c",  # a separator str.isspace counts
            b"Bearer",
            b"Token abc",
            TOKEN.encode(),
            b"me@example.com",
            b"",
        ]
    ),
    st.binary(max_size=30),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(_NAMES, _VALUES), max_size=6))
def test_the_same_answer_as_reading_request_headers(headers: list[tuple[bytes, bytes]]) -> None:
    assert _outcome(check_auth, _request(headers)) == _outcome(_reference, _request(headers))


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"authorization", b"Bearer " + TOKEN.encode())], None),
        # the first of repeated headers counts, as with request.headers.get
        (
            [(b"authorization", b"Bearer " + TOKEN.encode()), (b"authorization", b"Bearer x")],
            None,
        ),
        (
            [(b"authorization", b"Bearer x"), (b"authorization", b"Bearer " + TOKEN.encode())],
            (403, 10000),
        ),
        ([(b"authorization", b"Bearer s3cret\xa0token")], (400, 6003)),
        ([(b"x-auth-key", TOKEN.encode()), (b"x-auth-email", b"me@example.com")], None),
        ([(b"x-auth-key", TOKEN.encode())], (400, 6003)),
        ([], (401, 1001)),
    ],
)
def test_examples(headers: list[tuple[bytes, bytes]], expected: tuple[int, int] | None) -> None:
    assert _outcome(check_auth, _request(headers)) == expected


def test_no_token_accepts_everything() -> None:
    assert _outcome(check_auth, _request([], token=None)) is None
