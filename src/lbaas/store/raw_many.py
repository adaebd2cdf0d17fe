"""Hot executemany on PostgreSQL's driver cursor, with SQL compiled once.

``Connection.execute(stmt, rows)`` builds and processes every parameter set in Python (the
compiled statement's ``construct_params`` and the execution context): for the health manager's
per-batch UPDATEs that cost more than psycopg's own executemany. ``executemany`` compiles a
statement once per dialect and hands the rows to ``conn.connection``'s cursor, inside the
transaction ``conn`` has begun. Only on psycopg, and only for statements whose binds need no
bind processor and no escaping (checked once); anything else, no transaction begun, or an
engine with statement event listeners, goes through ``Connection.execute`` as before. Driver
errors are raised as SQLAlchemy's, a lost connection invalidated, as ``Connection.execute``
would.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import Compiled


@dataclass(frozen=True)
class _Plan:
    sql: str
    constants: dict[str, Any]  # binds with a fixed value (``literal`` in the statement)


@functools.lru_cache(maxsize=64)
def _plan(stmt: Executable, dialect: Dialect) -> _Plan | None:
    if dialect.name != "postgresql" or dialect.driver != "psycopg":
        return None
    compiled: Compiled = stmt.compile(dialect=dialect)  # type: ignore[attr-defined]
    if compiled.positional or getattr(compiled, "escaped_bind_names", None):
        return None
    required = set()
    for bind in compiled.binds.values():  # type: ignore[attr-defined]
        if bind.type.dialect_impl(dialect).bind_processor(dialect) is not None:
            return None
        if bind.required:
            required.add(bind.key)
    constants = {name: value for name, value in compiled.construct_params(_check=False).items()
                 if name not in required}
    if not all(f"%({name})s" in compiled.string for name in constants | dict.fromkeys(required)):
        return None
    return _Plan(compiled.string, constants)


def executemany(conn: Connection, stmt: Executable, rows: list[dict[str, Any]]) -> None:
    """``conn.execute(stmt, rows)``; the rows' keys are the statement's ``bindparam`` names."""
    # statement events (``before_cursor_execute`` listeners) see what Connection.execute runs
    fast = conn.in_transaction() and not conn._has_events and not conn.engine._has_events
    plan = _plan(stmt, conn.dialect) if fast else None
    if plan is None:
        conn.execute(stmt, rows)
        return
    params = [plan.constants | row for row in rows] if plan.constants else rows
    dbapi_conn = conn.connection
    cursor = dbapi_conn.cursor()
    try:
        cursor.executemany(plan.sql, params)
    except conn.dialect.loaded_dbapi.Error as err:
        lost = conn.dialect.is_disconnect(err, dbapi_conn.dbapi_connection, cursor)
        if lost:
            conn.invalidate()
        raise DBAPIError.instance(plan.sql, params, err, conn.dialect.loaded_dbapi.Error,
                                  connection_invalidated=lost, dialect=conn.dialect) from err
    finally:
        with contextlib.suppress(conn.dialect.loaded_dbapi.Error):
            cursor.close()
