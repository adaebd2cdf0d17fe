"""Assemble the local data plane: namespaces, bridges, agents over two-way TLS, HAProxy render.

Imported only when ``controller.drivers`` resolves to ``local``, so the fake-driver service
(API tests, benchmarks of the API alone) never touches ``ip`` or HAProxy.
"""

from __future__ import annotations

import asyncio
import grp
import ipaddress
import pwd
from typing import Any

from sqlalchemy import Engine

from lbaas.controller.certificates import CertificateLoader
from lbaas.controller.fleet.drivers import FleetCompute, FleetNetwork
from lbaas.controller.fleet.hosts import Fleet
from lbaas.controller.floating_ips import FloatingIPSync
from lbaas.controller.provisioning import Provisioner
from lbaas.controller.reconciler import Drivers
from lbaas.drivers.agent_client import AgentAmphoraDriver
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
    if fleet.hosts:  # the managed networks are VXLAN segments shared with the amphora hosts
        return OverlayNetwork(data_dir / "network", fleet.underlay_ip, fleet.underlay_dev,
                              fleet.underlay_mtu, HostUse(extra=tuple(net.host_used_addresses)),
                              host_access=net.host_access, owner=data_dir)
    return LocalNetwork(data_dir / "network", HostUse(extra=tuple(net.host_used_addresses)),
                        host_access=net.host_access, owner=data_dir)


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
                      settings.fleet.poll_interval, settings.fleet.host_timeout)
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

    def render(aggregate: dict[str, Any], amphora: AmphoraView | None = None) \
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
