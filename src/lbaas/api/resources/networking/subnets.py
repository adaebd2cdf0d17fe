"""Neutron subnets: list, show, create, update, delete, with Neutron's ownership rules.

Creating a subnet needs the member role on the network's project (or admin): on someone else's
shared network it is 403, as in Neutron. Updating or deleting needs the subnet's or the
network's project. A subnet in use (addresses allocated, members naming it) cannot be deleted,
nor can its gateway move (the host may hold that address on the subnet's bridge). The
management network's subnets are the operator's and stay as configured.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import Connection, Row, delete, select

from lbaas.api import common
from lbaas.api.http import ApiRequest, Response
from lbaas.api.resources.networking import access, quotas, tags, usage
from lbaas.api.resources.networking import subnet_fields as f
from lbaas.api.resources.networking.bodies import boolean, owner, read_body, string, uuid_string
from lbaas.api.resources.networking.errors import NeutronError, forbidden, subnet_in_use
from lbaas.api.resources.networking.kinds import Kind, attributes_of, audit, save, with_tags
from lbaas.api.resources.networking.networks import NETWORK
from lbaas.store import tables as t

POST_ATTRS = frozenset({"name", "description", "network_id", "ip_version", "cidr", "gateway_ip",
                        "allocation_pools", "enable_dhcp", "dns_nameservers", "host_routes",
                        "ipv6_ra_mode", "ipv6_address_mode", "subnetpool_id"})
PUT_ATTRS = frozenset({"name", "description", "gateway_ip", "allocation_pools", "enable_dhcp",
                       "dns_nameservers", "host_routes"})


def render_subnet(row: Any, tag_list: list[str]) -> dict[str, Any]:
    return {
        "id": row.id, "name": common.text(row.name), "description": common.text(row.description),
        "tenant_id": common.text(row.project_id), "project_id": common.text(row.project_id),
        "network_id": row.network_id, "ip_version": row.ip_version, "cidr": row.cidr,
        "gateway_ip": row.gateway_ip,
        "allocation_pools": [{"start": p["start"], "end": p["end"]}
                             for p in row.allocation_pools],
        "enable_dhcp": row.enable_dhcp is not False,
        "dns_nameservers": list(row.dns_nameservers or []),
        "host_routes": list(row.host_routes or []), "service_types": [],
        "ipv6_ra_mode": row.ipv6_ra_mode, "ipv6_address_mode": row.ipv6_address_mode,
        "subnetpool_id": None, "segment_id": None, "tags": tag_list, **audit(row),
    }


render_subnets = with_tags(render_subnet)


SUBNET = Kind("subnet", "subnets", t.subnet, "Subnet", render_subnets,
              attributes_of(t.subnet, lambda r: render_subnet(r, [])))
KNOWN = SUBNET.attributes | POST_ATTRS


def _no_subnetpool(body: dict[str, Any]) -> None:
    pool = body.get("subnetpool_id")
    if pool is not None:  # lbaas has no subnet pools
        raise NeutronError("SubnetPoolNotFound", f"Subnet pool {pool} could not be found.", 404)


async def create_subnet(req: ApiRequest) -> Response:
    body = read_body(req, "subnet", KNOWN, POST_ATTRS, create=True)
    network_id = uuid_string(body, "network_id")
    _no_subnetpool(body)
    net = f.parse_cidr(body)
    version = f.parse_version(body, net)
    dhcp = boolean(body, "enable_dhcp", True)
    f.check_dhcp(net, dhcp)
    gateway = f.parse_gateway(body, net)
    pools = f.parse_pools(body, net)
    if pools is None:
        pools = f.default_pools(net, gateway)
    else:
        f.check_gateway_outside(gateway, pools)
    values = {
        "id": common.new_id(), "project_id": owner(req, body), "network_id": network_id,
        "name": string(body, "name"), "description": string(body, "description"),
        "cidr": str(net), "ip_version": version,
        "gateway_ip": None if gateway is None else str(gateway),
        "allocation_pools": f.pools_json(pools), "enable_dhcp": dhcp,
        "dns_nameservers": f.parse_nameservers(body, version, "new subnet"),
        "host_routes": f.parse_routes(body, version, "new subnet"),
        "revision_number": 0, "created_at": common.utcnow(),
    }
    values["ipv6_ra_mode"], values["ipv6_address_mode"] = f.parse_ipv6_modes(body, version)
    with req.app.engine.begin() as conn:
        network = access.fetch(conn, req, NETWORK, network_id, lock=True)
        access.authorize(req, "create_subnet", network.project_id)
        _operator_only(req, network, "create_subnet")
        if network.id in access.management(req):
            raise subnet_in_use(values["id"], "the management network's subnets are the "
                                "operator's")
        f.check_overlap(conn, network_id, net, access.management(req))
        quotas.check(conn, req, values["project_id"], "subnet")
        conn.execute(t.subnet.insert().values(**values))
        item = render_subnets(conn, [access.fetch(conn, req, SUBNET, values["id"])])[0]
    return Response(201, {"subnet": item})


def _operator_only(req: ApiRequest, network: Row[Any], action: str) -> None:
    """Subnets of external networks are attached to the host (their gateway on its bridge, a
    route to them): only admins add, change or delete them, whoever owns the network."""
    if network.router_external and not access.is_admin(req):
        raise forbidden(action)


def _writable(conn: Connection, req: ApiRequest, action: str, lock: bool = True) -> Row[Any]:
    row = access.fetch(conn, req, SUBNET, req.path_params["id"], lock=lock)
    access.authorize(req, action, row.project_id, access.network_owner(conn, row.network_id))
    network = conn.execute(select(t.network).where(t.network.c.id == row.network_id)).one()
    _operator_only(req, network, action)
    if row.network_id in access.management(req):
        raise subnet_in_use(row.id, "the management network's subnets are the operator's")
    return row


def _changes(conn: Connection, body: dict[str, Any], row: Row[Any]) -> dict[str, Any]:
    net = ipaddress.ip_network(row.cidr)
    values: dict[str, Any] = {}
    for attr in ("name", "description"):
        if attr in body:
            values[attr] = string(body, attr)
    if "enable_dhcp" in body:
        values["enable_dhcp"] = boolean(body, "enable_dhcp", row.enable_dhcp)
        if not row.enable_dhcp:
            f.check_dhcp(net, values["enable_dhcp"])
    gateway = ipaddress.ip_address(row.gateway_ip) if row.gateway_ip else None
    if "gateway_ip" in body:
        new_gateway = f.parse_gateway(body, net)
        if new_gateway != gateway and usage.subnet_used(conn, row.id):
            raise subnet_in_use(row.id, "its gateway cannot move while addresses are in use")
        gateway = new_gateway
        values["gateway_ip"] = None if gateway is None else str(gateway)
    pools = f.parse_pools(body, net) if "allocation_pools" in body else None
    if pools is not None:
        values["allocation_pools"] = f.pools_json(pools)
    if "gateway_ip" in body or pools is not None:
        f.check_gateway_outside(gateway, pools if pools is not None else f.stored_pools(row))
    if "dns_nameservers" in body:
        values["dns_nameservers"] = f.parse_nameservers(body, row.ip_version, row.id)
    if "host_routes" in body:
        values["host_routes"] = f.parse_routes(body, row.ip_version, row.id)
    return values


async def update_subnet(req: ApiRequest) -> Response:
    body = read_body(req, "subnet", KNOWN, PUT_ATTRS, create=False)
    with req.app.engine.begin() as conn:
        row = _writable(conn, req, "update_subnet")
        values = _changes(conn, body, row)
        save(conn, SUBNET, row.id, values)
        item = render_subnets(conn, [access.fetch(conn, req, SUBNET, row.id)])[0]
    return Response(200, {"subnet": item})


async def delete_subnet(req: ApiRequest) -> Response:
    with req.app.engine.begin() as conn:
        row = _writable(conn, req, "delete_subnet")
        if usage.subnet_used(conn, row.id):
            raise subnet_in_use(row.id)
        tags.delete_tags(conn, row.id)
        conn.execute(delete(t.subnet).where(t.subnet.c.id == row.id))
    return Response(204)
