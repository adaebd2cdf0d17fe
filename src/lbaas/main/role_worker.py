"""``lbaas worker``: Octavia's controller worker — reconcile load balancers, any number at once.

``WorkerRole`` is the reconcile side of a process: the local queue and its reconciler, the
resync scan, the consumer of the message bus's hints and the floating-IP routers. ``lbaas
serve`` runs one inside its single process; ``lbaas worker`` runs one alone. Key choices: the
database decides who works on what (a lease per load balancer, decision 0003; the holder is
this process's slot, ``instance.py``), so any number of workers may run on one machine or
several; the bus only says "look at X" (a hint is acknowledged once the pass it woke has
ended); the floating-IP routers, namespaces on this host, are converged by one process per host
at a time (a lease per host and data directory).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine

from lbaas.controller.reconciler import Reconciler
from lbaas.housekeeping.recovery import recover
from lbaas.housekeeping.tasks import ROTATION_JOB
from lbaas.main.database import open_database
from lbaas.main.instance import claim_instance, place
from lbaas.main.shared_files import ensure_shared_keys
from lbaas.queue.memory import ReconcileQueue, unfinished
from lbaas.queue.rabbit import RabbitBus
from lbaas.queue.resync import ResyncScanner
from lbaas.settings import Settings
from lbaas.store import leases

log = logging.getLogger(__name__)

FLOATING_IPS = "floating-ips"  # broadcast hint: the floating IP rows changed
MAX_HINT = 64
STATS_EVERY = 30.0


class WorkerRole:
    def __init__(self, settings: Settings, engine: Engine, reconciler: Reconciler,
                 where: str) -> None:
        self.settings = settings
        self.engine = engine
        self.reconciler = reconciler
        self.drivers = reconciler.drivers
        self.place = where
        self.queue = ReconcileQueue(self._reconcile, settings.controller.worker_concurrency)
        self.passes = 0  # reconcile passes this process ran (logged every STATS_EVERY s)
        self._logged_passes = 0
        self._passes_at_look = 0
        self.scanner = ResyncScanner(engine, self.queue.notify,
                                     settings.controller.resync_interval, busy=self._busy)
        self.bus: RabbitBus | None = None
        self.floating_ips: Any = None  # FloatingIPSync with the local data plane
        self.tasks: list[asyncio.Task[Any]] = []

    async def start(self, recovered: Iterable[str] = ()) -> None:
        await self.queue.start()
        if self.drivers.provisioner is not None:
            for subnet in self.drivers.provisioner.all_subnets():
                await self.drivers.network.ensure_subnet(subnet)
            from lbaas.main.local_plane import floating_ip_sync

            self.floating_ips = floating_ip_sync(self.settings, self.engine)
            key = leases.job_key(f"{FLOATING_IPS}:{self.place}")
            self.tasks.append(asyncio.create_task(leases.lead(
                self.engine, key, self.reconciler.holder, self.settings.controller.lease_seconds,
                self.floating_ips.run)))
        messaging = self.settings.messaging
        if messaging.transport_url:
            self.bus = RabbitBus(messaging.transport_url, messaging.topic,
                                 name=f"worker {self.reconciler.holder}", consumer=self._hint,
                                 prefetch=self.settings.controller.worker_concurrency,
                                 on_broadcast=self._broadcast)
            await self.bus.start()
        if self.drivers.fleet is not None:  # amphora hosts: poll them, keep the overlay
            self.drivers.fleet.start(self.bus.notify if self.bus is not None
                                     else self.queue.notify)
        pending = await asyncio.to_thread(unfinished, self.engine)
        for lb_id in sorted({*pending, *recovered}):
            self.queue.notify(lb_id)
        self.tasks.append(asyncio.create_task(self.scanner.run()))
        self.tasks.append(asyncio.create_task(self._log_stats()))

    def _busy(self) -> bool:
        """Working now or since the scan's previous look: hints are flowing."""
        ran, self._passes_at_look = self.passes != self._passes_at_look, self.passes
        return ran or self.queue.busy()

    async def _reconcile(self, lb_id: str) -> bool:
        done = await self.reconciler.reconcile(lb_id)
        self.passes += done
        return done

    async def _log_stats(self) -> None:
        while True:
            await asyncio.sleep(STATS_EVERY)
            self.log_stats()

    def log_stats(self, level: int = logging.DEBUG) -> None:
        """Every STATS_EVERY s at DEBUG (noise at INFO); once at INFO when the worker stops."""
        if self.passes != self._logged_passes or level > logging.DEBUG:
            self._logged_passes = self.passes
            log.log(level, "worker %s: %d reconcile passes since start, %d settled a change",
                    self.reconciler.holder, self.passes, self.reconciler.settled_changes)

    async def stop(self) -> None:
        if self.bus is not None:
            await self.bus.stop()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks = []
        if self.drivers.fleet is not None:
            await self.drivers.fleet.stop()
        await self.queue.stop()
        self.reconciler.close()
        self.log_stats(logging.INFO)

    def wake_floating_ips(self) -> None:
        if self.floating_ips is not None:
            self.floating_ips.wake()

    async def _hint(self, lb_id: str) -> None:
        if 0 < len(lb_id) <= MAX_HINT:
            await self.queue.submit(lb_id)

    def _broadcast(self, hint: str) -> None:
        if hint == FLOATING_IPS:
            self.wake_floating_ips()


async def run_worker(settings: Settings, stopped: asyncio.Event) -> None:
    from lbaas.main.service import build_drivers

    ensure_shared_keys(settings)
    engine = open_database(settings)
    instance = claim_instance(settings, "worker")
    drivers = build_drivers(settings, engine)
    lease_seconds = settings.controller.lease_seconds
    reconciler = Reconciler(engine, drivers, holder=instance.holder,
                            lease_seconds=lease_seconds)
    log.info("worker %s starting", instance.holder)
    recovered = await recover(engine, drivers, instance.holder, lease_seconds,
                              rotation_job=leases.job_key(ROTATION_JOB))
    worker = WorkerRole(settings, engine, reconciler, place(settings))
    await worker.start(recovered.load_balancers)
    print(f"lbaas worker {instance.holder}: running", flush=True)
    try:
        await stopped.wait()
    finally:
        await worker.stop()
        engine.dispose()
        instance.release()
