"""Hot statements on PostgreSQL's driver cursor, with SQL compiled once.

``Connection.execute(stmt, rows)`` builds and processes every parameter set in Python (the
compiled statement's ``construct_params`` and the execution context), and makes a ``Row`` of
every result row: for the health manager's per-batch statements that costs more than psycopg's
own work. ``executemany`` (and ``fetch``, for one SELECT) compiles a statement once per dialect
and runs it on ``conn.connection``'s cursor, inside the transaction ``conn`` has begun. Only on
psycopg, and only for statements whose fixed binds need no bind processor and no name escaping
(checked once); anything else, no transaction begun, or an engine with statement event
listeners, goes through ``Connection.execute`` as before. Driver errors are raised as
SQLAlchemy's, a lost connection invalidated, as ``Connection.execute`` would.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import Compiled

from lbaas.store.raw_insert import run_on_cursor


@dataclass(frozen=True)
class _Plan:
    sql: str
    constants: dict[str, Any]  # binds with a fixed value (``literal`` in the statement)
    processors: tuple[tuple[str, Any], ...]  # bind name -> bind processor


@functools.lru_cache(maxsize=64)
def _plan(stmt: Executable, dialect: Dialect) -> _Plan | None:
    if dialect.name != "postgresql" or dialect.driver != "psycopg":
        return None
    compiled: Compiled = stmt.compile(dialect=dialect)  # type: ignore[attr-defined]
    if compiled.positional or getattr(compiled, "escaped_bind_names", None):
        return None
    required, processors = set(), []
    for bind in compiled.binds.values():  # type: ignore[attr-defined]
        if bind.required:
            required.add(bind.key)
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                processors.append((bind.key, process))
        elif bind.type.dialect_impl(dialect).bind_processor(dialect) is not None:
            return None
    constants = {name: value for name, value in compiled.construct_params(_check=False).items()
                 if name not in required}
    if not all(f"%({name})s" in compiled.string for name in constants | dict.fromkeys(required)):
        return None
    return _Plan(compiled.string, constants, tuple(processors))


def _fast_plan(conn: Connection, stmt: Executable) -> _Plan | None:
    # statement events (``before_cursor_execute`` listeners) see what Connection.execute runs
    fast = conn.in_transaction() and not conn._has_events and not conn.engine._has_events
    return _plan(stmt, conn.dialect) if fast else None


def _params(plan: _Plan, row: dict[str, Any]) -> dict[str, Any]:
    params = plan.constants | row
    for name, process in plan.processors:
        params[name] = process(params[name])
    return params


def executemany(conn: Connection, stmt: Executable, rows: list[dict[str, Any]]) -> None:
    """``conn.execute(stmt, rows)``; the rows' keys are the statement's ``bindparam`` names."""
    plan = _fast_plan(conn, stmt)
    if plan is None:
        conn.execute(stmt, rows)
        return
    params = [_params(plan, row) for row in rows] if plan.constants or plan.processors \
        else rows
    run_on_cursor(conn, plan.sql, params,
                  lambda cursor: cursor.executemany(plan.sql, params))


def fetch(conn: Connection, stmt: Executable, values: dict[str, Any]) -> list[Any] | None:
    """The rows of SELECT ``stmt`` as named tuples; None where only ``conn.execute`` can run
    it (the caller then does)."""
    plan = _fast_plan(conn, stmt)
    if plan is None:
        return None
    from psycopg.rows import namedtuple_row

    params = _params(plan, values)
    rows: list[Any] = []

    def run(cursor: Any) -> None:
        cursor.row_factory = namedtuple_row
        cursor.execute(plan.sql, params)
        rows.extend(cursor.fetchall())

    run_on_cursor(conn, plan.sql, params, run)
    return rows
