"""Apply one verified heartbeat to the database in one transaction.

Order: the amphora must exist (not DELETED); its stored sequence number must be older (a
conditional UPDATE, so health managers sharing a database agree on what is a replay); then
operating statuses (only changed rows are written) and listener statistics. Statistics are
stored per (listener, amphora) row and grow by the message's deltas, so totals survive HAProxy
reloads (the agent turns a counter reset into a delta) and failovers (the old amphora's row
stays and is summed with the new one's).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Engine,
    case,
    literal,
    or_,
    select,
    update,
)

from lbaas.domain import constants as c
from lbaas.health.status import StatusChanges, compute_statuses
from lbaas.store import tables as t
from lbaas.wire.heartbeat import (
    DUPLICATE,
    MAX_COUNTER,
    MAX_GAUGE,
    REPLAY,
    UNKNOWN_AMPHORA,
    HeartbeatRejected,
    stat,
)

log = logging.getLogger(__name__)


def saturating_sum(column: Any, delta: Any) -> ColumnElement[Any]:
    """``column + delta`` capped at BIGINT's maximum: a counter saturates (it never wraps, and
    the database never refuses the sum). ``delta`` is in [0, MAX_COUNTER], so the comparison
    itself cannot overflow."""
    return case((column > literal(MAX_COUNTER, BigInteger) - delta, MAX_COUNTER),
                else_=column + delta)


def gauge(stats: dict[str, Any], name: str) -> int:
    """A gauge for a 32-bit column (``active_connections``): larger values are capped."""
    return min(stat(stats, name), MAX_GAUGE)


@dataclass(frozen=True)
class Applied:
    amphora_id: str
    load_balancer_id: str | None
    stored_digest: str | None  # the digest the controller last pushed to this amphora
    changes: int


def apply_heartbeat(engine: Engine, health: dict[str, Any], now: datetime) -> Applied:
    amp_id, seq = health["id"], health["seq"]
    a = t.amphora
    with engine.begin() as conn:
        amp = conn.execute(select(a.c.id, a.c.load_balancer_id, a.c.active_digest).where(
            a.c.id == amp_id, a.c.status != c.DELETED)).first()
        if amp is None:
            raise HeartbeatRejected(UNKNOWN_AMPHORA, amp_id)
        fresh = conn.execute(update(a).where(
            a.c.id == amp_id, or_(a.c.heartbeat_seq.is_(None), a.c.heartbeat_seq < seq))
            .values(heartbeat_seq=seq, last_heartbeat=now)).rowcount
        if not fresh:
            stored = conn.execute(select(a.c.heartbeat_seq).where(a.c.id == amp_id)).scalar()
            raise HeartbeatRejected(DUPLICATE if stored == seq else REPLAY, f"{amp_id} seq {seq}")
        changes = 0
        lb = snapshot(conn, amp.load_balancer_id) if amp.load_balancer_id else None
        if lb is not None:
            diff = compute_statuses(lb, health)
            write_statuses(conn, diff)
            log_member_changes(lb, diff)
            changes = diff.count()
            _add_stats(conn, amp_id, set(lb["listeners"]), health.get("listeners", {}), seq)
    return Applied(amp_id, amp.load_balancer_id, amp.active_digest, changes)


def snapshot(conn: Connection, lb_id: str) -> dict[str, Any] | None:
    """Upstream's ``get_lb_for_health_update``: flat statuses of one load balancer."""
    lb = conn.execute(select(t.load_balancer).where(
        t.load_balancer.c.id == lb_id, t.load_balancer.c.provisioning_status != c.DELETED))\
        .first()
    if lb is None:
        return None
    li, po, me = t.listener, t.pool, t.member
    listeners = {r.id: {"enabled": r.admin_state_up, "operating_status": r.operating_status}
                 for r in conn.execute(select(li.c.id, li.c.admin_state_up,
                                              li.c.operating_status)
                                       .where(li.c.load_balancer_id == lb_id))}
    pools: dict[str, dict[str, Any]] = {
        r.id: {"operating_status": r.operating_status, "members": {}}
        for r in conn.execute(select(po.c.id, po.c.operating_status)
                              .where(po.c.load_balancer_id == lb_id))}
    if pools:
        for r in conn.execute(select(me.c.id, me.c.pool_id, me.c.operating_status)
                              .where(me.c.pool_id.in_(list(pools)))):
            pools[r.pool_id]["members"][r.id] = r.operating_status
    return {"id": lb.id, "enabled": lb.admin_state_up,
            "provisioning_status": lb.provisioning_status,
            "operating_status": lb.operating_status, "listeners": listeners, "pools": pools}


def write_statuses(conn: Connection, diff: StatusChanges) -> None:
    for table, values in ((t.load_balancer, diff.load_balancer), (t.listener, diff.listener),
                          (t.pool, diff.pool), (t.member, diff.member)):
        by_status: dict[str, list[str]] = {}
        for ident, status in values.items():
            by_status.setdefault(status, []).append(ident)
        for status, ids in by_status.items():
            conn.execute(update(table).where(table.c.id.in_(ids))
                         .values(operating_status=status))


def log_member_changes(lb: dict[str, Any], diff: StatusChanges) -> None:
    if not diff.member:
        return
    for pool_id, pool in lb["pools"].items():
        for member_id, before in pool["members"].items():
            if member_id in diff.member:
                log.info("member %s of pool %s (load balancer %s): operating status %s -> %s",
                         member_id, pool_id, lb["id"], before, diff.member[member_id])


def _add_stats(conn: Connection, amp_id: str, known: set[str], reported: dict[str, Any],
               seq: int) -> None:
    s = t.listener_statistics
    for listener_id, entry in reported.items():
        if listener_id not in known:
            continue  # not (or no longer) a listener of this load balancer
        stats = entry.get("stats", {})
        rx, tx = stat(stats, "rx"), stat(stats, "tx")
        tot, ereq, conns = stat(stats, "totconns"), stat(stats, "ereq"), gauge(stats, "conns")
        where = (s.c.listener_id == listener_id, s.c.amphora_id == amp_id)
        done = conn.execute(update(s).where(*where).values(
            bytes_in=saturating_sum(s.c.bytes_in, rx),
            bytes_out=saturating_sum(s.c.bytes_out, tx),
            total_connections=saturating_sum(s.c.total_connections, tot),
            request_errors=saturating_sum(s.c.request_errors, ereq), active_connections=conns,
            heartbeat_seq=seq)).rowcount
        if not done:
            conn.execute(s.insert().values(
                listener_id=listener_id, amphora_id=amp_id, bytes_in=rx, bytes_out=tx,
                total_connections=tot, request_errors=ereq, active_connections=conns,
                heartbeat_seq=seq))
