"""Hot INSERTs run on the driver's cursor of the transaction, with SQL compiled once.

``Connection.execute`` costs more than the statement itself for a one-row INSERT (the
execution context, the parameter processing, the result's metadata): measured about five times
the driver's own cost. ``insert`` compiles ``table.insert()`` once per table, set of columns and
dialect, applies the columns' bind processors (JSON, dates on SQLite, booleans) and the scalar
Python defaults SQLAlchemy would have, and executes on ``conn.connection``'s cursor, inside the
transaction ``conn`` has begun. Anything it does not cover (a callable or SQL default on an
omitted column, a bind name SQLAlchemy escaped, no transaction begun) goes through
``Connection.execute`` as before. Driver errors are raised as SQLAlchemy's (``IntegrityError``
and the rest), a lost connection invalidated, as ``Connection.execute`` would.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect, Table
from sqlalchemy.exc import DBAPIError


@dataclass(frozen=True)
class _Plan:
    sql: str
    names: tuple[str, ...]  # bind order (positional drivers) and keys (named ones)
    positional: bool
    defaults: tuple[tuple[str, Any], ...]  # omitted columns' scalar Python defaults
    processors: tuple[tuple[str, Any], ...]  # column name -> bind processor


@functools.lru_cache(maxsize=256)
def _plan(table: Table, given: frozenset[str], dialect: Dialect) -> _Plan | None:
    defaults = []
    for col in table.columns:
        if col.name in given or col.default is None:
            continue
        if not col.default.is_scalar:
            return None
        defaults.append((col.name, col.default.arg))
    names = given | {name for name, _ in defaults}
    if not names <= set(table.columns.keys()):
        return None
    compiled = table.insert().compile(dialect=dialect, column_keys=sorted(names))
    binds = tuple(compiled.positiontup or ()) if compiled.positional else tuple(compiled.binds)
    if set(binds) != names or getattr(compiled, "escaped_bind_names", None):
        return None
    processors = []
    for name in binds:
        process = table.columns[name].type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors.append((name, process))
    return _Plan(compiled.string, binds, bool(compiled.positional), tuple(defaults),
                 tuple(processors))


def insert(conn: Connection, table: Table, values: dict[str, Any]) -> None:
    """``conn.execute(table.insert(), values)`` for one row, on the driver's cursor."""
    plan = _plan(table, frozenset(values), conn.dialect) if conn.in_transaction() else None
    if plan is None:
        conn.execute(table.insert(), values)
        return
    params = dict(values)
    for name, default in plan.defaults:
        params[name] = default
    for name, process in plan.processors:
        params[name] = process(params[name])
    bound: Any = tuple(params[name] for name in plan.names) if plan.positional else params
    run_on_cursor(conn, plan.sql, bound, lambda cursor: cursor.execute(plan.sql, bound))


def run_on_cursor(conn: Connection, sql: str, params: Any, work: Callable[[Any], None]) -> None:
    """``work(cursor)`` on a new cursor of ``conn``'s driver connection, closed after; driver
    errors raised as SQLAlchemy's, a lost connection invalidated, as ``Connection.execute``
    would."""
    dbapi_conn = conn.connection
    cursor = dbapi_conn.cursor()
    try:
        work(cursor)
    except conn.dialect.loaded_dbapi.Error as err:
        lost = conn.dialect.is_disconnect(err, dbapi_conn.dbapi_connection, cursor)
        if lost:
            conn.invalidate()
        raise DBAPIError.instance(sql, params, err, conn.dialect.loaded_dbapi.Error,
                                  connection_invalidated=lost, dialect=conn.dialect) from err
    finally:
        with contextlib.suppress(conn.dialect.loaded_dbapi.Error):
            cursor.close()
