"""The periodic housekeeping jobs, run once per period across every instance.

``Housekeeping.recover()`` runs once before a worker's queue starts (see ``recovery``);
``start()`` then runs four periodic jobs: purge expired DELETED rows, rotate amphora
certificates, sweep orphan amphorae (per host: namespaces are local), and the full resync that
re-enqueues every live load balancer after checking for drift. Key choice: each job runs under
a job lease (``store.leases.claim_due``), so with any number of ``lbaas housekeeping`` (or
``lbaas serve``) processes on one database each job runs once per period; the lease is renewed
while the job runs and a runner that dies leaves it due again within the lease time. A failing
pass is logged and retried at the next period; none of them ever stops the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine

from lbaas.controller.cert_rotation import CertRotator
from lbaas.controller.reconciler import Drivers
from lbaas.drivers.local.compute import LocalCompute
from lbaas.housekeeping.purge import PurgeResult, purge_deleted
from lbaas.housekeeping.recovery import Recovery, clear_cert_busy, recover, remove_orphans
from lbaas.housekeeping.resync import forget_drifted, live_load_balancers
from lbaas.settings import HousekeepingSettings
from lbaas.store import leases

log = logging.getLogger(__name__)

Notify = Callable[[str], None]


ROTATION_JOB = "certificate-rotation"
MAX_POLL = 5.0


class Housekeeping:
    def __init__(self, settings: HousekeepingSettings, engine: Engine, drivers: Drivers,
                 holder: str, lease_seconds: float = 30.0, place: str = "") -> None:
        """``holder``: this process's lease holder name; ``place``: this host and data dir
        (jobs on local namespaces run once per place, the others once per deployment)."""
        self.settings = settings
        self.engine = engine
        self.drivers = drivers
        self.holder = holder
        self.lease_seconds = lease_seconds
        self.place = place
        self.rotator: CertRotator | None = None
        if drivers.provisioner is not None and hasattr(drivers.amphora, "replace_certificate"):
            self.rotator = CertRotator(engine, drivers.provisioner.ca, drivers.amphora,
                                       timedelta(days=settings.cert_renew_before_days))
        self._tasks: list[asyncio.Task[None]] = []

    async def recover(self) -> Recovery:
        return await recover(self.engine, self.drivers, self.holder, self.lease_seconds,
                             rotation_job=leases.job_key(ROTATION_JOB))

    def start(self, notify: Notify) -> None:
        s = self.settings
        jobs: list[tuple[str, float, Callable[[], Awaitable[Any]]]] = [
            ("purge", s.purge_interval, self.purge),
            ("full-resync", s.full_resync_interval, lambda: self.full_resync(notify)),
        ]
        if self.rotator is not None:
            jobs.append((ROTATION_JOB, s.cert_rotate_interval, self.rotate_certificates))
        if isinstance(self.drivers.compute, LocalCompute):
            jobs.append((f"orphan-sweep:{self.place}", s.full_resync_interval,
                         self.sweep_orphans))
        self._tasks = [asyncio.create_task(self._periodic(name, interval, job))
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

    async def rotate_certificates(self) -> list[str]:
        assert self.rotator is not None
        # we hold the rotation lease: a claim left by a rotator that died is stale
        await asyncio.to_thread(clear_cert_busy, self.engine)
        return await self.rotator.rotate_due()

    async def sweep_orphans(self) -> list[str]:
        assert isinstance(self.drivers.compute, LocalCompute)
        return await remove_orphans(self.engine, self.drivers.compute)

    async def full_resync(self, notify: Notify) -> list[str]:
        await forget_drifted(self.engine, self.drivers.amphora)
        lb_ids = live_load_balancers(self.engine)
        for lb_id in lb_ids:
            notify(lb_id)
        return lb_ids

    async def _periodic(self, name: str, interval: float,
                        job: Callable[[], Awaitable[Any]]) -> None:
        key = leases.job_key(name)
        poll = min(max(interval / 4, 0.05), MAX_POLL)
        while True:
            now = time.time()
            try:
                due = await asyncio.to_thread(leases.claim_due, self.engine, key, self.holder,
                                              self.lease_seconds, now + interval, now)
            except Exception as exc:  # database away: the next poll tries again
                log.warning("housekeeping job %s: cannot read its lease: %r", name, exc)
                due = False
            if due:
                await self._run_job(name, key, interval, job)
            await asyncio.sleep(poll)

    async def _run_job(self, name: str, key: str, interval: float,
                       job: Callable[[], Awaitable[Any]]) -> None:
        started = time.time()
        try:
            async with leases.keep(self.engine, key, self.holder, self.lease_seconds):
                await job()
        except leases.LeaseLost:
            return
        except Exception:
            log.exception("housekeeping job %s failed", name)
            failed = True
        else:
            failed = False
        try:  # recorded before "done" is logged: once it is, the next run is up to the others
            await asyncio.to_thread(leases.finish_job, self.engine, key, self.holder,
                                    started + interval)
        except Exception as exc:  # its running lease expires and it runs again then
            log.warning("housekeeping job %s: cannot record its run: %r", name, exc)
            return
        if not failed:
            log.info("housekeeping job %s done in %.2f s", name, time.time() - started)
