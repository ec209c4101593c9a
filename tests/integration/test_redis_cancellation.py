"""Cancelling a task reaches it through the Redis client: a shutdown cancels the stores' background
tasks (the journals' watch, batchers, event readers) and waits for them, so a client that swallows a
cancel landing in a command hangs the shutdown (redis-py 8.0 and 8.1 do, about 4 cancels in 5 on
``PING``: hence ``redis<8``). And the journals' watch stops on close even if its read swallowed one."""

from __future__ import annotations

import asyncio
import contextlib
import random

import redis.asyncio as aioredis

from revenge.journal import ServerMark
from revenge.journal_watch import ServerWatch
from tests.redisfix import RedisServer, redis_server  # noqa: F401 (fixture)

CANCELS = 300


async def test_a_cancel_during_a_command_reaches_the_task(redis_server: RedisServer) -> None:  # noqa: F811
    client = aioredis.Redis.from_url(redis_server.url)
    swallowed = 0

    async def commands() -> None:
        nonlocal swallowed
        while True:
            await client.ping()
            if asyncio.current_task().cancelling():  # type: ignore[union-attr]
                swallowed += 1  # the client ate the cancel and answered as if nothing happened
                raise asyncio.CancelledError

    rng = random.Random(7)
    try:
        for _ in range(CANCELS):
            task = asyncio.create_task(commands())
            await asyncio.sleep(rng.random() * 0.003)  # lands anywhere in the command's round trip
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    finally:
        await client.aclose()
    assert swallowed == 0, f"{swallowed} of {CANCELS} cancels swallowed by redis-py"


class _Journal:
    name = "any"

    async def observe(self, mark: ServerMark) -> None:
        pass


async def test_the_watch_stops_on_close_even_when_its_read_swallows_the_cancel() -> None:
    """The fault redis-py 8 has, made on purpose: the read answers through a cancel."""
    reading = asyncio.Event()

    async def read() -> ServerMark:
        reading.set()
        with contextlib.suppress(asyncio.CancelledError):  # swallowed, as the faulty client does
            await asyncio.sleep(3600)
        return ServerMark(run_id="r", started_s=0, last_save_s=0, save_duration_s=0, server_now_ms=0,
                          local_now_ms=0, durability=None)

    async def no_pause(_: float) -> None:
        await asyncio.sleep(0)

    watch = ServerWatch(read, sleep=no_pause)
    watch.add(_Journal())  # type: ignore[arg-type]
    await asyncio.wait_for(reading.wait(), 5)
    closing = asyncio.ensure_future(watch.close())
    done, _ = await asyncio.wait({closing}, timeout=5)
    assert closing in done, "the watch went on after its cancel was swallowed"
    assert watch.looks == 1  # the look that swallowed the cancel was the last
