"""What real drivers need beyond the fakes: amphora ports, member-subnet legs and certificates.

Octavia's controller creates a management port, a VRRP port on the VIP network and a port on
every member subnet for each amphora, and hands the amphora a server certificate signed by its
own CA. We do the same against our IPAM. Port ids are derived from (amphora, purpose) with
uuid5, so a reconcile that was interrupted finds the ports it made instead of leaking new ones.
"""

from __future__ import annotations

import ipaddress
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Row, select

from lbaas.certs import CertificateAuthority
from lbaas.domain.spec import LoadBalancerSpec
from lbaas.drivers.base import AgentCredentials, SubnetInfo, SubnetPlug
from lbaas.store import ipam, network_scope
from lbaas.store import tables as t
from lbaas.wire.envelope import amphora_key

PORT_OWNER = "compute:amphora"
SERVER_CERT_DAYS = 365


def port_id_for(amphora_id: str, purpose: str) -> str:
    return str(uuid.uuid5(uuid.UUID(amphora_id), purpose))


def subnet_info(conn: Connection, subnet: Row[Any], management: tuple[str, ...] = ()) \
        -> SubnetInfo:
    """The driver's view of a subnet: whether its network is the operator's (host access) and
    whether it is the management network (``management``: its ids)."""
    net = conn.execute(select(t.network).where(t.network.c.id == subnet.network_id)).first()
    return SubnetInfo(network_id=subnet.network_id, subnet_id=subnet.id, cidr=subnet.cidr,
                      gateway_ip=subnet.gateway_ip,
                      host_access=net is not None and network_scope.operator_network(net),
                      management=subnet.network_id in management)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Provisioner:
    """Allocates an amphora's addresses and credentials (idempotent per amphora)."""

    def __init__(self, engine: Engine, pki_dir: Path, management_network: str,
                 heartbeat_key: str = "", health_port: int = 0, health_ip: str = "",
                 heartbeat_interval: float = 1.0, health_targets: tuple[str, ...] = ()) -> None:
        """``health_port`` 0: no heartbeats; ``health_ip`` "": the management gateway;
        ``health_targets`` ("HOST:PORT", Octavia's controller_ip_port_list): every health
        manager, each sent every heartbeat (empty: ``health_ip``:``health_port`` alone)."""
        self.engine = engine
        self.heartbeat_key = heartbeat_key
        self.health_port = health_port
        self.health_ip = health_ip
        self.heartbeat_interval = heartbeat_interval
        for target in health_targets:
            host, sep, port = target.rpartition(":")
            ipaddress.ip_address(host.strip("[]"))  # ValueError names the bad entry
            if not sep or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"controller_ip_port_list: {target!r} is not HOST:PORT")
        self.health_targets = health_targets
        self.ca = CertificateAuthority.load_or_create(pki_dir)
        self.management_network = management_network
        # the controller's client certificate for the agents (renewed before it expires)
        self.client_files = self.ca.ensure_client_files("controller", pki_dir / "client")

    # subnets ------------------------------------------------------------------------------------
    def all_subnets(self) -> list[SubnetInfo]:
        with self.engine.connect() as conn:
            return [subnet_info(conn, s, self._management_ids())
                    for s in conn.execute(select(t.subnet).where(t.subnet.c.ip_version == 4))]

    def _management_ids(self) -> tuple[str, ...]:
        return network_scope.management_network_ids(self.management_network)

    def _mgmt_subnet(self, conn: Connection) -> Row[Any]:
        net = conn.execute(select(t.network).where(
            (t.network.c.name == self.management_network)
            | (t.network.c.id == self.management_network))).first()
        if net is None:
            raise LookupError(f"management network {self.management_network!r} not found")
        subnets = ipam.subnets_of(conn, net.id)
        if not subnets:
            raise LookupError(f"management network {self.management_network!r} has no subnet")
        return subnets[0]

    def _port(self, conn: Connection, amphora_id: str, purpose: str, subnet: Row[Any],
              project_id: str | None) -> SubnetPlug:
        port_id = port_id_for(amphora_id, purpose)
        port = ipam.get_port(conn, port_id)
        if port is None:
            port = ipam.create_port(conn, port_id=port_id, subnet=subnet, address=None,
                                    name=f"octavia-{purpose}-{amphora_id}",
                                    device_owner=PORT_OWNER, device_id=amphora_id,
                                    project_id=project_id, now=_now())
        return SubnetPlug(subnet=subnet_info(conn, subnet, self._management_ids()),
                          address=port.fixed_ips[0]["ip_address"])

    # amphora ports ------------------------------------------------------------------------------
    def base_ports(self, lb: Any, amphora_id: str) -> tuple[SubnetPlug, SubnetPlug, str]:
        """(management leg, VIP-subnet leg, VRRP port id) for a new amphora."""
        with self.engine.begin() as conn:
            mgmt = self._port(conn, amphora_id, "mgmt", self._mgmt_subnet(conn), None)
            vip_subnet = ipam.get_subnet(conn, lb.vip_subnet_id)
            if vip_subnet is None:
                raise LookupError(f"VIP subnet {lb.vip_subnet_id} not found")
            vip = self._port(conn, amphora_id, "vrrp", vip_subnet, lb.project_id)
        return mgmt, vip, port_id_for(amphora_id, "vrrp")

    def member_plugs(self, lb: Any, amphora_id: str, aggregate: LoadBalancerSpec) \
            -> list[SubnetPlug]:
        """A leg on every subnet the load balancer's members live on (VIP/mgmt excluded)."""
        with self.engine.begin() as conn:
            subnets = {s.id: s for s in conn.execute(select(t.subnet)
                                                     .where(t.subnet.c.ip_version == 4))}
            skip = {lb.vip_subnet_id, self._mgmt_subnet(conn).id}
            # a member without subnet_id is "routed": only to subnets its project may use
            management = network_scope.management_network_ids(self.management_network)
            routable = list(conn.execute(select(t.subnet).where(
                t.subnet.c.ip_version == 4,
                network_scope.subnet_visible(lb.project_id, management))))
            wanted: dict[str, Row[Any]] = {}
            for pool in aggregate.pools:
                for member in pool.members:
                    subnet = subnets.get(member.subnet_id or "") \
                        or _containing(routable, member.address)
                    if subnet is not None and subnet.id not in skip:
                        wanted[subnet.id] = subnet
            plugs = [self._port(conn, amphora_id, f"member-{sid}", subnet, lb.project_id)
                     for sid, subnet in sorted(wanted.items())]
            keep = {port_id_for(amphora_id, p) for p in
                    ("mgmt", "vrrp", *(f"member-{sid}" for sid in wanted))}
            # fetched in full first: deleting while a SELECT is still open makes SQLite (WAL)
            # answer "database is locked" at once if another writer committed meanwhile
            for port in list(conn.execute(select(t.port.c.id)
                                          .where(t.port.c.device_id == amphora_id))):
                if port.id not in keep:
                    ipam.delete_port(conn, port.id)
        return plugs

    def release_ports(self, amphora_id: str) -> None:
        with self.engine.begin() as conn:
            for port in list(conn.execute(select(t.port.c.id)
                                          .where(t.port.c.device_id == amphora_id))):
                ipam.delete_port(conn, port.id)

    # certificates -------------------------------------------------------------------------------
    def health_address(self) -> str | None:
        """Where the health manager listens: the configured address or the mgmt gateway."""
        if self.health_ip:
            return self.health_ip
        with self.engine.connect() as conn:
            return self._mgmt_subnet(conn).gateway_ip

    def credentials(self, amphora_id: str, mgmt_ip: str) -> AgentCredentials:
        cert, key = self.ca.issue_server(amphora_id, mgmt_ip, SERVER_CERT_DAYS)
        targets: tuple[str, ...] = ()
        address = None
        if self.health_port and self.heartbeat_key:
            targets = self.health_targets
            address = None if targets else self.health_address()
        if address:
            host = f"[{address}]" if ":" in address else address
            targets = (f"{host}:{self.health_port}",)
        # the amphora's own heartbeat key: it cannot sign for any other amphora
        hb_key = amphora_key(self.heartbeat_key, amphora_id) if self.heartbeat_key else ""
        return AgentCredentials(ca_pem=self.ca.ca_pem, cert_pem=cert, key_pem=key,
                                heartbeat_key=hb_key, health_targets=targets,
                                heartbeat_interval=self.heartbeat_interval)


def _containing(subnets: Any, address: str) -> Row[Any] | None:
    ip = ipaddress.ip_address(address)
    for subnet in subnets:
        if ip in ipaddress.ip_network(subnet.cidr):
            return subnet
    return None
