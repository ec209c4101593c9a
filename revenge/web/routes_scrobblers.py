"""Linking the caller's ListenBrainz and Last.fm accounts: parse, call ``ScrobblerService``, answer.

``GET /api/v1/me/scrobblers`` lists both links (state, account, outbox size, last error; never a
secret). ListenBrainz: ``PUT …/listenbrainz {token}`` (checked with the service first). Last.fm (web
auth): ``GET …/lastfm/authorize[?cb=]`` answers the URL to send the user to and its token, then
``PUT …/lastfm {token}`` exchanges the authorised token for the session key. ``DELETE`` unlinks.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from revenge.playback.scrobbles import ServiceName
from revenge.scrobblers.model import InvalidCredentials, ServiceUnavailable
from revenge.scrobblers.service import NotConfigured, ScrobblerService
from revenge.web.auth import require_user
from revenge.web.conn import app_state
from revenge.web.errors import ApiError, bad_request, not_found
from revenge.web.request_json import read_json
from revenge.web.responses import JSONResponse
from revenge.web.validate import json_object, string_field

TOKEN_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~+/=-]{0,127}")
CALLBACK_RE = re.compile(r"https?://[\x21-\x7e]{1,2000}")


def _service(request: Request) -> ScrobblerService:
    return app_state(request).scrobblers


def _upstream(exc: ServiceUnavailable) -> ApiError:
    return ApiError(502, "upstream_unavailable", str(exc))


def _not_configured() -> ApiError:
    return ApiError(409, "not_configured", "Last.fm scrobbling needs the server's lastfm_api_key and "
                                           "lastfm_api_secret (ask the admin)")


async def _token(request: Request) -> str:
    token = string_field(json_object(await read_json(request)), "token")
    if not TOKEN_RE.fullmatch(token):
        raise bad_request("token", "token must be 1-128 characters of letters, digits and . _ ~ + / = -")
    return token


async def list_scrobblers(request: Request) -> Response:
    user = require_user(request)
    return JSONResponse({"scrobblers": await _service(request).statuses(user.id)})


async def _get(request: Request, service: ServiceName) -> Response:
    user = require_user(request)
    return JSONResponse(await _service(request).status(user.id, service))


async def _delete(request: Request, service: ServiceName) -> Response:
    user = require_user(request)
    if not await _service(request).unlink(user.id, service):
        raise not_found(f"{service} link", "service")
    return Response(status_code=204)


async def get_listenbrainz(request: Request) -> Response:
    return await _get(request, "listenbrainz")


async def put_listenbrainz(request: Request) -> Response:
    user = require_user(request)
    token = await _token(request)
    try:
        await _service(request).link_listenbrainz(user.id, token)
    except InvalidCredentials:
        raise ApiError(400, "invalid_token", "ListenBrainz says this token is not valid", "token") from None
    except ServiceUnavailable as exc:
        raise _upstream(exc) from None
    return JSONResponse(await _service(request).status(user.id, "listenbrainz"))


async def delete_listenbrainz(request: Request) -> Response:
    return await _delete(request, "listenbrainz")


async def get_lastfm(request: Request) -> Response:
    return await _get(request, "lastfm")


async def authorize_lastfm(request: Request) -> Response:
    require_user(request)
    callback = request.query_params.get("cb") or None
    if callback is not None and not CALLBACK_RE.fullmatch(callback):
        raise bad_request("cb", "cb must be an http:// or https:// URL")
    try:
        url, token = await _service(request).lastfm_authorize(callback)
    except NotConfigured:
        raise _not_configured() from None
    except ServiceUnavailable as exc:
        raise _upstream(exc) from None
    body: dict[str, Any] = {"url": url, "token": token}
    return JSONResponse(body)


async def put_lastfm(request: Request) -> Response:
    user = require_user(request)
    token = await _token(request)
    try:
        await _service(request).link_lastfm(user.id, token)
    except NotConfigured:
        raise _not_configured() from None
    except InvalidCredentials as exc:
        raise ApiError(400, "invalid_token", str(exc), "token") from None
    except ServiceUnavailable as exc:
        raise _upstream(exc) from None
    return JSONResponse(await _service(request).status(user.id, "lastfm"))


async def delete_lastfm(request: Request) -> Response:
    return await _delete(request, "lastfm")


routes = [
    Route("/api/v1/me/scrobblers", list_scrobblers, methods=["GET"]),
    Route("/api/v1/me/scrobblers/listenbrainz", get_listenbrainz, methods=["GET"]),
    Route("/api/v1/me/scrobblers/listenbrainz", put_listenbrainz, methods=["PUT"]),
    Route("/api/v1/me/scrobblers/listenbrainz", delete_listenbrainz, methods=["DELETE"]),
    Route("/api/v1/me/scrobblers/lastfm/authorize", authorize_lastfm, methods=["GET"]),
    Route("/api/v1/me/scrobblers/lastfm", get_lastfm, methods=["GET"]),
    Route("/api/v1/me/scrobblers/lastfm", put_lastfm, methods=["PUT"]),
    Route("/api/v1/me/scrobblers/lastfm", delete_lastfm, methods=["DELETE"]),
]
