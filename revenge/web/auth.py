"""Who is calling: the API key in ``Authorization: Bearer``."""

from __future__ import annotations

from starlette.requests import Request

from revenge.security.keys import User
from revenge.state import AppState
from revenge.web.errors import ApiError

_UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Bearer realm="revenge"'}


def app_state(request: Request) -> AppState:
    state: AppState = request.state.revenge
    return state


def bearer_key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def require_user(request: Request) -> User:
    """The authenticated user, or a 401 with the error body."""
    key = bearer_key(request)
    if key is None:
        raise ApiError(401, "unauthorized", "missing API key: send Authorization: Bearer <key>",
                       "Authorization", _UNAUTHORIZED_HEADERS)
    user = app_state(request).users.authenticate(key)
    if user is None:
        raise ApiError(401, "unauthorized", "invalid API key", "Authorization", _UNAUTHORIZED_HEADERS)
    return user


def require_stream_user(request: Request) -> User:
    """Media routes: the bearer header, or ``?api_key=`` because players cannot send headers on
    segment requests. (Stopgap until signed stream tokens replace the query key.)"""
    if bearer_key(request) is not None:
        return require_user(request)
    key = request.query_params.get("api_key")
    if not key:
        raise ApiError(401, "unauthorized", "missing credentials: Authorization header or api_key",
                       "api_key", _UNAUTHORIZED_HEADERS)
    user = app_state(request).users.authenticate(key)
    if user is None:
        raise ApiError(401, "unauthorized", "invalid API key", "api_key", _UNAUTHORIZED_HEADERS)
    return user
