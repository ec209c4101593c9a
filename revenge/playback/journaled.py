"""The Dragonfly/Redis stores of marks, playlists, queues and records with the local journal
(``revenge.journal``, ``revenge.journal_watch``): each acknowledged write is journaled (fsync, group
commit) before it is answered and replayed after the server restarted from an older snapshot.

A write is applied first and journaled once the server took it, as what it did: only a write that took
effect is journaled (a star refused at the cap, a playlist put on a deleted one, a queue put on another
version is not), so a replay never brings in what was refused. A write answered 503 because its fsync
failed may be in the server; that is what a retry would have done. Each entry re-applies idempotently:

* ``star``, ``unstar``, ``rate`` (the rating, 0 = none), each with its time: the newest change of a key
  wins, in whatever order they come (``revenge.playback.marks_redis``: each key's last star, unstar and
  rating change are kept beside the marks), and a star keeps the time of the first star since the
  key's last unstar;
* ``playlist`` (the whole playlist written, stored unless the stored one changed later; an added one may
  be stored anew, a replaced one only over one that is there) and ``playlist-delete``;
* ``queue`` (the queue written, with its version: stored only over an older version);
* ``scrobble`` (its id is item and start: a repeat keeps the record, ``listened_ms`` only grows),
  ``outbox-mark`` (takes a record out of an outbox once), ``bookmark`` and ``bookmark-delete`` (by id).

Entries replay in journal order while this instance's writes wait (``Journal.writing``), so an older
entry never undoes a newer write of the same instance. Two instances writing the same key between the
last snapshot and the crash replay their journals independently: for queues and playlists the version
and ``changed_ms`` decide, for stars and ratings the time of each change (by the instances' clocks; an
unstar wins a tie with a star).

Playback sessions are not journaled: they are short-lived (they expire within minutes) and a client
whose session is gone starts another (404 → new session), so a restore without them costs a restart of
a stream, not a lost write of the user's.

Skipped while the server fsyncs every write itself (``appendfsync always``), as the progress journal is.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from redis.exceptions import RedisError

from revenge.journal import Codec, JournalFiles, ServerMark, read_server_mark
from revenge.journal_watch import CHECK_INTERVAL_S, Journal, ServerWatch
from revenge.playback import queue as queue_rules
from revenge.playback.bookmarks import Bookmark
from revenge.playback.marks import Marks, TooManyMarks
from revenge.playback.marks_redis import RedisMarkStore
from revenge.playback.playlists import Playlist
from revenge.playback.playlists import decode as decode_playlist
from revenge.playback.playlists import encode as encode_playlist
from revenge.playback.playlists_redis import RedisPlaylistStore
from revenge.playback.queue import Queue
from revenge.playback.queue_redis import RedisQueueStore
from revenge.playback.records_redis import RedisRecordStore
from revenge.playback.scrobbles import AddResult, DayTotal, Mark, Scrobble, ServiceName
from revenge.progress.durability import DURABLE_LEVEL
from revenge.redis_scripts import ScriptedRedis

log = logging.getLogger("revenge.playback")

Entry = list[Any]  # [kind, *arguments]: JSON as it is
_AS_IS: Codec[Entry] = Codec(list, list)
REPLAY_CHUNK = 32  # entries are replayed one round trip each: a chunk ends well within the store timeout


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class _RedisBacked(Protocol):
    @property
    def redis(self) -> ScriptedRedis: ...
    async def open(self) -> None: ...
    async def close(self) -> None: ...


class _Journaled:
    """What the four stores share: the journal in ``<data_dir>/<name>-journal/`` and the server's
    durability (read with every look at its mark). ``watch`` is the process's one watch of the server
    (``create_app``'s); without one, the store watches the server on its own connection."""

    def __init__(self, name: str, inner: _RedisBacked, data_dir: Path, timeout_seconds: float,
                 replay: Callable[[Entry], Awaitable[object]], check_interval: float,
                 watch: ServerWatch | None) -> None:
        self._backed = inner
        self._scripted = inner.redis
        self._replay_one = replay
        self._server_fsyncs = False
        self.journal: Journal[Entry] = Journal(
            JournalFiles(data_dir / f"{name}-journal", _AS_IS), name,
            watch or ServerWatch(self._mark, check_interval), self.replay, timeout_seconds,
            chunk=REPLAY_CHUNK, on_mark=self._seen)

    async def open(self) -> None:
        await self._backed.open()
        try:
            await self.journal.open()
        except BaseException:
            await self._backed.close()
            raise

    async def close(self) -> None:
        await self.journal.close()
        await self._backed.close()

    async def _mark(self) -> ServerMark:
        try:
            return await read_server_mark(self._scripted.client())
        except RedisError as exc:
            raise self._scripted.unavailable(exc) from exc

    def _seen(self, mark: ServerMark) -> None:
        self._server_fsyncs = mark.durability is not None and mark.durability.level == DURABLE_LEVEL

    async def replay(self, entries: Sequence[Entry]) -> None:
        """Re-apply journaled entries, in order (what the journal does after a restart)."""
        for entry in entries:
            await self._replay_one(entry)

    async def _log(self, *entries: Entry) -> None:
        if not self._server_fsyncs:
            await self.journal.append(entries)


class JournaledMarkStore(_Journaled):
    def __init__(self, inner: RedisMarkStore, data_dir: Path, timeout_seconds: float,
                 check_interval: float = CHECK_INTERVAL_S, watch: ServerWatch | None = None) -> None:
        super().__init__("marks", inner, data_dir, timeout_seconds, self._apply, check_interval, watch)
        self.inner = inner

    async def _apply(self, entry: Entry) -> None:
        kind, user, *rest = entry
        try:
            if kind == "star":
                await self.inner.star(user, rest[1:], int(rest[0]))
            elif kind == "unstar":
                # [at, *keys]; a journal of an earlier version holds the keys alone (time 0: it wins only
                # over a key without a recorded change)
                timed = bool(rest) and isinstance(rest[0], int)
                await self.inner.unstar(user, rest[1:] if timed else rest, rest[0] if timed else 0)
            elif kind == "rate":
                await self.inner.set_rating(user, rest[0], int(rest[1]), int(rest[2]) if len(rest) > 2 else 0)
        except TooManyMarks:  # the cap was reached meanwhile by newer marks: they win
            pass

    async def star(self, user_id: str, keys: Sequence[str], at_ms: int) -> None:
        async with self.journal.writing():
            await self.inner.star(user_id, keys, at_ms)
            await self._log(["star", user_id, at_ms, *keys])

    async def unstar(self, user_id: str, keys: Sequence[str], at_ms: int | None = None) -> None:
        at = _now_ms() if at_ms is None else at_ms  # this instance's clock, as a star's time is
        async with self.journal.writing():
            await self.inner.unstar(user_id, keys, at)
            await self._log(["unstar", user_id, at, *keys])

    async def set_rating(self, user_id: str, key: str, rating: int, at_ms: int | None = None) -> None:
        at = _now_ms() if at_ms is None else at_ms
        async with self.journal.writing():
            await self.inner.set_rating(user_id, key, rating, at)
            await self._log(["rate", user_id, key, rating, at])

    async def starred(self, user_id: str) -> dict[str, int]:
        return await self.inner.starred(user_id)

    async def ratings(self, user_id: str) -> dict[str, int]:
        return await self.inner.ratings(user_id)

    async def marks_of(self, user_id: str, keys: Sequence[str]) -> Marks:
        return await self.inner.marks_of(user_id, keys)


class JournaledPlaylistStore(_Journaled):
    def __init__(self, inner: RedisPlaylistStore, data_dir: Path, timeout_seconds: float,
                 check_interval: float = CHECK_INTERVAL_S, watch: ServerWatch | None = None) -> None:
        super().__init__("playlists", inner, data_dir, timeout_seconds, self._apply, check_interval, watch)
        self.inner = inner

    async def _apply(self, entry: Entry) -> None:
        kind, user, value = entry
        if kind == "playlist-delete":
            await self.inner.delete(user, value)
        else:
            await self.inner.restore(user, decode_playlist(value), created=kind == "playlist-add")

    async def add(self, user_id: str, playlist: Playlist) -> bool:
        async with self.journal.writing():
            added = await self.inner.add(user_id, playlist)
            if added:
                await self._log(["playlist-add", user_id, encode_playlist(playlist).decode()])
            return added

    async def put(self, user_id: str, playlist: Playlist) -> bool:
        async with self.journal.writing():
            replaced = await self.inner.put(user_id, playlist)
            if replaced:
                await self._log(["playlist-put", user_id, encode_playlist(playlist).decode()])
            return replaced

    async def delete(self, user_id: str, playlist_id: str) -> bool:
        async with self.journal.writing():
            deleted = await self.inner.delete(user_id, playlist_id)
            await self._log(["playlist-delete", user_id, playlist_id])
            return deleted

    async def get(self, user_id: str, playlist_id: str) -> Playlist | None:
        return await self.inner.get(user_id, playlist_id)

    async def all(self, user_id: str) -> list[Playlist]:
        return await self.inner.all(user_id)

    async def public(self) -> list[tuple[str, Playlist]]:
        return await self.inner.public()

    async def get_public(self, playlist_id: str) -> tuple[str, Playlist] | None:
        return await self.inner.get_public(playlist_id)


class JournaledQueueStore(_Journaled):
    def __init__(self, inner: RedisQueueStore, data_dir: Path, timeout_seconds: float,
                 check_interval: float = CHECK_INTERVAL_S, watch: ServerWatch | None = None) -> None:
        super().__init__("queue", inner, data_dir, timeout_seconds, self._apply, check_interval, watch)
        self.inner = inner

    async def _apply(self, entry: Entry) -> None:
        _, user, data = entry
        await self.inner.restore(user, queue_rules.decode(data))

    async def ping(self) -> None:
        await self.inner.ping()

    async def get(self, user_id: str) -> Queue:
        return await self.inner.get(user_id)

    async def put(self, user_id: str, queue: Queue, base_version: int) -> Queue | None:
        async with self.journal.writing():
            conflict = await self.inner.put(user_id, queue, base_version)
            if conflict is None:
                await self._log(["queue", user_id, queue_rules.encode(queue).decode()])
            return conflict


def _scrobble_entry(s: Scrobble) -> Entry:
    # Deliveries left out: a new record has none, and adding a record never changes them.
    return ["scrobble", s.user_id, s.item_id, s.item_type, s.started_at, s.listened_ms, s.device_id,
            s.source, s.recorded_at]


class JournaledRecordStore(_Journaled):
    def __init__(self, inner: RedisRecordStore, data_dir: Path, timeout_seconds: float,
                 check_interval: float = CHECK_INTERVAL_S, watch: ServerWatch | None = None) -> None:
        super().__init__("records", inner, data_dir, timeout_seconds, self._apply, check_interval, watch)
        self.inner = inner

    async def _apply(self, entry: Entry) -> None:
        kind, user, *rest = entry
        if kind == "scrobble":
            item, item_type, started, listened, device, source, recorded = rest
            scrobble = Scrobble(user, item, item_type, int(started), int(listened), device, source,
                                int(recorded))
            await self.inner.add_scrobbles([scrobble])
        elif kind == "outbox-mark":
            service, now_ms, marks = rest
            await self.inner.mark(user, service, [Mark(i, state, reason) for i, state, reason in marks],
                                  int(now_ms))
        elif kind == "bookmark":
            item, bookmark_id, value, max_per_item = rest
            await self.inner.add_bookmark(Bookmark.decode(user, item, bookmark_id, value), int(max_per_item))
        elif kind == "bookmark-delete":
            item, bookmark_id = rest
            await self.inner.delete_bookmark(user, item, bookmark_id)

    async def ping(self) -> None:
        await self.inner.ping()

    async def add_scrobbles(self, scrobbles: Sequence[Scrobble]) -> list[AddResult]:
        async with self.journal.writing():
            results = await self.inner.add_scrobbles(scrobbles)
            await self._log(*(_scrobble_entry(s) for s in scrobbles))
            return results

    async def get_scrobble(self, user_id: str, scrobble_id: str) -> Scrobble | None:
        return await self.inner.get_scrobble(user_id, scrobble_id)

    async def outbox(self, user_id: str, service: ServiceName, limit: int) -> list[Scrobble]:
        return await self.inner.outbox(user_id, service, limit)

    async def mark(self, user_id: str, service: ServiceName, marks: Sequence[Mark], now_ms: int) -> int:
        async with self.journal.writing():
            marked = await self.inner.mark(user_id, service, marks, now_ms)
            if marked:
                await self._log(["outbox-mark", user_id, service, now_ms,
                                 [[m.scrobble_id, m.state, m.reason] for m in marks]])
            return marked

    async def outbox_size(self, user_id: str, service: ServiceName) -> int:
        return await self.inner.outbox_size(user_id, service)

    async def listening_totals(self, user_id: str, first_day: int, last_day: int) -> list[DayTotal]:
        return await self.inner.listening_totals(user_id, first_day, last_day)

    async def add_bookmark(self, bookmark: Bookmark, max_per_item: int) -> bool:
        async with self.journal.writing():
            stored = await self.inner.add_bookmark(bookmark, max_per_item)
            if stored:
                await self._log(["bookmark", bookmark.user_id, bookmark.item_id, bookmark.id,
                                 bookmark.encode().decode(), max_per_item])
            return stored

    async def bookmarks(self, user_id: str, item_id: str) -> list[Bookmark]:
        return await self.inner.bookmarks(user_id, item_id)

    async def delete_bookmark(self, user_id: str, item_id: str, bookmark_id: str) -> bool:
        async with self.journal.writing():
            deleted = await self.inner.delete_bookmark(user_id, item_id, bookmark_id)
            await self._log(["bookmark-delete", user_id, item_id, bookmark_id])
            return deleted
