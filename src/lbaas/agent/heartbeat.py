"""The agent's heartbeat sender: every interval, one signed UDP datagram to a health manager.

Like upstream's health daemon, statuses and counters come from HAProxy's stats socket
(``show stat``), statistics are sent as deltas since the previous message (a counter that went
down means HAProxy restarted or reloaded: the whole new value is the delta), and destinations are
used in turn (round robin), so health managers sharing one database never count a delta twice.
The sequence number starts at the wall clock in milliseconds, so it keeps increasing across
agent restarts without a state file (one message a second never catches up with the clock).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import time
from pathlib import Path
from typing import Any

from lbaas.agent.haproxy import cli
from lbaas.agent.service import parse_show_stat
from lbaas.wire.agent_api import HAPROXY_CFG
from lbaas.wire.heartbeat import MSG_VER, wrap_envelope

log = logging.getLogger("lbaas.agent.heartbeat")

_FRONTEND = re.compile(r"^frontend\s+(\S+)")
_BACKEND_USE = re.compile(r"^\s+default_backend\s+(\S+)")
_SECTION = re.compile(r"^\S")
COUNTERS = {"rx": "bin", "tx": "bout", "totconns": "stot", "ereq": "ereq"}


def parse_target(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        raise ValueError(f"heartbeat target {value!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def pool_owners(cfg: str | None) -> dict[str, str]:
    """{pool id: listener id} from ``default_backend`` lines of the active haproxy.cfg."""
    owners: dict[str, str] = {}
    frontend = None
    for line in (cfg or "").splitlines():
        if _SECTION.match(line):
            m = _FRONTEND.match(line)
            frontend = m.group(1) if m else None
        elif frontend is not None and (m := _BACKEND_USE.match(line)):
            owners.setdefault(m.group(1), frontend)
    return owners


class StatsDeltas:
    """Per-listener counters as deltas since the previous call (resets count from zero)."""

    def __init__(self) -> None:
        self.last: dict[str, dict[str, int]] = {}

    def delta(self, listener_id: str, row: dict[str, Any]) -> dict[str, int]:
        previous = self.last.setdefault(listener_id, {})
        out = {}
        for name, column in COUNTERS.items():
            value = row.get(column, 0)
            current = value if isinstance(value, int) else 0
            diff = current - previous.get(column, 0)
            out[name] = current if diff < 0 else diff
            previous[column] = current
        return out


def build_message(amphora_id: str, seq: int, digest: str | None,
                  rows: dict[str, dict[str, Any]], cfg: str | None,
                  deltas: StatsDeltas) -> dict[str, Any]:
    """The version-3 message from parsed ``show stat`` rows ({"px/sv": row})."""
    msg: dict[str, Any] = {"id": amphora_id, "seq": seq, "ver": MSG_VER, "ts": time.time(),
                           "digest": digest, "listeners": {}, "pools": {}}
    owners = pool_owners(cfg)
    pools: dict[str, dict[str, Any]] = {}
    for row in rows.values():
        px, sv = str(row.get("pxname")), str(row.get("svname"))
        if "prometheus" in px:
            continue
        if sv == "FRONTEND":
            stats = deltas.delta(px, row)
            stats["conns"] = row.get("scur", 0) if isinstance(row.get("scur"), int) else 0
            msg["listeners"][px] = {"status": row.get("status", ""), "stats": stats}
        elif sv == "BACKEND":
            pools.setdefault(px, {"members": {}})["status"] = row.get("status", "")
        else:
            status = str(row.get("status", ""))
            if status == "UP" and row.get("weight") == 0:
                status = "DRAIN"  # what upstream reports for a weight-0 (draining) server
            pools.setdefault(px, {"members": {}})["members"][sv] = status
    for pool_id, pool in pools.items():
        key = f"{pool_id}:{owners[pool_id]}" if pool_id in owners else pool_id
        msg["pools"][key] = {"status": pool.get("status", "DOWN"), "members": pool["members"]}
    return msg


class HeartbeatSender:
    """Started and stopped with the agent (``Agent.companions``)."""

    def __init__(self, agent: Any, targets: list[tuple[str, int]], key: str,
                 interval: float = 1.0) -> None:
        self.agent = agent
        self.targets = targets
        self.key = key
        self.interval = interval
        self.seq = int(time.time() * 1000)
        self.deltas = StatsDeltas()
        self._task: asyncio.Task[None] | None = None
        self._next = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def message(self) -> dict[str, Any]:
        rows: dict[str, dict[str, Any]] = {}
        haproxy = self.agent.haproxy
        if haproxy.running:
            try:
                rows = parse_show_stat(await cli(haproxy.stats_sock, "show stat", timeout=0.5))
            except Exception as exc:  # still send: we are alive
                log.warning("cannot read HAProxy statistics: %s", exc)
        store = self.agent.store
        self.seq += 1
        msg = build_message(self.agent.amphora_id, self.seq, store.active_digest(), rows,
                            store.active_file(HAPROXY_CFG), self.deltas)
        udp = getattr(self.agent, "udp", None)  # UDP/SCTP pools: the agent's own checks
        if udp is not None:
            msg["listeners"].update(udp.heartbeat_listeners())
            msg["pools"].update(udp.heartbeat_pools())
        return msg

    def send(self, data: bytes) -> None:
        host, port = self.targets[self._next % len(self.targets)]
        self._next += 1
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            try:
                sock.sendto(data, (host, port))
            except OSError as exc:  # the management network may not be up yet
                log.debug("heartbeat to %s:%s failed: %s", host, port, exc)

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                self.send(wrap_envelope(await self.message(), self.key))
            except Exception:
                log.exception("heartbeat failed")
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))


def read_key(path: Path) -> str:
    return path.read_text().strip()
