"""Floating IP facts both the API and the controller read: port owners and router identity.

Key choice: there is no router table. Each internal subnet that has an associated floating IP
is connected to the external network by one implicit router whose id is derived from the
subnet id; its address on that subnet is a ``network:router_interface`` port (device_id = the
router id), and each floating address is a ``network:floatingip`` port on the external
network (device_id = the floating IP id). ``associations`` is the desired NAT from these rows.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from lbaas.store import tables as t

FIP_OWNER = "network:floatingip"
ROUTER_OWNER = "network:router_interface"
ROUTER_NAMESPACE = uuid.UUID("0e8f3a52-3c1d-4b8e-9a57-41d3c7f0b6a2")


def router_id(subnet_id: str) -> str:
    """The implicit router that connects ``subnet_id`` to the external network."""
    return str(uuid.uuid5(ROUTER_NAMESPACE, f"router:{subnet_id}"))


@dataclass(frozen=True)
class Association:
    floating_ip_id: str
    floating_address: str
    floating_network_id: str
    fixed_address: str
    subnet_id: str  # the internal subnet holding fixed_address


def associations(conn: Connection) -> list[Association]:
    """Floating IPs whose port still exists and still holds their fixed address."""
    rows = list(conn.execute(select(t.floating_ip).where(t.floating_ip.c.port_id.is_not(None))
                             .order_by(t.floating_ip.c.id)))
    ids = [r.port_id for r in rows]
    ports: dict[str, Any] = {p.id: p for p in conn.execute(
        select(t.port).where(t.port.c.id.in_(ids)))} if ids else {}
    out = []
    for fip in rows:
        port = ports.get(fip.port_id)
        subnet = next((f["subnet_id"] for f in port.fixed_ips
                       if f["ip_address"] == fip.fixed_ip_address), None) if port else None
        if subnet is not None:
            out.append(Association(fip.id, fip.floating_ip_address, fip.floating_network_id,
                                   fip.fixed_ip_address, subnet))
    return out


def router_ports(conn: Connection) -> dict[str, Any]:
    """Router interface ports by router id."""
    return {p.device_id: p for p in conn.execute(
        select(t.port).where(t.port.c.device_owner == ROUTER_OWNER))}
