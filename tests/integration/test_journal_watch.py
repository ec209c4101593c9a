"""One watch of the server per process (``revenge.journal_watch.ServerWatch``): the five journaled stores
(progress, marks, playlists, queue, records) share one look at the server's mark per interval, counted
on a real snapshot-only redis-server (``INFO commandstats``), and that one look is enough for every
journal to replay after a crash of the server. ``create_app`` gives every store the same watch."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from revenge.app import create_app
from revenge.journal_watch import Journal, ServerWatch, redis_server_watch
from revenge.playback.marks_store import open_mark_store, open_playlist_store
from revenge.playback.playlists import Playlist
from revenge.playback.queue import Queue
from revenge.playback.queue_store import open_queue_store
from revenge.playback.records import open_record_store
from revenge.playback.scrobbles import Scrobble
from revenge.progress.model import ProgressUpdate
from revenge.progress.store import open_store
from tests.live import test_settings
from tests.redisfix import RedisServer
from tests.waits import until

T0 = 1_700_000_000_000
ITEM = "a" * 16


async def calls(url: str) -> dict[str, int]:
    """How many times the server ran each command since it started."""
    client = aioredis.Redis.from_url(url)
    try:
        stats: dict[str, dict[str, Any]] = await client.info("commandstats")
    finally:
        await client.aclose()
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


class Stepped:
    """The watch's pause between looks, ended by the test: one ``step()``, one look."""

    def __init__(self) -> None:
        self._ticks: asyncio.Queue[None] = asyncio.Queue()

    async def sleep(self, _seconds: float) -> None:
        await self._ticks.get()

    def step(self, times: int = 1) -> None:
        for _ in range(times):
            self._ticks.put_nowait(None)


async def open_all(tmp_path: Path, url: str, watch: ServerWatch) -> list[Any]:
    settings = test_settings(tmp_path / "data", store=url, store_timeout_seconds=2.0)
    stores: list[Any] = [open_store(settings, watch=watch), open_mark_store(settings, watch),
                         open_playlist_store(settings, watch), open_queue_store(settings, watch),
                         open_record_store(settings, watch)]
    for store in stores:
        await store.open()
    return stores


async def write_each(stores: list[Any]) -> Callable[[], Awaitable[list[bool]]]:
    """One acknowledged write in each store; what reads each back."""
    progress, marks, playlists, queue, records = stores
    await progress.apply_batch([ProgressUpdate("u1", ITEM, "track", 600_000, 42_000, "pause", "d1", T0, T0,
                                               1.0)])
    await marks.star("u1", [ITEM], T0)
    await playlists.add("u1", Playlist("p" * 16, "Mine", (ITEM,), created_ms=T0, changed_ms=T0))
    assert await queue.put("u1", Queue((ITEM,), version=1, changed_at=T0, changed_by="d1"), 0) is None
    await records.add_scrobbles([Scrobble("u1", ITEM, "track", T0, 30_000, "d1", "client", T0)])

    async def back() -> list[bool]:
        state = await progress.get("u1", ITEM)
        return [state is not None and state.position_ms == 42_000, ITEM in await marks.starred("u1"),
                [p.id for p in await playlists.all("u1")] == ["p" * 16],
                (await queue.get("u1")).items == (ITEM,),
                await records.get_scrobble("u1", f"{ITEM}-{T0}") is not None]

    return back


def journal_of(store: Any) -> Journal[Any]:
    journal: Journal[Any] = store.journal
    return journal


async def test_one_look_at_the_server_per_interval_serves_every_journal(tmp_path: Path,
                                                                        snapshot_redis: RedisServer) -> None:
    stepped = Stepped()
    watch = redis_server_watch(snapshot_redis.url, 2.0, sleep=stepped.sleep)
    stores = await open_all(tmp_path, snapshot_redis.url, watch)
    try:
        assert watch.journals == 5 and all(journal_of(s).watch is watch for s in stores)
        before = await calls(snapshot_redis.url)
        looks = 4
        stepped.step(looks)
        await until(lambda: watch.looks == looks, "the looks")
        after = await calls(snapshot_redis.url)
        # One mark read per look for all five stores (each store watching for itself read five, and
        # its durability besides).
        for command in ("lastsave", "time", "config|get"):
            assert after.get(command, 0) - before.get(command, 0) == looks, command

        back = await write_each(stores)
        assert await back() == [True] * 5
        snapshot_redis.stop(hard=True)  # nothing was saved: a restart comes back empty
        snapshot_redis.start()
        assert await back() == [False] * 5
        stepped.step()  # one look: every journal sees the restart and replays
        await until(lambda: watch.looks == looks + 1, "the look after the restart")
        await until(lambda: all(journal_of(s).replayed > 0 and not journal_of(s).replaying for s in stores),
                    "every journal replayed")
        assert await back() == [True] * 5
        assert (await calls(snapshot_redis.url)).get("lastsave", 0) == 1  # since the restart: that one look
    finally:
        for store in stores:
            await store.close()
        await watch.close()
    assert watch.journals == 0


async def test_create_app_gives_every_journaled_store_the_same_watch(tmp_path: Path,
                                                                     snapshot_redis: RedisServer) -> None:
    settings = test_settings(tmp_path / "data", store=snapshot_redis.url, store_timeout_seconds=2.0,
                             scan_on_start=False)
    app = create_app(settings)
    async with app.router.lifespan_context(app) as scope:
        state = scope["revenge"]  # type: ignore[index]
        stores = [state.progress.store, state.marks, state.playlists, state.queue._store, state.records]
        watches = {id(journal_of(s).watch) for s in stores}
        assert len(watches) == 1
        assert journal_of(stores[0]).watch.journals == 5
