"""Assemble the all-in-one service (``lbaas serve``) and the parts the role processes share.

``Service`` runs every role in one process: the API app, a ``WorkerRole`` (queue, reconciler,
resync scan, floating IPs), housekeeping and the health manager. With ``[messaging]
transport_url`` set, its hints travel over the broker like the role processes' do, so ``lbaas
serve`` and extra ``lbaas worker`` processes can share one database.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from lbaas.api.app import ApiApp
from lbaas.api.auth import Authenticator, NoAuth
from lbaas.api.policy import Policy
from lbaas.api.state import ApiState
from lbaas.controller.reconciler import Drivers, Reconciler
from lbaas.dashboard import mount as mount_dashboard
from lbaas.drivers.fake import FakeAmphora, FakeCompute, FakeNetwork
from lbaas.housekeeping.tasks import Housekeeping
from lbaas.main.database import open_database
from lbaas.main.instance import lease_holder, place
from lbaas.main.role_worker import FLOATING_IPS, WorkerRole
from lbaas.queue.memory import ReconcileQueue
from lbaas.settings import Settings

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
    if settings.networking.driver not in ("local", "noop"):
        raise ValueError(f"unknown networking.driver {settings.networking.driver!r}")
    noop = [f"{name} = \"noop\"" for name, value in (
        ("networking.driver", settings.networking.driver),
        ("certificates.cert_manager", settings.certificates.cert_manager)) if value == "noop"]
    if noop:
        # made-up ports, addresses and certificates cannot serve traffic
        if choice == "local":
            raise ValueError(f'{", ".join(noop)} needs controller.drivers = "fake"')
        choice = "fake"
    if choice == "auto":
        possible, why = local_drivers_possible()
        if not possible:
            log.warning("using the fake drivers (no data plane): %s", why)
        choice = "local" if possible else "fake"
    if choice == "fake":
        return Drivers(compute=FakeCompute(settings.controller.fake_delete_seconds),
                       network=FakeNetwork(), amphora=FakeAmphora())
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
    """Every role in one process: the API app, a worker, housekeeping and the health manager."""

    settings: Settings
    engine: Engine
    drivers: Drivers
    app: ApiApp
    reconciler: Reconciler
    queue: ReconcileQueue | None = None
    housekeeping: Housekeeping | None = None
    health: Any = None  # the health manager (local drivers only)
    worker: WorkerRole | None = None

    async def start(self) -> None:
        where = place(self.settings)
        self.housekeeping = Housekeeping(self.settings.housekeeping, self.engine, self.drivers,
                                         self.reconciler.holder,
                                         self.settings.controller.lease_seconds, where)
        recovered = await self.housekeeping.recover()  # before any reconcile runs
        self.worker = WorkerRole(self.settings, self.engine, self.reconciler, where)
        self.queue = self.worker.queue
        await self.worker.start(recovered.load_balancers)
        bus = self.worker.bus
        notify = bus.notify if bus is not None else self.queue.notify
        self.app.state.notify = notify
        self.app.state.extras["floating_ips_changed"] = (
            (lambda: bus.broadcast(FLOATING_IPS)) if bus is not None
            else self.worker.wake_floating_ips)
        self.housekeeping.start(notify)
        if self.drivers.provisioner is not None and self.settings.health.enabled:
            from lbaas.main.health import start_health_manager

            self.health = await start_health_manager(self, notify)

    async def stop(self) -> None:
        if self.housekeeping is not None:
            await self.housekeeping.stop()
        if self.health is not None:
            await self.health.stop()
            self.health = None
        if self.worker is not None:
            await self.worker.stop()


def build_api_app(settings: Settings, engine: Engine) -> ApiApp:
    """The API port's app (``lbaas serve`` and ``lbaas api``), with the dashboard mounted."""
    state = ApiState(settings=settings, engine=engine, policy=build_policy(settings))
    app = ApiApp(state, build_authenticator(settings))
    mount_dashboard(app)
    return app


def build_service(settings: Settings, drivers: Drivers | None = None,
                  migrate: bool = True) -> Service:
    engine = open_database(settings, migrate)
    drivers = drivers or build_drivers(settings, engine)
    reconciler = Reconciler(engine, drivers, holder=lease_holder(settings),
                            lease_seconds=settings.controller.lease_seconds)
    app = build_api_app(settings, engine)
    service = Service(settings, engine, drivers, app, reconciler)
    app.on_startup.append(service.start)
    app.on_shutdown.append(service.stop)
    return service
