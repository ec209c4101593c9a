"""Nothing in a request path reaches the filesystem: traversal attempts get 400/404, never a file.

Requests are written byte for byte on a raw socket, because HTTP clients normalise "..", and the
point is to see what the server does with exactly what an attacker sends.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from revenge.library.ids import item_id
from tests.live import LiveServer, add_user, live_server
from tests.live import test_settings as make_settings
from tests.mediagen import write_audio

SECRET = b"TOP-SECRET-MARKER-0123456789"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str, Path, str]]:
    base = tmp_path_factory.mktemp("site")
    music = base / "library" / "music"
    write_audio(music / "song.flac", samples=4_410)
    # Files an attacker would like to read: next to the library, in the data dir, above both.
    (base / "secret.txt").write_bytes(SECRET)
    (base / "library" / "secret.txt").write_bytes(SECRET)
    data = base / "data"
    key = add_user(data, "u")
    (data / "secret.txt").write_bytes(SECRET)
    with live_server(make_settings(data, library=(music,))) as live:
        yield live, key, base, item_id("track", "song.flac")


def raw_get(live: LiveServer, target: str, key: str) -> tuple[int, bytes]:
    host, port = live.url.removeprefix("http://").split(":")
    request = (f"GET {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
               "Connection: close\r\n\r\n").encode("latin-1")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    response = b"".join(chunks)
    status = int(response.split(b" ", 2)[1])
    return status, response


def attack_targets(base: Path, good_id: str) -> list[str]:
    secret = str(base / "secret.txt")
    encoded_secret = secret.replace("/", "%2F")
    return [
        "/api/v1/stream/../../../secret.txt/direct",
        "/api/v1/stream/%2e%2e/direct",
        "/api/v1/stream/%2E%2E%2F%2E%2E%2Fsecret.txt/direct",
        "/api/v1/stream/..%2F..%2F..%2Fsecret.txt/direct",
        "/api/v1/stream/..%252F..%252Fsecret.txt/direct",  # double encoded
        "/api/v1/stream/..\\..\\secret.txt/direct",
        f"/api/v1/stream/{secret}/direct",
        f"/api/v1/stream/{encoded_secret}/direct",
        f"/api/v1/stream/{good_id}/../../../secret.txt",
        f"/api/v1/stream/{good_id}%2F..%2F..%2Fsecret.txt/direct",
        f"/api/v1/stream/{good_id}%00/direct",
        f"/api/v1/stream/{good_id}/direct/../../../../secret.txt",
        "/api/v1/stream/" + "a" * 5000 + "/direct",  # overlong id
        "/api/v1/stream/" + "a" * 17 + "/direct",
        "/api/v1/stream/%61%61%61%61%61%61%61%61%61%61%61%61%61%61%61%2e/direct",
        "/api/v1/items/..",
        "/api/v1/items/%2e%2e%2f%2e%2e%2fsecret.txt",
        f"/api/v1/items/{encoded_secret}",
        "/api/v1/items/../../secret.txt",
        "/../../../secret.txt",
        "/api/v1/stream/%2e%2e%2f%2e%2e%2fdata%2fsecret.txt/direct",
    ]


def test_traversal_attempts_never_leave_the_library(site: tuple[LiveServer, str, Path, str]) -> None:
    live, key, base, good_id = site
    for target in attack_targets(base, good_id):
        status, response = raw_get(live, target, key)
        assert status in (400, 404), (target, status)
        assert SECRET not in response, target
        assert b"fLaC" not in response, target  # not even the library's own file under another name


def test_the_real_id_still_serves_its_own_file(site: tuple[LiveServer, str, Path, str]) -> None:
    live, key, base, good_id = site
    status, response = raw_get(live, f"/api/v1/stream/{good_id}/direct?path=../secret.txt", key)
    assert status == 200
    body = response.split(b"\r\n\r\n", 1)[1]
    assert body == (base / "library" / "music" / "song.flac").read_bytes()


def test_bad_ids_name_the_field(site: tuple[LiveServer, str, Path, str]) -> None:
    live, key, _, good_id = site
    for target in ("/api/v1/stream/%2e%2e/direct", f"/api/v1/stream/{good_id.upper()}/direct",
                   "/api/v1/items/" + "z" * 300):
        status, response = raw_get(live, target, key)
        assert status == 400, target
        assert b'"field":"item_id"' in response, target
