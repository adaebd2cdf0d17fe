"""Converge the routers that carry floating IPs towards the floating_ip and port rows.

Key choice: a separate, level-triggered step rather than work in the API handler or in the
load-balancer reconciler: floating IPs are not part of a load balancer's aggregate (a floating
IP outlives the load balancer whose VIP it points at), the router set is a function of a
handful of rows, and recomputing all of it is cheap. The API wakes ``FloatingIPSync`` after
each committed change; it also runs at start and every ``interval`` seconds, which repairs
drift (a deleted VIP port, a router namespace someone removed) and finishes after a crash.
With the fake drivers nothing starts it, so API tests never touch the kernel.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, Row

from lbaas.controller.provisioning import subnet_info
from lbaas.drivers.local.router import RouterSpec
from lbaas.store import ipam
from lbaas.store.floating import associations, router_id, router_ports

log = logging.getLogger(__name__)


class RouterDriver(Protocol):
    async def converge(self, routers: list[RouterSpec]) -> None: ...


def desired_routers(conn: Connection) -> list[RouterSpec]:
    """One router per internal subnet with live associations, with its NAT table."""
    ports = router_ports(conn)
    by_subnet: dict[str, list[tuple[str, str, str]]] = {}
    for a in associations(conn):
        by_subnet.setdefault(a.subnet_id, []).append(
            (a.floating_network_id, a.floating_address, a.fixed_address))
    out = []
    for subnet_id, items in sorted(by_subnet.items()):
        port = ports.get(router_id(subnet_id))
        inside = ipam.get_subnet(conn, subnet_id)
        outside = _external_subnet(conn, items[0][0], items[0][1])
        if port is None or inside is None or outside is None:
            log.warning("no router port or subnet for floating IPs on subnet %s", subnet_id)
            continue
        nat = tuple(sorted((f, x) for net, f, x in items
                           if net == outside.network_id and ipam.in_subnet(outside, f)))
        out.append(RouterSpec(router_id=router_id(subnet_id), inside=subnet_info(conn, inside),
                              inside_address=port.fixed_ips[0]["ip_address"],
                              outside=subnet_info(conn, outside), nat=nat))
    return out


def _external_subnet(conn: Connection, network_id: str, address: str) -> Row[Any] | None:
    ip = ipaddress.ip_address(address)
    return next((s for s in ipam.subnets_of(conn, network_id)
                 if ip in ipaddress.ip_network(s.cidr)), None)


class FloatingIPSync:
    def __init__(self, engine: Engine, routers: RouterDriver, interval: float) -> None:
        self.engine = engine
        self.routers = routers
        self.interval = interval
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def converge(self) -> None:
        with self.engine.connect() as conn:
            wanted = desired_routers(conn)
        await self.routers.converge(wanted)

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.converge()
            except Exception:
                log.exception("floating IP routers did not converge; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
