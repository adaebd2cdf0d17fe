"""What a host-agent does: the local compute and network drivers, run for the controller.

The host-agent owns a directory (``base_dir``): amphora homes under ``amphorae/`` (each with a
``fleet.json`` naming its amphora and load balancer), the overlay's subnet state under
``network/``, demo backends under ``backends/``. It lists, changes and deletes only what is
there, so several host-agents on one machine (the lab) never touch each other's amphorae.
Bridges on an amphora host hold no address: the gateways live on the controller's side of each
segment, as a Neutron network node's router does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lbaas.drivers.base import ComputeInfo, DriverError
from lbaas.drivers.fleet import wire
from lbaas.drivers.local import names
from lbaas.drivers.local import netlink as nl
from lbaas.drivers.local.compute import LocalCompute
from lbaas.drivers.local.network import with_prefix
from lbaas.drivers.local.overlay import OverlayNetwork
from lbaas.drivers.local.provider import refusal

log = logging.getLogger("lbaas.hostagent")

META = "fleet.json"


@dataclass(frozen=True)
class HostIdentity:
    name: str
    zone: str
    capacity: int
    address: str  # underlay address (the VXLAN source, the API's listen address)


class HostAgent:
    def __init__(self, identity: HostIdentity, base_dir: Path, underlay_dev: str,
                 underlay_mtu: int = 1500, provider: dict[str, str] | None = None) -> None:
        """``provider``: network id -> host interface (flat networks: that interface instead
        of a VXLAN segment, decision 0117)."""
        self.identity = identity
        self.base_dir = Path(base_dir).absolute()
        self.network = OverlayNetwork(self.base_dir / "network", identity.address, underlay_dev,
                                      underlay_mtu, host_access=False, owner=self.base_dir,
                                      provider=provider)
        self.compute = LocalCompute(self.base_dir / "amphorae", self.network, reach_agent=False)
        self._flood: dict[int, list[str]] = {}
        self._lock = asyncio.Lock()  # flood sync vs segments being made
        self._backends: dict[str, asyncio.subprocess.Process] = {}

    async def check_provider(self) -> None:
        """Refuse (DriverError) a mapped interface the host uses for something else, at
        start-up rather than at the first amphora."""
        for network_id, dev in self.network.provider.mapping.items():
            why = await refusal(dev, names.bridge_name(network_id))
            if why is not None:
                raise DriverError(f"provider interface {dev} refused: {why}")

    # what the controller polls ---------------------------------------------------------------
    async def describe(self) -> dict[str, Any]:
        amphorae = []
        for ns in await self.compute.list_amphorae():
            meta = self._meta(ns)
            amphorae.append({"compute_id": f"{self.identity.name}/{ns}", **meta})
        return {**asdict(self.identity), "amphorae": amphorae,
                "segments": sorted((await self.network.segments()).keys())}

    def _meta(self, ns: str) -> dict[str, Any]:
        try:
            data = json.loads((self.compute.base_dir / ns / META).read_text())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    # amphorae --------------------------------------------------------------------------------
    async def create_amphora(self, body: dict[str, Any]) -> dict[str, Any]:
        spec = wire.spec_from(body)
        if spec.mgmt is not None:
            await self.network.ensure_subnet(spec.mgmt.subnet)
        if spec.vip is not None:
            await self.network.ensure_subnet(spec.vip.subnet)
        await self._apply_flood()
        info = await self.compute.create_amphora(spec)
        (self.compute.base_dir / info.compute_id / META).write_text(json.dumps(
            {"amphora_id": spec.amphora_id, "load_balancer_id": spec.load_balancer_id,
             "role": spec.role}))
        return {"compute_id": f"{self.identity.name}/{info.compute_id}",
                "lb_network_ip": info.lb_network_ip, "cached_zone": self.identity.zone,
                "segments": sorted((await self.network.segments()).keys())}

    async def delete_amphora(self, ns: str) -> dict[str, Any]:
        if ns in await self.compute.list_amphorae():
            await self.compute.delete_amphora(ns)
        return {"deleted": ns}

    async def plug_vip(self, ns: str, body: dict[str, Any]) -> dict[str, Any]:
        spec = wire.spec_from(body)
        self._own(ns)
        plug = await self.network.plug_vip(spec, ComputeInfo(compute_id=ns, lb_network_ip=""))
        return asdict(plug)

    async def announce_vip(self, ns: str, body: dict[str, Any]) -> dict[str, Any]:
        self._own(ns)
        await self.network.announce_vip(wire.spec_from(body),
                                        ComputeInfo(compute_id=ns, lb_network_ip=""))
        return {}

    async def unplug_vip(self, ns: str, body: dict[str, Any]) -> dict[str, Any]:
        spec = wire.spec_from(body)
        if not (self.compute.base_dir / ns).is_dir():
            return {}  # deleted already (with its legs)
        await self.network.unplug_vip(spec, None)
        return {}

    async def plug_subnets(self, ns: str, body: dict[str, Any]) -> dict[str, Any]:
        self._own(ns)
        plugs = [p for p in (wire.plug_from(item) for item in body.get("plugs", []))
                 if p is not None]
        for plug in plugs:
            await self.network.ensure_subnet(plug.subnet)
        await self._apply_flood()
        await self.network.plug_subnets(ComputeInfo(compute_id=ns, lb_network_ip=""), plugs)
        return {"segments": sorted((await self.network.segments()).keys())}

    def _own(self, ns: str) -> None:
        if not ns.startswith(names.AMP_NETNS_PREFIX) or \
                not (self.compute.base_dir / ns).is_dir():
            raise DriverError(f"no amphora {ns} on host {self.identity.name}")

    # overlay ---------------------------------------------------------------------------------
    async def set_flood(self, body: dict[str, Any]) -> dict[str, Any]:
        self._flood = {int(vni): [str(ip) for ip in ips] for vni, ips in body.items()}
        await self._apply_flood()
        return {"segments": sorted((await self.network.segments()).keys())}

    async def recover_flood(self) -> None:
        """At start: take the flood lists the segments still hold (the controller's last push)
        as this process's own and rewrite the underlay guard from them. Otherwise the first
        segment call before the controller's next push would sync a fresh process's empty
        lists, dropping every flood entry and every guard peer, and the controller, which
        believes its lists delivered, might not push again."""
        flood = await self.network.flood_lists()
        if flood:
            async with self._lock:
                self._flood = flood
                await self.network.sync_flood(flood)

    async def _apply_flood(self) -> None:
        async with self._lock:
            await self.network.sync_flood(self._flood)

    # demo backends (the lab's members) -------------------------------------------------------
    async def start_backend(self, body: dict[str, Any]) -> dict[str, Any]:
        subnet = wire.subnet_from(body["subnet"])
        address, port = str(body["address"]), int(body.get("port", 80))
        ns = names.backend_netns(address)
        await self.stop_backend(address)
        await self.network.ensure_subnet(subnet)
        await self._apply_flood()
        await nl.netns_add(ns)
        (self.base_dir / "backends").mkdir(parents=True, exist_ok=True)
        (self.base_dir / "backends" / ns).write_text(address)
        await nl.ip("link", "set", "dev", "lo", "up", ns=ns)
        await nl.ensure_veth(ns, names.BACKEND_LEG, names.backend_host_leg(address),
                             names.bridge_name(subnet.network_id),
                             mtu=self.network.mtu_for(subnet.network_id))
        await nl.set_addresses(names.BACKEND_LEG, {with_prefix(address, subnet.cidr)}, ns=ns)
        if subnet.gateway_ip:
            await nl.ip("route", "replace", "default", "via", subnet.gateway_ip, ns=ns)
        log_file = open(self.base_dir / "backends" / f"{ns}.log", "ab")
        self._backends[address] = await asyncio.create_subprocess_exec(
            nl.IP, "netns", "exec", ns, sys.executable, "-m", "lbaas.demo.backend_server",
            "--address", address, "--port", str(port), stdin=asyncio.subprocess.DEVNULL,
            stdout=log_file, stderr=log_file, start_new_session=True)
        log_file.close()
        return {"namespace": ns}

    async def stop_backend(self, address: str) -> dict[str, Any]:
        ns = names.backend_netns(address)
        child = self._backends.pop(address, None)
        if child is not None and child.returncode is None:
            child.terminate()
            await child.wait()
        if not (self.base_dir / "backends" / ns).exists():
            return {}
        for pid in await nl.netns_pids(ns):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        await nl.delete_link(names.backend_host_leg(address))
        if await nl.netns_exists(ns):
            await nl.netns_delete(ns)
        (self.base_dir / "backends" / ns).unlink(missing_ok=True)
        return {}

    async def shutdown(self) -> None:
        """Stop the demo backends (amphorae keep running: a restarted host-agent finds them)."""
        folder = self.base_dir / "backends"
        for path in folder.glob("lbbe-*") if folder.is_dir() else ():
            if not path.name.endswith(".log"):
                await self.stop_backend(path.read_text().strip())
