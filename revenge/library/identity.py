"""Which id a unit of the library gets, so that what users did with an item follows it when its file
is moved or renamed (progress, play counts, scrobbles and bookmarks are keyed by item id).

In this order:

1. the item stored at the unit's place (root + relative path): its id, whatever it was derived from;
   with a Dragonfly/Redis store, else the id another instance published for the place
   (``shared_ids``: every instance gives every item the same id);
2. after a catalog rebuild, the id that place held before (``kept_ids``);
   the item at the same relative path under another root (a library folder moved or remounted);
3. the id of an item of the same type with the same audio (``ids.unit_content``: the files' audio
   fingerprints) none of whose files is still where the catalog has it, or that was removed in the
   last 30 days (``missing_ids``, filled by a trigger on every removal): the same file moved or
   renamed, across folders and across roots of the same type, in one batch of changes or over
   several (moved out of the library and back, or a request saw it gone before the watcher did).
   A copy is a new item (the original is still there). Audio shared by more than
   ``MAX_SAME_AUDIO`` stored items (a library of identical silences, or one file copied many times)
   says nothing about which of them moved, so it is not matched: a scan stays linear in the files;
   with a shared store, else an item with that audio whose published place is gone from the disk
   (a move another instance saw, or one this instance's empty catalog cannot know of);
4. the id derived from the path (``ids.item_id``), or, when an item moved away from this path
   still holds that id, the first free ``ids.variant_item_id``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from revenge.library.catalog import Catalog
from revenge.library.ids import item_id, variant_item_id
from revenge.library.model import ItemType

_MAX_VARIANTS = 64
MAX_SAME_AUDIO = 8
MISSING_KEPT_S = 30 * 86_400  # how long a removed item's id waits for its audio to come back
Arrival = Literal["new", "moved", "remounted"]


@dataclass(frozen=True, slots=True)
class Place:
    """A stored item as its place in the library knows it."""

    id: str
    fingerprint: str
    root: str
    seen_scan: int
    relative: str
    content: str | None


def item_at(catalog: Catalog, root: str, relative: str) -> Place | None:
    with catalog.writing() as db:
        row = db.execute("SELECT id, fingerprint, root, seen_scan, relative, content FROM items "
                         "WHERE root = ? AND relative = ?", (root, relative)).fetchone()
    return Place(row[0], row[1], row[2], int(row[3]), row[4], row[5]) if row else None


def _held(catalog: Catalog, uid: str) -> bool:
    with catalog.writing() as db:
        return db.execute("SELECT 1 FROM items WHERE id = ?", (uid,)).fetchone() is not None


def _gone(catalog: Catalog, uid: str) -> bool:
    """None of the item's files is where the catalog has it."""
    with catalog.writing() as db:
        paths = [r[0] for r in db.execute("SELECT path FROM files WHERE item_id = ?", (uid,))]
    return not any(os.path.exists(p) for p in paths)


def moved_from(catalog: Catalog, item_type: ItemType, content: str | None) -> str | None:
    """The id of a stored item with this audio whose files are all gone, else of such an item that
    was removed in the last ``MISSING_KEPT_S`` (see the module's rule 3)."""
    if content is None:
        return None
    # No ORDER BY in SQL: sorting there would read every row with this audio (a library of thousands
    # of copies made each scan quadratic); at most MAX_SAME_AUDIO rows are ever sorted, here.
    with catalog.writing() as db:
        ids = [r[0] for r in db.execute(
            "SELECT id FROM items WHERE type = ? AND content = ? LIMIT ?",
            (item_type, content, MAX_SAME_AUDIO + 1))]
        missing = db.execute(
            "SELECT id, removed_at FROM missing_ids WHERE type = ? AND content = ? AND removed_at > ? "
            "LIMIT ?", (item_type, content, time.time() - MISSING_KEPT_S, MAX_SAME_AUDIO + 1)).fetchall()
    if len(ids) > MAX_SAME_AUDIO or len(missing) > MAX_SAME_AUDIO:
        return None
    latest_first = [uid for uid, _ in sorted(missing, key=lambda r: (-r[1], r[0]))]
    return next((uid for uid in sorted(ids) if _gone(catalog, uid)), None) \
        or next((uid for uid in latest_first if not _held(catalog, uid)), None)


class PublishedIds(Protocol):
    """The ids other instances published (``shared_ids.SharedIds``, which imports this module)."""

    def at_place(self, item_type: ItemType, relative: str) -> str | None: ...

    def moved(self, item_type: ItemType, content: str | None,
              held: Callable[[str], bool]) -> str | None: ...


def new_item_id(catalog: Catalog, item_type: ItemType, root: str, relative: str,
                content: str | None, shared: PublishedIds | None = None) -> tuple[str, Arrival]:
    """The id of a unit no stored item has the place of (rules 1 with ``shared``, 2–4), and how it
    came: ``new``, ``moved`` (a moved item's id) or ``remounted`` (its item stored under another
    root)."""
    if shared is not None:
        published = shared.at_place(item_type, relative)
        if published is not None and not _held(catalog, published):
            return published, "new"
    with catalog.writing() as db:
        row = db.execute("SELECT id FROM kept_ids WHERE root = ? AND relative = ?",
                         (root, relative)).fetchone()
    if row is not None and not _held(catalog, row[0]):
        return row[0], "new"
    derived = item_id(item_type, relative)
    with catalog.writing() as db:
        holder = db.execute("SELECT relative FROM items WHERE id = ?", (derived,)).fetchone()
    if holder is not None and holder[0] == relative:
        return derived, "remounted"  # the same path under another root: a library folder moved
    moved = moved_from(catalog, item_type, content)
    if moved is None and shared is not None:
        moved = shared.moved(item_type, content, lambda uid: _held(catalog, uid))
    if moved is not None:
        return moved, "moved"
    if holder is None:
        return derived, "new"
    for n in range(1, _MAX_VARIANTS):
        candidate = variant_item_id(item_type, relative, n)
        if not _held(catalog, candidate):
            return candidate, "new"
    raise RuntimeError(f"no free item id for {relative!r}")  # 64 items moved away from one path


def set_content(catalog: Catalog, uid: str, unit: str | None, files: list[tuple[str, str | None]]) -> None:
    """Store fingerprints computed for an item scanned before they were kept (catalog version 3)."""
    with catalog.writing() as db:
        db.execute("UPDATE items SET content = ? WHERE id = ?", (unit, uid))
        db.executemany("UPDATE files SET content = ? WHERE path = ?", [(c, p) for p, c in files])


def clear_kept(catalog: Catalog) -> None:
    """After a complete scan every kept id found its place again (or its item is gone); ids removed
    long ago stop waiting."""
    with catalog.writing() as db:
        db.execute("DELETE FROM kept_ids")
        db.execute("DELETE FROM missing_ids WHERE removed_at <= ?", (time.time() - MISSING_KEPT_S,))
