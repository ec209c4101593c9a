"""`revenge bench` end to end against a real server: a few players for a few seconds play through
sessions, playlists and segments with heartbeats and seeks, and the report says what happened."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from revenge.loadtest.listener import PlayerProfile
from revenge.loadtest.run import LoadConfig, run
from tests.live import LiveServer, add_user, live_server, test_settings
from tests.mediagen import write_audio

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Box:
    live: LiveServer
    key: str


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Box]:
    base = tmp_path_factory.mktemp("bench")
    music = base / "music"
    for i in range(3):
        write_audio(music / f"Track {i}.flac", seconds=20, kind="music", freq=220 + 110 * i,
                    tags={"title": f"Track {i}", "artist": "Bench"})
    data = base / "data"
    key = add_user(data, "bench")
    settings = test_settings(data, library=(music,), sessions_per_user=3, aac_coder="fast",
                             hls_ladder=("aac-128",))
    with live_server(settings) as live:
        yield Box(live, key)


def test_cli_run_of_distinct_players_with_heartbeats_and_seeks(box: Box, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVENGE_")}
    env["REVENGE_API_KEY"] = box.key  # the key stays out of the command line
    result = subprocess.run(
        [sys.executable, "-m", "revenge", "bench", "--url", box.live.url, "-n", "3", "--duration", "10",
         "--speed", "4", "--ramp", "0.5", "--heartbeat", "1", "--seeks-per-minute", "40", "--seed", "7",
         "--source-codec", "flac", "--json", str(out)],
        capture_output=True, text=True, timeout=120, env=env, cwd=ROOT,
    )
    assert result.returncode in (0, 1), result.stderr  # 1: stalls on a busy machine, reported not hidden
    report = orjson.loads(out.read_bytes())
    assert "revenge bench: 3 players" in result.stdout and "verdict:" in result.stdout
    assert report["errors"]["count"] == 0, report["errors"]
    assert report["config"]["distinct_first_items"] == 3
    assert report["players"]["sessions"] >= 3
    assert set(report["players"]["profiles"]) == {"aac-128"}
    assert report["segments"]["cold_ms"]["count"] > 0
    assert report["startup_ms"]["count"] >= 3  # a player that finishes its item starts the next
    assert report["heartbeat_ms"]["count"] >= 3  # every second, per player
    assert report["players"]["seeks"] >= 1, result.stdout  # playing again after one may not fit
    assert report["seek_ms"]["count"] <= report["players"]["seeks"]
    # The server runs in this test process (found by its listening port), not in the CLI's.
    assert report["server"]["pid"] == os.getpid() and not report["server"]["same_process"]
    assert report["server"]["rss_mib_peak"] > 0
    assert report["server_counters"]["segments_miss"] >= 1 and report["server_counters"]["encodes"] >= 1
    assert report["verdict"]["ok"] == (report["verdict"]["stalls"] == 0)


def test_warm_shared_players_only_touch_the_cache(box: Box) -> None:
    config = LoadConfig(url=box.live.url + "/", keys=(box.key,), listeners=3, duration=4.0, ramp=0.5,
                        player=PlayerProfile(speed=4.0, seeks_per_minute=0.0), shared=1, warm=True,
                        show_progress=False, metrics_urls=(box.live.url + "/",))
    report = run(config)
    assert report["errors"]["count"] == 0, report["errors"]
    assert report["config"]["warm_segments"] >= 4  # 20 s in 6 s segments
    assert report["segments"]["cold_ms"]["count"] == 0
    assert report["segments"]["cached_ms"]["count"] >= 3
    counters = report["server_counters"]
    assert counters.get("segments_miss", 0.0) == 0.0 and counters.get("encodes", 0.0) == 0.0  # none made
    # Per server behind the URL (here the same one), of the measured pass only: the warm-up's misses
    # are not in it (what benchmarks/bench_scaleout.py's own-cache share is made of).
    (own,) = report["instance_counters"].values()
    assert own.get("segments_miss", 0.0) == 0.0 and own["segments_hit"] >= 3, own


def test_the_session_cap_is_reported_with_a_hint(box: Box, tmp_path: Path) -> None:
    config = LoadConfig(url=box.live.url + "/", keys=(box.key,), listeners=4, duration=2.0, ramp=0.0,
                        player=PlayerProfile(speed=4.0, seeks_per_minute=0.0), shared=1,
                        show_progress=False)
    report = run(config)
    assert report["errors"]["by_kind"].get("session 429", 0) >= 1  # the user may hold 3 sessions
    assert not report["verdict"]["ok"]
