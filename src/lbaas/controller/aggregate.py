"""Load a whole load balancer (the aggregate the reconciler and ``render`` work from).

``load_rows`` reads the live child rows (not being deleted) with their statuses, by table name;
``assemble`` nests them under the load balancer and strips what render does not need. The
reconciler puts ``controller.containment`` between the two (objects in ERROR are rendered from
the configuration the data plane last accepted).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from lbaas.store import tables as t

Rows = dict[str, list[dict[str, Any]]]  # table name -> rows (plain dicts, store column names)
STRIP = ("provisioning_status", "operating_status", "created_at", "updated_at", "generation",
         "applied_generation", "last_request_id")


def _rows(conn: Connection, table: Any, column: str, parents: list[str]) -> list[dict[str, Any]]:
    if not parents:
        return []
    stmt = select(table).where(table.c[column].in_(parents)).order_by(table.c.id)
    return [_plain(r) for r in conn.execute(stmt)
            if r._mapping["provisioning_status"] != "PENDING_DELETE"]


def load_rows(conn: Connection, lb_id: str) -> tuple[dict[str, Any], Rows]:
    """The load balancer row and its live children by table name, statuses included."""
    lb = _plain(conn.execute(select(t.load_balancer).where(t.load_balancer.c.id == lb_id)).one())
    listeners = _rows(conn, t.listener, "load_balancer_id", [lb_id])
    pools = _rows(conn, t.pool, "load_balancer_id", [lb_id])
    pool_ids = [p["id"] for p in pools]
    policies = _rows(conn, t.l7policy, "listener_id", [li["id"] for li in listeners])
    return lb, {
        "listener": listeners, "pool": pools,
        "member": _rows(conn, t.member, "pool_id", pool_ids),
        "health_monitor": _rows(conn, t.health_monitor, "pool_id", pool_ids),
        "l7policy": policies,
        "l7rule": _rows(conn, t.l7rule, "l7policy_id", [p["id"] for p in policies]),
    }


def assemble(lb: dict[str, Any], rows: Rows) -> dict[str, Any]:
    """Nest ``rows`` under ``lb``; children whose parent is not among them are left out."""
    pools = [dict(p) for p in rows["pool"]]
    policies = [dict(p) for p in rows["l7policy"]]
    for pool in pools:
        pool["members"] = [m for m in rows["member"] if m["pool_id"] == pool["id"]]
        pool["healthmonitor"] = next(
            (h for h in rows["health_monitor"] if h["pool_id"] == pool["id"]), None)
    for policy in policies:
        policy["rules"] = [r for r in rows["l7rule"] if r["l7policy_id"] == policy["id"]]
    listeners = [dict(li) for li in rows["listener"]]
    for listener in listeners:
        listener["l7policies"] = sorted(
            (p for p in policies if p["listener_id"] == listener["id"]),
            key=lambda p: p["position"])
    out = {k: v for k, v in lb.items() if k not in STRIP}
    out["listeners"] = [_clean(li) for li in listeners]
    out["pools"] = [_clean(p) for p in pools]
    return out


def load_aggregate(conn: Connection, lb_id: str) -> dict[str, Any]:
    """Everything that shapes the data plane, skipping objects being deleted."""
    return assemble(*load_rows(conn, lb_id))


def _plain(row: Any) -> dict[str, Any]:
    # Row keys are str subclasses (quoted_name); JSON encoders want plain str.
    return {str(k): v for k, v in row._mapping.items()}


def _clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items() if k not in STRIP}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    return obj
