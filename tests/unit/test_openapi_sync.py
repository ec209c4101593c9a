"""The contract and the app agree: every route of ``create_app`` is in ``revenge/openapi.json`` and every
operation of the spec is a route; the spec is valid OpenAPI; errors, auth and parameters are described
the same way everywhere; ``GET /openapi.json`` serves the file.

Compared: (path template, method) pairs. Ignored on both sides: HEAD (Starlette adds it to every GET
route, so the table cannot tell an explicit HEAD from an implicit one) and ``Mount``s (static file
trees, none at the moment: the player's files are plain routes and are in the spec).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from revenge.app import create_app
from tests.live import test_settings

SPEC: dict[str, Any] = json.loads(resources.files("revenge").joinpath("openapi.json").read_bytes())
SPEC_METHODS = ("get", "put", "post", "delete", "options", "patch", "trace")  # "head": see the docstring
_CONVERTER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*):[A-Za-z_]+\}")
_PARAM_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

Operation = tuple[str, str]  # (path template as OpenAPI writes it, METHOD)


def openapi_path(starlette_path: str) -> str:
    """``/static/{name:path}`` → ``/static/{name}``: OpenAPI templates carry no converters."""
    return _CONVERTER_RE.sub(r"{\1}", starlette_path)


def route_operations(routes: Iterable[BaseRoute]) -> set[Operation]:
    found: set[Operation] = set()
    for route in routes:
        if isinstance(route, Mount):
            continue
        if not isinstance(route, Route):
            raise AssertionError(f"a route of a kind the sync test does not know: {route!r}")
        for method in route.methods or ():
            if method != "HEAD":
                found.add((openapi_path(route.path), method))
    return found


def spec_operations(spec: dict[str, Any]) -> set[Operation]:
    return {(path, method.upper()) for path, item in spec["paths"].items() for method in item
            if method in SPEC_METHODS}


def each_operation(spec: dict[str, Any]) -> Iterable[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in (*SPEC_METHODS, "head"):
                yield path, method, operation


def resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


@pytest.fixture(scope="module")
def app_routes(tmp_path_factory: pytest.TempPathFactory) -> list[BaseRoute]:
    return list(create_app(test_settings(tmp_path_factory.mktemp("data"))).routes)


def test_every_route_is_in_the_spec_and_every_operation_is_a_route(app_routes: list[BaseRoute]) -> None:
    routes = route_operations(app_routes)
    documented = spec_operations(SPEC)
    undocumented = sorted(routes - documented)
    unrouted = sorted(documented - routes)
    assert not undocumented and not unrouted, (
        f"routes missing from revenge/openapi.json: {undocumented}; "
        f"operations in revenge/openapi.json that no route serves: {unrouted}"
    )


def test_the_comparison_sees_a_missing_route_and_a_missing_operation(app_routes: list[BaseRoute]) -> None:
    async def endpoint(request: object) -> Response:
        return Response()

    extra = Route("/api/v1/undocumented/{thing_id:int}", endpoint, methods=["PATCH"])
    assert route_operations([*app_routes, extra]) - spec_operations(SPEC) == {
        ("/api/v1/undocumented/{thing_id}", "PATCH")}
    fewer = [r for r in app_routes if getattr(r, "path", None) != "/api/v1/items"]
    assert spec_operations(SPEC) - route_operations(fewer) == {("/api/v1/items", "GET")}


def test_the_spec_is_valid_openapi_3_1() -> None:
    assert SPEC["openapi"].startswith("3.1.")
    schemathesis.openapi.from_dict(json.loads(json.dumps(SPEC))).validate()  # the OAS 3.1 meta-schema


def test_operation_ids_are_unique() -> None:
    ids = [op["operationId"] for _, _, op in each_operation(SPEC)]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def test_every_path_parameter_is_declared_and_required() -> None:
    for path, method, operation in each_operation(SPEC):
        declared = {p["name"]: p for p in (resolve(SPEC, x) for x in operation.get("parameters", []))
                    if p["in"] == "path"}
        assert set(declared) == set(_PARAM_RE.findall(path)), (method, path)
        assert all(p["required"] for p in declared.values()), (method, path)


def test_api_routes_need_the_bearer_key_and_stream_routes_also_take_the_token() -> None:
    for path, method, operation in each_operation(SPEC):
        security = operation["security"]
        if method == "options" or not path.startswith("/api/"):
            assert security == [], (method, path)  # CORS preflights and public routes
        elif path.startswith("/api/v1/stream/") or path == "/api/v1/events" or (  # events: its own ?t=
                path.startswith("/api/v1/albums/{album_id}/") and path.endswith((".m3u8", ".mp4", ".m4s"))):
            assert security == [{"streamToken": []}, {"bearerAuth": []}], (method, path)  # gapless albums too
        else:
            assert security == [{"bearerAuth": []}], (method, path)
        if security:
            assert "401" in operation["responses"], (method, path)


def test_every_error_answer_has_the_error_body() -> None:
    error_schemas = ("#/components/schemas/Error", "#/components/schemas/NoCompatibleStream",
                     "#/components/schemas/QueueConflict")
    for path, method, operation in each_operation(SPEC):
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")) and not (path == "/healthz" and status == "503"):
                content = resolve(SPEC, response)["content"]
                assert list(content) == ["application/json"], (method, path, status)
                assert content["application/json"]["schema"]["$ref"] in error_schemas, (method, path, status)


def test_every_503_and_429_says_when_to_retry() -> None:
    for path, method, operation in each_operation(SPEC):
        for status in ("429", "503"):
            if status in operation["responses"]:
                headers = resolve(SPEC, operation["responses"][status])["headers"]
                assert headers["Retry-After"]["required"] is True, (method, path, status)


def test_the_error_schema_is_the_one_errors_py_writes() -> None:
    detail = SPEC["components"]["schemas"]["ErrorDetail"]
    assert set(detail["properties"]) == {"code", "message", "field"}
    assert detail["required"] == ["code", "message"]
    assert detail["additionalProperties"] is False


async def test_get_openapi_json_serves_the_packaged_file(tmp_path: Path) -> None:
    app = create_app(test_settings(tmp_path))  # this route needs no lifespan state
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        response = await client.get("/openapi.json")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.json() == SPEC
        again = await client.get("/openapi.json", headers={"If-None-Match": response.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
