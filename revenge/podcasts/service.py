"""``PodcastService``: subscriptions (subscribe, change, unsubscribe, OPML) and their checks, each feed on
its own jittered schedule; new episodes handed to ``Downloads``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import Any

from revenge.config import Settings
from revenge.library.scan import library_roots
from revenge.library.scan_runner import ScanRunner
from revenge.podcasts import schedule
from revenge.podcasts.downloads import Downloads, PodcastError
from revenge.podcasts.feeds import FeedError, parse_feed
from revenge.podcasts.fetch import Fetcher, FetchError
from revenge.podcasts.naming import episode_id, podcast_id, safe_name
from revenge.podcasts.netguard import UnsafeUrl, check_url
from revenge.podcasts.opml import OpmlFeed, export_opml, parse_opml
from revenge.podcasts.store import PodcastStore

log = logging.getLogger("revenge.podcasts")

class PodcastService:
    def __init__(self, settings: Settings, store: PodcastStore, scans: ScanRunner) -> None:
        self._settings = settings
        self._store = store
        self._scans = scans
        self._fetcher = Fetcher(
            allow_private=settings.podcast_allow_private_addresses,
            timeout=settings.podcast_timeout_seconds,
            max_redirects=settings.podcast_max_redirects,
            user_agent="Revenge/0.1 (podcasts)",
        )
        roots = [path for path, kind in library_roots(settings) if kind == "episode"]
        self.downloads = Downloads(settings, store, self._fetcher, scans, roots[0] if roots else None)
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._rng = random.Random()
        self._checking: dict[str, asyncio.Lock] = {}

    @classmethod
    async def open(cls, settings: Settings, scans: ScanRunner) -> PodcastService:
        store = PodcastStore(settings.data_dir / "podcasts.db")
        await store.open()
        service = cls(settings, store, scans)
        await service.downloads.start()
        service._tasks.append(asyncio.create_task(service._checker(), name="podcast-checker"))
        return service

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.downloads.close()
        await self._fetcher.aclose()
        await self._store.close()

    # Subscriptions -------------------------------------------------------------------------------

    async def subscribe(self, feed_url: str, options: dict[str, Any]) -> dict[str, Any]:
        """Fetch and parse the feed, store the show with its episodes, queue the newest ones when
        auto-download is on. Nothing is stored when the feed cannot be fetched or read."""
        try:
            check_url(feed_url)
        except UnsafeUrl as exc:
            raise PodcastError("unsafe_url", str(exc)) from None
        pid = podcast_id(feed_url)
        if await self._store.get(pid) is not None:
            raise PodcastError("exists", "already subscribed to this feed")
        try:
            response = await self._fetcher.get_bytes(feed_url, self._settings.podcast_max_feed_bytes)
            feed = parse_feed(response.body)
        except FetchError as exc:
            raise PodcastError("unsafe_url" if exc.unsafe else "feed_unreachable", str(exc)) from None
        except FeedError as exc:
            raise PodcastError("feed_unusable", str(exc)) from None
        now = time.time()
        row = {
            "id": pid,
            "feed_url": feed_url,
            "title": feed.title,
            "folder": await self._folder_for(feed.title, pid),
            "auto_download": int(options.get("auto_download", True)),
            "new_per_check": options.get("new_per_check", 1),
            "keep_last": options.get("keep_last", 0),
            "check_interval_seconds": options.get(
                "check_interval_seconds", self._settings.podcast_check_interval_seconds
            ),
            "etag": response.etag,
            "last_modified": response.last_modified,
            "last_checked_at": now,
            "created_at": now,
            "next_check_at": 0.0,
        }
        row["next_check_at"] = schedule.next_check(now, row["check_interval_seconds"], 0, self._rng.random())
        if not await self._store.add(row):
            raise PodcastError("exists", "already subscribed to this feed")
        await self._take_feed(await self._must_get(pid), feed, now, {})
        self._wake.set()
        return await self._must_get(pid)

    async def _folder_for(self, title: str, pid: str) -> str:
        folder = safe_name(title)
        taken = {row["folder"] for row in await self._store.all()}
        return folder if folder not in taken else f"{folder} [{pid[:6]}]"

    async def _must_get(self, pid: str) -> dict[str, Any]:
        row = await self._store.get(pid)
        if row is None:
            raise PodcastError("not_found", "no such podcast")
        return row

    async def get(self, pid: str) -> dict[str, Any] | None:
        return await self._store.get(pid)

    async def all(self) -> list[dict[str, Any]]:
        return await self._store.all()

    async def update(self, pid: str, fields: dict[str, Any]) -> dict[str, Any] | None:
        if fields.get("auto_download"):
            fields = {**fields, "auto_download_off_reason": None, "failures": 0}
        row = await self._store.update(pid, fields)
        self._wake.set()
        return row

    async def unsubscribe(self, pid: str) -> bool:
        """Forget the subscription and its episodes; downloaded files stay in the library (they are items
        with progress now) until removed like any other file."""
        for episode in await self._store.episodes(pid):
            self.downloads.forget(episode["id"])
        return await self._store.delete(pid)

    async def episodes(self, pid: str) -> list[dict[str, Any]]:
        return await self._store.episodes(pid)

    async def episode(self, eid: str) -> dict[str, Any] | None:
        return await self._store.episode(eid)

    # Checking ------------------------------------------------------------------------------------

    async def refresh(self, pid: str) -> dict[str, Any]:
        """Check the feed now; answers ``{status: updated|not_modified|failed, new_episodes, error}``."""
        return await self._check(await self._must_get(pid))

    async def _checker(self) -> None:
        while True:
            pause = 0.05
            try:
                now = time.time()
                for row in await self._store.all():
                    if row["next_check_at"] <= now:
                        await self._check(row)
                soonest = min((row["next_check_at"] for row in await self._store.all()), default=now + 3600)
            except Exception:
                log.exception("podcast checks failed")  # the store is down: try again a little later
                soonest, pause = time.time() + 5, 5
            with contextlib.suppress(TimeoutError):
                wait = min(max(pause, soonest - time.time()), 3600)
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
            self._wake.clear()

    async def _check(self, row: dict[str, Any]) -> dict[str, Any]:
        lock = self._checking.setdefault(row["id"], asyncio.Lock())
        async with lock:
            row = await self._must_get(row["id"])  # fresh: a check that waited sees the last one's validators
            now = time.time()
            headers = {}
            if row["etag"]:
                headers["If-None-Match"] = row["etag"]
            if row["last_modified"]:
                headers["If-Modified-Since"] = row["last_modified"]
            try:
                response = await self._fetcher.get_bytes(
                    row["feed_url"], self._settings.podcast_max_feed_bytes, headers
                )
                feed = None if response.not_modified else parse_feed(response.body)
            except (FetchError, FeedError) as exc:
                return await self._failed(row, now, str(exc))
            fields: dict[str, Any] = {
                "failures": 0,
                "last_error": None,
                "last_checked_at": now,
                "next_check_at": schedule.next_check(
                    now, row["check_interval_seconds"], 0, self._rng.random()
                ),
            }
            if feed is None:
                await self._store.update(row["id"], fields)
                return {"status": "not_modified", "new_episodes": 0, "error": None}
            fields.update(etag=response.etag, last_modified=response.last_modified)
            new = await self._take_feed(row, feed, now, fields)
            return {"status": "updated", "new_episodes": new, "error": None}

    async def _take_feed(self, row: dict[str, Any], feed: Any, now: float, fields: dict[str, Any]) -> int:
        ids = [episode_id(row["id"], e.guid) for e in feed.episodes]
        newest, new = await self._store.merge_feed(row["id"], feed, ids, now, fields)
        if row["auto_download"]:
            fresh = set(new)
            dated = [
                schedule.Dated(i, e.published) for i, e in zip(ids, feed.episodes, strict=True) if i in fresh
            ]
            for eid in schedule.to_auto_download(dated, newest, row["new_per_check"]):
                await self.downloads.download(eid)
        return len(new)

    async def _failed(self, row: dict[str, Any], now: float, error: str) -> dict[str, Any]:
        failures = row["failures"] + 1
        fields: dict[str, Any] = {
            "failures": failures,
            "last_error": error,
            "last_checked_at": now,
            "next_check_at": schedule.next_check(
                now, row["check_interval_seconds"], failures, self._rng.random()
            ),
        }
        reason = schedule.auto_download_off(failures, self._settings.podcast_max_failures)
        if reason is not None and row["auto_download"]:
            fields.update(auto_download=0, auto_download_off_reason=f"{reason} (last: {error})")
        await self._store.update(row["id"], fields)
        log.warning("podcast %s: check failed (%d in a row): %s", row["id"], failures, error)
        return {"status": "failed", "new_episodes": 0, "error": error}

    # OPML ----------------------------------------------------------------------------------------

    async def export_opml(self) -> bytes:
        return export_opml(OpmlFeed(row["feed_url"], row["title"]) for row in await self._store.all())

    async def import_opml(self, data: bytes) -> list[dict[str, Any]]:
        """Subscribe to every feed of the list; one result per feed (``subscribed``, ``exists`` or the
        error), so one dead feed does not stop the rest."""
        results = []
        for feed in parse_opml(data):
            try:
                row = await self.subscribe(feed.feed_url, {})
                results.append(
                    {"feed_url": feed.feed_url, "status": "subscribed", "id": row["id"], "error": None}
                )
            except PodcastError as exc:
                results.append({"feed_url": feed.feed_url, "status": exc.code, "id": None, "error": str(exc)})
        return results
