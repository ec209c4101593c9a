"""Liveness and store status."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from revenge import __version__
from revenge.web.auth import app_state
from revenge.web.responses import JSONResponse


async def healthz(request: Request) -> Response:
    state = app_state(request)
    body = {
        "status": "ok",
        "version": __version__,
        "scan": state.scan.as_dict(),
    }
    return JSONResponse(body)


routes = [Route("/healthz", healthz, methods=["GET"])]
