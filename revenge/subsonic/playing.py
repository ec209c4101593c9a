"""What a user is doing: ``scrobble`` (a listen recorded, or with ``submission=false`` now playing),
``getNowPlaying``, ``savePlayQueue``/``getPlayQueue`` (the shared play queue, positions in ms) and
``getBookmarks``/``createBookmark``/``deleteBookmark`` (Subsonic bookmarks are resume positions: the
caller's progress). Each maps onto the native services: records, queue, progress."""

from __future__ import annotations

import time
from typing import Any

from revenge.library.model import Item
from revenge.library.tags import Tags
from revenge.playback.queue import Replace
from revenge.playback.queue_service import QueueConflict
from revenge.playback.scrobbles import Scrobble, ScrobbleRejected, check_started_at
from revenge.progress.model import ProgressUpdate
from revenge.progress.service import now_ms
from revenge.subsonic import mapping
from revenge.subsonic.envelope import GENERIC, SubsonicError, not_found
from revenge.subsonic.mapping import parse_id
from revenge.subsonic.media import current_item
from revenge.subsonic.protocol import Call, Handler, device_of

MAX_QUEUE = 10_000


def _song(call: Call, item: Item, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    tags = call.state.catalog.track_tags(item.id)
    return mapping.item_song(item, tags or Tags(), extra=extra)


def _item(call: Call, value: str) -> Item:
    parsed = parse_id(value)
    item = call.state.catalog.get_item(parsed[1]) if parsed and parsed[0] == "track" else None
    if item is None:
        raise not_found("Song")
    return item


async def scrobble(call: Call) -> dict[str, Any]:
    ids, times = call.all("id"), call.all("time")
    if not ids:
        call.require("id")
    items = [_item(call, value) for value in ids[:50]]
    received = now_ms()
    if not call.bool("submission", True):
        for item in items[:1]:
            await call.state.subsonic.now_playing.report(call.user.id, call.user.name, device_of(call),
                                                         item.id, time.time(), item.duration_ms / 1000)
            call.state.scrobblers.now_playing(call.user.id, item.id)
        return {}
    records = []
    for n, item in enumerate(items):
        try:
            # ``time`` is when the listen happened (ms); without it, it ended now.
            started = int(times[n]) if n < len(times) else received - item.duration_ms
            check_started_at(started, received)
        except (ValueError, ScrobbleRejected):
            raise SubsonicError(GENERIC, "Parameter time must be ms since the Unix epoch, "
                                         "not in the future") from None
        records.append(Scrobble(user_id=call.user.id, item_id=item.id, item_type=item.type,
                                started_at=started, listened_ms=item.duration_ms, device_id=device_of(call),
                                source="client", recorded_at=received))
    await call.state.records.add_scrobbles(records)
    return {}


async def get_now_playing(call: Call) -> dict[str, Any]:
    now = time.time()
    entries = []
    for playing in await call.state.subsonic.now_playing.current(now):
        item = call.state.catalog.get_item(playing.item_id)
        if item is not None:
            entries.append(_song(call, item, {"username": playing.user_name,
                                              "minutesAgo": int((now - playing.since) // 60),
                                              "playerId": 0, "playerName": playing.player}))
    return {"nowPlaying": {"entry": entries}}


async def save_play_queue(call: Call) -> dict[str, Any]:
    ids = call.all("id")
    if len(ids) > MAX_QUEUE:
        raise SubsonicError(GENERIC, f"A play queue holds at most {MAX_QUEUE} songs")
    items = [_item(call, value).id for value in ids]
    current_id = call.get("current")
    current = items.index(current_id) if current_id in items else (0 if items else None)
    if current_id and current_id not in items:
        raise not_found("Current song in the queue")
    position = call.int("position", 0)
    replace = Replace(tuple(items), current, position if items else 0)
    queue = call.state.queue
    for _ in range(3):  # another device's change in between: apply ours on top of it
        base = (await queue.get(call.user.id)).version
        try:
            await queue.change(call.user.id, base, [replace], device_of(call), now_ms())
            return {}
        except QueueConflict:
            continue
    raise SubsonicError(GENERIC, "The play queue kept changing; try again")


async def get_play_queue(call: Call) -> dict[str, Any]:
    queue = await call.state.queue.get(call.user.id)
    entries = queue.entries
    found = call.state.catalog.cached_items(list(entries))
    body: dict[str, Any] = {"username": call.user.name, "changedBy": queue.changed_by,
                            "changed": mapping.iso(queue.changed_at / 1000),
                            "entry": [_song(call, found[i]) for i in entries if i in found]}
    if queue.current is not None and queue.current < len(entries):
        body["current"] = entries[queue.current]
        body["position"] = queue.position_ms
    return {"playQueue": {k: v for k, v in body.items() if v is not None}}


async def create_bookmark(call: Call) -> dict[str, Any]:
    item = await current_item(call)
    position = min(call.int("position", 0), item.duration_ms)
    received = now_ms()
    await call.state.progress.update(ProgressUpdate(
        user_id=call.user.id, item_id=item.id, item_type=item.type, duration_ms=item.duration_ms,
        position_ms=position, event="pause", device_id=device_of(call), event_ts_ms=received,
        received_ms=received))
    return {}


async def get_bookmarks(call: Call) -> dict[str, Any]:
    states = await call.state.progress.continue_listening(call.user.id, None, 100)
    found = call.state.catalog.cached_items([s.item_id for s in states])
    bookmarks = []
    for state in states:
        item = found.get(state.item_id)
        if item is None or state.position_ms <= 0:
            continue
        changed = mapping.iso(state.updated_ms / 1000)
        bookmarks.append({"position": state.position_ms, "username": call.user.name, "created": changed,
                          "changed": changed, "entry": _song(call, item)})
    return {"bookmarks": {"bookmark": bookmarks}}


async def delete_bookmark(call: Call) -> dict[str, Any]:
    item = _item(call, call.require("id"))
    await call.state.progress.reset(call.user.id, item.id)
    return {}


HANDLERS: dict[str, Handler] = {
    "scrobble": scrobble, "getNowPlaying": get_now_playing, "savePlayQueue": save_play_queue,
    "getPlayQueue": get_play_queue, "createBookmark": create_bookmark, "getBookmarks": get_bookmarks,
    "deleteBookmark": delete_bookmark,
}
