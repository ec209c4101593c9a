"""MP3s read from their frames (``mp3_by_frames``) give exactly what FFmpeg's demuxer gives: the count,
the fingerprint, the bit rate and the tags, on files from Debian's ffmpeg (libmp3lame) and PyAV; files
it cannot read that way go to the demuxer, with the same result as before."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from mutagen.apev2 import APEv2

from revenge.library.probe import Probe, ProbeError, probe_file
from revenge.library.probe_model import read_head
from revenge.library.probe_mp3 import mp3_by_frames
from tests.mediagen import decode_samples, write_audio

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs Debian's ffmpeg")

TAGS = ["-metadata", "title=Été", "-metadata", "artist=A; B", "-metadata", "album=Disc",
        "-metadata", "track=3/9", "-metadata", "genre=Jazz"]


def _ffmpeg(path: Path, seconds: float, *args: str, rate: int = 44_100) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"sine=frequency=523:duration={seconds}:sample_rate={rate}", *args,
                    "-c:a", "libmp3lame", str(path)], check=True)
    return path


def _by_frames(path: Path) -> Probe | None:
    return mp3_by_frames(path, read_head(path), path.stat())


def _outcome(path: Path, by_frames: bool) -> object:
    try:
        return probe_file(path, by_frames=by_frames)
    except ProbeError as exc:
        return f"ProbeError: {exc}"


def _same_both_ways(path: Path) -> None:
    assert _outcome(path, True) == _outcome(path, False)


@pytest.mark.parametrize("args", [
    ["-ar", "44100", "-ac", "2", "-b:a", "128k"],  # CBR: an Info header
    ["-ar", "22050", "-ac", "1", "-q:a", "4"],  # VBR MPEG-2: a Xing header, 576 samples a frame
    ["-ar", "8000", "-ac", "1", "-b:a", "16k"],  # MPEG-2.5
    ["-ar", "48000", "-ac", "2", "-b:a", "320k"],  # more frames than the fingerprint reads
    ["-ar", "44100", "-ac", "2", "-b:a", "192k", "-write_id3v1", "1"],  # an ID3v1 tag at the end
], ids=["cbr", "vbr-mpeg2", "mpeg2.5", "long", "id3v1"])
def test_read_from_frames_equals_the_demuxer(tmp_path: Path, args: list[str]) -> None:
    seconds = 12.0 if "320k" in args else 2.3
    rate = int(args[1])
    path = _ffmpeg(tmp_path / "a.mp3", seconds, *args, *TAGS, rate=rate)
    fast = _by_frames(path)
    assert fast is not None
    assert fast == probe_file(path, by_frames=False)
    assert fast.file.sample_count == decode_samples(path)[0].shape[1]  # what FFmpeg decodes
    assert fast.tags.title == "Été" and fast.tags.track_number == 3


def test_embedded_picture_and_pyav_written_files(tmp_path: Path) -> None:
    cover = tmp_path / "cover.png"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=red:s=64x64",
                    "-frames:v", "1", str(cover)], check=True)
    source = _ffmpeg(tmp_path / "plain.mp3", 3.0, "-ar", "44100", "-ac", "2")
    path = tmp_path / "pic.mp3"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(source), "-i", str(cover), "-map", "0",
                    "-map", "1", "-c", "copy", "-id3v2_version", "3",
                    "-metadata:s:v", "comment=Cover (front)", *TAGS, str(path)], check=True)
    fast = _by_frames(path)
    assert fast is not None and fast.embedded_art is not None
    assert fast == probe_file(path, by_frames=False)
    written = write_audio(tmp_path / "pyav.mp3", samples=48_001, rate=48_000, channels=1, kind="music",
                          tags={"title": "PyAV"})
    fast = _by_frames(written.path)
    assert fast is not None and fast.file.sample_count == 48_001
    assert fast == probe_file(written.path, by_frames=False)


def test_what_it_cannot_read_goes_to_the_demuxer(tmp_path: Path) -> None:
    no_tag = _ffmpeg(tmp_path / "no-id3.mp3", 2.0, "-id3v2_version", "0", *TAGS)
    no_xing = _ffmpeg(tmp_path / "no-xing.mp3", 2.0, "-write_xing", "0", *TAGS)
    chapters = write_audio(tmp_path / "chapters.mp3", seconds=4.0, rate=44_100,
                           chapters=[(0.0, 2.0, "One"), (2.0, 4.0, "Two")], tags={"title": "Book"}).path
    ape = _ffmpeg(tmp_path / "ape.mp3", 2.0, *TAGS)
    tag = APEv2()
    tag["Title"] = "ape"
    tag.save(ape)
    junk = _ffmpeg(tmp_path / "junk.mp3", 2.0, *TAGS)
    with junk.open("ab") as fh:
        fh.write(b"\x00garbage" * 8)  # under 1/16 of the stream: FFmpeg still trusts the header
    for path in (no_tag, no_xing, chapters, ape, junk):
        assert _by_frames(path) is None, path.name
        _same_both_ways(path)
    assert [c.title for c in probe_file(chapters).chapters] == ["One", "Two"]


def test_a_cut_short_file_is_read_as_before(tmp_path: Path) -> None:
    path = _ffmpeg(tmp_path / "cut.mp3", 6.0, *TAGS)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])  # an interrupted download
    assert _by_frames(path) is None
    _same_both_ways(path)
