"""Leases: at most one worker holds a load balancer; an expired lease may be taken over.

Works the same on SQLite, PostgreSQL and MariaDB: an insert wins a free lease, an update that
matches only an expired row (or our own) takes one over; the row count says who won.
"""

from __future__ import annotations

import time

from sqlalchemy import Engine, delete, insert, or_, update
from sqlalchemy.exc import IntegrityError

from lbaas.store import tables as t


def claim(engine: Engine, lb_id: str, holder: str, ttl: float, now: float | None = None) -> bool:
    now = time.time() if now is None else now
    lease = t.lease
    with engine.begin() as conn:
        taken = conn.execute(
            update(lease).where(lease.c.load_balancer_id == lb_id,
                                or_(lease.c.expires_at < now, lease.c.holder == holder))
            .values(holder=holder, expires_at=now + ttl)).rowcount
        if taken:
            return True
    try:
        with engine.begin() as conn:
            conn.execute(insert(lease).values(load_balancer_id=lb_id, holder=holder,
                                              expires_at=now + ttl))
        return True
    except IntegrityError:
        return False


def release(engine: Engine, lb_id: str, holder: str) -> None:
    with engine.begin() as conn:
        conn.execute(delete(t.lease).where(t.lease.c.load_balancer_id == lb_id,
                                           t.lease.c.holder == holder))
