"""The host-agent announces itself to the controllers' registration listeners (``--controller``).

At start and every ``interval`` (so a restarted or a new controller learns it), to each
controller on its own: name, zone, capacity, its underlay address and API port. While a
controller does not answer, it retries with backoff (0.5 s doubling up to ``interval``).
Two-way TLS with its own certificate (common name ``host:<name>``, client auth); the
controller must present the internal CA's certificate for the address it was given, with common
name ``controller``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from typing import Any

from lbaas.drivers.fleet import wire
from lbaas.hostagent.service import HostIdentity

log = logging.getLogger("lbaas.hostagent.register")

FIRST_RETRY = 0.5
TIMEOUT = 5.0


class Refused(Exception):
    """The controller answered, and not with 200."""


def split_endpoint(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.rpartition(":")
    if not host:
        return endpoint, wire.REGISTRATION_PORT
    return host.strip("[]"), int(port)


async def register_once(controller: str, body: dict[str, Any], ctx: ssl.SSLContext) -> Any:
    host, port = split_endpoint(controller)
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=ctx, server_hostname=host), TIMEOUT)
    try:
        peercert = writer.get_extra_info("peercert") or {}
        cns = [v for rdn in peercert.get("subject", ()) for k, v in rdn if k == "commonName"]
        if cns != [wire.REGISTRATION_CN]:
            raise Refused(f"{controller} is not the controller (certificate {cns})")
        data = json.dumps(body).encode()
        writer.write(f"POST {wire.REGISTER_PATH} HTTP/1.1\r\nHost: {host}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                     f"Connection: close\r\n\r\n".encode() + data)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(65536), TIMEOUT)
    finally:
        writer.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    status = head.split(b" ", 2)[1:2]
    if status != [b"200"]:
        first = head.split(b"\r\n", 1)[0].decode("latin-1") or "no answer"
        raise Refused(f"{controller}: {first} {payload[:300].decode('utf-8', 'replace')}")
    return json.loads(payload)


async def announce_forever(controller: str, identity: HostIdentity, port: int,
                           ctx: ssl.SSLContext, interval: float) -> None:
    body = {"name": identity.name, "zone": identity.zone, "capacity": identity.capacity,
            "address": identity.address, "port": port}
    wait, state = FIRST_RETRY, "new"  # log changes only: new -> registered | failing
    while True:
        try:
            await register_once(controller, body, ctx)
        except (OSError, TimeoutError, ssl.SSLError, Refused, ValueError, IndexError) as exc:
            if state != "failing":
                log.warning("cannot register with controller %s (retrying): %s", controller,
                            exc)
            state = "failing"
            await asyncio.sleep(wait)
            wait = min(wait * 2, interval)
            continue
        if state != "registered":
            log.info("registered with controller %s as %s", controller, identity.name)
        state, wait = "registered", FIRST_RETRY
        await asyncio.sleep(interval)
