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
import gc
import logging
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from lbaas.settings import Settings, load_settings

log = logging.getLogger(__name__)


def role_settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = args.data_dir
    if getattr(args, "database_url", None):
        overrides["database_url"] = args.database_url
    api = {key: getattr(args, key) for key in ("port", "host", "auth_strategy")
           if args.command == "api" and getattr(args, key, None)}
    if api:
        overrides["api"] = api
    return load_settings(getattr(args, "config", None), overrides)


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
    import uvicorn

    from lbaas.main.role_api import build_api_role

    settings = role_settings(args)
    app = build_api_role(settings)
    print(f"lbaas api: on http://{settings.api.host}:{settings.api.port}", flush=True)
    gc.collect()  # as `lbaas serve`: long-lived objects out of the collector's way
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    uvicorn.run(app, host=settings.api.host, port=settings.api.port, log_level="warning",
                access_log=False, lifespan="on")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from lbaas.main.role_worker import run_worker

    settings = role_settings(args)
    return run_until_signalled(lambda stopped: run_worker(settings, stopped))


def cmd_health_manager(args: argparse.Namespace) -> int:
    from lbaas.main.role_health_manager import run_health_manager

    settings = role_settings(args)
    return run_until_signalled(lambda stopped: run_health_manager(
        settings, stopped, bind_ip=args.bind_ip, port=args.port))


def cmd_housekeeping(args: argparse.Namespace) -> int:
    from lbaas.main.role_housekeeping import run_housekeeping

    settings = role_settings(args)
    return run_until_signalled(lambda stopped: run_housekeeping(settings, stopped))


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="TOML settings file (the counterpart of octavia.conf)")
    p.add_argument("--data-dir", type=Path, help="this process's local state (default .data)")
    p.add_argument("--database-url", help="overrides [database] connection")


def add_role_parsers(sub: Any) -> None:
    api = sub.add_parser("api", help="the API service alone (any number, behind one address)")
    _common(api)
    api.add_argument("--port", type=int, help="API port (default [api] port, 9876)")
    api.add_argument("--host", help="API address (default [api] host)")
    api.add_argument("--auth-strategy", choices=["noauth", "keystone"])
    api.set_defaults(func=cmd_api)
    worker = sub.add_parser("worker", help="a controller worker: reconciles load balancers")
    _common(worker)
    worker.set_defaults(func=cmd_worker)
    hm = sub.add_parser("health-manager", help="receives heartbeats, fails stale amphorae over")
    _common(hm)
    hm.add_argument("--bind-ip", help="heartbeat address (default [health] bind_ip, else the "
                    "management subnet's gateway)")
    hm.add_argument("--port", type=int, help="heartbeat UDP port (default [health] bind_port)")
    hm.set_defaults(func=cmd_health_manager)
    hk = sub.add_parser("housekeeping", help="purge, certificate rotation, full resync, "
                        "orphan sweep (each once per period across all instances)")
    _common(hk)
    hk.set_defaults(func=cmd_housekeeping)
