"""Flat provider networks: a host interface plugged into a managed network's bridge.

As Neutron's ``bridge_mappings``/``physical_interface_mappings``: a network mapped to an
interface (``eth1``) reaches the other machines through that interface's own L2 network instead
of a VXLAN segment. The interface keeps its MTU (nothing is encapsulated).

Safety first: lbaas plugs only an interface the host uses for nothing else. Refused: a missing
interface, loopback, a bridge, an lbaas link, a port of another master, an interface holding an
address (IPv6 link-local excepted: the kernel adds it by itself) or a route (link-local and
multicast IPv6 excepted), the interface of a default route, and ``eth0`` whatever its state.
What lbaas changed (master, up) is recorded in ``<state_dir>/provider/<interface>.json`` before
the change, and undone exactly on release: no master again, and down again if it was down.
"""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path
from typing import Any

from lbaas.drivers.base import DriverError
from lbaas.drivers.local import names
from lbaas.drivers.local import netlink as nl

OURS = (names.BRIDGE_PREFIX, names.HOST_LEG_PREFIX, "vx")
# a machine's first interface is its own even when it looks unused (down, no address yet: a
# DHCP client may be about to configure it): never plugged
NEVER = frozenset({"eth0"})
KERNEL_V6 = (ipaddress.ip_network("fe80::/10"), ipaddress.ip_network("ff00::/8"))


def _kernel_v6(dst: str) -> bool:
    """A link-local or multicast IPv6 destination: what the kernel gives any interface up."""
    try:
        net = ipaddress.ip_network(dst, strict=False)
    except ValueError:
        return False
    return net.version == 6 and any(net.subnet_of(k) for k in KERNEL_V6)  # type: ignore[arg-type]


async def refusal(dev: str, bridge: str, ns: str | None = None) -> str | None:
    """Why ``dev`` must not become a port of ``bridge`` (None: it may)."""
    found = await nl.ip_json("-d", "link", "show", ns=ns)
    link = next((item for item in found if item.get("ifname") == dev), None)
    if link is None:
        return f"no interface {dev}"
    if dev in NEVER:
        return f"{dev} is the machine's first interface (never plugged)"
    kind = str(link.get("linkinfo", {}).get("info_kind", ""))
    if dev == "lo" or link.get("link_type") == "loopback" or kind == "bridge":
        return f"{dev} is a {'bridge' if kind == 'bridge' else 'loopback'}"
    if dev.startswith(OURS):
        return f"{dev} is an lbaas link"
    master = link.get("master")
    if master and master != bridge:
        return f"{dev} is already a port of {master}"
    for item in await nl.ip_json("addr", "show", "dev", dev, ns=ns):
        for addr in item.get("addr_info", []):
            local = str(addr.get("local", ""))
            if not _kernel_v6(local):
                return f"{dev} holds address {local} (the host uses it)"
    for family in ("-4", "-6"):
        for route in await nl.ip_json(family, "route", "show", "table", "all", ns=ns):
            on_dev = route.get("dev") == dev or any(
                hop.get("dev") == dev for hop in route.get("nexthops", []) or [])
            dst = str(route.get("dst", ""))
            if not on_dev or _kernel_v6(dst):
                continue
            if dst == "default":
                return f"{dev} carries a default route (the host's way out)"
            return f"{dev} carries route {dst} (the host uses it)"
    return None


class ProviderPorts:
    """Host interfaces mapped to managed networks, plugged into their bridges and released."""

    def __init__(self, state_dir: Path, mapping: dict[str, str]) -> None:
        self.state_dir = Path(state_dir) / "provider"
        self.mapping = dict(mapping)  # network id -> interface
        self.mtus: dict[str, int] = {}  # network id -> its interface's MTU (once plugged)

    def interface(self, network_id: str) -> str | None:
        return self.mapping.get(network_id)

    def _record(self, dev: str) -> Path:
        return self.state_dir / f"{dev}.json"

    async def plug(self, network_id: str) -> int:
        """Make the mapped interface a port of the network's bridge (idempotent); its MTU."""
        dev = self.mapping[network_id]
        bridge = names.bridge_name(network_id)
        link = await _link(dev)
        if link is not None and link.get("master") == bridge:
            self.mtus[network_id] = int(link.get("mtu", 1500))
            return self.mtus[network_id]
        why = await refusal(dev, bridge)
        if why is not None:
            raise DriverError(f"provider interface {dev} for network {network_id} refused: "
                              f"{why}")
        assert link is not None
        record = self._record(dev)
        if not record.exists():  # the state before lbaas touched it, kept across restarts
            record.parent.mkdir(parents=True, exist_ok=True)
            tmp = record.with_name(f".{record.name}.{os.getpid()}")
            tmp.write_text(json.dumps({"network_id": network_id, "bridge": bridge,
                                       "was_up": "UP" in link.get("flags", [])}))
            os.replace(tmp, record)
        await nl.ip("link", "set", "dev", dev, "master", bridge, "up")
        self.mtus[network_id] = int(link.get("mtu", 1500))
        return self.mtus[network_id]

    async def release(self, network_id: str | None = None) -> list[str]:
        """Undo ``plug`` for one network (None: every recorded interface): no master, and down
        if it was down. An interface since moved elsewhere by the operator is left alone."""
        released = []
        for record in sorted(self.state_dir.glob("*.json")) if self.state_dir.is_dir() else ():
            try:
                data: dict[str, Any] = json.loads(record.read_text())
            except (OSError, ValueError):
                continue
            if network_id is not None and data.get("network_id") != network_id:
                continue
            dev = record.name.removesuffix(".json")
            link = await _link(dev)
            if link is not None and link.get("master") in (None, data.get("bridge")):
                if link.get("master"):
                    await nl.ip("link", "set", "dev", dev, "nomaster")
                if not data.get("was_up"):
                    await nl.ip("link", "set", "dev", dev, "down")
                released.append(f"provider interface {dev}")
            record.unlink(missing_ok=True)
            self.mtus.pop(str(data.get("network_id")), None)
        return released


async def _link(dev: str) -> dict[str, Any] | None:
    rc, out, _ = await nl.run(nl.IP, "-j", "link", "show", "dev", dev, check=False)
    if rc != 0 or not out.strip():
        return None
    items = json.loads(out)
    return items[0] if items else None
