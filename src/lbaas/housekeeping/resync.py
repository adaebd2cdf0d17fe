"""Full resync: re-check every live load balancer against what its amphorae really serve.

The reconcile queue skips an amphora whose recorded ``active_digest`` already matches the
desired one, so drift on the amphora (a config removed, HAProxy dead and not restartable, an
agent restarted empty) would never be repaired. Key choice: ask each agent for its status; where
it does not serve the recorded digest, forget the recorded digest (only if nobody changed it
meanwhile) so the next reconcile pushes the whole bundle again. Then every ACTIVE load balancer
is enqueued; ERROR ones are left for the operator (upstream does not heal them by itself).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import Engine, select, update

from lbaas.domain import constants as c
from lbaas.drivers.base import ComputeInfo, DriverError
from lbaas.store import tables as t

log = logging.getLogger(__name__)


def live_load_balancers(engine: Engine) -> list[str]:
    lb = t.load_balancer
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(select(lb.c.id).where(
            lb.c.provisioning_status == c.ACTIVE))]


async def forget_drifted(engine: Engine, amphora_driver: Any, concurrency: int = 8) -> list[str]:
    """Clear ``active_digest`` of amphorae not serving it; return their load balancer ids."""
    status = getattr(amphora_driver, "status", None)
    if status is None:  # the fake driver has nothing to drift
        return []
    amp = t.amphora
    with engine.connect() as conn:
        amps = list(conn.execute(select(amp).where(
            amp.c.status == c.AMPHORA_ALLOCATED, amp.c.compute_id.is_not(None),
            amp.c.lb_network_ip.is_not(None), amp.c.active_digest.is_not(None))))
    gate = asyncio.Semaphore(concurrency)

    async def check(row: Any) -> str | None:
        async with gate:
            try:
                answer = await status(ComputeInfo(compute_id=row.compute_id,
                                                  lb_network_ip=row.lb_network_ip))
            except DriverError as exc:  # unreachable agents are the health manager's job
                log.debug("status of amphora %s unavailable: %s", row.id, exc)
                return None
        if answer["digest"] == row.active_digest and answer["haproxy_running"]:
            return None
        log.warning("amphora %s drifted (serves %s, haproxy running: %s); pushing again",
                    row.id, answer["digest"], answer["haproxy_running"])
        with engine.begin() as conn:
            conn.execute(update(amp).where(amp.c.id == row.id,
                                           amp.c.active_digest == row.active_digest)
                         .values(active_digest=None))
        return str(row.load_balancer_id)

    found = await asyncio.gather(*(check(row) for row in amps))
    return sorted({lb_id for lb_id in found if lb_id})
