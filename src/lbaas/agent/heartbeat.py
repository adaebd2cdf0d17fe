"""The agent's heartbeat: every interval, one signed UDP datagram to a health manager.

Like upstream's health daemon, statuses and counters come from HAProxy's stats socket
(``show stat``), statistics are sent as deltas since the previous message (a counter that went
down means HAProxy restarted or reloaded: the whole new value is the delta), and, as upstream's
health sender does, every heartbeat goes to every destination (Octavia's
``controller_ip_port_list``), so losing one health manager loses no heartbeat; the managers
share one database, where the first to record a sequence number claims it (so a delta is never
counted twice).
The sequence number is the wall clock in milliseconds (or the previous one plus one), so it keeps
increasing across agent restarts without a state file.

Key choice: the resident supervisor sends heartbeats whether or not a worker runs, so this module
is synchronous and imports little. UDP/SCTP pools are checked by the worker, which publishes their
statuses in ``run/udp-heartbeat.json`` (see ``UDP_STATUS_FILE``) for the next heartbeat.
"""

from __future__ import annotations

import _socket
import os
import sys
import time

from lbaas.agent.compact_json import dumps
from lbaas.agent.layout import CONF, DIGEST_FILE, HAPROXY_SOCK, RUN, UDP_STATUS_FILE
from lbaas.agent.stats import parse_show_stat, query
from lbaas.wire.envelope import MSG_VER, seal_for
from lbaas.wire.files import HAPROXY_CFG

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

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
        if line[:1] not in ("", " ", "\t"):  # a section starts
            words = line.split()
            frontend = words[1] if words[0] == "frontend" and len(words) > 1 else None
        elif frontend is not None:
            words = line.split()
            if len(words) >= 2 and words[0] == "default_backend":
                owners.setdefault(words[1], frontend)
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


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def udp_statuses(run_dir: str, max_age: float) -> dict[str, Any]:
    """What the worker last published about UDP/SCTP listeners and pools (if recent)."""
    path = os.path.join(run_dir, UDP_STATUS_FILE)
    try:
        if time.time() - os.stat(path).st_mtime > max_age:
            return {}
        import json  # only amphorae with UDP/SCTP listeners pay for it

        published = json.loads(_read(path) or "{}")
    except (OSError, ValueError):
        return {}
    return published if isinstance(published, dict) else {}


class HeartbeatSender:
    """Builds and sends one heartbeat per ``beat()``; the caller keeps the rhythm."""

    def __init__(self, amphora_id: str, base_dir: str, targets: list[tuple[str, int]], key: str,
                 interval: float = 1.0) -> None:
        self.amphora_id = amphora_id
        self.conf_dir = os.path.join(base_dir, CONF)
        self.run_dir = os.path.join(base_dir, RUN)
        self.targets = targets
        self.key = key
        self.interval = interval
        self.seq = 0
        self.deltas = StatsDeltas()

    def message(self, haproxy_running: bool) -> dict[str, Any]:
        rows: dict[str, dict[str, Any]] = {}
        if haproxy_running:
            try:
                rows = parse_show_stat(query(os.path.join(self.run_dir, HAPROXY_SOCK),
                                             "show stat", timeout=0.5))
            except OSError as exc:  # still send: we are alive
                print(f"heartbeat: cannot read HAProxy statistics: {exc}", file=sys.stderr)
        self.seq = max(self.seq + 1, int(time.time() * 1000))
        digest = (_read(os.path.join(self.conf_dir, DIGEST_FILE)) or "").strip() or None
        msg = build_message(self.amphora_id, self.seq, digest, rows,
                            _read(os.path.join(self.conf_dir, HAPROXY_CFG)), self.deltas)
        udp = udp_statuses(self.run_dir, 3 * self.interval + 2.0)
        msg["listeners"].update(udp.get("listeners", {}))
        msg["pools"].update(udp.get("pools", {}))
        return msg

    def beat(self, haproxy_running: bool) -> None:
        data = seal_for(dumps(self.message(haproxy_running)).encode(), self.amphora_id,
                        self.key)
        for host, port in self.targets:
            family = _socket.AF_INET6 if ":" in host else _socket.AF_INET
            sock = _socket.socket(family, _socket.SOCK_DGRAM)
            try:
                sock.sendto(data, (host, port))
            except OSError:  # the management network may not be up yet
                pass
            finally:
                sock.close()


def read_key(path: str) -> str:
    with open(path) as f:
        return f.read().strip()
