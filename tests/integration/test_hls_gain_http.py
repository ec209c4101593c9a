"""ReplayGain in the stream over real HTTP: ``?gain=track|album`` renditions decoded by Debian's ffmpeg
against the plain rendition of the same file."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import numpy as np
import pytest

from revenge.library.ids import item_id
from tests.hls_support import ffmpeg_pcm
from tests.live import LiveServer, add_user, live_server
from tests.live import test_settings as make_settings
from tests.mediagen import write_audio

QUIET = "quiet.flac"  # track -6 dB (peak 0.5), album -3 dB
LOUD = "loud.flac"  # +12 dB tagged, no peak: only the clamp keeps it under full scale
PEAKED = "peaked.flac"  # +12 dB tagged with a peak of 0.8: limited to +1.94 dB
UNTAGGED = "plain.flac"


@dataclass
class Env:
    live: LiveServer
    key: str


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    base = tmp_path_factory.mktemp("gain")
    music = base / "music"
    common = {"seconds": 8.0, "rate": 44100, "channels": 2, "kind": "music"}
    write_audio(music / QUIET, **common, tags={  # type: ignore[arg-type]
        "REPLAYGAIN_TRACK_GAIN": "-6.00 dB", "REPLAYGAIN_TRACK_PEAK": "0.500000",
        "REPLAYGAIN_ALBUM_GAIN": "-3.00 dB", "REPLAYGAIN_ALBUM_PEAK": "0.600000"})
    write_audio(music / LOUD, **common, tags={"REPLAYGAIN_TRACK_GAIN": "+12.00 dB"})  # type: ignore[arg-type]
    write_audio(music / PEAKED, **common, tags={  # type: ignore[arg-type]
        "REPLAYGAIN_TRACK_GAIN": "+12.00 dB", "REPLAYGAIN_TRACK_PEAK": "0.800000"})
    write_audio(music / UNTAGGED, **common)  # type: ignore[arg-type]
    data = base / "data"
    key = add_user(data, "listener")
    with live_server(make_settings(data, library=(music,))) as live:
        yield Env(live, key)


def decode(env: Env, rel: str, profile: str, gain: str | None) -> tuple[np.ndarray, str]:
    """The media playlist fetched as a player would (token from the API-key fetch), then decoded."""
    base = f"{env.live.url}/api/v1/stream/{item_id('track', rel)}"
    params = {"profiles": profile, **({"gain": gain} if gain else {})}
    top = httpx.get(f"{base}/playlist.m3u8", params=params, headers={"Authorization": f"Bearer {env.key}"},
                    timeout=120)
    assert top.status_code == 200, top.text
    variant = next(line for line in top.text.splitlines() if line.startswith(f"{profile}/"))
    media = httpx.get(f"{base}/{variant}", timeout=120)
    assert media.status_code == 200, media.text
    return ffmpeg_pcm(f"{base}/{variant}", channels=2), media.text


def rms_db(pcm: np.ndarray) -> float:
    return 20 * math.log10(float(np.sqrt(np.mean(pcm**2))))


@pytest.mark.parametrize(("rel", "gain", "expected"), [
    (QUIET, "track", -6.0), (QUIET, "album", -3.0), (PEAKED, "track", -20 * math.log10(0.8)),
    (UNTAGGED, "track", 0.0),
])
def test_gain_renditions_change_the_level_by_the_tagged_gain(env: Env, rel: str, gain: str,
                                                              expected: float) -> None:
    plain, plain_text = decode(env, rel, "aac-256", None)
    gained, text = decode(env, rel, "aac-256", gain)
    # Every segment URI carries the mode on; the plain playlist's none.
    segments = re.findall(r"^segment\d+\.m4s\?.*$", text, re.M)
    assert segments and all(f"&gain={gain}" in uri for uri in segments)
    assert "gain=" not in plain_text
    assert plain.shape == gained.shape
    ratio = rms_db(gained) - rms_db(plain)
    print(f"\n{rel} gain={gain}: {ratio:+.2f} dB (tagged {expected:+.2f})")
    assert abs(ratio - expected) < 0.5


def test_a_loud_gain_without_a_peak_never_goes_past_full_scale(env: Env) -> None:
    plain, _ = decode(env, LOUD, "flac", None)
    gained, _ = decode(env, LOUD, "flac", "track")
    assert float(np.max(np.abs(plain))) < 0.6
    # +12 dB on a 0.5 peak would reach 2.0: clamped at full scale, and louder than the plain one.
    assert float(np.max(np.abs(gained))) <= 1.0
    assert rms_db(gained) - rms_db(plain) > 6.0


def test_gain_segments_are_cached_apart_and_identical_on_every_request(env: Env) -> None:
    base = f"{env.live.url}/api/v1/stream/{item_id('track', QUIET)}/aac-128"
    auth = {"Authorization": f"Bearer {env.key}"}
    with httpx.Client(headers=auth, timeout=120) as client:
        plain = [client.get(f"{base}/segment{i}.m4s").content for i in (1, 0)]
        track = [client.get(f"{base}/segment{i}.m4s", params={"gain": "track"}).content for i in (1, 0)]
        again = [client.get(f"{base}/segment{i}.m4s", params={"gain": "track"}).content for i in (0, 1)]
        album = client.get(f"{base}/segment0.m4s", params={"gain": "album"}).content
        bad = client.get(f"{base}/segment0.m4s", params={"gain": "loud"})
    assert track[::-1] == again and plain[1] != track[1] != album != plain[1]
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "gain"
