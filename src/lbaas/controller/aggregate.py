"""Load a whole load balancer (the aggregate the reconciler and ``render`` work from)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, select

from lbaas.store import tables as t


def _scoped(table: Any, where: Any) -> Any:
    return select(table).where(where).order_by(table.c.id)


# Built once with the load balancer id as a parameter: building a Select and its cache key
# on every pass was a fifth of the reconciler's CPU on PostgreSQL.
_LB = bindparam("lb_id")
_LISTENER_IDS = select(t.listener.c.id).where(t.listener.c.load_balancer_id == _LB)
_POOL_IDS = select(t.pool.c.id).where(t.pool.c.load_balancer_id == _LB)
QUERIES = (
    _scoped(t.listener, t.listener.c.load_balancer_id == _LB),
    _scoped(t.pool, t.pool.c.load_balancer_id == _LB),
    _scoped(t.member, t.member.c.pool_id.in_(_POOL_IDS)),
    _scoped(t.health_monitor, t.health_monitor.c.pool_id.in_(_POOL_IDS)),
    _scoped(t.l7policy, t.l7policy.c.listener_id.in_(_LISTENER_IDS)),
    _scoped(t.l7rule, t.l7rule.c.l7policy_id.in_(
        select(t.l7policy.c.id).where(t.l7policy.c.listener_id.in_(_LISTENER_IDS)))),
)
_LB_ROW = select(t.load_balancer).where(t.load_balancer.c.id == _LB)


def load_aggregate(conn: Connection, lb_id: str) -> dict[str, Any]:
    """Everything that shapes the data plane, skipping objects being deleted (and the
    children of those: they are attached below only to live parents)."""
    params = {"lb_id": lb_id}
    lb = conn.execute(_LB_ROW, params).one()
    listeners, pools, members, monitors, policies, rules = (
        [r for r in map(_plain, conn.execute(query, params))
         if r["provisioning_status"] != "PENDING_DELETE"] for query in QUERIES)
    for pool in pools:
        pool["members"] = [m for m in members if m["pool_id"] == pool["id"]]
        pool["healthmonitor"] = next((h for h in monitors if h["pool_id"] == pool["id"]), None)
    for policy in policies:
        policy["rules"] = [r for r in rules if r["l7policy_id"] == policy["id"]]
    for listener in listeners:
        listener["l7policies"] = sorted(
            (p for p in policies if p["listener_id"] == listener["id"]),
            key=lambda p: p["position"])
    strip = ("provisioning_status", "operating_status", "created_at", "updated_at",
             "generation", "applied_generation")
    out = {k: v for k, v in _plain(lb).items() if k not in strip}
    out["listeners"] = [_clean(li, strip) for li in listeners]
    out["pools"] = [_clean(p, strip) for p in pools]
    return out


def _plain(row: Any) -> dict[str, Any]:
    # Row keys are str subclasses (quoted_name); JSON encoders want plain str.
    return {str(k): v for k, v in row._mapping.items()}


def _clean(obj: Any, strip: tuple[str, ...]) -> Any:
    if isinstance(obj, dict):
        return {k: _clean(v, strip) for k, v in obj.items() if k not in strip}
    if isinstance(obj, list):
        return [_clean(v, strip) for v in obj]
    return obj
