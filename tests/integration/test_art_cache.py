"""The art index and the disk cache of resized pictures, on real files: unchanged units are not read
again, the cache stays within its byte budget (least recently served out first), survives a restart
and sweeps half-written files, and a picture whose source changed is no longer served."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from revenge.library.art import ArtFormat, art_id_for
from revenge.library.art_cache import ArtCache, ArtMissing, load_original
from revenge.library.art_index import ArtIndex
from revenge.library.ids import item_id
from revenge.library.probe import probe_file
from tests.artgen import add_id3, picture_bytes, write_picture
from tests.mediagen import write_audio

RED, GREEN = (220, 20, 20), (20, 200, 20)


def album(tmp_path: Path, count: int = 1) -> tuple[ArtIndex, list[tuple[str, Path]]]:
    units = []
    for n in range(count):
        path = tmp_path / "music" / f"A{n}" / "t.mp3"
        write_audio(path, samples=11_025, rate=22_050, channels=1)
        write_picture(path.parent / "cover.png", 400 + n, 400, (n * 20 % 255, 40, 40))
        units.append((item_id("track", f"A{n}/t.mp3"), path))
    index = ArtIndex(tmp_path / "art.db")
    for uid, path in units:
        index.index_unit(uid, (path,))
    return index, units


def test_an_unchanged_unit_is_not_read_again_and_a_changed_one_is(tmp_path: Path) -> None:
    index, [(uid, path)] = album(tmp_path)
    cover = path.parent / "cover.png"
    first = index.art_id(uid)
    assert first == art_id_for(cover.read_bytes())
    # Same size and mtime, other bytes: the stamp says unchanged, so the picture is not read again.
    st = cover.stat()
    replaced = bytearray(cover.read_bytes())
    replaced[-20] ^= 0xFF
    cover.write_bytes(bytes(replaced))
    os.utime(cover, ns=(st.st_atime_ns, st.st_mtime_ns))
    index.index_unit(uid, (path,))
    assert index.art_id(uid) == first
    # A new picture (new mtime): a new id.
    newer = write_picture(cover, 300, 300, GREEN)
    index.index_unit(uid, (path,))
    assert index.art_id(uid) == art_id_for(newer) != first
    # An embedded picture appears in the file: it wins over the folder image.
    embedded = picture_bytes(50, 50, RED)
    add_id3(path, pictures=((3, embedded),))
    index.index_unit(uid, (path,))
    assert index.art_id(uid) == art_id_for(embedded)
    assert index.source(art_id_for(embedded)) == (str(path), True)
    index.close()


def test_art_the_scan_read_with_the_tags_is_taken_without_reading_the_file(tmp_path: Path) -> None:
    path = tmp_path / "music" / "A" / "t.mp3"
    write_audio(path, samples=11_025, rate=22_050, channels=1)
    embedded = picture_bytes(40, 40, RED)
    add_id3(path, pictures=((3, embedded),))
    probe = probe_file(path)
    assert probe.art_read and probe.embedded_art == art_id_for(embedded)
    index = ArtIndex(tmp_path / "art.db")
    told = art_id_for(b"what the scan said")  # not the file's picture: proves the file was not read
    index.index_unit("t1", (path,), {str(path): told})
    assert index.art_id("t1") == told
    index.index_unit("t2", (path,), {str(path): None})  # the scan found no picture in it
    assert index.art_id("t2") is None
    index.index_unit("t3", (path,))  # nothing said: the index reads the file itself
    assert index.art_id("t3") == probe.embedded_art


def test_a_picture_whose_source_changed_is_missing(tmp_path: Path) -> None:
    index, [(uid, path)] = album(tmp_path)
    art = index.art_id(uid)
    assert art is not None and load_original(index, art) == (path.parent / "cover.png").read_bytes()
    write_picture(path.parent / "cover.png", 10, 10, GREEN)
    with pytest.raises(ArtMissing):
        load_original(index, art)
    with pytest.raises(ArtMissing):
        load_original(index, "a" * 24)
    index.close()


def test_the_cache_stays_within_its_budget_least_recently_served_first(tmp_path: Path) -> None:
    index, units = album(tmp_path, 4)
    arts = [index.art_id(uid) or "" for uid, _ in units]
    assert all(arts)
    one = len(ArtCache(tmp_path / "probe", 10**9, index).make(arts[0], 256, "jpeg"))
    cache = ArtCache(tmp_path / "cache", int(one * 2.5), index)
    cache.make(arts[0], 256, "jpeg")
    cache.make(arts[1], 256, "jpeg")
    assert cache.cached(arts[0], 256, "jpeg") is not None  # 0 now more recent than 1
    cache.make(arts[2], 256, "jpeg")
    assert cache.total_bytes <= cache.limit_bytes
    assert cache.cached(arts[1], 256, "jpeg") is None
    assert not (tmp_path / "cache" / f"{arts[1]}-256.jpeg").exists()
    assert cache.cached(arts[0], 256, "jpeg") is not None
    assert cache.cached(arts[2], 256, "jpeg") is not None
    # A restart finds the kept files, and sweeps a half-written one.
    (tmp_path / "cache" / "junk.123.tmp").write_bytes(b"partial")
    again = ArtCache(tmp_path / "cache", int(one * 2.5), index)
    assert again.total_bytes == cache.total_bytes
    assert again.cached(arts[2], 256, "jpeg") is not None
    assert not (tmp_path / "cache" / "junk.123.tmp").exists()
    index.close()


def test_concurrent_misses_resize_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index, [(uid, _)] = album(tmp_path)
    art = index.art_id(uid)
    assert art is not None
    cache = ArtCache(tmp_path / "cache", 10**9, index)
    import revenge.library.art_cache as art_cache

    calls: list[int] = []
    real = art_cache.render
    gate = threading.Barrier(8)

    def counting(data: bytes, size: int, fmt: ArtFormat) -> bytes:  # counts; the resize is the real one
        calls.append(size)
        return real(data, size, fmt)

    monkeypatch.setattr(art_cache, "render", counting)
    results: list[bytes] = []

    def get() -> None:
        gate.wait()
        results.append(cache.make(art, 128, "webp"))

    threads = [threading.Thread(target=get) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [128] and len(set(results)) == 1
    index.close()


def test_names_outside_the_key_space_are_refused(tmp_path: Path) -> None:
    index, _ = album(tmp_path)
    cache = ArtCache(tmp_path / "cache", 10**9, index)
    for args in (("../../etc/passwd", 64, "jpeg"), ("a" * 24, 65, "jpeg"), ("a" * 24, 64, "png")):
        with pytest.raises(ValueError):
            cache.cached(*args)  # type: ignore[arg-type]  # "png" is not an ArtFormat: on purpose
    index.close()


def test_the_scan_command_indexes_art_too(tmp_path: Path) -> None:
    music = tmp_path / "music"
    write_audio(music / "A" / "t.mp3", samples=11_025, rate=22_050, channels=1)
    cover = write_picture(music / "A" / "Folder.jpeg", 30, 30, RED, "JPEG")
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVENGE_")}
    done = subprocess.run([sys.executable, "-m", "revenge", "scan", "--data-dir", str(tmp_path / "data"),
                           str(music)], capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    index = ArtIndex(tmp_path / "data" / "art.db")
    try:
        assert index.art_id(item_id("track", "A/t.mp3")) == art_id_for(cover)
    finally:
        index.close()


def test_a_scan_that_removes_items_forgets_their_pictures(tmp_path: Path) -> None:
    music = tmp_path / "music"
    for rel in ("A/t1.mp3", "A/t2.mp3", "B/t3.mp3"):
        write_audio(music / rel, samples=11_025, rate=22_050, channels=1)
    shared = write_picture(music / "A" / "cover.png", 30, 30, RED)
    own = write_picture(music / "B" / "cover.png", 31, 31, GREEN)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVENGE_")}

    def scan() -> None:
        done = subprocess.run([sys.executable, "-m", "revenge", "scan", "--data-dir", str(tmp_path / "data"),
                               str(music)], capture_output=True, text=True, env=env, timeout=120, check=False)
        assert done.returncode == 0, done.stderr

    def rows() -> tuple[set[str], set[str]]:
        db = sqlite3.connect(tmp_path / "data" / "art.db")
        try:
            return ({r[0] for r in db.execute("SELECT item_id FROM item_art")},
                    {r[0] for r in db.execute("SELECT art_id FROM pictures")})
        finally:
            db.close()

    scan()
    ids = {n: item_id("track", n) for n in ("A/t1.mp3", "A/t2.mp3", "B/t3.mp3")}
    assert rows() == (set(ids.values()), {art_id_for(shared), art_id_for(own)})
    (music / "A" / "t1.mp3").unlink()  # its picture stays: t2 still shows it
    (music / "B" / "t3.mp3").unlink()  # the last item showing its picture
    scan()
    assert rows() == ({ids["A/t2.mp3"]}, {art_id_for(shared)})
