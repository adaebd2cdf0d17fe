"""Contain an object the data plane refuses, so the rest of its load balancer still converges.

The rule (docs/decisions/0013-contain-refused-objects.md): an object in ERROR is rendered as
the data plane last accepted it, or left out when it never was accepted, until it is changed
again. ``accepted_config`` keeps, per load balancer, the objects of the last bundle every
amphora accepted (flat rows by table name). When a pass is refused, the reconciler marks what
to blame ERROR and converges again at once without it, so later changes and failovers are not
held up: a render error names its object (``RenderError.culprit``: a certificate that no longer
loads, a value render refuses); an amphora's refusal (``BundleRefused``: its ``haproxy -c``
failed) names nothing, and the objects the pass was applying are blamed. An object whose last
accepted version is refused as well is left out for the rest of the pass (``dropped``), and the
configuration then saved no longer holds it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, bindparam, delete, select, update

from lbaas.controller.aggregate import STRIP, Rows, assemble
from lbaas.domain import constants as c
from lbaas.domain.spec import LoadBalancerSpec
from lbaas.drivers.base import BundleRefused
from lbaas.render import RenderError
from lbaas.store import tables as t

REFUSALS = (RenderError, BundleRefused)
TABLES = {table.name: table for table in (t.listener, t.pool, t.member, t.health_monitor,
                                          t.l7policy, t.l7rule)}

Objects = dict[str, dict[str, dict[str, Any]]]  # table name -> id -> row without statuses


@dataclass
class Contained:
    """What one reconcile pass contained: objects left out, and what it blamed (for logs)."""

    dropped: set[str] = field(default_factory=set)
    blamed: list[str] = field(default_factory=list)


def effective_rows(rows: Rows, accepted: Objects, dropped: set[str]) -> Rows:
    """``rows`` with each object in ERROR replaced by its accepted version (or left out when
    it has none), and the ``dropped`` ones left out."""
    out: Rows = {}
    for name, table_rows in rows.items():
        kept = []
        for row in table_rows:
            if row["id"] in dropped:
                continue
            if row["provisioning_status"] == c.ERROR:
                previous = accepted.get(name, {}).get(row["id"])
                if previous is None:
                    continue
                row = {**previous, "provisioning_status": c.ERROR}
            kept.append(row)
        out[name] = kept
    return out


def snapshot(rows: Rows) -> Objects:
    """What to keep of a configuration the data plane accepted (JSON-ready)."""
    objects = {name: {row["id"]: {k: v for k, v in row.items() if k not in STRIP}
                      for row in table_rows} for name, table_rows in rows.items()}
    return orjson.loads(orjson.dumps(objects, default=str))  # type: ignore[no-any-return]


def digest(objects: Objects) -> str:
    return hashlib.sha256(orjson.dumps(objects, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True)
class Plan:
    aggregate: LoadBalancerSpec  # what to render, refused objects contained
    accepted: Objects  # what to save once every amphora serves it
    unchanged: bool  # the saved configuration is this one already


def plan(lb: dict[str, Any], rows: Rows, stored: Any, dropped: set[str]) -> Plan:
    """The plan from the load balancer's row, its live children (``aggregate.live``) and the
    accepted configuration as stored (None when there is none)."""
    accepted = _objects(stored)
    rows = effective_rows(rows, accepted, dropped)
    objects = snapshot(rows)
    return Plan(assemble(lb, rows), objects, digest(objects) == digest(accepted))


_SAVE = update(t.accepted_config).where(
    t.accepted_config.c.load_balancer_id == bindparam("lb_id")).values(
    objects=bindparam("objs"), updated_at=bindparam("now"))


def save(conn: Connection, lb_id: str, objects: Objects) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    table = t.accepted_config
    changed = conn.execute(_SAVE, {"lb_id": lb_id, "objs": objects, "now": now}).rowcount
    if not changed:
        conn.execute(table.insert().values(load_balancer_id=lb_id, objects=objects,
                                           updated_at=now))


def forget(conn: Connection, lb_id: str) -> None:
    conn.execute(delete(t.accepted_config).where(t.accepted_config.c.load_balancer_id == lb_id))


def blame_culprit(conn: Connection, culprit: tuple[str, str], dropped: set[str]) -> str | None:
    """Contain the object a render error named: ERROR it, or leave it out when it already was
    in ERROR (its accepted version is refused too). None when there is no such object."""
    name, ident = culprit
    table = TABLES.get(name)
    if table is None or ident in dropped:
        return None
    status = conn.execute(select(table.c.provisioning_status).where(
        table.c.id == ident)).scalar_one_or_none()
    if status is None:
        return None
    if status == c.ERROR:
        dropped.add(ident)
        return f"{name} {ident} left out"
    conn.execute(update(table).where(table.c.id == ident).values(provisioning_status=c.ERROR))
    return f"{name} {ident} in ERROR"


def _objects(stored: Any) -> Objects:
    if isinstance(stored, str | bytes):
        stored = orjson.loads(stored)
    return dict(stored) if isinstance(stored, Mapping) else {}
