"""Local network driver: Linux bridges on the host stand in for Neutron networks.

Each managed network is a bridge (``names.bridge_name``) holding its subnets' gateway addresses,
and each managed subnet also gets an ``unreachable`` route with metric 4000 so its traffic never
leaves the machine, even while the bridge is missing. Amphora legs are veth pairs from the
amphora's namespace into these bridges. Everything is derived from ids and the kernel's state,
so every call is idempotent; ``state_dir`` only remembers which subnets were ensured so that the
last subnet of a network can take its bridge with it.

The host never loses what it reaches today: a subnet that overlaps a host route, contains a
route's gateway or an address the host uses (``host_use.py``: nameservers, /etc/hosts, open
connections, the operator's list) gets an *isolated* bridge, with no host address and no route
(one log line says why); ``host_access=False`` isolates every bridge. A tenant network
(``SubnetInfo.host_access`` False: neither seeded nor external) is always isolated, and may
overlap anything, as Neutron's project networks do; ``host_guard.py`` keeps tenant traffic from
opening connections to the host on every bridge (on the management one, all but heartbeats).
Each bridge carries its owner's mark (``ownership.py``): a bridge of another live instance is
refused, and only the owner's teardown removes it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
from dataclasses import asdict
from pathlib import Path

from lbaas.drivers.base import (
    AmphoraSpec,
    ComputeInfo,
    DriverError,
    PlugInfo,
    SubnetInfo,
    SubnetPlug,
)
from lbaas.drivers.local import garp, names, ownership
from lbaas.drivers.local import netlink as nl
from lbaas.drivers.local.host_guard import HostGuard
from lbaas.drivers.local.host_use import HostUse

log = logging.getLogger(__name__)

UNREACHABLE_METRIC = "4000"
REFUSING_TYPES = {"unreachable", "blackhole", "prohibit"}  # IPv6 shows these on dev lo
VIP_ROLES = {"STANDALONE", "SINGLE"}  # MASTER/BACKUP: keepalived owns the VIP
TENANT = "tenant network (never attached to the host)"


def with_prefix(address: str, cidr: str) -> str:
    return f"{ipaddress.ip_address(address)}/{ipaddress.ip_network(cidr).prefixlen}"


class LocalNetwork:
    def __init__(self, state_dir: Path, host_use: HostUse | None = None,
                 host_access: bool = True, owner: Path | None = None) -> None:
        """``owner``: the data directory whose mark the bridges carry (default: the parent of
        ``state_dir``, which is ``data_dir/network``)."""
        self.state_dir = Path(state_dir)
        self.host_use = host_use or HostUse()
        self.host_access = host_access
        self.owner = Path(owner or self.state_dir.absolute().parent).resolve()
        self.mark = ownership.mark_for(self.owner)
        self.guard = HostGuard(self.mark)
        self._lock = asyncio.Lock()
        self._warned: set[str] = set()
        self._ensured: dict[str, SubnetInfo] = {}  # ensured by this process (bridge re-checked)
        # ns -> the VIP plug just made (the compute driver plugs during the agent's start; the
        # controller's own plug_vip right after then finds it done): used once
        self._vip_plugged: dict[str, tuple[object, ...]] = {}
        # legs' MTU (None: the kernel's 1500); the overlay sets it below its underlay's
        self.leg_mtu: int | None = None

    def mtu_for(self, network_id: str) -> int | None:
        """The MTU of legs on this network's bridge (None: the kernel's 1500)."""
        return self.leg_mtu

    def bridge_mac(self, network_id: str) -> str:
        """The bridge's fixed MAC (the gateway's, when the host holds the gateway)."""
        return names.bridge_mac(network_id)

    # managed subnets ---------------------------------------------------------------------------
    def _state_file(self, subnet_id: str) -> Path:
        return self.state_dir / "subnets" / f"{subnet_id}.json"

    def ensured_subnets(self) -> list[SubnetInfo]:
        folder = self.state_dir / "subnets"
        if not folder.is_dir():
            return []
        return [SubnetInfo(**json.loads(p.read_text())) for p in sorted(folder.glob("*.json"))]

    async def _host_conflict(self, subnet: SubnetInfo, bridge: str) -> str | None:
        """Why the host must stay out of this subnet (None: it may hold the gateway).

        Overlap with another lbaas bridge is an error (naming its owner when it is another
        instance's). Overlap with one of the host's own networks (on this machine eth0 is
        192.0.2.0/24), a route's gateway inside, or an address the host uses inside makes the
        bridge *isolated*: no host address and no host route, so the host keeps reaching what
        it reaches today and only amphorae and backends talk on the bridge.
        """
        if not self.host_access:
            return "host access is off (networking.host_access = false)"
        cidr = ipaddress.ip_network(subnet.cidr)
        routes = await nl.ip_json(nl.family(subnet.cidr), "route", "show", "table", "all")
        for route in routes:
            dev = str(route.get("dev") or "")
            reason = _route_conflict(route, cidr, bridge)
            if reason is None:
                continue
            if dev.startswith(names.BRIDGE_PREFIX) or dev.startswith(names.HOST_LEG_PREFIX):
                owner = ownership.foreign_owner(dev, self.mark)
                if owner is not None:
                    raise ownership.BridgeOwnedElsewhere(dev, reason, owner, self.owner)
                raise DriverError(reason)
            return reason
        # the host's own traffic over lbaas bridges (to VIPs, to agents) is not "elsewhere"
        ours = frozenset(str(r.get("dst")) for r in routes if r.get("type") == "local"
                         and str(r.get("dev") or "").startswith(names.BRIDGE_PREFIX))
        return self.host_use.conflict(subnet.cidr, ours)

    def check_owner(self, subnet: SubnetInfo) -> None:
        """Refuse (BridgeOwnedElsewhere) a subnet whose bridge another live instance owns."""
        bridge = names.bridge_name(subnet.network_id)
        owner = ownership.foreign_owner(bridge, self.mark)
        if owner is not None:
            raise ownership.BridgeOwnedElsewhere(bridge, f"subnet {subnet.cidr}", owner,
                                                 self.owner)

    async def ensure_subnet(self, subnet: SubnetInfo) -> None:
        bridge = names.bridge_name(subnet.network_id)
        if self._ensured.get(subnet.subnet_id) == subnet and await nl.link_exists(bridge):
            return  # every amphora step ensures its subnets: a dozen ip calls saved each time
        async with self._lock:
            self.check_owner(subnet)
            # a tenant bridge is never the host's: no overlap check (two projects may use one
            # range, each on its own bridge), no address, no route (see host_guard.py too)
            isolated = TENANT if not subnet.host_access \
                else await self._host_conflict(subnet, bridge)
            if isolated and isolated is not TENANT and subnet.subnet_id not in self._warned:
                self._warned.add(subnet.subnet_id)
                log.warning("%s: bridge %s stays isolated from the host", isolated, bridge)
            if not await nl.link_exists(bridge):
                rc, _, err = await nl.run(nl.IP, "link", "add", "name", bridge, "type", "bridge",
                                          check=False)
                if rc != 0 and "File exists" not in err:
                    raise DriverError(f"cannot create bridge {bridge}: {err.strip()}")
            # A bridge otherwise takes its lowest port MAC: the gateway's MAC would change as
            # amphorae come and go, and their ARP caches would point at the old one.
            await nl.ip("link", "set", "dev", bridge, "address",
                        self.bridge_mac(subnet.network_id), "alias", self.mark, "up")
            # Linux answers ARP on any interface for any host address (arp_ignore 0): on an
            # isolated bridge the host would claim eth0's 192.0.2.2, a VIP there, for itself.
            arp_ignore = Path(f"/proc/sys/net/ipv4/conf/{bridge}/arp_ignore")
            if arp_ignore.exists():
                arp_ignore.write_text("1")
            no_v6 = Path(f"/proc/sys/net/ipv6/conf/{bridge}/disable_ipv6")
            if no_v6.exists():  # a tenant bridge: not even a link-local host address
                no_v6.write_text("1" if isolated is TENANT else "0")
            if subnet.gateway_ip:
                gw = with_prefix(subnet.gateway_ip, subnet.cidr)
                have = gw in await nl.addresses(bridge)
                if not isolated and not have:
                    extra = ["nodad"] if ":" in gw else []
                    await nl.ip("addr", "replace", gw, "dev", bridge, *extra)
                elif isolated and have:  # the host started using it since (or host access off)
                    await nl.ip("addr", "del", gw, "dev", bridge)
            await nl.ip(nl.family(subnet.cidr), "route", "replace" if not isolated else "del",
                        "unreachable", subnet.cidr, "metric", UNREACHABLE_METRIC,
                        check=not isolated)
            path = self._state_file(subnet.subnet_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            # whole or not at all: other processes of this data directory (`lbaas backend`,
            # the host guard's sync) read every state file while this one is written
            tmp = path.with_name(f".{path.name}.{os.getpid()}")
            tmp.write_text(json.dumps(asdict(subnet)))
            os.replace(tmp, path)
            await self.guard.sync(self.ensured_subnets())
            self._ensured[subnet.subnet_id] = subnet

    async def remove_subnet(self, subnet: SubnetInfo) -> None:
        """Forget the subnet; its address, route and (last subnet) bridge go only if this
        instance owns the bridge."""
        bridge = names.bridge_name(subnet.network_id)
        self._ensured.pop(subnet.subnet_id, None)
        async with self._lock:
            if ownership.read_mark(bridge) not in (None, self.mark):
                log.info("bridge %s belongs to another lbaas instance: left in place", bridge)
                self._state_file(subnet.subnet_id).unlink(missing_ok=True)
                return
            if subnet.gateway_ip and await nl.link_exists(bridge):
                gw = with_prefix(subnet.gateway_ip, subnet.cidr)
                if gw in await nl.addresses(bridge):
                    await nl.ip("addr", "del", gw, "dev", bridge)
            await nl.ip(nl.family(subnet.cidr), "route", "del", "unreachable", subnet.cidr,
                        "metric", UNREACHABLE_METRIC, check=False)
            self._state_file(subnet.subnet_id).unlink(missing_ok=True)
            left = self.ensured_subnets()
            if not any(s.network_id == subnet.network_id for s in left):
                await nl.delete_link(bridge)
            await self.guard.sync(left)

    # amphora legs ------------------------------------------------------------------------------
    async def plug_leg(self, ns: str, leg: str, subnet: SubnetInfo, addresses: list[str],
                       keep: tuple[str, ...] = (), then: tuple[str, ...] = (),
                       fresh_ns: bool = False) -> None:
        """Make ``leg`` in ``ns`` a port of the subnet's bridge carrying exactly ``addresses``
        (plus any of ``keep`` already there); ``then``: ``ip`` commands to run in ``ns`` after
        (routes over the leg); ``fresh_ns``: ``ns`` was just made and has no such leg yet."""
        await self.ensure_subnet(subnet)
        created = await nl.ensure_veth(ns, leg, names.host_leg(ns, leg),
                                       names.bridge_name(subnet.network_id), fresh_ns, False,
                                       mtu=self.mtu_for(subnet.network_id))
        await nl.set_addresses(leg, {with_prefix(a, subnet.cidr) for a in addresses}, ns=ns,
                               keep=frozenset(str(ipaddress.ip_address(a)) for a in keep),
                               fresh=created, before=(f"link set dev {leg} up",), then=then)

    async def plug_vip(self, spec: AmphoraSpec, compute: ComputeInfo) -> PlugInfo:
        if spec.vip is None:
            raise DriverError("the local network driver needs spec.vip (subnet and address)")
        ns = await self._data_netns(compute.compute_id)
        wanted, keep = [spec.vip.address], ()
        if spec.role in VIP_ROLES:
            wanted.append(spec.vip_address)
        else:
            keep = (spec.vip_address,)  # a retry must not take the VIP from keepalived
        key = (tuple(wanted), keep, spec.vip.subnet)
        if self._vip_plugged.pop(ns, None) == key \
                and await nl.link_exists(names.host_leg(ns, names.VIP_LEG)):
            return self._vip_info(spec)
        gateway = spec.vip.subnet.gateway_ip
        # (a batch line takes no -4/-6: the family follows from the gateway address)
        route = (f"route replace default via {gateway} dev {names.VIP_LEG}",) if gateway else ()
        await self.plug_leg(ns, names.VIP_LEG, spec.vip.subnet, wanted, keep, then=route)
        self._vip_plugged[ns] = key
        return self._vip_info(spec)

    async def announce_vip(self, spec: AmphoraSpec, compute: ComputeInfo) -> None:
        """Gratuitous ARP for a SINGLE amphora's VIP (a replacement answers with a new MAC);
        the reconciler calls it once the amphora serves."""
        if spec.role in VIP_ROLES:
            garp.announce(names.data_netns_of(compute.compute_id), names.VIP_LEG,
                          spec.vip_address)

    @staticmethod
    def _vip_info(spec: AmphoraSpec) -> PlugInfo:
        assert spec.vip is not None
        return PlugInfo(vrrp_ip=spec.vip.address, vrrp_port_id="", ha_ip=spec.vip_address,
                        ha_port_id="", vrrp_interface=names.VIP_LEG)

    async def unplug_vip(self, spec: AmphoraSpec, plug: PlugInfo | None) -> None:
        ns = names.amphora_data_netns(spec.amphora_id)
        self._vip_plugged.pop(ns, None)
        if await nl.netns_exists(ns):
            await nl.delete_link(names.VIP_LEG, ns=ns)
        await nl.delete_link(names.host_leg(ns, names.VIP_LEG))

    async def plug_subnets(self, compute: ComputeInfo, plugs: list[SubnetPlug]) -> None:
        ns = await self._data_netns(compute.compute_id)
        # Octavia reuses the VIP port for members on the VIP subnet; so do we.
        on_vip = {ipaddress.ip_interface(a).network
                  for a in (await nl.addresses(names.VIP_LEG, ns=ns)
                            if plugs and await nl.link_exists(names.VIP_LEG, ns) else set())}
        wanted: dict[str, tuple[SubnetInfo, list[str]]] = {}
        for plug in plugs:
            if ipaddress.ip_network(plug.subnet.cidr) in on_vip:
                continue
            leg = names.member_leg(plug.subnet.subnet_id)
            wanted.setdefault(leg, (plug.subnet, []))[1].append(plug.address)
        for leg, (subnet, addrs) in wanted.items():
            await self.plug_leg(ns, leg, subnet, addrs)
        for leg in await nl.links(ns):
            if leg.startswith(names.MEMBER_LEG_PREFIX) and leg not in wanted:
                await nl.delete_link(leg, ns=ns)

    async def unplug_all(self, ns: str) -> None:
        """Remove every leg of the amphora whose management namespace is ``ns`` (in both its
        namespaces; the host peers go with them)."""
        data_ns = names.data_netns_of(ns)
        self._vip_plugged.pop(data_ns, None)
        for space in (ns, data_ns):
            if await nl.netns_exists(space):
                for leg in await nl.links(space):
                    if leg != "lo":
                        await nl.delete_link(leg, ns=space)
        for space, leg in ((ns, names.MGMT_LEG), (data_ns, names.VIP_LEG)):
            await nl.delete_link(names.host_leg(space, leg))

    async def guard_data_netns(self, data_ns: str, blocked: list[str]) -> None:
        """Loopback up, and a ``prohibit`` route for each of ``blocked`` (the management subnet,
        the health manager): the data namespace's default route goes to the VIP subnet's
        gateway on this host, which would otherwise deliver to the host's own addresses there."""
        await nl.batch(["link set dev lo up",
                        *(f"route replace prohibit {ipaddress.ip_network(cidr, strict=False)}"
                          for cidr in blocked)], ns=data_ns)

    @staticmethod
    async def _data_netns(compute_id: str) -> str:
        data_ns = names.data_netns_of(compute_id)
        if await nl.netns_exists(data_ns):
            return data_ns
        if await nl.netns_exists(compute_id):
            raise DriverError(f"amphora {compute_id} was built with one namespace (before the "
                              f"data namespace {data_ns} existed): fail it over to rebuild it")
        raise DriverError(f"amphora namespace {data_ns} does not exist")


def _route_conflict(route: dict[str, object], cidr: ipaddress.IPv4Network
                    | ipaddress.IPv6Network, bridge: str) -> str | None:
    """Why this host route keeps ``cidr`` off the host (None: it does not matter)."""
    dev = route.get("dev")
    if (dev is None or dev == bridge or route.get("type") in REFUSING_TYPES
            or route.get("table") not in (None, "main", "local")):
        return None
    dst = str(route.get("dst", ""))
    if dst != "default":
        try:
            net = ipaddress.ip_network(dst, strict=False)
        except ValueError:
            return None
        if net.version == cidr.version and net.overlaps(cidr) and net.prefixlen > 0:
            if route.get("type") == "local" and net.prefixlen < net.max_prefixlen:
                return None
            return f"subnet {cidr} overlaps host route {dst} on {dev}"
    gateway = route.get("gateway")
    if gateway and ipaddress.ip_address(str(gateway)) in cidr:
        return f"subnet {cidr} contains host gateway {gateway} ({dev})"
    return None
