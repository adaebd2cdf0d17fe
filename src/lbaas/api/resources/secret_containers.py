"""Barbican containers: ``openstack secret container create --type certificate ...``.

A container only names secrets of the same project; it holds no payload itself. Certificate
containers accept Barbican's names (certificate, private_key, private_key_passphrase,
intermediates) and need ``certificate``; listeners read them through ``store.secrets.read_ref``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select

from lbaas.api import common
from lbaas.api.http import ApiRequest, Response, Router
from lbaas.api.resources.secret_policy import Access, enforce
from lbaas.api.resources.secrets import (
    API,
    CONTAINER_SECRETS,
    BarbicanError,
    caller_project,
    fail,
    json_body,
    page_links,
    page_params,
    ref_url,
    stamp,
)
from lbaas.store import secrets as store
from lbaas.store import tables as t


def render_container(req: ApiRequest, row: Any) -> dict[str, Any]:
    return {"status": "ACTIVE", "created": stamp(row.created_at),
            "updated": stamp(row.updated_at or row.created_at), "name": row.name,
            "type": row.type, "container_ref": ref_url(req, "containers", row.id),
            "creator_id": row.creator_id, "consumers": [],
            "secret_refs": [{"name": s["name"],
                             "secret_ref": ref_url(req, "secrets", s["secret_id"])}
                            for s in row.secret_refs]}


def _secret_refs(body: dict[str, Any], kind: str) -> list[dict[str, str]]:
    refs = body.get("secret_refs") or []
    if not isinstance(refs, list) or not all(isinstance(r, dict) for r in refs):
        raise fail("Provided object does not match schema 'Container': secret_refs must be "
                   "a list of objects.")
    allowed = CONTAINER_SECRETS[kind]
    out = []
    for ref in refs:
        name, secret_ref = ref.get("name"), ref.get("secret_ref")
        if not isinstance(secret_ref, str) or (name is not None and not isinstance(name, str)):
            raise fail("Provided object does not match schema 'Container': each secret_ref "
                       "needs a string secret_ref.")
        if allowed is not None and name not in allowed:
            raise fail(f"Provided object does not match schema 'Container': {name!r} is not a "
                       f"valid secret name for a {kind} container.")
        kind_of, ident = store.parse_ref(secret_ref)
        if kind_of != "secrets":
            raise fail(f"Secret provided for '{name}' is not a secret reference.")
        out.append({"name": name or "", "secret_id": ident})
    names = [r["name"] for r in out]
    if allowed is not None and len(set(names)) != len(names):
        raise fail("Duplicate secret names in the container.")
    if kind == "certificate" and "certificate" not in names:
        raise fail("Provided object does not match schema 'Container': a certificate "
                   "container needs a 'certificate' secret.")
    return out


async def create_container(req: ApiRequest) -> Response:
    enforce(req, Access.WRITE, "Container creation")
    body = json_body(req)
    if body.get("type") not in CONTAINER_SECRETS:
        raise fail("Provided object does not match schema 'Container': type must be one of "
                   "generic, rsa, certificate.")
    project = caller_project(req)
    refs = _secret_refs(body, body["type"])
    name = body.get("name")
    if name is not None and (not isinstance(name, str) or len(name) > 255):
        raise fail("Provided object does not match schema 'Container': name is invalid.")
    ident = common.new_id()
    with req.app.engine.begin() as conn:
        for ref in refs:
            try:
                store.secret_row(conn, project, ref["secret_id"])
            except store.SecretUnavailable:
                raise BarbicanError(f"Secret provided for '{ref['name']}' doesn't exist.",
                                    404) from None
        conn.execute(t.secret_container.insert().values(
            id=ident, project_id=project, name=name, type=body["type"], secret_refs=refs,
            creator_id=req.context.user_id, created_at=common.utcnow()))
    ref = ref_url(req, "containers", ident)
    return Response(201, {"container_ref": ref}, [(b"location", ref.encode())])


async def list_containers(req: ApiRequest) -> Response:
    enforce(req, Access.READ, "Containers(s) retrieval")
    limit, offset = page_params(req)
    c = t.secret_container.c
    cond = [c.project_id == caller_project(req)]
    for param, column in (("name", c.name), ("type", c.type)):
        if req.param(param):
            cond.append(column == req.param(param))
    with req.app.engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(t.secret_container)
                             .where(*cond)).scalar() or 0
        rows = conn.execute(select(t.secret_container).where(*cond).order_by(
            c.created_at, c.id).limit(limit).offset(offset)).all()
    body = {"containers": [render_container(req, r) for r in rows], "total": total}
    body.update(page_links(req, "containers", total, limit, offset))
    return Response(200, body)


def _container(req: ApiRequest, conn: Any) -> Any:
    try:
        return store.container_row(conn, caller_project(req), req.path_params["id"])
    except store.SecretUnavailable:
        raise BarbicanError("Not Found. Sorry but your container is in another castle.",
                            404) from None


async def show_container(req: ApiRequest) -> Response:
    enforce(req, Access.READ, "Container retrieval")
    with req.app.engine.connect() as conn:
        row = _container(req, conn)
    return Response(200, render_container(req, row))


async def delete_container(req: ApiRequest) -> Response:
    enforce(req, Access.WRITE, "Container deletion")
    with req.app.engine.begin() as conn:
        row = _container(req, conn)
        conn.execute(delete(t.secret_container).where(t.secret_container.c.id == row.id))
    return Response(204)


def register(router: Router) -> None:
    router.add("POST", f"{API}/containers", create_container)
    router.add("GET", f"{API}/containers", list_containers)
    router.add("GET", f"{API}/containers/{{id}}", show_container)
    router.add("DELETE", f"{API}/containers/{{id}}", delete_container)
