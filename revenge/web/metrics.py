"""The ``/metrics`` endpoint and an ASGI middleware timing every response's first byte per route;
the registry itself is ``revenge.metrics``."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from revenge.web.conn import app_state


def route_label(scope: Scope) -> str:
    """The route's path template (``/api/v1/stream/{item_id}/direct``), never the raw path: raw paths
    would make one time series per item and per bad request."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class TimingMiddleware:
    """Observes time-to-first-byte per route and counts 503s. Pure ASGI: adds no buffering."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state: Any = scope.get("state", {}).get("revenge")

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start" and state is not None:
                state.metrics.response_started(route_label(scope), message["status"],
                                               time.perf_counter() - started)
            await send(message)

        await self.app(scope, receive, timed_send)


async def metrics_endpoint(request: Request) -> Response:
    return Response(app_state(request).metrics.render(), media_type=CONTENT_TYPE_LATEST)


routes = [Route("/metrics", metrics_endpoint, methods=["GET"])]
