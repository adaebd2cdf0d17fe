"""The role commands: ``lbaas api``, ``worker``, ``health-manager`` and ``housekeeping``.

``add_role_parsers`` registers them on the ``lbaas`` command line (one line in cli.py). Each
takes ``--config FILE`` and runs alone, any number of times, on one machine or several; the
processes share only the database, the message bus and the files under ``shared_dir``
(docs/deploy.md). Key choice: SIGTERM and SIGINT stop a role cleanly (leases released, the bus
closed); SIGKILL is survivable by design, which is what the leases and the resync scan are for.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from lbaas.main.options import add_options, settings_from_args
from lbaas.settings import HealthSettings

log = logging.getLogger(__name__)


def run_until_signalled(body: Callable[[asyncio.Event], Awaitable[None]]) -> int:
    async def main() -> None:
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopped.set)
        await body(stopped)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    return 0


def cmd_api(args: argparse.Namespace) -> int:
    from lbaas.main.http_server import may_listen, run_api_server
    from lbaas.main.role_api import build_api_role

    settings = settings_from_args(args)
    if not may_listen(settings.api, "lbaas api"):
        return 1
    app = build_api_role(settings)
    print(f"lbaas api: on http://{settings.api.host}:{settings.api.port}", flush=True)
    run_api_server(app, settings.api)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from lbaas.main.role_worker import run_worker

    settings = settings_from_args(args)
    return run_until_signalled(lambda stopped: run_worker(settings, stopped))


def cmd_health_manager(args: argparse.Namespace) -> int:
    from lbaas.main.role_health_manager import run_health_manager

    settings = settings_from_args(args)
    return run_until_signalled(lambda stopped: run_health_manager(
        settings, stopped, bind_ip=args.bind_ip, port=args.heartbeat_port))


def cmd_housekeeping(args: argparse.Namespace) -> int:
    from lbaas.main.role_housekeeping import run_housekeeping

    settings = settings_from_args(args)
    return run_until_signalled(lambda stopped: run_housekeeping(settings, stopped))


def _role(sub: Any, name: str, func: Callable[[argparse.Namespace], int], help_text: str,
          common: tuple[str, ...], *options: str) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help_text,
                            description=help_text[:1].upper() + help_text[1:] + ".")
    add_options(parser, *common, "database_url", *options)
    parser.set_defaults(func=func)
    return parser


def add_role_parsers(sub: Any, common: tuple[str, ...]) -> None:
    """``common``: the options every lbaas command takes (cli.COMMON)."""
    _role(sub, "api", cmd_api, "the API service alone (any number, behind one address)",
          common, "host", "port", "auth_strategy", "access_log")
    _role(sub, "worker", cmd_worker, "a controller worker: reconciles load balancers", common)
    hm = _role(sub, "health-manager", cmd_health_manager,
               "receives heartbeats, fails stale amphorae over", common)
    hm.add_argument("--bind-ip", metavar="ADDRESS",
                    help="heartbeat address (default: [health] bind_ip in --config, else the "
                    "management subnet's gateway)")
    hm.add_argument("--port", dest="heartbeat_port", type=int, metavar="PORT",
                    help="heartbeat UDP port (default: [health] bind_port in --config, else "
                    f"{HealthSettings().bind_port})")
    _role(sub, "housekeeping", cmd_housekeeping, "purge, certificate rotation, full resync, "
          "orphan sweep (each once per period across all instances)", common)
