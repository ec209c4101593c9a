"""probe_file on real files: the exact sample count per container, tags, chapters, clear failures.

Files come from two independent encoders: PyAV (tests/mediagen.py, which knows how many samples it
wrote) and Debian's ffmpeg command line (formats PyAV's wheel cannot write, and MP3 without a
Xing/LAME header). The count must equal what was written, and — except for AAC in MP4, where
FFmpeg's decoder also emits the end padding the container declares away — what FFmpeg decodes.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from revenge.library.probe import ProbeError, probe_file
from tests.mediagen import corrupt_file, decode_samples, write_audio


@pytest.mark.parametrize(("ext", "rate", "channels", "samples"), [
    (".flac", 44_100, 2, 70_001),
    (".flac", 96_000, 1, 100_003),
    (".mp3", 44_100, 2, 66_150),
    (".mp3", 48_000, 1, 48_001),
    (".mp3", 22_050, 1, 30_000),
    (".m4a", 48_000, 2, 96_000),
    (".m4a", 48_000, 1, 100_001),  # 2083.35 ms: declared to the millisecond
    (".m4b", 32_000, 1, 64_000),
    (".opus", 48_000, 2, 72_123),
    (".opus", 48_000, 1, 9_601),
    (".wav", 44_100, 2, 44_101),
    (".wav", 8_000, 1, 12_345),
])
def test_sample_count_is_exactly_what_was_written(tmp_path: Path, ext: str, rate: int, channels: int,
                                                  samples: int) -> None:
    generated = write_audio(tmp_path / f"a{ext}", samples=samples, rate=rate, channels=channels, kind="music")
    probe = probe_file(generated.path)
    media = probe.file
    assert (media.sample_rate, media.channels) == (rate, channels)
    assert media.size == generated.path.stat().st_size and media.bit_rate > 0
    if ext in (".m4a", ".m4b") and samples * 1000 % rate:
        # The mov muxer writes the edit list in 1/1000 s: exact to the millisecond only.
        assert abs(media.sample_count - samples) <= rate // 1000
    else:
        assert media.sample_count == samples
    if ext not in (".m4a", ".m4b"):
        assert decode_samples(generated.path)[0].shape[1] == samples


def test_mp4_at_44100_is_exact_to_the_edit_list_resolution(tmp_path: Path) -> None:
    """The mov muxer writes the edit list in milliseconds: a length that is not a whole number of
    milliseconds is declared to within 1 ms, still far closer than what FFmpeg decodes."""
    generated = write_audio(tmp_path / "a.m4a", samples=624_000, rate=44_100)
    count = probe_file(generated.path).file.sample_count
    assert abs(count - 624_000) < 44_100 // 1000 + 1
    decoded = decode_samples(generated.path)[0].shape[1]
    assert decoded > 624_000 + 100  # the AAC end padding: why the container's count wins


def test_codec_and_container_names(tmp_path: Path) -> None:
    names = {}
    for ext in (".flac", ".mp3", ".m4a", ".opus", ".wav"):
        media = probe_file(write_audio(tmp_path / f"a{ext}", samples=4_800, rate=48_000).path).file
        names[ext] = (media.codec, media.container.split(",")[0])
    assert names == {".flac": ("flac", "flac"), ".mp3": ("mp3", "mp3"), ".m4a": ("aac", "mov"),
                     ".opus": ("opus", "ogg"), ".wav": ("pcm_s16le", "wav")}
    wav = probe_file(tmp_path / "a.wav").file
    assert wav.bit_rate == 48_000 * 2 * 16


FFMPEG = shutil.which("ffmpeg")


@pytest.mark.skipif(FFMPEG is None, reason="Debian's ffmpeg is the independent encoder")
@pytest.mark.parametrize(("name", "args"), [
    ("noxing.mp3", ["-c:a", "libmp3lame", "-write_xing", "0"]),  # no frame count: counted by packets
    ("cbr.mp3", ["-c:a", "libmp3lame", "-b:a", "96k"]),
    ("adts.aac", ["-c:a", "aac"]),
    ("vorbis.ogg", ["-c:a", "libvorbis"]),
    ("opus.webm", ["-c:a", "libopus"]),  # packet durations + skip samples, no declared total
    ("opus.mka", ["-c:a", "libopus", "-frame_duration", "2.5"]),  # frames shorter than 1 ms ticks
    ("alac.m4a", ["-c:a", "alac"]),
    ("pcm.aiff", ["-c:a", "pcm_s16be"]),
    ("pcm.wv", ["-c:a", "wavpack"]),
    ("flac.ogg", ["-c:a", "flac"]),
])
def test_files_from_another_encoder_count_what_ffmpeg_decodes(tmp_path: Path, name: str,
                                                               args: list[str]) -> None:
    source = write_audio(tmp_path / "source.wav", samples=77_777, rate=44_100, kind="music")
    out = tmp_path / name
    subprocess.run([FFMPEG or "ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(source.path), *args,
                    str(out)], check=True, timeout=120)
    media = probe_file(out).file
    decoded, rate = decode_samples(out)
    assert media.sample_rate == rate
    assert media.sample_count == decoded.shape[1]
    if name.split(".")[0] in ("vorbis", "alac", "pcm", "flac"):
        assert media.sample_count == 77_777  # gapless formats: exactly the source


def test_tags(tmp_path: Path) -> None:
    tags = {"title": " Song ", "artist": "Someone", "album": "Record", "album_artist": "Various",
            "track": "03/12", "disc": "2/2", "genre": "Folk"}
    for ext in (".flac", ".mp3", ".m4a", ".opus"):
        probe = probe_file(write_audio(tmp_path / f"t{ext}", samples=4_800, rate=48_000, tags=tags).path)
        t = probe.tags
        assert (t.title, t.artist, t.album, t.album_artist, t.genre) == (
            "Song", "Someone", "Record", "Various", "Folk"), ext
        assert (t.track_number, t.disc_number) == (3, 2), ext


def test_missing_tags_are_none(tmp_path: Path) -> None:
    probe = probe_file(write_audio(tmp_path / "bare.flac", samples=4_800).path)
    assert probe.tags.title is None and probe.tags.track_number is None and probe.chapters == ()


def test_embedded_chapters(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "book.m4b", samples=48_000 * 4, rate=48_000, channels=1,
                       chapters=[(0.0, 1.5, "One"), (1.5, 3.0, "Two"), (3.0, 4.0, "")]).path
    chapters = probe_file(path).chapters
    assert [(c.start_ms, c.end_ms, c.title) for c in chapters] == [
        (0, 1500, "One"), (1500, 3000, "Two"), (3000, 4000, None)]


def _empty(d: Path) -> Path:
    (d / "empty.mp3").write_bytes(b"")
    return d / "empty.mp3"


def _text(d: Path) -> Path:
    (d / "text.ogg").write_text("not audio at all\n" * 100)
    return d / "text.ogg"


@pytest.mark.parametrize("make", [
    lambda d: corrupt_file(d / "noise.flac"),
    lambda d: corrupt_file(d / "noise.mp3", seed=3),
    lambda d: corrupt_file(d / "noise.m4a", seed=5),
    _empty,
    _text,
    lambda d: d / "missing.flac",
])
def test_unusable_files_raise_probe_error_with_a_reason(tmp_path: Path, make: Callable[[Path], Path]) -> None:
    with pytest.raises(ProbeError) as caught:
        probe_file(make(tmp_path))
    assert str(caught.value)


def test_a_cut_short_mp3_counts_the_frames_it_holds(tmp_path: Path) -> None:
    """An interrupted download keeps its LAME header, which declares every frame of the whole file:
    the byte count in that header gives it away, and the frames are counted instead."""
    path = write_audio(tmp_path / "cut.mp3", samples=88_200, kind="noise").path
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    count = probe_file(path).file.sample_count
    assert count == decode_samples(path)[0].shape[1]
    assert 30_000 < count < 60_000
