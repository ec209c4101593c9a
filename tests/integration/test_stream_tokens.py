"""Signed stream URLs over real HTTP: the URL a session hands out plays (direct with Range, HLS playlist,
init and segments) with no header; tampered, expired, other-item and other-user tokens are 403;
missing credentials 401; the old ``?api_key=`` no longer opens media; ``revenge secret rotate``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from revenge.security import secrets as stream_secrets
from revenge.security.signing import sign_stream_token, verify_stream_token
from tests.live import LiveServer, add_user, live_server
from tests.live import test_settings as settings_for
from tests.mediagen import write_audio

SESSIONS = "/api/v1/playback/sessions"
FLAC_DIRECT = {"codecs": ["flac"], "containers": ["flac"], "hls": False}
AAC_HLS = {"codecs": ["aac"], "containers": ["mp4"], "hls": True}


@dataclass
class Env:
    live: LiveServer
    data: Path
    music: Path
    key: str
    song: str  # item ids
    other: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def session_url(self, item_id: str, caps: dict[str, object] = FLAC_DIRECT, device: str = "d") -> str:
        response = httpx.post(self.live.url + SESSIONS, headers=self.auth, timeout=10,
                              json={"item_id": item_id, "device_id": device, "capabilities": caps})
        assert response.status_code == 201, response.text
        url: str = response.json()["url"]
        return url


def _ids(live: LiveServer, key: str) -> dict[str, str]:
    items = httpx.get(live.url + "/api/v1/items", headers={"Authorization": f"Bearer {key}"},
                      timeout=10).json()["items"]
    return {i["title"]: i["id"] for i in items}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    base = tmp_path_factory.mktemp("tokens")
    music, data = base / "music", base / "data"
    write_audio(music / "song.flac", seconds=4, rate=44_100, channels=2, kind="music", tags={"title": "Song"})
    write_audio(music / "other.flac", seconds=2, rate=44_100, channels=1, kind="noise",
                tags={"title": "Other"})
    key = add_user(data, "alice")
    add_user(data, "bob")
    with live_server(settings_for(data, library=(music,))) as live:
        ids = _ids(live, key)
        yield Env(live, data, music, key, ids["Song"], ids["Other"])


def token_of(url: str) -> str:
    return url.split("t=", 1)[1].split("&", 1)[0]


def direct(env: Env, item_id: str, token: str | None = None, **kw: object) -> httpx.Response:
    params = {} if token is None else {"t": token}
    return httpx.get(f"{env.live.url}/api/v1/stream/{item_id}/direct", params=params, timeout=10,
                     **kw)  # type: ignore[arg-type]


def test_the_session_url_plays_with_range_and_no_header(env: Env) -> None:
    url = env.session_url(env.song)
    data = (env.music / "song.flac").read_bytes()
    ranged = httpx.get(env.live.url + url, headers={"Range": "bytes=100-199"}, timeout=10)
    assert ranged.status_code == 206 and ranged.content == data[100:200]
    assert ranged.headers["content-range"] == f"bytes 100-199/{len(data)}"
    whole = httpx.get(env.live.url + url, timeout=10)
    assert whole.status_code == 200 and whole.content == data
    head = httpx.head(env.live.url + url, timeout=10)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(data))


def _refused(response: httpx.Response, status: int, code: str, case: str = "") -> None:
    assert response.status_code == status, (case, response.text)
    error = response.json()["error"]
    assert error["code"] == code and error["message"] and error["field"] == "t", case


def test_tampered_expired_other_item_and_other_user_tokens_are_403(env: Env) -> None:
    token = token_of(env.session_url(env.song))
    assert direct(env, env.song, token).status_code == 200
    user_id, expires, mac = token.split(".")
    secret = stream_secrets.load_or_create(env.data)[0]
    flipped = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    now = int(time.time())
    cases = {
        "tampered mac": f"{user_id}.{expires}.{flipped}",
        "later expiry": f"{user_id}.{int(expires) + 1}.{mac}",
        "another user's id": f"{int(user_id) + 1}.{expires}.{mac}",
        "malformed": "not-a-token",
        "another secret": sign_stream_token(b"x" * 32, user_id, env.song, now + 600),
        "a user who does not exist": sign_stream_token(secret, "999", env.song, now + 600),
    }
    for case, bad in cases.items():
        _refused(direct(env, env.song, bad), 403, "invalid_token", case)
    _refused(direct(env, env.other, token), 403, "invalid_token")  # the token is for another item
    expired = sign_stream_token(secret, user_id, env.song, now - 1)
    _refused(direct(env, env.song, expired), 403, "token_expired")


def test_missing_credentials_are_401_and_the_query_key_is_gone(env: Env) -> None:
    missing = direct(env, env.song)
    _refused(missing, 401, "unauthorized")
    assert missing.headers["www-authenticate"].startswith("Bearer")
    response = httpx.get(f"{env.live.url}/api/v1/stream/{env.song}/direct", params={"api_key": env.key})
    _refused(response, 401, "unauthorized")
    assert direct(env, env.song, headers=env.auth).status_code == 200  # the bearer header still works
    # A bad header is not rescued by a good token: explicit credentials that fail are an error.
    token = token_of(env.session_url(env.song))
    assert direct(env, env.song, token, headers={"Authorization": "Bearer rv_nope"}).status_code == 401


def test_a_token_opens_the_playlists_init_and_segments_of_its_item_only(env: Env) -> None:
    url = env.session_url(env.song, AAC_HLS, device="hls")
    assert "/playlist.m3u8?t=" in url and "&profiles=" in url
    token = token_of(url)
    base = f"{env.live.url}/api/v1/stream/{env.song}"
    master = httpx.get(env.live.url + url, timeout=30)
    assert master.status_code == 200 and "#EXT-X-STREAM-INF" in master.text
    for path in ("aac-128/index.m3u8", "aac-128/init.mp4", "aac-128/segment0.m4s"):
        ok = httpx.get(f"{base}/{path}", params={"t": token}, timeout=60)
        assert ok.status_code == 200 and ok.content, path
        _refused(httpx.get(f"{base}/{path}", timeout=10), 401, "unauthorized")
        other = f"{env.live.url}/api/v1/stream/{env.other}/{path}"
        _refused(httpx.get(other, params={"t": token}, timeout=10), 403, "invalid_token")
    assert httpx.get(f"{base}/aac-128/segment0.m4s", params={"t": token}).content[4:8] in (b"styp", b"moof")


def _rotate(data: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVENGE_")}
    done = subprocess.run([sys.executable, "-m", "revenge", "secret", "rotate", "--data-dir", str(data)],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Rotated" in done.stdout


def test_rotation_keeps_old_urls_until_the_second_rotation(tmp_path: Path) -> None:
    music, data = tmp_path / "music", tmp_path / "data"
    write_audio(music / "a.flac", seconds=1, rate=8_000, channels=1, kind="noise", tags={"title": "A"})
    key = add_user(data, "u")
    settings = settings_for(data, library=(music,))
    auth = {"Authorization": f"Bearer {key}"}

    def session_url(live: LiveServer, item_id: str) -> str:
        body = {"item_id": item_id, "device_id": "d", "capabilities": FLAC_DIRECT}
        response = httpx.post(live.url + SESSIONS, headers=auth, json=body, timeout=10)
        assert response.status_code == 201
        return str(response.json()["url"])

    with live_server(settings) as live:
        item = _ids(live, key)["A"]
        old = session_url(live, item)
        _rotate(data)  # a running server keeps signing and verifying with what it loaded
        assert httpx.get(live.url + old).status_code == 200
    with live_server(settings) as live:
        new = session_url(live, item)
        newest, previous = stream_secrets.load_or_create(data)
        now = int(time.time())
        # The restarted server signs with the new secret; the old URL was signed with the previous one.
        assert verify_stream_token([newest], token_of(new), item, now).user_id == "1"
        assert verify_stream_token([previous], token_of(old), item, now).user_id == "1"
        assert httpx.get(live.url + old).status_code == 200  # the previous secret still verifies
        assert httpx.get(live.url + new).status_code == 200
    _rotate(data)
    with live_server(settings) as live:
        assert httpx.get(live.url + old).status_code == 403  # two rotations later: dropped
        assert httpx.get(live.url + new).status_code == 200
