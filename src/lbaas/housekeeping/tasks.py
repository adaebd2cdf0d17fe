"""The housekeeping loops the all-in-one service runs beside its reconcile queue.

``Housekeeping.recover()`` runs once before the queue starts (see ``recovery``); ``start()``
then runs four periodic jobs: purge expired DELETED rows, rotate amphora certificates, sweep
orphan amphorae, and the full resync that re-enqueues every live load balancer after checking
for drift. Key choice: each job is its own task with its own interval, and a failing pass is
logged and retried at the next interval; none of them ever stops the service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine

from lbaas.controller.cert_rotation import CertRotator
from lbaas.controller.reconciler import Drivers
from lbaas.drivers.local.compute import LocalCompute
from lbaas.housekeeping.purge import PurgeResult, purge_deleted
from lbaas.housekeeping.recovery import Recovery, recover, remove_orphans
from lbaas.housekeeping.resync import forget_drifted, live_load_balancers
from lbaas.settings import HousekeepingSettings

log = logging.getLogger(__name__)

Notify = Callable[[str], None]


class Housekeeping:
    def __init__(self, settings: HousekeepingSettings, engine: Engine, drivers: Drivers,
                 holder: str) -> None:
        self.settings = settings
        self.engine = engine
        self.drivers = drivers
        self.holder = holder
        self.rotator: CertRotator | None = None
        if drivers.provisioner is not None and hasattr(drivers.amphora, "replace_certificate"):
            self.rotator = CertRotator(engine, drivers.provisioner.ca, drivers.amphora,
                                       timedelta(days=settings.cert_renew_before_days))
        self._tasks: list[asyncio.Task[None]] = []

    async def recover(self) -> Recovery:
        return await recover(self.engine, self.drivers, self.holder)

    def start(self, notify: Notify) -> None:
        s = self.settings
        jobs: list[tuple[str, float, Callable[[], Awaitable[Any]]]] = [
            ("purge", s.purge_interval, self.purge),
            ("full resync", s.full_resync_interval, lambda: self.full_resync(notify)),
        ]
        if self.rotator is not None:
            jobs.append(("certificate rotation", s.cert_rotate_interval, self.rotator.rotate_due))
        if isinstance(self.drivers.compute, LocalCompute):
            jobs.append(("orphan sweep", s.full_resync_interval, self.sweep_orphans))
        self._tasks = [asyncio.create_task(_every(name, interval, job))
                       for name, interval, job in jobs if interval > 0]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def purge(self) -> PurgeResult:
        result = purge_deleted(self.engine, self.settings.deleted_expiry_seconds)
        if result.load_balancers or result.amphorae:
            log.info("purged %d deleted load balancers and %d amphorae",
                     result.load_balancers, result.amphorae)
        return result

    async def sweep_orphans(self) -> list[str]:
        assert isinstance(self.drivers.compute, LocalCompute)
        return await remove_orphans(self.engine, self.drivers.compute)

    async def full_resync(self, notify: Notify) -> list[str]:
        await forget_drifted(self.engine, self.drivers.amphora)
        lb_ids = live_load_balancers(self.engine)
        for lb_id in lb_ids:
            notify(lb_id)
        return lb_ids


async def _every(name: str, interval: float, job: Callable[[], Awaitable[Any]]) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await job()
        except Exception:
            log.exception("housekeeping job %s failed", name)
