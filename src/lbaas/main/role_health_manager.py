"""``lbaas health-manager``: Octavia's health manager as a process of its own.

It receives the amphorae's heartbeats on ``[health] bind_ip``:``bind_port`` (``--bind-ip`` and
``--port`` override them, so several can run on one machine), records them in the shared
database and fails stale amphorae over; the failover hint goes to the workers over the message
bus (the load balancer's generation is bumped as well, so the workers' resync scan finds it
without the bus). The health manager itself is ``lbaas.health.HealthManager``, unchanged.
Key choices: with no ``bind_ip`` it listens on the management subnet's gateway, whose bridge it
makes first when this host runs the local data plane; an address that cannot be bound yet is
retried every second rather than given up, as the process would be restarted anyway; with the
fake drivers there are no heartbeats to expect, so it receives but judges nobody stale.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sqlalchemy import Engine, select

from lbaas.health.manager import HealthManager
from lbaas.main.database import open_database
from lbaas.main.service import local_drivers_possible
from lbaas.main.shared_files import ensure_shared_keys
from lbaas.queue.rabbit import RabbitBus
from lbaas.settings import Settings, heartbeat_key
from lbaas.store import ipam
from lbaas.store import tables as t

log = logging.getLogger(__name__)
BIND_RETRY = 1.0


def uses_local_plane(settings: Settings) -> bool:
    choice = settings.controller.drivers
    return choice == "local" or (choice == "auto" and local_drivers_possible()[0])


def management_subnet(engine: Engine, settings: Settings) -> object | None:
    name = settings.networking.management_network
    with engine.connect() as conn:
        net = conn.execute(select(t.network).where(
            (t.network.c.name == name) | (t.network.c.id == name))).first()
        subnets = ipam.subnets_of(conn, net.id) if net is not None else []
    return subnets[0] if subnets else None


async def listen_address(engine: Engine, settings: Settings, bind_ip: str | None) -> str:
    address = bind_ip or settings.health.bind_ip
    if address:
        return address
    subnet = management_subnet(engine, settings)
    if subnet is None or not getattr(subnet, "gateway_ip", None):
        raise SystemExit("health manager: no [health] bind_ip and the management subnet has no "
                         "gateway address")
    if uses_local_plane(settings):
        from lbaas.controller.provisioning import subnet_info
        from lbaas.main.local_plane import local_network
        from lbaas.store.network_scope import management_network_ids

        with engine.connect() as conn:
            info = subnet_info(conn, subnet,  # type: ignore[arg-type]
                               management_network_ids(settings.networking.management_network))
        await local_network(settings).ensure_subnet(info)
    return str(subnet.gateway_ip)  # type: ignore[attr-defined]


async def start_receiving(manager: HealthManager, stale_detection: bool,
                          stopped: asyncio.Event) -> bool:
    while not stopped.is_set():
        try:
            await manager.start(stale_detection=stale_detection)
            return True
        except OSError as exc:
            log.warning("health manager cannot listen on %s:%s yet (%s); retrying",
                        *manager.bind, exc)
        try:
            await asyncio.wait_for(stopped.wait(), BIND_RETRY)
        except TimeoutError:
            pass
    return False


async def run_health_manager(settings: Settings, stopped: asyncio.Event,
                             bind_ip: str | None = None, port: int | None = None) -> None:
    ensure_shared_keys(settings)
    engine = open_database(settings)
    bus: RabbitBus | None = None
    notify: Callable[[str], None] = lambda _lb_id: None  # noqa: E731 (the scan finds it)
    if settings.messaging.transport_url:
        bus = RabbitBus(settings.messaging.transport_url, settings.messaging.topic,
                        name="health-manager")
        await bus.start()
        notify = bus.notify
    health = settings.health
    manager = HealthManager(
        engine, heartbeat_key(settings), notify,
        bind_ip=await listen_address(engine, settings, bind_ip),
        bind_port=port or health.bind_port, heartbeat_timeout=health.heartbeat_timeout,
        check_interval=health.health_check_interval, build_grace=health.build_grace,
        failover_threshold=health.failover_threshold,
        accept_master_key=health.accept_master_key)
    judging = uses_local_plane(settings)
    if not judging:
        log.warning("fake drivers: heartbeats are received, no amphora is judged stale")
    try:
        if await start_receiving(manager, judging, stopped):
            print(f"lbaas health-manager: listening on {manager.address[0]}:"
                  f"{manager.address[1]}/udp", flush=True)
            await stopped.wait()
    finally:
        await manager.stop()
        if bus is not None:
            await bus.stop()
        engine.dispose()
