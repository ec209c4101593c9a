"""The show cover rules: which pictures are written under which name, when to fetch again, and the
atomic write that leaves one ``cover.*``."""

from __future__ import annotations

from pathlib import Path

import pytest

from revenge.podcasts.cover import CoverError, cover_name, has_cover, wanted, write_cover
from tests.artgen import picture_bytes


def test_jpeg_png_and_webp_are_kept_as_they_are() -> None:
    for fmt, name in (("JPEG", "cover.jpg"), ("PNG", "cover.png"), ("WEBP", "cover.webp")):
        data = picture_bytes(8, 6, (10, 20, 30), fmt)
        assert cover_name(data) == (name, data)


def test_other_pictures_become_jpeg() -> None:
    name, data = cover_name(picture_bytes(8, 6, (10, 20, 30), "GIF"))
    assert name == "cover.jpg" and data[:3] == b"\xff\xd8\xff"


@pytest.mark.parametrize(
    "data",
    [b"", b"<html>not found</html>", bytes(range(256)), picture_bytes(40, 40, (1, 2, 3))[:60]],
    ids=["empty", "html", "noise", "truncated png"],
)
def test_anything_else_is_refused(data: bytes) -> None:
    with pytest.raises(CoverError):
        cover_name(data)


def test_fetched_on_the_first_download_a_new_url_or_a_lost_file() -> None:
    assert wanted("http://h/a.png", None, False)
    assert not wanted("http://h/a.png", "http://h/a.png", True)
    assert wanted("http://h/b.png", "http://h/a.png", True)
    assert wanted("http://h/a.png", "http://h/a.png", False)
    assert not wanted(None, None, False) and not wanted("", "x", True)


def test_write_leaves_one_cover_and_no_temp_file(tmp_path: Path) -> None:
    write_cover(tmp_path / "Show", "cover.png", b"png")
    write_cover(tmp_path / "Show", "cover.jpg", b"jpg")
    assert sorted(p.name for p in (tmp_path / "Show").iterdir()) == ["cover.jpg"]
    assert (tmp_path / "Show" / "cover.jpg").read_bytes() == b"jpg" and has_cover(tmp_path / "Show")


def test_an_older_podcasts_db_gets_the_cover_url_column(tmp_path: Path) -> None:
    import asyncio
    import sqlite3

    from revenge.podcasts.store import PodcastStore

    path = tmp_path / "podcasts.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE podcast (id TEXT PRIMARY KEY, image TEXT)")

    async def open_twice() -> None:
        for _ in range(2):  # the second open finds the column there
            store = PodcastStore(path)
            await store.open()
            await store.close()

    asyncio.run(open_twice())
    with sqlite3.connect(path) as db:
        assert "cover_url" in {row[1] for row in db.execute("PRAGMA table_info(podcast)")}


def test_a_picture_that_decodes_huge_is_refused() -> None:
    data = picture_bytes(9000, 8000, (0, 0, 0))  # a few kB of PNG, 216 MB decoded
    with pytest.raises(CoverError, match="too large"):
        cover_name(data)
