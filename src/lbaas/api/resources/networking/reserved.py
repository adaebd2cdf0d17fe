"""Addresses no member may point at: the operator's side of the deployment.

A member is an address HAProxy connects to on a tenant's behalf, so a member (or a monitor
address) on this host, on the health manager's or the API's address, or inside the management
network would let a tenant's VIP relay into the control plane. Refused: loopback and unspecified
addresses (both mean "this machine"), every address on this host's interfaces (the bridges'
gateways included), the configured health manager and API addresses, the management
network's subnets, and the gateway address of every subnet on an operator network (seeded or
external: ``network_scope.operator_network``). The last one matters because the host
takes a subnet's gateway only when the data plane first ensures the subnet, after a member may
have been accepted; the data plane's own nftables guard (``drivers/local/host_guard.py``) is the
second layer. The error is Octavia's for a reserved member address (``reserved_ips``).
With ``[networking] driver = "noop"`` (fake drivers, no data plane) nothing ever connects to a
member, so this host's and the bind addresses are not refused: upstream's noop deployment takes
any address, and its API tests use 192.0.2.2, which may well be this host's.
The host's addresses are read with psutil and kept for a few seconds: an API under load should
not enumerate interfaces per member.
"""

from __future__ import annotations

import functools
import ipaddress
import threading
import time
from typing import Any

import psutil
from sqlalchemy import Connection, bindparam, literal, select, union_all

from lbaas.api.errors import BadRequest
from lbaas.settings import Settings
from lbaas.store import network_scope
from lbaas.store import tables as t

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
CACHE_SECONDS = 5.0
MEMO_KEY = "operator_subnet_rows"

_lock = threading.Lock()
_cache: tuple[float, frozenset[Address]] = (float("-inf"), frozenset())


@functools.lru_cache(maxsize=1024)  # the same gateways and bind addresses, per member address
def _parse(raw: str) -> Address | None:
    try:
        return ipaddress.ip_address(raw.split("%", 1)[0])
    except ValueError:
        return None


@functools.lru_cache(maxsize=256)
def _network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(cidr)


def host_addresses() -> frozenset[Address]:
    """Every IPv4/IPv6 address on this host's interfaces (in the namespace the API runs in)."""
    global _cache
    with _lock:
        taken_at, addresses = _cache
        if time.monotonic() - taken_at < CACHE_SECONDS:
            return addresses
        found = {_parse(a.address) for entries in psutil.net_if_addrs().values()
                 for a in entries if a.family.name in ("AF_INET", "AF_INET6")}
        addresses = frozenset(a for a in found if a is not None)
        _cache = (time.monotonic(), addresses)
        return addresses


def operator_addresses(settings: Settings) -> frozenset[Address]:
    configured = {_parse(settings.health.bind_ip), _parse(settings.api.host)}
    return host_addresses() | {a for a in configured if a is not None}


# What the database adds to the operator's addresses, in one statement built once (it runs for
# every member address): the management subnets' CIDRs and, unless the driver is noop, the
# gateways of the operator networks' subnets.
_MANAGEMENT_CIDRS = select(t.subnet.c.cidr, literal(False).label("gateway")).where(
    t.subnet.c.network_id.in_(bindparam("management", expanding=True)))
_AND_HOST_GATEWAYS = union_all(
    _MANAGEMENT_CIDRS,
    select(t.subnet.c.gateway_ip, literal(True).label("gateway")).where(
        t.subnet.c.gateway_ip.is_not(None), network_scope.host_gateway_clause()))


def is_operator_address(conn: Connection, settings: Settings, management: tuple[str, ...],
                        address: Address, memo: dict[str, Any] | None = None) -> bool:
    """``memo``: a request's scratch space, so that a request checking several addresses
    (a batch or single-call create) reads the operator's subnets once."""
    ip = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) \
        and address.ipv4_mapped else address
    if ip.is_loopback or ip.is_unspecified:
        return True
    real = settings.networking.driver != "noop"
    if real and ip in operator_addresses(settings):
        return True
    rows = None if memo is None else memo.get(MEMO_KEY)
    if rows is None:
        rows = conn.execute(_AND_HOST_GATEWAYS if real else _MANAGEMENT_CIDRS,
                            {"management": list(management)}).all()
        if memo is not None:
            memo[MEMO_KEY] = rows
    if real and ip in {_parse(str(value)) for value, gateway in rows if gateway}:
        return True
    return any(ip in _network(str(value)) for value, gateway in rows if not gateway)


def check_not_operator(conn: Connection, settings: Settings, management: tuple[str, ...],
                       raw: str, option: str, memo: dict[str, Any] | None = None) -> None:
    address = ipaddress.ip_address(raw)
    if is_operator_address(conn, settings, management, address, memo):
        raise BadRequest(f"{address.exploded.upper()} is not a valid option for {option}")
