"""GET /openapi.json: a valid OpenAPI 3.0 document generated from the live router."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from lbaas.api.app import ApiApp, build_router
from lbaas.api.errors import ApiError
from lbaas.api.http import ApiRequest, Response, Router
from lbaas.api.resources import loadbalancers, openapi
from lbaas.api.resources.openapi import build_document, document, fold_nullable

try:  # validates against the OpenAPI 3.0 meta-schema
    import schemathesis
except ImportError:
    schemathesis = None

LBS = "/v2/lbaas/loadbalancers"
OPENAPI = {"create": {"type": "object", "properties": {"widget": {
    "type": "object", "properties": {"size": {"anyOf": [{"type": "integer"},
                                                        {"type": "null"}]}}}}}}


def validate_openapi(doc: dict[str, Any]) -> None:
    """Raise when ``doc`` is not valid OpenAPI 3.0; skip when the validator is missing."""
    if schemathesis is None:
        pytest.skip("schemathesis (the OpenAPI validator) is not installed")
    schemathesis.openapi.from_dict(doc).validate()


def _walk(node: Any) -> Any:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return document()


def test_served_without_credentials_and_valid_openapi_30(api: Any) -> None:
    resp = api.client.get("/openapi.json")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/json"
    served = resp.json()
    assert served["openapi"].startswith("3.0.")
    assert served == json.loads(json.dumps(document()))
    validate_openapi(served)


def test_every_routed_method_is_documented(doc: dict[str, Any]) -> None:
    router = build_router()
    for pattern, methods in router._index.items():
        path = "/openapi.json" if pattern == "/openapi" else pattern
        assert path in doc["paths"], path
        assert set(doc["paths"][path]) == {m.lower() for m in methods}, path
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


def test_load_balancer_operations_and_codes(doc: dict[str, Any]) -> None:
    paths = doc["paths"]
    expected = {(LBS, "get"): "200", (LBS, "post"): "201", (f"{LBS}/{{id}}", "get"): "200",
                (f"{LBS}/{{id}}", "put"): "200", (f"{LBS}/{{id}}", "delete"): "204",
                (f"{LBS}/{{id}}/stats", "get"): "200", (f"{LBS}/{{id}}/status", "get"): "200",
                (f"{LBS}/{{id}}/failover", "put"): "202"}
    for (path, method), code in expected.items():
        responses = paths[path][method]["responses"]
        assert min(responses) == code, (path, method, list(responses))
    assert {"400", "403", "404", "409"} <= set(paths[f"{LBS}/{{id}}"]["put"]["responses"])
    assert {"400", "403"} <= set(paths[LBS]["get"]["responses"])
    fault = paths[f"{LBS}/{{id}}"]["delete"]["responses"]["409"]["content"]
    assert fault["application/json"]["schema"] == {"$ref": "#/components/schemas/Fault"}
    assert doc["components"]["schemas"]["Fault"]["required"] == [
        "faultcode", "faultstring", "debuginfo"]
    assert "204" in paths[f"{LBS}/{{id}}"]["delete"]["responses"]
    assert "content" not in paths[f"{LBS}/{{id}}"]["delete"]["responses"]["204"]


def test_request_bodies_come_from_the_resource_module(doc: dict[str, Any]) -> None:
    create = doc["paths"][LBS]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert create == fold_nullable(loadbalancers.OPENAPI["create"])
    inner = create["properties"]["loadbalancer"]
    assert inner["additionalProperties"] is False
    assert inner["properties"]["vip_subnet_id"] == {"type": "string", "format": "uuid",
                                                    "nullable": True}
    update = doc["paths"][f"{LBS}/{{id}}"]["put"]["requestBody"]["content"]
    props = update["application/json"]["schema"]["properties"]["loadbalancer"]["properties"]
    assert "vip_subnet_id" not in props and "name" in props  # update-only fields
    assert "requestBody" not in doc["paths"][f"{LBS}/{{id}}/failover"]["put"]


def test_no_json_schema_2020_null_types_remain(doc: dict[str, Any]) -> None:
    for node in _walk(doc):
        if isinstance(node, dict):
            assert node.get("type") != "null", node
            assert node.get("format") != "ip-address", node


def test_path_and_list_parameters(doc: dict[str, Any]) -> None:
    one = doc["paths"][f"{LBS}/{{id}}"]["get"]["parameters"]
    assert one[0] == {"name": "id", "in": "path", "required": True,
                      "schema": {"type": "string", "format": "uuid"}}
    assert [p["name"] for p in one[1:]] == ["fields"]  # show endpoints select fields too
    assert [p["name"] for p in doc["paths"][f"{LBS}/{{id}}/stats"]["get"]["parameters"]] == [
        "id"]
    assert set(doc["paths"][f"{LBS}/{{id}}/stats"]["get"]["responses"]) == {"200", "403", "404"}
    params = {p["name"]: p for p in doc["paths"][LBS]["get"]["parameters"]}
    for name in ("limit", "marker", "page_reverse", "sort", "sort_key", "sort_dir", "fields",
                 "tags", "tags-any", "not-tags", "not-tags-any", "name", "vip_address",
                 "project_id", "provisioning_status"):
        assert params[name]["in"] == "query" and not params[name]["required"], name
    assert params["admin_state_up"]["schema"] == {"type": "boolean"}
    assert params["fields"]["schema"]["type"] == "array" and params["fields"]["explode"]
    delete = doc["paths"][f"{LBS}/{{id}}"]["delete"]["parameters"]
    assert [p["name"] for p in delete] == ["id", "cascade"]


def test_public_paths_need_no_token(doc: dict[str, Any]) -> None:
    assert doc["security"] == [{"keystone": []}]
    for path in ("/", "/v2", "/openapi.json"):
        assert doc["paths"][path]["get"]["security"] == []
    assert "security" not in doc["paths"][LBS]["get"]


async def _widget_create(req: ApiRequest) -> Response:
    return Response(201, {})


async def _widget_get(req: ApiRequest) -> Response:
    """Show one widget."""
    return Response(200, {})


def test_modules_without_openapi_are_documented_without_bodies() -> None:
    router = Router()
    router.add("GET", "/v2/lbaas/loadbalancers/{id}", loadbalancers.get_one)
    router.add("POST", "/v2/lbaas/widgets", _widget_create)
    router.add("GET", "/v2/lbaas/widgets/{widget_id}/parts/{name}", _widget_get)
    # This test module has an OPENAPI dict too: move it aside to simulate a module without.
    saved = globals().pop("OPENAPI")
    try:
        bare = build_document(router)
    finally:
        globals()["OPENAPI"] = saved
    post = bare["paths"]["/v2/lbaas/widgets"]["post"]
    assert "requestBody" not in post and "201" in post["responses"]
    get = bare["paths"]["/v2/lbaas/widgets/{widget_id}/parts/{name}"]["get"]
    assert get["summary"] == "Show one widget."
    assert [(p["name"], p["schema"]) for p in get["parameters"]] == [
        ("widget_id", {"type": "string", "format": "uuid"}), ("name", {"type": "string"})]

    with_body = build_document(router)["paths"]["/v2/lbaas/widgets"]["post"]
    schema = with_body["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"]["widget"]["properties"]["size"] == {"type": "integer",
                                                                     "nullable": True}
    validate_openapi(bare)


def test_served_document_is_cached_per_router() -> None:
    router = Router()
    openapi.register(router)
    handler, _, _ = router.match("GET", "/openapi")
    assert handler is not None
    import asyncio

    first = asyncio.run(handler(None))  # type: ignore[arg-type]
    router.add("GET", "/late", _widget_get)
    second = asyncio.run(handler(None))  # type: ignore[arg-type]
    assert first.body is second.body and "/late" not in second.body["paths"]


class _DenyAll:
    async def authenticate(self, req: ApiRequest) -> Any:
        raise ApiError("Authentication required", 401)


def test_document_is_public_when_authentication_is_on(api: Any) -> None:
    app = ApiApp(api.service.app.state, _DenyAll())
    with TestClient(app) as client:
        assert client.get(LBS).status_code == 401
        assert client.get("/").status_code == 200
        assert client.get("/openapi.json").status_code == 200
