"""Driver interfaces the controller talks to: compute, network and amphora.

Each is a ``typing.Protocol`` with a fake beside it (``fake.py``) that behaves like upstream
Octavia's noop drivers, and a real local implementation for amphorae in network namespaces.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class SubnetInfo:
    """A managed subnet as the network driver needs it (a bridge per network)."""

    network_id: str
    subnet_id: str
    cidr: str
    gateway_ip: str | None
    # An operator network (seeded or external) may be attached to the host (its
    # gateway on the bridge, a route); a tenant network never is, as in Neutron: its bridge
    # stays isolated, so a tenant range can neither capture the host's routes nor clash with
    # another project's identical range.
    host_access: bool = False
    # The management network: the only bridge on which amphorae open anything to the host,
    # and only heartbeats to the health manager's ports (drivers/local/host_guard.py).
    management: bool = False


@dataclass(frozen=True)
class SubnetPlug:
    """One leg of an amphora: its address on a subnet."""

    subnet: SubnetInfo
    address: str


@dataclass(frozen=True)
class AgentCredentials:
    """What the amphora's agent needs to serve two-way TLS (made by the controller's CA)."""

    ca_pem: str
    cert_pem: str
    key_pem: str = field(repr=False)
    # signed heartbeats to the health manager(s): HMAC key and "HOST:PORT" destinations
    heartbeat_key: str = field(default="", repr=False)
    health_targets: tuple[str, ...] = ()
    heartbeat_interval: float = 1.0


@dataclass(frozen=True)
class AmphoraSpec:
    """What the controller wants an amphora to be."""

    amphora_id: str
    load_balancer_id: str
    role: str
    vrrp_priority: int | None
    vip_address: str
    vip_subnet_id: str
    vip_network_id: str
    # Filled by the controller for real drivers; the fakes ignore them.
    mgmt: SubnetPlug | None = None
    vip: SubnetPlug | None = None  # the VIP subnet and this amphora's own (vrrp) address
    credentials: AgentCredentials | None = None
    # the availability zone's compute_zone (placement among hosts; None: any)
    zone: str | None = None


@dataclass(frozen=True)
class ComputeInfo:
    compute_id: str
    lb_network_ip: str
    image_id: str | None = None
    compute_flavor: str | None = None
    cached_zone: str | None = None


@dataclass(frozen=True)
class PlugInfo:
    vrrp_ip: str
    vrrp_port_id: str
    ha_ip: str
    ha_port_id: str
    vrrp_interface: str


class ComputeDriver(Protocol):
    """Create/delete amphorae. ``create_amphora`` must be idempotent for one amphora_id."""

    async def create_amphora(self, spec: AmphoraSpec) -> ComputeInfo: ...

    async def delete_amphora(self, compute_id: str) -> None: ...

    def compute_id_for(self, amphora_id: str) -> str | None:
        """The compute id an amphora would have, when the driver derives it (else None)."""
        ...


class NetworkDriver(Protocol):
    async def plug_vip(self, spec: AmphoraSpec, compute: ComputeInfo) -> PlugInfo: ...

    async def unplug_vip(self, spec: AmphoraSpec, plug: PlugInfo | None) -> None: ...

    async def ensure_subnet(self, subnet: SubnetInfo) -> None:
        """Make a managed subnet reachable from the host (idempotent)."""
        ...

    async def remove_subnet(self, subnet: SubnetInfo) -> None: ...

    async def plug_subnets(self, compute: ComputeInfo, plugs: list[SubnetPlug]) -> None:
        """Make the amphora's member-subnet legs exactly ``plugs`` (idempotent)."""
        ...

    async def announce_vip(self, spec: AmphoraSpec, compute: ComputeInfo) -> None:
        """Tell the VIP subnet a new amphora now answers for the VIP (gratuitous ARP)."""
        ...


class AmphoraDriver(Protocol):
    async def apply(self, compute: ComputeInfo, bundle: dict[str, Any], digest: str) -> str:
        """Push a whole configuration bundle; return the digest now active."""
        ...

    async def forget(self, compute_id: str) -> None: ...


class DriverError(Exception):
    """A driver could not do what was asked; the reconciler marks the change ERROR."""


class BundleRefused(DriverError):
    """The amphora refused the configuration itself (its checks failed): sending the same
    content again cannot succeed, so the reconciler contains the object to blame."""
