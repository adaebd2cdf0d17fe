"""Local routers for floating IPs: a namespace per router doing Neutron's L3 agent's job.

Key choice: the host cannot DNAT to a VIP on a network it is isolated from (a range the host
already uses, or ``networking.host_access = false``: the bridge holds no host address), so, like
Neutron, a router namespace ``lbrt-<8 hex>`` sits on both bridges: leg ``qg0`` on the external
network holds the floating addresses, leg ``qr0`` on the internal subnet holds the router's port
address. nftables in the namespace DNATs each floating address to its fixed address and SNATs
what it forwards inside to the router's own address, so replies come back through it whatever
the amphora's default route is. ``converge`` makes the set of routers exactly the wanted one;
``state_dir`` remembers which routers this data directory made, for removal and teardown.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from lbaas.drivers.base import DriverError, SubnetInfo
from lbaas.drivers.local import names
from lbaas.drivers.local import netlink as nl
from lbaas.drivers.local.network import LocalNetwork

log = logging.getLogger(__name__)

ROUTER_NETNS_PREFIX = "lbrt-"
OUTSIDE_LEG = "qg0"
INSIDE_LEG = "qr0"
NFT_TABLE = "lbaas_fip"


def router_netns(router_id: str) -> str:
    return ROUTER_NETNS_PREFIX + hashlib.sha256(f"router:{router_id}".encode()).hexdigest()[:8]


@dataclass(frozen=True)
class RouterSpec:
    """One router: its inside port, the external subnet, and floating -> fixed addresses."""

    router_id: str
    inside: SubnetInfo
    inside_address: str
    outside: SubnetInfo
    nat: tuple[tuple[str, str], ...]

    @property
    def netns(self) -> str:
        return router_netns(self.router_id)


def nft_ruleset(spec: RouterSpec) -> str:
    """The whole NAT table, replaced in one nft transaction (addresses are validated here)."""
    inside = str(ipaddress.IPv4Address(spec.inside_address))
    rules = [f"        ip daddr {ipaddress.IPv4Address(f)} dnat to {ipaddress.IPv4Address(x)}"
             for f, x in spec.nat]
    return "\n".join([
        f"table ip {NFT_TABLE}", f"delete table ip {NFT_TABLE}", f"table ip {NFT_TABLE} {{",
        "    chain prerouting {",
        "        type nat hook prerouting priority dstnat; policy accept;", *rules, "    }",
        "    chain postrouting {",
        "        type nat hook postrouting priority srcnat; policy accept;",
        f'        oifname "{INSIDE_LEG}" ct status dnat snat to {inside}', "    }", "}", ""])


class LocalRouters:
    def __init__(self, state_dir: Path, network: LocalNetwork) -> None:
        self.state_dir = Path(state_dir)
        self.network = network
        self._lock = asyncio.Lock()

    def known(self) -> dict[str, str]:
        """Router namespaces this data directory made: netns -> router id."""
        if not self.state_dir.is_dir():
            return {}
        out = {}
        for path in sorted(self.state_dir.glob("*.json")):
            out[path.stem] = json.loads(path.read_text())["router_id"]
        return out

    async def converge(self, routers: list[RouterSpec]) -> None:
        async with self._lock:
            wanted = {r.netns for r in routers}
            for ns in sorted(set(self.known()) - wanted):
                await self._remove(ns)
            for spec in routers:
                await self._ensure(spec)

    async def teardown(self) -> list[str]:
        async with self._lock:
            gone = sorted(self.known())
            for ns in gone:
                await self._remove(ns)
            return gone

    async def _ensure(self, spec: RouterSpec) -> None:
        ns = spec.netns
        self.state_dir.mkdir(parents=True, exist_ok=True)
        # recorded first: a router half built before a crash is still found and removed
        (self.state_dir / f"{ns}.json").write_text(json.dumps(asdict(spec)))
        fresh = not await nl.netns_exists(ns)
        if fresh:
            rc, _, err = await nl.run("ip", "netns", "add", ns, check=False)
            if rc != 0 and "File exists" not in err:
                raise DriverError(f"ip netns add {ns}: {err.strip()}")
        await nl.ip("link", "set", "dev", "lo", "up", ns=ns)
        await nl.run("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        # NAT first: a floating address that answered before its DNAT rule existed would
        # refuse the first connections itself (the rules name the legs, not their indexes)
        await _nft(ns, nft_ruleset(spec))
        await self.network.plug_leg(ns, INSIDE_LEG, spec.inside, [spec.inside_address])
        floating = [f for f, _ in spec.nat]
        await self.network.plug_leg(ns, OUTSIDE_LEG, spec.outside, floating)
        if spec.outside.gateway_ip:
            await nl.ip("-4", "route", "replace", "default", "via", spec.outside.gateway_ip,
                        "dev", OUTSIDE_LEG, ns=ns)
        # a rebuilt router's leg has a new MAC: the host must not keep sending to the old one
        bridge = names.bridge_name(spec.outside.network_id)
        for address in floating:
            await nl.ip("neigh", "flush", "to", address, "dev", bridge, check=False)
        if fresh:
            log.info("router %s built: %s", ns, ", ".join(f"{f} -> {x}" for f, x in spec.nat))

    async def _remove(self, ns: str) -> None:
        if await nl.netns_exists(ns):
            for leg in await nl.links(ns):
                if leg != "lo":
                    await nl.delete_link(leg, ns=ns)  # takes the host peer with it
            rc, _, err = await nl.run("ip", "netns", "del", ns, check=False)
            if rc != 0 and "No such file" not in err:
                raise DriverError(f"ip netns del {ns}: {err.strip()}")
        (self.state_dir / f"{ns}.json").unlink(missing_ok=True)
        log.info("router %s removed", ns)


async def _nft(ns: str, ruleset: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", ns, "nft", "-f", "-", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate(ruleset.encode())
    if proc.returncode != 0:
        raise DriverError(f"nft in {ns}: {err.decode(errors='replace').strip()}")
