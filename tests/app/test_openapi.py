"""The OpenAPI document in the repository describes exactly the routes the app registers."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from roles.app.auth import PUBLIC_PATHS
from roles.app.server import OPENAPI_PATH

METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return json.loads(Path(OPENAPI_PATH).read_text(encoding="utf-8"))


def documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item
            if method in METHODS}


def registered(app: web.Application) -> set[tuple[str, str]]:
    # aiohttp adds a HEAD twin to every GET; it is implied by the GET and not documented apart
    return {(route.method, route.resource.canonical) for route in app.router.routes()
            if route.resource is not None and route.method != "HEAD"}


def test_every_registered_route_is_documented_and_vice_versa(admin_app, document):
    routes = registered(admin_app)
    assert len(routes) == 20  # /metrics is on METRICS_PORT, not here
    assert routes == documented(document)


def test_public_routes_are_exactly_the_ones_without_security(document):
    assert document["openapi"] == "3.1.0"
    assert document["security"] == [{"bearerAuth": []}]
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        **document["components"]["securitySchemes"]["bearerAuth"], "type": "http", "scheme": "bearer"}
    unsecured = {path for path, item in document["paths"].items()
                 for op in item.values() if op.get("security") == []}
    assert unsecured == PUBLIC_PATHS


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        _, *parts = node["$ref"].split("/")
        target: Any = document
        for part in parts:
            target = target[part]
        node = target
    return node


def test_operations_describe_their_parameters_and_errors(document):
    operation_ids = []
    for path, item in document["paths"].items():
        for method, op in item.items():
            operation_ids.append(op["operationId"])
            params = [_resolve(document, p) for p in op.get("parameters", [])]
            in_path = {p["name"] for p in params if p["in"] == "path"}
            assert in_path == set(re.findall(r"{(\w+)}", path)), (method, path)
            if path in PUBLIC_PATHS:
                continue
            codes = set(op["responses"])
            assert {"200", "401", "500"} <= codes, (method, path)
            if in_path or params or "requestBody" in op:
                assert "422" in codes, (method, path)
            if "requestBody" in op:
                assert "400" in codes, (method, path)
    assert len(operation_ids) == len(set(operation_ids))


def test_every_reference_resolves(document):
    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                _resolve(document, node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)


async def test_the_served_document_is_the_file(client, document):
    response = await client.get("/openapi.json")
    assert response.status == 200 and response.content_type == "application/json"
    assert await response.json() == document
