"""Load balancer stats totals and the status tree (GET .../stats and .../status[es])."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, func, select

from lbaas.api import common
from lbaas.domain import constants as c
from lbaas.store import tables as t
from lbaas.store.listing import ids_by


def sum_stats(conn: Connection, listener_ids: list[str]) -> dict[str, int]:
    totals = {"bytes_in": 0, "bytes_out": 0, "active_connections": 0, "total_connections": 0,
              "request_errors": 0}
    if not listener_ids:
        return totals
    s = t.listener_statistics
    allocated = select(t.amphora.c.id).where(t.amphora.c.status == c.AMPHORA_ALLOCATED)
    for row in conn.execute(select(s).where(s.c.listener_id.in_(listener_ids))):
        totals["bytes_in"] += row.bytes_in
        totals["bytes_out"] += row.bytes_out
        totals["total_connections"] += row.total_connections
        totals["request_errors"] += row.request_errors
    active = conn.execute(select(func.coalesce(func.sum(s.c.active_connections), 0)).where(
        s.c.listener_id.in_(listener_ids), s.c.amphora_id.in_(allocated))).scalar_one()
    totals["active_connections"] = int(active)
    return totals


def status_tree(conn: Connection, lb: Row[Any]) -> dict[str, Any]:
    listeners = list(conn.execute(select(t.listener).where(
        t.listener.c.load_balancer_id == lb.id).order_by(t.listener.c.created_at)))
    pools = {p.id: p for p in conn.execute(select(t.pool).where(
        t.pool.c.load_balancer_id == lb.id))}
    members = ids_by(conn, t.member, "pool_id", list(pools))
    member_rows = {m.id: m for m in conn.execute(select(t.member).where(
        t.member.c.pool_id.in_(list(pools))))} if pools else {}
    hms = {h.pool_id: h for h in conn.execute(select(t.health_monitor).where(
        t.health_monitor.c.pool_id.in_(list(pools))))} if pools else {}
    out_listeners = []
    for li in listeners:
        pool_ids: list[str] = []
        if li.default_pool_id:
            pool_ids.append(li.default_pool_id)
        policies = conn.execute(select(t.l7policy).where(
            t.l7policy.c.listener_id == li.id, t.l7policy.c.admin_state_up.is_(True))
            .order_by(t.l7policy.c.position))
        for pol in policies:
            if pol.redirect_pool_id and pol.redirect_pool_id not in pool_ids:
                has_rule = conn.execute(select(func.count()).select_from(t.l7rule).where(
                    t.l7rule.c.l7policy_id == pol.id)).scalar_one()
                if has_rule:
                    pool_ids.append(pol.redirect_pool_id)
        out_pools = []
        for pid in pool_ids:
            p = pools.get(pid)
            if p is None:
                continue
            entry: dict[str, Any] = {
                "id": p.id, "name": common.text(p.name),
                "provisioning_status": p.provisioning_status,
                "operating_status": p.operating_status,
            }
            hm = hms.get(p.id)
            if hm is not None:
                entry["health_monitor"] = {
                    "id": hm.id, "name": common.text(hm.name), "type": hm.type,
                    "provisioning_status": hm.provisioning_status,
                    "operating_status": hm.operating_status,
                }
            entry["members"] = [{
                "id": m.id, "name": common.text(m.name), "address": m.address,
                "protocol_port": m.protocol_port,
                "provisioning_status": m.provisioning_status,
                "operating_status": m.operating_status,
            } for m in (member_rows[i] for i in members[p.id])]
            out_pools.append(entry)
        out_listeners.append({
            "id": li.id, "name": common.text(li.name),
            "provisioning_status": li.provisioning_status,
            "operating_status": li.operating_status, "pools": out_pools,
        })
    return {"statuses": {"loadbalancer": {
        "id": lb.id, "name": common.text(lb.name),
        "provisioning_status": lb.provisioning_status, "operating_status": lb.operating_status,
        "listeners": out_listeners,
    }}}
