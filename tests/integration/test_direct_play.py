"""Direct play over real HTTP: the original bytes, HTTP Range, conditional requests, auth, errors."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import httpx
import pytest

from revenge.library.ids import item_id
from tests.libgen import Expected, Library, build_library, keyed_client, serve_library
from tests.live import LiveServer, add_user, live_server
from tests.live import test_settings as make_settings
from tests.mediagen import write_audio

LONG = "Long/long.wav"  # several MB: many chunks, ranges across chunk boundaries


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> Library:
    library = build_library(tmp_path_factory.mktemp("library"))
    g = write_audio(library.music / LONG, seconds=20.0, rate=44_100, channels=2, kind="noise")
    library.items[LONG] = Expected("track", "long", (g,))
    return library


@pytest.fixture(scope="module")
def server(lib: Library, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    with serve_library(lib, tmp_path_factory.mktemp("data")) as served:
        yield served


@pytest.fixture(scope="module")
def client(server: tuple[LiveServer, str]) -> Iterator[httpx.Client]:
    with keyed_client(*server) as c:
        yield c


def url(rel: str, item_type: str = "track") -> str:
    return f"/api/v1/stream/{item_id(item_type, rel)}/direct"  # type: ignore[arg-type]


FLAC = "Artist A/Album X/01 Alpha.flac"


@pytest.mark.parametrize(("rel", "item_type", "content_type"), [
    (FLAC, "track", "audio/flac"),
    ("Artist A/Album X/02 Beta.mp3", "track", "audio/mpeg"),
    ("Artist B/Gamma.m4a", "track", "audio/mp4"),
    ("Artist B/Delta.opus", "track", "audio/ogg"),
    ("Untagged/raw recording.wav", "track", "audio/wav"),
    ("Show One/ep1.mp3", "episode", "audio/mpeg"),
    ("Other Author/Chaptered.m4b", "audiobook", "audio/mp4"),
])
def test_whole_file_is_the_original_bytes(client: httpx.Client, lib: Library, rel: str, item_type: str,
                                          content_type: str) -> None:
    root = {"track": lib.music, "episode": lib.podcasts, "audiobook": lib.audiobooks}[item_type]
    data = (root / rel).read_bytes()
    response = client.get(url(rel, item_type))
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-length"] == str(len(data))
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-type"] == content_type
    assert response.headers["etag"].startswith('"') and response.headers["last-modified"].endswith("GMT")


def range_cases(size: int) -> list[tuple[str, int, int]]:
    """(Range header, expected start, expected stop) for satisfiable single ranges."""
    return [
        ("bytes=0-99", 0, 100),
        ("bytes=0-0", 0, 1),
        (f"bytes={size - 1}-{size - 1}", size - 1, size),
        ("bytes=1000-", 1000, size),
        ("bytes=-500", size - 500, size),
        (f"bytes=-{size + 10}", 0, size),  # longer suffix than the file: all of it
        (f"bytes={size - 10}-{size + 1000}", size - 10, size),  # end past the file: clamped
        ("bytes=262000-262300", 262000, 262301),  # across the 256 KiB read chunk
        (f"bytes=12345-{size // 2}", 12345, size // 2 + 1),
        ("BYTES = 5-9", 5, 10),
    ]


@pytest.mark.parametrize("rel", [FLAC, LONG])
def test_range_matrix_is_byte_exact(client: httpx.Client, lib: Library, rel: str) -> None:
    data = (lib.music / rel).read_bytes()
    size = len(data)
    for header, start, stop in range_cases(size):
        if stop > size or start >= size:
            continue
        response = client.get(url(rel), headers={"Range": header})
        assert response.status_code == 206, header
        assert response.content == data[start:stop], header
        assert response.headers["content-range"] == f"bytes {start}-{stop - 1}/{size}", header
        assert response.headers["content-length"] == str(stop - start), header
        assert response.headers["content-type"] in ("audio/flac", "audio/wav")


def test_unsatisfiable_ranges_are_416_with_the_size(client: httpx.Client, lib: Library) -> None:
    size = (lib.music / FLAC).stat().st_size
    for header in (f"bytes={size}-", f"bytes={size + 5}-{size + 10}", "bytes=-0"):
        response = client.get(url(FLAC), headers={"Range": header})
        assert response.status_code == 416, header
        assert response.headers["content-range"] == f"bytes */{size}"
        assert response.json()["error"]["code"] == "range_not_satisfiable"


def test_ranges_to_ignore_get_the_whole_file(client: httpx.Client, lib: Library) -> None:
    data = (lib.music / FLAC).read_bytes()
    ignored = ("bytes=abc", "items=0-10", "bytes=50-10", "bytes=0-1,5-6", "bytes=-", "bytes=+1-2", "bytes")
    for header in ignored:
        response = client.get(url(FLAC), headers={"Range": header})
        assert response.status_code == 200, header
        assert response.content == data, header


def test_if_range_honours_only_a_current_validator(client: httpx.Client, lib: Library) -> None:
    data = (lib.music / FLAC).read_bytes()
    full = client.get(url(FLAC))
    etag, modified = full.headers["etag"], full.headers["last-modified"]
    ok = {"Range": "bytes=10-19"}
    for validator in (etag, modified):
        response = client.get(url(FLAC), headers={**ok, "If-Range": validator})
        assert response.status_code == 206 and response.content == data[10:20], validator
    stale_date = formatdate(time.time() - 86_400 * 400, usegmt=True)
    for validator in ('"stale"', "W/" + etag, stale_date, "garbage"):
        response = client.get(url(FLAC), headers={**ok, "If-Range": validator})
        assert response.status_code == 200 and response.content == data, validator


def test_if_none_match_and_if_modified_since_answer_304(client: httpx.Client) -> None:
    full = client.get(url(FLAC))
    etag, modified = full.headers["etag"], full.headers["last-modified"]
    for headers in ({"If-None-Match": etag}, {"If-None-Match": f'"other", {etag}'}, {"If-None-Match": "*"},
                    {"If-None-Match": "W/" + etag}, {"If-Modified-Since": modified},
                    {"If-None-Match": etag, "Range": "bytes=0-5"}):
        response = client.get(url(FLAC), headers=headers)
        assert response.status_code == 304, headers
        assert response.content == b"" and response.headers["etag"] == etag
    for headers in ({"If-None-Match": '"other"'},
                    {"If-Modified-Since": formatdate(time.time() - 86_400 * 400, usegmt=True)},
                    {"If-None-Match": '"other"', "If-Modified-Since": modified}):  # INM wins over IMS
        assert client.get(url(FLAC), headers=headers).status_code == 200, headers


def test_head_gives_the_headers_of_get_without_a_body(client: httpx.Client, lib: Library) -> None:
    size = (lib.music / FLAC).stat().st_size
    head = client.head(url(FLAC))
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(size) and head.headers["content-type"] == "audio/flac"
    ranged = client.head(url(FLAC), headers={"Range": "bytes=-10"})
    assert ranged.status_code == 206 and ranged.content == b""
    assert ranged.headers["content-range"] == f"bytes {size - 10}-{size - 1}/{size}"


def test_bearer_authorises_media_and_the_old_query_key_does_not(server: tuple[LiveServer, str],
                                                                lib: Library) -> None:
    live, key = server
    data = (lib.music / FLAC).read_bytes()
    assert httpx.get(live.url + url(FLAC), headers={"Authorization": f"Bearer {key}"}).content == data
    # ``?api_key=`` was a stopgap before signed ``?t=`` tokens; a valid key in the query opens nothing.
    for params, headers in (({}, {}), ({"api_key": key}, {}), ({}, {"Authorization": "Bearer rv_nope"}),
                            ({"api_key": key}, {"Authorization": "Bearer rv_nope"})):
        response = httpx.get(live.url + url(FLAC), params=params, headers=headers)
        assert response.status_code == 401, (params, headers)
        assert response.json()["error"]["code"] == "unauthorized"


def test_a_multi_file_book_has_no_single_original(client: httpx.Client) -> None:
    response = client.get(url("Author Name/The Great Book", "audiobook"))
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "multi_file_item" and "HLS" in error["message"]


def test_unknown_and_malformed_ids(client: httpx.Client) -> None:
    assert client.get("/api/v1/stream/" + "b" * 16 + "/direct").status_code == 404
    response = client.get("/api/v1/stream/NOTANID/direct")
    assert response.status_code == 400 and response.json()["error"]["field"] == "item_id"


def test_a_file_deleted_after_the_scan_is_404(tmp_path: Path) -> None:
    music = tmp_path / "music"
    write_audio(music / "gone.flac", samples=4_410)
    key = add_user(tmp_path / "data", "u")
    with live_server(make_settings(tmp_path / "data", library=(music,))) as live:
        direct = live.url + url("gone.flac")
        auth = {"Authorization": f"Bearer {key}"}
        assert httpx.get(direct, headers=auth).status_code == 200
        (music / "gone.flac").unlink()
        response = httpx.get(direct, headers=auth)
        assert response.status_code == 404 and response.json()["error"]["code"] == "file_missing"


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_clients_that_hang_up_mid_file_leak_nothing(server: tuple[LiveServer, str], client: httpx.Client,
                                                    lib: Library) -> None:
    live, key = server
    host, port = live.url.removeprefix("http://").split(":")
    assert client.get(url(LONG)).status_code == 200  # warm: the server's own fds are all open now
    before = _open_fds()
    for _ in range(10):
        with socket.create_connection((host, int(port))) as sock:
            request = f"GET {url(LONG)} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\r\n"
            sock.sendall(request.encode())
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    deadline = time.monotonic() + 10
    while _open_fds() > before + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _open_fds() <= before + 1
    data = (lib.music / LONG).read_bytes()
    assert client.get(url(LONG), headers={"Range": "bytes=-100"}).content == data[-100:]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_huge_range_numbers_are_answered_and_hold_no_file(client: httpx.Client, lib: Library) -> None:
    huge = "9" * 4301  # more digits than int() converts
    data = (lib.music / FLAC).read_bytes()
    assert client.get(url(FLAC)).status_code == 200  # warm
    before = _open_fds()
    for i in range(300):
        header = (f"bytes=0-{huge}", f"bytes={huge}-", f"bytes=-{huge}")[i % 3]
        response = client.get(url(FLAC), headers={"Range": header})
        if i % 3 == 1:
            assert response.status_code == 416
            assert response.headers["content-range"] == f"bytes */{len(data)}"
        else:
            assert response.status_code == 206 and response.content == data
    deadline = time.monotonic() + 10
    while _open_fds() > before + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _open_fds() <= before + 1
    assert client.get(url(FLAC), headers={"Range": "bytes=-100"}).content == data[-100:]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_an_error_while_planning_closes_the_file(client: httpx.Client, lib: Library,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import revenge.web.routes_direct as routes_direct

    def broken(**_: object) -> None:
        raise RuntimeError("a fault the parser no longer has")

    assert client.get(url(FLAC)).status_code == 200  # warm
    before = _open_fds()
    monkeypatch.setattr(routes_direct, "plan_response", broken)
    for _ in range(20):
        # A fresh connection each time: uvicorn closes the connection after an unhandled error.
        assert httpx.get(f"{client.base_url}{url(FLAC)}", headers=client.headers).status_code == 500
    monkeypatch.undo()
    assert _open_fds() <= before + 1
    assert client.get(url(FLAC)).status_code == 200
