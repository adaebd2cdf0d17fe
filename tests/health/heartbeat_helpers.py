"""Shared by the health tests: a health manager on loopback in its own event-loop thread.

The manager shares the fake-driver API service's database and registers its counters with the
API's ``/metrics`` as the real service does; a heartbeat "amphora" is just a UDP socket sending
envelopes built with the shared codec.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from lbaas.health.manager import HealthManager
from lbaas.wire.heartbeat import wrap_amphora_envelope

KEY = "test-heartbeat-key"


class Running:
    def __init__(self, api: Any, stale_detection: bool = False, **options: Any) -> None:
        """``stale_detection``: run the manager's own stale loop (every ``check_interval``), as
        ``lbaas serve`` does; otherwise tests call ``check_stale`` themselves."""
        self.api = api
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.notified: list[str] = []
        self.manager = HealthManager(api.service.engine, KEY, self._notify, bind_ip="127.0.0.1",
                                     bind_port=0, **options)
        self.run(self.manager.start(stale_detection=stale_detection))
        api.service.app.state.extras.setdefault("metrics", []).append(
            self.manager.metrics.prometheus)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def _notify(self, lb_id: str) -> None:
        self.notified.append(lb_id)
        self.api.service.queue.notify(lb_id)  # wake the real reconciler too

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def send_raw(self, data: bytes) -> None:
        """Send one datagram and wait until the manager has dealt with it."""
        m = self.manager.metrics
        before = m.accepted + sum(m.rejected.values())
        self.sock.sendto(data, self.manager.address)
        assert until(lambda: m.accepted + sum(m.rejected.values()) > before), "not processed"

    def send(self, msg: dict[str, Any], key: str = KEY) -> bytes:
        """``msg`` in our envelope, signed with the key of ``msg["id"]`` derived from ``key``
        (the master key)."""
        data = wrap_amphora_envelope(msg, key)
        self.send_raw(data)
        return data

    def close(self) -> None:
        self.sock.close()
        self.run(self.manager.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def until(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
