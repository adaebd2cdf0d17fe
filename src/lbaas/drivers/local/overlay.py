"""Managed networks across hosts: one VXLAN segment per network, head-end replication.

Each managed network's bridge (``names.bridge_name``) gets a VXLAN port ``vx<8 hex>`` with the
network's VNI (``vni_for``: derived from the network id, so every host computes the same one
without asking), bound to this host's underlay address. Broadcast, unknown unicast and
multicast (ARP, VRRP's unicast adverts before the peer's MAC is learnt) are copied to every
other host that has the segment: one all-zero forwarding entry per peer
(``bridge fdb append 00:00:00:00:00:00 dev vx… dst <peer>``), the entries the controller keeps as
Neutron's l2population does (``sync_flood``). Unicast MACs are learnt from what arrives.

MTU: VXLAN over IPv4 adds 50 bytes (outer IP 20, UDP 8, VXLAN 8, inner Ethernet 14), so the
VXLAN port, and every leg plugged into an overlay bridge, get ``underlay MTU - 50``: nothing is
ever fragmented or dropped for size on the underlay.

Flat provider networks (``provider.py``, decision 0117): a network mapped to a host interface
(``provider``: network id -> interface) gets that interface as a port of its bridge. On an
amphora host (``vxlan_beside_provider`` False) it *replaces* the VXLAN port: the host has no
segment for that network, so it reports none and the controller puts it in no flood list; legs
get the interface's MTU. The controller's machine keeps its VXLAN port beside the interface
(``vxlan_beside_provider`` True): it is the one bridge between the hosts that map the network and
those that keep VXLAN for it (one machine only, so no loop), and its legs get the smaller MTU.

Key choice: the kernel's VXLAN (no Open vSwitch): always there, ``ip``/``bridge`` are what
operators know, and a bridge per network is what the local driver already builds.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from lbaas.drivers.base import DriverError, SubnetInfo
from lbaas.drivers.local import names
from lbaas.drivers.local import netlink as nl
from lbaas.drivers.local.host_use import HostUse
from lbaas.drivers.local.network import LocalNetwork
from lbaas.drivers.local.provider import ProviderPorts
from lbaas.drivers.local.underlay_guard import UnderlayGuard

VXLAN_PREFIX = "vx"
VXLAN_OVERHEAD = 50
VXLAN_PORT = 4789  # IANA
ZERO_MAC = "00:00:00:00:00:00"


def vni_for(network_id: str) -> int:
    """A VNI in 1..2**24-2 from the network id (the same on every host)."""
    return int(hashlib.sha256(f"vni:{network_id}".encode()).hexdigest()[:8], 16) \
        % (2 ** 24 - 2) + 1


def vxlan_name(network_id: str) -> str:
    """``vx`` + the same 8 hex as the network's bridge."""
    return VXLAN_PREFIX + names.bridge_name(network_id).removeprefix(names.BRIDGE_PREFIX)


class OverlayNetwork(LocalNetwork):
    """A LocalNetwork whose bridges are also VXLAN segments on the underlay.

    ``local_ip``: this host's underlay address; ``underlay_dev``: the interface it is on;
    ``underlay_mtu``: that interface's MTU; ``provider``: network id -> host interface (flat
    networks); ``vxlan_beside_provider``: keep the VXLAN port beside a mapped interface (the
    controller), or not (an amphora host)."""

    def __init__(self, state_dir: Path, local_ip: str, underlay_dev: str,
                 underlay_mtu: int = 1500, host_use: HostUse | None = None,
                 host_access: bool = True, owner: Path | None = None,
                 port: int = VXLAN_PORT, provider: dict[str, str] | None = None,
                 vxlan_beside_provider: bool = False) -> None:
        super().__init__(state_dir, host_use, host_access, owner)
        self.local_ip = local_ip
        self.underlay_dev = underlay_dev
        self.port = port
        self.leg_mtu = underlay_mtu - VXLAN_OVERHEAD
        self.provider = ProviderPorts(self.state_dir, provider or {})
        self.vxlan_beside_provider = vxlan_beside_provider
        self._vnis: dict[int, str] = {}  # vni -> network id, segments ensured here
        self.underlay_guard = UnderlayGuard(self.mark, local_ip, port)  # VXLAN from peers only

    def flat_only(self, network_id: str) -> bool:
        """The network reaches the other machines through a host interface alone."""
        return self.provider.interface(network_id) is not None \
            and not self.vxlan_beside_provider

    def mtu_for(self, network_id: str) -> int | None:
        """A flat network keeps its interface's MTU; beside VXLAN, the smaller of the two."""
        mtu = self.provider.mtus.get(network_id)
        if mtu is None:
            return self.leg_mtu
        return mtu if self.flat_only(network_id) else min(mtu, self.leg_mtu or mtu)

    def bridge_mac(self, network_id: str) -> str:
        """The controller's bridges hold the gateways and keep their MAC; a host's bridges
        (no address) get one of their own, or two ends of a segment would share a MAC."""
        if self.host_access:
            return super().bridge_mac(network_id)
        return names.bridge_mac(f"{network_id}@{self.local_ip}")

    async def ensure_subnet(self, subnet: SubnetInfo) -> None:
        await super().ensure_subnet(subnet)
        await self.ensure_segment(subnet.network_id)

    async def ensure_segment(self, network_id: str) -> None:
        """The network's VXLAN port and/or its provider interface on its bridge (idempotent)."""
        vni = vni_for(network_id)
        dev = vxlan_name(network_id)
        if self.provider.interface(network_id) is not None:
            mtu = await self.provider.plug(network_id)
            if self.flat_only(network_id):
                await self._drop_vxlan(network_id)  # one made before the mapping
                bridge = names.bridge_name(network_id)
                if _sysfs(bridge, "mtu") != str(mtu):
                    await nl.ip("link", "set", "dev", bridge, "mtu", str(mtu))
                return
        if self._vnis.get(vni) == network_id and await nl.link_exists(dev):
            return
        bridge = names.bridge_name(network_id)
        await self.underlay_guard.ensure()
        if not await nl.link_exists(dev):
            rc, _, err = await nl.run(
                nl.IP, "link", "add", dev, "type", "vxlan", "id", str(vni), "local",
                self.local_ip, "dev", self.underlay_dev, "dstport", str(self.port), check=False)
            if rc != 0 and "File exists" not in err:
                raise DriverError(f"cannot create VXLAN {dev} (VNI {vni}): {err.strip()}")
        await nl.ip("link", "set", "dev", dev, "mtu", str(self.leg_mtu), "alias", self.mark)
        await nl.batch([f"link set dev {dev} master {bridge} up",
                        f"link set dev {bridge} mtu {self.mtu_for(network_id)}"])
        self._vnis[vni] = network_id

    async def _drop_vxlan(self, network_id: str) -> None:
        dev = vxlan_name(network_id)
        if await nl.link_exists(dev) and _alias(dev) == self.mark:
            await nl.delete_link(dev)
        self._vnis.pop(vni_for(network_id), None)

    async def remove_subnet(self, subnet: SubnetInfo) -> None:
        await super().remove_subnet(subnet)
        if not await nl.link_exists(names.bridge_name(subnet.network_id)):
            await nl.delete_link(vxlan_name(subnet.network_id))
            self._vnis.pop(vni_for(subnet.network_id), None)
            await self.provider.release(subnet.network_id)

    async def segments(self) -> dict[int, str]:
        """VNI -> VXLAN device of every segment present on this host (read from the kernel)."""
        found: dict[int, str] = {}
        for item in await nl.ip_json("-d", "link", "show", "type", "vxlan"):
            name = str(item.get("ifname", ""))
            vni = item.get("linkinfo", {}).get("info_data", {}).get("id")
            if name.startswith(VXLAN_PREFIX) and isinstance(vni, int):
                found[vni] = name
        return found

    async def sync_flood(self, peers: dict[int, list[str]]) -> None:
        """Make each present segment's flood list exactly ``peers[vni]`` (underlay addresses;
        a segment not named gets none)."""
        await self.underlay_guard.sync_flood(peers)
        for vni, dev in (await self.segments()).items():
            wanted = set(peers.get(vni, ())) - {self.local_ip}
            have = await _flood_of(dev)
            lines = [f"fdb append {ZERO_MAC} dev {dev} dst {ip}" for ip in sorted(wanted - have)]
            lines += [f"fdb del {ZERO_MAC} dev {dev} dst {ip}" for ip in sorted(have - wanted)]
            if lines:
                await nl.run("bridge", "-batch", "-", stdin="\n".join(lines) + "\n")

    async def flood_lists(self) -> dict[int, list[str]]:
        """The flood list of every present segment, read from the kernel: what the last
        ``sync_flood`` made, kept across a restart of this process."""
        return {vni: sorted(await _flood_of(dev))
                for vni, dev in (await self.segments()).items()}

    async def teardown_segments(self) -> list[str]:
        """Delete every VXLAN port this instance made (its mark); give back every provider
        interface as it was."""
        removed = []
        for dev in (await self.segments()).values():
            if _alias(dev) == self.mark:
                await nl.delete_link(dev)
                removed.append(dev)
        if await self.underlay_guard.remove():
            removed.append(f"nftables table inet {self.underlay_guard.table}")
        return removed + await self.provider.release()


async def _flood_of(dev: str) -> set[str]:
    return {str(e.get("dst")) for e in await nl.json_cmd("bridge", "-j", "fdb", "show", "dev", dev)
            if e.get("mac") == ZERO_MAC and e.get("dst")}


def _alias(dev: str) -> str:
    return _sysfs(dev, "ifalias")


def _sysfs(dev: str, item: str) -> str:
    try:
        return Path(f"/sys/class/net/{dev}/{item}").read_text().strip()
    except OSError:
        return ""
