"""Load a whole load balancer (the aggregate the reconciler and ``render`` work from)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from lbaas.store import tables as t


def _rows(conn: Connection, table: Any, column: str, parents: list[str]) -> list[dict[str, Any]]:
    if not parents:
        return []
    stmt = select(table).where(table.c[column].in_(parents)).order_by(table.c.id)
    return [_plain(r) for r in conn.execute(stmt)]


def load_aggregate(conn: Connection, lb_id: str) -> dict[str, Any]:
    """Everything that shapes the data plane, skipping objects being deleted."""
    lb = conn.execute(select(t.load_balancer).where(t.load_balancer.c.id == lb_id)).one()
    live = lambda rows: [r for r in rows if r["provisioning_status"] != "PENDING_DELETE"]  # noqa: E731
    listeners = live(_rows(conn, t.listener, "load_balancer_id", [lb_id]))
    pools = live(_rows(conn, t.pool, "load_balancer_id", [lb_id]))
    pool_ids = [p["id"] for p in pools]
    members = live(_rows(conn, t.member, "pool_id", pool_ids))
    monitors = live(_rows(conn, t.health_monitor, "pool_id", pool_ids))
    policies = live(_rows(conn, t.l7policy, "listener_id", [li["id"] for li in listeners]))
    rules = live(_rows(conn, t.l7rule, "l7policy_id", [p["id"] for p in policies]))
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
             "generation", "applied_generation", "last_request_id")
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
