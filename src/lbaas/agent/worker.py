"""The agent's worker: the two-way TLS API and everything that changes the amphora.

Forked by the supervisor (``supervisor.py``) on demand; serves on the supervisor's listening
socket. It exits, leaving HAProxy serving, once it has been quiet for ``idle_exit`` seconds
without standing duties (``Agent.has_duties``), or when its supervisor is gone. SIGTERM (from
the supervisor) is a full stop: keepalived and HAProxy stop with it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

from lbaas.agent.certificate import ServerCertificate
from lbaas.agent.http import MAX_BODY, AgentApp
from lbaas.agent.layout import UDP_STATUS_FILE
from lbaas.agent.netns import DataNamespace
from lbaas.agent.server import IDLE_TIMEOUT, Server, serve_async
from lbaas.agent.service import Agent
from lbaas.wire.tls import server_ssl_context

log = logging.getLogger("lbaas.agent.worker")
WATCH_PERIOD = 0.5


class UdpStatusPublisher:
    """Writes the UDP/SCTP check results for the supervisor's heartbeats (an Agent companion)."""

    def __init__(self, agent: Agent, interval: float) -> None:
        self.agent = agent
        self.interval = interval
        self.path = agent.store.run / UDP_STATUS_FILE
        self._task: asyncio.Task[None] | None = None
        # A worker may start after a crash that left a file behind: withdraw it on first look.
        self._published = self.path.exists()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def publish(self) -> None:
        udp = self.agent.udp
        if not udp.loaded:
            if self._published:  # withdraw what an earlier bundle had (once, not every second)
                self.path.unlink(missing_ok=True)
                self._published = False
            return
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"listeners": udp.heartbeat_listeners(),
                                   "pools": udp.heartbeat_pools()}))
        os.replace(tmp, self.path)
        self._published = True

    async def _run(self) -> None:
        while True:
            try:
                self.publish()
            except OSError as exc:
                log.warning("cannot publish UDP statuses: %s", exc)
            await asyncio.sleep(self.interval)


async def _watch(agent: Agent, server: Server, stop: asyncio.Event, idle_exit: float,
                 supervisor_pid: int) -> None:
    while not stop.is_set():
        await asyncio.sleep(WATCH_PERIOD)
        if os.getppid() != supervisor_pid:
            log.warning("the supervisor is gone: exiting, HAProxy keeps serving")
        elif not idle_exit or server.busy or server.writers or agent.has_duties() \
                or time.monotonic() - server.last_activity < idle_exit:
            continue
        else:
            log.info("idle for %g s: exiting, HAProxy keeps serving", idle_exit)
        agent.keep_serving_on_exit = True
        server.linger = True
        stop.set()


async def _serve(config: dict[str, Any], listener: socket.socket, supervisor_pid: int) -> None:
    ctx = server_ssl_context(config["ca_file"], config["cert_file"], config["key_file"])
    agent = Agent(Path(config["base_dir"]), config["amphora_id"],
                  DataNamespace(config.get("data_netns")))
    agent.companions.append(UdpStatusPublisher(agent, config["heartbeat_interval"]))
    certificate = ServerCertificate(ctx, config["cert_file"], config["key_file"],
                                    config["ca_file"])
    idle_exit = float(config.get("idle_exit", 0))
    app = AgentApp(agent, certificate)
    server = Server(app, MAX_BODY, idle_exit or IDLE_TIMEOUT)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watcher = asyncio.create_task(_watch(agent, server, stop, idle_exit, supervisor_pid))
    try:
        await serve_async(app, None, None, ctx, MAX_BODY, grace=5.0, stop=stop, sock=listener,
                          server=server)
    finally:
        watcher.cancel()


def run_worker(config: dict[str, Any], listener: Any, supervisor_pid: int) -> int:
    """``listener``: the supervisor's listening ``_socket.socket`` (inherited by the fork)."""
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    sock = socket.socket(fileno=listener.detach())
    asyncio.run(_serve(config, sock, supervisor_pid))
    return 0
