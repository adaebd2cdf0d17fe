"""Availability zones: named placement choices for load balancers, keyed by name.

The name is the primary key (the path parameter, the pagination marker and what a load
balancer's ``availability_zone`` stores), so it and the profile are immutable; readers may
list and show, admins write.
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

RESOURCE = "availability-zone"
LABEL = "Availability Zone"
ENVELOPE = "availability_zone"

FIELDS = (
    Field("name", String(255), required=True, on_update=False),
    description_field(),
    Field("enabled", Bool(), default=True, nullable=False),
    Field("availability_zone_profile_id", Uuid(), required=True, on_update=False),
)

AZ = t.availability_zone
COLLECTION = listing.Collection(AZ, "availability_zones", "availability_zones_links",
                                has_tags=False)


def render(row: Row[Any]) -> dict[str, Any]:
    return {"name": row.name, "description": common.text(row.description),
            "enabled": row.enabled,
            "availability_zone_profile_id": row.availability_zone_profile_id}


def render_many(_conn: Connection, rows: list[Row[Any]]) -> list[dict[str, Any]]:
    return [render(r) for r in rows]


def load(conn: Connection, name: str) -> Row[Any]:
    row = None
    if name != c.NIL_UUID:
        row = conn.execute(select(AZ).where(AZ.c.name == name)).first()
    if row is None:
        raise NotFound(LABEL, name)
    return row


def duplicate(name: str) -> Conflict:
    return Conflict(f"A availability zone of {name} already exists.")


async def get_all(req: ApiRequest) -> Response:
    """List availability zones."""
    common.authorize(req, RESOURCE, "get_all", req.context.project_id)
    return providers.list_global(req, COLLECTION, render_many, key="name")


async def get_one(req: ApiRequest) -> Response:
    """Show an availability zone."""
    common.authorize(req, RESOURCE, "get_one", req.context.project_id)
    with req.app.engine.connect() as conn:
        row = load(conn, req.path_params["name"])
    return common.one_response(req, ENVELOPE, render(row))


async def create(req: ApiRequest) -> Response:
    """Create an availability zone."""
    body = parse_envelope(req.json(), ENVELOPE, FIELDS, "create")
    common.authorize(req, RESOURCE, "post", req.context.project_id)
    name = body["name"]
    profile_id = body["availability_zone_profile_id"]
    profiles = t.availability_zone_profile
    try:
        with req.app.engine.begin() as conn:
            if not count(conn, profiles, profiles.c.id == profile_id):
                raise BadRequest(f"Availability Zone Profile {profile_id} not found.")
            if count(conn, AZ, AZ.c.name == name):
                raise duplicate(name)
            conn.execute(AZ.insert().values(
                name=name, description=body.get("description"), enabled=body["enabled"],
                availability_zone_profile_id=profile_id))
            row = load(conn, name)
    except IntegrityError:
        raise duplicate(name) from None
    return Response(201, {ENVELOPE: render(row)})


async def put(req: ApiRequest) -> Response:
    """Update an availability zone's description or enabled flag."""
    body = parse_envelope(req.json(), ENVELOPE, FIELDS, "update")
    common.authorize(req, RESOURCE, "put", req.context.project_id)
    name = req.path_params["name"]
    with req.app.engine.begin() as conn:
        load(conn, name)
        if body:
            conn.execute(update(AZ).where(AZ.c.name == name).values(**body))
        row = load(conn, name)
    return Response(200, {ENVELOPE: render(row)})


async def delete_one(req: ApiRequest) -> Response:
    """Delete an availability zone no load balancer uses."""
    common.authorize(req, RESOURCE, "delete", req.context.project_id)
    name = req.path_params["name"]
    lb = t.load_balancer
    with req.app.engine.begin() as conn:
        load(conn, name)
        if count(conn, lb, lb.c.availability_zone == name,
                 lb.c.provisioning_status != c.DELETED):
            raise in_use(LABEL, name)
        conn.execute(delete(AZ).where(AZ.c.name == name))
    return Response(204)


def register(router: Router) -> None:
    crud.add_routes(router, "/v2/lbaas/availabilityzones", get_all, create, get_one, put,
                    delete_one, key="name")


OPENAPI = {
    "create": envelope_openapi(ENVELOPE, FIELDS, "create"),
    "update": envelope_openapi(ENVELOPE, FIELDS, "update"),
}
