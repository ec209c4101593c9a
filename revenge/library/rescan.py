"""Rescan a few folders (``changes.Target``) with the scanner's own unit code: what the library
watcher does with a batch of changes, without walking the rest of the library.

Every target is walked before anything is removed, so a file moved from one target folder to another
is found at its new place (and keeps its id, ``identity``) before its old place is cleaned. Items and
failures of a target that the rescan did not see are removed, unless its walk was incomplete (an
unreadable folder, a root that is not there: an unmounted disk removes nothing).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from revenge.config import Settings
from revenge.library.catalog import Catalog
from revenge.library.changes import Target, covers
from revenge.library.layout import RootWalk
from revenge.library.scan import UnitHook, UnitScanner, library_roots, shared_ids
from revenge.library.scan_status import ScanReport, ScanStatus

log = logging.getLogger("revenge.scan")


def _remove_unseen(catalog: Catalog, target: Target, generation: int) -> int:
    prefix = target.relative
    where = "root = ? AND seen_scan < ?"
    params: list[object] = [str(target.root), generation]
    if prefix:
        where += " AND (relative = ? OR substr(relative, 1, ?) = ?)"
        params += [prefix, len(prefix) + 1, prefix + "/"]
    with catalog.writing() as db:
        gone = [r[0] for r in db.execute(f"SELECT id, relative FROM items WHERE {where}", params)
                if covers(target, r[1])]
        failed = [r[0] for r in db.execute(f"SELECT path, relative FROM failures WHERE {where}", params)
                  if covers(target, r[1])]
        db.executemany("DELETE FROM failures WHERE path = ?", [(p,) for p in failed])
    for uid in gone:
        catalog.remove_item(uid)
    return len(gone)


def rescan_folders(settings: Settings, catalog: Catalog, targets: Sequence[Target],
                   on_unit: UnitHook | None = None) -> ScanReport:
    """Bring the catalog in step with ``targets`` (blocking: run it in a thread, one at a time with
    full scans: ``ScanRunner.rescan``)."""
    started = time.monotonic()
    roots = library_roots(settings)
    generation = catalog.begin_scan()
    shared = shared_ids(settings, roots)
    scanner = UnitScanner(catalog, ScanStatus(), generation, lambda _: None, shared)
    report = scanner.report
    complete: list[Target] = []
    try:
        for target in targets:
            skip = tuple(r for r, _ in roots if r != target.root and r.is_relative_to(target.root))
            walk = RootWalk(target.root, target.type, skip)
            for unit in walk.units_in(target.folder, deep=target.deep):
                scanned = scanner.unit(unit)
                if on_unit is not None:
                    on_unit(scanned.uid, unit.files, scanned.embedded_art)
            if walk.complete:
                complete.append(target)
            else:
                report.incomplete_roots.append(str(target.root / target.relative))
        for target in complete:
            report.items_removed += _remove_unseen(catalog, target, generation)
    finally:
        if shared is not None:
            shared.close()  # publishes what is left
        catalog.commit()
        report.seconds = time.monotonic() - started
    log.info("rescan of %s: %s", ", ".join(str(t.root / t.relative) for t in targets) or "nothing",
             report.summary().replace("\n", " "))
    return report
