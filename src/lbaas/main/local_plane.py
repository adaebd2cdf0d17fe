"""Assemble the local data plane: namespaces, bridges, agents over two-way TLS, HAProxy render.

Imported only when ``controller.drivers`` resolves to ``local``, so the fake-driver service
(API tests, benchmarks of the API alone) never touches ``ip`` or HAProxy.
"""

from __future__ import annotations

import asyncio
import grp
import ipaddress
import os
import pwd
import uuid
from typing import Any

from sqlalchemy import Engine

from lbaas.certs.ca import CertificateAuthority
from lbaas.controller.certificates import CertificateLoader
from lbaas.controller.fleet.drivers import FleetCompute, FleetNetwork
from lbaas.controller.fleet.hosts import Fleet
from lbaas.controller.fleet.registration import RegistrationListener
from lbaas.controller.floating_ips import FloatingIPSync
from lbaas.controller.provisioning import Provisioner
from lbaas.controller.reconciler import Drivers
from lbaas.domain.spec import LoadBalancerSpec
from lbaas.drivers.agent_client import AgentAmphoraDriver
from lbaas.drivers.base import DriverError
from lbaas.drivers.fleet import wire
from lbaas.drivers.fleet.client import HostClient
from lbaas.drivers.local import names, ownership
from lbaas.drivers.local import netlink as nl
from lbaas.drivers.local.compute import LocalCompute
from lbaas.drivers.local.host_use import HostUse
from lbaas.drivers.local.network import UNREACHABLE_METRIC, LocalNetwork
from lbaas.drivers.local.overlay import OverlayNetwork
from lbaas.drivers.local.router import LocalRouters
from lbaas.main.shared_files import shared_files_lock
from lbaas.render import AmphoraView, RenderOptions, render_bundle
from lbaas.settings import Settings, heartbeat_key
from lbaas.wire.tls import server_ssl_context


def render_options(settings: Settings) -> RenderOptions:
    h = settings.haproxy
    return RenderOptions(timeout_client_data=h.timeout_client_data,
                         timeout_member_connect=h.timeout_member_connect,
                         timeout_member_data=h.timeout_member_data,
                         timeout_tcp_inspect=h.timeout_tcp_inspect,
                         default_connection_limit=h.default_connection_limit,
                         user=h.user, group=_group(h.user, h.group), chroot=h.chroot)


def _group(user: str, group: str) -> str:
    """``haproxy.group``, or the user's own group when it is "" (HAProxy's ``user`` alone would
    keep group 0). Both must exist: the amphorae run on this machine, so its user database is
    theirs, and a wrong name is a start-up error rather than every config failing ``haproxy -c``."""
    if not user:
        return group
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise ValueError(f"haproxy.user: no user {user!r} on this machine") from None
    try:
        return grp.getgrnam(group).gr_name if group else grp.getgrgid(entry.pw_gid).gr_name
    except KeyError:
        raise ValueError(f"haproxy.group: no group {group!r} on this machine") from None


def provider_mapping(items: dict[str, str]) -> dict[str, str]:
    """Network (a settings network's name, or an id) -> interface, keyed by network id."""
    from lbaas.store import seed

    mapping = {}
    for network, dev in items.items():
        try:
            key = str(uuid.UUID(network))
        except ValueError:
            key = seed.network_id(network)
        if not dev or "/" in dev or len(dev) > 15:
            raise ValueError(f"provider interface for {network!r}: {dev!r} is not an "
                             f"interface name")
        mapping[key] = dev
    return mapping


def local_network(settings: Settings) -> LocalNetwork:
    """The network driver every command of one data directory uses (same owner mark, same
    view of what the host uses)."""
    net = settings.networking
    for item in net.host_used_addresses:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(f"networking.host_used_addresses: {item!r} is not an address or "
                             f"CIDR") from None
    data_dir = settings.data_dir.resolve()
    fleet = settings.fleet
    network: LocalNetwork
    if fleet.enabled:  # the managed networks are VXLAN segments shared with the amphora hosts
        network = OverlayNetwork(
            data_dir / "network", fleet.underlay_ip, fleet.underlay_dev, fleet.underlay_mtu,
            HostUse(extra=tuple(net.host_used_addresses)), host_access=net.host_access,
            owner=data_dir, provider=provider_mapping(fleet.provider_interfaces),
            vxlan_beside_provider=True)
    else:
        network = LocalNetwork(data_dir / "network",
                               HostUse(extra=tuple(net.host_used_addresses)),
                               host_access=net.host_access, owner=data_dir)
    network.guard.heartbeat_ports = heartbeat_ports(settings)
    return network


def heartbeat_ports(settings: Settings) -> tuple[int, ...]:
    """The UDP ports amphorae send heartbeats to: the only new traffic the host guard lets
    through from the management network (every process of a deployment computes the same)."""
    health = settings.health
    if not health.enabled:
        return ()
    ports = {health.bind_port}
    for target in health.controller_ip_port_list:
        ports.add(int(target.rpartition(":")[2]))
    return tuple(sorted(ports))


def registration_listener(settings: Settings, engine: Engine,
                          provisioner: Provisioner) -> RegistrationListener | None:
    """``[fleet] registration_listen``: its server certificate (common name ``controller``, SAN
    the listen address, or the underlay address when it listens on all), written under
    ``pki/registration`` with this process's id (workers of a machine start at once)."""
    listen = settings.fleet.registration_listen
    if not listen:
        return None
    host, _, port = listen.rpartition(":")
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
        port_number = int(port)
    except ValueError:
        raise ValueError(f"fleet.registration_listen: {listen!r} is not ADDRESS:PORT") from None
    san = settings.fleet.underlay_ip if ip.is_unspecified else str(ip)
    if not san:
        raise ValueError("fleet.registration_listen on all addresses needs fleet.underlay_ip "
                         "(the address host-agents register with)")
    cert, key = provisioner.ca.issue_server(wire.REGISTRATION_CN, san)
    folder = settings.pki_dir.resolve() / "registration"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert_file, key_file = folder / f"cert-{os.getpid()}.pem", folder / f"key-{os.getpid()}.pem"
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    cert_file.write_text(cert)
    try:
        ctx = server_ssl_context(str(provisioner.client_files.ca_file), str(cert_file),
                                 str(key_file))
    finally:  # loaded: the key need not stay on disk
        key_file.unlink(missing_ok=True)
        cert_file.unlink(missing_ok=True)
    return RegistrationListener(engine, ctx, (str(ip), port_number))


def build_local_drivers(settings: Settings, engine: Engine) -> Drivers:
    data_dir = settings.data_dir.resolve()
    health = settings.health
    # several processes of a deployment may start at once: one makes the CA, the others read it
    with shared_files_lock(settings):
        provisioner = Provisioner(
            engine, settings.pki_dir.resolve(), settings.networking.management_network,
            heartbeat_key=heartbeat_key(settings) if health.enabled else "",
            health_port=health.bind_port if health.enabled else 0, health_ip=health.bind_ip,
            heartbeat_interval=health.heartbeat_interval,
            health_targets=health.controller_ip_port_list)
    network = local_network(settings)
    for subnet in provisioner.all_subnets():  # before anything is plugged: no silent sharing
        network.check_owner(subnet)
    files = provisioner.client_files
    fleet: Fleet | None = None
    if isinstance(network, OverlayNetwork):
        client = HostClient(str(files.ca_file), str(files.cert_file), str(files.key_file))
        fleet = Fleet(engine, client, settings.fleet.hosts, network,
                      settings.fleet.poll_interval, settings.fleet.host_timeout,
                      registration_listener(settings, engine, provisioner))
        compute: Any = FleetCompute(fleet)
        driver_net: Any = FleetNetwork(fleet, network)
    else:
        # the agent's confinement hides the data directory and, if apart, the shared one
        compute = LocalCompute(data_dir / "amphorae", network,
                               hide=(settings.shared_path.resolve(),))
        driver_net = network
    amphora = AgentAmphoraDriver(ca_file=str(files.ca_file), cert_file=str(files.cert_file),
                                 key_file=str(files.key_file), port=settings.controller.agent_port)
    options = render_options(settings)
    certificates = CertificateLoader(settings, engine)

    def render(aggregate: LoadBalancerSpec, amphora: AmphoraView | None = None) \
            -> tuple[dict[str, Any], str]:
        bundle = render_bundle(aggregate, options, amphora,
                               certificates=certificates.load(aggregate))
        return {"files": bundle.files}, bundle.digest

    return Drivers(compute=compute, network=driver_net, amphora=amphora,
                   provisioner=provisioner, render=render, fleet=fleet)


def floating_ip_sync(settings: Settings, engine: Engine) -> FloatingIPSync:
    data_dir = settings.data_dir.resolve()
    routers = LocalRouters(data_dir / "routers", local_network(settings))
    return FloatingIPSync(engine, routers, settings.controller.resync_interval)


def start_floating_ip_sync(settings: Settings, engine: Engine, extras: dict[str, Any]) \
        -> asyncio.Task[None]:
    """Run the floating IP routers' sync; the API wakes it through ``extras``."""
    sync = floating_ip_sync(settings, engine)
    extras["floating_ips_changed"] = sync.wake
    return asyncio.create_task(sync.run())


async def teardown_local_plane(settings: Settings) -> list[str]:
    """Remove every amphora namespace, bridge and route this data directory made, and nothing
    another instance owns (bridges carry their owner's mark).

    For ``lbaas teardown`` and test fixtures; the database keeps its rows, so a later
    ``lbaas serve`` rebuilds the amphorae (their load balancers resync)."""
    data_dir = settings.data_dir.resolve()
    network = local_network(settings)
    compute = LocalCompute(data_dir / "amphorae", network)
    removed: list[str] = []
    for ns in await compute.list_amphorae():
        await compute.delete_amphora(ns)
        removed.append(ns)
    removed += await LocalRouters(data_dir / "routers", network).teardown()
    for subnet in network.ensured_subnets():
        await network.remove_subnet(subnet)
        removed.append(subnet.cidr)
    # bridges marked as ours whose state files are gone (a data directory emptied by hand)
    for bridge in ownership.marked_bridges(network.mark, names.BRIDGE_PREFIX):
        for cidr in {str(ipaddress.ip_interface(a).network) for a in await nl.addresses(bridge)}:
            await nl.ip(nl.family(cidr), "route", "del", "unreachable", cidr, "metric",
                        UNREACHABLE_METRIC, check=False)
        await nl.delete_link(bridge)
        removed.append(bridge)
    if await network.guard.remove():
        removed.append(f"nftables table inet {network.guard.table}")
    if isinstance(network, OverlayNetwork):
        removed += await network.teardown_segments()
    return removed


async def teardown_hosts(settings: Settings, engine: Engine) -> tuple[list[str], list[str]]:
    """Ask every known amphora host (``[fleet] hosts`` and the registered ones) that answers to
    delete the amphorae it holds for this controller (the host-agent lists only its own).
    (removed compute ids, hosts or amphorae that did not answer)."""
    from sqlalchemy import select

    from lbaas.store import tables as t

    endpoints = dict.fromkeys(settings.fleet.hosts)
    with engine.connect() as conn:
        for row in conn.execute(select(t.fleet_host).where(t.fleet_host.c.port.is_not(None))):
            endpoints.setdefault(f"{row.address}:{row.port}")
    if not endpoints:
        return [], []
    with shared_files_lock(settings):
        files = CertificateAuthority.load_or_create(settings.pki_dir).ensure_client_files(
            "controller", settings.pki_dir / "client")
    client = HostClient(str(files.ca_file), str(files.cert_file), str(files.key_file))
    removed: list[str] = []
    silent: list[str] = []
    try:
        for endpoint in endpoints:
            try:
                host = await client.call(endpoint, "GET", wire.HOST_PATH, timeout=3.0)
            except DriverError:
                silent.append(endpoint)
                continue
            for amp in host.get("amphorae", []):
                cid = str(amp.get("compute_id", ""))
                try:
                    await client.call(endpoint, "DELETE",
                                      f"{wire.AMPHORAE_PATH}/{wire.split_compute_id(cid)[1]}")
                    removed.append(cid)
                except DriverError as exc:
                    silent.append(f"{endpoint} ({cid}: {exc})")
    finally:
        await client.aclose()
    return removed, silent
