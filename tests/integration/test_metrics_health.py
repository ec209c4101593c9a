"""/metrics and /healthz through a real server: counters move, the store's health is reported."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.live import add_user, live_server
from tests.live import test_settings as settings_for
from tests.mediagen import write_audio
from tests.redisfix import RedisServer


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(url + "/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_move_with_requests_and_progress(tmp_path: Path) -> None:
    write_audio(tmp_path / "music" / "a.flac", seconds=60, rate=8000, channels=1, kind="silence")
    key = add_user(tmp_path / "data", "alice")
    headers = {"Authorization": f"Bearer {key}"}
    with live_server(settings_for(tmp_path / "data", library=(tmp_path / "music",))) as live:
        before = scrape(live.url)
        items = httpx.get(live.url + "/api/v1/items", headers=headers, timeout=10).json()["items"]
        item_id = items[0]["id"]
        for i in range(5):
            r = httpx.put(live.url + f"/api/v1/playback/progress/{item_id}", headers=headers, timeout=10,
                          json={"position_seconds": 10 + i, "duration_seconds": 60, "event": "progress",
                                "device_id": "phone", "client_ts": int(time.time() * 1000)})
            assert r.status_code == 200, r.text
        after = scrape(live.url)
        health = httpx.get(live.url + "/healthz", timeout=10).json()
    assert health["store"]["durability"]["level"] == "fsync_always"  # SQLite: synchronous=FULL
    route = "/api/v1/playback/progress/{item_id}"
    assert value(after, "revenge_http_ttfb_seconds_count", route=route) - \
        value(before, "revenge_http_ttfb_seconds_count", route=route) == 5
    assert value(after, "revenge_http_ttfb_seconds_count", route="/api/v1/items") >= 1
    name = "revenge_progress_batch_size_sum"
    batched = value(after, name) - value(before, name)
    assert batched == 5
    assert value(after, "revenge_progress_flush_seconds_count", store="sqlite") >= 1


def test_healthz_reports_store_and_goes_503_when_redis_is_down(tmp_path: Path) -> None:
    (tmp_path / "redis").mkdir()
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    try:
        settings = settings_for(tmp_path / "data", store=redis.url, scan_on_start=False)
        with live_server(settings, wait_scan=False) as live:
            ok = httpx.get(live.url + "/healthz", timeout=10)
            assert ok.status_code == 200
            assert ok.json()["store"]["backend"] == "redis"
            assert ok.json()["store"]["status"] == "ok"
            # The fixture's redis-server fsyncs its append-only file on every write.
            durability = ok.json()["store"]["durability"]
            assert durability["level"] == "fsync_always" and durability["server"].startswith("redis ")
            assert redis.url not in ok.text  # never leak the URL (it may carry a password)
            redis.stop()
            down = httpx.get(live.url + "/healthz", timeout=10)
            assert down.status_code == 503
            assert down.json()["store"]["durability"]["level"] == "fsync_always"  # as last read
            assert down.headers["retry-after"] == "1"
            assert down.json()["store"]["status"] == "down"
            redis.start()
            deadline = time.monotonic() + 20
            while httpx.get(live.url + "/healthz", timeout=10).status_code != 200:
                assert time.monotonic() < deadline, "health did not recover after the store came back"
                time.sleep(0.1)
            errors = scrape(live.url)
            assert value(errors, "revenge_store_errors_total", store="redis") >= 1
    finally:
        redis.stop()
