"""Podcast subscriptions through a real server against a local podcast host (no internet): subscribe →
episodes listed → the newest N downloaded into the podcast folder → scanned → played over HLS with
progress; 304 on an unchanged feed; only new episodes fetched; keep-last-N drops the oldest file and a
new download of it finds its progress again; broken feeds back off and turn auto-download off; a 404,
a truncated body and a lying Content-Length each fail cleanly (a truncated one resumes with Range);
OPML round trip; the SSRF guard, the redirect cap and an XML bomb refuse."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.artgen import picture_bytes
from tests.feedhost import FeedHost, rss
from tests.live import LiveServer, add_user, live_server
from tests.live import test_settings as settings_for
from tests.mediagen import write_audio
from tests.waits import wait_until

AAC_ONLY = {"codecs": ["aac"], "containers": ["mp4"], "hls": True}
DAYS = [
    "Mon, 30 Nov 2026 10:00:00 GMT",
    "Tue, 01 Dec 2026 10:00:00 GMT",
    "Wed, 02 Dec 2026 10:00:00 GMT",
    "Thu, 03 Dec 2026 10:00:00 GMT",
]


class Env:
    def __init__(
        self, live: LiveServer, host: FeedHost, key: str, podcasts: Path, audio: list[bytes]
    ) -> None:
        self.live, self.host, self.podcasts, self.audio = live, host, podcasts, audio
        self.http = httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        self.listener = self.http

    def episodes(self, pid: str) -> list[dict[str, Any]]:
        response = self.http.get(f"/api/v1/podcasts/{pid}/episodes")
        assert response.status_code == 200, response.text
        return response.json()["episodes"]

    def by_title(self, pid: str) -> dict[str, dict[str, Any]]:
        return {e["title"]: e for e in self.episodes(pid)}

    def wait_downloads(
        self, pid: str, titles: set[str], state: str = "downloaded"
    ) -> dict[str, dict[str, Any]]:
        wait_until(
            lambda: all(self.by_title(pid)[t]["download"]["state"] == state for t in titles),
            f"{sorted(titles)} {state}",
        )
        return self.by_title(pid)

    def item_ids(self) -> set[str]:
        return {
            i["id"]
            for i in self.http.get("/api/v1/items", params={"type": "episode", "limit": 100}).json()["items"]
        }

    def audio_files(self) -> list[str]:
        return sorted(
            str(p.relative_to(self.podcasts))
            for p in self.podcasts.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(self.podcasts).parts)
        )


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    base = tmp_path_factory.mktemp("podcasts")
    media = base / "made"
    audio = []
    for n in range(4):
        write_audio(media / f"e{n}.mp3", seconds=2.0 + n * 0.25, freq=300 + 200 * n)
        audio.append((media / f"e{n}.mp3").read_bytes())
    podcasts = base / "Podcasts"
    podcasts.mkdir()
    data = base / "data"
    key = add_user(data, "boss")  # the first user: an admin
    listener = add_user(data, "ears")  # later ones: listeners
    settings = settings_for(
        data, podcasts=(podcasts,), podcast_allow_private_addresses=True, podcast_max_failures=3
    )
    host = FeedHost()
    with host.running(), live_server(settings) as live:
        env = Env(live, host, key, podcasts, audio)
        env.listener = httpx.Client(
            base_url=live.url, headers={"Authorization": f"Bearer {listener}"}, timeout=30
        )
        yield env


def _episode(
    n: int, host: FeedHost, path: str, extra: str = "", mode: str = "ok", audio: bytes = b""
) -> dict[str, str]:
    url = host.put(path, audio, mode=mode)
    return {"title": f"Episode {n}", "guid": f"guid-{n}", "date": DAYS[n], "url": url, "extra": extra}


def test_subscribe_download_play_keep_last_and_progress(env: Env) -> None:
    host = env.host
    chapters = host.put(
        "/show/ch.json",
        b'{"version":"1.2.0","chapters":[{"startTime":0,"title":"Cold open"},'
        b'{"startTime":1.5,"title":"Main"}]}',
        "application/json",
    )
    psc = (
        '<psc:chapters version="1.2"><psc:chapter start="00:00:00" title="Hello"/>'
        '<psc:chapter start="00:00:01.250" title="World"/></psc:chapters>'
    )
    episodes = [
        _episode(0, host, "/show/e0.mp3", audio=env.audio[0]),
        _episode(1, host, "/show/e1.mp3", psc, audio=env.audio[1]),
        _episode(
            2,
            host,
            "/show/e2.mp3",
            f'<podcast:chapters url="{chapters}" type="application/json"/>',
            audio=env.audio[2],
        ),
    ]
    feed_url = host.put("/show/feed.xml", rss("The Show", episodes[::-1]), "application/rss+xml")
    wait_until(lambda: not env.http.get("/healthz").json()["scan"]["running"], "the startup scan")
    full_scan = env.http.get("/healthz").json()["scan"]["started_at"]
    response = env.http.post(
        "/api/v1/podcasts", json={"feed_url": feed_url, "new_per_check": 2, "keep_last": 2}
    )
    assert response.status_code == 201, response.text
    show = response.json()
    assert show["title"] == "The Show" and show["auto_download"] and show["keep_last"] == 2
    pid = show["id"]
    assert env.http.post("/api/v1/podcasts", json={"feed_url": feed_url}).status_code == 409
    assert [p["id"] for p in env.http.get("/api/v1/podcasts").json()["podcasts"]] == [pid]

    # Listed at once, newest first; the newest two download, the oldest does not.
    listed = env.episodes(pid)
    assert [e["title"] for e in listed] == ["Episode 2", "Episode 1", "Episode 0"]
    assert listed[1]["chapters"] == [
        {"start_seconds": 0.0, "title": "Hello", "url": None},
        {"start_seconds": 1.25, "title": "World", "url": None},
    ]
    done = env.wait_downloads(pid, {"Episode 2", "Episode 1"})
    assert done["Episode 0"]["download"]["state"] == "none" and not host.hits_of("/show/e0.mp3")
    assert done["Episode 2"]["chapters"] == [
        {"start_seconds": 0.0, "title": "Cold open", "url": None},
        {"start_seconds": 1.5, "title": "Main", "url": None},
    ]
    assert env.audio_files() == sorted(
        f"The Show/{n}"
        for n in (
            f"2026-12-01 Episode 1 [{done['Episode 1']['id'][:6]}].mp3",
            f"2026-12-02 Episode 2 [{done['Episode 2']['id'][:6]}].mp3",
        )
    )

    # The scan makes them items, which play over HLS and keep progress like any local item.
    newest, older = done["Episode 2"]["item_id"], done["Episode 1"]["item_id"]
    wait_until(lambda: {newest, older} <= env.item_ids(), "downloaded episodes scanned")
    # by a rescan of the show's folder, not of the whole library
    assert env.http.get("/healthz").json()["scan"]["started_at"] == full_scan
    session = env.http.post(
        "/api/v1/playback/sessions", json={"item_id": older, "device_id": "phone", "capabilities": AAC_ONLY}
    )
    assert session.status_code == 201, session.text
    assert session.json()["decision"] == "hls"
    multivariant = httpx.get(env.live.url + session.json()["url"], timeout=60)
    assert multivariant.status_code == 200 and "#EXTM3U" in multivariant.text
    media_url = httpx.URL(env.live.url + session.json()["url"]).join(
        next(line for line in multivariant.text.splitlines() if line and not line.startswith("#"))
    )
    media = httpx.get(media_url, timeout=60)
    segment = next(line for line in media.text.splitlines() if line.endswith(".m4s") or ".m4s?" in line)
    assert httpx.get(media_url.join(segment), timeout=60).status_code == 200
    put = env.http.put(
        f"/api/v1/playback/progress/{older}",
        json={"position_seconds": 1.5, "duration_seconds": 2.25, "device_id": "phone"},
    )
    assert put.status_code == 200, put.text

    # Listeners see shows and episodes; only admins change them.
    assert env.listener.get(f"/api/v1/podcasts/{pid}/episodes").status_code == 200
    for method, path in (
        ("POST", "/api/v1/podcasts"),
        ("PATCH", f"/api/v1/podcasts/{pid}"),
        ("POST", f"/api/v1/podcasts/{pid}/refresh"),
        ("DELETE", f"/api/v1/podcasts/{pid}"),
        ("DELETE", f"/api/v1/podcasts/episodes/{done['Episode 1']['id']}/download"),
    ):
        assert env.listener.request(method, path, json={"feed_url": feed_url}).status_code == 403, (
            method,
            path,
        )

    # Unchanged feed: a conditional GET answered 304.
    assert env.http.post(f"/api/v1/podcasts/{pid}/refresh").json() == {
        "status": "not_modified",
        "new_episodes": 0,
        "error": None,
    }
    first, last = host.hits_of("/show/feed.xml")[0], host.hits_of("/show/feed.xml")[-1]
    assert "gzip" in first.headers["Accept-Encoding"]  # the host then compressed it (tests/feedhost.py)
    assert last.status == 304 and last.headers.get("If-None-Match")

    # A new episode: only it is fetched; keep-last-2 drops the oldest download (Episode 1) and its file.
    episodes.append(_episode(3, host, "/show/e3.mp3", audio=env.audio[3]))
    host.put("/show/feed.xml", rss("The Show", episodes[::-1]), "application/rss+xml")
    fetched_before = {p: len(host.hits_of(p)) for p in ("/show/e0.mp3", "/show/e1.mp3", "/show/e2.mp3")}
    assert env.http.post(f"/api/v1/podcasts/{pid}/refresh").json() == {
        "status": "updated",
        "new_episodes": 1,
        "error": None,
    }
    done = env.wait_downloads(pid, {"Episode 3"})
    wait_until(lambda: env.by_title(pid)["Episode 1"]["download"]["state"] == "none", "the oldest dropped")
    assert {p: len(host.hits_of(p)) for p in fetched_before} == fetched_before
    assert len(env.audio_files()) == 2 and not any("Episode 1" in f for f in env.audio_files())
    wait_until(lambda: older not in env.item_ids(), "the dropped episode gone from the catalog")

    # Downloaded again (keep-last off, or it would go at once), it is the same item, with its progress.
    assert env.http.patch(f"/api/v1/podcasts/{pid}", json={"keep_last": 0}).json()["keep_last"] == 0
    again = env.http.post(f"/api/v1/podcasts/episodes/{done['Episode 1']['id']}/download")
    assert again.status_code == 202, again.text
    env.wait_downloads(pid, {"Episode 1"})
    wait_until(lambda: older in env.item_ids(), "the episode back in the catalog")
    progress = env.http.get(f"/api/v1/playback/progress/{older}")
    assert progress.status_code == 200 and progress.json()["position_seconds"] == 1.5

    # DELETE …/download removes the file and keeps the progress.
    assert env.http.delete(f"/api/v1/podcasts/episodes/{done['Episode 1']['id']}/download").status_code == 204
    assert env.by_title(pid)["Episode 1"]["download"]["state"] == "none"
    assert not any("Episode 1" in f for f in env.audio_files())


def test_broken_enclosures_fail_cleanly_and_a_cut_one_resumes(env: Env) -> None:
    host = env.host
    episodes = [
        _episode(0, host, "/bad/missing.mp3"),  # never put: 404
        _episode(1, host, "/bad/cut.mp3", mode="truncate", audio=env.audio[1]),
        _episode(2, host, "/bad/lie.mp3", mode="lie", audio=env.audio[2]),
        _episode(3, host, "/bad/noise.mp3", audio=bytes(range(256)) * 200),  # arrives whole, is no audio
    ]
    host.resources.pop("/bad/missing.mp3")
    feed_url = host.put("/bad/feed.xml", rss("Bad Host", episodes), "application/rss+xml")
    response = env.http.post("/api/v1/podcasts", json={"feed_url": feed_url, "new_per_check": 4})
    assert response.status_code == 201, response.text
    pid = response.json()["id"]
    failed = env.wait_downloads(pid, {"Episode 0", "Episode 1", "Episode 2", "Episode 3"}, state="failed")
    assert failed["Episode 0"]["download"]["error"] == "HTTP 404"
    assert "transfer" in failed["Episode 1"]["download"]["error"]
    assert "transfer" in failed["Episode 2"]["download"]["error"]
    assert failed["Episode 3"]["download"]["error"].startswith("not playable")
    assert all(e["item_id"] is None for e in failed.values())
    assert not any(f.startswith("Bad Host") for f in env.audio_files())  # nothing half-written in the library

    # The host behaves again: the cut download continues where it stopped (Range → 206).
    host.resources["/bad/cut.mp3"].mode = "ok"
    assert env.http.post(f"/api/v1/podcasts/episodes/{failed['Episode 1']['id']}/download").status_code == 202
    done = env.wait_downloads(pid, {"Episode 1"})
    last = host.hits_of("/bad/cut.mp3")[-1]
    assert last.status == 206 and last.headers["Range"] == f"bytes={len(env.audio[1]) // 2}-"
    assert (
        env.podcasts / next(f for f in env.audio_files() if f.startswith("Bad Host"))
    ).read_bytes() == env.audio[1]
    assert done["Episode 1"]["item_id"]


def test_a_failing_feed_backs_off_and_turns_auto_download_off(env: Env) -> None:
    host = env.host
    feed_url = host.put("/flaky/feed.xml", rss("Flaky", []), "application/rss+xml")
    pid = env.http.post("/api/v1/podcasts", json={"feed_url": feed_url}).json()["id"]
    host.put("/flaky/feed.xml", b"this is not a feed", "application/rss+xml")
    waits = []
    for n in range(3):
        result = env.http.post(f"/api/v1/podcasts/{pid}/refresh").json()
        assert result["status"] == "failed" and "not a podcast feed" in result["error"]
        show = env.http.get(f"/api/v1/podcasts/{pid}").json()
        assert show["failures"] == n + 1
        waits.append(show["next_check_at"] - show["last_checked_at"])
    assert waits == sorted(waits) and waits[0] < 70  # 60 s ± 10 %, doubling
    assert show["auto_download"] is False and "3 failed checks" in show["auto_download_off_reason"]
    host.resources.pop("/flaky/feed.xml")
    assert "404" in env.http.post(f"/api/v1/podcasts/{pid}/refresh").json()["error"]
    # Turned on again by hand: the count starts over and the reason goes.
    show = env.http.patch(
        f"/api/v1/podcasts/{pid}", json={"auto_download": True, "check_interval_seconds": 600}
    )
    assert show.status_code == 200
    assert (
        show.json()["auto_download"],
        show.json()["auto_download_off_reason"],
        show.json()["failures"],
    ) == (True, None, 0)
    assert (
        env.http.patch(f"/api/v1/podcasts/{pid}", json={"keep_last": -1}).json()["error"]["field"]
        == "keep_last"
    )
    assert env.http.delete(f"/api/v1/podcasts/{pid}").status_code == 204
    assert env.http.get(f"/api/v1/podcasts/{pid}").status_code == 404


def test_bomb_redirect_loop_and_garbage_are_refused(env: Env) -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
        b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]>'
        b'<rss version="2.0"><channel><title>&c;</title></channel></rss>'
    )
    url = env.host.put("/evil/bomb.xml", bomb, "application/rss+xml")
    response = env.http.post("/api/v1/podcasts", json={"feed_url": url})
    assert response.status_code == 422 and response.json()["error"]["code"] == "feed_unusable"
    loop = env.host.url + "/evil/loop.xml"
    env.host.put("/evil/loop.xml", b"", mode=f"redirect:{loop}")
    response = env.http.post("/api/v1/podcasts", json={"feed_url": loop})
    assert response.status_code == 502 and "redirects" in response.json()["error"]["message"]
    for bad in ("file:///etc/passwd", "ftp://example.com/feed"):
        response = env.http.post("/api/v1/podcasts", json={"feed_url": bad})
        assert response.status_code == 400 and response.json()["error"]["code"] == "unsafe_url"
    listed = {p["feed_url"] for p in env.http.get("/api/v1/podcasts").json()["podcasts"]}
    assert not listed & {url, loop}


def test_opml_round_trip(env: Env) -> None:
    urls = [env.host.put(f"/opml/{n}.xml", rss(f"Show {n}", []), "application/rss+xml") for n in range(2)]
    ids = [
        env.http.post("/api/v1/podcasts", json={"feed_url": u, "auto_download": False}).json()["id"]
        for u in urls
    ]
    exported = env.http.get("/api/v1/podcasts:opml")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/x-opml")
    assert env.http.delete(f"/api/v1/podcasts/{ids[1]}").status_code == 204
    results = {
        r["feed_url"]: r["status"]
        for r in env.http.post("/api/v1/podcasts:opml", content=exported.content).json()["results"]
    }
    assert results[urls[0]] == "exists" and results[urls[1]] == "subscribed"
    again = env.http.get("/api/v1/podcasts:opml").content
    assert all(u.encode() in again for u in urls)
    assert env.http.post("/api/v1/podcasts:opml", content=b"<nope").status_code == 400


def test_loopback_refused_with_the_guard_on(tmp_path: Path) -> None:
    data = tmp_path / "data"
    key = add_user(data, "boss")
    host = FeedHost()
    feed_url = host.put("/feed.xml", rss("Local", []), "application/rss+xml")
    with host.running(), live_server(settings_for(data, podcasts=(tmp_path,))) as live:
        response = httpx.post(
            live.url + "/api/v1/podcasts",
            json={"feed_url": feed_url},
            timeout=30,
            headers={"Authorization": f"Bearer {key}"},
        )
    assert response.status_code == 400, response.text
    assert (
        response.json()["error"]["code"] == "unsafe_url"
        and "127.0.0.1" in response.json()["error"]["message"]
    )
    assert not host.hits  # refused before connecting


def test_feeds_are_checked_on_their_own_schedule(tmp_path: Path) -> None:
    data = tmp_path / "data"
    key = add_user(data, "boss")
    host = FeedHost()
    one = {"title": "One", "guid": "1", "date": DAYS[0], "url": host.url + "/1.mp3"}
    feed_url = host.put("/feed.xml", rss("Ticking", [one]), "application/rss+xml")
    settings = settings_for(
        data,
        podcasts=(tmp_path / "pods",),
        podcast_allow_private_addresses=True,
        podcast_check_interval_seconds=1,
    )
    with host.running(), live_server(settings) as live:
        http = httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        pid = http.post("/api/v1/podcasts", json={"feed_url": feed_url, "auto_download": False}).json()["id"]
        wait_until(lambda: any(hit.status == 304 for hit in host.hits_of("/feed.xml")), "a scheduled check")
        two = {"title": "Two", "guid": "2", "date": DAYS[1], "url": host.url + "/2.mp3"}
        host.put("/feed.xml", rss("Ticking", [two, one]), "application/rss+xml")
        wait_until(
            lambda: len(http.get(f"/api/v1/podcasts/{pid}/episodes").json()["episodes"]) == 2,
            "the new episode found without a refresh",
        )
        assert not host.hits_of("/1.mp3") and not host.hits_of("/2.mp3")  # auto-download off


def test_a_download_left_queued_finishes_after_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    key = add_user(data, "boss")
    write_audio(tmp_path / "e.mp3", seconds=1.0)
    host = FeedHost()
    url = host.put("/e.mp3", (tmp_path / "e.mp3").read_bytes())
    feed_url = host.put(
        "/feed.xml",
        rss("Restart", [{"title": "E", "guid": "e", "date": DAYS[0], "url": url}]),
        "application/rss+xml",
    )
    settings = settings_for(data, podcasts=(tmp_path / "pods",), podcast_allow_private_addresses=True)
    auth = {"Authorization": f"Bearer {key}"}
    with host.running():
        with live_server(settings) as live:
            pid = httpx.post(
                live.url + "/api/v1/podcasts",
                headers=auth,
                timeout=30,
                json={"feed_url": feed_url, "auto_download": False},
            ).json()["id"]
        with contextlib.closing(sqlite3.connect(data / "podcasts.db")) as db, db:
            db.execute("UPDATE episode SET download = 'queued'")  # stopped before a worker took it
        assert not host.hits_of("/e.mp3")
        with live_server(settings) as live:

            def state() -> str:
                episodes = httpx.get(f"{live.url}/api/v1/podcasts/{pid}/episodes", headers=auth, timeout=30)
                return str(episodes.json()["episodes"][0]["download"]["state"])

            wait_until(lambda: state() == "downloaded", "the queued download done after the restart")


def test_a_download_removed_while_it_runs_leaves_nothing(env: Env) -> None:
    host = env.host
    episodes = [_episode(0, host, "/slow/e.mp3", mode="slow", audio=env.audio[0])]
    feed_url = host.put("/slow/feed.xml", rss("Slow Host", episodes), "application/rss+xml")
    pid = env.http.post("/api/v1/podcasts", json={"feed_url": feed_url}).json()["id"]

    def running() -> bool:
        download = env.by_title(pid)["Episode 0"]["download"]
        return download["state"] == "downloading" and (download["bytes_done"] or 0) > 0

    wait_until(running, "the download under way")
    download = env.by_title(pid)["Episode 0"]["download"]
    assert download["bytes_total"] == len(env.audio[0]) and download["bytes_done"] < len(env.audio[0])
    eid = env.by_title(pid)["Episode 0"]["id"]
    assert env.http.delete(f"/api/v1/podcasts/episodes/{eid}/download").status_code == 204
    host.resources["/slow/e.mp3"].gate.set()
    # The worker is done with it when its progress figure goes.
    wait_until(lambda: env.by_title(pid)["Episode 0"]["download"]["bytes_done"] is None, "the worker done")
    assert env.by_title(pid)["Episode 0"]["download"] == {
        "state": "none",
        "error": None,
        "bytes_done": None,
        "bytes_total": None,
        "downloaded_at": None,
    }
    assert not any(p.name.startswith(eid) for p in (env.podcasts / ".revenge-downloads").iterdir())
    assert not any(f.startswith("Slow Host") for f in env.audio_files())


def test_the_show_image_becomes_the_folder_cover(env: Env) -> None:
    host = env.host
    png = host.put("/art/show.png", picture_bytes(40, 30, (200, 30, 30)), "image/png")
    episodes = [_episode(0, host, "/art/e0.mp3", audio=env.audio[0])]
    feed_url = host.put("/art/feed.xml", rss("Art Show", episodes, image=png), "application/rss+xml")
    response = env.http.post("/api/v1/podcasts", json={"feed_url": feed_url, "new_per_check": 1})
    assert response.status_code == 201, response.text
    pid = response.json()["id"]
    done = env.wait_downloads(pid, {"Episode 0"})
    folder = env.podcasts / next(f for f in env.audio_files() if f.startswith("Art Show")).split("/")[0]
    assert sorted(p.name for p in folder.iterdir() if p.suffix != ".mp3") == ["cover.png"]
    item_id = done["Episode 0"]["item_id"]

    def art_id() -> str | None:
        response = env.http.get(f"/api/v1/items/{item_id}")
        return response.json().get("art_id") if response.status_code == 200 else None

    wait_until(lambda: art_id() is not None, "the episode's cover art")
    first_art = art_id()
    art = env.http.get(f"/api/v1/art/{first_art}", params={"size": 64})
    assert art.status_code == 200 and art.headers["content-type"].startswith("image/")
    assert len(host.hits_of("/art/show.png")) == 1

    # A new image URL (a JPEG now) is fetched with the next download and replaces the PNG.
    jpeg = host.put("/art/show2.jpg", picture_bytes(30, 30, (30, 30, 200), "JPEG"), "image/jpeg")
    episodes.append(_episode(1, host, "/art/e1.mp3", audio=env.audio[1]))
    host.put("/art/feed.xml", rss("Art Show", episodes, image=jpeg), "application/rss+xml")
    assert env.http.post(f"/api/v1/podcasts/{pid}/refresh").status_code in (200, 202)
    env.wait_downloads(pid, {"Episode 1"})
    assert sorted(p.name for p in folder.iterdir() if p.suffix != ".mp3") == ["cover.jpg"]
    assert (folder / "cover.jpg").read_bytes() == host.resources["/art/show2.jpg"].body
    assert len(host.hits_of("/art/show.png")) == 1  # the old one is not fetched again
    wait_until(lambda: art_id() not in (None, first_art), "the episode's new cover art")  # the rescan's


@pytest.mark.parametrize("kind", ["noise", "missing"])
def test_a_broken_show_image_leaves_the_episode_downloaded_without_a_cover(env: Env, kind: str) -> None:
    host = env.host
    image = host.put(f"/noart-{kind}/show.png", bytes(range(256)) * 8, "image/png")
    if kind == "missing":
        host.resources.pop(f"/noart-{kind}/show.png")
    episodes = [_episode(0, host, f"/noart-{kind}/e0.mp3", audio=env.audio[0])]
    feed = rss(f"No Art {kind}", episodes, image=image)
    feed_url = host.put(f"/noart-{kind}/feed.xml", feed, "application/rss+xml")
    response = env.http.post("/api/v1/podcasts", json={"feed_url": feed_url, "new_per_check": 1})
    assert response.status_code == 201, response.text
    done = env.wait_downloads(response.json()["id"], {"Episode 0"})
    assert done["Episode 0"]["item_id"]
    folder = env.podcasts / next(f for f in env.audio_files() if f.startswith(f"No Art {kind}")).split("/")[0]
    assert [p.name for p in folder.iterdir() if p.suffix != ".mp3"] == []  # no cover, no temp file
