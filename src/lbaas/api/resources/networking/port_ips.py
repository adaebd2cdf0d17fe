"""A port's fixed IPs: what each requested entry means, and allocating it from lbaas's IPAM.

Neutron's rules (``ipam_backend_mixin``): an entry names a subnet of the port's network, an
address, or both; without ``fixed_ips`` a port gets one address from the first IPv4 and the
first IPv6 subnet with room. An explicit address may lie outside the allocation pools but not
on the subnet's network or broadcast address; unlike Neutron it may not be the gateway either,
because the host holds that address on the subnet's bridge. On update an entry naming only a
subnet keeps the address the port already has there. The ``ip_allocation`` table's unique key
makes a double allocation impossible, also between processes.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, delete, select
from sqlalchemy.exc import IntegrityError

from lbaas.api.resources.networking.bodies import parse_ip
from lbaas.api.resources.networking.errors import (
    NeutronError,
    invalid_attr,
    invalid_input,
    not_found,
)
from lbaas.store import ipam
from lbaas.store import tables as t

MAX_FIXED_IPS = 5


@dataclass(frozen=True)
class Wanted:
    subnet: Row[Any]
    address: str | None  # None: any free address of the subnet


def parse_fixed_ips(raw: Any) -> list[dict[str, str]]:
    """neutron-lib's ``validate_fixed_ips`` (shape only; subnets are resolved later)."""
    if not isinstance(raw, list):
        raise invalid_attr("fixed_ips", f"Invalid data format for fixed IP: '{raw}'")
    entries: list[dict[str, str]] = []
    for item in raw:
        if not isinstance(item, dict):
            raise invalid_attr("fixed_ips", f"Invalid data format for fixed IP: '{item}'")
        entry: dict[str, str] = {}
        if "ip_address" in item:
            address = str(parse_ip("fixed_ips", item["ip_address"]))
            if any(e.get("ip_address") == address for e in entries):
                raise invalid_attr("fixed_ips", f"Duplicate IP address '{item['ip_address']}'")
            entry["ip_address"] = address
        if "subnet_id" in item:
            if not isinstance(item["subnet_id"], str):
                raise invalid_attr("fixed_ips", f"'{item['subnet_id']}' is not a valid UUID")
            entry["subnet_id"] = item["subnet_id"]
        entries.append(entry)
    if len(entries) > MAX_FIXED_IPS:
        raise invalid_input("Exceeded maximum amount of fixed ips per port.")
    return entries


def _valid_on(subnet: Row[Any], address: str) -> bool:
    net = ipaddress.ip_network(subnet.cidr)
    ip = ipaddress.ip_address(address)
    if ip not in net or ip == net.network_address or str(ip) == subnet.gateway_ip:
        return False
    return net.version == 6 or ip != net.broadcast_address


def _subnet_for(conn: Connection, entry: dict[str, str], subnets: list[Row[Any]],
                network_id: str) -> Row[Any]:
    if not subnets:
        raise invalid_input("IP allocation requires subnets for network")
    address = entry.get("ip_address")
    if "subnet_id" in entry:
        match = [s for s in subnets if s.id == entry["subnet_id"]]
        if not match:
            if ipam.get_subnet(conn, entry["subnet_id"]) is None:
                raise not_found("Subnet", entry["subnet_id"])
            raise invalid_input(f"Failed to create port on network {network_id}, because "
                                f"fixed_ips included invalid subnet {entry['subnet_id']}")
        if address is not None and not _valid_on(match[0], address):
            raise NeutronError("InvalidIpForSubnet", f"IP address {address} is not a valid IP "
                               "for the specified subnet.", 400)
        return match[0]
    if address is None:
        raise invalid_input("IP allocation requires subnet_id or ip_address")
    for subnet in subnets:
        if _valid_on(subnet, address):
            return subnet
    raise NeutronError("InvalidIpForNetwork", f"IP address {address} is not a valid IP for any "
                       "of the subnets on the specified network.", 400)


def resolve(conn: Connection, network_id: str, requested: list[dict[str, str]] | None,
            current: list[dict[str, str]] | None = None) -> list[Wanted]:
    """What to allocate; ``current`` (on update) lets a subnet-only entry keep its address."""
    subnets = ipam.subnets_of(conn, network_id)
    if requested is None:
        return [Wanted(s, None) for s in _default_subnets(conn, network_id, subnets)]
    wanted = []
    spare = list(current or [])
    for entry in requested:
        subnet = _subnet_for(conn, entry, subnets, network_id)
        address = entry.get("ip_address")
        if address is None:
            kept = next((c for c in spare if c["subnet_id"] == subnet.id), None)
            if kept is not None:
                spare.remove(kept)
                address = kept["ip_address"]
        wanted.append(Wanted(subnet, address))
    return wanted


def _default_subnets(conn: Connection, network_id: str, subnets: list[Row[Any]]) \
        -> list[Row[Any]]:
    chosen = []
    for version in (4, 6):
        candidates = [s for s in subnets if s.ip_version == version]
        if not candidates:
            continue
        free = [s for s in candidates if ipam.free_count(conn, s) > 0]
        if not free:
            raise no_more_addresses(network_id)
        chosen.append(free[0])
    return chosen


def no_more_addresses(network_id: str) -> NeutronError:
    return NeutronError("IpAddressGenerationFailure",
                        f"No more IP addresses available on network {network_id}.", 409)


def _taken(address: str, subnet_id: str) -> NeutronError:
    return NeutronError("IpAddressAlreadyAllocated",
                        f"IP address {address} already allocated in subnet {subnet_id}", 409)


def allocate(conn: Connection, port_id: str, network_id: str, wanted: list[Wanted]) \
        -> list[dict[str, str]]:
    """Make the port's allocations exactly ``wanted``; returns its ``fixed_ips``."""
    keep = {(w.subnet.id, w.address) for w in wanted if w.address is not None}
    mine = {(r.subnet_id, r.ip_address) for r in conn.execute(
        select(t.ip_allocation).where(t.ip_allocation.c.port_id == port_id))}
    for subnet_id, address in mine - keep:
        conn.execute(delete(t.ip_allocation).where(t.ip_allocation.c.subnet_id == subnet_id,
                                                   t.ip_allocation.c.ip_address == address))
    fixed = []
    for w in wanted:
        address = w.address
        if address is None:
            try:
                address = ipam.pick_address(conn, w.subnet)
            except ipam.SubnetFull:
                raise no_more_addresses(network_id) from None
        if (w.subnet.id, address) not in mine:
            if address in ipam.used(conn, w.subnet.id):
                raise _taken(address, w.subnet.id)
            try:
                conn.execute(t.ip_allocation.insert().values(
                    subnet_id=w.subnet.id, ip_address=address, port_id=port_id))
            except IntegrityError:  # allocated meanwhile by another process
                raise _taken(address, w.subnet.id) from None
        fixed.append({"subnet_id": w.subnet.id, "ip_address": address})
    return fixed
