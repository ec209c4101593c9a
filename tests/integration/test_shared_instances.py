"""Two instances on one Redis store (``REVENGE_STORE=redis://…``), each with its own data dir, reading the
same library: users and keys made on either (or with the CLI against the store) work on both, a removed
key is refused by the other within the cache time, a stream URL signed by one plays on the other, and
``revenge secret rotate`` (CLI, shared store) signs on both without a restart while older URLs still
play. Each instance scans for itself: the same ids and the same HLS segments from both."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from revenge.library.catalog import Catalog
from revenge.library.scan import scan_library
from revenge.library.scan_status import ScanStatus
from revenge.security import secrets as stream_secrets
from revenge.security.keys import CACHE_SECONDS
from revenge.security.signing import TokenError, sign_stream_token, verify_stream_token
from tests.live import LiveServer, live_server
from tests.live import test_settings as settings_for
from tests.mediagen import write_audio
from tests.redisfix import (
    RedisServer,
    redis_server,  # noqa: F401  (fixture)
)
from tests.waits import wait_until

SESSIONS = "/api/v1/playback/sessions"
FLAC_DIRECT = {"codecs": ["flac"], "containers": ["flac"], "hls": False}
AAC_HLS = {"codecs": ["aac"], "containers": ["mp4"], "hls": True}


def cli(*args: str, data: Path, store: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVENGE_")}
    env.update(REVENGE_STORE=store, REVENGE_DATA_DIR=str(data))
    done = subprocess.run([sys.executable, "-m", "revenge", *args],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@dataclass
class Pair:
    a: LiveServer
    b: LiveServer
    admin: str  # the admin's API key, made with the CLI against the shared store
    redis: RedisServer
    data: Path  # a data dir for CLI runs (neither instance's)

    def auth(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    def me(self, live: LiveServer, key: str) -> httpx.Response:
        return httpx.get(live.url + "/api/v1/me", headers=self.auth(key), timeout=10)

    def ids(self, live: LiveServer) -> dict[str, str]:
        body = httpx.get(live.url + "/api/v1/items", headers=self.auth(self.admin), timeout=10).json()
        return {i["title"]: i["id"] for i in body["items"]}

    def session_url(self, live: LiveServer, key: str, item: str, caps: dict[str, object] = FLAC_DIRECT,
                    device: str = "d") -> str:
        body = {"item_id": item, "device_id": device, "capabilities": caps}
        response = httpx.post(live.url + SESSIONS, headers=self.auth(key), json=body, timeout=10)
        assert response.status_code == 201, response.text
        return str(response.json()["url"])

    def store_secrets(self) -> list[bytes]:
        with redis.Redis.from_url(self.redis.url) as client:
            return [bytes.fromhex(v.decode()) for v in client.lrange(stream_secrets.SHARED_KEY, 0, -1)]


@pytest.fixture
def pair(tmp_path: Path, redis_server: RedisServer) -> Iterator[Pair]:  # noqa: F811
    music = tmp_path / "music"
    write_audio(music / "song.flac", seconds=4, rate=44_100, channels=2, kind="music", tags={"title": "Song"})
    write_audio(music / "album" / "other.flac", seconds=2, rate=22_050, channels=1, kind="noise",
                tags={"title": "Other"})
    cli_data = tmp_path / "cli"
    out = cli("user", "add", "boss", data=cli_data, store=redis_server.url)
    assert "Created admin 'boss'" in out
    admin = out.strip().splitlines()[-1]
    common = {"library": (music,), "store": redis_server.url}
    with live_server(settings_for(tmp_path / "a", **common)) as a, \
            live_server(settings_for(tmp_path / "b", **common)) as b:
        yield Pair(a, b, admin, redis_server, cli_data)
    # Neither instance kept its own users or secrets.
    for name in ("users.db", stream_secrets.FILE_NAME, "secrets-key"):
        assert not (tmp_path / "a" / name).exists() and not (tmp_path / "b" / name).exists(), name


def test_users_and_keys_made_anywhere_work_everywhere_and_removal_reaches_all(pair: Pair) -> None:
    assert pair.me(pair.a, pair.admin).json()["role"] == "admin"
    assert pair.me(pair.b, pair.admin).json()["name"] == "boss"
    made = httpx.post(pair.a.url + "/api/v1/users", headers=pair.auth(pair.admin),
                      json={"name": "kid"}, timeout=10)
    assert made.status_code == 201, made.text
    kid = made.json()["api_key"]
    assert pair.me(pair.b, kid).json() == {"id": made.json()["user"]["id"], "name": "kid", "role": "listener"}
    second = cli("user", "key", "kid", data=pair.data, store=pair.redis.url).strip()
    assert pair.me(pair.a, second).status_code == 200 and pair.me(pair.b, second).status_code == 200
    listed = httpx.get(pair.b.url + "/api/v1/users", headers=pair.auth(pair.admin), timeout=10).json()
    assert [(u["name"], u["keys"]) for u in listed["users"]] == [("boss", 1), ("kid", 2)]
    assert "kid\tlistener\t2 key(s)" in cli("user", "list", data=pair.data, store=pair.redis.url)
    # B has kid's keys cached now; A removes kid: B refuses them once its cache entry is older.
    assert pair.me(pair.b, kid).status_code == 200
    removed = httpx.delete(pair.a.url + "/api/v1/users/kid", headers=pair.auth(pair.admin), timeout=10)
    assert removed.status_code == 204
    assert pair.me(pair.a, kid).status_code == 401
    wait_until(lambda: pair.me(pair.b, kid).status_code == 401 and pair.me(pair.b, second).status_code == 401,
               "instance B to refuse the removed keys", timeout=CACHE_SECONDS + 10)
    # The last-admin rule holds across instances: B cannot demote the one admin made on the CLI.
    demote = httpx.put(pair.b.url + "/api/v1/users/boss/role", headers=pair.auth(pair.admin),
                       json={"role": "listener"}, timeout=10)
    assert demote.status_code == 409 and demote.json()["error"]["code"] == "last_admin"


def test_each_instance_scans_to_the_same_ids_and_segments(pair: Pair) -> None:
    ids = pair.ids(pair.a)
    assert ids == pair.ids(pair.b) and set(ids) == {"Song", "Other"}
    url = pair.session_url(pair.a, pair.admin, ids["Song"], AAC_HLS, device="hls")
    token = url.split("t=", 1)[1].split("&", 1)[0]
    segment = url.split("/playlist.m3u8", 1)[0] + "/aac-128/segment0.m4s?t=" + token
    from_a = httpx.get(pair.a.url + segment, timeout=60)
    from_b = httpx.get(pair.b.url + segment, timeout=60)  # the token from A, on B
    assert from_a.status_code == from_b.status_code == 200
    assert from_a.content == from_b.content  # a player moved to B mid-stream gets the same bytes


def test_a_url_signed_by_one_instance_plays_on_the_other(pair: Pair) -> None:
    song = pair.ids(pair.a)["Song"]
    for signer, player in ((pair.a, pair.b), (pair.b, pair.a)):
        url = pair.session_url(signer, pair.admin, song)
        response = httpx.get(player.url + url, headers={"Range": "bytes=0-3"}, timeout=10)
        assert response.status_code == 206 and response.content == b"fLaC"


def _signed_with(secret: bytes, url: str, item: str) -> bool:
    token = url.split("t=", 1)[1].split("&", 1)[0]
    try:
        verify_stream_token([secret], token, item, int(time.time()))
    except TokenError:
        return False
    return True


def test_rotation_on_the_cli_signs_on_every_instance_and_old_urls_still_play(pair: Pair) -> None:
    song = pair.ids(pair.a)["Song"]
    old = pair.session_url(pair.a, pair.admin, song)
    (first,) = pair.store_secrets()
    assert _signed_with(first, old, song)
    out = cli("secret", "rotate", data=pair.data, store=pair.redis.url)
    assert "shared store" in out and "no restart" in out
    newest, previous = pair.store_secrets()
    assert previous == first
    # A URL signed with the new secret (as by an instance that saw the rotation first) plays at once on
    # instances that have not re-read the secrets yet: a token failing with the known ones re-reads them.
    boss = pair.me(pair.a, pair.admin).json()["id"]
    early = f"/api/v1/stream/{song}/direct?t=" + sign_stream_token(newest, boss, song, int(time.time()) + 600)
    for live in (pair.a, pair.b):
        assert httpx.get(live.url + early, headers={"Range": "bytes=0-3"}, timeout=10).status_code == 206

    def signs_with_newest(live: LiveServer) -> bool:
        return _signed_with(newest, pair.session_url(live, pair.admin, song, device="x"), song)

    for live in (pair.b, pair.a):
        wait_until(lambda live=live: signs_with_newest(live), "the instance to sign with the new secret",
                   timeout=stream_secrets.REFRESH_SECONDS + 10)
    new = pair.session_url(pair.b, pair.admin, song)
    for live in (pair.a, pair.b):
        for url in (old, new):
            response = httpx.get(live.url + url, headers={"Range": "bytes=0-3"}, timeout=10)
            assert response.status_code == 206, (live.url, url)
    # A second rotation drops the first secret, and with it the old URL, on both instances.
    cli("secret", "rotate", data=pair.data, store=pair.redis.url)
    for live in (pair.a, pair.b):
        wait_until(lambda live=live: httpx.get(live.url + old, timeout=10).status_code == 403,
                   "the old URL to be refused", timeout=stream_secrets.REFRESH_SECONDS + 10)
        assert httpx.get(live.url + new, headers={"Range": "bytes=0-3"}, timeout=10).status_code == 206


def test_two_catalogs_of_one_library_have_the_same_ids_wherever_it_is_mounted(tmp_path: Path) -> None:
    """Why each instance may scan for itself: an id is the item's type and its path relative to its
    library root, so two scans of the same files (even mounted at another path) agree on every id."""
    music = tmp_path / "music"
    write_audio(music / "a.flac", seconds=1, rate=8_000, channels=1, kind="noise", tags={"title": "A"})
    write_audio(music / "Artist" / "Album" / "01 b.mp3", seconds=1, rate=8_000, channels=1, kind="noise",
                tags={"title": "B"})
    write_audio(music / "Artist" / "Album" / "02 c.flac", seconds=1, rate=8_000, channels=1, kind="noise",
                tags={"title": "C"})
    elsewhere = tmp_path / "mnt" / "library"
    shutil.copytree(music, elsewhere)  # the same files at another mount point

    def scanned(root: Path, name: str) -> dict[str, str]:
        catalog = Catalog(tmp_path / f"{name}.db")
        try:
            scan_library(settings_for(tmp_path / name, library=(root,)), catalog, ScanStatus())
            items, _ = catalog.list_items(limit=100)
            return {item.id: item.title for item in items}
        finally:
            catalog.close()

    first = scanned(music, "one")
    assert sorted(first.values()) == ["A", "B", "C"]
    assert scanned(music, "two") == first
    assert scanned(elsewhere, "three") == first
