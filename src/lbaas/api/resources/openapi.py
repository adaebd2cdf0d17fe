"""``GET /openapi.json``: an OpenAPI 3.0 document generated from the live router.

Key choice: routes are not hand-listed. Every route the app's ``Router`` knows becomes an
operation; request bodies come from the owning resource module's ``OPENAPI`` dict
(``create``/``update``, or a key named like the handler), list query parameters from its
``COLLECTION`` (filter columns and their SQL types), and a module without either still gets its
paths, parameters and responses. The only hand-kept facts are those a route cannot reveal: the
quota 202s and two non-filter query parameters (``cascade``, ``additive_only``). The schema
helpers in ``lbaas.api.schema`` emit JSON-Schema ``{"type": "null"}`` alternatives; they are
folded into OpenAPI 3.0's ``nullable`` here.
"""

from __future__ import annotations

import copy
import re
import sys
from types import ModuleType
from typing import Any

from sqlalchemy import Boolean, Integer

from lbaas.api.http import ApiRequest, Handler, Response, Router

OPENAPI_VERSION = "3.0.3"
API_VERSION = "2.30"
FAULT_REF = "#/components/schemas/Fault"
NEUTRON_FAULT_REF = "#/components/schemas/NeutronFault"
# The Neutron-compatible API under this prefix answers errors in Neutron's shape.
NEUTRON_PREFIX = "/networking"

# The router sees paths after normalise_path(), which strips a ".json" suffix: the document is
# routed as "/openapi" and published under the name clients use.
ROUTE = "/openapi"
PUBLISHED = {ROUTE: "/openapi.json"}

# Paths served without a token (kept in step with lbaas.api.app.PUBLIC_PATHS).
PUBLIC = frozenset({"/", "/v2", "/healthcheck", ROUTE})

# Success codes that differ from the method's usual one (reference §1.2).
STATUS_OVERRIDES: dict[tuple[str, str], int] = {
    ("PUT", "/v2/lbaas/quotas/{project_id}"): 202,
    ("DELETE", "/v2/lbaas/quotas/{project_id}"): 202,
    ("PUT", "/v2/lbaas/pools/{pool_id}/members"): 202,
    # Neutron's tag sub-resource (neutron/extensions/tagging.py's action_status)
    **{(method, f"{NEUTRON_PREFIX}/v2.0/{plural}/{{id}}/tags{suffix}"): code
       for plural in ("networks", "subnets", "ports")
       for method, suffix, code in (("PUT", "", 200), ("PUT", "/{tag}", 201),
                                    ("GET", "/{tag}", 204))},
}

# Query parameters that are not list filters (reference §1.2, §9.1, §9.4.1).
EXTRA_QUERY: dict[tuple[str, str], list[dict[str, Any]]] = {
    ("DELETE", "/v2/lbaas/loadbalancers/{id}"): [
        {"name": "cascade", "in": "query", "required": False, "schema": {"type": "boolean"},
         "description": "Delete the load balancer with all its children."}],
    ("PUT", "/v2/lbaas/pools/{pool_id}/members"): [
        {"name": "additive_only", "in": "query", "required": False,
         "schema": {"type": "boolean"},
         "description": "Only add or update the members given; keep the others."}],
}

# Path parameters whose values are names or free strings, not UUIDs.
NON_UUID_PARAMS = frozenset({"project_id", "provider", "name", "az_name",
                             "availability_zone_name"})

ERROR_DESCRIPTIONS = {
    "400": "Bad request: validation failure, unknown attribute, bad filter or pagination.",
    "403": "Forbidden by policy, or quota met.",
    "404": "Not found.",
    "409": "Conflict: the load balancer or a parent is immutable, or a duplicate.",
}

FAULT_SCHEMA = {
    "type": "object",
    "required": ["faultcode", "faultstring", "debuginfo"],
    "properties": {
        "faultcode": {"type": "string", "enum": ["Client", "Server"]},
        "faultstring": {"type": "string"},
        "debuginfo": {"type": "string", "nullable": True},
    },
}
NEUTRON_FAULT_SCHEMA = {
    "type": "object",
    "required": ["NeutronError"],
    "properties": {"NeutronError": {
        "type": "object",
        "required": ["type", "message"],
        "properties": {"type": {"type": "string"}, "message": {"type": "string"},
                       "detail": {"type": "string"}},
    }},
}

_PARAM = re.compile(r"\{(\w+)\}")


def _module_of(handler: Handler) -> ModuleType | None:
    return sys.modules.get(getattr(handler, "__module__", "") or "")


def _short_module(handler: Handler) -> str:
    return (getattr(handler, "__module__", "") or "api").rsplit(".", 1)[-1]


def _is_collection(pattern: str) -> bool:
    return not pattern.endswith("}")


def fold_nullable(schema: Any) -> Any:
    """Rewrite JSON-Schema-2020 idioms into OpenAPI 3.0 ones (``nullable``, ip formats)."""
    if isinstance(schema, list):
        return [fold_nullable(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: fold_nullable(v) for k, v in schema.items()}
    alts = out.get("anyOf")
    if isinstance(alts, list):
        rest = [a for a in alts if a != {"type": "null"}]
        if len(rest) < len(alts):
            del out["anyOf"]
            if len(rest) == 1:
                out = {**rest[0], **out}
            else:
                out["anyOf"] = rest
            out["nullable"] = True
    if out.get("format") == "ip-address":
        del out["format"]
        out = {"anyOf": [{**out, "format": "ipv4"}, {**out, "format": "ipv6"}]}
    return out


def _path_params(pattern: str, overrides: dict[str, Any]) -> list[dict[str, Any]]:
    params = []
    for name in _PARAM.findall(pattern):
        if name in overrides:
            schema = copy.deepcopy(overrides[name])
        elif name == "id" or (name.endswith("_id") and name not in NON_UUID_PARAMS):
            schema = {"type": "string", "format": "uuid"}
        else:
            schema = {"type": "string"}
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    return params


def _column_schema(column: Any) -> dict[str, Any]:
    if isinstance(column.type, Boolean):
        return {"type": "boolean"}
    if isinstance(column.type, Integer):
        return {"type": "integer"}
    return {"type": "string"}


def _fields_param() -> dict[str, Any]:
    return {"name": "fields", "in": "query", "required": False,
            "schema": {"type": "array", "items": {"type": "string"}}, "style": "form",
            "explode": True, "description": "Attributes to return (repeat the parameter)."}


def _list_params(collection: Any) -> list[dict[str, Any]]:
    """Pagination, sorting, field selection, tag filters and one filter per column (§5)."""
    def q(name: str, schema: dict[str, Any], description: str, **kw: Any) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": False, "schema": schema,
                "description": description, **kw}

    params = [
        q("limit", {"anyOf": [{"type": "integer"}, {"type": "string", "enum": ["infinite"]}]},
          "Page size; <= 0 or 'infinite' means no limit."),
        q("marker", {"type": "string", "format": "uuid"}, "Id of the last item of the "
          "previous page."),
        q("page_reverse", {"type": "string", "enum": ["True", "False"]},
          "'True' pages backwards."),
        q("sort", {"type": "string"}, "key1[:asc|desc],key2[:dir],..."),
        q("sort_key", {"type": "string"}, "Legacy sort keys (comma separated)."),
        q("sort_dir", {"type": "string", "enum": ["asc", "desc"]}, "Legacy sort directions."),
        _fields_param(),
    ]
    if getattr(collection, "has_tags", False):
        for name, what in (("tags", "all of"), ("tags-any", "at least one of"),
                           ("not-tags", "not all of"), ("not-tags-any", "none of")):
            params.append(q(name, {"type": "string"}, f"Objects having {what} these tags "
                            "(comma separated)."))
    table = collection.table
    taken = {p["name"] for p in params}
    for api_name, column in collection.columns.items():
        if api_name in taken:
            continue
        params.append(q(api_name, _column_schema(table.c[column]),
                        f"Exact match on {api_name}."))
    return params


def _is_list(method: str, pattern: str, handler: Handler, module: ModuleType | None) -> bool:
    if method != "GET" or not _is_collection(pattern) or module is None:
        return False
    coll = getattr(module, "COLLECTION", None)
    if coll is None:
        return False
    last = pattern.rsplit("/", 1)[-1]
    return handler.__name__ == "get_all" or coll.plural.replace("_", "") == last


def _request_body(method: str, handler: Handler, module: ModuleType | None) \
        -> dict[str, Any] | None:
    spec = getattr(module, "OPENAPI", None) if module is not None else None
    if not isinstance(spec, dict) or method not in ("POST", "PUT"):
        return None
    name = handler.__name__
    keys = [name]
    prefix = name.split("_", 1)[0]
    if prefix not in ("create", "update", "put", "get", "delete"):
        keys.append(prefix)  # batch_update -> "batch"
    if method == "POST":
        keys.append("create")
    elif name in ("put", "update", "put_one"):
        keys.append("update")
    for key in keys:
        schema = spec.get(key)
        if isinstance(schema, dict):
            return {"required": True,
                    "content": {"application/json": {"schema": fold_nullable(schema)}}}
    return None


def _success(method: str, pattern: str) -> tuple[str, str]:
    code = STATUS_OVERRIDES.get((method, pattern))
    if code is None:
        if method == "POST":
            code = 201
        elif method == "DELETE":
            code = 204
        elif method == "PUT" and _is_collection(pattern):
            code = 202  # failover, amphora config, member batch update
        else:
            code = 200
    text = {200: "OK", 201: "Created", 202: "Accepted", 204: "No content"}[code]
    return str(code), text


def _responses(method: str, pattern: str, public: bool, is_list: bool) -> dict[str, Any]:
    code, text = _success(method, pattern)
    ok: dict[str, Any] = {"description": text}
    if code != "204":
        ok["content"] = {"application/json": {"schema": {}}}
    responses: dict[str, Any] = {code: ok}
    if public:
        return responses
    if is_list:
        wanted = ["400", "403"]
    elif method == "GET":
        wanted = ["403", "404"]
    else:
        wanted = ["400", "403", "404", "409"]
    for err in wanted:
        responses[err] = _error_response(pattern, err)
    return responses


def _error_response(pattern: str, code: str) -> dict[str, Any]:
    ref = NEUTRON_FAULT_REF if pattern.startswith(NEUTRON_PREFIX) else FAULT_REF
    return {"description": ERROR_DESCRIPTIONS[code],
            "content": {"application/json": {"schema": {"$ref": ref}}}}


def _operation_id(method: str, pattern: str) -> str:
    words = re.sub(r"[^a-zA-Z0-9]+", "_", _PARAM.sub(r"by_\1", pattern)).strip("_")
    return f"{method.lower()}_{words or 'root'}"


def _operation(method: str, pattern: str, handler: Handler) -> dict[str, Any]:
    module = _module_of(handler)
    spec = getattr(module, "OPENAPI", None) if module is not None else None
    path_overrides = spec.get("path_params", {}) if isinstance(spec, dict) else {}
    doc = (handler.__doc__ or "").strip().splitlines()
    public = pattern in PUBLIC
    is_list = _is_list(method, pattern, handler, module)
    op: dict[str, Any] = {
        "operationId": _operation_id(method, pattern),
        "tags": [_short_module(handler)],
        "summary": doc[0] if doc else f"{method} {pattern}",
        "parameters": _path_params(pattern, path_overrides),
        "responses": _responses(method, pattern, public, is_list),
    }
    if is_list:
        op["parameters"] += _list_params(module.COLLECTION)  # type: ignore[union-attr]
    elif method == "GET" and not _is_collection(pattern) and hasattr(module, "COLLECTION"):
        op["parameters"].append(_fields_param())  # show endpoints select fields too (§5.5)
    op["parameters"] += copy.deepcopy(EXTRA_QUERY.get((method, pattern), []))
    body = _request_body(method, handler, module)
    if body is not None:
        op["requestBody"] = body
        op["responses"].setdefault("400", _error_response(pattern, "400"))
    if public:
        op["security"] = []
    if not op["parameters"]:
        del op["parameters"]
    return op


def build_document(router: Router) -> dict[str, Any]:
    """The OpenAPI document for every route registered on ``router``."""
    paths: dict[str, Any] = {}
    for pattern, methods in router._index.items():
        item = paths.setdefault(PUBLISHED.get(pattern, pattern), {})
        for method in sorted(methods):
            item[method.lower()] = _operation(method, pattern, methods[method])
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "lbaas: OpenStack Octavia v2 API",
            "version": API_VERSION,
            "description": "Generated from the running router. Paths are canonical; the "
                           "server also accepts /v2.0, /v2/<collection> without lbaas/, a "
                           ".json suffix and a trailing slash.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": copy.deepcopy({"Fault": FAULT_SCHEMA, "NeutronFault": NEUTRON_FAULT_SCHEMA}),
            "securitySchemes": {"keystone": {"type": "apiKey", "in": "header",
                                             "name": "X-Auth-Token"}},
        },
        "security": [{"keystone": []}],
    }


def document() -> dict[str, Any]:
    """The document for the app's full router (what ``GET /openapi.json`` serves)."""
    from lbaas.api.app import build_router

    return build_document(build_router())


def register(router: Router) -> None:
    # The router is complete by the first request; build once, then serve the cached copy.
    cache: dict[str, Any] = {}

    async def get_openapi(req: ApiRequest) -> Response:
        """The OpenAPI 3.0 document of this API."""
        if "doc" not in cache:
            cache["doc"] = build_document(router)
        return Response(200, cache["doc"])

    router.add("GET", ROUTE, get_openapi)
