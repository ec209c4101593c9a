"""How ``revenge serve`` runs the app: uvicorn's settings, the HTTP guard's limits, the open-file limit and
the process's garbage collector.

Kept apart from the CLI so that the tests' live server and the benchmarks' baselines run exactly as the
server does: all of them build their uvicorn configuration with :func:`uvicorn_config`."""

from __future__ import annotations

import gc
import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from starlette.types import ASGIApp

from revenge.config import Settings
from revenge.http_guard import (
    HttpLimits,
    connection_cap,
    guarded_protocol,
    open_file_limit,
    raise_open_file_limit,
)

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger("revenge.http")

# Collect the youngest generation every 50 000 net allocations instead of CPython's default 700. Under load
# hundreds of requests are in flight, so a collection every 700 allocations finds their objects still
# alive, traverses them, promotes them and traverses them again in the older generations (commit
# 11ddd96 has the profile). Objects are still freed by reference counting the moment they are dropped;
# only reference cycles wait a little longer.
GC_YOUNG_THRESHOLD = 50_000


def tune_gc() -> None:
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def http_limits(settings: Settings) -> HttpLimits:
    return HttpLimits(
        max_head_bytes=settings.http_max_header_bytes,
        max_headers=settings.http_max_headers,
        first_request_timeout=settings.http_first_request_timeout_seconds,
        header_timeout=settings.http_header_timeout_seconds,
        body_timeout=settings.http_body_timeout_seconds,
        body_min_rate=settings.http_body_min_bytes_per_second,
        max_connections=settings.http_max_connections,
    )


def uvicorn_config(app: ASGIApp, limits: HttpLimits, *, host: str = "127.0.0.1", port: int = 0,
                   log_level: str = "info") -> uvicorn.Config:
    """uvloop, httptools behind the guard, no websockets (no route uses them), no access log, no Server
    header; the connection cap lowered to what the current open-file limit leaves room for."""
    import uvicorn

    cap = connection_cap(limits.max_connections, open_file_limit())
    if cap < limits.max_connections:
        log.warning("HTTP connections capped at %d (http_max_connections is %d) to stay under the "
                    "open-file limit of %s", cap, limits.max_connections, open_file_limit())
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, loop="uvloop",
                          http=guarded_protocol(replace(limits, max_connections=cap)), ws="none",
                          lifespan="on", access_log=False, server_header=False)


def run(app: ASGIApp, host: str, port: int, log_level: str, limits: HttpLimits | None = None) -> None:
    """Serve ``app`` until interrupted."""
    import uvicorn

    before, after = raise_open_file_limit()
    if after != before:
        log.info("open-file limit raised from %d to %d (the hard limit)", before, after)
    tune_gc()
    config = uvicorn_config(app, limits or HttpLimits(), host=host, port=port, log_level=log_level)
    server = uvicorn.Server(config)
    server.run()
    if not server.started:
        raise SystemExit(3)  # as uvicorn.run: the socket could not be bound, or the lifespan failed
