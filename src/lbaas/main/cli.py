"""``lbaas`` command line: serve, db upgrade, clouds-yaml, backend, teardown."""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from pathlib import Path
from typing import Any

from lbaas.settings import Settings, load_settings


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = args.data_dir
    if getattr(args, "database_url", None):
        overrides["database_url"] = args.database_url
    api: dict[str, Any] = {}
    if getattr(args, "port", None):
        api["port"] = args.port
    if getattr(args, "host", None):
        api["host"] = args.host
    if getattr(args, "auth_strategy", None):
        api["auth_strategy"] = args.auth_strategy
    if api:
        overrides["api"] = api
    return load_settings(getattr(args, "config", None), overrides)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from lbaas.drivers.base import DriverError
    from lbaas.main.service import build_service

    settings = _settings(args)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        service = build_service(settings)
    except DriverError as exc:  # e.g. the networks belong to another instance
        print(f"lbaas: cannot start: {exc}", file=sys.stderr, flush=True)
        return 1
    print(f"lbaas: API on http://{settings.api.host}:{settings.api.port} "
          f"(database {settings.effective_database_url.split('@')[-1]})", flush=True)
    # The service keeps ~80k long-lived objects; one list response makes ~1.6k more, so the
    # default thresholds ran two collections per request (measured: 2.1 -> 1.5 ms CPU each).
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    uvicorn.run(service.app, host=settings.api.host, port=settings.api.port,
                log_level="warning", access_log=False, lifespan="on")
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from lbaas.main.database import open_database

    open_database(_settings(args)).dispose()
    print("database is at the latest revision")
    return 0


def cmd_clouds_yaml(args: argparse.Namespace) -> int:
    from lbaas.main.clouds import clouds_yaml

    settings = _settings(args)
    sys.stdout.write(clouds_yaml(settings))
    return 0


def cmd_teardown(args: argparse.Namespace) -> int:
    import asyncio

    from lbaas.main.local_plane import teardown_local_plane

    for item in asyncio.run(teardown_local_plane(_settings(args))):
        print(f"removed {item}")
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="TOML settings file")
    p.add_argument("--data-dir", type=Path, help="where SQLite, certificates and state live")
    p.add_argument("--database-url", help="SQLAlchemy URL (PostgreSQL/MariaDB)")
    p.add_argument("--port", type=int, help="API port (default 9876)")
    p.add_argument("--host", help="API address (default 127.0.0.1)")
    p.add_argument("--auth-strategy", choices=["noauth", "keystone"])


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: "
                        "%(message)s")
    for noisy in ("alembic", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(prog="lbaas", description="Load balancing as a service "
                                     "speaking Octavia's v2 API")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run every role in one process")
    _common(serve)
    serve.set_defaults(func=cmd_serve)
    dbp = sub.add_parser("db", help="database maintenance")
    dbsub = dbp.add_subparsers(dest="db_command", required=True)
    up = dbsub.add_parser("upgrade", help="apply migrations")
    _common(up)
    up.set_defaults(func=cmd_db_upgrade)
    cy = sub.add_parser("clouds-yaml", help="print a clouds.yaml for the openstack CLI")
    _common(cy)
    cy.set_defaults(func=cmd_clouds_yaml)
    td = sub.add_parser("teardown", help="remove the namespaces, bridges and routes of a data "
                        "directory (the service must be stopped)")
    _common(td)
    td.set_defaults(func=cmd_teardown)
    from lbaas.main.backend import add_backend_parser

    add_backend_parser(sub)
    from lbaas.main.roles import add_role_parsers

    add_role_parsers(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
