"""Stale amphorae: no heartbeat for ``heartbeat_timeout`` -> flagged for failover.

Failover is a reconcile: the amphora is flagged ``failover_requested``, the load balancer's
generation is bumped (so the periodic resync finds it even if the notification is lost) and
it goes ``PENDING_UPDATE`` as upstream's does; the reconciler retires the flagged amphora and
builds a new one with the same VIP and configuration.

Key choice, grace periods: an amphora that never sent a heartbeat is judged from its creation
plus ``build_grace``, and no amphora is judged before the health manager has itself been
listening for ``heartbeat_timeout`` (a restarted controller must not fail over everything).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, or_, select, update

from lbaas.domain import constants as c
from lbaas.store import tables as t


def find_stale(engine: Engine, now: datetime, timeout: float, build_grace: float,
               listening_since: datetime) -> list[tuple[str, str]]:
    """(amphora id, load balancer id) of every amphora due for failover."""
    if now - listening_since < timedelta(seconds=timeout):
        return []
    a, lb = t.amphora, t.load_balancer
    rows = []
    # only the late ones leave the database: with 10,000 amphorae checked every 0.1 s, reading
    # every row would cost the health manager more than recording their heartbeats
    late = or_(a.c.last_heartbeat < now - timedelta(seconds=timeout),
               and_(a.c.last_heartbeat.is_(None),
                    a.c.created_at < now - timedelta(seconds=build_grace)))
    with engine.connect() as conn:
        for r in conn.execute(
                select(a.c.id, a.c.load_balancer_id, a.c.last_heartbeat, a.c.created_at)
                .join(lb, lb.c.id == a.c.load_balancer_id)
                .where(a.c.status == c.AMPHORA_ALLOCATED, a.c.failover_requested.is_(False),
                       late, lb.c.provisioning_status.not_in([c.DELETED, c.PENDING_DELETE]),
                       lb.c.provider.not_in(c.NOOP_PROVIDERS))):
            if r.last_heartbeat is not None:
                due = r.last_heartbeat + timedelta(seconds=timeout)
            else:
                due = r.created_at + timedelta(seconds=build_grace)
            if now > max(due, listening_since + timedelta(seconds=timeout)):
                rows.append((r.id, r.load_balancer_id))
    return rows


def forget_digest(engine: Engine, amphora_id: str, reported: str | None) -> None:
    """The amphora serves another bundle than we pushed: record that so the reconciler
    pushes the right one again."""
    a = t.amphora
    with engine.begin() as conn:
        conn.execute(update(a).where(a.c.id == amphora_id).values(active_digest=reported))
