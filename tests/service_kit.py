"""The all-in-one service with fake drivers on a test database, for fixtures and for tests that
start it themselves (a module of its own: every test directory's ``conftest`` is a different
module, so ``from conftest import ...`` depends on which one was imported last)."""

from __future__ import annotations

from typing import Any

from lbaas.main.service import Service, build_service
from lbaas.settings import load_settings
from lbaas.store import db
from lbaas.store.tables import metadata


def _wipe(url: str) -> None:
    engine = db.make_engine(url)
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
    engine.dispose()


def make_service(database_url: str, tmp_path: Any, **overrides: Any) -> Service:
    base: dict[str, Any] = {"data_dir": str(tmp_path), "database_url": database_url,
                            "controller": {"resync_interval": 0.5, "drivers": "fake"}}
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return build_service(load_settings(overrides=base, environ={}), migrate=False)
