"""One lock per project for quota checks: count-then-insert is atomic across API processes.

A create that is subject to a quota first makes sure the project's ``quota_lock`` row exists
(an insert that ignores a duplicate, so two first creates do not fail each other), then locks
it ``FOR UPDATE`` in its own transaction before counting. A second create of the same project
waits at that lock until the first commits, and then counts its row. SQLite ignores ``FOR
UPDATE``; it has one writer at a time, and the API's handlers run their transactions without
awaiting in between.
"""

from __future__ import annotations

from sqlalchemy import Connection, select
from sqlalchemy.dialects import mysql, postgresql, sqlite

from lbaas.store import tables as t


def lock_project(conn: Connection, project_id: str) -> None:
    """Hold the project's quota lock until ``conn``'s transaction ends."""
    locked = select(t.quota_lock.c.project_id).where(
        t.quota_lock.c.project_id == project_id).with_for_update()
    if conn.execute(locked).first() is not None:  # the usual case: one exclusive lock only
        return
    name = conn.dialect.name
    if name == "postgresql":
        conn.execute(postgresql.insert(t.quota_lock).values(project_id=project_id)
                     .on_conflict_do_nothing())
    elif name in ("mysql", "mariadb"):
        conn.execute(mysql.insert(t.quota_lock).values(project_id=project_id)
                     .prefix_with("IGNORE"))
    else:
        conn.execute(sqlite.insert(t.quota_lock).values(project_id=project_id)
                     .on_conflict_do_nothing())
    conn.execute(locked)
