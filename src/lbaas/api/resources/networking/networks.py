"""Neutron networks: list, show, create, update, delete, with Neutron's ownership rules.

Any project member creates, updates and deletes its own networks; ``shared`` and
``router:external`` are the admin's to set (403 ``PolicyNotAuthorized`` otherwise). A network
stops being usable by other projects only when none of them uses it (``usage``). The management
network is the operator's: it cannot be changed or deleted through the API, and no other
network may take its name (the controller finds it by name).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, delete, select
from sqlalchemy.exc import IntegrityError

from lbaas.api import common
from lbaas.api.http import ApiRequest, Response
from lbaas.api.resources.networking import access, quotas, tags, usage
from lbaas.api.resources.networking.bodies import boolean, owner, read_body, string
from lbaas.api.resources.networking.errors import (
    NeutronError,
    bad_request,
    forbidden,
    network_in_use,
)
from lbaas.api.resources.networking.kinds import Kind, attributes_of, audit, save
from lbaas.store import tables as t
from lbaas.store.listing import tags_for

POST_ATTRS = frozenset({"name", "description", "admin_state_up", "shared", "router:external",
                        "port_security_enabled", "availability_zone_hints"})
PUT_ATTRS = POST_ATTRS - {"availability_zone_hints"}


def render_network(row: Any, subnets: list[str], tag_list: list[str]) -> dict[str, Any]:
    return {
        "id": row.id, "name": common.text(row.name), "description": common.text(row.description),
        "tenant_id": common.text(row.project_id), "project_id": common.text(row.project_id),
        "admin_state_up": row.admin_state_up, "status": "ACTIVE", "subnets": subnets,
        "shared": row.shared, "router:external": row.router_external,
        "port_security_enabled": row.port_security_enabled, "mtu": 1500,
        "availability_zone_hints": [], "availability_zones": [],
        "ipv4_address_scope": None, "ipv6_address_scope": None, "tags": tag_list,
        **audit(row),
    }


def _subnet_ids(conn: Connection, network_ids: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {i: [] for i in network_ids}
    if network_ids:
        rows = conn.execute(select(t.subnet.c.id, t.subnet.c.network_id)
                            .where(t.subnet.c.network_id.in_(network_ids))
                            .order_by(t.subnet.c.created_at, t.subnet.c.id))
        for sid, nid in rows:
            out[nid].append(sid)
    return out


def render_networks(conn: Connection, rows: list[Row[Any]]) -> list[dict[str, Any]]:
    ids = [r.id for r in rows]
    subnets, tag_lists = _subnet_ids(conn, ids), tags_for(conn, ids)
    return [render_network(r, subnets[r.id], tag_lists[r.id]) for r in rows]


NETWORK = Kind("network", "networks", t.network, "Network", render_networks,
               attributes_of(t.network, lambda r: render_network(r, [], [])))
KNOWN = NETWORK.attributes | POST_ATTRS


def management_locked(req: ApiRequest, network_id: str) -> None:
    if network_id in access.management(req):
        raise NeutronError("NetworkInUse", f"Unable to complete operation on network "
                           f"{network_id}. It is the load balancers' management network.", 409)


def _check_name(req: ApiRequest, name: str | None) -> None:
    if name and name == req.app.settings.networking.management_network:
        raise bad_request(f"Network name '{name}' is reserved for the load balancers' "
                          "management network")


def _admin_only(req: ApiRequest, body: dict[str, Any], verb: str) -> None:
    for attr in ("shared", "router:external"):
        if attr in body and not access.is_admin(req):
            raise forbidden(f"{verb}_network:{attr}")


def _check_zones(body: dict[str, Any]) -> None:
    hints = body.get("availability_zone_hints") or []
    if not isinstance(hints, list):
        raise bad_request(f"Invalid input for availability_zone_hints. Reason: '{hints}' is "
                          "not a list.")
    if hints:  # lbaas has no availability zones for networks
        raise NeutronError("AvailabilityZoneNotFound",
                           f"AvailabilityZone {hints[0]} could not be found.", 404)


async def create_network(req: ApiRequest) -> Response:
    body = read_body(req, "network", KNOWN, POST_ATTRS, create=True)
    project = owner(req, body)
    access.authorize(req, "create_network", req.context.project_id)
    _admin_only(req, body, "create")
    _check_zones(body)
    name = string(body, "name")
    _check_name(req, name)
    values = {
        "id": common.new_id(), "project_id": project, "name": name,
        "description": string(body, "description"),
        "admin_state_up": boolean(body, "admin_state_up", True),
        "shared": boolean(body, "shared", False),
        "router_external": boolean(body, "router:external", False),
        "port_security_enabled": boolean(body, "port_security_enabled", True),
        "revision_number": 0, "created_at": common.utcnow(),
    }
    with req.app.engine.begin() as conn:
        quotas.check(conn, req, project, "network")
        conn.execute(t.network.insert().values(**values))
        row = access.fetch(conn, req, NETWORK, values["id"])
        item = render_networks(conn, [row])[0]
    return Response(201, {"network": item})


def _changes(req: ApiRequest, body: dict[str, Any], row: Row[Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for attr in ("name", "description"):
        if attr in body:
            values[attr] = string(body, attr)
    _check_name(req, values.get("name"))
    for attr, column in (("admin_state_up", "admin_state_up"), ("shared", "shared"),
                         ("router:external", "router_external"),
                         ("port_security_enabled", "port_security_enabled")):
        if attr in body:
            values[column] = boolean(body, attr, getattr(row, column))
    return values


async def update_network(req: ApiRequest) -> Response:
    body = read_body(req, "network", KNOWN, PUT_ATTRS, create=False)
    with req.app.engine.begin() as conn:
        row = access.fetch(conn, req, NETWORK, req.path_params["id"], lock=True)
        access.authorize(req, "update_network", row.project_id)
        _admin_only(req, body, "update")
        management_locked(req, row.id)
        values = _changes(req, body, row)
        was_open = row.shared or row.router_external
        if was_open and not values.get("shared", row.shared) \
                and not values.get("router_external", row.router_external):
            usage.check_still_usable(conn, row.id, row.project_id)
        save(conn, NETWORK, row.id, values)
        item = render_networks(conn, [access.fetch(conn, req, NETWORK, row.id)])[0]
    return Response(200, {"network": item})


async def delete_network(req: ApiRequest) -> Response:
    net_id = req.path_params["id"]
    with req.app.engine.begin() as conn:
        row = access.fetch(conn, req, NETWORK, net_id, lock=True)
        access.authorize(req, "delete_network", row.project_id)
        management_locked(req, net_id)
        if usage.network_used(conn, net_id):
            raise network_in_use(net_id)
        # Like Neutron, deleting an unused network takes its subnets with it.
        for subnet_id in usage.subnet_ids(conn, net_id):
            tags.delete_tags(conn, subnet_id)
        conn.execute(delete(t.subnet).where(t.subnet.c.network_id == net_id))
        tags.delete_tags(conn, net_id)
        try:
            conn.execute(delete(t.network).where(t.network.c.id == net_id))
        except IntegrityError:  # a port made meanwhile by another process
            raise network_in_use(net_id) from None
    return Response(204)
