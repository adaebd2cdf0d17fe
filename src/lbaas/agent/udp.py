"""UDP/SCTP listeners in the amphora: load ``nftables.conf`` and keep its pool maps to the live
members, decided by the agent's own health checks (``udp_checks``). See decision 0010.

Key choices: the rendered file recreates the table in one ``nft -f`` transaction (atomic, never a
moment without rules); membership changes rewrite only the pool's map (``flush map`` + ``add
element`` in one transaction), so flows being tracked keep their member (conntrack) and the rules
are never reloaded. A member starts up and goes down after ``max_retries_down`` failed probes,
up again after ``max_retries`` good ones (HAProxy's fall/rise). Backup members serve only while
no primary is up. The slots are dealt exactly as ``render.nftables.deal_slots`` deals them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from lbaas.agent.netns import DataNamespace
from lbaas.agent.udp_checks import probe

log = logging.getLogger("lbaas.agent.udp")

NFTABLES_CONF = "nftables.conf"
UDP_MEMBERS_JSON = "udp-members.json"
NFT_BIN = os.environ.get("LBAAS_NFT_BIN", "nft")


class UdpError(Exception):
    """nft refused the rules; the text is safe to show."""


def deal_slots(members: list[tuple[str, int]], slots: int) -> list[str]:
    """Slot -> member key in proportion to weights, interleaved (same as the renderer's)."""
    members = [(k, w) for k, w in members if w > 0]
    if not members:
        return []
    total = sum(w for _, w in members)
    current = {k: 0 for k, _ in members}
    out = []
    for _ in range(slots):
        for key, weight in members:
            current[key] += weight
        best = max(members, key=lambda m: current[m[0]])[0]
        current[best] -= total
        out.append(best)
    return out


async def nft(*args: str, stdin: str | None = None, netns: DataNamespace | None = None) -> None:
    """``nft`` in ``netns`` (the amphora's data namespace, where the VIP leg is)."""
    try:
        proc = await asyncio.create_subprocess_exec(
            NFT_BIN, *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            preexec_fn=netns.preexec() if netns is not None else None)
    except OSError as exc:
        raise UdpError(f"cannot run {NFT_BIN}: {exc.strerror}") from None
    try:
        out, _ = await proc.communicate(stdin.encode() if stdin is not None else None)
    except asyncio.CancelledError:
        # A map rewrite cancelled by a new bundle must end before the new table is loaded,
        # or its old membership could land after it.
        await asyncio.shield(proc.wait())
        raise
    if proc.returncode != 0:
        text = out.decode(errors="replace").strip().splitlines()
        raise UdpError("nft: " + " | ".join(text[-6:]))


def _forwarding(netns: DataNamespace) -> None:
    """DNATed datagrams are routed from the VIP leg to a member leg: the namespace must forward
    (the rules' forward chain lets only those flows through)."""
    try:
        netns.write_sysctl("/proc/sys/net/ipv4/ip_forward", "1\n")
    except OSError as exc:
        log.warning("cannot enable IPv4 forwarding: %s", exc)


class Member:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.up = True
        self.streak = 0  # consecutive probe results against the current state

    @property
    def key(self) -> str:
        return f"{self.spec['address']} . {self.spec['port']}"

    def record(self, ok: bool | None, rise: int, fall: int) -> bool:
        """Count one probe; True when the member changed state."""
        if ok is None or ok == self.up:
            self.streak = 0
            return False
        self.streak += 1
        if self.streak >= (rise if ok else fall):
            self.up, self.streak = ok, 0
            return True
        return False


class UdpBalancer:
    """Owned by the Agent: ``check`` a staged bundle, ``apply`` the active one, ``stop``."""

    def __init__(self, netns: DataNamespace | None = None) -> None:
        self.netns = netns or DataNamespace()  # rules, forwarding and probes live there
        self.loaded = False
        self.table = "lbaas_udp"
        self.slots = 240
        self.pools: dict[str, dict[str, Any]] = {}
        self.listeners: list[str] = []
        self.members: dict[str, list[Member]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._map_lock = asyncio.Lock()

    async def check(self, directory: Path) -> None:
        if (directory / NFTABLES_CONF).exists():
            await nft("-c", "-f", str(directory / NFTABLES_CONF), netns=self.netns)

    async def apply(self, directory: Path) -> None:
        """Load the rules of ``directory`` (or remove ours when it has none); restart checks."""
        await self.stop()
        conf = directory / NFTABLES_CONF
        if not conf.exists():
            if self.loaded:
                with contextlib.suppress(UdpError):
                    await nft("delete", "table", "ip", self.table, netns=self.netns)
                self.loaded = False
            self.pools, self.members, self.listeners = {}, {}, []
            return
        _forwarding(self.netns)
        await nft("-f", str(conf), netns=self.netns)
        self.loaded = True
        table = json.loads((directory / UDP_MEMBERS_JSON).read_text())
        self.table, self.slots = table["table"], int(table["slots"])
        self.pools, self.listeners = table["pools"], list(table.get("listeners", []))
        self.members = {name: [Member(m) for m in pool["members"]]
                        for name, pool in self.pools.items()}
        for name, pool in self.pools.items():
            if pool.get("monitor"):
                for member in self.members[name]:
                    self._tasks.append(asyncio.create_task(self._watch(name, member)))
        log.info("UDP/SCTP rules loaded: %d pools, %d members checked", len(self.pools),
                 len(self._tasks))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []

    def map_elements(self, name: str) -> list[str]:
        """The pool map as ``"<slot> : <address> . <port>"`` for the members up now."""
        live = [m for m in self.members.get(name, []) if m.up]
        serving = [m for m in live if not m.spec["backup"]] or live
        weights = {m.key: int(m.spec["weight"]) for m in serving}
        return [f"{i} : {k}" for i, k in enumerate(deal_slots(list(weights.items()),
                                                                self.slots))]

    async def write_map(self, name: str) -> None:
        elements = self.map_elements(name)
        script = f"flush map ip {self.table} {name}\n"
        if elements:
            script += f"add element ip {self.table} {name} {{ {', '.join(elements)} }}\n"
        async with self._map_lock:
            await nft("-f", "-", stdin=script, netns=self.netns)

    async def _watch(self, name: str, member: Member) -> None:
        monitor = self.pools[name]["monitor"]
        delay = max(float(monitor["delay"]), 0.2)
        rise, fall = max(int(monitor["max_retries"]), 1), max(int(monitor["max_retries_down"]), 1)
        spec = member.spec
        if monitor["type"] == "SCTP":
            log.warning("pool %s: SCTP health checks cannot run on this kernel (no SCTP "
                        "sockets); member %s is kept up", self.pools[name]["pool_id"], spec["id"])
        while True:
            ok = await probe(monitor, spec["check_address"], int(spec["check_port"]), self.netns)
            if member.record(ok, rise, fall):
                log.info("member %s of pool %s is now %s", spec["id"],
                         self.pools[name]["pool_id"], "up" if member.up else "down")
                try:
                    await self.write_map(name)
                except UdpError as exc:
                    log.error("cannot update the member map of %s: %s", name, exc)
            await asyncio.sleep(delay)

    def heartbeat_listeners(self) -> dict[str, dict[str, Any]]:
        """Enabled UDP/SCTP listeners as OPEN (nftables keeps no per-listener counters)."""
        stats = {"rx": 0, "tx": 0, "totconns": 0, "ereq": 0, "conns": 0}
        return {lid: {"status": "OPEN", "stats": dict(stats)} for lid in self.listeners}

    def heartbeat_pools(self) -> dict[str, dict[str, Any]]:
        """Heartbeat entries (``"<pool id>:<listener id>"``) with HAProxy-like statuses."""
        out: dict[str, dict[str, Any]] = {}
        for name, pool in self.pools.items():
            checked = bool(pool.get("monitor"))
            members = {m.spec["id"]: ("UP" if m.up else "DOWN") if checked else "no check"
                       for m in self.members.get(name, [])}
            status = "UP" if any(m.up for m in self.members.get(name, [])) else "DOWN"
            out[f"{pool['pool_id']}:{pool['listener_id']}"] = {"status": status,
                                                                "members": members}
        return out
