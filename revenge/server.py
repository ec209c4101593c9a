"""How ``revenge serve`` runs the app: uvicorn's settings and the process's garbage collector.

Kept apart from the CLI so that the benchmarks' baselines run exactly as the server does."""

from __future__ import annotations

import gc

from starlette.types import ASGIApp

# Collect the youngest generation every 50 000 net allocations instead of CPython's default 700. Under load
# hundreds of requests are in flight, so a collection every 700 allocations finds their objects still
# alive, traverses them, promotes them and traverses them again in the older generations: 17 % of the
# server's CPU in a profile of progress writes, and a doubled p99. Objects are still freed by reference
# counting the moment they are dropped; only reference cycles wait a little longer (a few MB at most).
GC_YOUNG_THRESHOLD = 50_000


def tune_gc() -> None:
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def run(app: ASGIApp, host: str, port: int, log_level: str) -> None:
    """Serve ``app`` until interrupted: uvloop, httptools, no access log, no Server header."""
    import uvicorn

    tune_gc()
    uvicorn.run(app, host=host, port=port, log_level=log_level, loop="uvloop", http="httptools",
                access_log=False, server_header=False)
