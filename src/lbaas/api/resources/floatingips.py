"""Neutron's floating IPs under ``/networking/v2.0/floatingips``: list, show, create, update
(port association) and delete, as python-openstackclient's ``floating ip`` commands use them.

Key choices: the floating address is a port on the external network (device_owner
``network:floatingip``), so IPAM's unique key keeps it from ever being handed out twice. There
is no router API: associating a port with a floating IP attaches the port's subnet to an
implicit router (one per internal subnet, id derived from the subnet id) by allocating it a
``network:router_interface`` port in the same transaction; the last disassociation on that
subnet releases it. The kernel side (router namespaces, NAT) is converged afterwards by
``controller.floating_ips`` from these rows; the handlers only wake it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, delete, select, update

from lbaas.api import common
from lbaas.api.http import ApiRequest, Response, Router
from lbaas.api.resources.networking import access, bodies, listing, quotas
from lbaas.api.resources.networking.errors import NeutronError, bad_request, invalid_attr
from lbaas.api.resources.networking.kinds import Kind, attributes_of, audit
from lbaas.api.resources.networking.networks import NETWORK
from lbaas.api.resources.networking.ports import PORT
from lbaas.store import ipam
from lbaas.store import tables as t
from lbaas.store.floating import FIP_OWNER, ROUTER_OWNER, associations, router_id, router_ports

CREATE_ATTRS = frozenset({"floating_network_id", "floating_ip_address", "subnet_id", "port_id",
                          "fixed_ip_address", "description", "project_id", "tenant_id",
                          "qos_policy_id", "dns_domain", "dns_name"})
UPDATE_ATTRS = frozenset({"port_id", "fixed_ip_address", "description", "qos_policy_id"})
WAKE = "floating_ips_changed"  # ApiState.extras key: set by the service with real drivers


def _not_found(ident: str) -> NeutronError:
    return NeutronError("FloatingIPNotFound", f"Floating IP {ident} could not be found", 404)


def render(row: Row[Any], ports: dict[str, Row[Any]]) -> dict[str, Any]:
    port = ports.get(row.port_id) if row.port_id else None
    fixed = row.fixed_ip_address if port is not None else None
    subnet = next((f["subnet_id"] for f in port.fixed_ips if f["ip_address"] == fixed), None) \
        if port is not None else None
    return {
        "id": row.id, "tenant_id": common.text(row.project_id),
        "project_id": common.text(row.project_id), "description": "",
        "floating_network_id": row.floating_network_id,
        "floating_ip_address": row.floating_ip_address,
        "port_id": row.port_id if port is not None else None, "fixed_ip_address": fixed,
        "router_id": router_id(subnet) if subnet else None,
        "status": "ACTIVE" if port is not None else "DOWN",
        "qos_policy_id": None, "dns_domain": "", "dns_name": "", "port_forwardings": [],
        "tags": [], "revision_number": 0, **audit(row),
    }


def render_many(conn: Connection, rows: list[Row[Any]]) -> list[dict[str, Any]]:
    ids = [r.port_id for r in rows if r.port_id]
    ports = {p.id: p for p in conn.execute(select(t.port).where(t.port.c.id.in_(ids)))} \
        if ids else {}
    return [render(r, ports) for r in rows]


def _visible(req: ApiRequest) -> list[Any]:
    return [] if access.is_admin(req) \
        else [t.floating_ip.c.project_id == req.context.project_id]


FLOATINGIP = Kind("floatingip", "floatingips", t.floating_ip, "FloatingIP", render_many,
                  attributes_of(t.floating_ip, lambda r: render(r, {})))
KNOWN = FLOATINGIP.attributes | CREATE_ATTRS


def _fetch(conn: Connection, req: ApiRequest, ident: str, lock: bool = False) -> Row[Any]:
    stmt = select(t.floating_ip).where(t.floating_ip.c.id == ident, *_visible(req))
    row = conn.execute(stmt.with_for_update() if lock else stmt).first()
    if row is None:
        raise _not_found(ident)
    return row


def _wake(req: ApiRequest) -> None:
    wake = req.app.extras.get(WAKE)
    if wake is not None:
        wake()


# ---------------------------------------------------------------------------------- reading --

async def list_floatingips(req: ApiRequest) -> Response:
    with req.app.engine.connect() as conn:
        rows = list(conn.execute(select(t.floating_ip).where(*_visible(req))
                                 .order_by(t.floating_ip.c.created_at, t.floating_ip.c.id)))
        items = render_many(conn, rows)
    return listing.list_response(req, FLOATINGIP, items)


async def show_floatingip(req: ApiRequest) -> Response:
    with req.app.engine.connect() as conn:
        item = render_many(conn, [_fetch(conn, req, req.path_params["id"])])[0]
    return Response(200, {"floatingip": listing.select_fields(req, item)})


# -------------------------------------------------------------------------------- association --

def _association(conn: Connection, req: ApiRequest, fip: dict[str, Any], port_id: Any,
                 fixed: Any) -> tuple[str | None, str | None]:
    """(port_id, fixed_ip_address) after checking them as Neutron does."""
    if port_id is None:
        if fixed is not None:
            raise bad_request("fixed_ip_address cannot be specified without a port_id")
        return None, None
    if not isinstance(port_id, str):
        raise invalid_attr("port_id", f"'{port_id}' is not a valid UUID")
    own = [] if access.is_admin(req) else [t.port.c.project_id == req.context.project_id]
    port = conn.execute(select(t.port).where(t.port.c.id == port_id, *own)).first()
    if port is None:
        raise PORT.not_found(port_id)
    if port.network_id in access.management(req):
        raise bad_request(f"Bad floatingip request: Port {port_id} is on the load balancers' "
                          "management network.")
    v4 = [f for f in port.fixed_ips if ":" not in f["ip_address"]]
    if fixed is not None:
        bodies.parse_ip("fixed_ip_address", fixed)
        v4 = [f for f in v4 if f["ip_address"] == fixed]
        if not v4:
            raise bad_request(f"Bad floatingip request: Port {port_id} does not have fixed "
                              f"ip {fixed}.")
    if not v4:
        raise bad_request(f"Bad floatingip request: Port {port_id} does not have any IPv4 "
                          "address.")
    if port.network_id == fip["floating_network_id"]:
        raise bad_request(f"Bad floatingip request: Port {port_id} is on the external "
                          "network of the floating IP.")
    address = v4[0]["ip_address"]
    taken = conn.execute(select(t.floating_ip).where(
        t.floating_ip.c.port_id == port_id, t.floating_ip.c.fixed_ip_address == address,
        t.floating_ip.c.id != fip["id"])).first()
    if taken is not None:
        raise NeutronError(
            "FloatingIPPortAlreadyAssociated",
            f"Cannot associate floating IP {fip['floating_ip_address']} ({fip['id']}) with port "
            f"{port_id} using fixed IP {address}, as that fixed IP already has a floating IP "
            f"on external network {taken.floating_network_id}.", 409)
    return port_id, address


def sync_router_ports(conn: Connection) -> None:
    """Exactly one router port on each internal subnet that has an associated floating IP."""
    wanted = {a.subnet_id for a in associations(conn)}
    have = router_ports(conn)
    for subnet_id in sorted(wanted):
        if router_id(subnet_id) in have:
            continue
        subnet = ipam.get_subnet(conn, subnet_id)
        try:
            ipam.create_port(conn, port_id=common.new_id(), subnet=subnet, address=None,
                             name="", device_owner=ROUTER_OWNER,
                             device_id=router_id(subnet_id), project_id=None,
                             now=common.utcnow())
        except ipam.SubnetFull:
            raise NeutronError("IpAddressGenerationFailure", "No more IP addresses available "
                               f"on network {subnet.network_id}.", 409) from None
    for device_id, port in have.items():
        if device_id not in {router_id(s) for s in wanted}:
            ipam.delete_port(conn, port.id)


# ---------------------------------------------------------------------------------- writing --

def _external_network(conn: Connection, req: ApiRequest, body: dict[str, Any]) -> Row[Any]:
    net_id = bodies.uuid_string(body, "floating_network_id")
    network = access.fetch(conn, req, NETWORK, net_id)
    if not network.router_external:
        raise bad_request(f"Bad floatingip request: Network {net_id} is not a valid external "
                          "network.")
    return network


def _external_subnet(conn: Connection, network: Row[Any], body: dict[str, Any]) -> Row[Any]:
    subnets = [s for s in ipam.subnets_of(conn, network.id) if s.ip_version == 4]
    wanted = body.get("subnet_id")
    if wanted is not None:
        subnets = [s for s in subnets if s.id == wanted]
        if not subnets:
            raise bad_request(f"Bad floatingip request: Subnet {wanted} is not an IPv4 "
                              f"subnet of network {network.id}.")
    address = body.get("floating_ip_address")
    if address is not None:
        bodies.parse_ip("floating_ip_address", address)
        subnets = [s for s in subnets if ipam.in_subnet(s, address)]
        if not subnets:
            raise bad_request(f"Bad floatingip request: Invalid floating IP address "
                              f"{address} for network {network.id}.")
    if not subnets:
        raise bad_request(f"Bad floatingip request: Network {network.id} has no IPv4 subnet.")
    return subnets[0]


def _no_description(body: dict[str, Any]) -> None:
    # The floating_ip table has no description column: refuse rather than drop it.
    if body.get("description"):
        raise bad_request("Bad floatingip request: description is not supported here.")


async def create_floatingip(req: ApiRequest) -> Response:
    body = bodies.read_body(req, "floatingip", KNOWN, CREATE_ATTRS, create=True)
    _no_description(body)
    fip_id = common.new_id()
    with req.app.engine.begin() as conn:
        network = _external_network(conn, req, body)
        subnet = _external_subnet(conn, network, body)
        quotas.check(conn, req, bodies.owner(req, body), "floatingip")
        quotas.check_shared(conn, req, bodies.owner(req, body), network.id)
        try:
            port = ipam.create_port(conn, port_id=common.new_id(), subnet=subnet,
                                    address=body.get("floating_ip_address"), name="",
                                    device_owner=FIP_OWNER, device_id=fip_id, project_id=None,
                                    now=common.utcnow())
        except ipam.AddressInUse:
            raise NeutronError("IpAddressAlreadyAllocated", f"IP address "
                               f"{body['floating_ip_address']} already allocated in subnet "
                               f"{subnet.id}", 409) from None
        except ipam.AddressOutOfRange:
            raise bad_request(f"Bad floatingip request: IP address "
                              f"{body['floating_ip_address']} is not in an allocation pool "
                              f"of subnet {subnet.id}.") from None
        except ipam.SubnetFull:
            raise NeutronError("IpAddressGenerationFailure", "No more IP addresses available "
                               f"on network {network.id}.", 409) from None
        fip = {"id": fip_id, "floating_network_id": network.id,
               "floating_ip_address": port.fixed_ips[0]["ip_address"]}
        port_id, fixed = _association(conn, req, fip, body.get("port_id"),
                                      body.get("fixed_ip_address"))
        conn.execute(t.floating_ip.insert().values(
            **fip, project_id=bodies.owner(req, body), port_id=port_id, fixed_ip_address=fixed,
            created_at=common.utcnow()))
        sync_router_ports(conn)
        item = render_many(conn, [_fetch(conn, req, fip_id)])[0]
    _wake(req)
    return Response(201, {"floatingip": item})


async def update_floatingip(req: ApiRequest) -> Response:
    body = bodies.read_body(req, "floatingip", KNOWN, UPDATE_ATTRS, create=False)
    _no_description(body)
    fip_id = req.path_params["id"]
    with req.app.engine.begin() as conn:
        row = _fetch(conn, req, fip_id, lock=True)
        if "port_id" in body or "fixed_ip_address" in body:
            port_id, fixed = _association(conn, req, dict(row._mapping), body.get("port_id"),
                                          body.get("fixed_ip_address"))
            conn.execute(update(t.floating_ip).where(t.floating_ip.c.id == fip_id).values(
                port_id=port_id, fixed_ip_address=fixed, updated_at=common.utcnow()))
            sync_router_ports(conn)
        item = render_many(conn, [_fetch(conn, req, fip_id)])[0]
    _wake(req)
    return Response(200, {"floatingip": item})


async def delete_floatingip(req: ApiRequest) -> Response:
    fip_id = req.path_params["id"]
    with req.app.engine.begin() as conn:
        _fetch(conn, req, fip_id, lock=True)
        for port_id in conn.execute(select(t.port.c.id).where(
                t.port.c.device_owner == FIP_OWNER, t.port.c.device_id == fip_id)).scalars():
            ipam.delete_port(conn, port_id)
        conn.execute(delete(t.floating_ip).where(t.floating_ip.c.id == fip_id))
        sync_router_ports(conn)
    _wake(req)
    return Response(204)


def register(router: Router) -> None:
    base = f"{listing.API}/floatingips"
    router.add("GET", base, list_floatingips)
    router.add("GET", base + "/{id}", show_floatingip)
    router.add("POST", base, create_floatingip)
    router.add("PUT", base + "/{id}", update_floatingip)
    router.add("DELETE", base + "/{id}", delete_floatingip)
