"""``lbaas backend``: run a demo HTTP backend in its own namespace on a managed subnet.

Like a Nova server on a Neutron subnet: the address is reserved as a port in the database (so
the IPAM never hands it to an amphora), the namespace ``lbbe-<address hex>`` gets a veth into
the subnet's bridge, and ``lbaas.demo.backend_server`` runs inside it in the foreground, also
answering on a unix socket in the data directory for ``lbaas backend ctl``. On SIGINT/SIGTERM
the server, the namespace, the veth, the socket and the port are removed.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import signal
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, or_, select

from lbaas.drivers.base import DriverError, SubnetInfo
from lbaas.drivers.local import names
from lbaas.drivers.local import netlink as nl
from lbaas.drivers.local.network import LocalNetwork, with_prefix
from lbaas.main.backend_ctl import add_ctl_parser, control_socket
from lbaas.main.options import add_options, settings_from_args
from lbaas.settings import Settings
from lbaas.store import db, ipam, network_scope, seed
from lbaas.store import tables as t

DEVICE_OWNER = "compute:lbaas-demo-backend"


class BackendError(Exception):
    pass


def resolve_subnet(engine: Engine, name_or_id: str) -> SubnetInfo:
    with engine.connect() as conn:
        rows = list(conn.execute(select(t.subnet).where(
            or_(t.subnet.c.id == name_or_id, t.subnet.c.name == name_or_id))))
    if not rows:
        raise BackendError(f"no subnet named or with id {name_or_id!r}")
    if len(rows) > 1:
        raise BackendError(f"several subnets are named {name_or_id!r}; use its id")
    row = rows[0]
    with engine.connect() as conn:
        net = conn.execute(select(t.network).where(t.network.c.id == row.network_id)).first()
    return SubnetInfo(network_id=row.network_id, subnet_id=row.id, cidr=row.cidr,
                      gateway_ip=row.gateway_ip,
                      host_access=net is not None and network_scope.operator_network(net))


def check_address(subnet: SubnetInfo, address: str) -> str:
    ip = ipaddress.ip_address(address)
    net = ipaddress.ip_network(subnet.cidr)
    if ip not in net:
        raise BackendError(f"{address} is not in subnet {subnet.cidr}")
    if ip == net.network_address or (net.version == 4 and ip == net.broadcast_address):
        raise BackendError(f"{address} is not a host address of {subnet.cidr}")
    if subnet.gateway_ip and ip == ipaddress.ip_address(subnet.gateway_ip):
        raise BackendError(f"{address} is the subnet's gateway")
    return str(ip)


def port_id(subnet: SubnetInfo, address: str) -> str:
    return str(uuid.uuid5(seed.NAMESPACE, f"backend:{subnet.subnet_id}:{address}"))


def reserve_port(engine: Engine, subnet: SubnetInfo, address: str) -> str | None:
    """Reserve the address as a port; None when it is outside the allocation pools."""
    pid = port_id(subnet, address)
    with engine.begin() as conn:
        if ipam.get_port(conn, pid) is not None:
            return pid  # left by an earlier run that was killed
        row = ipam.get_subnet(conn, subnet.subnet_id)
        assert row is not None
        if not ipam.in_pools(row, address):
            return None
        try:
            ipam.create_port(conn, port_id=pid, subnet=row, address=address,
                             name=f"backend-{address}", device_owner=DEVICE_OWNER,
                             device_id=names.backend_netns(address), project_id=None,
                             now=datetime.now(UTC).replace(tzinfo=None, microsecond=0))
        except ipam.AddressInUse:
            raise BackendError(f"{address} is already allocated on this subnet") from None
    return pid


def release_port(engine: Engine, pid: str | None) -> None:
    if pid:
        with engine.begin() as conn:
            ipam.delete_port(conn, pid)


async def create_backend_netns(network: LocalNetwork, subnet: SubnetInfo, address: str) -> str:
    """Namespace ``lbbe-<hex>`` with ``eth0`` on the subnet's bridge; returns its name."""
    ns = names.backend_netns(address)
    if await nl.netns_exists(ns):
        if await nl.netns_pids(ns):
            raise BackendError(f"{address} is already used by the backend in namespace {ns}")
        await remove_backend_netns(address)  # stale: its server died without cleaning up
    await network.ensure_subnet(subnet)
    await nl.ip("netns", "add", ns)
    try:
        await nl.ip("link", "set", "dev", "lo", "up", ns=ns)
        await nl.ensure_veth(ns, names.BACKEND_LEG, names.backend_host_leg(address),
                             names.bridge_name(subnet.network_id))
        await nl.set_addresses(names.BACKEND_LEG, {with_prefix(address, subnet.cidr)}, ns=ns)
        if subnet.gateway_ip:
            await nl.ip(nl.family(subnet.cidr), "route", "replace", "default", "via",
                        subnet.gateway_ip, "dev", names.BACKEND_LEG, ns=ns)
    except BaseException:
        await remove_backend_netns(address)
        raise
    return ns


async def remove_backend_netns(address: str) -> None:
    ns = names.backend_netns(address)
    await nl.delete_link(names.backend_host_leg(address))
    if await nl.netns_exists(ns):
        await nl.ip("netns", "delete", ns)


async def run_backend(settings: Settings, subnet_ref: str, address: str, port: int,
                      udp_port: int | None = None) -> int:
    engine = db.make_engine(settings.effective_database_url)
    db.upgrade(engine)
    seed.seed_networks(engine, settings.networking.networks,
                       settings.networking.management_network)
    subnet = resolve_subnet(engine, subnet_ref)
    address = check_address(subnet, address)
    from lbaas.main.local_plane import local_network  # (same owner mark and host view as serve)

    network = local_network(settings)
    # Until the server runs, a signal only marks the stop so the cleanup below still happens.
    stopping: list[int] = []
    child: Any = None
    udp_child: Any = None  # lbaas.demo.udp_echo when --udp-port is given
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _on_signals, stopping, lambda: (child, udp_child), sig)
    ns = names.backend_netns(address)
    if await nl.netns_exists(ns) and await nl.netns_pids(ns):
        raise BackendError(f"{address} is already used by the backend in namespace {ns}")
    reserved = reserve_port(engine, subnet, address)
    ctl = control_socket(settings.data_dir, address)
    ctl.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    rc = 0
    try:
        ns = await create_backend_netns(network, subnet, address)
        try:
            if stopping:
                return 0
            child = await asyncio.create_subprocess_exec(
                nl.IP, "netns", "exec", ns, sys.executable, "-m", "lbaas.demo.backend_server",
                "--address", address, "--port", str(port), "--control-socket", str(ctl))
            if udp_port is not None:
                udp_child = await asyncio.create_subprocess_exec(
                    nl.IP, "netns", "exec", ns, sys.executable, "-m", "lbaas.demo.udp_echo",
                    "--address", address, "--port", str(udp_port))
                print(f"lbaas backend: UDP {address}:{udp_port}", flush=True)
            if stopping:
                child.send_signal(stopping[0])
            print(f"lbaas backend: {address}:{port} on subnet {subnet.cidr} (namespace {ns})",
                  flush=True)
            rc = await child.wait()
        finally:
            if udp_child is not None and udp_child.returncode is None:
                udp_child.terminate()
                await udp_child.wait()
            ctl.unlink(missing_ok=True)
            await remove_backend_netns(address)
    finally:
        release_port(engine, reserved)
    return 0 if rc in (0, -signal.SIGTERM, -signal.SIGINT) else rc


def _on_signals(stopping: list[int], get_children: Any, sig: int) -> None:
    stopping.append(sig)
    for child in get_children():
        if child is not None and child.returncode is None:
            child.send_signal(sig)


def cmd_backend(args: argparse.Namespace) -> int:
    if not (args.subnet and args.address):
        args.parser.error("the following arguments are required: --subnet, --address")
    settings = settings_from_args(args)
    try:
        return asyncio.run(run_backend(settings, args.subnet, args.address, args.port,
                                       args.udp_port))
    except (BackendError, DriverError, ValueError) as exc:
        print(f"lbaas backend: {exc}", file=sys.stderr)
        return 2


def add_backend_parser(subparsers: Any, common: tuple[str, ...]) -> argparse.ArgumentParser:
    """Add ``lbaas backend`` (and ``lbaas backend ctl``) to the main CLI's subparsers."""
    text = ("run a demo HTTP backend (an echo server, whoami-style) in its own namespace on a "
            "managed subnet, in the foreground (root)")
    p = subparsers.add_parser(
        "backend", help=text,
        usage="%(prog)s --subnet SUBNET --address ADDRESS [options]\n"
              "       %(prog)s ctl --address ADDRESS {down,status,up}",
        description=text[:1].upper() + text[1:] + ". It answers every path with its address, "
        "the client's, and the request line and headers it received; GET /healthcheck answers "
        "200, or 503 after 'lbaas backend ctl --address ADDRESS down'.")
    add_options(p, *common, "database_url")
    p.add_argument("--subnet", help="subnet name or id, e.g. private-subnet (required)")
    p.add_argument("--address", help="the backend's address on that subnet (required)")
    p.add_argument("--port", type=int, default=80, help="HTTP port (default: %(default)s)")
    p.add_argument("--udp-port", type=int, metavar="PORT",
                   help="also run a UDP echo backend on this port (default: none)")
    p.set_defaults(func=cmd_backend, parser=p)
    add_ctl_parser(p.add_subparsers(dest="backend_command", title="subcommand"), common)
    return p


def main(argv: list[str] | None = None) -> int:
    from lbaas.main.cli import main as cli_main

    return cli_main(["backend", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
