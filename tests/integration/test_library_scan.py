"""The library scan on real generated files: exact sample counts, books, failures, incremental rescans."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

import revenge.library.catalog as catalog_module
import revenge.library.scan as scan_module
from revenge.config import Settings
from revenge.library.catalog import Catalog
from revenge.library.ids import item_id
from revenge.library.model import Item
from revenge.library.probe import Probe
from revenge.library.scan import scan_library
from revenge.library.scan_status import ScanReport, ScanStatus
from tests.libgen import Library, build_library
from tests.live import test_settings as make_settings
from tests.mediagen import write_audio


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Library:
    return build_library(tmp_path_factory.mktemp("pristine"))


@pytest.fixture
def lib(pristine: Library, tmp_path: Path) -> Library:
    """A private copy of the generated library, free to modify."""
    base = tmp_path / "lib"
    shutil.copytree(pristine.base, base)
    return Library(base, base / "music", base / "podcasts", base / "audiobooks", dict(pristine.items),
                   base / "music" / "Broken" / "corrupt.flac")


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    cat = Catalog(tmp_path / "catalog.db")
    yield cat
    cat.close()


@pytest.fixture
def probes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every file the scanner probes, in order."""
    calls: list[Path] = []
    real = scan_module.probe_file

    def counting(path: Path, *args: Any) -> Probe:
        calls.append(path)
        return real(path, *args)

    monkeypatch.setattr(scan_module, "probe_file", counting)
    return calls


def scan(settings: Settings, catalog: Catalog) -> ScanReport:
    return scan_library(settings, catalog, ScanStatus())


def expected_id(rel: str, item_type: str) -> str:
    return item_id(item_type, rel)  # type: ignore[arg-type]


def get(catalog: Catalog, lib: Library, rel: str) -> Item:
    item = catalog.get_item(expected_id(rel, lib.items[rel].type))
    assert item is not None, rel
    return item


def test_scan_finds_every_good_file_with_its_exact_sample_count(lib: Library, catalog: Catalog,
                                                                 tmp_path: Path) -> None:
    report = scan(lib.settings(tmp_path / "data"), catalog)
    files = sum(len(e.generated) for e in lib.items.values())
    assert (report.files_seen, report.probed, report.failed) == (files + 1, files + 1, 1)
    assert report.items_added == len(lib.items) and report.items_removed == 0
    for rel, want in lib.items.items():
        item = get(catalog, lib, rel)
        assert item.type == want.type and item.title == want.title, rel
        assert [f.sample_count for f in item.files] == [g.samples for g in want.generated], rel
        assert [f.sample_rate for f in item.files] == [g.sample_rate for g in want.generated], rel
        assert [f.channels for f in item.files] == [g.channels for g in want.generated], rel
        assert item.sample_count == want.samples
        assert [c.title for c in item.chapters] == list(want.chapters), rel
    assert catalog.count_items() == {"track": 5, "episode": 1, "audiobook": 2}
    failures, total = catalog.failures()
    assert total == 1
    assert failures[0].relative == "Broken/corrupt.flac" and failures[0].type == "track"
    assert failures[0].reason  # the probe's reason, e.g. "not a readable media file: …"
    assert report.failures[0][0] == str(lib.corrupt)


def test_tags_become_item_fields(lib: Library, catalog: Catalog, tmp_path: Path) -> None:
    scan(lib.settings(tmp_path / "data"), catalog)
    alpha = get(catalog, lib, "Artist A/Album X/01 Alpha.flac")
    assert (alpha.artist, alpha.album, alpha.album_artist) == ("Artist A", "Album X", "Artist A")
    assert alpha.genre == "Rock"
    assert (alpha.track_number, alpha.disc_number) == (1, 1)
    assert alpha.lossless and alpha.codec == "flac" and alpha.container == "flac"
    beta = get(catalog, lib, "Artist A/Album X/02 Beta.mp3")
    assert beta.track_number == 2 and beta.codec == "mp3" and not beta.lossless
    episode = get(catalog, lib, "Show One/ep1.mp3")
    assert episode.album == "Show One"  # no album tag: the podcast's folder names the show
    assert get(catalog, lib, "Artist B/Delta.opus").codec == "opus"


def test_a_book_folder_is_one_item_in_natural_order_with_a_chapter_per_file(lib: Library, catalog: Catalog,
                                                                            tmp_path: Path) -> None:
    scan(lib.settings(tmp_path / "data"), catalog)
    rel = "Author Name/The Great Book"
    book = get(catalog, lib, rel)
    assert [Path(f.path).name for f in book.files] == ["Chapter 1.mp3", "Chapter 2.mp3", "Chapter 10.mp3"]
    assert book.artist == "Author Name"
    ends = []
    total = 0
    for g in lib.items[rel].generated:
        total += g.samples
        ends.append(total * 1000 // 44_100)
    assert [c.start_ms for c in book.chapters] == [0, *ends[:-1]]
    assert [c.end_ms for c in book.chapters] == ends
    assert book.chapters[-1].end_ms == book.duration_ms
    assert [c.index for c in book.chapters] == [0, 1, 2]


def test_an_m4b_is_one_book_with_its_embedded_chapters(lib: Library, catalog: Catalog,
                                                       tmp_path: Path) -> None:
    scan(lib.settings(tmp_path / "data"), catalog)
    book = get(catalog, lib, "Other Author/Chaptered.m4b")
    assert len(book.files) == 1 and book.duration_ms == 3000
    assert [(c.title, c.start_ms, c.end_ms) for c in book.chapters] == [
        ("Intro", 0, 1000), ("Middle", 1000, 2000), ("End", 2000, 3000)]


def test_rescan_probes_nothing_unchanged_and_picks_up_a_changed_file(
        lib: Library, catalog: Catalog, tmp_path: Path, probes: list[Path]) -> None:
    settings = lib.settings(tmp_path / "data")
    scan(settings, catalog)
    files = sum(len(e.generated) for e in lib.items.values())
    assert len(probes) == files + 1
    rel = "Artist B/Gamma.m4a"
    before = get(catalog, lib, rel)  # now cached: the rescan must invalidate it

    probes.clear()
    again = scan(settings, catalog)
    assert probes == []  # the corrupt file is not retried either while it is unchanged
    assert (again.probed, again.unchanged, again.failed) == (0, files, 1)
    assert (again.items_added, again.items_updated, again.items_removed) == (0, 0, 0)
    assert catalog.failures()[1] == 1

    write_audio(lib.music / rel, samples=120_000, rate=48_000, tags={"title": "Gamma Tune v2"})
    probes.clear()
    third = scan(settings, catalog)
    assert probes == [lib.music / rel]
    assert (third.items_updated, third.items_added) == (1, 0)
    after = get(catalog, lib, rel)
    assert after.id == before.id and after.fingerprint != before.fingerprint
    assert after.title == "Gamma Tune v2" and after.sample_count == 120_000


def test_another_process_commit_is_seen_after_the_check_interval_not_on_every_lookup(
        lib: Library, catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second Catalog on the same file stands for the server while `revenge scan` (``catalog``) runs
    in another process: its item cache asks SQLite for changes at most every EXTERNAL_CHANGE_CHECK_S."""
    settings = lib.settings(tmp_path / "data")
    scan(settings, catalog)
    rel = "Artist B/Gamma.m4a"
    monkeypatch.setattr(catalog_module, "EXTERNAL_CHANGE_CHECK_S", 3600.0)
    server = Catalog(tmp_path / "catalog.db")
    try:
        assert get(server, lib, rel).title != "Gamma Tune v2"
        write_audio(lib.music / rel, samples=120_000, rate=48_000, tags={"title": "Gamma Tune v2"})
        scan(settings, catalog)
        assert get(catalog, lib, rel).title == "Gamma Tune v2"  # its own commit: at once
        assert get(server, lib, rel).title != "Gamma Tune v2"  # not checked again yet
        server._next_version_check = 0.0  # the interval has passed
        assert get(server, lib, rel).title == "Gamma Tune v2"
    finally:
        server.close()


def test_a_changed_book_file_is_the_only_one_probed_again(lib: Library, catalog: Catalog, tmp_path: Path,
                                                          probes: list[Path]) -> None:
    settings = lib.settings(tmp_path / "data")
    scan(settings, catalog)
    rel = "Author Name/The Great Book"
    changed = lib.audiobooks / rel / "Chapter 2.mp3"
    write_audio(changed, samples=60_000, rate=44_100, channels=1, tags={"title": "Middle Part"})
    probes.clear()
    report = scan(settings, catalog)
    assert probes == [changed]
    assert report.items_updated == 1
    book = get(catalog, lib, rel)
    assert [c.title for c in book.chapters] == ["Opening", "Middle Part", "Finale"]
    assert book.files[1].sample_count == 60_000
    assert book.chapters[1].end_ms - book.chapters[1].start_ms in (1360, 1361)


def test_vanished_files_are_removed_and_fixed_failures_forgotten(lib: Library, catalog: Catalog,
                                                                 tmp_path: Path) -> None:
    settings = lib.settings(tmp_path / "data")
    scan(settings, catalog)
    gone = "Untagged/raw recording.wav"
    gone_id = expected_id(gone, "track")
    assert catalog.get_item(gone_id) is not None
    (lib.music / gone).unlink()
    assert lib.corrupt is not None
    write_audio(lib.corrupt, samples=10_000)  # repaired in place
    report = scan(settings, catalog)
    assert report.items_removed == 1 and report.items_added == 1 and report.failed == 0
    assert catalog.get_item(gone_id) is None
    assert catalog.failures() == ([], 0)
    assert catalog.get_item(item_id("track", "Broken/corrupt.flac")) is not None


def test_a_cancelled_scan_removes_nothing(lib: Library, catalog: Catalog, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    settings = lib.settings(tmp_path / "data")
    scan(settings, catalog)
    (lib.music / "Untagged/raw recording.wav").unlink()
    write_audio(lib.music / "Zed/New.flac", samples=5_000)  # forces a probe, which cancels the scan
    status = ScanStatus()
    real = scan_module.probe_file

    def cancelling(path: Path, *args: Any) -> Probe:
        status.cancel()
        return real(path, *args)

    monkeypatch.setattr(scan_module, "probe_file", cancelling)
    report = scan_library(settings, catalog, status)
    assert report.cancelled and report.items_removed == 0
    assert status.as_dict()["cancelled"] is True and status.as_dict()["running"] is False
    assert catalog.get_item(expected_id("Untagged/raw recording.wav", "track")) is not None


def test_an_unreadable_root_keeps_its_items_and_a_dropped_root_loses_them(lib: Library, catalog: Catalog,
                                                                          tmp_path: Path) -> None:
    settings = lib.settings(tmp_path / "data")
    scan(settings, catalog)
    tracks = catalog.count_items()["track"]
    unmounted = lib.base / "music-unmounted"
    lib.music.rename(unmounted)
    report = scan(settings, catalog)
    assert report.incomplete_roots == [str(lib.music.resolve())]
    assert report.items_removed == 0 and catalog.count_items()["track"] == tracks
    assert any("library folder" in reason for _, reason in report.failures)
    unmounted.rename(lib.music)

    without_music = make_settings(tmp_path / "data", podcasts=(lib.podcasts,), audiobooks=(lib.audiobooks,))
    report = scan(without_music, catalog)
    assert report.items_removed == tracks and catalog.count_items()["track"] == 0
    assert catalog.failures()[1] == 0


def test_ids_survive_moving_the_whole_library(lib: Library, catalog: Catalog, tmp_path: Path) -> None:
    scan(lib.settings(tmp_path / "data"), catalog)
    before, _ = catalog.list_items(limit=500)
    moved_base = tmp_path / "elsewhere" / "library"
    moved_base.parent.mkdir()
    lib.base.rename(moved_base)
    moved = Library(moved_base, moved_base / "music", moved_base / "podcasts", moved_base / "audiobooks")
    report = scan(moved.settings(tmp_path / "data"), catalog)
    after, _ = catalog.list_items(limit=500)
    assert [i.id for i in after] == [i.id for i in before]
    assert report.items_added == 0 and report.items_removed == 0 and report.items_updated == len(before)
    assert all(f.path.startswith(str(moved_base)) for i in after for f in i.files)


def test_same_relative_path_in_two_music_roots_keeps_the_first(tmp_path: Path, catalog: Catalog) -> None:
    first, second = tmp_path / "a" / "Music", tmp_path / "b" / "Music"
    write_audio(first / "x" / "song.flac", samples=4_410, tags={"title": "first"})
    write_audio(second / "x" / "song.flac", samples=4_410, tags={"title": "second"})
    settings = make_settings(tmp_path / "data", library=(first, second))
    for _ in range(2):  # and stays so on a rescan
        report = scan(settings, catalog)
        item = catalog.get_item(item_id("track", "x/song.flac"))
        assert item is not None and item.title == "first"
        assert report.failed == 1 and "same path" in report.failures[0][1]


def test_status_reports_progress_and_the_report_summarises(lib: Library, catalog: Catalog,
                                                           tmp_path: Path) -> None:
    status = ScanStatus()
    report = scan_library(lib.settings(tmp_path / "data"), catalog, status)
    state = status.as_dict()
    files = sum(len(e.generated) for e in lib.items.values()) + 1
    assert state["running"] is False and state["files_total"] == files and state["files_seen"] == files
    assert state["failed"] == 1 and state["finished_at"] >= state["started_at"]
    text = report.summary()
    assert f"Scanned {files} files" in text and "1 failed" in text and "corrupt.flac" in text


def test_revenge_scan_command_prints_a_summary(lib: Library, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVENGE_")}
    done = subprocess.run(
        [sys.executable, "-m", "revenge", "scan", "--data-dir", str(tmp_path / "data"), str(lib.music)],
        capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "Scanned 6 files" in done.stdout
    assert "6 probed, 0 unchanged, 1 failed" in done.stdout
    assert "Items: 5 added" in done.stdout
    catalog = Catalog(tmp_path / "data" / "catalog.db")
    try:
        assert catalog.count_items()["track"] == 5
    finally:
        catalog.close()


FFMPEG = shutil.which("ffmpeg")


def _ffmpeg(out: Path, seconds: float, *args: str) -> Path:
    """A sine made by Debian's ffmpeg, an encoder independent of the probe's PyAV."""
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([FFMPEG or "ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                    f"sine=frequency=770:duration={seconds}:sample_rate=48000", "-ac", "2", *args, str(out)],
                   check=True, timeout=120)
    return out


def _decoded_seconds(path: Path) -> float:
    """Everything that decodes, skipping what does not (as a player would)."""
    samples = 0
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        ctx = stream.codec_context
        for packet in container.demux(stream):
            try:
                samples += sum(f.samples for f in ctx.decode(packet if packet.size else None))
            except av.FFmpegError:
                continue
        return samples / ctx.sample_rate


@pytest.mark.skipif(FFMPEG is None, reason="Debian's ffmpeg makes the damaged files")
def test_damaged_files_are_failures_with_a_reason_and_intact_ones_items(tmp_path: Path,
                                                                         catalog: Catalog) -> None:
    """A FLAC cut to half its length still declares its whole length in STREAMINFO; an MP3 with bytes
    appended makes FFmpeg drop its Info frame count and estimate the length from the bit rate. Both
    were listed at the wrong length and failed mid-play; the scan now decodes each file's last
    seconds and refuses what does not hold what it declares."""
    music = tmp_path / "music"
    intact = {
        "ok.mp3": _ffmpeg(music / "ok.mp3", 40, "-c:a", "libmp3lame", "-b:a", "128k"),
        "ok.flac": _ffmpeg(music / "ok.flac", 60, "-c:a", "flac"),
        "ok.m4a": _ffmpeg(music / "ok.m4a", 30, "-c:a", "aac"),
        "ok.opus": _ffmpeg(music / "ok.opus", 30, "-c:a", "libopus"),
        "ok.ogg": _ffmpeg(music / "ok.ogg", 30, "-c:a", "libvorbis"),
    }
    half = _ffmpeg(music / "half.flac", 60, "-c:a", "flac")
    data = half.read_bytes()
    half.write_bytes(data[: len(data) // 2])
    appended = _ffmpeg(music / "appended.mp3", 40, "-c:a", "libmp3lame", "-b:a", "128k")
    data = appended.read_bytes()
    garbage = np.random.default_rng(3).integers(0, 256, len(data) * 5 // 16, dtype=np.uint8).tobytes()
    appended.write_bytes(data + garbage)
    # What the files hold, decoded in full (the scan must not need to): far less than they declare.
    assert _decoded_seconds(half) < 31 and _decoded_seconds(appended) < 41

    report = scan(make_settings(tmp_path / "data", library=(music,)), catalog)
    failures = {f.relative: f.reason for f in catalog.failures()[0]}
    assert set(failures) == {"half.flac", "appended.mp3"}, failures
    assert "holds 29." in failures["half.flac"] and "declares 60.0 s" in failures["half.flac"]
    assert "garbage appended" in failures["appended.mp3"]
    for rel in failures:
        assert catalog.get_item(item_id("track", rel)) is None
    assert report.items_added == len(intact)
    for rel, path in intact.items():
        item = catalog.get_item(item_id("track", rel))
        assert item is not None, rel
        assert abs(item.sample_count / item.sample_rate - _decoded_seconds(path)) < 0.05, rel


def _revenge_scan(data: Path, *args: str, **env_extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVENGE_")} | env_extra
    done = subprocess.run([sys.executable, "-m", "revenge", "scan", "--data-dir", str(data), *args],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done


def _counts(data: Path) -> dict[str, int]:
    catalog = Catalog(data / "catalog.db")
    try:
        return catalog.count_items()
    finally:
        catalog.close()


def test_one_media_folder_gives_its_usual_subfolders_their_item_types(tmp_path: Path) -> None:
    media = tmp_path / "Media"
    for rel in ("Music/Artist/one.mp3", "Music/Artist/two.flac", "podcasts/Show/ep1.mp3", "loose.mp3"):
        write_audio(media / rel, samples=4_410)
    for n in (1, 2):
        write_audio(media / "AudioBooks" / "Author" / "Book" / f"{n}.mp3", samples=4_410)
    done = _revenge_scan(tmp_path / "data", str(media))
    assert "Scanned 6 files" in done.stdout  # none of them twice
    assert f"podcasts: {media / 'podcasts'}" in done.stdout
    assert _counts(tmp_path / "data") == {"track": 3, "episode": 1, "audiobook": 1}
    # An explicit podcasts (or audiobooks) setting wins: the folder is plain music, as it was.
    elsewhere = tmp_path / "Shows"
    write_audio(elsewhere / "Other" / "ep.mp3", samples=4_410)
    _revenge_scan(tmp_path / "data2", str(media), REVENGE_PODCASTS=str(elsewhere))
    assert _counts(tmp_path / "data2") == {"track": 6, "episode": 1, "audiobook": 0}

