"""SegmentSizes: measured segment sizes in memory and in a real SQLite file across a restart."""

from __future__ import annotations

from pathlib import Path

from revenge.hls.sizes import SAVE_EVERY, RenditionKey, SegmentSizes
from revenge.sqlite_thread import SqliteThread

KEY = RenditionKey("item1", "fp1", "aac-128")


def _store(path: Path, kept: int = 16) -> SegmentSizes:
    return SegmentSizes(SqliteThread(path, "segment sizes"), kept)


async def test_sizes_outlive_a_restart_and_a_changed_file_starts_afresh(tmp_path: Path) -> None:
    db = tmp_path / "segment-sizes.db"
    sizes = _store(db)
    await sizes.load(KEY, 3)
    assert list(sizes.sizes(KEY) or []) == [0, 0, 0] and sizes.known(KEY) == 0
    assert sizes.add(KEY, 1, 500) is False  # partial: not due yet
    assert sizes.add(KEY, 99, 500) is False  # not a segment of the plan
    await sizes.close()  # saves the partial one

    again = _store(db)
    await again.load(KEY, 3)
    assert list(again.sizes(KEY) or []) == [0, 500, 0] and again.known(KEY) == 1
    assert again.add(KEY, 0, 600) is False
    assert again.add(KEY, 2, 100) is True  # complete: save now
    await again.save(KEY)
    changed = RenditionKey("item1", "fp2", "aac-128")  # the file changed: other audio
    await again.load(changed, 3)
    assert again.known(changed) == 0
    await again.close()

    third = _store(db)
    await third.load(KEY, 3)
    assert list(third.sizes(KEY) or []) == [600, 500, 100]
    await third.load(RenditionKey("item1", "fp1", "aac-128"), 4)  # another plan: not these sizes
    assert third.known(KEY) == 0
    await third.close()


async def test_a_long_rendition_is_saved_every_few_segments(tmp_path: Path) -> None:
    sizes = _store(tmp_path / "s.db")
    await sizes.load(KEY, 1000)
    due = [sizes.add(KEY, i, 100 + i) for i in range(SAVE_EVERY)]
    assert due == [False] * (SAVE_EVERY - 1) + [True]
    await sizes.save(KEY)
    assert sizes.add(KEY, 0, 100) is False  # the same size again changes nothing
    await sizes.close()


async def test_evicted_renditions_are_saved_and_reloaded(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    sizes = _store(db, kept=2)
    keys = [RenditionKey(f"item{n}", "fp", "flac") for n in range(4)]
    for n, key in enumerate(keys):
        await sizes.load(key, 2)
        sizes.add(key, 0, 1000 + n)
    assert sizes.sizes(keys[0]) is None  # out of memory, on disk
    await sizes.load(keys[0], 2)
    assert list(sizes.sizes(keys[0]) or []) == [1000, 0]
    await sizes.close()


async def test_a_database_that_cannot_open_leaves_sizes_in_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    sizes = _store(blocker / "s.db")
    await sizes.load(KEY, 2)
    assert sizes.add(KEY, 0, 10) is False and sizes.add(KEY, 1, 10) is True
    await sizes.save(KEY)
    assert list(sizes.sizes(KEY) or []) == [10, 10]
    await sizes.close()
