"""Transcoded streams are gapless: decoded by Debian's ffmpeg (which honours the MP3 LAME tag and Opus'
pre-skip and end granule) they give back exactly the source's samples, from the start and from a
``timeOffset``; fetched by a real client (py-sonic) and by ffmpeg itself over HTTP."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import httpx
import libsonic
import pytest

from tests.live import add_user
from tests.subsonic.conftest import Rest
from tests.subsonic.schemas import validate

URL = "http://127.0.0.1"


@pytest.fixture(scope="module")
def rest(rest: Rest) -> Rest:
    """The live server as a listener of its own: these streams are plays, and the other modules'
    tests count ann's plays."""
    return replace(rest, key=add_user(rest.live.settings.data_dir, "streamer"))


def samples_of(source: Path | str, rate: int | None = None) -> int:
    """Samples per channel ffmpeg decodes from ``source`` (a file or a URL), at its own rate or ``rate``."""
    resample = ["-ar", str(rate)] if rate else []
    pcm = subprocess.run(["ffmpeg", "-v", "error", "-i", str(source), "-f", "s16le", "-ac", "1", *resample,
                          "pipe:1"], capture_output=True, check=True).stdout
    return len(pcm) // 2


def song_id(rest: Rest, title: str) -> str:
    found = validate("search3", rest.get("search3", query=title).json())["song"]
    return str(next(s["id"] for s in found if s["title"] == title))


# Dawn: FLAC, 2.0 s at 44.1 kHz; Quiet: AAC in MP4, 1.0 s at 44.1 kHz (its priming trimmed by the
# edit list). MP3 keeps 44.1 kHz; Opus is 48 kHz, so the count is the source's converted to it.
@pytest.mark.parametrize("title, samples, offset", [("Dawn", 88_200, 0), ("Dawn", 88_200, 1),
                                                    ("Quiet", 44_100, 0)])
@pytest.mark.parametrize("fmt, rate", [("mp3", 44_100), ("opus", 48_000)])
def test_a_transcode_decodes_to_exactly_the_source_samples(rest: Rest, tmp_path: Path, title: str,
                                                           samples: int, fmt: str, rate: int,
                                                           offset: int) -> None:
    conn = libsonic.Connection(URL, "streamer", rest.key, port=rest.port, serverPath="/rest", legacyAuth=True)
    body = conn.stream(song_id(rest, title), tformat=fmt, maxBitRate=128, timeOffset=offset).read()
    path = tmp_path / f"streamed.{fmt}"
    path.write_bytes(body)
    expected = (samples - offset * 44_100) * rate // 44_100
    assert samples_of(path) == expected


def test_ffmpeg_over_http_trims_an_mp3_stream_exactly(rest: Rest) -> None:
    """A player reading the stream as it comes (mpv is FFmpeg): the exact Content-Length lets FFmpeg
    trust the Info frame's counts over a stream it cannot seek, so it trims the end too."""
    url = (f"{rest.live.url}/rest/stream?v=1.16.1&c=t&apiKey={rest.key}&id={song_id(rest, 'Dawn')}"
           "&format=mp3&timeOffset=1")
    assert samples_of(url) == 44_100


def ogg_pages(data: bytes) -> list[tuple[int, bytes]]:
    """(granule position, payload) of each Ogg page (RFC 3533)."""
    pages, at = [], 0
    while at < len(data):
        assert data[at : at + 4] == b"OggS"
        granule = int.from_bytes(data[at + 6 : at + 14], "little", signed=True)
        count = data[at + 26]
        size = sum(data[at + 27 : at + 27 + count])
        start = at + 27 + count
        pages.append((granule, data[start : start + size]))
        at = start + size
    return pages


@pytest.mark.parametrize("offset, samples", [(0, 96_000), (1, 48_000)])
def test_an_opus_stream_announces_its_pre_skip_and_ends_on_the_exact_granule(rest: Rest, offset: int,
                                                                           samples: int) -> None:
    body = rest.get("stream", id=song_id(rest, "Dawn"), format="opus", timeOffset=offset).content
    pages = ogg_pages(body)
    head = pages[0][1]
    assert head[:8] == b"OpusHead"
    pre_skip = int.from_bytes(head[10:12], "little")
    assert pre_skip == 312  # libopus' look-ahead at 48 kHz: the priming the encoder's first packet holds
    # The last granule position is the end of the audio, pre-skip included (RFC 7845 §4): the decoder
    # drops what the last packet holds past it.
    assert pages[-1][0] == pre_skip + samples


# (Long Talk as MP3 is the file itself, which the maximum bit rate already fits.)
@pytest.mark.parametrize("title, seconds, fmt", [
    *[(t, s, f) for t, s in (("Dawn", 2.0), ("Quiet", 1.0)) for f in ("mp3", "opus", "aac")],
    ("Long Talk", 300.0, "opus"), ("Long Talk", 300.0, "aac")])
def test_an_estimated_content_length_is_what_is_sent(rest: Rest, tmp_path: Path, fmt: str, title: str,
                                                     seconds: float) -> None:
    if title == "Long Talk":  # the episode (8 kHz mono MP3): its native id, as Subsonic takes it
        native = {"Authorization": f"Bearer {rest.key}"}
        (ident,) = [i["id"] for i in httpx.get(f"{rest.live.url}/api/v1/items", params={"type": "episode"},
                                               headers=native).json()["items"]]
    else:
        ident = song_id(rest, title)
    for offset in (0, 1) if seconds > 1 else (0,):
        response = rest.get("stream", id=ident, format=fmt, maxBitRate=128,
                            estimateContentLength="true", timeOffset=offset)
        assert response.status_code == 200
        assert int(response.headers["content-length"]) == len(response.content)
        path = tmp_path / f"streamed.{fmt}"
        path.write_bytes(response.content)
        assert abs(samples_of(path, 44_100) / 44_100 - (seconds - offset)) <= 0.1
