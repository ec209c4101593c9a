"""The forwarder: a background task (owned by ``ScrobblerService``, so by ``create_app``'s lifespan)
that drains each linked user's outbox per service, and sends "now playing" when a session starts.

Each pass visits every linked (user, service) that is not backing off; under the per-user lease it
reads the oldest queued records, skips those the service would not take (``model.skip_reason``), sends
the rest in batches and marks what the service accepted or ignored. What is left stays queued:

* a transient failure (down, 5xx, 429, timeout) backs the pair off exponentially with jitter, at least
  as long as the service's ``Retry-After`` / rate-limit headers ask;
* an invalid token or session key stops the link (``stopped``, shown by ``GET /api/v1/me/scrobblers``)
  until the user links again: nothing is retried forever;
* a refused batch is split in halves until the refused records are alone, and those are skipped.

At least once: a crash (or a lost answer) between send and mark sends the batch again; the services
dedupe on the listen's timestamp. The lease keeps two instances from sending the same batch at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from revenge.errors import StoreUnavailable
from revenge.playback.records import RecordStore
from revenge.playback.scrobbles import SERVICES, Mark, Scrobble, ServiceName
from revenge.scrobblers.links import LinkStore
from revenge.scrobblers.model import Link, Outcome, TrackMeta, backoff_seconds, secret_context, skip_reason
from revenge.scrobblers.model import track_meta as meta_of
from revenge.security.crypto import SealError, SecretBox

if TYPE_CHECKING:
    from revenge.library.model import Item
    from revenge.library.tags import Tags

log = logging.getLogger("revenge.scrobblers")

MAX_NOW_PLAYING = 64  # "now playing" calls in flight; more are dropped (they are only a courtesy)
PARALLEL_DRAINS = 4
Entry = tuple[Scrobble, TrackMeta]


class ServiceClient(Protocol):
    async def send(self, secret: str, entries: Sequence[tuple[int, TrackMeta]]) -> Outcome: ...

    async def now_playing(self, secret: str, meta: TrackMeta) -> Outcome: ...


class Forwarder:
    def __init__(self, records: RecordStore, links: LinkStore, box: SecretBox,
                 clients: Mapping[ServiceName, ServiceClient], item_of: Callable[[str], Item | None], *,
                 tags_of: Callable[[str], Tags | None] = lambda item_id: None,
                 batch: Mapping[ServiceName, int], interval_seconds: float, retry_base_seconds: float,
                 lease_ms: int, clock: Callable[[], float] = time.time,
                 rand: Callable[[], float] = random.random) -> None:
        self._records = records
        self._links = links
        self._box = box
        self._clients = clients
        self._item_of = item_of
        self._tags_of = tags_of  # a track's full tags (its MusicBrainz ids)
        self._batch = batch
        self._interval = interval_seconds
        self._retry_base = retry_base_seconds
        self._lease_ms = lease_ms
        self._clock = clock
        self._rand = rand
        self._failures: dict[tuple[str, ServiceName], int] = {}
        self._not_before: dict[tuple[str, ServiceName], float] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._now_playing: set[asyncio.Task[None]] = set()
        self._closed = False

    # --- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="scrobble-forwarder")

    async def close(self) -> None:
        self._closed = True
        tasks = [t for t in (self._task, *self._now_playing) if t is not None]
        self._task = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def settle(self) -> None:
        """Wait for the "now playing" calls in flight (tests; the lifespan cancels them instead)."""
        while self._now_playing:
            await asyncio.gather(*self._now_playing, return_exceptions=True)

    def wake(self, user_id: str | None = None, service: ServiceName | None = None) -> None:
        """Run a pass now (after a link: forward its history without waiting for the interval); a
        (user, service) given also forgets its backoff."""
        if user_id is not None and service is not None:
            self._failures.pop((user_id, service), None)
            self._not_before.pop((user_id, service), None)
        self._wake.set()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.run_once()
            except StoreUnavailable as exc:
                log.warning("scrobble forwarder: %s (retrying)", exc)
            except Exception:
                log.exception("scrobble forwarder pass failed (retrying)")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)

    # --- draining -------------------------------------------------------------------------------------

    async def run_once(self) -> None:
        """One pass over the linked (user, service) pairs that are not backing off."""
        now = self._clock()
        due = [pair for pair in await self._links.linked() if self._not_before.get(pair, 0.0) <= now]
        gate = asyncio.Semaphore(PARALLEL_DRAINS)

        async def one(user_id: str, service: ServiceName) -> None:
            async with gate:
                try:
                    await self.drain(user_id, service)
                except StoreUnavailable as exc:
                    log.warning("scrobble forwarder: %s (retrying)", exc)
                except Exception:  # one user's failure must not end the others' drains
                    log.exception("scrobble forwarder: draining %s for user %s failed", service, user_id)

        await asyncio.gather(*(one(user_id, service) for user_id, service in due))

    def _secret(self, link: Link) -> str | None:
        try:
            return self._box.open(link.secret, secret_context(link.user_id, link.service))
        except SealError:
            return None

    async def drain(self, user_id: str, service: ServiceName) -> int:
        """Forward what the user's outbox for ``service`` holds; the number of records marked."""
        link = await self._links.get(user_id, service)
        if link is None or link.stopped is not None:
            return 0
        secret = self._secret(link)
        if secret is None:
            await self._links.note(user_id, service, link.linked_at, self._now_ms(), permanent=True,
                                   error="the stored secret does not open (the data dir's secrets-key "
                                         "changed?): link the account again")
            return 0
        token = await self._links.acquire(user_id, service, self._lease_ms)
        if token is None:
            return 0  # another instance is draining this user
        marked = 0
        started = time.monotonic()
        try:
            # Stop well before the lease could expire under us.
            while time.monotonic() - started < self._lease_ms / 2000:
                records = await self._records.outbox(user_id, service, self._batch[service])
                if not records:
                    break
                count, stop = await self._forward(link, secret, records)
                marked += count
                if stop or len(records) < self._batch[service]:
                    break
        finally:
            await self._links.release(user_id, service, token)
        return marked

    async def _forward(self, link: Link, secret: str, records: Sequence[Scrobble]) -> tuple[int, bool]:
        """One batch: the count marked, and whether to stop draining (a failure or a pause)."""
        service, now_ms = link.service, self._now_ms()
        skips: list[Mark] = []
        entries: list[Entry] = []
        for record in records:
            item = self._item_of(record.item_id)
            meta = meta_of(item, self._tags_of(record.item_id)) if item is not None else None
            reason = skip_reason(service, record, meta, now_ms)
            if reason is not None or meta is None:
                skips.append(Mark(record.id, "skipped", reason))
            else:
                entries.append((record, meta))
        marks, last = await self._send(self._clients[service], secret, entries) if entries else ([], None)
        marked = await self._records.mark(link.user_id, service, [*skips, *marks], self._now_ms())
        key = (link.user_id, service)
        if any(m.state == "sent" for m in marks):
            await self._links.note(link.user_id, service, link.linked_at, self._now_ms())
        if last is None:
            self._failures.pop(key, None)
            return marked, False
        if last.kind == "ok":  # accepted, but the service asks for a pause (rate limit, daily limit)
            self._failures.pop(key, None)
            self._not_before[key] = self._clock() + (last.retry_after or 0.0)
            return marked, True
        if last.kind == "auth":
            log.warning("scrobbling to %s stopped for user %s: %s", service, link.user_id, last.message)
            await self._links.note(link.user_id, service, link.linked_at, self._now_ms(),
                                   error=last.message, permanent=True)
            return marked, True
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        wait = backoff_seconds(failures, self._retry_base, self._rand(), last.retry_after)
        self._not_before[key] = self._clock() + wait
        log.info("scrobbling to %s for user %s: %s (retry in %.1f s)", service, link.user_id, last.message,
                 wait)
        await self._links.note(link.user_id, service, link.linked_at, self._now_ms(), error=last.message)
        return marked, True

    async def _send(self, client: ServiceClient, secret: str,
                    entries: Sequence[Entry]) -> tuple[list[Mark], Outcome | None]:
        """Send ``entries``: the marks, and the outcome that ends the drain (``None``: go on). A refused
        batch is split in halves, down to the refused records, which are skipped."""
        outcome = await client.send(secret, [(record.started_at // 1000, meta) for record, meta in entries])
        if outcome.kind == "ok":
            marks = [Mark(record.id, "skipped", outcome.skipped[i]) if i in outcome.skipped
                     else Mark(record.id, "sent")
                     for i, (record, _) in enumerate(entries) if i not in outcome.held]
            return marks, outcome if outcome.retry_after is not None or outcome.held else None
        if outcome.kind != "refused":
            return [], outcome
        if len(entries) == 1:
            return [Mark(entries[0][0].id, "skipped", f"refused: {outcome.message}")], None
        middle = len(entries) // 2
        first, stop = await self._send(client, secret, entries[:middle])
        if stop is not None:
            return first, stop
        second, stop = await self._send(client, secret, entries[middle:])
        return first + second, stop

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # --- now playing ----------------------------------------------------------------------------------

    def now_playing(self, user_id: str, item_id: str) -> None:
        """Tell the user's linked services that ``item_id`` started; fire and forget (bounded), so the
        session's answer never waits for it. Nothing is stored."""
        if self._closed or len(self._now_playing) >= MAX_NOW_PLAYING:
            return
        task = asyncio.create_task(self._send_now_playing(user_id, item_id), name="scrobble-now-playing")
        self._now_playing.add(task)
        task.add_done_callback(self._now_playing.discard)

    async def _send_now_playing(self, user_id: str, item_id: str) -> None:
        item = self._item_of(item_id)
        meta = meta_of(item, self._tags_of(item_id)) if item is not None else None
        if meta is None:
            return
        for service in SERVICES:
            try:
                link = await self._links.get(user_id, service)
                secret = self._secret(link) if link is not None and link.stopped is None else None
                if link is None or secret is None:
                    continue
                outcome = await self._clients[service].now_playing(secret, meta)
                if outcome.kind == "auth":
                    await self._links.note(user_id, service, link.linked_at, self._now_ms(),
                                           error=outcome.message, permanent=True)
                elif outcome.kind != "ok":
                    log.debug("now playing to %s for user %s: %s", service, user_id, outcome.message)
            except StoreUnavailable as exc:
                log.debug("now playing to %s for user %s: %s", service, user_id, exc)
