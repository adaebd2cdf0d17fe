"""Leases: at most one process holds a load balancer, or runs a periodic job, at a time.

Works the same on SQLite, PostgreSQL and MariaDB: an insert wins a free lease, an update that
matches only an expired row (or our own) takes one over; the row count says who won. Times are
the claiming process's wall clock (the hosts of a deployment keep NTP time).

Load balancer leases (decision 0003) are held for one reconcile pass and renewed while it runs
(``keep``), so a pass longer than the lease time is never taken over from a live worker, and a
dead worker's lease expires after at most ``ttl``. Job leases (``job:<name>``) make a periodic
job run once per period across every instance: ``claim_due`` takes the row only once it is due,
``finish_job`` marks it idle until the next period. A job whose runner died is due again when its
running lease (``ttl``) expires, not a whole period later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from sqlalchemy import Connection, Engine, bindparam, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from lbaas.store import tables as t

log = logging.getLogger(__name__)
IDLE = ""  # the holder of a job lease nobody is running


def job_key(name: str) -> str:
    return f"job:{name}"[:36]


# Built once: one of each runs on every reconcile pass (parameters: key, who, until, now).
_KEY, _WHO, _UNTIL = bindparam("key"), bindparam("who"), bindparam("until")
_INSERT = insert(t.lease).values(load_balancer_id=_KEY, holder=_WHO, expires_at=_UNTIL)
_TAKE_OVER = update(t.lease).where(
    t.lease.c.load_balancer_id == _KEY,
    or_(t.lease.c.expires_at < bindparam("now"), t.lease.c.holder == _WHO)).values(
    holder=_WHO, expires_at=_UNTIL)
_RENEW = update(t.lease).where(t.lease.c.load_balancer_id == _KEY, t.lease.c.holder == _WHO)\
    .values(expires_at=_UNTIL)
_RELEASE = delete(t.lease).where(t.lease.c.load_balancer_id == _KEY, t.lease.c.holder == _WHO)


def claim(engine: Engine, lb_id: str, holder: str, ttl: float, now: float | None = None) -> bool:
    with engine.connect() as conn:
        return claim_on(conn, lb_id, holder, ttl, now)


def claim_on(conn: Connection, lb_id: str, holder: str, ttl: float,
             now: float | None = None) -> bool:
    """``claim`` on a connection the caller goes on using (a reconcile pass reads on it next:
    one pool checkout, and its ping, fewer). Commits; ``conn`` must not be in a transaction."""
    now = time.time() if now is None else now
    params = {"key": lb_id, "who": holder, "until": now + ttl}
    try:  # a released lease has no row: the insert usually wins in one round trip
        conn.execute(_INSERT, params)
        conn.commit()
        return True
    except IntegrityError:
        conn.rollback()
    won = bool(conn.execute(_TAKE_OVER, {**params, "now": now}).rowcount)
    conn.commit()
    return won


def renew(engine: Engine, key: str, holder: str, ttl: float, now: float | None = None) -> bool:
    """Extend our lease; False when it is no longer ours (it expired and was taken over)."""
    now = time.time() if now is None else now
    with engine.begin() as conn:
        return bool(conn.execute(_RENEW, {"key": key, "who": holder,
                                          "until": now + ttl}).rowcount)


def release(engine: Engine, lb_id: str, holder: str) -> None:
    with engine.begin() as conn:
        conn.execute(_RELEASE, {"key": lb_id, "who": holder})


def claim_due(engine: Engine, key: str, holder: str, ttl: float, first_due: float,
              now: float | None = None) -> bool:
    """Take job lease ``key`` for ``ttl`` if its period is over (or its runner died).

    A job never seen before is first due at ``first_due`` (False now)."""
    now = time.time() if now is None else now
    lease = t.lease
    with engine.begin() as conn:
        if conn.execute(update(lease).where(lease.c.load_balancer_id == key,
                                            lease.c.expires_at < now)
                        .values(holder=holder, expires_at=now + ttl)).rowcount:
            return True
    with contextlib.suppress(IntegrityError), engine.begin() as conn:
        conn.execute(insert(lease).values(load_balancer_id=key, holder=IDLE,
                                          expires_at=first_due))
    return False


def finish_job(engine: Engine, key: str, holder: str, next_due: float) -> None:
    lease = t.lease
    with engine.begin() as conn:
        conn.execute(update(lease).where(lease.c.load_balancer_id == key,
                                         lease.c.holder == holder)
                     .values(holder=IDLE, expires_at=next_due))


def running_elsewhere(engine: Engine, key: str, holder: str, now: float | None = None) -> bool:
    """Someone else holds job lease ``key`` and has not let it expire."""
    now = time.time() if now is None else now
    lease = t.lease
    with engine.connect() as conn:
        row = conn.execute(select(lease.c.holder, lease.c.expires_at)
                           .where(lease.c.load_balancer_id == key)).first()
    return row is not None and row.holder not in (IDLE, holder) and row.expires_at >= now


@contextlib.asynccontextmanager
async def keep(engine: Engine, key: str, holder: str, ttl: float) -> AsyncIterator[None]:
    """Renew lease ``key`` every ``ttl / 3`` while the body runs. If it is lost (the database
    was unreachable for longer than ``ttl`` and someone else took it), the body is cancelled:
    two holders must never work at once."""
    body = asyncio.current_task()
    lost = False

    async def renewing() -> None:
        nonlocal lost
        while True:
            await asyncio.sleep(ttl / 3)
            try:
                ours = await asyncio.to_thread(renew, engine, key, holder, ttl)
            except Exception as exc:  # database unreachable: try again until the lease ends
                log.warning("cannot renew lease %s: %s", key, exc)
                continue
            if not ours:
                log.error("lease %s was taken over: stopping the work under it", key)
                lost = True
                if body is not None:
                    body.cancel()
                return

    renewer = asyncio.create_task(renewing())
    try:
        yield
    except asyncio.CancelledError:
        if not lost:
            raise
        if body is not None:
            body.uncancel()
        raise LeaseLost(key) from None
    finally:
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewer


class LeaseLost(Exception):
    """The lease ran out under work in progress and another holder has it now."""


async def lead(engine: Engine, key: str, holder: str, ttl: float,
               body: Callable[[], Awaitable[None]]) -> None:
    """Run ``body`` only while this process holds lease ``key``, for ever: one leader at a
    time across every process; another takes over within ``ttl`` of the leader's death."""
    while True:
        try:
            ours = await asyncio.to_thread(claim, engine, key, holder, ttl)
        except Exception as exc:
            log.warning("cannot claim lease %s: %r", key, exc)
            ours = False
        if ours:
            try:
                async with keep(engine, key, holder, ttl):
                    await body()
            except LeaseLost:
                pass
            except Exception:
                log.exception("work under lease %s failed", key)
        await asyncio.sleep(ttl / 3)
