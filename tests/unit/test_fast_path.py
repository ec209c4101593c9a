"""FastPath: its routes are answered ahead of the router, everything else passes through."""

from __future__ import annotations

import logging

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from revenge.errors import StoreUnavailable
from revenge.progress.batcher import BatcherOverloaded
from revenge.web.errors import EXCEPTION_HANDLERS, ApiError
from revenge.web.fast_path import FastPath
from revenge.web.responses import send_json


class Echo:
    """A plain ASGI endpoint: 418 for item "teapot" (an ApiError), else what it saw."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        item_id = scope["path_params"]["item_id"]
        if item_id == "teapot":
            raise ApiError(418, "teapot", "short and stout", "item_id", {"X-Why": "tea"})
        if item_id == "outage":
            raise StoreUnavailable("redis://secret-host:6379 refused")
        if item_id == "full":
            raise BatcherOverloaded("queue is full (10000 updates waiting)")
        await send_json(send, {"item_id": item_id, "route": scope["route"].path, "via": "direct"})


async def router_copy(request: Request) -> Response:
    return PlainTextResponse("router")


def make_app() -> Starlette:
    direct = [Route("/things/{item_id}", Echo(), methods=["PUT"])]
    routes = [Route("/things/{item_id}", router_copy, methods=["PUT", "GET"])]
    return Starlette(routes=routes, middleware=[Middleware(FastPath, routes=direct)],
                     exception_handlers=EXCEPTION_HANDLERS)  # type: ignore[arg-type]


async def request(method: str, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.request(method, path)


async def test_its_routes_are_answered_ahead_of_the_router() -> None:
    r = await request("PUT", "/things/abc")
    assert r.status_code == 200
    assert r.json() == {"item_id": "abc", "route": "/things/{item_id}", "via": "direct"}
    assert r.headers["content-type"] == "application/json"
    assert int(r.headers["content-length"]) == len(r.content)


async def test_other_methods_and_paths_go_through() -> None:
    assert (await request("GET", "/things/abc")).text == "router"
    r = await request("PUT", "/other")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


async def test_api_errors_get_the_error_body_and_headers() -> None:
    r = await request("PUT", "/things/teapot")
    assert r.status_code == 418 and r.headers["X-Why"] == "tea"
    assert r.json() == {"error": {"code": "teapot", "message": "short and stout", "field": "item_id"}}


async def test_store_outages_and_full_queues_are_503_with_retry_after_and_no_internals() -> None:
    for path, code in (("/things/outage", "unavailable"), ("/things/full", "overloaded")):
        r = await request("PUT", path)
        assert r.status_code == 503 and r.headers["Retry-After"] == "1", path
        assert r.json()["error"]["code"] == code
        assert "secret-host" not in r.text and "10000" not in r.text


async def test_the_router_maps_the_same_errors_the_same_way() -> None:
    async def outage(request: Request) -> Response:
        raise StoreUnavailable("redis://secret-host:6379 refused")

    app = Starlette(routes=[Route("/outage", outage)], exception_handlers=EXCEPTION_HANDLERS)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        r = await client.get("/outage")
    assert r.status_code == 503 and r.headers["Retry-After"] == "1"
    assert r.json() == {"error": {"code": "unavailable", "message": "store unavailable; retry shortly"}}


async def test_a_client_gone_mid_body_is_no_server_error(caplog: pytest.LogCaptureFixture) -> None:
    async def reads_a_body(request: Request) -> Response:
        raise ClientDisconnect()

    app = Starlette(routes=[Route("/upload", reads_a_body, methods=["PUT"])],
                    exception_handlers=EXCEPTION_HANDLERS)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        assert (await client.put("/upload")).status_code == 400
    # The fast path answers nothing (nobody is left) and raises nothing.
    sent: list[Message] = []

    class Gone:  # a plain ASGI endpoint, as the fast path serves
        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            raise ClientDisconnect()

    fast = FastPath(make_app(), routes=[Route("/things/{item_id}", Gone(), methods=["PUT"])])

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    await fast({"type": "http", "method": "PUT", "path": "/things/x", "headers": [], "query_string": b"",
                "root_path": ""}, receive, send)
    assert sent == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
