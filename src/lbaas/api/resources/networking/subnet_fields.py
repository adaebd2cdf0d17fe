"""Parsing and validating a subnet's attributes with Neutron's rules and messages.

``cidr`` must be canonical; the gateway defaults to the first host and, unlike Neutron, must lie
inside the subnet (the host holds a managed subnet's gateway address on its bridge, so an
off-subnet gateway would hand the host someone else's address). Allocation pools default to
every host address but the gateway. DNS servers (at most 5) and host routes (at most 20) are
checked as Neutron checks them and are stored and shown; nothing serves them (no DHCP here).
"""

from __future__ import annotations

import ipaddress
import itertools
from typing import Any

from sqlalchemy import Connection, select

from lbaas.api.resources.networking.bodies import Address, parse_ip
from lbaas.api.resources.networking.errors import (
    NeutronError,
    bad_request,
    invalid_attr,
    invalid_input,
)
from lbaas.store import tables as t

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Pool = tuple[Address, Address]
MAX_DNS_NAMESERVERS = 5
MAX_HOST_ROUTES = 20
IPV6_MODES = ("dhcpv6-stateful", "dhcpv6-stateless", "slaac")


def parse_cidr(body: dict[str, Any]) -> Network:
    raw = body.get("cidr")
    if raw is None:
        raise bad_request("Bad subnets request: a subnetpool must be specified in the "
                          "absence of a cidr.")
    if not isinstance(raw, str):
        raise invalid_attr("cidr", f"'{raw}' is not a valid IP subnet")
    try:
        net = ipaddress.ip_network(raw, strict=False)
    except ValueError:
        raise invalid_attr("cidr", f"'{raw}' is not a valid IP subnet") from None
    if str(net) != raw or "/" not in raw:
        raise invalid_attr("cidr", f"'{raw}' isn't a recognized IP subnet cidr, '{net}' is "
                           "recommended")
    return net


def parse_version(body: dict[str, Any], net: Network) -> int:
    raw = body.get("ip_version")
    if raw is None:
        raise bad_request("Failed to parse request. Required attribute 'ip_version' not "
                          "specified")
    try:
        version = int(raw)
    except (TypeError, ValueError):
        raise invalid_attr("ip_version", f"'{raw}' is not in [4, 6]") from None
    if version not in (4, 6):
        raise invalid_attr("ip_version", f"'{raw}' is not in [4, 6]")
    if version != net.version:
        raise invalid_input("Cidr and ip_version must match")
    return version


def check_dhcp(net: Network, enabled: bool) -> None:
    if enabled and net.prefixlen > (30 if net.version == 4 else 126):
        raise invalid_input("Subnet has a prefix length that is incompatible with DHCP service "
                            "enabled")


def parse_gateway(body: dict[str, Any], net: Network) -> Address | None:
    if "gateway_ip" not in body:
        return next(net.hosts(), None) if net.num_addresses > 2 else None
    if body["gateway_ip"] is None:
        return None
    gateway = parse_ip("gateway_ip", body["gateway_ip"])
    if gateway not in net or gateway == net.network_address or (
            net.version == 4 and net.num_addresses > 2 and gateway == net.broadcast_address):
        raise invalid_input(f"Gateway IP {gateway} is not a valid address in subnet {net}")
    return gateway


def default_pools(net: Network, gateway: Address | None) -> list[Pool]:
    """Every host address except the gateway, as Neutron computes it."""
    first = net.network_address + 1
    last = net.broadcast_address - 1 if net.version == 4 else net.broadcast_address
    if net.num_addresses <= 2:
        first, last = net.network_address, net.broadcast_address
    if gateway is None or not first <= gateway <= last:
        return [(first, last)]
    pools = []
    if gateway > first:
        pools.append((first, gateway - 1))
    if gateway < last:
        pools.append((gateway + 1, last))
    return pools


def parse_pools(body: dict[str, Any], net: Network) -> list[Pool] | None:
    raw = body.get("allocation_pools")
    if raw is None:
        return None
    if not isinstance(raw, list) or not raw:
        raise invalid_attr("allocation_pools", f"Invalid data format for IP pool: '{raw}'")
    pools = []
    for pool in raw:
        if not isinstance(pool, dict) or set(pool) != {"start", "end"}:
            raise invalid_attr("allocation_pools", f"Invalid data format for IP pool: '{pool}'")
        start = parse_ip("allocation_pools", pool["start"])
        end = parse_ip("allocation_pools", pool["end"])
        if start.version != net.version or end.version != net.version or start > end:
            raise bad_request(f"The allocation pool {start}-{end} is not valid.")
        if start not in net or end not in net:
            raise bad_request(f"The allocation pool {start}-{end} spans beyond the subnet "
                              f"cidr {net}.")
        pools.append((start, end))
    ordered = sorted(pools)
    for (s1, e1), (s2, e2) in itertools.pairwise(ordered):
        if s2 <= e1:
            raise NeutronError("OverlappingAllocationPools",
                               f"Found overlapping allocation pools: {s1}-{e1} and "
                               f"{s2}-{e2} for subnet {net}.", 409)
    return pools


def check_gateway_outside(gateway: Address | None, pools: list[Pool]) -> None:
    for start, end in pools:
        if gateway is not None and start <= gateway <= end:
            raise NeutronError("GatewayConflictWithAllocationPools",
                               f"Gateway ip {gateway} conflicts with allocation pool "
                               f"{start}-{end}", 409)


def pools_json(pools: list[Pool]) -> list[dict[str, str]]:
    return [{"start": str(s), "end": str(e)} for s, e in pools]


def stored_pools(row: Any) -> list[Pool]:
    return [(ipaddress.ip_address(p["start"]), ipaddress.ip_address(p["end"]))
            for p in row.allocation_pools]


def _overlapping(conn: Connection, net: Network, *where: Any) -> bool:
    for cidr in conn.execute(select(t.subnet.c.cidr).where(*where)).scalars():
        other = ipaddress.ip_network(cidr)
        if other.version == net.version and other.overlaps(net):  # type: ignore[arg-type]
            return True
    return False


def check_overlap(conn: Connection, network_id: str, net: Network,
                  management: tuple[str, ...]) -> None:
    """Neutron refuses overlapping subnets within a network. lbaas also refuses any overlap
    with the management network's subnets: the host holds each subnet's gateway address on its
    bridge, and a project's bridge holding the management gateway could take the control
    plane's place."""
    if _overlapping(conn, net, t.subnet.c.network_id == network_id):
        raise invalid_input(f"Requested subnet with cidr: {net} for network: {network_id} "
                            "overlaps with another subnet")
    if _overlapping(conn, net, t.subnet.c.network_id.in_(management)):
        raise invalid_input(f"Requested subnet with cidr: {net} for network: {network_id} "
                            "overlaps with the load balancers' management network")


def _same_version(name: str, raw: str, version: int) -> None:
    if ipaddress.ip_network(raw, strict=False).version != version:
        raise invalid_input(f"{name} '{raw}' does not match the ip_version '{version}'")


def parse_nameservers(body: dict[str, Any], version: int, subnet: str) -> list[str]:
    raw = body.get("dns_nameservers")
    if raw is None:
        return []
    if not isinstance(raw, list | tuple):
        raise invalid_attr("dns_nameservers", f"Invalid data format for nameserver: '{raw}'")
    hosts: list[str] = []
    for host in raw:
        try:
            parse_ip("dns_nameservers", host)
        except NeutronError:
            raise invalid_attr("dns_nameservers", f"'{host}' is not a valid nameserver. "
                               f"'{host}' is not a valid IP address") from None
        if host in hosts:
            raise invalid_attr("dns_nameservers", f"Duplicate nameserver '{host}'")
        hosts.append(host)
    if len(hosts) > MAX_DNS_NAMESERVERS:
        raise NeutronError("DNSNameServersExhausted", f"Unable to complete operation for "
                           f"{subnet}. The number of DNS nameservers exceeds the limit "
                           f"{MAX_DNS_NAMESERVERS}.", 400)
    for host in hosts:
        _same_version("dns_nameserver", host, version)
    return hosts


def parse_routes(body: dict[str, Any], version: int, subnet: str) -> list[dict[str, str]]:
    raw = body.get("host_routes")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise invalid_attr("host_routes", f"Invalid data format for hostroute: '{raw}'")
    routes: list[dict[str, str]] = []
    for route in raw:
        if not isinstance(route, dict) or set(route) != {"destination", "nexthop"}:
            raise invalid_attr("host_routes", "Validation of dictionary's keys failed. Expected "
                               "keys: {'destination', 'nexthop'} Provided keys: "
                               f"{set(route) if isinstance(route, dict) else route}")
        destination, nexthop = route["destination"], route["nexthop"]
        try:
            ipaddress.ip_network(destination)
        except (TypeError, ValueError):
            raise invalid_attr("host_routes", f"'{destination}' is not a valid CIDR") from None
        parse_ip("host_routes", nexthop)
        if route in routes:
            raise invalid_attr("host_routes", f"Duplicate hostroute '{route}'")
        routes.append({"destination": destination, "nexthop": nexthop})
    if len(routes) > MAX_HOST_ROUTES:
        raise NeutronError("HostRoutesExhausted", f"Unable to complete operation for {subnet}. "
                           f"The number of host routes exceeds the limit {MAX_HOST_ROUTES}.",
                           400)
    for route in routes:
        _same_version("nexthop", route["nexthop"], version)
        _same_version("destination", route["destination"], version)
    return routes


def parse_ipv6_modes(body: dict[str, Any], version: int) -> tuple[str | None, str | None]:
    modes = []
    for attr in ("ipv6_ra_mode", "ipv6_address_mode"):
        value = body.get(attr)
        if value is not None and value not in IPV6_MODES:
            raise invalid_attr(attr, f"{value} is not in valid_values")
        if value is not None and version == 4:
            raise invalid_input(f"{attr} is not valid when ip_version is 4")
        modes.append(value)
    ra, address = modes
    if ra and address and ra != address:
        raise invalid_input(f"ipv6_ra_mode set to '{ra}' with ipv6_address_mode set to "
                            f"'{address}' is not valid. If both attributes are set, they must "
                            "be the same value")
    return ra, address
