"""Start the health manager inside the all-in-one service (local drivers only).

It listens on the management network's gateway address (or ``health.bind_ip``), where the
amphorae's heartbeats are sent. Key choice: if that address and port are taken (another lbaas
instance on this host shares the default networks), this instance runs without a health
manager rather than failing over amphorae whose heartbeats go elsewhere.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from lbaas.health.manager import HealthManager
from lbaas.settings import heartbeat_key

log = logging.getLogger(__name__)


async def start_health_manager(service: Any, notify: Callable[[str], None]) \
        -> HealthManager | None:
    settings, provisioner = service.settings, service.drivers.provisioner
    health = settings.health
    address = health.bind_ip or provisioner.health_address()
    if not address:
        log.error("health manager not started: the management subnet has no gateway address")
        return None
    manager = HealthManager(
        service.engine, heartbeat_key(settings), notify, bind_ip=address,
        bind_port=health.bind_port, heartbeat_timeout=health.heartbeat_timeout,
        check_interval=health.health_check_interval, build_grace=health.build_grace,
        failover_threshold=health.failover_threshold,
        accept_master_key=health.accept_master_key)
    try:
        await manager.start()
    except OSError as exc:
        log.error("health manager not started: cannot listen on %s:%s (%s); amphorae are "
                  "not monitored by this instance", address, health.bind_port, exc)
        return None
    service.app.state.extras.setdefault("metrics", []).append(manager.metrics.prometheus)
    return manager
