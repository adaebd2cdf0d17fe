"""A minimal Identity v3 under ``/identity`` for ``noauth`` mode: tokens with a catalog, and
project lookups.

Clients resolve project names through Keystone (``openstack loadbalancer quota show admin``
asks ``GET /v3/projects/admin``, then ``?name=admin``) and openstacksdk reads the project of its
token. Under noauth every caller is admin, so here any project name or id is a project whose id
is its name, any user and password get a token, and the catalog points every service at this
server. Key choice: tokens are not credentials (noauth checks none); each one carries the scope
it was issued for (base64 JSON), so validating it needs no state. With ``auth_strategy =
keystone`` nothing here is served: the real Keystone answers.
"""

from __future__ import annotations

import base64
import binascii
from datetime import timedelta
from typing import Any

import orjson

from lbaas.api import common
from lbaas.api.errors import ApiError, route_not_found
from lbaas.api.http import ApiRequest, Response, Router

PREFIX = "/identity"
API = f"{PREFIX}/v3"
TOKEN_PREFIX = "lbaas-noauth-"
DOMAIN = {"id": "default", "name": "Default"}
REGION = "RegionOne"
VERSION = {
    "id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
    "media-types": [{"base": "application/json",
                     "type": "application/vnd.openstack.identity-v3+json"}],
}
# service type -> (name, path under this server); the load balancer answers at the root
SERVICES = {
    "identity": ("keystone", API),
    "load-balancer": ("octavia", ""),
    "network": ("neutron", "/networking"),
    "key-manager": ("barbican", "/key-manager"),
}


class IdentityError(Exception):
    pass


def _enabled(req: ApiRequest) -> None:
    if req.app.settings.api.auth_strategy != "noauth":
        raise route_not_found()


def _base(req: ApiRequest) -> str:
    return req.base_url.rstrip("/")


def project(name_or_id: str) -> dict[str, Any]:
    return {"id": name_or_id, "name": name_or_id, "domain_id": DOMAIN["id"], "enabled": True,
            "description": "", "is_domain": False, "parent_id": DOMAIN["id"], "tags": [],
            "options": {}}


def _catalog(req: ApiRequest) -> list[dict[str, Any]]:
    base = _base(req)
    return [{"type": kind, "name": name, "id": name, "endpoints": [
        {"id": f"{name}-{interface}", "interface": interface, "region": REGION,
         "region_id": REGION, "url": base + path}
        for interface in ("public", "internal", "admin")]}
        for kind, (name, path) in SERVICES.items()]


def _dict(value: Any, key: str) -> dict[str, Any]:
    inner = value.get(key) if isinstance(value, dict) else None
    return inner if isinstance(inner, dict) else {}


def _scope_of(auth: dict[str, Any]) -> dict[str, Any]:
    """What the token is for: user name and one of project, domain or system (or nothing)."""
    user = _dict(_dict(_dict(auth, "identity"), "password"), "user")
    scope = _dict(auth, "scope")
    name = user.get("name") or user.get("id")
    out: dict[str, Any] = {"user": name if isinstance(name, str) and name else "admin"}
    wanted = _dict(scope, "project")
    project_name = wanted.get("id") or wanted.get("name")
    if isinstance(project_name, str) and project_name:
        out["project"] = project_name
    elif "system" in scope:
        out["system"] = True
    elif "domain" in scope:
        out["domain"] = True
    return out


def _token_body(req: ApiRequest, scope: dict[str, Any]) -> dict[str, Any]:
    now = common.utcnow()
    user = scope["user"]
    body: dict[str, Any] = {
        "methods": ["password"], "audit_ids": [common.new_id()[:22]],
        "issued_at": now.isoformat(timespec="microseconds") + "Z",
        "expires_at": (now + timedelta(days=1)).isoformat(timespec="microseconds") + "Z",
        "user": {"id": user, "name": user, "domain": DOMAIN, "password_expires_at": None},
        "roles": [{"id": role, "name": role} for role in ("admin", "member", "reader")],
        "catalog": _catalog(req),
    }
    if scope.get("project"):
        body["project"] = {**{k: v for k, v in project(scope["project"]).items()
                              if k in ("id", "name")}, "domain": DOMAIN}
        body["is_domain"] = False
    elif scope.get("system"):
        body["system"] = {"all": True}
    elif scope.get("domain"):
        body["domain"] = DOMAIN
    return {"token": body}


def encode_token(scope: dict[str, Any]) -> str:
    return TOKEN_PREFIX + base64.urlsafe_b64encode(orjson.dumps(scope)).decode()


def decode_token(token: str) -> dict[str, Any]:
    if not token.startswith(TOKEN_PREFIX):
        raise IdentityError(token)
    try:
        scope = orjson.loads(base64.urlsafe_b64decode(token[len(TOKEN_PREFIX):]))
    except (binascii.Error, orjson.JSONDecodeError, ValueError):
        raise IdentityError(token) from None
    if not isinstance(scope, dict) or not isinstance(scope.get("user"), str):
        raise IdentityError(token)
    return scope


def _not_found(kind: str, ident: str) -> Response:
    return Response(404, {"error": {"code": 404, "title": "Not Found",
                                    "message": f"Could not find {kind}: {ident}."}})


async def versions(req: ApiRequest) -> Response:
    _enabled(req)
    link = {"rel": "self", "href": f"{_base(req)}{API}/"}
    return Response(300, {"versions": {"values": [{**VERSION, "links": [link]}]}})


async def version(req: ApiRequest) -> Response:
    _enabled(req)
    return Response(200, {"version": {**VERSION, "links": [
        {"rel": "self", "href": f"{_base(req)}{API}/"}]}})


async def issue_token(req: ApiRequest) -> Response:
    _enabled(req)
    try:
        body = req.json()
    except ApiError:
        body = None
    auth = body.get("auth") if isinstance(body, dict) else None
    if not isinstance(auth, dict):
        return Response(400, {"error": {"code": 400, "title": "Bad Request",
                                        "message": "Expecting to find auth in request body."}})
    scope = _scope_of(auth)
    return Response(201, _token_body(req, scope),
                    headers=[(b"x-subject-token", encode_token(scope).encode())])


async def validate_token(req: ApiRequest) -> Response:
    _enabled(req)
    token = req.headers.get("x-subject-token", "")
    try:
        scope = decode_token(token)
    except IdentityError:
        return _not_found("token", token)
    return Response(200, _token_body(req, scope),
                    headers=[(b"x-subject-token", token.encode())])


async def show_project(req: ApiRequest) -> Response:
    _enabled(req)
    return Response(200, {"project": project(req.path_params["id"])})


async def list_projects(req: ApiRequest) -> Response:
    """Any name is a project; without one, the projects that own something here."""
    _enabled(req)
    name = req.param("name")
    if name:
        names = [name]
    else:
        names = sorted({req.app.settings.api.default_project_id or "admin",
                        *common.known_projects(req.app.engine)})
    return Response(200, {"projects": [project(n) for n in names],
                          "links": {"self": req.url, "next": None, "previous": None}})


async def show_domain(req: ApiRequest) -> Response:
    _enabled(req)
    ident = req.path_params["id"]
    if ident not in (DOMAIN["id"], DOMAIN["name"]):
        return _not_found("domain", ident)
    return Response(200, {"domain": {**DOMAIN, "enabled": True, "description": ""}})


def register(router: Router) -> None:
    router.add("GET", PREFIX, versions)
    router.add("GET", API, version)
    router.add("POST", f"{API}/auth/tokens", issue_token)
    router.add("GET", f"{API}/auth/tokens", validate_token)
    router.add("GET", f"{API}/projects", list_projects)
    router.add("GET", f"{API}/projects/{{id}}", show_project)
    router.add("GET", f"{API}/domains/{{id}}", show_domain)
