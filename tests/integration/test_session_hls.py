"""Playback sessions and the HLS engine together, through a real server: segment requests keep a
session alive without heartbeats, an idle session ends, and an ended session's queued prefetches go."""

from __future__ import annotations

import itertools
import re
import time
from pathlib import Path

import httpx

from tests.integration.test_metrics_health import scrape, value
from tests.live import add_user, live_server
from tests.live import test_settings as settings_for
from tests.mediagen import write_audio

AAC_ONLY = {"codecs": ["aac"], "containers": ["mp4"], "hls": True}


def start_hls_session(live_url: str, key: str) -> tuple[str, str]:
    """(session id, media playlist URL) of an HLS session on the library's only item."""
    auth = {"Authorization": f"Bearer {key}"}
    item_id = httpx.get(live_url + "/api/v1/items", headers=auth, timeout=10).json()["items"][0]["id"]
    response = httpx.post(live_url + "/api/v1/playback/sessions", headers=auth, timeout=30,
                          json={"item_id": item_id, "device_id": "phone", "capabilities": AAC_ONLY})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["decision"] == "hls"
    multivariant = httpx.get(live_url + body["url"], timeout=60).text
    media = next(line for line in multivariant.splitlines() if line and not line.startswith("#"))
    return body["session_id"], httpx.URL(live_url + body["url"]).join(media).__str__()


def segment_urls(media_url: str) -> list[str]:
    text = httpx.get(media_url, timeout=30).text
    return [str(httpx.URL(media_url).join(line)) for line in text.splitlines()
            if re.match(r"^segment\d+\.m4s", line)]


def test_segment_requests_keep_a_session_alive_and_idle_ends_it(tmp_path: Path) -> None:
    write_audio(tmp_path / "music" / "a.flac", seconds=40, rate=44100, channels=1, kind="music")
    key = add_user(tmp_path / "data", "alice")
    auth = {"Authorization": f"Bearer {key}"}
    idle = 3.0  # far above a gap between two segment requests: a cold encode on a busy machine, and 0.2 s
    settings = settings_for(tmp_path / "data", library=(tmp_path / "music",), session_idle_seconds=idle,
                            aac_coder="fast")
    with live_server(settings) as live:
        session_id, media_url = start_hls_session(live.url, key)
        segments = segment_urls(media_url)
        session_url = live.url + f"/api/v1/playback/sessions/{session_id}"
        # Segment requests (no heartbeat) for well over the idle timeout, the segments over and over
        # (a cached one counts as activity too): the session stays.
        until = time.monotonic() + 1.7 * idle
        for n in itertools.count():
            assert httpx.get(segments[n % len(segments)], timeout=60).status_code == 200
            if time.monotonic() > until:
                break
            time.sleep(0.2)  # the player's pace, not a wait for a state
        assert httpx.get(session_url, headers=auth, timeout=10).status_code == 200
        # Then nothing: it ends.
        deadline = time.monotonic() + 15.0
        while httpx.get(session_url, headers=auth, timeout=10).status_code != 404:
            assert time.monotonic() < deadline, "an idle session did not end"
            time.sleep(0.25)


def test_stopping_a_session_drops_its_queued_prefetches(tmp_path: Path) -> None:
    write_audio(tmp_path / "music" / "a.flac", seconds=120, rate=44100, channels=2, kind="music")
    key = add_user(tmp_path / "data", "alice")
    auth = {"Authorization": f"Bearer {key}"}
    settings = settings_for(tmp_path / "data", library=(tmp_path / "music",), encode_workers=1,
                            prefetch_segments=12, encode_queue_max=16)
    with live_server(settings) as live:
        session_id, media_url = start_hls_session(live.url, key)
        segments = segment_urls(media_url)
        # The multivariant request measured a few segments; a later one starts prefetch of 12 more.
        assert httpx.get(segments[5], timeout=60).status_code == 200
        before = value(scrape(live.url), "revenge_encodes_dropped_total", kind="prefetch")
        stopped = httpx.delete(live.url + f"/api/v1/playback/sessions/{session_id}", headers=auth, timeout=10)
        assert stopped.status_code in (200, 204)
        after = value(scrape(live.url), "revenge_encodes_dropped_total", kind="prefetch")
    # One worker encodes ~150 ms per segment: most of the 12 were still queued when the session ended.
    assert after - before >= 1
