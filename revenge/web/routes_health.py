"""Liveness, library scan status and store status (503 while the store is down)."""

from __future__ import annotations

import asyncio
import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from revenge import __version__
from revenge.errors import StoreUnavailable
from revenge.progress.service import store_label
from revenge.web.conn import app_state
from revenge.web.responses import JSONResponse

PING_TIMEOUT_SECONDS = 2.0


async def healthz(request: Request) -> Response:
    state = app_state(request)
    label = store_label(state.settings)
    started = time.perf_counter()
    try:
        # Progress, and records (scrobbles, bookmarks): with Redis both live on the same server, with
        # SQLite in two files; either one down makes the server unable to do its job.
        await asyncio.wait_for(asyncio.gather(state.progress.ping(), state.records.ping()),
                               PING_TIMEOUT_SECONDS)
    except (StoreUnavailable, TimeoutError) as exc:
        state.metrics.store_errors.labels(label).inc()
        store = {"backend": label, "status": "down", "error": str(exc) or "timed out"}
    else:
        elapsed = time.perf_counter() - started
        state.metrics.store_ping_seconds.labels(label).observe(elapsed)
        store = {"backend": label, "status": "ok", "ping_ms": round(elapsed * 1000, 3)}
    durability = state.progress.store.durability  # as last read from the server (at connect, reconnect)
    store["durability"] = None if durability is None else durability.as_dict()
    ok = store["status"] == "ok"
    body = {
        "status": "ok" if ok else "degraded",
        "version": __version__,
        "store": store,
        "scan": state.scan.as_dict(),
        "watch": None if state.watch is None else state.watch.as_dict(),
    }
    return JSONResponse(body, status_code=200 if ok else 503, headers=None if ok else {"Retry-After": "1"})


routes = [Route("/healthz", healthz, methods=["GET"])]
