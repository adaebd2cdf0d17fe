"""Load a whole load balancer (the aggregate the reconciler and ``render`` work from).

``load_rows`` reads the live child rows (not being deleted) with their statuses, by table name;
``assemble`` nests them under the load balancer and strips what render does not need. The
reconciler puts ``controller.containment`` between the two (objects in ERROR are rendered from
the configuration the data plane last accepted).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, select

from lbaas.store import tables as t

Rows = dict[str, list[dict[str, Any]]]  # table name -> rows (plain dicts, store column names)
STRIP = ("provisioning_status", "operating_status", "created_at", "updated_at", "generation",
         "applied_generation", "last_request_id")


def _scoped(table: Any, where: Any) -> Any:
    return select(table).where(where).order_by(table.c.id)


# Built once with the load balancer id as a parameter: building a Select and its cache key
# on every pass was a fifth of the reconciler's CPU on PostgreSQL (docs/scale.md).
_LB = bindparam("lb_id")
_LISTENER_IDS = select(t.listener.c.id).where(t.listener.c.load_balancer_id == _LB)
_POOL_IDS = select(t.pool.c.id).where(t.pool.c.load_balancer_id == _LB)
_LB_ROW = select(t.load_balancer).where(t.load_balancer.c.id == _LB)
# (table name, statement, parent table, parent column)
_CHILDREN = (
    ("listener", _scoped(t.listener, t.listener.c.load_balancer_id == _LB), None, None),
    ("pool", _scoped(t.pool, t.pool.c.load_balancer_id == _LB), None, None),
    ("member", _scoped(t.member, t.member.c.pool_id.in_(_POOL_IDS)), "pool", "pool_id"),
    ("health_monitor", _scoped(t.health_monitor, t.health_monitor.c.pool_id.in_(_POOL_IDS)),
     "pool", "pool_id"),
    ("l7policy", _scoped(t.l7policy, t.l7policy.c.listener_id.in_(_LISTENER_IDS)),
     "listener", "listener_id"),
    ("l7rule", _scoped(t.l7rule, t.l7rule.c.l7policy_id.in_(
        select(t.l7policy.c.id).where(t.l7policy.c.listener_id.in_(_LISTENER_IDS)))),
     "l7policy", "l7policy_id"),
)


def load_rows(conn: Connection, lb_id: str, lb_row: dict[str, Any] | None = None) \
        -> tuple[dict[str, Any], Rows]:
    """The load balancer row (``lb_row`` when the caller has just read it) and its live
    children by table name, statuses included (a child of a parent being deleted is left out
    with it; a table whose parents are all gone is not even read)."""
    params = {"lb_id": lb_id}
    lb = lb_row if lb_row is not None else plain(conn.execute(_LB_ROW, params).one())
    rows: Rows = {}
    for name, query, parent, column in _CHILDREN:
        if parent is not None and not rows[parent]:
            rows[name] = []
            continue
        live = [r for r in map(plain, conn.execute(query, params))
                if r["provisioning_status"] != "PENDING_DELETE"]
        if parent is not None:
            parents = {p["id"] for p in rows[parent]}
            live = [r for r in live if r[column] in parents]
        rows[name] = live
    return lb, rows


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


def plain(row: Any) -> dict[str, Any]:
    """A row as a plain dict (what ``load_rows`` takes as ``lb_row``)."""
    # Row keys are str subclasses (quoted_name); JSON encoders want plain str.
    return {str(k): v for k, v in row._mapping.items()}


def _clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items() if k not in STRIP}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    return obj
