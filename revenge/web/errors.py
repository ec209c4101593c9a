"""The one error shape every 4xx/5xx answers with: ``{"error": {"code", "message", "field"?}}``."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Match

from revenge.errors import Overloaded, StoreUnavailable
from revenge.web.responses import JSONResponse

log = logging.getLogger("revenge.web")


class ApiError(Exception):
    """Raised by endpoints and the code they call; turned into the JSON error body."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}


def error_body(code: str, message: str, field: str | None = None) -> dict[str, dict[str, str]]:
    body: dict[str, str] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    return {"error": body}


def error_response(
    status: int, code: str, message: str, field: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    return JSONResponse(error_body(code, message, field), status_code=status, headers=headers)


def not_found(what: str = "item", field: str | None = "item_id") -> ApiError:
    return ApiError(404, "not_found", f"{what} not found", field)


def bad_request(field: str, message: str, code: str = "invalid") -> ApiError:
    return ApiError(400, code, message, field)


def unavailable(message: str, retry_after: int = 1, code: str = "unavailable") -> ApiError:
    return ApiError(503, code, message, None, {"Retry-After": str(retry_after)})


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    411: "length_required",
    413: "too_large",
    415: "unsupported_media_type",
    416: "range_not_satisfiable",
    422: "unprocessable",
    429: "too_many_requests",
    503: "unavailable",
}


# The errors every endpoint may meet below it and answers alike (``as_api_error``), here and in the
# fast path (``revenge.web.fast_path``): no route catches them itself.
MAPPED_ERRORS = (ApiError, StoreUnavailable, Overloaded)


def as_api_error(exc: ApiError | StoreUnavailable | Overloaded) -> ApiError:
    """The HTTP answer to one of ``MAPPED_ERRORS``: a store outage or a full queue is a 503 with
    ``Retry-After`` and a message that names no internals."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, Overloaded):
        return unavailable(exc.public_message, exc.retry_after, exc.code)
    return unavailable("store unavailable; retry shortly", exc.retry_after)


def api_error_response(exc: ApiError | StoreUnavailable | Overloaded) -> Response:
    """The answer to one of ``MAPPED_ERRORS``: its status, error body and headers."""
    error = as_api_error(exc)
    return error_response(error.status, error.code, error.message, error.field, error.headers)


async def handle_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, MAPPED_ERRORS)
    return api_error_response(exc)


def allowed_methods(request: Request) -> str | None:
    """Every method some route serves for this path. Starlette's own 405 names only the first route
    that matched the path, but one path may be served by several routes (GET and PUT apart)."""
    methods: set[str] = set()
    for route in getattr(request.app, "routes", ()):
        match, _ = route.matches({**request.scope, "method": "\x00"})  # no method matches: PARTIAL
        if match is Match.PARTIAL and getattr(route, "methods", None):
            methods |= route.methods
    return ", ".join(sorted(methods)) if methods else None


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        allow = allowed_methods(request)
        if allow:
            headers["Allow"] = allow
    return error_response(exc.status_code, code, message, None, headers)


async def handle_client_disconnect(request: Request, exc: Exception) -> Response:
    # The client went away while sending its body (or the connection guard cut a trickling one): no
    # one is left to answer, and it is no server error worth a traceback.
    log.debug("client disconnected during %s %s", request.method, request.url.path)
    return Response(status_code=400)


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal", "internal server error")


EXCEPTION_HANDLERS = {
    **dict.fromkeys(MAPPED_ERRORS, handle_api_error),
    HTTPException: handle_http_exception,
    ClientDisconnect: handle_client_disconnect,
    Exception: handle_unexpected,
}
