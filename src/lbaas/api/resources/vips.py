"""Load balancer VIP selection and allocation: which subnet, port and address the vip_* fields
and additional_vips name, with upstream's checks and messages.

With ``[networking] driver = "noop"`` (upstream's ``network_noop_driver``) ids this server does
not know are accepted as they are: a made-up subnet, network and port, and the requested
address or a made-up one; nothing is allocated for them. Known subnets still use the IPAM.
Addresses are kept as sent (upstream stores the string); the IPAM compares canonical forms.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, select, update

from lbaas.api import common
from lbaas.api.errors import BadRequest, Conflict, ValidationFailure
from lbaas.api.http import ApiRequest
from lbaas.api.resources.networking import access, quotas
from lbaas.domain import constants as c
from lbaas.store import ipam
from lbaas.store import tables as t

# upstream's noop network driver gives every VIP this address unless one is requested
MADE_UP_ADDRESS = "198.51.100.1"


@dataclass(frozen=True)
class MadeUpSubnet:
    """A subnet the noop network driver accepts without knowing it."""

    id: str
    network_id: str


@dataclass(frozen=True)
class MadeUpPort:
    id: str
    qos_policy_id: str | None = None


Subnet = Row[Any] | MadeUpSubnet


def _noop(req: ApiRequest) -> bool:
    return bool(req.app.settings.networking.driver == "noop")


# body key -> the table its id names
ID_TABLES = {"vip_port_id": t.port, "vip_network_id": t.network, "vip_subnet_id": t.subnet,
             "subnet_id": t.subnet}


def known_ids(conn: Connection, req: ApiRequest, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` without the ids the noop network driver makes up (those this server does not
    know): what lookups and access rules should judge. Unchanged with the local driver."""
    if not _noop(req):
        return body

    def known(key: str, ident: str) -> bool:
        table = ID_TABLES[key]
        return conn.execute(select(table.c.id).where(table.c.id == ident)).first() is not None

    out = {k: v for k, v in body.items() if k not in ID_TABLES or not v or known(k, v)}
    if body.get("additional_vips"):
        out["additional_vips"] = [e for e in body["additional_vips"]
                                  if known("subnet_id", e["subnet_id"])]
    return out


def _choose_vip(conn: Connection, req: ApiRequest, body: dict[str, Any], topology: str) \
        -> tuple[Subnet, str | None, Row[Any] | MadeUpPort | None]:
    """Return (subnet, wanted address, existing port), with upstream's checks and messages:
    a port wins over a network, a network over a subnet."""
    net = req.app.settings.networking
    switches = (("vip_port_id", net.allow_vip_port_id),
                ("vip_network_id", net.allow_vip_network_id),
                ("vip_subnet_id", net.allow_vip_subnet_id))
    for key, ok in switches:
        if body.get(key) and not ok:
            raise ValidationFailure(f"use of {key} is disallowed by this deployment's "
                                    "configuration.")
    if not any(body.get(key) for key, _ in switches):
        raise ValidationFailure(
            f"VIP must contain one of: {', '.join(k for k, ok in switches if ok)}.")
    # what the caller may not see does not exist for it (noop: made-up ids are nobody's)
    access.check_vip(conn, req, known_ids(conn, req, body))
    address = body.get("vip_address")
    port = None
    if body.get("vip_port_id"):
        subnet, address, port = _vip_from_port(conn, req, body)
    elif body.get("vip_network_id"):
        subnet = _vip_from_network(conn, req, body, topology)
    else:
        subnet = _subnet(conn, req, body["vip_subnet_id"])
    if (net.valid_vip_networks and subnet.network_id not in net.valid_vip_networks) \
            or subnet.network_id in net.denylist_vip_networks:
        raise ValidationFailure("Supplied VIP network_id is not allowed by the configuration "
                                "of this deployment.")
    if address and port is None and not isinstance(subnet, MadeUpSubnet) \
            and not ipam.in_subnet(subnet, address):
        raise ValidationFailure(f"VIP address {address} is not in subnet {subnet.id}.")
    return subnet, address, port


def _same_ip(a: str, b: str) -> bool:
    return ipaddress.ip_address(a) == ipaddress.ip_address(b)


def _subnet(conn: Connection, req: ApiRequest, subnet_id: str,
            network_id: str | None = None) -> Subnet:
    subnet = req.memo.get((t.subnet.name, subnet_id)) or ipam.get_subnet(conn, subnet_id)
    if subnet is None:
        if _noop(req):
            return MadeUpSubnet(subnet_id, network_id or common.new_id())
        raise BadRequest(f"Subnet {subnet_id} not found.")
    return subnet


def _vip_from_port(conn: Connection, req: ApiRequest, body: dict[str, Any]) \
        -> tuple[Subnet, str, Row[Any] | MadeUpPort]:
    port = ipam.get_port(conn, body["vip_port_id"])
    if port is None and _noop(req):
        subnet = _subnet(conn, req, body.get("vip_subnet_id") or common.new_id())
        return subnet, body.get("vip_address") or MADE_UP_ADDRESS, \
            MadeUpPort(body["vip_port_id"])
    if port is None:
        raise BadRequest(f"Port {body['vip_port_id']} not found.")
    if port.device_id:
        # upstream's message ends with a space
        raise ValidationFailure(f"Port {port.id} is already used by device {port.device_id} ")
    fixed = port.fixed_ips or []
    address = body.get("vip_address")
    if body.get("vip_subnet_id"):
        _subnet(conn, req, body["vip_subnet_id"])
        match = [f for f in fixed if f["subnet_id"] == body["vip_subnet_id"]
                 and (not address or _same_ip(f["ip_address"], address))]
        if not match:
            raise ValidationFailure("No VIP address found on the specified VIP port within "
                                    "the specified subnet.")
    elif address:
        match = [f for f in fixed if _same_ip(f["ip_address"], address)]
        if not match:
            raise ValidationFailure("Specified VIP address not found on the specified VIP "
                                    "port.")
    elif len(fixed) == 1:
        match = fixed
    else:
        raise ValidationFailure("VIP port's subnet could not be determined. Please specify "
                                "either a VIP subnet or address.")
    return _subnet(conn, req, match[0]["subnet_id"]), body.get("vip_address") \
        or match[0]["ip_address"], port


def _vip_from_network(conn: Connection, req: ApiRequest, body: dict[str, Any],
                      topology: str) -> Subnet:
    network = ipam.get_network(conn, body["vip_network_id"])
    if network is None and _noop(req):
        return _subnet(conn, req, body.get("vip_subnet_id") or common.new_id(),
                       body["vip_network_id"])
    if network is None:
        raise BadRequest(f"Network {body['vip_network_id']} not found.")
    subnets = ipam.subnets_of(conn, network.id)  # IPv4 first, as upstream prefers
    if body.get("vip_subnet_id"):
        match = [s for s in subnets if s.id == body["vip_subnet_id"]]
        if not match:
            raise BadRequest(f"Subnet {body['vip_subnet_id']} not found.")
        return match[0]
    if body.get("vip_address"):
        match = [s for s in subnets if ipam.in_subnet(s, body["vip_address"])]
        if not match:
            raise ValidationFailure("Supplied network does not contain a subnet for VIP "
                                    "address specified.")
        return match[0]
    if not subnets:
        raise ValidationFailure("Supplied network does not contain a subnet.")
    need = 3 if topology == c.TOPOLOGY_ACTIVE_STANDBY else 2
    match = [s for s in subnets if ipam.free_count(conn, s) >= need]
    if not match:
        raise ValidationFailure("Subnet(s) in the supplied network do not contain enough "
                                "available IPs.")
    return match[0]


def _additional_subnets(conn: Connection, req: ApiRequest, primary: Subnet,
                        extras: list[dict[str, Any]]) -> list[Subnet]:
    """Upstream's order: duplicates, then existence, then one network for all."""
    ids = [primary.id] + [e["subnet_id"] for e in extras]
    if len(set(ids)) != len(ids):
        raise ValidationFailure("Duplicate VIP subnet(s) specified. Only one IP can be bound "
                                "per subnet.")
    subnets = []
    for subnet_id in ids[1:]:
        subnet = ipam.get_subnet(conn, subnet_id)
        if subnet is None and _noop(req):
            subnet = MadeUpSubnet(subnet_id, primary.network_id)
        if subnet is None:
            raise ValidationFailure(f"Subnet {subnet_id} not found")  # sic: no period
        subnets.append(subnet)
    if any(s.network_id != primary.network_id for s in subnets):
        raise ValidationFailure("All VIP subnets must belong to the same network.")
    return subnets


def _check_shared_addresses(conn: Connection, req: ApiRequest, project_id: str,
                            subnet: Subnet, port: Row[Any] | MadeUpPort | None,
                            body: dict[str, Any], topology: str, provider: str | None) -> None:
    """The project's limit on addresses in networks it does not own (``public``): the VIP
    port's address (unless the port exists), the additional VIPs, and the VRRP leg each amphora
    takes on the VIP subnet. Neutron's 409 in Octavia's format, as for the port quota."""
    if isinstance(subnet, MadeUpSubnet) or isinstance(port, MadeUpPort):
        return
    legs = 0
    if c.is_amphora_provider(provider):
        legs = 2 if topology == c.TOPOLOGY_ACTIVE_STANDBY else 1
    adding = (0 if port is not None else 1) + len(body.get("additional_vips") or []) + legs
    if quotas.over_shared_quota(conn, req, project_id, subnet.network_id, adding):
        raise Conflict(quotas.over_quota_message(quotas.SHARED_ADDRESS))


def allocate_vip(conn: Connection, req: ApiRequest, lb_id: str, project_id: str,
                 body: dict[str, Any], topology: str, now: Any,
                 provider: str | None = None) -> dict[str, Any]:
    subnet, address, port = _choose_vip(conn, req, body, topology)
    _check_shared_addresses(conn, req, project_id, subnet, port, body, topology, provider)
    if isinstance(port, MadeUpPort):
        port_id = port.id
        qos = body.get("vip_qos_policy_id")
    elif port is not None:
        conn.execute(update(t.port).where(t.port.c.id == port.id).values(
            device_id=f"lb-{lb_id}", device_owner="Octavia"))
        port_id = port.id
        qos = body.get("vip_qos_policy_id") or port.qos_policy_id
    elif isinstance(subnet, MadeUpSubnet):
        port_id = common.new_id()
        address = address or MADE_UP_ADDRESS
        qos = body.get("vip_qos_policy_id")
    else:
        port_id = common.new_id()
        address = _vip_port(conn, req, subnet, port_id, address, lb_id, project_id, now)
        qos = body.get("vip_qos_policy_id")
    additional = []
    extras = body.get("additional_vips") or []
    for extra, extra_subnet in zip(extras, _additional_subnets(conn, req, subnet, extras),
                                   strict=True):
        ip = _additional_address(conn, extra_subnet, extra, port_id)
        additional.append({"subnet_id": extra_subnet.id, "ip_address": ip, "port_id": port_id})
    return {
        "vip_address": address, "vip_port_id": port_id, "vip_subnet_id": subnet.id,
        "vip_network_id": subnet.network_id, "vip_qos_policy_id": qos,
        "additional_vips": additional,
    }


def _vip_port(conn: Connection, req: ApiRequest, subnet: Row[Any], port_id: str,
              address: str | None, lb_id: str, project_id: str, now: Any) -> str:
    """A VIP port from the IPAM; the address as requested (spelling kept), else allocated.
    It is the load balancer's project's port (as Octavia makes it), so it counts against that
    project's Neutron port quota: Neutron's 409 in Octavia's format, as upstream passes it on."""
    if quotas.over_quota(conn, req, project_id, "port"):
        raise Conflict(quotas.over_quota_message("port"))
    try:
        allocated = ipam.add_port(conn, port_id=port_id, subnet=subnet,
                                  address=common.canonical_ip(address) if address else None,
                                  name=f"octavia-lb-{lb_id}", device_owner="Octavia",
                                  device_id=f"lb-{lb_id}", project_id=project_id, now=now)
    except ipam.AddressInUse:
        raise Conflict(f"The VIP IP address is already in use: IP address {address} "
                       f"already allocated in subnet {subnet.id}") from None
    except ipam.AddressOutOfRange:
        raise BadRequest(f"Validation failure: VIP address {address} is not in the "
                         f"allocation pool of subnet {subnet.id}.") from None
    except ipam.SubnetFull:
        raise Conflict(f"The VIP IP address is already in use: no free address left in "
                       f"subnet {subnet.id}") from None
    return address or allocated


def _additional_address(conn: Connection, subnet: Subnet, extra: dict[str, Any],
                        port_id: str) -> str:
    wanted = extra.get("ip_address")
    if isinstance(subnet, MadeUpSubnet):
        return str(wanted or MADE_UP_ADDRESS)
    try:
        ip = ipam.pick_address(conn, subnet, common.canonical_ip(wanted) if wanted else None)
    except ipam.AddressInUse:
        raise Conflict(f"The VIP IP address is already in use: {wanted}") from None
    except (ipam.AddressOutOfRange, ipam.SubnetFull):
        raise BadRequest(f"Validation failure: no usable address in subnet "
                         f"{subnet.id}.") from None
    conn.execute(t.ip_allocation.insert().values(subnet_id=subnet.id, ip_address=ip,
                                                 port_id=port_id))
    return str(wanted or ip)
