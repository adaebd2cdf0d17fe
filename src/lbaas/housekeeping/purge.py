"""Purge load balancer and amphora rows that have been DELETED for longer than the expiry age.

Upstream's housekeeping keeps DELETED rows for ``load_balancer_expiry_age`` and
``amphora_expiry_age`` (a week) so operators can still see what happened, then removes them.
Key choice: the age is measured from ``updated_at`` (when the row became DELETED, falling back to
``created_at``), and everything keyed by the purged ids goes in the same transaction: child
objects left by an interrupted teardown, the amphorae's ports and statistics, tags and leases.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select

from lbaas.domain import constants as c
from lbaas.store import ipam
from lbaas.store import tables as t


@dataclass(frozen=True)
class PurgeResult:
    load_balancers: int
    amphorae: int


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _expired(table: Any, status_column: Any, cutoff: datetime) -> Any:
    changed = func.coalesce(table.c.updated_at, table.c.created_at)
    return select(table.c.id).where(status_column == c.DELETED, changed < cutoff)


def purge_deleted(engine: Engine, expiry_seconds: float,
                  now: datetime | None = None) -> PurgeResult:
    """Remove expired DELETED load balancers (with their amphorae) and expired amphorae."""
    cutoff = (now or _utcnow()) - timedelta(seconds=expiry_seconds)
    lb, amp = t.load_balancer, t.amphora
    with engine.begin() as conn:
        lb_ids = [r[0] for r in conn.execute(_expired(lb, lb.c.provisioning_status, cutoff))]
        amp_ids = {r[0] for r in conn.execute(_expired(amp, amp.c.status, cutoff))}
        if lb_ids:
            amp_ids |= {r[0] for r in conn.execute(select(amp.c.id).where(
                amp.c.load_balancer_id.in_(lb_ids)))}
        _purge_amphorae(conn, sorted(amp_ids))
        _purge_load_balancers(conn, lb_ids)
    return PurgeResult(load_balancers=len(lb_ids), amphorae=len(amp_ids))


def _purge_amphorae(conn: Connection, ids: list[str]) -> None:
    if not ids:
        return
    # lists fetched in full before deleting: an open SELECT during a write makes SQLite (WAL)
    # fail with "database is locked" when another writer committed meanwhile
    for port_id in _ids(conn, t.port, t.port.c.device_id, ids):
        ipam.delete_port(conn, port_id)
    conn.execute(delete(t.listener_statistics).where(
        t.listener_statistics.c.amphora_id.in_(ids)))
    conn.execute(delete(t.amphora).where(t.amphora.c.id.in_(ids)))


def _purge_load_balancers(conn: Connection, ids: list[str]) -> None:
    if not ids:
        return
    listeners = _ids(conn, t.listener, t.listener.c.load_balancer_id, ids)
    pools = _ids(conn, t.pool, t.pool.c.load_balancer_id, ids)
    members = _ids(conn, t.member, t.member.c.pool_id, pools)
    monitors = _ids(conn, t.health_monitor, t.health_monitor.c.pool_id, pools)
    policies = _ids(conn, t.l7policy, t.l7policy.c.listener_id, listeners)
    rules = _ids(conn, t.l7rule, t.l7rule.c.l7policy_id, policies)
    for table, doomed in ((t.l7rule, rules), (t.l7policy, policies),
                          (t.health_monitor, monitors), (t.member, members)):
        if doomed:
            conn.execute(delete(table).where(table.c.id.in_(doomed)))
    if listeners:
        conn.execute(delete(t.listener_statistics).where(
            t.listener_statistics.c.listener_id.in_(listeners)))
    if pools:
        conn.execute(delete(t.pool).where(t.pool.c.id.in_(pools)))
    if listeners:
        conn.execute(delete(t.listener).where(t.listener.c.id.in_(listeners)))
    tagged = [*ids, *listeners, *pools, *members, *monitors, *policies, *rules]
    conn.execute(delete(t.tag).where(t.tag.c.resource_id.in_(tagged)))
    for (port_id,) in list(conn.execute(select(t.load_balancer.c.vip_port_id).where(
            t.load_balancer.c.id.in_(ids), t.load_balancer.c.vip_port_id.is_not(None)))):
        ipam.delete_port(conn, port_id)
    conn.execute(delete(t.lease).where(t.lease.c.load_balancer_id.in_(ids)))
    conn.execute(delete(t.load_balancer).where(t.load_balancer.c.id.in_(ids)))


def _ids(conn: Connection, table: Any, column: Any, parents: list[str]) -> list[str]:
    if not parents:
        return []
    return [r[0] for r in conn.execute(select(table.c.id).where(column.in_(parents)))]
