"""``GET /openapi.json``: the HTTP contract (``revenge/openapi.json``), served as shipped.

The document is read and parsed once, when the route is built: a broken file fails at start-up, not on
the first request, and every request answers the same immutable bytes.
"""

from __future__ import annotations

import hashlib
from importlib import resources

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

SPEC_PACKAGE = "revenge"
SPEC_NAME = "openapi.json"
MEDIA_TYPE = "application/json"


def load_spec_bytes() -> bytes:
    """The contract as shipped in the package, checked to be a JSON object with ``openapi`` and ``paths``."""
    body = resources.files(SPEC_PACKAGE).joinpath(SPEC_NAME).read_bytes()
    parsed = orjson.loads(body)
    if not isinstance(parsed, dict) or "openapi" not in parsed or "paths" not in parsed:
        raise RuntimeError(f"{SPEC_PACKAGE}/{SPEC_NAME} is not an OpenAPI document")
    return body


class OpenApiDocument:
    """The contract's bytes and their entity tag; the endpoint only answers them."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'

    async def endpoint(self, request: Request) -> Response:
        headers = {"cache-control": "no-cache", "etag": self.etag}
        if_none_match = request.headers.get("if-none-match", "")
        if any(tag.strip().removeprefix("W/") in (self.etag, "*") for tag in if_none_match.split(",")):
            return Response(status_code=304, headers=headers)
        return Response(self.body, media_type=MEDIA_TYPE, headers=headers)

    def routes(self) -> list[Route]:
        return [Route("/openapi.json", self.endpoint, methods=["GET"])]


routes = OpenApiDocument(load_spec_bytes()).routes()
