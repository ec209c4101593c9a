"""Probing on worker processes (``ProbePool``): the same catalog as an inline scan, failures and a
worker that dies fail only their file."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

import revenge.library.probe_pool as probe_pool
from revenge.library.catalog import Catalog
from revenge.library.probe import Probe, ProbeError, probe_file
from revenge.library.probe_pool import ProbePool
from revenge.library.scan import scan_library
from revenge.library.scan_status import ScanStatus
from tests.libgen import Library, build_library
from tests.mediagen import write_audio


def crashing_probe(path: Path, separators: Sequence[str]) -> Probe:
    """Kills its worker process on a file named crash*: what a demuxer crashing on a damaged file does
    (a fault a real file cannot be relied on to provoke)."""
    if path.name.startswith("crash"):
        os._exit(70)
    return probe_file(path, separators)


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Library:
    return build_library(tmp_path_factory.mktemp("pool-lib"))


def _rows(db_path: Path) -> dict[str, list[tuple[object, ...]]]:
    """What a scan leaves in the catalog, without the times it ran at."""
    db = sqlite3.connect(db_path)
    try:
        return {
            "items": db.execute("SELECT id, type, title, artist, album, album_artist, track_number, "
                                "disc_number, genre, fingerprint, root, relative, sort_key, search, "
                                "album_id, year, content FROM items ORDER BY id").fetchall(),
            "files": db.execute("SELECT * FROM files ORDER BY path").fetchall(),
            "chapters": db.execute("SELECT * FROM chapters ORDER BY item_id, idx").fetchall(),
            "failures": db.execute("SELECT path, reason FROM failures ORDER BY path").fetchall(),
            "albums": db.execute("SELECT id, name, sort_key, artist, year, compilation, track_count, "
                                 "disc_count, duration_ms FROM albums ORDER BY id").fetchall(),
            "artists": db.execute("SELECT * FROM artists ORDER BY id").fetchall(),
        }
    finally:
        db.close()


def _scan(library: Library, data: Path, workers: int) -> Path:
    data.mkdir(parents=True)
    catalog = Catalog(data / "catalog.db")
    try:
        report = scan_library(library.settings(data, scan_workers=workers), catalog, ScanStatus())
        assert report.probed > 0
    finally:
        catalog.close()
    return data / "catalog.db"


def test_a_scan_on_worker_processes_leaves_the_catalog_an_inline_scan_leaves(
        library: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[int] = []
    real = ProbePool._new_executor

    def counted(self: ProbePool, workers: int) -> ProcessPoolExecutor:
        started.append(workers)
        return real(self, workers)

    monkeypatch.setattr(ProbePool, "_new_executor", counted)
    monkeypatch.setattr(probe_pool, "MIN_POOLED", 2)  # the library is small: pool it anyway
    pooled = _rows(_scan(library, tmp_path / "pooled", workers=2))
    assert started == [2]
    monkeypatch.setattr(probe_pool, "MIN_POOLED", 10**6)
    inline = _rows(_scan(library, tmp_path / "inline", workers=2))
    assert started == [2]
    assert pooled["items"] and pooled["failures"]  # the library holds a corrupt file
    assert pooled == inline


def _tracks(folder: Path, count: int) -> list[Path]:
    return [write_audio(folder / f"{i:02d}.flac", samples=4410 + i, rate=44_100,
                        tags={"title": f"T{i}"}).path for i in range(count)]


def test_the_pool_answers_each_file_its_own_probe_in_any_order(tmp_path: Path) -> None:
    paths = _tracks(tmp_path, 12)
    (tmp_path / "junk.flac").write_bytes(b"not audio at all" * 100)
    pool = ProbePool(2, min_pooled=4)
    try:
        for path in [*paths, tmp_path / "junk.flac"]:
            pool.submit(path)
        assert pool.in_flight == 13
        for path in reversed(paths):
            assert pool.result(path) == probe_file(path)
        with pytest.raises(ProbeError):
            pool.result(tmp_path / "junk.flac")
        assert pool.in_flight == 0
        assert pool.result(paths[0]).file.sample_count == 4410  # never submitted now: inline
    finally:
        pool.close()


def test_a_worker_that_dies_fails_only_the_file_it_died_on(tmp_path: Path) -> None:
    paths = _tracks(tmp_path, 10)
    crash = write_audio(tmp_path / "crash.flac", samples=4410, rate=44_100).path
    order = [*paths[:3], crash, *paths[3:]]
    pool = ProbePool(2, probe=crashing_probe, min_pooled=2)
    try:
        for path in order:
            pool.submit(path)
        for path in order:
            if path == crash:
                with pytest.raises(ProbeError, match="crashed"):
                    pool.result(path)
            else:
                assert pool.result(path).file.sample_count == probe_file(path).file.sample_count
    finally:
        pool.close()


def test_no_workers_means_probing_inline(tmp_path: Path) -> None:
    paths = _tracks(tmp_path, 3)
    pool = ProbePool(0, probe=crashing_probe, min_pooled=1)
    for path in paths:
        pool.submit(path)
    assert pool.in_flight == 0 and pool.capacity == 0
    assert pool.result(paths[1]).file.sample_count == 4411
    pool.close()


def _die_at_start() -> None:
    os._exit(71)


class _UnstartablePool(ProbePool):
    """Workers that die as they start: what a program starting the pool from an unguarded main module
    (or a system that cannot spawn) gets."""

    def _new_executor(self, workers: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_die_at_start)


def test_workers_that_cannot_start_fall_back_to_probing_inline(tmp_path: Path) -> None:
    paths = _tracks(tmp_path, 10)
    pool = _UnstartablePool(2, min_pooled=2)
    try:
        for path in paths:
            pool.submit(path)
        assert [pool.result(p).file.sample_count for p in paths] == [4410 + i for i in range(10)]
        assert pool.workers == 0 and pool.capacity == 0
    finally:
        pool.close()
