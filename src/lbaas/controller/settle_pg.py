"""The settle transaction as one statement on PostgreSQL (data-modifying CTEs).

Everything the settle step writes is known before it starts (the digests the amphorae
answered, the configuration they accepted, the statuses the pass read), so on PostgreSQL it is
one ``WITH`` statement, run in autocommit (no ``BEGIN``/``COMMIT`` round trips): where it was
one statement per write and two for the transaction. What it does is ``Reconciler._settle_in``
without the deletion of ``PENDING_DELETE`` rows (a pass with rows to delete takes that path):

- ``lb``: the update that makes the load balancer ACTIVE, matching only at the pass's
  generation with something to settle. The status updates test ``EXISTS (SELECT 1 FROM lb)``,
  an uncorrelated one-time filter that runs it first: the load balancer's row is locked before
  any child's, as the API locks them.
- the amphorae's digests, the accepted configuration (an upsert, only while the load balancer
  exists) and the lease's release, whether or not the load balancer settles.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import TextClause, text

# (table, column, value): one status update, on the ids given as its parameter
Update = tuple[str, str, str]


@functools.cache
def statement(digests: bool, accepted: bool, updates: tuple[Update, ...]) -> TextClause:
    """The statement for one shape of settle (built once per shape). Parameters: ``lb_id``,
    ``gen``, ``holder``, ``now``, ``active``; ``amp_ids`` and ``digests`` (lists) with
    ``digests``; ``objs`` (JSON text) with ``accepted``; ``ids<i>`` (a list) per update.
    Returns one row: 1 when the load balancer settled, else 0."""
    parts = [
        "lb AS (UPDATE load_balancer SET provisioning_status = :active, "
        "applied_generation = :gen, last_request_id = NULL, updated_at = :now "
        "WHERE id = :lb_id AND generation = :gen "
        "AND (provisioning_status <> :active OR applied_generation <> :gen) RETURNING id)"]
    if digests:
        parts.append(
            "amp AS (UPDATE amphora SET active_digest = d.digest, updated_at = :now "
            "FROM unnest(CAST(:amp_ids AS varchar[]), CAST(:digests AS varchar[])) "
            "AS d(id, digest) WHERE amphora.id = d.id RETURNING 1)")
    if accepted:
        parts.append(
            "acc AS (INSERT INTO accepted_config (load_balancer_id, objects, updated_at) "
            "SELECT CAST(:lb_id AS varchar), CAST(:objs AS json), :now "
            "WHERE EXISTS (SELECT 1 FROM lb) "
            "OR EXISTS (SELECT 1 FROM load_balancer WHERE id = :lb_id) "
            "ON CONFLICT (load_balancer_id) DO UPDATE SET objects = excluded.objects, "
            "updated_at = excluded.updated_at RETURNING 1)")
    parts.append("rel AS (DELETE FROM lease WHERE load_balancer_id = :lb_id "
                 "AND holder = :holder RETURNING 1)")
    # one update per table (a row updated by two CTEs of a statement keeps only one change).
    # PostgreSQL runs the CTEs the main query does not read after it, in no promised order:
    # each update waits for the amphorae's and the previous table's (one-time subqueries),
    # so rows are locked load balancer -> amphorae -> listener -> pool -> member, the order
    # the heartbeat writer uses too (another order deadlocks with it)
    after = ["(SELECT count(*) FROM amp) >= 0"] if digests else []
    for i, (table, columns) in enumerate(_by_table(updates)):
        sets = ", ".join(
            f"{column} = CASE " + " ".join(
                f"WHEN id = ANY(CAST(:ids{j} AS varchar[])) THEN :v{j}" for j in which)
            + f" ELSE {column} END" for column, which in columns.items())
        every = " OR ".join(f"id = ANY(CAST(:ids{j} AS varchar[]))"
                            for which in columns.values() for j in which)
        waits = "".join(f" AND {w}" for w in after)
        parts.append(f"u{i} AS (UPDATE {table} SET {sets}, updated_at = :now "
                     f"WHERE ({every}) AND EXISTS (SELECT 1 FROM lb){waits} RETURNING 1)")
        after = [f"(SELECT count(*) FROM u{i}) >= 0"]
    return text("WITH " + ", ".join(parts) + " SELECT count(*) FROM lb")


def _by_table(updates: tuple[Update, ...]) -> list[tuple[str, dict[str, list[int]]]]:
    """Table -> column -> the indexes of the updates that set it, in order of appearance."""
    tables: dict[str, dict[str, list[int]]] = {}
    for j, (table, column, _) in enumerate(updates):
        tables.setdefault(table, {}).setdefault(column, []).append(j)
    return list(tables.items())


def parameters(updates: list[tuple[Update, list[str]]], **fixed: Any) -> dict[str, Any]:
    """``fixed`` and each update's value and ids, named as ``statement`` expects."""
    params = dict(fixed)
    for i, ((_, _, value), ids) in enumerate(updates):
        params[f"v{i}"] = value
        params[f"ids{i}"] = ids
    return params
