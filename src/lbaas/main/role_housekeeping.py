"""``lbaas housekeeping``: Octavia's housekeeping as a process of its own.

Runs the periodic jobs of ``lbaas.housekeeping.Housekeeping`` — purge, certificate rotation,
full resync, orphan sweep — each once per period across every housekeeping (and ``lbaas
serve``) process on the database, through one job lease each. The full resync's hints go to
the workers over the message bus. Key choice: it builds the same drivers a worker does, since
rotation and the drift check talk to the agents with the controller's client certificate and
the orphan sweep removes namespaces on this host.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from lbaas.housekeeping.tasks import Housekeeping
from lbaas.main.database import open_database
from lbaas.main.instance import claim_instance, place
from lbaas.main.shared_files import ensure_shared_keys
from lbaas.queue.rabbit import RabbitBus
from lbaas.settings import Settings

log = logging.getLogger(__name__)


async def run_housekeeping(settings: Settings, stopped: asyncio.Event) -> None:
    from lbaas.main.service import build_drivers

    ensure_shared_keys(settings)
    engine = open_database(settings)
    instance = claim_instance(settings, "housekeeping")
    drivers = build_drivers(settings, engine)
    bus: RabbitBus | None = None
    notify: Callable[[str], None] = lambda _lb_id: None  # noqa: E731
    if settings.messaging.transport_url:
        bus = RabbitBus(settings.messaging.transport_url, settings.messaging.topic,
                        name=f"housekeeping {instance.holder}")
        await bus.start()
        notify = bus.notify
    else:
        log.warning("no [messaging] transport_url: the full resync's drift repairs wait for "
                    "the next change of each load balancer")
    housekeeping = Housekeeping(settings.housekeeping, engine, drivers, instance.holder,
                                settings.controller.lease_seconds, place(settings))
    housekeeping.start(notify)
    print(f"lbaas housekeeping {instance.holder}: running", flush=True)
    try:
        await stopped.wait()
    finally:
        await housekeeping.stop()
        if bus is not None:
            await bus.stop()
        engine.dispose()
        instance.release()
