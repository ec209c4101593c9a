"""Users over the API: who am I (anyone), and user management (admins): list, create with a role,
change a role, issue another key, remove. Keys are answered once, at creation, never stored in clear."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from revenge.security.keys import (
    ROLES,
    USER_NAME_RE,
    LastAdmin,
    Role,
    UnknownUser,
    User,
    UserError,
    UserExists,
)
from revenge.web.auth import require_admin, require_user
from revenge.web.conn import app_state
from revenge.web.errors import ApiError, bad_request, not_found
from revenge.web.request_json import read_json
from revenge.web.responses import JSONResponse
from revenge.web.validate import json_object, string_field


def user_json(user: User, keys: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"id": user.id, "name": user.name, "role": user.role}
    if keys is not None:
        body["keys"] = keys
    return body


def _role(value: Any) -> Role:
    for role in ROLES:
        if value == role:
            return role
    raise bad_request("role", f"role must be one of {', '.join(ROLES)}")


def _name(request: Request) -> str:
    name = str(request.path_params["name"])
    if not USER_NAME_RE.fullmatch(name):
        raise not_found("user", "name")
    return name


def _user_error(exc: UserError, field: str) -> ApiError:
    if isinstance(exc, UnknownUser):
        return not_found("user", field)
    if isinstance(exc, UserExists):
        return ApiError(409, "conflict", str(exc), field)
    if isinstance(exc, LastAdmin):
        return ApiError(409, "last_admin", str(exc), field)
    return bad_request(field, str(exc))


async def get_me(request: Request) -> Response:
    return JSONResponse(user_json(require_user(request)))


async def list_users(request: Request) -> Response:
    require_admin(request)
    return JSONResponse({"users": [user_json(u, k) for u, k in app_state(request).users.list_users()]})


async def create_user(request: Request) -> Response:
    require_admin(request)
    body = json_object(await read_json(request))
    name = string_field(body, "name")
    role = _role(body.get("role", "listener"))
    try:
        user, key = app_state(request).users.add_user(name, role)
    except UserError as exc:
        raise _user_error(exc, "name") from None
    return JSONResponse({"user": user_json(user), "api_key": key}, status_code=201)


async def set_role(request: Request) -> Response:
    require_admin(request)
    name = _name(request)
    role = _role(json_object(await read_json(request)).get("role"))
    try:
        user = app_state(request).users.set_role(name, role)
    except UserError as exc:
        raise _user_error(exc, "name") from None
    return JSONResponse(user_json(user))


async def new_key(request: Request) -> Response:
    require_admin(request)
    name = _name(request)
    try:
        key = app_state(request).users.new_key(name)
    except UserError as exc:
        raise _user_error(exc, "name") from None
    return JSONResponse({"api_key": key}, status_code=201)


async def remove_user(request: Request) -> Response:
    require_admin(request)
    name = _name(request)
    try:
        app_state(request).users.remove_user(name)
    except UserError as exc:
        raise _user_error(exc, "name") from None
    return Response(status_code=204)


routes = [
    Route("/api/v1/me", get_me, methods=["GET"]),
    Route("/api/v1/users", list_users, methods=["GET"]),
    Route("/api/v1/users", create_user, methods=["POST"]),
    Route("/api/v1/users/{name}", remove_user, methods=["DELETE"]),
    Route("/api/v1/users/{name}/role", set_role, methods=["PUT"]),
    Route("/api/v1/users/{name}/keys", new_key, methods=["POST"]),
]
