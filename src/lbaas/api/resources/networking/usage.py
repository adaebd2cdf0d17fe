"""What keeps a network or subnet in use, and which projects use a network.

A subnet is in use while addresses are allocated from it or while a member names it (an
amphora would need a leg on it); a network while any port is on it or any of its subnets is in
use. A network stops being usable by other projects when it is neither shared nor external
anymore; Neutron refuses that change (``InvalidSharedSetting``) while another project has ports
or subnets on it, and so do we, counting also the load balancers and members that use it.
"""

from __future__ import annotations

from sqlalchemy import Connection, or_, select

from lbaas.api.resources.networking.errors import NeutronError
from lbaas.domain import constants as c
from lbaas.store import tables as t


def subnet_used(conn: Connection, subnet_id: str) -> bool:
    allocated = conn.execute(select(t.ip_allocation.c.port_id).where(
        t.ip_allocation.c.subnet_id == subnet_id).limit(1)).first()
    members = conn.execute(select(t.member.c.id).where(
        t.member.c.subnet_id == subnet_id).limit(1)).first()
    return allocated is not None or members is not None


def network_used(conn: Connection, network_id: str) -> bool:
    if conn.execute(select(t.port.c.id).where(t.port.c.network_id == network_id)
                    .limit(1)).first() is not None:
        return True
    return any(subnet_used(conn, s) for s in subnet_ids(conn, network_id))


def subnet_ids(conn: Connection, network_id: str) -> list[str]:
    return list(conn.execute(select(t.subnet.c.id).where(
        t.subnet.c.network_id == network_id)).scalars())


def projects_using(conn: Connection, network_id: str) -> set[str]:
    """Projects with ports, subnets, VIPs or members on the network (the operator's None
    excluded); ports of Neutron's own devices (``network:*``) do not count, as in Neutron."""
    subnets = subnet_ids(conn, network_id)
    found: set[str | None] = set()
    found.update(conn.execute(select(t.port.c.project_id).where(
        t.port.c.network_id == network_id,
        or_(t.port.c.device_owner.is_(None),
            ~t.port.c.device_owner.startswith("network:")))).scalars())
    found.update(conn.execute(select(t.subnet.c.project_id).where(
        t.subnet.c.network_id == network_id)).scalars())
    found.update(conn.execute(select(t.load_balancer.c.project_id).where(
        t.load_balancer.c.vip_network_id == network_id,
        t.load_balancer.c.provisioning_status != c.DELETED)).scalars())
    if subnets:
        found.update(conn.execute(select(t.member.c.project_id).where(
            t.member.c.subnet_id.in_(subnets))).scalars())
    return {p for p in found if p}


def check_still_usable(conn: Connection, network_id: str, owner: str | None) -> None:
    """Refuse making the network private while projects other than its owner use it."""
    others = projects_using(conn, network_id) - {owner}
    if others:
        raise NeutronError("InvalidSharedSetting", "Unable to reconfigure sharing settings for "
                           f"network {network_id}. Multiple projects are using it.", 409)
