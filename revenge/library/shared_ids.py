"""The identity map every instance on one Dragonfly/Redis store shares, so that each gives each item the
same id after moves (``revenge.library.identity`` decides ids from one instance's catalog: a fresh
instance, whose catalog is empty, would derive a moved item's id from its new path).

Keys (one hash tag, ``{library}``: every key of a script call is in one slot):

* ``rv:{library}:ids:path``  hash ``<type>:<relative path>`` → item id (where each item is);
* ``rv:{library}:ids:place`` hash item id → ``<type>:<relative path>``;
* ``rv:{library}:ids:content:<type>:<content>`` set of the item ids with that audio (``ids.unit_content``).

A full scan reads the path map of its units up front (``prefetch``: one HMGET per ``BATCH`` units in
a pipeline; a rescan of a few folders asks for the units it has no item for), so a unit at a place an
instance already published gets that place's id; a unit no instance has a place for, whose audio is
that of an item whose published place is gone from the disk, gets that item's id (a move another
instance saw, or that none saw yet); and every id decided is published (``identity_put.lua``, in
pipelines of ``BATCH`` calls, ``transaction=False``), unless the path map already said so. Places are
relative to their root (instances may mount the library at other paths). The first instance to
publish a place decides its id; an instance whose catalog already holds an item at a place keeps that
item's id.

A store that cannot be reached leaves the scan to the instance's own catalog (with a warning): the
scan itself never fails for it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path

import redis
from redis.exceptions import RedisError

from revenge.library.identity import MAX_SAME_AUDIO
from revenge.library.layout import Unit
from revenge.library.model import ItemType
from revenge.redis_scripts import redacted_url, reply_text

log = logging.getLogger("revenge.scan")

PATHS_KEY = "rv:{library}:ids:path"
PLACES_KEY = "rv:{library}:ids:place"
BATCH = 500


def content_key(item_type: ItemType, content: str) -> str:
    return f"rv:{{library}}:ids:content:{item_type}:{content}"


def place_key(item_type: ItemType, relative: str) -> str:
    return f"{item_type}:{relative}"


def _script_source() -> str:
    return resources.files("revenge.library").joinpath("lua", "identity_put.lua").read_text()


class SharedIds:
    """Blocking (the scan runs in a thread)."""

    def __init__(self, url: str, timeout_seconds: float, roots: Sequence[tuple[Path, ItemType]],
                 key_guard: str = "") -> None:
        self.url = url
        self._roots = list(roots)
        self._client = redis.Redis.from_url(url, socket_timeout=timeout_seconds,
                                            socket_connect_timeout=timeout_seconds)
        self._put = self._client.register_script(key_guard + _script_source())
        self._known: dict[str, str] = {}  # place → id, as the store had it (or as published since)
        self._asked: set[str] = set()  # the places _known is complete for
        self._pending: list[tuple[str, str, str | None]] = []
        self.down = False
        self.published = 0

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._client.close()

    def _failed(self, exc: RedisError) -> None:
        if not self.down:
            log.warning("shared item ids in %s unavailable (%s): this scan decides ids from its own "
                        "catalog only", redacted_url(self.url), exc)
        self.down = True

    def prefetch(self, units: Sequence[Unit]) -> None:
        places = list(dict.fromkeys(place_key(u.type, u.relative) for u in units))
        try:
            pipe = self._client.pipeline(transaction=False)
            batches = [places[i:i + BATCH] for i in range(0, len(places), BATCH)]
            for batch in batches:
                pipe.hmget(PATHS_KEY, batch)
            replies = pipe.execute() if batches else []
        except RedisError as exc:
            self._failed(exc)
            return
        self._asked.update(places)
        for batch, values in zip(batches, replies, strict=True):
            self._known.update((p, reply_text(v))
                               for p, v in zip(batch, values, strict=True) if v is not None)

    def at_place(self, item_type: ItemType, relative: str) -> str | None:
        """The id published for the place (asked now unless ``prefetch`` asked already: a rescan of a
        few folders asks for its new units only)."""
        place = place_key(item_type, relative)
        if place not in self._asked and not self.down:
            try:
                value = self._client.hget(PATHS_KEY, place)
            except RedisError as exc:
                self._failed(exc)
                return None
            self._asked.add(place)
            if value is not None:
                self._known[place] = reply_text(value)
        return self._known.get(place)

    def _place_exists(self, place: str) -> bool:
        item_type, _, relative = place.partition(":")
        return any(kind == item_type and os.path.exists(root / relative) for root, kind in self._roots)

    def moved(self, item_type: ItemType, content: str | None, held: Callable[[str], bool]) -> str | None:
        """The id of an item with this audio whose published place is gone from the disk and that this
        instance holds no item of (the first such by id, as ``identity.moved_from`` picks)."""
        if content is None or self.down:
            return None
        try:
            ids = [reply_text(m) for m in self._client.srandmember(content_key(item_type, content),
                                                                    MAX_SAME_AUDIO + 1)]
            if not ids or len(ids) > MAX_SAME_AUDIO:
                return None
            ids.sort()
            places = self._client.hmget(PLACES_KEY, ids)
        except RedisError as exc:
            self._failed(exc)
            return None
        for uid, place in zip(ids, places, strict=True):
            if place is not None and not self._place_exists(reply_text(place)) and not held(uid):
                return uid
        return None

    def publish(self, uid: str, item_type: ItemType, relative: str, content: str | None) -> None:
        place = place_key(item_type, relative)
        if self.down or self._known.get(place) == uid:
            return
        self._known[place] = uid
        self._pending.append((uid, place, None if content is None else content_key(item_type, content)))
        if len(self._pending) >= BATCH:
            self.flush()

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        if not pending or self.down:
            return
        try:
            pipe = self._client.pipeline(transaction=False)
            for uid, place, content in pending:
                keys = [PATHS_KEY, PLACES_KEY] if content is None else [PATHS_KEY, PLACES_KEY, content]
                self._put(keys=keys, args=[uid, place], client=pipe)
            pipe.execute()
        except RedisError as exc:
            self._failed(exc)
            return
        self.published += len(pending)
