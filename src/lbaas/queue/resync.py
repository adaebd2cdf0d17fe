"""The resync scan: what a lost message, a dead process or a broker outage left unfinished.

Every half ``interval`` each worker lists the load balancers with work left (a ``PENDING_*``
status or a generation not yet applied) and enqueues those that were already unfinished, at the
same generation, at its previous look and that nobody holds a live lease on. Key choice: that
two-look rule keeps several workers from piling onto work another one is about to do (a change
normally settles within milliseconds of its message), while anything really forgotten is picked
up between half an interval and one interval after it was written.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from sqlalchemy import Engine, and_, or_, select

from lbaas.domain import constants as c
from lbaas.store import tables as t

log = logging.getLogger(__name__)


def unfinished_generations(engine: Engine, now: float) -> list[tuple[str, int, bool]]:
    """(id, generation, leased) of every load balancer with work left."""
    lb, lease = t.load_balancer, t.lease
    query = (select(lb.c.id, lb.c.generation, lease.c.holder)
             .outerjoin(lease, and_(lease.c.load_balancer_id == lb.c.id,
                                    lease.c.expires_at >= now))
             .where(lb.c.provisioning_status != c.DELETED,
                    or_(lb.c.provisioning_status.in_(c.PENDING_STATUSES),
                        lb.c.generation != lb.c.applied_generation)))
    with engine.connect() as conn:
        return [(r.id, r.generation, r.holder is not None) for r in conn.execute(query)]


class ResyncScanner:
    def __init__(self, engine: Engine, notify: Callable[[str], None], interval: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.notify = notify
        self.interval = interval
        self.clock = clock
        self._previous: dict[str, int] = {}
        self._failing = False

    def consider(self, rows: list[tuple[str, int, bool]]) -> list[str]:
        """Apply the two-look rule to one look's rows; notify and return the ids due."""
        due = [lb_id for lb_id, generation, leased in rows
               if not leased and self._previous.get(lb_id) == generation]
        self._previous = {lb_id: generation for lb_id, generation, _ in rows}
        for lb_id in due:
            self.notify(lb_id)
        return due

    async def scan(self) -> list[str]:
        rows = await asyncio.to_thread(unfinished_generations, self.engine, self.clock())
        return self.consider(rows)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval / 2)
            try:
                due = await self.scan()
            except Exception as exc:  # database away: log once, try again next look
                if not self._failing:
                    log.error("resync scan failed: %r", exc)
                self._failing = True
                continue
            if self._failing:
                log.info("resync scan works again")
                self._failing = False
            if due:
                log.info("resync: %d load balancers had work left: %s", len(due),
                         ", ".join(due[:5]) + (" ..." if len(due) > 5 else ""))
