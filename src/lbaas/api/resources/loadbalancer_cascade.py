"""What a cascade delete or a failover request marks for the reconciler."""

from __future__ import annotations

from sqlalchemy import Connection, select, update

from lbaas.domain import constants as c
from lbaas.store import tables as t


def cascade_mark_deleted(conn: Connection, lb_id: str) -> None:
    listener_ids = [r.id for r in conn.execute(select(t.listener.c.id).where(
        t.listener.c.load_balancer_id == lb_id))]
    pool_ids = [r.id for r in conn.execute(select(t.pool.c.id).where(
        t.pool.c.load_balancer_id == lb_id))]
    policy_ids = [r.id for r in conn.execute(select(t.l7policy.c.id).where(
        t.l7policy.c.listener_id.in_(listener_ids)))] if listener_ids else []
    for table, column, parents in (
            (t.listener, "load_balancer_id", [lb_id]), (t.pool, "load_balancer_id", [lb_id]),
            (t.member, "pool_id", pool_ids), (t.health_monitor, "pool_id", pool_ids),
            (t.l7policy, "listener_id", listener_ids), (t.l7rule, "l7policy_id", policy_ids)):
        if parents:
            conn.execute(update(table).where(table.c[column].in_(parents))
                         .values(provisioning_status=c.PENDING_DELETE))


def request_failover(conn: Connection, lb_id: str, amphora_id: str | None = None) -> None:
    """Flag amphorae for replacement; the reconciler rebuilds every flagged one."""
    stmt = update(t.amphora).where(t.amphora.c.load_balancer_id == lb_id,
                                   t.amphora.c.status != c.DELETED)
    if amphora_id is not None:
        stmt = stmt.where(t.amphora.c.id == amphora_id)
    conn.execute(stmt.values(failover_requested=True))
