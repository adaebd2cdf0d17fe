"""Open the shared database for a process: engine, migrations and the seeded networks.

Every role process may start at the same moment as others (systemd starts them together), and
Alembic's upgrade or the network seed run twice at once would collide. Key choice: the upgrade
and seed run under a lock the database itself provides — ``pg_advisory_lock`` on PostgreSQL,
``GET_LOCK`` on MariaDB, an ``flock`` beside the SQLite file — so the first process migrates and
the others find the schema current. ``lbaas db upgrade`` (run once before starting, as
``octavia-db-manage upgrade head``) takes the same lock.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text

from lbaas.settings import Settings
from lbaas.store import db
from lbaas.store.files import private_dir
from lbaas.store.seed import seed_networks

LOCK_NAME = "lbaas-migrate"
PG_LOCK_KEY = 0x1BAA5  # any constant: one advisory lock per database
LOCK_TIMEOUT = 300


@contextmanager
def migration_lock(engine: Engine, settings: Settings) -> Iterator[None]:
    dialect = engine.dialect.name
    if dialect == "sqlite":
        private_dir(settings.data_dir)
        fd = os.open(settings.data_dir / ".migrate.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
        return
    with engine.connect() as conn:
        if dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": PG_LOCK_KEY})
            release, params = text("SELECT pg_advisory_unlock(:k)"), {"k": PG_LOCK_KEY}
        else:
            got = conn.execute(text("SELECT GET_LOCK(:n, :t)"),
                               {"n": LOCK_NAME, "t": LOCK_TIMEOUT}).scalar()
            if got != 1:
                raise RuntimeError(f"could not take the migration lock in {LOCK_TIMEOUT} s")
            release, params = text("SELECT RELEASE_LOCK(:n)"), {"n": LOCK_NAME}
        conn.commit()
        try:
            yield
        finally:
            conn.execute(release, params)
            conn.commit()


def open_database(settings: Settings, migrate: bool = True) -> Engine:
    """An engine on the settings' database, migrated (unless not ``migrate``) and seeded."""
    engine = db.make_engine(settings.effective_database_url)
    with migration_lock(engine, settings):
        if migrate:
            db.upgrade(engine)
        seed_networks(engine, settings.networking.networks,
                      settings.networking.management_network)
    return engine
