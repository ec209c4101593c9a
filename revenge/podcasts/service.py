"""``PodcastService``: subscriptions checked on their schedules, episodes downloaded by a bounded set of
workers into the podcast library folder, and a rescan asked for when files came or went, so downloaded
episodes become items (HLS, progress) like any other file."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from pathlib import Path
from typing import Any

import orjson

from revenge.config import Settings
from revenge.library.ids import item_id, relative_key
from revenge.library.probe import ProbeError, probe_file
from revenge.library.scan import library_roots
from revenge.library.scan_runner import ScanRunner
from revenge.podcasts import schedule
from revenge.podcasts.feeds import FeedError, parse_feed, parse_json_chapters
from revenge.podcasts.fetch import Fetcher, FetchError
from revenge.podcasts.naming import audio_suffix, episode_file_name, episode_id, podcast_id, safe_name
from revenge.podcasts.netguard import UnsafeUrl, check_url
from revenge.podcasts.opml import OpmlFeed, export_opml, parse_opml
from revenge.podcasts.store import PodcastStore

log = logging.getLogger("revenge.podcasts")

PARTS_FOLDER = ".revenge-downloads"  # hidden (the scanner skips it), on the library's filesystem (rename)
MAX_CHAPTERS_BYTES = 1024 * 1024
ACTIVE = ("queued", "downloading")


class PodcastError(Exception):
    """A request the service refuses: ``code`` for the API (``unsafe_url``, ``feed_unreachable``,
    ``feed_unusable``, ``exists``, ``no_podcast_folder``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


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
        self.root: Path | None = roots[0] if roots else None
        self._queue: asyncio.Queue[str] = asyncio.Queue()  # bounded by the episodes table: one entry each
        self._queued: set[str] = set()
        self.progress: dict[str, tuple[int, int | None]] = {}  # episode id → (bytes done, bytes total)
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._rescan_task: asyncio.Task[None] | None = None
        self._rescan_wanted = False
        self._rng = random.Random()
        self._checking: dict[str, asyncio.Lock] = {}

    @classmethod
    async def open(cls, settings: Settings, scans: ScanRunner) -> PodcastService:
        store = PodcastStore(settings.data_dir / "podcasts.db")
        await store.open()
        service = cls(settings, store, scans)
        for row in await store.with_download(ACTIVE):  # downloads the last run did not finish
            service._enqueue(row["id"])
        service._tasks.append(asyncio.create_task(service._checker(), name="podcast-checker"))
        for n in range(settings.podcast_download_concurrency):
            service._tasks.append(asyncio.create_task(service._worker(), name=f"podcast-download-{n}"))
        return service

    async def close(self) -> None:
        tasks = [*self._tasks, *([self._rescan_task] if self._rescan_task else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
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
            self._queued.discard(episode["id"])
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
                await self.download(eid)
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

    # Downloads -----------------------------------------------------------------------------------

    async def download(self, eid: str) -> None:
        """Queue the episode's download (nothing when it is queued, running or done)."""
        if self.root is None:
            raise PodcastError("no_podcast_folder", "no podcast folder is configured to download into")
        row = await self._store.episode(eid)
        if row is None or row["download"] in (*ACTIVE, "downloaded"):
            return
        await self._store.set_episode(eid, {"download": "queued", "error": None})
        self._enqueue(eid)

    def _enqueue(self, eid: str) -> None:
        if eid not in self._queued:
            self._queued.add(eid)
            self._queue.put_nowait(eid)

    async def _worker(self) -> None:
        while True:
            eid = await self._queue.get()
            try:
                if eid in self._queued:
                    await self._download(eid)
            except Exception:
                log.exception("downloading episode %s failed", eid)
                with contextlib.suppress(Exception):
                    await self._store.set_episode(eid, {"download": "failed", "error": "internal error"})
            finally:
                self._queued.discard(eid)
                self.progress.pop(eid, None)

    def _part_path(self, row: dict[str, Any]) -> Path:
        assert self.root is not None
        return (
            self.root
            / PARTS_FOLDER
            / f"{row['id']}{audio_suffix(row['enclosure_url'], row['enclosure_type'])}"
        )

    async def _download(self, eid: str) -> None:
        row = await self._store.episode(eid)
        podcast = await self._store.get(row["podcast_id"]) if row else None
        if row is None or podcast is None or self.root is None or row["download"] not in ACTIVE:
            return
        await self._store.set_episode(eid, {"download": "downloading"})
        part = self._part_path(row)
        part.parent.mkdir(parents=True, exist_ok=True)

        def note(done: int, total: int | None) -> None:
            self.progress[eid] = (done, total)

        try:
            await self._fetcher.download(
                row["enclosure_url"], part, self._settings.podcast_max_episode_bytes, note
            )
            await asyncio.to_thread(probe_file, part)
        except (FetchError, ProbeError) as exc:
            if isinstance(exc, ProbeError) or not exc.resumable:
                part.unlink(missing_ok=True)
            message = f"not playable: {exc}" if isinstance(exc, ProbeError) else str(exc)
            await self._store.set_episode(eid, {"download": "failed", "error": message})
            log.warning("episode %s: download failed: %s", eid, message)
            return
        name = episode_file_name(row["title"], row["published"], part.suffix, eid)
        relative = (podcast["folder"], name)
        final = self.root.joinpath(*relative)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(part, final)  # same filesystem (the parts folder is in the root): atomic
        chapters = await self._chapters(row)
        await self._store.set_episode(
            eid,
            {
                "download": "downloaded",
                "file": "/".join(relative),
                "error": None,
                "downloaded_at": time.time(),
                "item_id": item_id("episode", relative_key(relative)),
                **({"chapters": chapters} if chapters else {}),
            },
        )
        await self._keep_last(podcast)
        self._request_rescan()

    async def _chapters(self, row: dict[str, Any]) -> bytes | None:
        """The podcast:chapters JSON, read once when the episode is downloaded (psc:chapters come inline)."""
        if not row["chapters_url"] or row["chapters"] != b"[]":
            return None
        try:
            response = await self._fetcher.get_bytes(row["chapters_url"], MAX_CHAPTERS_BYTES)
            chapters = parse_json_chapters(response.body)
        except (FetchError, FeedError) as exc:
            log.info("episode %s: chapters not read: %s", row["id"], exc)
            return None
        return orjson.dumps(
            [{"start_seconds": c.start_seconds, "title": c.title, "url": c.url} for c in chapters]
        )

    async def _keep_last(self, podcast: dict[str, Any]) -> None:
        downloaded = [e for e in await self._store.episodes(podcast["id"]) if e["download"] == "downloaded"]
        by_id = {e["id"]: e for e in downloaded}
        for eid in schedule.to_drop(
            [schedule.Dated(e["id"], e["published"]) for e in downloaded], podcast["keep_last"]
        ):
            await self._remove_file(by_id[eid])

    async def remove_download(self, eid: str) -> bool:
        """Delete the episode's file (its progress stays: it is keyed by the item id, which a new download
        of the same episode gets again). False when there was no download."""
        row = await self._store.episode(eid)
        if row is None:
            return False
        self._queued.discard(eid)
        if self.root is not None:
            self._part_path(row).unlink(missing_ok=True)
        had = row["download"] != "none"
        await self._remove_file(row)
        self._request_rescan()
        return had

    async def _remove_file(self, row: dict[str, Any]) -> None:
        if row["file"] and self.root is not None:
            (self.root / row["file"]).unlink(missing_ok=True)
        await self._store.set_episode(row["id"], {"download": "none", "file": None, "error": None})

    def _request_rescan(self) -> None:
        self._rescan_wanted = True
        if self._rescan_task is None or self._rescan_task.done():
            self._rescan_task = asyncio.create_task(self._rescan(), name="podcast-rescan")

    async def _rescan(self) -> None:
        # A scan already running may have passed the show's folder: wait for it, then scan again.
        while self._rescan_wanted:
            if self._scans.running:
                await asyncio.sleep(0.2)
                continue
            self._rescan_wanted = False
            self._scans.start()

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
