"""The ``/rest/`` request loop: parameters (query string and, for POST, a form body: OpenSubsonic's
formPost), format, version, login, then the endpoint. Every answer but media is the envelope in HTTP
200, errors included, as clients expect; an unknown endpoint is an error envelope too, never a 404 page.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from revenge.errors import StoreUnavailable
from revenge.security.keys import User
from revenge.state import AppState
from revenge.subsonic.auth import authenticate
from revenge.subsonic.envelope import (
    CALLBACK_RE,
    CLIENT_MUST_UPGRADE,
    GENERIC,
    NOT_FOUND,
    SERVER_MUST_UPGRADE,
    SubsonicError,
    envelope,
    missing,
    render,
)
from revenge.web.conn import app_state
from revenge.web.errors import ApiError

log = logging.getLogger("revenge.subsonic")

MAX_FORM_BYTES = 64 * 1024


@dataclass
class Call:
    request: Request
    state: AppState
    params: list[tuple[str, str]]
    user: User

    def get(self, name: str) -> str | None:
        for key, value in self.params:
            if key == name:
                return value
        return None

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.params if key == name]

    def require(self, name: str) -> str:
        value = self.get(name)
        if value is None or value == "":
            raise missing(name)
        return value

    def int(self, name: str, default: int, low: int = 0, high: int = 2**31 - 1) -> int:
        raw = self.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise SubsonicError(GENERIC, f"Parameter {name} must be an integer") from None
        if not low <= value <= high:
            raise SubsonicError(GENERIC, f"Parameter {name} must be between {low} and {high}")
        return value

    def opt_int(self, name: str) -> int | None:
        return self.int(name, -1, -(2**31), 2**31 - 1) if self.get(name) not in (None, "") else None

    def bool(self, name: str, default: bool) -> bool:
        raw = self.get(name)
        return default if raw is None or raw == "" else raw.lower() in ("true", "1", "yes")


_DEVICE_CHARS = re.compile(r"[^A-Za-z0-9._:@-]")


def device_of(call: Call) -> str:
    """The client name (``c``) as a device id: the key of per-device progress, sessions and queue
    changes."""
    return "subsonic-" + _DEVICE_CHARS.sub("-", call.get("c") or "client")[:48]


Answer = Mapping[str, Any] | Response
Handler = Callable[[Call], Awaitable[Answer]]


async def _params(request: Request) -> list[tuple[str, str]]:
    params = list(request.query_params.multi_items())
    if request.method == "POST" and request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"):
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                raise SubsonicError(GENERIC, "The form body is too large")
        params += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    return params


def _check_version(version: str) -> None:
    try:
        major = int(version.split(".")[0])
    except ValueError:
        raise SubsonicError(GENERIC, "Parameter v must be a version such as 1.16.1") from None
    if major < 1:
        raise SubsonicError(CLIENT_MUST_UPGRADE, "Incompatible Subsonic REST protocol version: client must "
                                                 "upgrade")
    if major > 1:
        raise SubsonicError(SERVER_MUST_UPGRADE, "Incompatible Subsonic REST protocol version: server must "
                                                 "upgrade")


def make_endpoint(handlers: Mapping[str, Handler]) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        name = str(request.path_params["endpoint"]).removesuffix(".view")
        fmt, callback = request.query_params.get("f", "xml"), request.query_params.get("callback")
        if fmt == "jsonp" and not (callback and CALLBACK_RE.fullmatch(callback)):
            fmt = "json"  # a JSONP call without a usable callback: its error is readable JSON
        try:
            params = await _params(request)
            fmt = next((v for k, v in params if k == "f"), fmt)
            callback = next((v for k, v in params if k == "callback"), callback)
            if fmt == "jsonp" and not (callback and CALLBACK_RE.fullmatch(callback)):
                fmt = "json"
            values = dict(reversed(params))  # the first of each name
            handler = handlers.get(name)
            for required in ("v", "c"):
                if not values.get(required):
                    raise missing(required)
            _check_version(values["v"])
            state = app_state(request)
            address = request.client.host if request.client else "-"
            user = authenticate(state, values.get, address)
            if handler is None:
                raise SubsonicError(NOT_FOUND, f"Unknown endpoint: {name[:64]}")
            answer = await handler(Call(request, state, params, user))
        except SubsonicError as exc:
            return _render(envelope(error=exc), fmt, callback)
        except ApiError as exc:  # a shared helper's refusal, said the Subsonic way
            if exc.status == 416:
                raise  # a media answer's own status: players expect 416 for a range past the end
            code = NOT_FOUND if exc.status == 404 else GENERIC
            return _render(envelope(error=SubsonicError(code, exc.message)), fmt, callback)
        except StoreUnavailable:
            raise  # a 503 with Retry-After, by the app's handlers: the client should retry, not give up
        if isinstance(answer, Response):
            return answer
        return _render(envelope(answer), fmt, callback)

    return endpoint


def _render(document: Mapping[str, Any], fmt: str, callback: str | None) -> Response:
    body, media_type = render(document, fmt, callback)
    return Response(body, media_type=media_type.split(";")[0],
                    headers={"content-type": media_type, "cache-control": "no-store"})


def make_routes(handlers: Mapping[str, Handler]) -> list[Route]:
    endpoint = make_endpoint(handlers)
    return [Route("/rest/{endpoint:path}", endpoint, methods=["GET", "POST"])]
