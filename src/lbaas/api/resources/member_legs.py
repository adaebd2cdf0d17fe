"""The amphora legs a member brings on a subnet of a network its project does not own.

Each amphora of a load balancer gets a port on every subnet its members live on (VIP subnet
aside), in the load balancer's project; on a shared or external network (``public``) those
addresses count against ``[neutron_quotas] quota_shared_address`` like its VIPs and floating
IPs (``networking.quotas``). A member on a subnet the load balancer has no leg on yet is refused
with the same 409 as the VIP when the legs would pass the limit. Members without ``subnet_id``
("routed") are not checked here: their legs are counted once made.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Row, bindparam, select

from lbaas.api.errors import Conflict
from lbaas.api.http import ApiRequest
from lbaas.api.resources.networking import quotas
from lbaas.domain import constants as c
from lbaas.store import tables as t

_MEMBER_SUBNETS = select(t.member.c.subnet_id).join(
    t.pool, t.pool.c.id == t.member.c.pool_id).where(
    t.pool.c.load_balancer_id == bindparam("lb_id"))


def check(conn: Connection, req: ApiRequest, lb: Row[Any],
          subnet_ids: Iterable[str | None]) -> None:
    if not c.is_amphora_provider(lb.provider) or not lb.project_id:
        return
    wanted = {s for s in subnet_ids if s and s != lb.vip_subnet_id}
    if not wanted:  # members on the VIP subnet (or none given) add no leg
        return
    have = set(conn.execute(_MEMBER_SUBNETS, {"lb_id": lb.id}).scalars())
    new = wanted - have
    if not new:
        return
    foreign = list(conn.execute(select(t.subnet.c.network_id).join(
        t.network, t.network.c.id == t.subnet.c.network_id).where(
        t.subnet.c.id.in_(sorted(new)), quotas.not_owned_by(lb.project_id))).scalars())
    if not foreign:
        return
    per_subnet = 2 if lb.topology == c.TOPOLOGY_ACTIVE_STANDBY else 1
    if quotas.over_shared_quota(conn, req, lb.project_id, foreign[0],
                                per_subnet * len(foreign)):
        raise Conflict(quotas.over_quota_message(quotas.SHARED_ADDRESS))
