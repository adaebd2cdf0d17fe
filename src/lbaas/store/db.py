"""Engine creation and schema migration for SQLite, PostgreSQL and MariaDB.

The API and controller use plain ``Engine.begin()`` transactions. SQLite runs in WAL mode with a
busy timeout so the API and the reconciler can write from different threads. JSON columns are
decoded with orjson: with stdlib ``json`` their decoding was a third of a list query's time.
"""

from __future__ import annotations

import logging
from pathlib import Path

import orjson
from sqlalchemy import Engine, create_engine, event

from lbaas.store.files import private_sqlite_file
from lbaas.store.tables import metadata

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def json_text(value: object) -> str:
    """JSON columns are written with orjson too, as they are read (faster than stdlib json)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///").split("?")[0]
        if url.startswith("sqlite:///") and path and path != ":memory:":
            private_sqlite_file(Path(path))
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=10,
            max_overflow=20, json_deserializer=orjson.loads, json_serializer=json_text,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    if url.startswith("mysql") and "charset=" not in url:
        url += ("&" if "?" in url else "?") + "charset=utf8mb4"
    extra: dict[str, str] = {}
    if url.startswith("mysql"):
        # InnoDB's default REPEATABLE READ makes the reconciler re-read stale snapshots and
        # raises gap-lock deadlocks between concurrent creates; PostgreSQL's default matches.
        extra["isolation_level"] = "READ COMMITTED"
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True,
                         json_deserializer=orjson.loads, json_serializer=json_text, **extra)


def _alembic_config(engine: Engine):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> None:
    """Apply every Alembic migration (idempotent)."""
    from alembic import command

    logging.getLogger("alembic").setLevel(logging.WARNING)
    command.upgrade(_alembic_config(engine), "head")


def drop_all(engine: Engine) -> None:
    """Test helper: remove every table, including Alembic's version table."""
    with engine.begin() as conn:
        metadata.drop_all(conn)
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
