"""Assemble the all-in-one service: database, drivers, reconciler, queue, resync and API."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import shutil
import socket
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from lbaas.api.app import ApiApp
from lbaas.api.auth import Authenticator, NoAuth
from lbaas.api.policy import Policy
from lbaas.api.state import ApiState
from lbaas.controller.reconciler import Drivers, Reconciler
from lbaas.drivers.fake import FakeAmphora, FakeCompute, FakeNetwork
from lbaas.housekeeping.tasks import Housekeeping
from lbaas.queue.memory import ReconcileQueue, unfinished
from lbaas.settings import Settings
from lbaas.store import db
from lbaas.store.seed import seed_networks

log = logging.getLogger(__name__)


def local_drivers_possible() -> tuple[bool, str]:
    if os.geteuid() != 0:
        return False, "not root (network namespaces need root)"
    if shutil.which("haproxy") is None:
        return False, "haproxy is not installed"
    if shutil.which("ip") is None:
        return False, "iproute2 is not installed"
    return True, ""


def build_drivers(settings: Settings, engine: Engine) -> Drivers:
    choice = settings.controller.drivers
    if choice == "auto":
        possible, why = local_drivers_possible()
        if not possible:
            log.warning("using the fake drivers (no data plane): %s", why)
        choice = "local" if possible else "fake"
    if choice == "fake":
        return Drivers(compute=FakeCompute(), network=FakeNetwork(), amphora=FakeAmphora())
    if choice != "local":
        raise ValueError(f"unknown controller.drivers {choice!r} (auto, local or fake)")
    from lbaas.main.local_plane import build_local_drivers

    return build_local_drivers(settings, engine)


def build_authenticator(settings: Settings) -> Authenticator:
    if settings.api.auth_strategy == "noauth":
        return NoAuth(settings.api.default_project_id)
    if settings.api.auth_strategy == "keystone":
        from lbaas.api.keystone import KeystoneAuth

        return KeystoneAuth(settings.keystone)
    raise ValueError(f"unknown auth_strategy {settings.api.auth_strategy!r}")


def build_policy(settings: Settings) -> Policy:
    if settings.api.policy_file:
        from lbaas.api.policy_file import load_policy_file

        return load_policy_file(settings.api.policy_file, settings.api.enforce_new_defaults)
    return Policy(enforce_new_defaults=settings.api.enforce_new_defaults)


@dataclass
class Service:
    settings: Settings
    engine: Engine
    drivers: Drivers
    app: ApiApp
    reconciler: Reconciler
    queue: ReconcileQueue | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    housekeeping: Housekeeping | None = None
    health: Any = None  # the health manager (local drivers only)

    async def start(self) -> None:
        self.housekeeping = Housekeeping(self.settings.housekeeping, self.engine, self.drivers,
                                         self.reconciler.holder)
        recovered = await self.housekeeping.recover()  # before any reconcile runs
        self.queue = ReconcileQueue(self.reconciler.reconcile,
                                    self.settings.controller.worker_concurrency)
        self.app.state.notify = self.queue.notify
        await self.queue.start()
        if self.drivers.provisioner is not None:
            for subnet in self.drivers.provisioner.all_subnets():
                await self.drivers.network.ensure_subnet(subnet)
            from lbaas.main.local_plane import start_floating_ip_sync

            self.tasks.append(start_floating_ip_sync(self.settings, self.engine,
                                                     self.app.state.extras))
        for lb_id in sorted({*unfinished(self.engine), *recovered.load_balancers}):
            self.queue.notify(lb_id)
        self.tasks.append(asyncio.create_task(self._resync_loop()))
        self.housekeeping.start(self.queue.notify)
        if self.drivers.provisioner is not None and self.settings.health.enabled:
            from lbaas.main.health import start_health_manager

            self.health = await start_health_manager(self, self.queue.notify)

    async def stop(self) -> None:
        if self.housekeeping is not None:
            await self.housekeeping.stop()
        if self.health is not None:
            await self.health.stop()
            self.health = None
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks = []
        if self.queue is not None:
            await self.queue.stop()

    async def _resync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.controller.resync_interval)
            try:
                for lb_id in unfinished(self.engine):
                    assert self.queue is not None
                    self.queue.notify(lb_id)
            except Exception:
                log.exception("resync failed")


def lease_holder(settings: Settings) -> str:
    """Stable per host and data directory: a restarted process (after SIGKILL) takes its own
    leases back at once, while another process still waits for them to expire."""
    where = hashlib.sha256(str(settings.data_dir.resolve()).encode()).hexdigest()[:16]
    return f"{socket.gethostname()[:64]}:{where}"


def build_service(settings: Settings, drivers: Drivers | None = None,
                  migrate: bool = True) -> Service:
    engine = db.make_engine(settings.effective_database_url)
    if migrate:
        db.upgrade(engine)
    seed_networks(engine, settings.networking.networks, settings.networking.management_network)
    drivers = drivers or build_drivers(settings, engine)
    state = ApiState(settings=settings, engine=engine, policy=build_policy(settings))
    reconciler = Reconciler(engine, drivers, holder=lease_holder(settings),
                            lease_seconds=settings.controller.lease_seconds)
    app = ApiApp(state, build_authenticator(settings))
    service = Service(settings, engine, drivers, app, reconciler)
    app.on_startup.append(service.start)
    app.on_shutdown.append(service.stop)
    return service
