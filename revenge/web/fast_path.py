"""``FastPath``: the few routes players call many times a minute, served in front of Starlette's
exception middleware and router."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import ClientDisconnect
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from revenge.web.errors import MAPPED_ERRORS, api_error_response


class FastPath:
    """Serves ``routes`` (plain ASGI endpoints) itself, ahead of the rest of the middleware stack.

    For a progress write, Starlette's exception middleware, router and per-route wrappers cost about as
    much as the endpoint's own work; these routes skip them. They stay in the app's router as well, which
    keeps the OpenAPI check and the 405 answers as they are. A request for any other method or path goes
    on untouched. An ``ApiError`` from these endpoints gets the usual error body here, so they must raise
    before they start their answer (as every endpoint does); anything else goes on to the server-error
    handler, as from any route.
    """

    def __init__(self, app: ASGIApp, routes: Sequence[Route]) -> None:
        self.app = app
        self.routes = tuple(routes)
        self.methods = frozenset(m for route in self.routes for m in route.methods or ())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in self.methods:
            for route in self.routes:
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    scope.update(child_scope)
                    scope["route"] = route  # as the router sets it: the metrics label is the template
                    try:
                        await route.app(scope, receive, send)
                    except MAPPED_ERRORS as exc:
                        await api_error_response(exc)(scope, receive, send)
                    except ClientDisconnect:
                        pass  # nobody left to answer (see errors.handle_client_disconnect)
                    return
        await self.app(scope, receive, send)
