"""Flagging an amphora for failover: the one write every detector (health manager, fleet host
poller) makes; the reconciler then rebuilds it."""

from __future__ import annotations

from sqlalchemy import Engine, update

from lbaas.domain import constants as c
from lbaas.store import tables as t


def request_failover(engine: Engine, amphora_id: str, lb_id: str) -> bool:
    """Flag one amphora: the load balancer's generation is bumped and it goes PENDING_UPDATE.
    False if someone else already flagged it or it is gone (the conditional update makes each
    failover happen once, whichever detector sees it first)."""
    a, lb = t.amphora, t.load_balancer
    with engine.begin() as conn:
        flagged = conn.execute(update(a).where(
            a.c.id == amphora_id, a.c.status == c.AMPHORA_ALLOCATED,
            a.c.failover_requested.is_(False)).values(failover_requested=True)).rowcount
        if not flagged:
            return False
        conn.execute(update(lb).where(lb.c.id == lb_id).values(
            generation=lb.c.generation + 1))
        conn.execute(update(lb).where(
            lb.c.id == lb_id, lb.c.provisioning_status.in_([c.ACTIVE, c.ERROR]))
            .values(provisioning_status=c.PENDING_UPDATE))
    return True
