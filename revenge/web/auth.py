"""Who is calling: the API key in ``Authorization: Bearer``, or on media routes a signed stream token."""

from __future__ import annotations

import time

from starlette.requests import Request

from revenge.security.keys import User
from revenge.security.signing import StreamGrant, TokenError, sign_stream_token, verify_stream_token
from revenge.state import AppState
from revenge.web.conn import Conn, app_state, header_value
from revenge.web.errors import ApiError

_UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Bearer realm="revenge"'}


def bearer_key(conn: Conn) -> str | None:
    return bearer_of(header_value(conn, b"authorization"))


def bearer_of(header: str | None) -> str | None:
    """The key of an ``Authorization: Bearer <key>`` header value (None when absent or another scheme)."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def require_user(conn: Conn) -> User:
    """The user whose API key the ``Authorization: Bearer`` header carries, or a 401 with the error body."""
    key = bearer_key(conn)
    if key is None:
        raise ApiError(401, "unauthorized", "missing API key: send Authorization: Bearer <key>",
                       "Authorization", _UNAUTHORIZED_HEADERS)
    user = app_state(conn).users.authenticate(key)
    if user is None:
        raise ApiError(401, "unauthorized", "invalid API key", "Authorization", _UNAUTHORIZED_HEADERS)
    return user


def require_admin(conn: Conn) -> User:
    """``require_user``, and that user must be an admin (403 otherwise)."""
    user = require_user(conn)
    if not user.is_admin:
        raise ApiError(403, "forbidden", "this needs an admin's API key")
    return user


def require_stream_user(request: Request, item_id: str | None = None) -> User:
    """Media routes (``/api/v1/stream/{item_id}/…``): a signed stream token for that item in ``?t=``
    (players send no headers on segment requests; the API hands tokens out in playback sessions), or
    the bearer header. ``item_id`` defaults to the path's. Missing credentials → 401; a token that is
    tampered, expired, for another item or for a user who no longer exists → 403."""
    if bearer_key(request) is not None:
        return require_user(request)
    token = request.query_params.get("t")
    if not token:
        raise ApiError(401, "unauthorized",
                       "missing credentials: a signed stream URL (?t=, from POST /api/v1/playback/sessions) "
                       "or Authorization: Bearer <key>", "t", _UNAUTHORIZED_HEADERS)
    state = app_state(request)
    path_item = item_id if item_id is not None else str(request.path_params.get("item_id", ""))
    try:
        grant = verify_token(state, token, path_item)
    except TokenError as exc:
        code = "token_expired" if exc.reason == "expired" else "invalid_token"
        raise ApiError(403, code, str(exc), "t") from None
    user = state.users.by_id(grant.user_id)
    if user is None:
        raise ApiError(403, "invalid_token", "the user of this stream token no longer exists", "t")
    return user


def verify_token(state: AppState, token: str, item_id: str) -> StreamGrant:
    """The grant of a stream token (or an events token: ``item_id`` is then what it was signed for)."""
    now = int(time.time())
    try:
        return verify_stream_token(state.stream_secrets.current(), token, item_id, now)
    except TokenError as exc:
        # Signed by another instance after a rotation this one has not read yet: once more with the
        # store's secrets (the source bounds how often that reads the store).
        if exc.reason != "bad_signature" or (newer := state.stream_secrets.after_mismatch()) is None:
            raise
        return verify_stream_token(newer, token, item_id, now)


def issue_stream_token(state: AppState, user_id: str, item_id: str,
                       expires_at: int | None = None) -> tuple[str, int]:
    """A token for ``user_id`` to stream ``item_id`` and its expiry (unix seconds; default: now + the
    configured TTL), signed with the current secret. Same inputs, same secret: same token."""
    if expires_at is None:
        expires_at = int(time.time()) + state.settings.token_ttl_seconds
    return sign_stream_token(state.stream_secrets.current()[0], user_id, item_id, expires_at), expires_at


def stream_token_for(request: Request, user: User, item_id: str) -> str:
    """The token a playlist served to this request writes into its URIs: the request's own ``?t=``
    (already verified by ``require_stream_user``), or a fresh one when it came with the bearer header."""
    token = request.query_params.get("t")
    if token and bearer_key(request) is None:
        return token
    return issue_stream_token(app_state(request), user.id, item_id)[0]
