"""The command-line options the ``lbaas`` commands share, and the settings they make.

Key choice: one table of options; each command adds only the ones it uses, by name
(``add_options(parser, "config", "data_dir")``), so its ``--help`` lists its own options, every
one with a help text that says its default. Options left out keep ``None`` and the settings
decide (defaults, then ``--config``, then ``LBAAS_*`` variables, then the command line).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lbaas.logs import LEVELS
from lbaas.settings import Settings, load_settings

_DEFAULTS = Settings()

OPTIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "config": ("--config", {
        "metavar": "FILE",
        "help": "TOML settings file with the sections of lbaas/settings.py "
                "(default: $LBAAS_CONFIG, else none)"}),
    "data_dir": ("--data-dir", {
        "type": Path, "metavar": "DIR",
        "help": "where SQLite, certificates, amphorae and network state live (default: "
                f"$LBAAS_DATA_DIR, else data_dir in --config, else {_DEFAULTS.data_dir} in the "
                "current directory)"}),
    "database_url": ("--database-url", {
        "metavar": "URL",
        "help": "SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db or "
                "mysql+pymysql://user@host/db (default: $LBAAS_DATABASE_URL, else "
                "database_url in --config, else SQLite in the data directory)"}),
    "host": ("--host", {
        "metavar": "ADDRESS",
        "help": f"address the API listens on (default: [api] host in --config, else "
                f"{_DEFAULTS.api.host})"}),
    "port": ("--port", {
        "type": int, "metavar": "PORT",
        "help": f"API port (default: [api] port in --config, else {_DEFAULTS.api.port})"}),
    "auth_strategy": ("--auth-strategy", {
        "choices": ["noauth", "keystone"],
        "help": "noauth (every caller is admin) or keystone (default: $LBAAS_AUTH_STRATEGY, "
                f"else [api] auth_strategy in --config, else {_DEFAULTS.api.auth_strategy})"}),
    "log_level": ("--log-level", {
        "type": str.upper, "choices": LEVELS, "default": "INFO",
        "help": "lowest level of the log lines written to stderr (default: %(default)s)"}),
    "access_log": ("--access-log", {
        "action": "store_true",
        "help": "log one INFO line per API request, with its request id (default: off)"}),
}


def add_options(parser: argparse.ArgumentParser, *names: str) -> None:
    for name in names:
        flag, kwargs = OPTIONS[name]
        parser.add_argument(flag, **kwargs)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings with the command line's values on top (only the options given)."""
    overrides: dict[str, Any] = {}
    for key in ("data_dir", "database_url"):
        if getattr(args, key, None):
            overrides[key] = getattr(args, key)
    api = {key: getattr(args, key) for key in ("host", "port", "auth_strategy")
           if getattr(args, key, None)}
    if api:
        overrides["api"] = api
    return load_settings(getattr(args, "config", None), overrides)
