"""The web player: ``GET /`` (the page) and ``GET /static/{name}`` (its scripts, styles, hls.js).

The files ship inside the package (``revenge/web/static``). They are read once, when the routes are
built, into an immutable table keyed by their relative name: a request can only pick an entry of that
table, so nothing the client sends ever becomes a filesystem path. Each entry carries its ETag and a
gzip copy when that is smaller (hls.js is 600 KB raw, 190 KB gzipped: it matters on a phone).
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from types import MappingProxyType

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from revenge.web.errors import ApiError

STATIC_PACKAGE = "revenge.web"
STATIC_DIR = "static"
INDEX = "index.html"

# The page loads only its own files and talks only to its own origin. Media elements need blob: for
# Media Source Extensions (hls.js attaches a MediaSource through an object URL); hls.js runs with
# its worker disabled, so no blob: workers are allowed. Cover art is fetched with the API key and
# shown from blob: object URLs (an <img src> cannot send the key).
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' blob:",
    "media-src 'self' blob:",
    "connect-src 'self'",
    "manifest-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",  # stream URLs carry signed tokens: never leak them in Referer
    "x-frame-options": "DENY",
}
# Asset names are not fingerprinted, so caches must revalidate (cheap: ETag → 304).
CACHE_CONTROL = "no-cache"
COMPRESSIBLE = ("text/", "application/javascript", "application/json", "image/svg+xml")
GZIP_MIN_BYTES = 1024


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    gzipped: bytes | None
    media_type: str
    etag: str


def _media_type(name: str) -> str:
    guessed, _ = mimetypes.guess_type(name)
    media_type = guessed or "application/octet-stream"
    if media_type == "text/javascript":
        media_type = "application/javascript"
    if media_type.startswith("text/") or media_type == "application/javascript":
        media_type += "; charset=utf-8"
    return media_type


def make_asset(name: str, body: bytes) -> Asset:
    media_type = _media_type(name)
    gzipped: bytes | None = None
    if len(body) >= GZIP_MIN_BYTES and media_type.startswith(COMPRESSIBLE):
        packed = gzip.compress(body, compresslevel=9, mtime=0)
        gzipped = packed if len(packed) < len(body) else None
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return Asset(body, gzipped, media_type, etag)


def _walk(folder: Traversable, prefix: str = "") -> Iterator[tuple[str, bytes]]:
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            yield from _walk(entry, f"{prefix}{entry.name}/")
        elif entry.is_file():
            yield prefix + entry.name, entry.read_bytes()


def load_assets(folder: Traversable | None = None) -> Mapping[str, Asset]:
    """Every file under the static folder by its relative name ("app.js", "vendor/hls.min.js")."""
    root = folder if folder is not None else resources.files(STATIC_PACKAGE).joinpath(STATIC_DIR)
    return MappingProxyType({name: make_asset(name, body) for name, body in _walk(root)})


def _accepts_gzip(request: Request) -> bool:
    for part in request.headers.get("accept-encoding", "").split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "x-gzip"):
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def _etag_matches(request: Request, etag: str) -> bool:
    header = request.headers.get("if-none-match")
    if header is None:
        return False
    if header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


def asset_response(request: Request, asset: Asset) -> Response:
    headers = {**SECURITY_HEADERS, "cache-control": CACHE_CONTROL, "etag": asset.etag}
    if asset.gzipped is not None:
        headers["vary"] = "Accept-Encoding"
    if _etag_matches(request, asset.etag):
        return Response(status_code=304, headers=headers)
    body = asset.body
    if asset.gzipped is not None and _accepts_gzip(request):
        body = asset.gzipped
        headers["content-encoding"] = "gzip"
    return Response(body, headers=headers, media_type=asset.media_type)


class StaticSite:
    """The player's files, loaded once; endpoints only look names up in the table."""

    def __init__(self, assets: Mapping[str, Asset]) -> None:
        if INDEX not in assets:
            raise RuntimeError(f"the web player's {INDEX} is missing from the package")
        self.assets = assets

    async def index(self, request: Request) -> Response:
        return asset_response(request, self.assets[INDEX])

    async def static(self, request: Request) -> Response:
        name = str(request.path_params["name"])
        asset = self.assets.get(name)
        if asset is None:
            raise ApiError(404, "not_found", "no such static file", "name")
        return asset_response(request, asset)

    def routes(self) -> list[Route]:
        return [
            Route("/", self.index, methods=["GET"]),  # Starlette adds HEAD to GET routes
            Route("/static/{name:path}", self.static, methods=["GET"]),
        ]


routes = StaticSite(load_assets()).routes()
