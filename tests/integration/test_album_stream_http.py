"""Gapless albums over real HTTP: an album's tracks as one HLS timeline decoded by Debian's ffmpeg,
the join of a tone split across two tracks (no click, no dip), track boundaries, mixed formats
resampled to one rendition, and album-timeline progress landing on the track."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from revenge.hls.plan import converted_count
from tests.hls_support import decode_file, ffmpeg_pcm
from tests.live import LiveServer, add_user, live_server
from tests.live import test_settings as make_settings
from tests.mediagen import make_signal, write_audio

RATE = 44100
SPLIT = round(4.3 * RATE)  # mid-tone, mid-segment: the join is no segment boundary
TOTAL = 10 * RATE
FREQ = 1000.0
TRACK_GAINS = (-6.0, -1.0)  # the "Gains" album's two tracks; its album gain is ALBUM_GAIN
ALBUM_GAIN = -3.5
MIXED = [("01.flac", 3.0, 44100, 2), ("02.flac", 2.0, 48000, 1), ("03.m4a", 1.5, 22050, 2)]


@dataclass
class Env:
    live: LiveServer
    key: str
    albums: dict[str, dict]  # by name
    music: Path

    def url(self, path: str) -> str:
        return f"{self.live.url}{path}"


def tags(album: str, number: int, title: str) -> dict[str, str]:
    return {"album": album, "album_artist": "Tone", "artist": "Tone", "title": title, "track": str(number)}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    base = tmp_path_factory.mktemp("album")
    music = base / "music"
    # One continuous 1 kHz sine written as two tracks (the second continues the first's phase).
    write_audio(music / "Sine" / "01.flac", samples=SPLIT, rate=RATE, channels=1, kind="sine", freq=FREQ,
                tags=tags("Sine", 1, "First half"))
    write_audio(music / "Sine" / "02.flac", samples=TOTAL - SPLIT, rate=RATE, channels=1, kind="sine",
                freq=FREQ, start=SPLIT, tags=tags("Sine", 2, "Second half"))
    # The same tone as two tracks of different track gains (the join mid-segment, as above).
    for number, (samples, gain) in enumerate(zip((SPLIT, TOTAL - SPLIT), TRACK_GAINS, strict=True), 1):
        write_audio(music / "Gains" / f"0{number}.flac", samples=samples, rate=RATE, channels=1, kind="sine",
                    freq=FREQ, tags={**tags("Gains", number, f"G{number}"),
                                     "REPLAYGAIN_TRACK_GAIN": f"{gain:+.2f} dB",
                                     "REPLAYGAIN_ALBUM_GAIN": f"{ALBUM_GAIN:+.2f} dB"})
    for number, (name, seconds, rate, channels) in reversed(list(enumerate(MIXED, 1))):
        write_audio(music / "Mixed" / name, samples=round(seconds * rate), rate=rate, channels=channels,
                    kind="music", tags=tags("Mixed", number, f"Part {number}"))
    data = base / "data"
    key = add_user(data, "listener")
    with live_server(make_settings(data, library=(music,))) as live:
        listed = httpx.get(f"{live.url}/api/v1/albums", headers={"Authorization": f"Bearer {key}"})
        assert listed.status_code == 200, listed.text
        yield Env(live, key, {a["name"]: a for a in listed.json()["albums"]}, music)


@pytest.fixture(scope="module")
def client(env: Env) -> Iterator[httpx.Client]:
    auth = {"Authorization": f"Bearer {env.key}"}
    with httpx.Client(base_url=env.live.url, headers=auth, timeout=120) as c:
        yield c


def album_pcm(env: Env, client: httpx.Client, name: str, profile: str, channels: int,
              gain: str | None = None) -> np.ndarray:
    base = f"/api/v1/albums/{env.albums[name]['id']}"
    params = {"profiles": profile, **({"gain": gain} if gain else {})}
    top = client.get(f"{base}/playlist.m3u8", params=params)
    assert top.status_code == 200, top.text
    variant = next(line for line in top.text.splitlines() if line.startswith(f"{profile}/"))
    # The player follows the variant with no header: the token in the URI opens it.
    return ffmpeg_pcm(env.url(f"{base}/{variant}"), channels=channels)


@pytest.mark.parametrize("profile", ["aac-128", "opus-128", "flac"])
def test_a_tone_split_across_two_tracks_plays_with_no_click_and_no_dip_at_the_join(
        env: Env, client: httpx.Client, profile: str) -> None:
    decoded = album_pcm(env, client, "Sine", profile, channels=1)[0]
    rate = 48000 if profile.startswith("opus") else RATE
    total, split = converted_count(TOTAL, RATE, rate), converted_count(SPLIT, RATE, rate)
    assert 0 <= decoded.shape[0] - total < 1024, decoded.shape
    source = make_signal(total, rate, 1, "sine", FREQ)[0].astype(np.float64)
    diff = np.abs(decoded[:total] - source)
    rms = float(np.sqrt(np.mean(source**2)))

    def db(x: float) -> float:
        return 20 * np.log10(max(x, 1e-12) / rms)

    width = 1024
    near = float(diff[split - width : split + width].max())
    blocks = [float(diff[i : i + 2 * width].max()) for i in range(8 * width, total - 8 * width, 2 * width)
              if abs(i - split) > 8 * width]
    away = float(np.percentile(blocks, 95))
    # No dip: the level over the join (in 5 ms windows) stays the tone's.
    window = rate // 200
    levels = [float(np.sqrt(np.mean(decoded[i : i + window] ** 2))) / rms
              for i in range(split - 4 * window, split + 4 * window, window)]
    print(f"\n{profile}: join peak diff {db(near):.1f} dB, away p95 {db(away):.1f} dB re RMS; "
          f"levels at the join {min(levels):.3f}..{max(levels):.3f}")
    if profile == "flac":  # lossless: both files' samples come back exactly, one after the other
        halves = [decode_file(env.music / "Sine" / name)[0][0] for name in ("01.flac", "02.flac")]
        assert np.array_equal(decoded, np.concatenate(halves))
    else:
        assert db(near) <= db(away) + 1.0
    assert all(abs(level - 1.0) < 0.05 for level in levels)


@pytest.mark.parametrize("profile", ["flac", "aac-128"])
def test_gain_track_gives_each_track_its_own_gain_and_gain_album_the_albums(
        env: Env, client: httpx.Client, profile: str) -> None:
    plain = album_pcm(env, client, "Gains", profile, channels=1)[0]
    margin = RATE // 10  # away from the join and the ends: the level of each part alone

    def level_db(decoded: np.ndarray, lo: int, hi: int) -> float:
        ratio = np.sqrt(np.mean(decoded[lo:hi] ** 2)) / np.sqrt(np.mean(plain[lo:hi] ** 2))
        return float(20 * np.log10(ratio))

    parts = [(margin, SPLIT - margin), (SPLIT + margin, TOTAL - margin)]
    for mode, expected in [("track", TRACK_GAINS), ("album", (ALBUM_GAIN, ALBUM_GAIN))]:
        decoded = album_pcm(env, client, "Gains", profile, channels=1, gain=mode)[0]
        measured = [level_db(decoded, lo, hi) for lo, hi in parts]
        print(f"\n{profile} gain={mode}: {measured[0]:.2f} dB, {measured[1]:.2f} dB")
        assert all(abs(m - e) < 0.5 for m, e in zip(measured, expected, strict=True)), (mode, measured)
        # The join is still seamless: the level just either side of it is each track's.
        around = [level_db(decoded, SPLIT - 441, SPLIT), level_db(decoded, SPLIT, SPLIT + 441)]
        assert all(abs(m - e) < 0.5 for m, e in zip(around, expected, strict=True)), (mode, around)


def test_mixed_rates_and_channels_are_resampled_to_one_rendition(env: Env, client: httpx.Client) -> None:
    decoded = album_pcm(env, client, "Mixed", "aac-128", channels=2)
    expected = sum(converted_count(round(s * r), r, 44100) for _, s, r, _ in MIXED)
    assert 0 <= decoded.shape[1] - expected < 1024


def test_the_timeline_lists_the_tracks_in_order_and_progress_lands_on_the_track(
        env: Env, client: httpx.Client) -> None:
    album_id = env.albums["Mixed"]["id"]
    timeline = client.get(f"/api/v1/albums/{album_id}/timeline").json()
    tracks = timeline["tracks"]
    assert [t["title"] for t in tracks] == ["Part 1", "Part 2", "Part 3"]
    assert [(t["start_seconds"], t["end_seconds"]) for t in tracks] == [(0.0, 3.0), (3.0, 5.0), (5.0, 6.5)]
    assert timeline["duration_seconds"] == 6.5
    put = client.put(f"/api/v1/albums/{album_id}/progress",
                     json={"position_seconds": 4.25, "device_id": "phone", "event": "progress"})
    assert put.status_code == 200, put.text
    body = put.json()
    assert body["item_id"] == tracks[1]["item_id"] and body["offset_seconds"] == 1.25
    stored = client.get(f"/api/v1/playback/progress/{tracks[1]['item_id']}").json()
    assert stored["position_seconds"] == 1.25
    # The media playlist carries each track as an EXT-X-DATERANGE (the players' chapters).
    media = client.get(f"/api/v1/albums/{album_id}/aac-128/index.m3u8")
    ranges = [line for line in media.text.splitlines() if line.startswith("#EXT-X-DATERANGE:")]
    assert [r.split("X-ITEM-ID=")[1].split(",")[0] for r in ranges] == [f'"{t["item_id"]}"' for t in tracks]
    assert 'START-DATE="1970-01-01T00:00:03.000Z",DURATION=2.000' in ranges[1]
    assert all('CLASS="com.revenge.track"' in r for r in ranges)
    bad = client.put(f"/api/v1/albums/{album_id}/progress", json={"position_seconds": -1, "device_id": "p"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "position_seconds"


def test_album_streams_need_a_token_for_that_album(env: Env, client: httpx.Client) -> None:
    sine, mixed = env.albums["Sine"]["id"], env.albums["Mixed"]["id"]
    assert httpx.get(env.url(f"/api/v1/albums/{sine}/playlist.m3u8")).status_code == 401
    top = client.get(f"/api/v1/albums/{sine}/playlist.m3u8")
    token = top.text.split("?t=")[1].split("&")[0].split("\n")[0]
    own = httpx.get(env.url(f"/api/v1/albums/{sine}/aac-128/index.m3u8"), params={"t": token})
    assert own.status_code == 200
    other = httpx.get(env.url(f"/api/v1/albums/{mixed}/aac-128/index.m3u8"), params={"t": token})
    assert other.status_code == 403
    assert client.get("/api/v1/albums/aaaaaaaaaaaaaaaa/playlist.m3u8").status_code == 404
    assert client.get("/api/v1/albums/nope/playlist.m3u8").status_code == 400
