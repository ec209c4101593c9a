"""Playlist CRUD through both real clients; unknown or foreign ids are 70."""

from __future__ import annotations

import libopensonic
import libsonic

from tests.subsonic.conftest import Rest
from tests.subsonic.schemas import validate


def test_playlist_crud_with_opensonic_and_py_sonic(rest: Rest) -> None:
    found = validate("search3", rest.get("search3", query="").json())["song"]
    songs = sorted(found, key=lambda s: s["title"])
    dawn, noon, quiet = (s["id"] for s in songs)
    conn = libopensonic.Connection("http://127.0.0.1", port=rest.port, api_key=rest.key)
    try:
        assert conn.create_playlist(name="Morning", song_ids=[dawn, noon])
        (created,) = conn.get_playlists()
        assert created.name == "Morning" and created.song_count == 2
        assert [e.id for e in conn.get_playlist(created.id).entry or []] == [dawn, noon]
        assert conn.update_playlist(created.id, name="Mornings", song_ids_to_add=[quiet],
                                    song_indices_to_remove=[0])
        got = conn.get_playlist(created.id)
        assert got.name == "Mornings" and [e.id for e in got.entry or []] == [noon, quiet]
        assert got.song_count == 2 and got.owner == "ann"
        assert [p.name for p in conn.get_playlists()] == ["Mornings"]
    finally:
        conn.cleanup()
    validate("getPlaylists", rest.get("getPlaylists").json())
    validate("getPlaylist", rest.get("getPlaylist", id=created.id).json())
    classic = libsonic.Connection("http://127.0.0.1", "ann", rest.app_password, port=rest.port,
                                  serverPath="/rest")
    assert classic.getPlaylist(created.id)["playlist"]["name"] == "Mornings"
    assert classic.createPlaylist(playlistId=created.id, songIds=[quiet, dawn])
    assert [e["id"] for e in classic.getPlaylist(created.id)["playlist"]["entry"]] == [quiet, dawn]
    other = rest.get("getPlaylist", id=created.id, apiKey=rest.admin_key).json()["subsonic-response"]
    assert other["error"]["code"] == 70  # boss does not see ann's playlist
    for params in ({"id": "../x"}, {"id": "pl-0000000000000000"}):
        assert rest.get("getPlaylist", **params).json()["subsonic-response"]["error"]["code"] == 70
    assert rest.get("createPlaylist", name="x", songId="zzz").json()["subsonic-response"]["error"][
        "code"] == 70
    assert classic.deletePlaylist(created.id)
    assert validate("getPlaylists", rest.get("getPlaylists").json()) == {"playlist": []}


def test_a_public_playlist_is_read_only_for_the_other_users(rest: Rest) -> None:
    found = validate("search3", rest.get("search3", query="").json())["song"]
    songs = sorted(found, key=lambda s: s["title"])
    dawn, noon = songs[0]["id"], songs[1]["id"]
    ann = libopensonic.Connection("http://127.0.0.1", port=rest.port, api_key=rest.key)
    boss = libopensonic.Connection("http://127.0.0.1", port=rest.port, api_key=rest.admin_key)
    try:
        assert ann.create_playlist(name="Shared mix", song_ids=[dawn, noon])
        (mix,) = [p for p in ann.get_playlists() if p.name == "Shared mix"]
        assert all(p.id != mix.id for p in boss.get_playlists())
        # Neither client library sends updatePlaylist's ``public``: asked for by hand.
        assert rest.json("updatePlaylist", playlistId=mix.id, public="true")["status"] == "ok"
        (seen,) = [p for p in boss.get_playlists() if p.id == mix.id]
        assert seen.owner == "ann" and seen.public is True and seen.song_count == 2
        got = validate("getPlaylist", rest.get("getPlaylist", id=mix.id, apiKey=rest.admin_key).json())
        assert got["owner"] == "ann" and got["public"] is True
        assert [e["id"] for e in got["entry"]] == [dawn, noon]
        listed = validate("getPlaylists", rest.get("getPlaylists", apiKey=rest.admin_key).json())["playlist"]
        assert [(p["name"], p["owner"]) for p in listed] == [("Shared mix", "ann")]
        for endpoint, params in (("updatePlaylist", {"playlistId": mix.id, "name": "Mine now"}),
                                 ("updatePlaylist", {"playlistId": mix.id, "public": "false"}),
                                 ("createPlaylist", {"playlistId": mix.id, "songId": dawn}),
                                 ("deletePlaylist", {"id": mix.id})):
            answer = rest.get(endpoint, **params, apiKey=rest.admin_key).json()["subsonic-response"]
            assert answer["error"]["code"] == 50, (endpoint, answer)
        kept = ann.get_playlist(mix.id)
        assert kept.name == "Shared mix" and [e.id for e in kept.entry or []] == [dawn, noon]
        assert rest.json("updatePlaylist", playlistId=mix.id, public="false")["status"] == "ok"
        assert all(p.id != mix.id for p in boss.get_playlists())
        hidden = rest.get("getPlaylist", id=mix.id, apiKey=rest.admin_key).json()["subsonic-response"]
        assert hidden["error"]["code"] == 70
        assert rest.get("deletePlaylist", id=mix.id, apiKey=rest.admin_key).json()[
            "subsonic-response"]["error"]["code"] == 70  # private again: not there for boss
    finally:
        ann.delete_playlist(mix.id)
        ann.cleanup()
        boss.cleanup()
