"""Flavors: named, operator-defined load balancer options users pick at create time.

Everyone who may read can list and show flavors; only admins write. A flavor points at a
flavor profile that must exist; the profile is fixed once the flavor exists. Names are unique
(checked before the insert for upstream's message; the unique index settles races).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, delete, select, update
from sqlalchemy.exc import IntegrityError

from lbaas.api import common, listing
from lbaas.api.errors import BadRequest, Conflict, NotFound
from lbaas.api.http import ApiRequest, Response, Router
from lbaas.api.resources import crud, providers
from lbaas.api.resources.flavorprofiles import in_use
from lbaas.api.schema import (
    Bool,
    Field,
    String,
    Uuid,
    description_field,
    envelope_openapi,
    parse_envelope,
)
from lbaas.domain import constants as c
from lbaas.store import tables as t
from lbaas.store.listing import count

RESOURCE = "flavor"
LABEL = "Flavor"

FIELDS = (
    Field("name", String(255), required=True, nullable=False),
    description_field(),
    Field("enabled", Bool(), default=True, nullable=False),
    Field("flavor_profile_id", Uuid(), required=True, on_update=False),
)

COLLECTION = listing.Collection(t.flavor, "flavors", "flavors_links", has_tags=False)


def render(row: Row[Any]) -> dict[str, Any]:
    return {"id": row.id, "name": common.text(row.name),
            "description": common.text(row.description), "enabled": row.enabled,
            "flavor_profile_id": row.flavor_profile_id}


def render_many(_conn: Connection, rows: list[Row[Any]]) -> list[dict[str, Any]]:
    return [render(r) for r in rows]


def load(conn: Connection, ident: str) -> Row[Any]:
    if ident == c.NIL_UUID:
        raise NotFound(LABEL, ident)
    row = conn.execute(select(t.flavor).where(t.flavor.c.id == ident)).first()
    if row is None:
        raise NotFound(LABEL, ident)
    return row


def duplicate(name: str) -> Conflict:
    return Conflict(f"A flavor of {name} already exists.")


def _require_unique(conn: Connection, name: str, ident: str | None = None) -> None:
    where = [t.flavor.c.name == name]
    if ident is not None:
        where.append(t.flavor.c.id != ident)
    if count(conn, t.flavor, *where):
        raise duplicate(name)


async def get_all(req: ApiRequest) -> Response:
    """List flavors."""
    common.authorize(req, RESOURCE, "get_all", req.context.project_id)
    return providers.list_global(req, COLLECTION, render_many)


async def get_one(req: ApiRequest) -> Response:
    """Show a flavor."""
    common.authorize(req, RESOURCE, "get_one", req.context.project_id)
    with req.app.engine.connect() as conn:
        row = load(conn, req.path_params["id"])
    return common.one_response(req, "flavor", render(row))


async def create(req: ApiRequest) -> Response:
    """Create a flavor."""
    body = parse_envelope(req.json(), "flavor", FIELDS, "create")
    common.authorize(req, RESOURCE, "post", req.context.project_id)
    ident = common.new_id()
    profile_id = body["flavor_profile_id"]
    try:
        with req.app.engine.begin() as conn:
            if not count(conn, t.flavor_profile, t.flavor_profile.c.id == profile_id):
                raise BadRequest(f"Flavor profile {profile_id} not found.")
            _require_unique(conn, body["name"])
            conn.execute(t.flavor.insert().values(
                id=ident, name=body["name"], description=body.get("description"),
                enabled=body["enabled"], flavor_profile_id=profile_id))
            row = load(conn, ident)
    except IntegrityError:
        raise duplicate(body["name"]) from None
    return Response(201, {"flavor": render(row)})


async def put(req: ApiRequest) -> Response:
    """Update a flavor's name, description or enabled flag."""
    body = parse_envelope(req.json(), "flavor", FIELDS, "update")
    common.authorize(req, RESOURCE, "put", req.context.project_id)
    ident = req.path_params["id"]
    try:
        with req.app.engine.begin() as conn:
            load(conn, ident)
            if "name" in body:
                _require_unique(conn, body["name"], ident)
            if body:
                conn.execute(update(t.flavor).where(t.flavor.c.id == ident).values(**body))
            row = load(conn, ident)
    except IntegrityError:
        raise duplicate(body["name"]) from None
    return Response(200, {"flavor": render(row)})


async def delete_one(req: ApiRequest) -> Response:
    """Delete a flavor no load balancer uses."""
    common.authorize(req, RESOURCE, "delete", req.context.project_id)
    ident = req.path_params["id"]
    lb = t.load_balancer
    with req.app.engine.begin() as conn:
        load(conn, ident)
        if count(conn, lb, lb.c.flavor_id == ident, lb.c.provisioning_status != c.DELETED):
            raise in_use(LABEL, ident)
        conn.execute(delete(t.flavor).where(t.flavor.c.id == ident))
    return Response(204)


def register(router: Router) -> None:
    crud.add_routes(router, "/v2/lbaas/flavors", get_all, create, get_one, put, delete_one)


OPENAPI = {
    "create": envelope_openapi("flavor", FIELDS, "create"),
    "update": envelope_openapi("flavor", FIELDS, "update"),
}
