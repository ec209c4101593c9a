"""Roles over real HTTP: the first user is the admin; listeners play but cannot see server paths,
start scans or manage users; the last admin cannot be demoted or removed; an old users.db migrates."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from revenge.security.keys import UserStore, hash_key
from tests.live import LiveServer, add_user, live_server, test_settings
from tests.mediagen import corrupt_file, write_audio


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str, str, Path]]:
    music = tmp_path_factory.mktemp("roles-music")
    write_audio(music / "tone.flac", seconds=1.0, tags={"title": "Tone"})
    corrupt_file(music / "broken.mp3")
    data = tmp_path_factory.mktemp("roles-data")
    admin = add_user(data, "boss")  # the first user: admin
    listener = add_user(data, "kid")
    with live_server(test_settings(data, library=(music,))) as live:
        yield live, admin, listener, music


def client(live: LiveServer, key: str) -> httpx.Client:
    return httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def test_me_says_who_and_what_role(server: tuple[LiveServer, str, str, Path]) -> None:
    live, admin, listener, _ = server
    with client(live, admin) as a, client(live, listener) as b:
        assert a.get("/api/v1/me").json() == {"id": "1", "name": "boss", "role": "admin"}
        assert b.get("/api/v1/me").json()["role"] == "listener"


Server = tuple[LiveServer, str, str, Path]


def test_only_admins_see_failures_with_paths_and_start_scans(server: Server) -> None:
    live, admin, listener, music = server
    with client(live, admin) as a, client(live, listener) as b:
        denied = b.get("/api/v1/library/failures")
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "forbidden"
        assert str(music) not in denied.text
        failures = a.get("/api/v1/library/failures").json()["failures"]
        assert [f["path"] for f in failures] == ["broken.mp3"]
        assert b.post("/api/v1/library/scan").status_code == 403
        started = a.post("/api/v1/library/scan")
        assert started.status_code in (202, 409), started.text
        assert "running" in started.json()["scan"]
        # Listeners still browse and play.
        assert [i["title"] for i in b.get("/api/v1/items").json()["items"]] == ["Tone"]


def test_admins_manage_users_and_listeners_cannot(server: tuple[LiveServer, str, str, Path]) -> None:
    live, admin, listener, _ = server
    with client(live, admin) as a, client(live, listener) as b:
        assert b.get("/api/v1/users").status_code == 403
        assert b.post("/api/v1/users", json={"name": "sneaky", "role": "admin"}).status_code == 403
        made = a.post("/api/v1/users", json={"name": "carol"})
        assert made.status_code == 201 and made.json()["user"]["role"] == "listener"
        carol_key = made.json()["api_key"]
        with client(live, carol_key) as c:
            assert c.get("/api/v1/me").json()["name"] == "carol"
            assert a.post("/api/v1/users", json={"name": "carol"}).status_code == 409
            assert a.post("/api/v1/users", json={"name": "bad name"}).status_code == 400
            root = a.post("/api/v1/users", json={"name": "x", "role": "root"})
            assert root.json()["error"]["field"] == "role"
            listed = {u["name"]: u for u in a.get("/api/v1/users").json()["users"]}
            assert listed["boss"]["role"] == "admin" and listed["carol"]["keys"] == 1
            # The last admin stays an admin until another one exists.
            last = a.put("/api/v1/users/boss/role", json={"role": "listener"})
            assert last.status_code == 409 and last.json()["error"]["code"] == "last_admin"
            assert a.delete("/api/v1/users/boss").status_code == 409
            assert a.put("/api/v1/users/carol/role", json={"role": "admin"}).json()["role"] == "admin"
            assert c.get("/api/v1/users").status_code == 200
            second = a.post("/api/v1/users/carol/keys")
            assert second.status_code == 201 and second.json()["api_key"] != carol_key
            assert a.delete("/api/v1/users/carol").status_code == 204
            assert c.get("/api/v1/me").status_code == 401  # its keys went with it
            assert a.delete("/api/v1/users/carol").status_code == 404
            assert a.post("/api/v1/users/nobody/keys").status_code == 404


def test_a_users_db_from_before_roles_makes_its_first_user_admin(tmp_path: Path) -> None:
    path = tmp_path / "users.db"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,
                            created_at INTEGER NOT NULL);
        CREATE TABLE api_keys (key_hash TEXT PRIMARY KEY, user_id INTEGER NOT NULL,
                               created_at INTEGER NOT NULL);
        INSERT INTO users(name, created_at) VALUES ('admin', 1), ('guest', 2);
    """)
    db.execute("INSERT INTO api_keys VALUES (?, 2, 2)", (hash_key("rv_guest"),))
    db.commit()
    db.close()
    users = UserStore(path)
    try:
        roles = {u.name: u.role for u, _ in users.list_users()}
        assert roles == {"admin": "admin", "guest": "listener"}
        guest = users.authenticate("rv_guest")
        assert guest is not None and not guest.is_admin
        assert users.add_user("third")[0].role == "listener"
    finally:
        users.close()
    again = UserStore(path)  # the migration runs once
    try:
        assert {u.name: u.role for u, _ in again.list_users()}["admin"] == "admin"
    finally:
        again.close()
