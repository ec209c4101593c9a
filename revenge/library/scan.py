"""Scan the library roots into the catalog: incrementally, in batches, cancellable, with progress.

A unit (see ``layout``) whose files all have the path, size and mtime the catalog recorded is not
probed again; only its ``seen`` stamp is refreshed. A changed book re-probes only its changed files.
A file that fails to probe is recorded with the reason and skipped (and not retried until it
changes). Items the scan did not see are removed at the end, but only under roots walked completely:
a cancelled scan or an unreadable (e.g. unmounted) root removes nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from revenge.config import Settings
from revenge.library.assemble import build_item
from revenge.library.catalog import Catalog
from revenge.library.identity import Place, clear_kept, item_at, new_item_id, set_content
from revenge.library.ids import fingerprint, item_id, relative_key, unit_content
from revenge.library.layout import RootWalk, Unit
from revenge.library.model import ItemType
from revenge.library.probe import Probe, ProbeError, file_content, probe_file
from revenge.library.probe_pool import ProbePool
from revenge.library.scan_status import ProgressBar, ScanReport, ScanStatus

if TYPE_CHECKING:
    from revenge.library.shared_ids import SharedIds

log = logging.getLogger("revenge.scan")

BATCH_UNITS = 2000  # commit after this many items …
BATCH_SECONDS = 1.0  # … or this long, so items appear while a long scan runs
_REPORTED_FAILURES = 20
# (item id, the unit's files, the embedded art id of each file probed just now, by path)
UnitHook = Callable[[str, tuple[Path, ...], Mapping[str, str | None]], None]


@dataclass(frozen=True, slots=True)
class UnitLook:
    """A unit's files as the scan found them, and what the catalog knows of each (``UnitScanner.look``)."""

    unit: Unit
    present: list[tuple[Path, int, int]]  # (path, size, mtime_ns) of the files there now
    fingerprint: str  # of those paths, sizes and mtimes ("" when none is there)
    place: Place | None  # the item the catalog has at the unit's place
    # None: the unit is unchanged (or empty). Else per present file: its stored probe (unchanged file),
    # the reason it failed before (unchanged since), or None: it must be probed.
    known: list[Probe | str | None] | None

    @property
    def to_probe(self) -> list[Path]:
        if self.known is None:
            return []
        return [path for (path, _, _), known in zip(self.present, self.known, strict=True) if known is None]


@dataclass(frozen=True, slots=True)
class ScannedUnit:
    uid: str
    embedded_art: Mapping[str, str | None]  # by path, for the files probed (tags read) just now


class _Batch:
    """Commit every BATCH_UNITS units or BATCH_SECONDS, whichever comes first."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._units = 0
        self._since = time.monotonic()

    def step(self) -> None:
        self._units += 1
        if self._units >= BATCH_UNITS or time.monotonic() - self._since >= BATCH_SECONDS:
            self.flush()

    def flush(self) -> None:
        self._catalog.commit()
        self._units = 0
        self._since = time.monotonic()


def library_roots(settings: Settings) -> list[tuple[Path, ItemType]]:
    """Configured roots (resolved) with the item type each holds; a root listed twice counts once."""
    roots: list[tuple[Path, ItemType]] = []
    seen: set[Path] = set()
    kinds: list[tuple[tuple[Path, ...], ItemType]] = [
        (settings.library, "track"), (settings.podcasts, "episode"), (settings.audiobooks, "audiobook")]
    for paths, kind in kinds:
        for path in paths:
            resolved = path.expanduser().resolve()
            if resolved not in seen:
                seen.add(resolved)
                roots.append((resolved, kind))
    return roots


class UnitScanner:
    """Brings the catalog in step with one unit of the layout: probes what changed, records failures."""

    def __init__(self, catalog: Catalog, status: ScanStatus, generation: int,
                 on_file: Callable[[str], None], shared: SharedIds | None = None,
                 pool: ProbePool | None = None) -> None:
        self.catalog = catalog
        self.shared = shared
        self.pool = pool  # probes ahead on worker processes (a full scan); None: probe inline
        self.status = status
        self.generation = generation
        self.report = ScanReport()
        self._on_file = on_file

    def _fail(self, unit: Unit, path: Path, size: int | None, mtime_ns: int | None, reason: str,
              known: bool = False) -> None:
        relative = relative_key(path.relative_to(unit.root).parts)
        if known:
            self.catalog.touch_failure(str(path), self.generation)
        else:
            self.catalog.record_failure(str(path), str(unit.root), relative, unit.type, size, mtime_ns,
                                        reason, self.generation)
            log.info("cannot use %s: %s", path, reason)
        self.report.failed += 1
        self.status.add(failed=1)
        if len(self.report.failures) < _REPORTED_FAILURES:
            self.report.failures.append((str(path), reason))

    def unit(self, unit: Unit) -> ScannedUnit:
        """Scan one unit: the id of its item (the path's own when nothing of it could be used), and
        the embedded art its freshly probed files hold."""
        return self.apply(self.look(unit))

    def look(self, unit: Unit) -> UnitLook:
        """What the catalog knows of ``unit``'s files as they are now (reads only: a scan looks ahead
        of the unit it applies, to probe on worker processes meanwhile)."""
        present: list[tuple[Path, int, int]] = []
        for path in unit.files:
            try:
                st = path.stat()
            except OSError:
                continue  # vanished since it was listed
            present.append((path, st.st_size, st.st_mtime_ns))
        if not present:
            return UnitLook(unit, present, "", None, None)
        unit_fingerprint = fingerprint((str(p), size, mtime) for p, size, mtime in present)
        place = item_at(self.catalog, str(unit.root), unit.relative)
        if place is not None and place.fingerprint == unit_fingerprint:
            return UnitLook(unit, present, unit_fingerprint, place, None)
        known: list[Probe | str | None] = []
        for path, size, mtime in present:
            stored = self.catalog.stored_probe(str(path), size, mtime)
            known.append(stored if stored is not None else self.catalog.known_failure(str(path), size, mtime))
        return UnitLook(unit, present, unit_fingerprint, place, known)

    def apply(self, look: UnitLook) -> ScannedUnit:
        """Bring the catalog in step with a unit as ``look`` found it (probing what it must)."""
        art: dict[str, str | None] = {}
        found: list[str | None] = [None]
        try:
            uid = self._apply(look, art, found)
        finally:
            if self.pool is not None:
                for path in look.to_probe:
                    self.pool.forget(path)  # submitted ahead but not needed after all
        if self.shared is not None and found[0] is not None:
            self.shared.publish(uid, look.unit.type, look.unit.relative, found[0] or None)
        return ScannedUnit(uid, art)

    def _probe(self, path: Path) -> Probe:
        if self.pool is not None:
            return self.pool.result(path)
        return probe_file(path, self.catalog.artist_separators)

    def _apply(self, look: UnitLook, art: dict[str, str | None], found: list[str | None]) -> str:
        """``found[0]``: set to the unit's audio ("" unknown) once an item of it is stored."""
        unit, present, place = look.unit, look.present, look.place
        root = str(unit.root)
        uid = item_id(unit.type, unit.relative)
        self.report.files_seen += len(present)
        self.status.add(files_seen=len(present))
        if not present:
            return uid
        unit_fingerprint = look.fingerprint
        if place is None:
            state = self.catalog.item_state(uid)
            if state is not None and state[2] == self.generation and state[1] != root \
                    and state[3] == unit.relative:
                # Two roots of the same kind hold the same relative path: the first one keeps the id.
                for path, size, mtime in present:
                    self._fail(unit, path, size, mtime, f"same path as an item already in {state[1]}")
                return uid
        if look.known is None:
            assert place is not None
            # Unreadable files of a book stay listed as failures while the book is unchanged.
            self.catalog.touch_item(place.id, [str(p) for p, _, _ in present], self.generation)
            content = place.content
            if content is None:  # scanned before fingerprints were kept: once, now
                contents = [(str(p), file_content(p)) for p, _, _ in present]
                content = unit_content(c for _, c in contents)
                set_content(self.catalog, place.id, content, contents)
            found[0] = content or ""
            self.report.unchanged += len(present)
            self.status.add(unchanged=len(present))
            return place.id
        probes: list[Probe] = []
        for (path, size, mtime), known in zip(present, look.known, strict=True):
            if self.status.cancelled:
                return uid
            self._on_file(relative_key(path.relative_to(unit.root).parts))
            if isinstance(known, Probe):
                probes.append(known)
                self.report.unchanged += 1
                self.status.add(unchanged=1)
                continue
            if known is not None:
                self._fail(unit, path, size, mtime, known, known=True)
                continue
            try:
                probe = self._probe(path)
            except ProbeError as exc:
                self.report.probed += 1
                self.status.add(probed=1)
                self._fail(unit, path, size, mtime, str(exc))
                continue
            except Exception as exc:  # a bug in a demuxer must fail this file, never the scan
                log.exception("probe crashed on %s", path)
                self.report.probed += 1
                self.status.add(probed=1)
                self._fail(unit, path, size, mtime, f"probe error: {type(exc).__name__}: {exc}")
                continue
            self.report.probed += 1
            self.status.add(probed=1)
            probes.append(probe)
            if probe.art_read:
                art[str(path)] = probe.embedded_art
        if not probes:
            return place.id if place is not None else uid  # a stale item is removed at the end of the scan
        arrival = "stored"
        content = unit_content(p.content for p in probes)
        if place is not None:
            uid = place.id
        else:
            uid, arrival = new_item_id(self.catalog, unit.type, root, unit.relative, content, self.shared)
        found[0] = content or ""
        item = replace(build_item(unit.type, unit.relative, probes, folder_book=unit.folder_book,
                                  file_fingerprint=unit_fingerprint), id=uid)
        self.catalog.put_item(item, probes, root, unit.relative, self.generation)
        if arrival == "moved":
            log.info("%s moved to %s: item %s kept its id", unit.type, unit.relative, uid)
            self.report.items_moved += 1
            self.status.add(items_moved=1)
        elif arrival == "new":
            self.report.items_added += 1
            self.status.add(items_added=1)
        else:
            self.report.items_updated += 1
            self.status.add(items_updated=1)
        return uid


def shared_ids(settings: Settings, roots: list[tuple[Path, ItemType]]) -> SharedIds | None:
    """The identity map of the instances sharing ``settings.store`` (None with SQLite: one instance)."""
    if settings.store == "sqlite":
        return None
    from revenge.library.shared_ids import SharedIds  # imports redis: only when there is one

    return SharedIds(settings.store, settings.store_timeout_seconds, roots)


def _walks(roots: list[tuple[Path, ItemType]]) -> list[RootWalk]:
    """One walk per root; a root inside another (a Podcasts folder in the music folder) is left out
    of the outer one's walk, so no file is an item twice."""
    return [RootWalk(root, kind, tuple(r for r, _ in roots if r != root and r.is_relative_to(root)))
            for root, kind in roots]


def _listed(walks: list[RootWalk], status: ScanStatus) -> list[Unit]:
    """Every unit of every root (the walk happens once: its length is the progress bar's total)."""
    units: list[Unit] = []
    for walk in walks:
        for unit in walk.units():
            if status.cancelled:
                return units
            units.append(unit)
    return units


def scan_library(settings: Settings, catalog: Catalog, status: ScanStatus,
                 show_progress: bool = False, on_unit: UnitHook | None = None) -> ScanReport:
    """Scan every configured root once (blocking; run it in a thread). Never raises for a bad file.
    ``on_unit(item_id, files, embedded_art)`` is called after each unit is scanned (cover art:
    ``ArtIndex.index_unit``)."""
    if not status.begin():
        raise RuntimeError("a scan is already running")
    started = time.monotonic()
    roots = library_roots(settings)
    bar = ProgressBar(sys.stderr) if show_progress else None
    current = [""]

    def on_file(name: str) -> None:
        current[0] = name
        if bar is not None:
            bar.draw(status.as_dict(), name)

    generation = catalog.begin_scan()
    shared = shared_ids(settings, roots)
    workers = settings.scan_workers if settings.scan_workers >= 0 else (os.cpu_count() or 1) - 1
    pool = ProbePool(workers, catalog.artist_separators, probe_file)
    scanner = UnitScanner(catalog, status, generation, on_file, shared, pool)
    report = scanner.report
    error: str | None = None
    try:
        status.set_phase("counting")
        walks = _walks(roots)
        units = _listed(walks, status)
        if shared is not None:
            shared.prefetch(units)
        status.set_phase("scanning", files_total=sum(len(u.files) for u in units))
        batch = _Batch(catalog)

        def apply(look: UnitLook) -> None:
            scanned = scanner.apply(look)
            if on_unit is not None:  # hook: cover art (library/art_index)
                on_unit(scanned.uid, look.unit.files, scanned.embedded_art)
            batch.step()
            if bar is not None:
                bar.draw(status.as_dict(), current[0])

        # Units are looked at ahead of the one applied, so the pool probes their files meanwhile;
        # they are applied in order, so the catalog ends as an inline scan leaves it.
        ahead: deque[UnitLook] = deque()
        for unit in units:
            if status.cancelled:
                break
            look = scanner.look(unit)
            for path in look.to_probe:
                pool.submit(path)
            ahead.append(look)
            while ahead and (len(ahead) > pool.capacity or pool.in_flight > pool.capacity):
                apply(ahead.popleft())
        while ahead and not status.cancelled:
            apply(ahead.popleft())
        batch.flush()
        report.cancelled = status.cancelled
        for walk in walks:
            for problem in walk.problems:
                catalog.record_failure(str(problem.path), str(walk.root),
                                       _relative_or_root(problem.path, walk.root), walk.type, None, None,
                                       problem.reason, generation)
                if len(report.failures) < _REPORTED_FAILURES:
                    report.failures.append((str(problem.path), problem.reason))
            if not walk.complete:
                report.incomplete_roots.append(str(walk.root))
        if not report.cancelled:
            status.set_phase("cleaning")
            walked = [str(w.root) for w in walks if w.complete]
            report.items_removed = catalog.remove_unseen(generation, walked, [str(r) for r, _ in roots])
            status.add(items_removed=report.items_removed)
            if len(walked) == len(walks):
                clear_kept(catalog)
        catalog.commit()
    except BaseException as exc:  # also KeyboardInterrupt in `revenge scan`
        error = f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(Exception):
            catalog.commit()  # keep what was scanned: every committed item is complete on its own
        raise
    finally:
        pool.close()
        if shared is not None:
            shared.close()  # publishes what is left
        report.seconds = time.monotonic() - started
        status.finish(error)
        if bar is not None:
            bar.draw(status.as_dict() | {"files_total": report.files_seen}, "", force=True)
            bar.close()
        log.info("library scan: %s", report.summary().replace("\n", " "))
    return report


def _relative_or_root(path: Path, root: Path) -> str:
    try:
        return relative_key(path.relative_to(root).parts)
    except ValueError:
        return ""

