"""The host-agent's HTTPS API: two-way TLS, and only the controller's client certificate.

Key choice: a small HTTP/1.1 server on ``asyncio.start_server`` rather than an ASGI server,
because the check that matters is on the TLS connection itself: the peer's certificate must
chain to the internal CA (``CERT_REQUIRED``) *and* be the workers' client certificate (common
name ``controller``, client-auth usage); an amphora's server certificate, signed by the same CA,
is refused before any request is read. Requests are JSON; each connection may carry several.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

from lbaas.drivers.base import DriverError
from lbaas.drivers.fleet import wire
from lbaas.hostagent.service import HostAgent
from lbaas.wire import http1

log = logging.getLogger("lbaas.hostagent.server")

MAX_BODY = 4 * 1024 * 1024
Handler = Callable[[re.Match[str], dict[str, Any]], Awaitable[dict[str, Any]]]


def peer_is_controller(peercert: Any) -> bool:
    """The verified peer certificate names the controller (CN) and is for client auth."""
    if not isinstance(peercert, dict):
        return False
    cns = [value for rdn in peercert.get("subject", ()) for key, value in rdn
           if key == "commonName"]
    return cns == [wire.CLIENT_CN]


class HostAgentServer:
    def __init__(self, agent: HostAgent, demo_backends: bool = False) -> None:
        self.agent = agent
        amp = r"(?P<ns>amp-[0-9a-f]{12})"
        a = agent
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("GET", re.compile(re.escape(wire.HOST_PATH) + "$"), lambda m, b: a.describe()),
            ("POST", re.compile(re.escape(wire.AMPHORAE_PATH) + "$"),
             lambda m, b: a.create_amphora(b)),
            ("DELETE", re.compile(re.escape(wire.AMPHORAE_PATH) + f"/{amp}$"),
             lambda m, b: a.delete_amphora(m["ns"])),
            ("PUT", re.compile(re.escape(wire.AMPHORAE_PATH) + f"/{amp}/vip$"),
             lambda m, b: a.plug_vip(m["ns"], b)),
            ("PUT", re.compile(re.escape(wire.AMPHORAE_PATH) + f"/{amp}/vip/announce$"),
             lambda m, b: a.announce_vip(m["ns"], b)),
            ("DELETE", re.compile(re.escape(wire.AMPHORAE_PATH) + f"/{amp}/vip$"),
             lambda m, b: a.unplug_vip(m["ns"], b)),
            ("PUT", re.compile(re.escape(wire.AMPHORAE_PATH) + f"/{amp}/subnets$"),
             lambda m, b: a.plug_subnets(m["ns"], b)),
            ("PUT", re.compile(re.escape(wire.FLOOD_PATH) + "$"), lambda m, b: a.set_flood(b)),
        ]
        if demo_backends:  # the lab's members; a production host has no use for them
            self.routes += [
                ("POST", re.compile(re.escape(wire.BACKENDS_PATH) + "$"),
                 lambda m, b: a.start_backend(b)),
                ("DELETE", re.compile(re.escape(wire.BACKENDS_PATH)
                                      + r"/(?P<addr>[0-9a-fA-F.:]+)$"),
                 lambda m, b: a.stop_backend(m["addr"])),
            ]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if not peer_is_controller(writer.get_extra_info("peercert")):
                log.warning("refused a client certificate that is not the controller's")
                return
            while True:
                request = await http1.read_request(reader, MAX_BODY)
                if request is None:
                    return
                method, path, body = request
                status, answer = await self._dispatch(method, path, body)
                writer.write(http1.response(status, answer))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, ValueError):
            return
        finally:
            writer.close()

    async def _dispatch(self, method: str, path: str, raw: bytes) -> tuple[int, Any]:
        matched = False
        for verb, pattern, handler in self.routes:
            match = pattern.match(path)
            if match is None:
                continue
            matched = True
            if verb != method:
                continue
            try:
                body = json.loads(raw) if raw.strip() else {}
                if not isinstance(body, dict):
                    raise ValueError("the body must be a JSON object")
                return 200, await handler(match, body)
            except (ValueError, KeyError, TypeError) as exc:
                return 400, {"error": f"bad request: {exc}"}
            except DriverError as exc:
                log.warning("%s %s failed: %s", method, path, exc)
                return 409, {"error": str(exc)}
        return (405, {"error": "method not allowed"}) if matched else (404, {"error": "not found"})


async def serve(agent: HostAgent, listen: tuple[str, int], ctx: ssl.SSLContext,
                stop: asyncio.Event, demo_backends: bool = False) -> None:
    server = HostAgentServer(agent, demo_backends)
    srv = await asyncio.start_server(server.handle, listen[0], listen[1], ssl=ctx,
                                     reuse_address=True)
    log.info("host-agent %s (zone %s, capacity %d) listening on %s:%d",
             agent.identity.name, agent.identity.zone, agent.identity.capacity, *listen)
    async with srv:
        await stop.wait()
    await agent.shutdown()
