"""Neutron ports: list, show, create, update, delete, with Neutron's ownership rules.

A project creates ports on its own networks and on shared ones; it sees and changes its own
ports, and the owner of a network also sees and deletes the ports on it. Ports lbaas made for
itself (VIPs, amphora legs, router and floating-IP ports, demo backends: ``port_fields``) are
shown ``ACTIVE`` and keep their addresses and owner: changing those is 409 ``PortInUse`` and
deleting them is 409 ``ServicePortInUse`` (Neutron's answer for its own router ports); a port a
user made is ``DOWN`` (nothing binds it) until a load balancer takes it as its VIP.
"""

from __future__ import annotations

import random
from typing import Any

from sqlalchemy import Connection, Row, select, update

from lbaas.api import common
from lbaas.api.http import ApiRequest, Response
from lbaas.api.resources.networking import access, port_fields, port_ips, quotas, tags
from lbaas.api.resources.networking.bodies import boolean, owner, read_body, string, uuid_string
from lbaas.api.resources.networking.errors import NeutronError, forbidden
from lbaas.api.resources.networking.kinds import Kind, attributes_of, audit, save, with_tags
from lbaas.api.resources.networking.networks import NETWORK
from lbaas.store import ipam
from lbaas.store import tables as t
from lbaas.store.listing import set_tags

PUT_ATTRS = frozenset({"name", "description", "admin_state_up", "device_id", "device_owner",
                       "fixed_ips", "mac_address", "security_groups", "allowed_address_pairs",
                       "port_security_enabled", "binding:vnic_type"})
POST_ATTRS = PUT_ATTRS | {"network_id", "tags"}
BOUND_ATTRS = ("fixed_ips", "device_id", "device_owner", "mac_address")


def render_port(row: Any, tag_list: list[str]) -> dict[str, Any]:
    mac = row.mac_address
    return {
        "id": row.id, "name": common.text(row.name), "description": common.text(row.description),
        "tenant_id": common.text(row.project_id), "project_id": common.text(row.project_id),
        "network_id": row.network_id, "mac_address": mac,
        "admin_state_up": row.admin_state_up is not False,
        "status": "ACTIVE" if port_fields.is_service_owner(row.device_owner) else "DOWN",
        "device_id": common.text(row.device_id), "device_owner": common.text(row.device_owner),
        "fixed_ips": [{"subnet_id": f["subnet_id"], "ip_address": f["ip_address"]}
                      for f in row.fixed_ips],
        "allowed_address_pairs": [{"ip_address": p["ip_address"],
                                   "mac_address": p.get("mac_address", mac)}
                                  for p in row.allowed_address_pairs or []],
        "security_groups": [], "extra_dhcp_opts": [],
        "binding:vnic_type": row.vnic_type or "normal",
        "port_security_enabled": row.port_security_enabled is not False,
        "qos_policy_id": row.qos_policy_id, "tags": tag_list, **audit(row),
    }


render_ports = with_tags(render_port)


PORT = Kind("port", "ports", t.port, "Port", render_ports,
            attributes_of(t.port, lambda r: render_port(r, [])))
KNOWN = PORT.attributes | POST_ATTRS


def _new_mac(conn: Connection, network_id: str) -> str:
    while True:
        mac = "fa:16:3e:{:02x}:{:02x}:{:02x}".format(*(random.randrange(256) for _ in range(3)))
        if not _mac_taken(conn, network_id, mac):
            return mac


def _mac_taken(conn: Connection, network_id: str, mac: str, port_id: str = "") -> bool:
    return conn.execute(select(t.port.c.id).where(
        t.port.c.network_id == network_id, t.port.c.mac_address == mac,
        t.port.c.id != port_id)).first() is not None


def _mac(conn: Connection, body: dict[str, Any], network_id: str, port_id: str = "") -> str:
    mac = port_fields.parse_mac(body["mac_address"])
    if _mac_taken(conn, network_id, mac, port_id):
        raise NeutronError("MacAddressInUse", f"Unable to complete operation for network "
                           f"{network_id}. The mac address {mac} is in use.", 409)
    return mac


def _attributes(body: dict[str, Any], row: Any = None) -> dict[str, Any]:
    """Column values for the plain attributes present in ``body``."""
    values: dict[str, Any] = {}
    for attr, limit in (("name", 255), ("description", 255), ("device_id", 255),
                        ("device_owner", 255)):
        if attr in body:
            values[attr] = string(body, attr, max_len=limit)
    if "admin_state_up" in body:
        values["admin_state_up"] = boolean(body, "admin_state_up", True)
    if "port_security_enabled" in body:
        values["port_security_enabled"] = boolean(body, "port_security_enabled", True)
    if "security_groups" in body:
        port_fields.parse_security_groups(body["security_groups"])
    if "allowed_address_pairs" in body:
        values["allowed_address_pairs"] = port_fields.parse_address_pairs(
            body["allowed_address_pairs"])
    if "binding:vnic_type" in body:
        values["vnic_type"] = port_fields.parse_vnic_type(body["binding:vnic_type"])
    return values


async def create_port(req: ApiRequest) -> Response:
    body = read_body(req, "port", KNOWN, POST_ATTRS, create=True)
    network_id = uuid_string(body, "network_id")
    values = _attributes(body)
    requested = port_ips.parse_fixed_ips(body["fixed_ips"]) if "fixed_ips" in body else None
    tag_list = tags.parse_tags(PORT, body["tags"]) if "tags" in body else []
    project = owner(req, body)
    port_id = common.new_id()
    with req.app.engine.begin() as conn:
        network = access.fetch(conn, req, NETWORK, network_id, lock=True)
        if not (network.shared or access.may_write(req, network.project_id)):
            raise forbidden("create_port")
        port_fields.check_rights(req, body, network, "create")
        quotas.check(conn, req, project, "port")
        mac = _mac(conn, body, network_id) if "mac_address" in body \
            else _new_mac(conn, network_id)
        values.setdefault("port_security_enabled", network.port_security_enabled)
        wanted = port_ips.resolve(conn, network_id, requested)
        quotas.check_shared(conn, req, project, network_id, len(wanted))
        conn.execute(t.port.insert().values(
            id=port_id, project_id=project, network_id=network_id, mac_address=mac,
            fixed_ips=[], revision_number=0, created_at=common.utcnow(),
            **{"name": "", "description": "", "device_id": "", "device_owner": "", **values}))
        fixed = port_ips.allocate(conn, port_id, network_id, wanted)
        conn.execute(update(t.port).where(t.port.c.id == port_id).values(fixed_ips=fixed))
        set_tags(conn, port_id, tag_list)
        item = render_ports(conn, [access.fetch(conn, req, PORT, port_id)])[0]
    return Response(201, {"port": item})


def _check_unbound(row: Row[Any], body: dict[str, Any]) -> None:
    if port_fields.is_service_owner(row.device_owner) and any(a in body for a in BOUND_ATTRS):
        raise NeutronError("PortInUse", f"Unable to complete operation on port {row.id} for "
                           f"network {row.network_id}. Port already has an attached device "
                           f"{row.device_id}.", 409)


async def update_port(req: ApiRequest) -> Response:
    body = read_body(req, "port", KNOWN, PUT_ATTRS, create=False)
    values = _attributes(body)
    requested = port_ips.parse_fixed_ips(body["fixed_ips"]) if "fixed_ips" in body else None
    with req.app.engine.begin() as conn:
        row = access.fetch(conn, req, PORT, req.path_params["id"], lock=True)
        access.authorize(req, "update_port", row.project_id)
        port_fields.check_rights(req, body, ipam.get_network(conn, row.network_id), "update")
        _check_unbound(row, body)
        if "mac_address" in body:
            values["mac_address"] = _mac(conn, body, row.network_id, row.id)
        if requested is not None:
            wanted = port_ips.resolve(conn, row.network_id, requested, row.fixed_ips)
            quotas.check_shared(conn, req, row.project_id, row.network_id,
                                len(wanted) - len(row.fixed_ips or []))
            values["fixed_ips"] = port_ips.allocate(conn, row.id, row.network_id, wanted)
        save(conn, PORT, row.id, values)
        item = render_ports(conn, [access.fetch(conn, req, PORT, row.id)])[0]
    return Response(200, {"port": item})


async def delete_port(req: ApiRequest) -> Response:
    with req.app.engine.begin() as conn:
        row = access.fetch(conn, req, PORT, req.path_params["id"], lock=True)
        access.authorize(req, "delete_port", row.project_id,
                         access.network_owner(conn, row.network_id))
        if port_fields.is_service_owner(row.device_owner):
            raise NeutronError("ServicePortInUse", f"Port {row.id} cannot be deleted directly "
                               f"via the port API: has device owner {row.device_owner}.", 409)
        tags.delete_tags(conn, row.id)
        ipam.delete_port(conn, row.id)
    return Response(204)
