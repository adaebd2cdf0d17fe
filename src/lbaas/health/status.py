"""Operating statuses from one heartbeat, computed exactly as Octavia's health manager does.

Port of ``UpdateHealthDb._update_health`` / ``_process_pool_status`` (version >= 2 messages):
listeners OPEN -> ONLINE, FULL -> DEGRADED, missing -> ERROR (enabled, load balancer ACTIVE) or
OFFLINE; pools UP -> ONLINE, DOWN -> ERROR, missing -> OFFLINE; members UP* -> ONLINE, DOWN* ->
ERROR (pool and load balancer DEGRADED), DRAIN -> DRAINING, MAINT -> OFFLINE, "no check" ->
NO_MONITOR, missing -> OFFLINE unless NO_MONITOR; the load balancer is ONLINE (OFFLINE when
disabled) unless something above degraded it. Pure: a snapshot and a message in, the changed
values out, so the writer touches only rows whose status differs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lbaas.domain import constants as c
from lbaas.wire.heartbeat import pool_id_of


@dataclass
class StatusChanges:
    load_balancer: dict[str, str] = field(default_factory=dict)
    listener: dict[str, str] = field(default_factory=dict)
    pool: dict[str, str] = field(default_factory=dict)
    member: dict[str, str] = field(default_factory=dict)

    def count(self) -> int:
        return sum(len(d) for d in (self.load_balancer, self.listener, self.pool, self.member))


def compute_statuses(lb: dict[str, Any], health: dict[str, Any]) -> StatusChanges:
    """``lb``: {id, enabled, provisioning_status, operating_status, listeners: {id: {enabled,
    operating_status}}, pools: {id: {operating_status, members: {id: operating_status}}}}."""
    out = StatusChanges()
    lb_status = c.ONLINE if lb["enabled"] else c.OFFLINE
    reported = health.get("listeners", {})
    for listener_id, db_listener in lb["listeners"].items():
        status = None
        if listener_id not in reported:
            active = lb["provisioning_status"] == c.ACTIVE
            status = c.ERROR if db_listener["enabled"] and active else c.OFFLINE
        else:
            state = reported[listener_id].get("status")
            if state == "OPEN":
                status = c.ONLINE
            elif state == "FULL":
                status = c.DEGRADED
                if lb_status == c.ONLINE:
                    lb_status = c.DEGRADED
        if status is not None and status != db_listener["operating_status"]:
            out.listener[listener_id] = status

    pools = {pool_id_of(k): v for k, v in health.get("pools", {}).items()}
    for pool_id, db_pool in lb["pools"].items():
        if pool_id not in pools:
            if db_pool["operating_status"] != c.OFFLINE:
                out.pool[pool_id] = c.OFFLINE
            continue
        lb_status = _pool(pool_id, db_pool, pools[pool_id], lb_status, out)

    if lb_status != lb["operating_status"]:
        out.load_balancer[lb["id"]] = lb_status
    return out


def _pool(pool_id: str, db_pool: dict[str, Any], pool: dict[str, Any], lb_status: str,
          out: StatusChanges) -> str:
    pool_status = None
    if pool.get("status") == "UP":
        pool_status = c.ONLINE
    elif pool.get("status") == "DOWN":
        pool_status = c.ERROR
        lb_status = c.ERROR
    members = pool.get("members", {})
    for member_id, db_status in db_pool["members"].items():
        status = None
        if member_id not in members:
            if db_status != c.NO_MONITOR:
                status = c.OFFLINE
        else:
            state = str(members[member_id])
            if state.startswith("UP"):
                status = c.ONLINE
            elif state.startswith("DOWN"):
                status = c.ERROR
                if pool_status == c.ONLINE:
                    pool_status = c.DEGRADED
                    if lb_status == c.ONLINE:
                        lb_status = c.DEGRADED
            elif state == "DRAIN":
                status = c.DRAINING
            elif state == "MAINT":
                status = c.OFFLINE
            elif state == "no check":
                status = c.NO_MONITOR
            # RESTARTING and anything unknown: keep the previous status
        if status is not None and status != db_status:
            out.member[member_id] = status
    if pool_status is not None and pool_status != db_pool["operating_status"]:
        out.pool[pool_id] = pool_status
    return lb_status
