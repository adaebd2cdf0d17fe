"""``lbaas host-agent`` (runs on an amphora host) and ``lbaas host list|drain|enable``.

The host-agent needs no settings file and no database: its identity, where it listens, its
underlay interface and its TLS files (a server certificate from the internal CA for its
underlay address, the CA to check the controller's client certificate) are options. With
``--controller`` it registers itself with the controller (the same certificate, as a client).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from lbaas.drivers.fleet.wire import HOST_AGENT_PORT, REGISTRATION_PORT

log = logging.getLogger("lbaas.hostagent")


def cmd_host_agent(args: argparse.Namespace) -> int:
    from lbaas.drivers.agent_client import client_ssl_context
    from lbaas.hostagent.register import announce_forever
    from lbaas.hostagent.server import serve
    from lbaas.hostagent.service import HostAgent, HostIdentity
    from lbaas.wire.tls import server_ssl_context

    if args.private_sysfs:  # before anything starts a thread
        from lbaas.drivers.local import netlink
        from lbaas.hostagent.mounts import private_sysfs

        netlink.NETNS_MOUNT = private_sysfs()
    from lbaas.main.local_plane import provider_mapping

    address, _, port = args.listen.rpartition(":")
    mapped = dict(item.partition("=")[::2] for item in args.provider_interface)
    agent = HostAgent(HostIdentity(name=args.name, zone=args.zone, capacity=args.capacity,
                                   address=address), args.base_dir, args.underlay_dev,
                      args.underlay_mtu, provider=provider_mapping(mapped))
    ctx = server_ssl_context(args.ca_file, args.cert_file, args.key_file)

    api_port = int(port or HOST_AGENT_PORT)
    client_ctx = client_ssl_context(args.ca_file, args.cert_file, args.key_file)

    async def main() -> None:
        from lbaas.drivers.base import DriverError

        try:
            await agent.check_provider()
        except DriverError as exc:
            raise SystemExit(f"lbaas host-agent: {exc}") from None
        try:
            await agent.recover_flood()
        except DriverError as exc:  # the controller's next push writes them
            log.warning("flood lists and underlay guard not recovered: %s", exc)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        announcing = [asyncio.create_task(announce_forever(
            controller, agent.identity, api_port, client_ctx, args.register_interval))
            for controller in args.controller]
        try:
            await serve(agent, (address, api_port), ctx, stop, demo_backends=args.demo_backends)
        finally:
            for task in announcing:
                task.cancel()
            await asyncio.gather(*announcing, return_exceptions=True)

    asyncio.run(main())
    return 0


def cmd_host(args: argparse.Namespace) -> int:
    from sqlalchemy import select, update

    from lbaas.drivers.fleet.placement import DRAINING, ENABLED
    from lbaas.main.database import open_database
    from lbaas.main.options import settings_from_args
    from lbaas.store import tables as t

    engine = open_database(settings_from_args(args))
    try:
        if args.host_command == "list":
            with engine.connect() as conn:
                rows = list(conn.execute(select(t.fleet_host).order_by(t.fleet_host.c.name)))
            print(f"{'name':<12} {'address':<16} {'zone':<10} {'state':<9} {'amphorae':>8} "
                  f"{'capacity':>8}  last_seen")
            for r in rows:
                print(f"{r.name:<12} {r.address:<16} {r.zone:<10} {r.state:<9} "
                      f"{r.amphorae:>8} {r.capacity:>8}  {r.last_seen}")
            return 0
        if args.host_command == "remove":
            return _remove_host(engine, args.name)
        state = DRAINING if args.host_command == "drain" else ENABLED
        with engine.begin() as conn:
            changed = conn.execute(update(t.fleet_host).where(
                t.fleet_host.c.name == args.name).values(state=state)).rowcount
        if not changed:
            print(f"lbaas host: no host named {args.name!r} (see lbaas host list)",
                  file=sys.stderr)
            return 1
        print(f"host {args.name}: {state}")
        return 0
    finally:
        engine.dispose()


def _remove_host(engine: Any, name: str) -> int:
    """Forget a host that holds no amphora (no live row places one there, and it reported
    none). A host-agent still running with ``--controller`` registers again."""
    from sqlalchemy import delete, func, select

    from lbaas.domain import constants as c
    from lbaas.store import tables as t

    with engine.begin() as conn:
        row = conn.execute(select(t.fleet_host).where(t.fleet_host.c.name == name)).first()
        if row is None:
            print(f"lbaas host: no host named {name!r} (see lbaas host list)", file=sys.stderr)
            return 1
        placed = conn.execute(select(func.count()).select_from(t.amphora).where(
            t.amphora.c.status != c.DELETED,
            t.amphora.c.compute_id.like(f"{name}/%"))).scalar() or 0
        if placed or row.amphorae:
            print(f"lbaas host: {name} holds {max(placed, row.amphorae)} amphorae: drain it "
                  f"first (lbaas host drain {name})", file=sys.stderr)
            return 1
        conn.execute(delete(t.fleet_host).where(t.fleet_host.c.name == name))
    print(f"host {name}: removed (stop its host-agent, or it registers again)")
    return 0


def add_fleet_parsers(sub: Any, command: Any) -> None:
    """``command``: cli._command (name, func, help, *shared options)."""
    p = command(sub, "host-agent", cmd_host_agent, "run the host-agent of an amphora host: "
                "it builds amphorae and their overlay legs for the controller (mTLS)")
    p.add_argument("--name", required=True, help="this host's name, unique in the fleet (required)")
    p.add_argument("--zone", default="nova", help="its availability zone (compute_zone; "
                   "default: %(default)s)")
    p.add_argument("--capacity", type=int, default=50,
                   help="how many amphorae it takes (default: %(default)s)")
    p.add_argument("--listen", required=True, metavar="ADDRESS:PORT",
                   help=f"its underlay address (also the VXLAN source) and API port "
                   f"(required; port default {HOST_AGENT_PORT})")
    p.add_argument("--underlay-dev", required=True, metavar="DEV",
                   help="the interface carrying the underlay address (required)")
    p.add_argument("--underlay-mtu", type=int, default=1500,
                   help="the underlay's MTU; overlay legs get 50 less (default: %(default)s)")
    p.add_argument("--provider-interface", action="append", default=[],
                   metavar="NETWORK=DEV", help="a flat provider network: plug interface DEV "
                   "into NETWORK's bridge (a name from the controller's settings, or an id) "
                   "instead of a VXLAN segment; DEV must hold no address or route "
                   "(repeatable; default: none, every network is VXLAN)")
    p.add_argument("--base-dir", type=Path, required=True, metavar="DIR",
                   help="where its amphorae and overlay state live (required; keep it short: "
                   "HAProxy's socket paths)")
    p.add_argument("--ca-file", required=True,
                   help="the internal CA, which checks the controller (required)")
    p.add_argument("--cert-file", required=True,
                   help="its server certificate, SAN: the underlay address (required)")
    p.add_argument("--key-file", required=True, help="its private key (required)")
    p.add_argument("--controller", action="append", default=[], metavar="ADDRESS:PORT",
                   help="a controller's registration listener ([fleet] registration_listen; "
                   f"port default {REGISTRATION_PORT}) to announce this host to, at start and "
                   "every --register-interval; repeatable (default: none, the controller "
                   "must list it in [fleet] hosts)")
    p.add_argument("--register-interval", type=float, default=30.0, metavar="SECONDS",
                   help="how often it announces itself again; also the longest wait between "
                   "retries while no controller answers (default: %(default)s)")
    p.add_argument("--private-sysfs", action="store_true",
                   help="started with nsenter --net in a namespace of its own (lbaas lab): make "
                   "a private /sys, keep pinning namespaces in the machine's mount namespace "
                   "(default: off)")
    p.add_argument("--demo-backends", action="store_true",
                   help="also serve the lab's demo-member calls (lbaas lab backend; "
                   "default: off, a production host answers only amphora calls)")

    hp = sub.add_parser("host", help="amphora hosts: list, drain, enable, remove",
                        description="Amphora hosts known to the controller.")
    hsub = hp.add_subparsers(dest="host_command", required=True, metavar="COMMAND")
    command(hsub, "list", cmd_host, "list the amphora hosts", "database_url")
    for name, text in (("drain", "move every amphora off a host and place none there"),
                       ("enable", "let a host take amphorae again")):
        q = command(hsub, name, cmd_host, text, "database_url")
        q.add_argument("name", help="the host's name")
    q = command(hsub, "remove", cmd_host, "forget a host that holds no amphorae (stop its "
                "host-agent first, or it registers again)", "database_url")
    q.add_argument("name", help="the host's name")
