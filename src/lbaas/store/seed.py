"""Create the managed networks named in settings (idempotent; ids derived from names).

Seeded networks belong to no project (the operator's). ``public`` and ``private`` are shared so
every project can use them; the management network is never shared: tenants do not see it, and
a data directory seeded before that rule is corrected at the next start.
"""

from __future__ import annotations

import ipaddress
import uuid
from datetime import UTC, datetime

from sqlalchemy import Engine, select, update

from lbaas.settings import NetworkSpec
from lbaas.store import tables as t

NAMESPACE = uuid.UUID("5f0c3c2e-8a1d-4e59-9d0b-6c7b9f1e2a10")
MANAGEMENT_NETWORK = "lb-mgmt-net"  # settings.networking.management_network's default


def network_id(name: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"network:{name}"))


def subnet_id(name: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"subnet:{name}"))


def seed_networks(engine: Engine, specs: tuple[NetworkSpec, ...],
                  management_network: str = MANAGEMENT_NETWORK) -> None:
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    with engine.begin() as conn:
        for spec in specs:
            net_id = network_id(spec.name)
            management = spec.name == management_network
            if conn.execute(select(t.network.c.id).where(t.network.c.id == net_id)).first():
                if management:
                    conn.execute(update(t.network).where(t.network.c.id == net_id)
                                 .values(shared=False))
                continue
            conn.execute(t.network.insert().values(
                id=net_id, project_id=None, name=spec.name, admin_state_up=True,
                shared=not management, router_external=spec.name == "public",
                port_security_enabled=True, created_at=now))
            cidr = ipaddress.ip_network(spec.cidr)
            conn.execute(t.subnet.insert().values(
                id=subnet_id(spec.subnet_name), project_id=None, network_id=net_id,
                name=spec.subnet_name, cidr=str(cidr), ip_version=cidr.version,
                gateway_ip=spec.gateway_ip,
                allocation_pools=[{"start": spec.allocation_start, "end": spec.allocation_end}],
                created_at=now))
