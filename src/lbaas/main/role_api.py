"""``lbaas api``: Octavia's API service alone — any number of them behind one address.

It validates, writes the desired state in one transaction and sends the load balancer's id to
the workers over the message bus; it reconciles nothing itself. Key choices: the bus never
stands between a user and an answer (``RabbitBus.notify`` only buffers; with the broker away the
change is accepted and the workers' resync scan finds it), and the app is the same ``ApiApp``
``lbaas serve`` runs, so every API test speaks for this role too.
"""

from __future__ import annotations

from lbaas.api.app import ApiApp
from lbaas.main.database import open_database
from lbaas.main.role_worker import FLOATING_IPS
from lbaas.main.service import build_api_app
from lbaas.main.shared_files import ensure_shared_keys
from lbaas.queue.rabbit import RabbitBus
from lbaas.settings import Settings


def build_api_role(settings: Settings) -> ApiApp:
    ensure_shared_keys(settings)
    engine = open_database(settings)
    app = build_api_app(settings, engine)
    messaging = settings.messaging
    if not messaging.transport_url:
        return app  # workers learn of changes through their resync scan
    bus = RabbitBus(messaging.transport_url, messaging.topic, name="api")
    app.state.notify = bus.notify
    app.state.extras["floating_ips_changed"] = lambda: bus.broadcast(FLOATING_IPS)
    app.on_startup.append(bus.start)
    app.on_shutdown.append(bus.stop)
    return app
