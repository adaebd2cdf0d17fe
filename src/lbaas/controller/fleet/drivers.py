"""Compute and network drivers that build amphorae on amphora hosts through their host-agents.

``compute_id`` is ``<host>/<namespace>``, ``cached_zone`` the host's zone. Managed subnets stay
on the controller (bridges holding the gateways, now VXLAN segments too); an amphora's legs are
plugged by its host-agent.
"""

from __future__ import annotations

import logging
from dataclasses import asdict

from lbaas.controller.fleet.hosts import Fleet, HostView
from lbaas.drivers.base import (
    AmphoraSpec,
    ComputeInfo,
    DriverError,
    PlugInfo,
    SubnetInfo,
    SubnetPlug,
)
from lbaas.drivers.fleet import placement, wire
from lbaas.drivers.fleet.client import HostUnreachable
from lbaas.drivers.local import names
from lbaas.drivers.local import netlink as nl
from lbaas.drivers.local.overlay import OverlayNetwork

log = logging.getLogger("lbaas.fleet")

# A delete that takes longer is left to the host-agent (it finishes what it received) and to
# the sweep: a failover must not wait for a host that just died.
DELETE_TIMEOUT = 3.0


class FleetCompute:
    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet

    async def create_amphora(self, spec: AmphoraSpec) -> ComputeInfo:
        fleet = self.fleet
        host = fleet.host_of_amphora(spec.amphora_id)  # a retry finds it where it went
        if host is None or not fleet.answering(host):
            avoid = fleet.hosts_of_lb(spec.load_balancer_id, spec.amphora_id)
            try:  # a host that missed its last two polls (just died?) only if no other fits
                name = placement.choose(fleet.candidates(fresh=True), spec.zone, avoid)
            except placement.NoHost:
                name = placement.choose(fleet.candidates(), spec.zone, avoid)
            host = fleet.by_name(name)
            assert host is not None
        fleet.pending[spec.amphora_id] = (host.name, spec.load_balancer_id)
        try:
            data = await fleet.client.call(host.endpoint, "POST", wire.AMPHORAE_PATH,
                                           wire.spec_to_json(spec))
        finally:
            fleet.pending.pop(spec.amphora_id, None)
        host.amphorae.append({"compute_id": data["compute_id"], "amphora_id": spec.amphora_id,
                              "load_balancer_id": spec.load_balancer_id, "role": spec.role})
        host.segments |= {int(v) for v in data.get("segments", [])}
        await fleet.sync_flood()
        if spec.mgmt is not None:
            # A failover reuses the retired amphora's management address: the controller's
            # neighbour entry still names that amphora's MAC (over the overlay to its, maybe
            # dead, host), so the first bundle push went nowhere for 0.8-1.5 s.
            await nl.ip("neigh", "flush", "to", spec.mgmt.address, "dev",
                        names.bridge_name(spec.mgmt.subnet.network_id), check=False)
        log.info("amphora %s placed on host %s (zone %s)", spec.amphora_id, host.name,
                 host.zone)
        return wire.compute_from(data)

    async def delete_amphora(self, compute_id: str) -> None:
        name, ns = wire.split_compute_id(compute_id)
        host = self.fleet.by_name(name)
        if host is None:
            log.warning("amphora %s: host %s is unknown; nothing to delete", compute_id, name)
            return
        host.amphorae = [a for a in host.amphorae if a.get("compute_id") != compute_id]
        if not self.fleet.answering(host):
            # lost or not answering its polls: a failover must not wait on it; whatever no
            # live row claims is deleted when it answers (Fleet._sweep)
            log.warning("amphora %s: host %s does not answer; removed when it does",
                        compute_id, name)
            return
        if not self.fleet.fresh(host):
            # missed its last two polls: likely dead (the health manager's heartbeat timeout
            # can fire before the 3-poll rule above does) or very slow; the delete goes on
            # in the background instead of holding the failover for up to DELETE_TIMEOUT
            log.warning("amphora %s: host %s missed its last polls; deleting in the background",
                        compute_id, name)
            self.fleet.spawn(self._delete_later(host.endpoint, compute_id, ns))
            return
        await self._delete(host.endpoint, compute_id, ns)

    async def _delete_later(self, endpoint: str, compute_id: str, ns: str) -> None:
        try:
            await self._delete(endpoint, compute_id, ns)
        except Exception as exc:  # nobody awaits it: whatever no live row claims is swept
            log.warning("amphora %s: %s; removed by the next sweep", compute_id, exc)

    async def _delete(self, endpoint: str, compute_id: str, ns: str) -> None:
        try:
            await self.fleet.client.call(endpoint, "DELETE", f"{wire.AMPHORAE_PATH}/{ns}",
                                         timeout=DELETE_TIMEOUT)
        except HostUnreachable as exc:
            log.warning("amphora %s: %s; removed by the next sweep", compute_id, exc)

    def compute_id_for(self, amphora_id: str) -> str | None:
        host = self.fleet.host_of_amphora(amphora_id)
        if host is None:
            return None
        return next((str(a["compute_id"]) for a in host.amphorae
                     if a.get("amphora_id") == amphora_id), None)


class FleetNetwork:
    def __init__(self, fleet: Fleet, overlay: OverlayNetwork) -> None:
        self.fleet = fleet
        self.overlay = overlay

    def check_owner(self, subnet: SubnetInfo) -> None:
        self.overlay.check_owner(subnet)

    async def ensure_subnet(self, subnet: SubnetInfo) -> None:
        await self.overlay.ensure_subnet(subnet)

    async def remove_subnet(self, subnet: SubnetInfo) -> None:
        await self.overlay.remove_subnet(subnet)

    def _host(self, compute_id: str) -> tuple[HostView, str]:
        name, ns = wire.split_compute_id(compute_id)
        host = self.fleet.by_name(name)
        if host is None:
            raise DriverError(f"amphora {compute_id}: no host {name!r}")
        return host, ns

    async def plug_vip(self, spec: AmphoraSpec, compute: ComputeInfo) -> PlugInfo:
        host, ns = self._host(compute.compute_id)
        data = await self.fleet.client.call(host.endpoint, "PUT",
                                            f"{wire.AMPHORAE_PATH}/{ns}/vip",
                                            wire.spec_to_json(spec))
        return PlugInfo(**data)

    async def announce_vip(self, spec: AmphoraSpec, compute: ComputeInfo) -> None:
        host, ns = self._host(compute.compute_id)
        await self.fleet.client.call(host.endpoint, "PUT",
                                     f"{wire.AMPHORAE_PATH}/{ns}/vip/announce",
                                     wire.spec_to_json(spec))

    async def unplug_vip(self, spec: AmphoraSpec, plug: PlugInfo | None) -> None:
        host = self.fleet.host_of_amphora(spec.amphora_id)
        if host is None or not self.fleet.answering(host):
            return  # deleting the amphora removes its legs anyway
        cid = next((str(a["compute_id"]) for a in host.amphorae
                    if a.get("amphora_id") == spec.amphora_id), "")
        _, ns = wire.split_compute_id(cid)
        try:
            await self.fleet.client.call(host.endpoint, "DELETE",
                                         f"{wire.AMPHORAE_PATH}/{ns}/vip",
                                         wire.spec_to_json(spec), timeout=DELETE_TIMEOUT)
        except DriverError as exc:
            log.warning("unplug VIP of amphora %s: %s", spec.amphora_id, exc)

    async def plug_subnets(self, compute: ComputeInfo, plugs: list[SubnetPlug]) -> None:
        host, ns = self._host(compute.compute_id)
        data = await self.fleet.client.call(host.endpoint, "PUT",
                                            f"{wire.AMPHORAE_PATH}/{ns}/subnets",
                                            {"plugs": [asdict(p) for p in plugs]})
        segments = {int(v) for v in data.get("segments", [])}
        if not segments <= host.segments:
            host.segments |= segments
            await self.fleet.sync_flood()
