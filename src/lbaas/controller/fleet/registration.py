"""The controller's registration listener: host-agents started with ``--controller`` announce
themselves here (name, zone, capacity, underlay address and API port), at start and periodically.

Key choices:
- Two-way TLS from the internal CA, and the peer must be a *host-agent*: common name
  ``host:<name>`` (``CertificateAuthority.issue_host_agent``). Checked on the TLS connection,
  before any request is read (as the host-agent's own API does), so an amphora's certificate,
  the controller's, or none never reaches the parser.
- The common name binds the name: a host-agent registers only the name its certificate carries,
  so no host can take over another's name (and with it the amphorae recorded on it) by
  announcing it from a different address. The address is not trusted either: the controller
  polls it over TLS and the host-agent's server certificate must carry it (SAN), and the answer
  must name the registered host (``Fleet.update``).
- A registration only records the host (the ``fleet_host`` row: address, port, zone, capacity,
  registered_at); every worker polls the registered rows, so what decides a host is live stays
  the controller's own poll.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import re
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError

from lbaas.drivers.fleet import wire
from lbaas.drivers.fleet.placement import ENABLED
from lbaas.store import tables as t
from lbaas.wire import http1

log = logging.getLogger("lbaas.fleet.registration")

MAX_BODY = 4096  # a registration is ~150 bytes
READ_TIMEOUT = 5.0  # a peer that sends nothing is dropped
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")  # fits fleet_host.name (64)
ZONE = re.compile(r"[A-Za-z0-9._:-]{1,255}")
MAX_CAPACITY = 10_000
REFRESH = 60.0  # an unchanged announcement rewrites registered_at at most this often


class Refused(ValueError):
    """A registration that is not accepted (the message is what the host-agent is told)."""


@dataclass(frozen=True)
class Registration:
    name: str
    zone: str
    capacity: int
    address: str
    port: int

    @property
    def endpoint(self) -> str:
        return f"{self.address}:{self.port}"


def host_name_of(peercert: Any) -> str | None:
    """The host name a verified peer certificate may register: its single common name
    ``host:<name>``; None for anything else (an amphora's, the controller's)."""
    if not isinstance(peercert, dict):
        return None
    cns = [value for rdn in peercert.get("subject", ()) for key, value in rdn
           if key == "commonName"]
    if len(cns) != 1 or not cns[0].startswith(wire.HOST_CN_PREFIX):
        return None
    name = cns[0].removeprefix(wire.HOST_CN_PREFIX)
    return name if NAME.fullmatch(name) else None


def validate(body: Any, cert_name: str) -> Registration:
    """The announcement as a Registration, or Refused."""
    if not isinstance(body, dict):
        raise Refused("the body must be a JSON object")
    name, zone = body.get("name"), body.get("zone")
    capacity, address, port = body.get("capacity"), body.get("address"), body.get("port")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise Refused("name: 1-63 of A-Z a-z 0-9 . _ - (a letter or digit first)")
    if name != cert_name:
        raise Refused(f"name {name!r}: this certificate may register only {cert_name!r}")
    if not isinstance(zone, str) or not ZONE.fullmatch(zone):
        raise Refused("zone: 1-255 of A-Z a-z 0-9 . _ : -")
    if type(capacity) is not int or not 0 <= capacity <= MAX_CAPACITY:
        raise Refused(f"capacity: an integer from 0 to {MAX_CAPACITY}")
    if type(port) is not int or not 1 <= port <= 65535:
        raise Refused("port: an integer from 1 to 65535")
    try:
        ip = ipaddress.ip_address(address if isinstance(address, str) else "")
    except ValueError:
        raise Refused("address: an IP address") from None
    if ip.is_unspecified or ip.is_multicast:
        raise Refused("address: a unicast address the controller can reach")
    return Registration(name=name, zone=zone, capacity=capacity, address=str(ip), port=port)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def record(engine: Engine, reg: Registration) -> bool:
    """Insert or update the host's row; True when its address, port, zone or capacity changed
    (or it is new). The operator's state is kept."""
    values = {"address": reg.address, "port": reg.port, "zone": reg.zone,
              "capacity": reg.capacity}
    for _ in range(2):  # a worker's poll may insert the same row at the same moment
        try:
            with engine.begin() as conn:
                row = conn.execute(select(t.fleet_host).where(
                    t.fleet_host.c.name == reg.name)).first()
                if row is None:
                    conn.execute(t.fleet_host.insert().values(
                        name=reg.name, state=ENABLED, amphorae=0, registered_at=_now(),
                        **values))
                    return True
                changed = any(getattr(row, k) != v for k, v in values.items())
                if changed or row.registered_at is None or \
                        (_now() - row.registered_at).total_seconds() > REFRESH:
                    conn.execute(update(t.fleet_host).where(t.fleet_host.c.name == reg.name)
                                 .values(registered_at=_now(), **values))
                return changed
        except IntegrityError:
            continue
    return False


class RegistrationListener:
    def __init__(self, engine: Engine, ctx: ssl.SSLContext, listen: tuple[str, int]) -> None:
        self.engine = engine
        self.ctx = ctx
        self.listen = listen
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        # reuse_port: every worker of a machine listens; the kernel spreads the connections
        self._server = await asyncio.start_server(self.handle, self.listen[0], self.listen[1],
                                                  ssl=self.ctx, reuse_address=True,
                                                  reuse_port=True)
        log.info("registration listener on %s:%d (host-agent certificates only)", *self.listen)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            cert_name = host_name_of(writer.get_extra_info("peercert"))
            if cert_name is None:
                log.warning("registration from %s refused: not a host-agent certificate", peer)
                return
            request = await asyncio.wait_for(http1.read_request(reader, MAX_BODY),
                                             READ_TIMEOUT)
            if request is None:
                return
            status, answer = await self._answer(request, cert_name)
            writer.write(http1.response(status, answer))
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, TimeoutError):
            return
        except ValueError as exc:  # malformed or oversized: answered, then closed
            writer.write(http1.response(400, {"error": f"bad request: {exc}"}))
        finally:
            writer.close()

    async def _answer(self, request: tuple[str, str, bytes],
                      cert_name: str) -> tuple[int, dict[str, Any]]:
        method, path, raw = request
        if path != wire.REGISTER_PATH:
            return 404, {"error": "not found"}
        if method != "POST":
            return 405, {"error": "method not allowed"}
        try:
            reg = validate(json.loads(raw), cert_name)
        except Refused as exc:
            log.warning("registration of %s refused: %s", cert_name, exc)
            return 400, {"error": str(exc)}
        except ValueError:
            return 400, {"error": "the body must be JSON"}
        changed = await asyncio.to_thread(record, self.engine, reg)
        if changed:
            log.info("amphora host %s registered: %s, zone %s, capacity %d", reg.name,
                     reg.endpoint, reg.zone, reg.capacity)
        return 200, {"registered": reg.name}
