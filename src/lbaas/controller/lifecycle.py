"""INFO lines an operator can follow: what one reconcile pass created, updated, deleted or
failed, one line per object.

Key choice: the reconciler settles statuses with bulk UPDATEs, so the lines are written from
the list of rows that were ``PENDING_*``: read in the failing transaction (``pending``), or, when
a pass settles, the rows it read (``pending_of``; unchanged since, at the generation it settles).
They carry the request id the reconciler bound (``lbaas.logs``), so each one can be traced to
the API call that asked for it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from lbaas.domain import constants as c
from lbaas.store import tables as t

log = logging.getLogger("lbaas.controller.lifecycle")

KINDS = {"listener": "listener", "pool": "pool", "member": "member",
         "health_monitor": "health monitor", "l7policy": "L7 policy", "l7rule": "L7 rule"}
DONE = {c.PENDING_CREATE: "created", c.PENDING_UPDATE: "updated", c.PENDING_DELETE: "deleted"}


@dataclass(frozen=True)
class Pending:
    kind: str  # table name
    id: str
    status: str  # PENDING_CREATE, PENDING_UPDATE or PENDING_DELETE


def pending(conn: Connection, scope: dict[str, list[str]]) -> list[Pending]:
    """The load balancer's children waiting for this pass (``scope``: ids by table name)."""
    out: list[Pending] = []
    for name in KINDS:
        ids = scope.get(name)
        if not ids:
            continue
        table: Any = getattr(t, name)
        for row in conn.execute(select(table.c.id, table.c.provisioning_status).where(
                table.c.id.in_(ids), table.c.provisioning_status.in_(c.PENDING_STATUSES))):
            out.append(Pending(name, row.id, row.provisioning_status))
    return out


def pending_of(statuses: dict[str, list[tuple[str, str]]]) -> list[Pending]:
    """The same from statuses already read: ``(id, provisioning_status)`` by table name."""
    return [Pending(name, row_id, status) for name in KINDS
            for row_id, status in statuses.get(name, ()) if status in c.PENDING_STATUSES]


def log_settled(lb_id: str, lb_status: str, children: list[Pending],
                locked: dict[str, set[str]]) -> None:
    """The pass applied everything: changed children and the load balancer are ACTIVE (or
    gone). Parents the API only locked because a child changed get no line of their own."""
    changed = [item for item in children if item.id not in locked.get(item.kind, ())]
    for item in changed:
        outcome = DONE[item.status]
        state = "" if outcome == "deleted" else ": ACTIVE"
        log.info("%s %s of load balancer %s %s%s", KINDS[item.kind], item.id, lb_id, outcome,
                 state)
    if lb_status == c.PENDING_CREATE or (lb_status == c.PENDING_UPDATE and not changed):
        log.info("load balancer %s %s: ACTIVE", lb_id, DONE[lb_status])


def log_failed(lb_id: str, lb_status: str, children: list[Pending],
               locked: dict[str, set[str]]) -> None:
    """The pass failed: changed children went ERROR (parents only locked went back to
    ACTIVE), and the load balancer is ``lb_status``."""
    for item in children:
        if item.id in locked.get(item.kind, ()):
            continue
        log.info("%s %s of load balancer %s not %s: ERROR", KINDS[item.kind], item.id, lb_id,
                 DONE[item.status])
    if lb_status == c.ERROR:
        log.info("load balancer %s: ERROR", lb_id)
    else:
        log.info("load balancer %s back to %s after a failed change", lb_id, lb_status)


def log_deleted(lb_id: str) -> None:
    log.info("load balancer %s deleted", lb_id)
