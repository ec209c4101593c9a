"""Scale-out with real processes: a redis-server, two ``revenge serve`` processes on the same library
sharing it (``REVENGE_STORE=redis://…``), and Debian's nginx in front with ``deploy/nginx.conf.template``
rendered for their loopback ports."""

from __future__ import annotations

import itertools
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from revenge.security import secrets as stream_secrets
from tests.hls_support import ffmpeg_decode
from tests.integration.test_shared_instances import _signed_with, cli
from tests.mediagen import write_audio
from tests.redisfix import RedisServer, running_redis
from tests.scaleout import Instance, Nginx, render_nginx
from tests.waits import wait_until

AAC_HLS = {"codecs": ["aac"], "containers": ["mp4"], "hls": True}
SONG_SECONDS = 60
RATE = 44_100
AAC_FRAME = 1024
_names = itertools.count()


@dataclass
class Cluster:
    nginx: Nginx
    instances: list[Instance]
    redis: RedisServer
    admin: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin}"}

    def item(self, title: str) -> str:
        items = httpx.get(self.nginx.url + "/api/v1/items", headers=self.auth, timeout=10).json()["items"]
        return next(i["id"] for i in items if i["title"] == title)

    def session(self, item: str, device: str, auth: dict[str, str] | None = None,
                via: str | None = None) -> str:
        """A session's URL, started through nginx (or ``via`` an instance's URL); each test its own user:
        sessions_per_user holds across the module's tests too."""
        body = {"item_id": item, "device_id": device, "capabilities": AAC_HLS}
        r = httpx.post((via or self.nginx.url) + "/api/v1/playback/sessions", headers=auth or self.user(),
                       json=body, timeout=10)
        assert r.status_code == 201, r.text
        return str(r.json()["url"])

    def user(self) -> dict[str, str]:
        made = httpx.post(self.nginx.url + "/api/v1/users", headers=self.auth,
                          json={"name": f"u{next(_names)}"}, timeout=10)
        assert made.status_code == 201, made.text
        return {"Authorization": f"Bearer {made.json()['api_key']}"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One cluster for the module (processes take seconds to start); a test that kills a part of it
    starts it again."""
    tmp_path = tmp_path_factory.mktemp("scaleout")
    with running_redis(tmp_path / "redis") as redis_server:
        yield from _cluster(tmp_path, redis_server)


def _cluster(tmp_path: Path, redis_server: RedisServer) -> Iterator[Cluster]:
    music = tmp_path / "music"
    write_audio(music / "song.flac", seconds=SONG_SECONDS, rate=RATE, channels=2, kind="music",
                tags={"title": "Song"})
    write_audio(music / "other.flac", seconds=8, rate=RATE, channels=2, kind="noise", tags={"title": "Other"})
    admin = cli("user", "add", "boss", data=tmp_path / "cli", store=redis_server.url).strip().splitlines()[-1]
    instances = [Instance(name, tmp_path / name, [music], redis_server.url) for name in ("a", "b")]
    nginx = Nginx(tmp_path / "nginx", [i.address for i in instances])
    try:
        for instance in instances:
            instance.start()
        nginx.start()
        yield Cluster(nginx, instances, redis_server, admin)
    finally:
        nginx.stop()
        for instance in instances:
            instance.stop()


def test_the_template_renders_to_a_config_nginx_accepts(tmp_path: Path) -> None:
    rendered = render_nginx("127.0.0.1:1", ["127.0.0.1:2", "127.0.0.1:3"])
    text = "\n".join(line for line in rendered.splitlines() if not line.lstrip().startswith("#"))
    assert "${" not in text and text.count("server 127.0.0.1:2 ") == 2  # both upstreams
    assert "hash $item consistent;" in text
    assert "syntax is ok" in Nginx(tmp_path, ["127.0.0.1:2", "127.0.0.1:3"]).check()


def segment_requests(instance: Instance) -> float:
    return sum(instance.metric("revenge_segment_requests_total", cache=c) for c in ("hit", "miss", "wait"))


def test_an_item_is_served_by_one_instance_and_survives_its_kill_9_mid_play(cluster: Cluster) -> None:
    """ffmpeg plays a session's playlist through nginx; the instance serving the item is killed -9
    after its first segments: nginx retries on the other one, whose segments are byte-identical, and
    the decoded audio has the source's length exactly."""
    song = cluster.item("Song")
    url = cluster.nginx.url + cluster.session(song, "ffmpeg")
    player = subprocess.Popen(["ffmpeg", "-nostdin", "-v", "error", "-i", url, "-f", "s16le", "-"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_until(lambda: max(segment_requests(i) for i in cluster.instances) >= 2 or player.poll() is not None,
               "the first segments")
    counts = [segment_requests(i) for i in cluster.instances]
    owner = cluster.instances[counts.index(max(counts))]
    assert min(counts) == 0  # consistent hashing: one instance serves the whole item
    owner.kill()
    try:
        out, err = player.communicate(timeout=300)
    finally:
        owner.start()
    assert player.returncode == 0, err.decode(errors="replace")
    # s16le stereo: 4 bytes a sample; never short, at most the encoder's padding of the last frame more.
    assert 0 <= len(out) // 4 - SONG_SECONDS * RATE < AAC_FRAME
    survivor = next(i for i in cluster.instances if i is not owner)
    assert segment_requests(survivor) > 0  # the rest of the item came from the other instance


def test_users_progress_and_caps_are_shared_through_nginx_and_directly(cluster: Cluster) -> None:
    a, b = cluster.instances
    made = httpx.post(a.url + "/api/v1/users", headers=cluster.auth, json={"name": "kid"}, timeout=10)
    assert made.status_code == 201, made.text
    kid = {"Authorization": f"Bearer {made.json()['api_key']}"}
    assert httpx.get(b.url + "/api/v1/me", headers=kid, timeout=10).json()["name"] == "kid"
    other = cluster.item("Other")
    body = {"position_seconds": 3, "event": "pause", "device_id": "phone",
            "client_ts": int(time.time() * 1000)}
    assert httpx.put(a.url + f"/api/v1/playback/progress/{other}", headers=kid, json=body,
                     timeout=10).status_code == 200
    read = httpx.get(b.url + f"/api/v1/playback/progress/{other}", headers=kid, timeout=10).json()
    assert read["position_seconds"] == 3


def test_the_sessions_cap_holds_across_instances(cluster: Cluster) -> None:
    """sessions_per_user (4) sessions started alternately on A and B: the fifth is refused by either."""
    a, b = cluster.instances
    made = httpx.post(a.url + "/api/v1/users", headers=cluster.auth, json={"name": "capped"}, timeout=10)
    key = {"Authorization": f"Bearer {made.json()['api_key']}"}
    other = cluster.item("Other")
    answers = []
    for n in range(5):
        body = {"item_id": other, "device_id": f"dev{n}", "capabilities": AAC_HLS}
        answers.append(httpx.post((a, b)[n % 2].url + "/api/v1/playback/sessions", headers=key, json=body,
                                  timeout=10).status_code)
    assert answers == [201, 201, 201, 201, 429]


def test_a_rotation_signs_on_every_instance_and_old_urls_keep_playing(cluster: Cluster,
                                                                    tmp_path: Path) -> None:
    other = cluster.item("Other")
    listener = cluster.user()
    old = cluster.session(other, "before", listener)
    cli("secret", "rotate", data=tmp_path / "cli", store=cluster.redis.url)
    with redis.Redis.from_url(cluster.redis.url) as client:
        newest = bytes.fromhex(client.lindex(stream_secrets.SHARED_KEY, 0).decode())

    def signs_with_newest(instance: Instance) -> bool:
        return _signed_with(newest, cluster.session(other, "after", listener, via=instance.url), other)

    for instance in cluster.instances:
        wait_until(lambda i=instance: signs_with_newest(i), f"{instance.name} to sign with the new secret",
                   timeout=stream_secrets.REFRESH_SECONDS + 10)
    for instance in cluster.instances:  # the URL signed before the rotation, on each instance
        assert httpx.get(instance.url + old, timeout=30).status_code == 200


def test_segments_are_byte_identical_whichever_instance_encodes_them(cluster: Cluster) -> None:
    path = cluster.session(cluster.item("Other"), "bytes")
    base, token = path.split("/playlist.m3u8?t=", 1)
    segment = f"{base}/aac-128/segment0.m4s?t={token}"
    a, b = cluster.instances
    from_a = httpx.get(a.url + segment, timeout=60)
    from_b = httpx.get(b.url + segment, timeout=60)
    assert from_a.status_code == from_b.status_code == 200
    assert from_a.content == from_b.content


def test_redis_restarted_every_instance_answers_503_then_recovers(cluster: Cluster) -> None:
    cluster.redis.stop(hard=True)
    for instance in cluster.instances:
        wait_until(lambda i=instance: httpx.get(i.url + "/healthz", timeout=10).status_code == 503,
                   f"{instance.name} to answer 503 while the store is down")
    cluster.redis.start()
    for instance in cluster.instances:
        wait_until(lambda i=instance: httpx.get(i.url + "/healthz", timeout=10).status_code == 200,
                   f"{instance.name} to recover by itself")
    assert httpx.get(cluster.nginx.url + "/api/v1/me", headers=cluster.auth, timeout=10).status_code == 200


def test_ffmpeg_decodes_the_whole_item_through_nginx(cluster: Cluster) -> None:
    url = cluster.nginx.url + cluster.session(cluster.item("Other"), "f")
    samples, rate, channels, _ = ffmpeg_decode(url)
    assert (rate, channels) == (RATE, 2) and 0 <= samples - 8 * RATE < AAC_FRAME
