"""The Alembic migrations build exactly the schema ``lbaas.store.tables`` describes."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from lbaas.store import db
from lbaas.store.tables import metadata


def test_migrated_database_matches_the_table_definitions(api: Any) -> None:
    engine = api.service.engine  # migrated by the service at start, on the suite's database
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == [], "tables.py changed without a migration:\n" + "\n".join(map(str, diff))


def test_upgrade_is_idempotent(api: Any) -> None:
    db.upgrade(api.service.engine)
    with api.service.engine.connect() as conn:
        version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one()
    head = ScriptDirectory(str(db.MIGRATIONS_DIR)).get_current_head()
    assert version == head
