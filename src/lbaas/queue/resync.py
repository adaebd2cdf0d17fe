"""The resync scan: what a lost message, a dead process or a broker outage left unfinished.

Every half ``interval`` each worker lists the load balancers with work left (a ``PENDING_*``
status or a generation not yet applied) and enqueues those that were already unfinished, at the
same generation, at its previous look and that nobody holds a live lease on. Key choice: a
worker that has been busy since its previous look leaves that work alone unless it has waited
``PATIENCE_LOOKS`` looks: a busy worker means hints are flowing and probably a backlog of them
in the broker, and scanning that up would make every worker run every queued load balancer once
more (measured: 3 workers, 300 creates, 800 passes). An idle worker has no backlog to wait for,
so anything really forgotten — a broker outage, an API killed before it published — is picked
up between half an interval and one interval after it was written. Hints held by a killed
worker are not forgotten: it had not acknowledged them, so the broker hands them to another.
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
PATIENCE_LOOKS = 12  # a busy worker takes over work unfinished for this many looks anyway


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
                 busy: Callable[[], bool] = lambda: False,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.notify = notify
        self.interval = interval
        self.busy = busy
        self.clock = clock
        self._seen: dict[str, tuple[int, int]] = {}  # id -> (generation, looks seen at it)
        self._failing = False

    def consider(self, rows: list[tuple[str, int, bool]]) -> list[str]:
        """Apply the look rules to one look's rows; notify and return the ids due."""
        seen: dict[str, tuple[int, int]] = {}
        for lb_id, generation, _ in rows:
            before, looks = self._seen.get(lb_id, (generation, 0))
            seen[lb_id] = (generation, looks + 1 if before == generation else 1)
        self._seen = seen
        needed = 2 if not self.busy() else PATIENCE_LOOKS
        due = [lb_id for lb_id, _, leased in rows if not leased and seen[lb_id][1] >= needed]
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
