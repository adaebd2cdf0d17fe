"""Fake drivers with the visible behaviour of upstream Octavia's noop drivers.

They do no I/O, answer at once and remember what they were told, so API tests see load
balancers converge (ACTIVE, operating status OFFLINE, amphora rows present) in milliseconds.
Only an amphora delete can be given a duration (``controller.fake_delete_seconds``), for
clients that expect a failed-over amphora to stay visible for a moment, as upstream's does.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import uuid
from typing import Any

from lbaas.drivers.base import (
    AmphoraSpec,
    ComputeInfo,
    DriverError,
    PlugInfo,
    SubnetInfo,
    SubnetPlug,
)

_MGMT = ipaddress.ip_network("198.51.100.0/24")


class FakeCompute:
    def __init__(self, delete_seconds: float = 0.0) -> None:
        self.instances: dict[str, AmphoraSpec] = {}
        self._counter = itertools.count(10)
        self.delete_seconds = delete_seconds  # how long a delete takes (instant by default)

    async def create_amphora(self, spec: AmphoraSpec) -> ComputeInfo:
        compute_id = str(uuid.uuid4())
        self.instances[compute_id] = spec
        host = next(self._counter) % 240 + 10
        return ComputeInfo(compute_id=compute_id, lb_network_ip=str(_MGMT[host]),
                           image_id=str(uuid.UUID(int=0)), compute_flavor="fake-flavor",
                           cached_zone="fake-zone")

    async def delete_amphora(self, compute_id: str) -> None:
        if self.delete_seconds:
            await asyncio.sleep(self.delete_seconds)
        self.instances.pop(compute_id, None)

    def compute_id_for(self, amphora_id: str) -> str | None:
        return None  # random ids, as upstream's noop compute


class FakeNetwork:
    async def plug_vip(self, spec: AmphoraSpec, compute: ComputeInfo) -> PlugInfo:
        return PlugInfo(vrrp_ip=spec.vip_address, vrrp_port_id=str(uuid.uuid4()),
                        ha_ip=spec.vip_address, ha_port_id=str(uuid.uuid4()),
                        vrrp_interface="eth1")

    async def unplug_vip(self, spec: AmphoraSpec, plug: PlugInfo | None) -> None:
        return None

    async def ensure_subnet(self, subnet: SubnetInfo) -> None:
        return None

    async def remove_subnet(self, subnet: SubnetInfo) -> None:
        return None

    async def announce_vip(self, spec: AmphoraSpec, compute: ComputeInfo) -> None:
        return None

    async def plug_subnets(self, compute: ComputeInfo, plugs: list[SubnetPlug]) -> None:
        return None


class FakeAmphora:
    def __init__(self) -> None:
        self.active: dict[str, str] = {}
        self.bundles: dict[str, dict[str, Any]] = {}
        self.fail_next: str | None = None  # tests: make the next apply fail with this reason

    async def apply(self, compute: ComputeInfo, bundle: dict[str, Any], digest: str) -> str:
        if self.fail_next is not None:
            reason, self.fail_next = self.fail_next, None
            raise DriverError(reason)
        self.bundles[compute.compute_id] = bundle
        self.active[compute.compute_id] = digest
        return digest

    async def forget(self, compute_id: str) -> None:
        self.active.pop(compute_id, None)
        self.bundles.pop(compute_id, None)
