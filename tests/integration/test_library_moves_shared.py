"""Instances sharing a library and a Redis store give every item the same id, moves included: each
instance has its own catalog, the identity map is shared through the store (``library.shared_ids``),
on a real redis-server."""

from __future__ import annotations

from pathlib import Path

import httpx
import redis

from revenge.library.catalog import Catalog
from revenge.library.ids import item_id
from revenge.library.scan import scan_library
from revenge.library.scan_status import ScanReport, ScanStatus
from revenge.library.shared_ids import PATHS_KEY, PLACES_KEY, SharedIds, content_key
from revenge.redis_scripts import key_guard_lua
from tests.live import add_user, live_server, test_settings
from tests.mediagen import write_audio
from tests.redisfix import (
    RedisServer,
    redis_server,  # noqa: F401  (fixture)
)


def scan(music: Path, catalog: Catalog, data: Path, url: str) -> ScanReport:
    return scan_library(test_settings(data, library=(music,), store=url), catalog, ScanStatus())


def ids_by_title(catalog: Catalog) -> dict[str, str]:
    return {i.title: i.id for i in catalog.list_items(limit=100)[0]}


def ids_by_place(catalog: Catalog, music: Path) -> dict[str, str]:
    items = catalog.list_items(limit=100)[0]
    return {Path(i.files[0].path).relative_to(music).as_posix(): i.id for i in items}


def new_catalog(data: Path) -> Catalog:
    data.mkdir(parents=True, exist_ok=True)
    return Catalog(data / "catalog.db")


def make_library(root: Path) -> Path:
    write_audio(root / "A" / "one.mp3", seconds=1.0, freq=440, tags={"title": "One"})
    write_audio(root / "A" / "two.flac", seconds=1.0, freq=550, tags={"title": "Two"})
    return root


def test_a_fresh_instance_after_a_move_gives_the_moved_item_the_id_the_others_kept(
        tmp_path: Path, redis_server: RedisServer) -> None:  # noqa: F811
    music = make_library(tmp_path / "music")
    a, b, c = new_catalog(tmp_path / "a"), new_catalog(tmp_path / "b"), new_catalog(tmp_path / "c")
    try:
        scan(music, a, tmp_path / "a", redis_server.url)
        before = ids_by_title(a)
        assert before["One"] == item_id("track", "A/one.mp3")
        (music / "B").mkdir()
        (music / "A" / "one.mp3").rename(music / "B" / "renamed.mp3")
        # C starts after the move, before any instance rescanned: the audio's published place is gone.
        scan(music, c, tmp_path / "c", redis_server.url)
        assert ids_by_title(c) == before
        report = scan(music, a, tmp_path / "a", redis_server.url)
        assert report.items_moved == 1 and ids_by_title(a) == before  # A kept the id (its catalog)
        # Other audio at the old path: a new item, whose id the moved one's path derivation holds.
        write_audio(music / "A" / "one.mp3", seconds=1.5, freq=990, tags={"title": "Newcomer"})
        scan(music, a, tmp_path / "a", redis_server.url)
        in_a = ids_by_title(a)
        assert in_a["One"] == before["One"] and in_a["Newcomer"] not in before.values()
        # B, a fresh instance with an empty catalog, scans the library as it is now.
        report = scan(music, b, tmp_path / "b", redis_server.url)
        assert report.items_added == 3
        assert ids_by_title(b) == in_a
        scan(music, c, tmp_path / "c", redis_server.url)
        assert ids_by_title(c) == in_a
    finally:
        for catalog in (a, b, c):
            catalog.close()


def test_a_copy_is_not_taken_for_a_move(tmp_path: Path, redis_server: RedisServer) -> None:  # noqa: F811
    music = make_library(tmp_path / "music")
    a, b = new_catalog(tmp_path / "a"), new_catalog(tmp_path / "b")
    try:
        scan(music, a, tmp_path / "a", redis_server.url)
        (music / "0").mkdir()  # walked before A/: B meets the copy before the original
        (music / "0" / "copy.mp3").write_bytes((music / "A" / "one.mp3").read_bytes())
        scan(music, b, tmp_path / "b", redis_server.url)
        scan(music, a, tmp_path / "a", redis_server.url)
        want = {rel: item_id("track", rel) for rel in ("A/one.mp3", "A/two.flac", "0/copy.mp3")}
        assert ids_by_place(b, music) == want and ids_by_place(a, music) == want
    finally:
        a.close()
        b.close()


def test_the_publish_script_declares_its_keys(tmp_path: Path, redis_server: RedisServer) -> None:  # noqa: F811
    """Under the key guard (a script touching an undeclared key fails, as on Dragonfly), and a moved
    item's old place is freed."""
    guard = key_guard_lua({"HGET": 1, "HSET": 1, "HDEL": 1, "SADD": 1})
    shared = SharedIds(redis_server.url, 2.0, [(tmp_path, "track")], key_guard=guard)
    shared.publish("id1", "track", "A/one.mp3", "c1")
    shared.flush()
    shared.publish("id1", "track", "B/moved.mp3", "c1")
    shared.close()
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        assert client.hgetall(PATHS_KEY) == {"track:B/moved.mp3": "id1"}
        assert client.hgetall(PLACES_KEY) == {"id1": "track:B/moved.mp3"}
    finally:
        client.close()
    assert shared.published == 2 and not shared.down


def test_a_file_replaced_in_place_and_reprobed_on_request_publishes_its_new_audio(
        tmp_path: Path, redis_server: RedisServer) -> None:  # noqa: F811
    """Instance A re-probes a file replaced in place when a player asks for it (no scan, no watcher)
    and publishes the new audio: after the file moves, instance B, scanning with an empty catalog, finds
    the moved audio's id in the shared map (without the publish it derived a new id from the path)."""
    music = make_library(tmp_path / "music")
    data_a = tmp_path / "a"
    key = add_user(data_a, "alice")
    settings = test_settings(data_a, library=(music,), store=redis_server.url, watch=False)
    one = item_id("track", "A/one.mp3")
    with live_server(settings) as live, httpx.Client(base_url=live.url, timeout=60,
                                                     headers={"Authorization": f"Bearer {key}"}) as client:
        write_audio(music / "A" / "one.mp3", seconds=2.0, freq=990, tags={"title": "One"})  # in place
        response = client.get(f"/api/v1/stream/{one}/aac-128/index.m3u8")
        assert response.status_code == 200, response.text
    a = Catalog(data_a / "catalog.db")
    try:
        refreshed = a.get_item(one)
        assert refreshed is not None and refreshed.duration_ms > 1500  # the new audio, re-probed
        with a.writing() as db:
            (new_content,) = db.execute("SELECT content FROM items WHERE id = ?", (one,)).fetchone()
    finally:
        a.close()
    client_r = redis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        assert one in client_r.smembers(content_key("track", new_content))
    finally:
        client_r.close()
    (music / "B").mkdir()
    (music / "A" / "one.mp3").rename(music / "B" / "renamed.mp3")
    b = new_catalog(tmp_path / "b")
    try:
        report = scan(music, b, tmp_path / "b", redis_server.url)
        assert report.items_moved == 1
        assert ids_by_place(b, music)["B/renamed.mp3"] == one
        with b.writing() as db:
            assert db.execute("SELECT content FROM items WHERE id = ?", (one,)).fetchone() == (new_content,)
    finally:
        b.close()
