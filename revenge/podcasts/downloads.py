"""``Downloads``: episodes downloaded by ``podcast_download_concurrency`` workers into the podcast library
folder (a part file in a hidden folder of it, probed, renamed into the show's folder), keep-last-N
applied, and a rescan asked for when files came or went, so downloaded episodes become items."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Any

import orjson

from revenge.config import Settings
from revenge.library.changes import Target
from revenge.library.ids import item_id, relative_key
from revenge.library.probe import ProbeError, probe_file
from revenge.library.scan_runner import ScanRunner
from revenge.podcasts import schedule
from revenge.podcasts.cover import CoverError, fetch_cover, has_cover, wanted
from revenge.podcasts.feeds import FeedError, parse_json_chapters
from revenge.podcasts.fetch import Fetcher, FetchError, discard_part, validator_path
from revenge.podcasts.naming import audio_suffix, episode_file_name
from revenge.podcasts.store import PodcastStore

log = logging.getLogger("revenge.podcasts")

PARTS_FOLDER = ".revenge-downloads"  # hidden (the scanner skips it), on the library's filesystem (rename)
MAX_CHAPTERS_BYTES = 1024 * 1024
ACTIVE = ("queued", "downloading")


class PodcastError(Exception):
    """A request the service refuses: ``code`` for the API (``unsafe_url``, ``feed_unreachable``,
    ``feed_unusable``, ``exists``, ``no_podcast_folder``, ``not_found``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Downloads:
    def __init__(self, settings: Settings, store: PodcastStore, fetcher: Fetcher, scans: ScanRunner,
                 root: Path | None) -> None:
        self._settings = settings
        self._store = store
        self._fetcher = fetcher
        self._scans = scans
        self.root = root
        self._queue: asyncio.Queue[str] = asyncio.Queue()  # bounded by the episodes table: one entry each
        self._queued: set[str] = set()
        self.progress: dict[str, tuple[int, int | None]] = {}  # episode id → (bytes done, bytes total)
        self._tasks: list[asyncio.Task[None]] = []
        self._rescan_task: asyncio.Task[None] | None = None
        self._rescan_folders: set[str] = set()  # shows' folders whose files came or went

    async def start(self) -> None:
        for row in await self._store.with_download(ACTIVE):  # downloads the last run did not finish
            self._enqueue(row["id"])
        for n in range(self._settings.podcast_download_concurrency):
            self._tasks.append(asyncio.create_task(self._worker(), name=f"podcast-download-{n}"))

    async def close(self) -> None:
        tasks = [*self._tasks, *([self._rescan_task] if self._rescan_task else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def forget(self, eid: str) -> None:
        """A queued download of ``eid`` does not start (its subscription is gone)."""
        self._queued.discard(eid)

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

        failure: Exception | None = None
        try:
            await self._fetcher.download(
                row["enclosure_url"], part, self._settings.podcast_max_episode_bytes, note
            )
        except FetchError as exc:
            failure = exc
        current = await self._store.episode(eid)
        if current is None or current["download"] != "downloading":
            await discard_part(part)  # removed or unsubscribed while it ran: nothing goes into the library
            return
        if failure is None:
            try:
                await asyncio.to_thread(probe_file, part)
            except ProbeError as exc:
                failure = exc
        if failure is not None:
            if isinstance(failure, ProbeError) or not getattr(failure, "resumable", False):
                await discard_part(part)
            message = f"not playable: {failure}" if isinstance(failure, ProbeError) else str(failure)
            await self._store.set_episode(eid, {"download": "failed", "error": message})
            log.warning("episode %s: download failed: %s", eid, message)
            return
        name = episode_file_name(row["title"], row["published"], part.suffix, eid)
        relative = (podcast["folder"], name)
        final = self.root.joinpath(*relative)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(part, final)  # same filesystem (the parts folder is in the root): atomic
        validator_path(part).unlink(missing_ok=True)
        chapters = await self._chapters(row)
        await self._cover(podcast, final.parent)  # before "downloaded": a downloaded show has its cover
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
        self._request_rescan(podcast["folder"])

    async def _cover(self, podcast: dict[str, Any], folder: Path) -> None:
        """The show's image as its folder's cover, on its first download and when the URL changed; a
        failing image only is logged (the episode is downloaded all the same)."""
        url = podcast["image"]
        if not wanted(url, podcast["cover_url"], await asyncio.to_thread(has_cover, folder)):
            return
        try:
            name = await fetch_cover(self._fetcher, url, folder)
        except CoverError as exc:
            log.info("podcast %s: cover not written: %s", podcast["id"], exc)
            return
        await self._store.update(podcast["id"], {"cover_url": url})
        log.info("podcast %s: wrote %s", podcast["id"], name)

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
            await discard_part(self._part_path(row))
        had = row["download"] != "none"
        await self._remove_file(row)
        if row["file"]:
            self._request_rescan(row["file"].split("/")[0])
        return had

    async def _remove_file(self, row: dict[str, Any]) -> None:
        if row["file"] and self.root is not None:
            (self.root / row["file"]).unlink(missing_ok=True)
        await self._store.set_episode(row["id"], {"download": "none", "file": None, "error": None})

    def _request_rescan(self, folder: str) -> None:
        self._rescan_folders.add(folder)
        if self._rescan_task is None or self._rescan_task.done():
            self._rescan_task = asyncio.create_task(self._rescan(), name="podcast-rescan")

    async def _rescan(self) -> None:
        # The shows' folders alone, not the whole library; ScanRunner.rescan waits for a scan running
        # now (which may have passed the folder already) and takes turns with the next.
        while self._rescan_folders and self.root is not None:
            folders, self._rescan_folders = sorted(self._rescan_folders), set()
            targets = [Target(self.root, "episode", (folder,), True) for folder in folders]
            try:
                await self._scans.rescan(targets)
            except Exception:  # the periodic scan, or the next download's rescan, brings them in
                log.exception("podcast folders %s not rescanned", ", ".join(folders))
