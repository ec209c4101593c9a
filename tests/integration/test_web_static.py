"""The web player's files over real HTTP: the page and its assets from the package, the CSP and security
headers, ETag revalidation, gzip, and no way from a request path to any other file."""

from __future__ import annotations

import gzip
import hashlib
import socket
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import httpx
import pytest

from revenge.web import routes_static
from tests.live import LiveServer, live_server
from tests.live import test_settings as make_settings

STATIC = resources.files("revenge.web").joinpath("static")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(make_settings(tmp_path_factory.mktemp("data"))) as server:
        yield server


@pytest.fixture(scope="module")
def client(live: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=30) as c:
        yield c


def test_page_is_served_with_a_self_only_csp(client: httpx.Client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.content == STATIC.joinpath("index.html").read_bytes()
    directives = response.headers["content-security-policy"].split("; ")
    csp = dict(d.split(" ", 1) for d in directives)
    assert csp["default-src"] == "'none'"
    assert csp["script-src"] == "'self'"  # no inline scripts, no eval, no CDN
    assert csp["connect-src"] == "'self'"
    assert csp["media-src"] == "'self' blob:"  # MSE needs blob: object URLs
    assert csp["img-src"] == "'self' blob:"  # cover art, fetched with the API key
    assert csp["frame-ancestors"] == "'none'"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


def test_page_references_only_files_the_server_has(client: httpx.Client) -> None:
    page = client.get("/").text
    for ref in ("/static/app.js", "/static/style.css", "/static/vendor/hls.min.js", "/static/icon.svg"):
        assert f'"{ref}"' in page
        assert client.get(ref).status_code == 200, ref
    assert "<script>" not in page and " on" + "click=" not in page  # the CSP would block inline code


@pytest.mark.parametrize(("name", "media_type"), [
    ("app.js", "application/javascript; charset=utf-8"),
    ("style.css", "text/css; charset=utf-8"),
    ("icon.svg", "image/svg+xml"),
    ("vendor/hls.min.js", "application/javascript; charset=utf-8"),
])
def test_assets_have_their_media_type_and_bytes(client: httpx.Client, name: str, media_type: str) -> None:
    response = client.get(f"/static/{name}", headers={"accept-encoding": "identity"})
    assert response.status_code == 200
    assert response.headers["content-type"] == media_type
    assert "content-encoding" not in response.headers
    assert response.content == STATIC.joinpath(name).read_bytes()


def test_hlsjs_is_the_vendored_release_with_its_licence() -> None:
    vendor = STATIC.joinpath("vendor")
    assert "Copyright" in vendor.joinpath("hls.js.LICENSE").read_text()
    version = vendor.joinpath("hls.js.VERSION").read_text().split()
    assert version[0] == "hls.js"
    # The recorded checksum is the file's: nobody edited the minified release by hand.
    assert version[2].strip("()") == hashlib.sha256(vendor.joinpath("hls.min.js").read_bytes()).hexdigest()


def test_gzip_when_accepted_and_smaller(client: httpx.Client) -> None:
    raw = client.get("/static/vendor/hls.min.js", headers={"accept-encoding": "identity"})
    packed = client.get("/static/vendor/hls.min.js", headers={"accept-encoding": "br, gzip;q=0.8"})
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.headers["vary"] == "Accept-Encoding"
    assert int(packed.headers["content-length"]) < len(raw.content) // 2
    assert packed.content == raw.content  # httpx decodes: the same bytes arrive
    refused = client.get("/static/vendor/hls.min.js", headers={"accept-encoding": "gzip;q=0"})
    assert "content-encoding" not in refused.headers


def test_etag_revalidation_answers_304(client: httpx.Client) -> None:
    first = client.get("/static/app.js")
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "no-cache"
    again = client.get("/static/app.js", headers={"if-none-match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    other = client.get("/static/app.js", headers={"if-none-match": '"something-else"'})
    assert other.status_code == 200


def test_head_has_headers_without_body(client: httpx.Client) -> None:
    response = client.head("/static/style.css", headers={"accept-encoding": "identity"})
    assert response.status_code == 200
    assert response.content == b""
    assert int(response.headers["content-length"]) == len(STATIC.joinpath("style.css").read_bytes())


def test_unknown_static_file_is_a_json_404(client: httpx.Client) -> None:
    response = client.get("/static/nope.js")
    assert response.status_code == 404
    assert response.json()["error"] == {"code": "not_found", "message": "no such static file",
                                        "field": "name"}


def raw_get(live: LiveServer, target: str) -> tuple[int, bytes]:
    """Byte for byte on a socket: HTTP clients would normalise the ".." away."""
    host, port = live.url.removeprefix("http://").split(":")
    request = f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode("latin-1")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    response = b"".join(chunks)
    return int(response.split(b" ", 2)[1]), response


@pytest.mark.parametrize("target", [
    "/static/../routes_static.py",
    "/static/../../app.py",
    "/static/%2e%2e/routes_static.py",
    "/static/vendor/..%2F..%2Froutes_static.py",
    "/static/..%252Froutes_static.py",
    "/static//etc/passwd",
    "/static/%2Fetc%2Fpasswd",
    "/static/vendor/../../../../../../etc/passwd",
    "/static/.%2e/.%2e/config.py",
])
def test_no_path_leads_outside_the_asset_table(live: LiveServer, target: str) -> None:
    status, response = raw_get(live, target)
    assert status in (400, 404)
    assert b"def " not in response and b"root:" not in response


def test_load_assets_walks_subfolders_and_skips_dotfiles(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<!doctype html>")
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "sub" / "deeper" / "x.js").write_text("let x = 1;\n" * 400)
    (tmp_path / ".hidden").write_text("no")
    assets = routes_static.load_assets(tmp_path)  # type: ignore[arg-type]
    assert sorted(assets) == ["index.html", "sub/deeper/x.js"]
    js = assets["sub/deeper/x.js"]
    assert js.gzipped is not None and gzip.decompress(js.gzipped) == js.body
    assert assets["index.html"].gzipped is None  # under the size where gzip pays
    with pytest.raises(TypeError):
        assets["new"] = js  # type: ignore[index]
