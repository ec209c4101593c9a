"""Serve an item only as its files are now, not as the last scan saw them.

A file replaced in place between scans keeps its path, so its item id, but the catalog still holds
the old length and fingerprint: segments of the new audio would be cached under the old ``v=``
beside segments of the old, and the playlist would keep the old length. So before media is served
the item's files are stat'ed (``is_fresh``: one ``stat`` per file, no read); when a size or mtime
differs, ``refresh_item`` (blocking: run it in a thread) probes the changed files again as a scan
would and stores the item with its new fingerprint, or drops the item when nothing of it is left
to play. The library watcher makes this rare; a missed event must still not serve a corrupt stream.

With a shared store (``settings.store`` a Redis URL), the new fingerprint is published to the identity
map the instances share (``library.shared_ids``) as a scan publishes it (``refresh_current``): another
instance that later meets the audio elsewhere (the file moved) gives it this item's id.
"""

from __future__ import annotations

import os
from pathlib import Path

from revenge.config import Settings
from revenge.library.catalog import Catalog
from revenge.library.ids import relative_key
from revenge.library.layout import Unit
from revenge.library.model import Item
from revenge.library.scan import UnitScanner, library_roots, shared_ids
from revenge.library.scan_status import ScanStatus
from revenge.library.shared_ids import SharedIds


def is_fresh(item: Item) -> bool:
    """Every file of ``item`` is there with the size and mtime the catalog recorded."""
    for media in item.files:
        try:
            st = os.stat(media.path)
        except OSError:
            return False
        if st.st_size != media.size or st.st_mtime_ns != media.mtime_ns:
            return False
    return True


def refresh_current(settings: Settings, catalog: Catalog, item_id: str) -> Item | None:
    """``refresh_item`` publishing to the shared identity map when ``settings.store`` is one (a
    connection for this refresh only: refreshes are rare). Blocking."""
    shared = shared_ids(settings, library_roots(settings))
    try:
        return refresh_item(catalog, item_id, shared)
    finally:
        if shared is not None:
            shared.close()  # publishes what the probe found (a store down: a warning, no failure)


def refresh_item(catalog: Catalog, item_id: str, shared: SharedIds | None = None) -> Item | None:
    """The item ``item_id`` as its files are now: probed again where they changed, stored under its
    new fingerprint (published to ``shared`` as a scan does); None (and gone from the catalog) when
    none of its files is left or readable. Blocking; one refresh at a time per catalog (a second
    caller gets the first one's result)."""
    with catalog.refresh_lock:
        item = catalog.get_item(item_id)
        if item is None or is_fresh(item):
            return item
        state = catalog.item_state(item_id)
        present = tuple(Path(f.path) for f in item.files if os.path.isfile(f.path))
        if state is not None and present:
            _, root, seen_scan, relative = state
            first = Path(item.files[0].path)
            # A folder book's id comes from its folder; a one-file item's (an .m4b too) from its file.
            folder_book = (item.type == "audiobook"
                           and relative_key(first.relative_to(root).parts) != relative)
            unit = Unit(item.type, Path(root), relative, present, folder_book)
            # Stamped with the scan that last saw it, so a running scan still counts it as its own.
            UnitScanner(catalog, ScanStatus(), seen_scan, lambda _: None, shared).unit(unit)
            catalog.commit()
            if shared is not None:
                shared.flush()
            item = catalog.get_item(item_id)
            if item is not None and is_fresh(item):
                return item
        # Gone, unreadable (its failure is recorded with the reason), or still being written: the
        # next scan or watcher event brings it back when it can be played.
        catalog.remove_item(item_id)
        catalog.commit()
        return None
