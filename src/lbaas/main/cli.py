"""``lbaas`` command line: serve, db upgrade, clouds-yaml, backend, teardown, and the roles
(api, worker, health-manager, housekeeping: ``roles.py``).

Each command is a ``cmd_*`` function and one ``_command`` call in ``build_parser`` naming the
shared options it takes (``options.py``); logging is set up once for all of them.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import Any

from lbaas.logs import configure_logging
from lbaas.main.options import add_options, settings_from_args

# Every command logs; these come first in each one's options.
COMMON = ("config", "data_dir", "log_level")


def cmd_serve(args: argparse.Namespace) -> int:
    from lbaas.drivers.base import DriverError
    from lbaas.main.http_server import may_listen, run_api_server
    from lbaas.main.service import build_service
    from lbaas.store.files import private_dir

    settings = settings_from_args(args)
    if not may_listen(settings.api, "lbaas"):
        return 1
    private_dir(settings.data_dir)
    try:
        service = build_service(settings)
    except (DriverError, ValueError, LookupError) as exc:
        # e.g. the networks belong to another instance, a data directory too long for the
        # unix socket paths under it, a setting with a wrong value
        print(f"lbaas: cannot start: {exc}", file=sys.stderr, flush=True)
        return 1
    print(f"lbaas: API on http://{settings.api.host}:{settings.api.port} "
          f"(database {settings.effective_database_url.split('@')[-1]})", flush=True)
    run_api_server(service.app, settings.api)
    print("lbaas: stopped", flush=True)
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from lbaas.main.database import open_database

    open_database(settings_from_args(args)).dispose()
    print("database is at the latest revision")
    return 0


def cmd_clouds_yaml(args: argparse.Namespace) -> int:
    from lbaas.main.clouds import clouds_yaml

    sys.stdout.write(clouds_yaml(settings_from_args(args)))
    return 0


def cmd_teardown(args: argparse.Namespace) -> int:
    import asyncio

    from lbaas.main.local_plane import teardown_local_plane

    settings = settings_from_args(args)
    removed = asyncio.run(teardown_local_plane(settings))
    for item in removed:
        print(f"removed {_teardown_item(item)}")
    if settings.fleet.enabled:
        from lbaas.main.database import open_database
        from lbaas.main.local_plane import teardown_hosts

        engine = open_database(settings)
        try:
            on_hosts, silent = asyncio.run(teardown_hosts(settings, engine))
        finally:
            engine.dispose()
        for item in on_hosts:
            print(f"removed amphora {item} (its host-agent deleted it)")
        for endpoint in silent:
            print(f"host-agent {endpoint} does not answer: its amphorae stay",
                  file=sys.stderr)
        removed += on_hosts
    print(f"lbaas teardown: {len(removed) or 'nothing'} removed for data directory "
          f"{settings.data_dir.resolve()}")
    return 0


def _teardown_item(item: str) -> str:
    """What a name ``teardown_local_plane`` returns stands for."""
    if "/" in item:
        return f"subnet {item}: its bridge, host address and route"
    if item.startswith("amp-"):
        return f"amphora namespaces {item}, ampd-{item.removeprefix('amp-')}"
    kinds = (("lbrt-", "floating IP router namespace"), ("lbr", "bridge"))
    return next((f"{kind} {item}" for prefix, kind in kinds if item.startswith(prefix)), item)


def _command(sub: Any, name: str, func: Callable[[argparse.Namespace], int], help_text: str,
             *options: str) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help_text, description=help_text[:1].upper()
                            + help_text[1:] + ".")
    add_options(parser, *COMMON, *options)
    parser.set_defaults(func=func)
    return parser


def build_parser() -> argparse.ArgumentParser:
    from lbaas.main.backend import add_backend_parser
    from lbaas.main.fleet_cli import add_fleet_parsers
    from lbaas.main.lab import add_lab_parser
    from lbaas.main.roles import add_role_parsers

    parser = argparse.ArgumentParser(prog="lbaas", description="Load balancing as a service "
                                     "speaking Octavia's v2 API")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _command(sub, "serve", cmd_serve, "run every role in one process: the API, the "
             "controller, the health manager and housekeeping",
             "database_url", "host", "port", "auth_strategy", "access_log")
    dbp = sub.add_parser("db", help="database maintenance",
                         description="Database maintenance.")
    dbsub = dbp.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    _command(dbsub, "upgrade", cmd_db_upgrade, "apply the migrations (lbaas serve also does "
             "at every start)", "database_url")
    _command(sub, "clouds-yaml", cmd_clouds_yaml, "print a clouds.yaml for the openstack CLI "
             "and openstacksdk (cloud 'lbaas')", "host", "port", "auth_strategy")
    _command(sub, "teardown", cmd_teardown, "remove the namespaces, routers, bridges and "
             "routes a data directory made, and its amphorae on the amphora hosts that answer "
             "(with its lbaas serve stopped)")
    add_backend_parser(sub, COMMON)
    add_role_parsers(sub, COMMON)
    add_fleet_parsers(sub, _command)
    add_lab_parser(sub, _command)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level, getattr(args, "access_log", False))
    try:
        return int(args.func(args))
    except (ValueError, LookupError, OSError) as exc:
        # bad settings (unknown key, wrong value), a missing --config file, a path too long:
        # one line, not a traceback (which --log-level DEBUG still shows)
        logging.getLogger("lbaas").debug("%s failed", args.command, exc_info=True)
        print(f"lbaas {args.command}: {exc}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
