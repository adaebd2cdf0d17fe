"""Record many verified heartbeats in one transaction, writing only what changed.

Per batch (one heartbeat per amphora): one SELECT of the amphorae with their load balancer's
generation and provisioning status; one executemany UPDATE of ``last_heartbeat`` and
``heartbeat_seq`` (conditional: a sequence number never goes back); one executemany UPDATE of
the statistics rows whose counters moved (conditional on the row's own ``heartbeat_seq``, so
health managers that all receive every heartbeat add a delta once). Operating statuses are
recomputed, from a fresh snapshot of the load balancer, only when an amphora reports other
statuses than in its previous heartbeat or its load balancer changed (generation or
provisioning status); otherwise nothing about them is read or written.

Key choice: the cache (``Known``) is this process's memory of what it last applied; it only
decides what may be skipped, never what is written, so a stale entry costs one extra snapshot
and a lost one is rebuilt from the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Connection,
    Engine,
    String,
    any_,
    bindparam,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from lbaas.domain import constants as c
from lbaas.health.status import StatusChanges, compute_statuses
from lbaas.health.writer import (
    Applied,
    gauge,
    log_member_changes,
    saturating_sum,
    snapshot,
    write_statuses,
)
from lbaas.store import tables as t
from lbaas.store.raw_many import executemany, fetch
from lbaas.wire.heartbeat import DUPLICATE, REPLAY, UNKNOWN_AMPHORA, HeartbeatRejected, stat

CHUNK = 500  # ids per IN (...) list
_a, _lb, _s = t.amphora, t.load_balancer, t.listener_statistics

_TOUCH = update(_a).where(
    _a.c.id == bindparam("b_id"),
    or_(_a.c.heartbeat_seq.is_(None), _a.c.heartbeat_seq < bindparam("b_seq"))) \
    .values(heartbeat_seq=bindparam("b_seq"), last_heartbeat=bindparam("b_now"))
_ADD = update(_s).where(
    _s.c.listener_id == bindparam("b_listener"), _s.c.amphora_id == bindparam("b_amp"),
    or_(_s.c.heartbeat_seq.is_(None), _s.c.heartbeat_seq < bindparam("b_seq"))).values(
    bytes_in=saturating_sum(_s.c.bytes_in, bindparam("b_rx", type_=BigInteger)),
    bytes_out=saturating_sum(_s.c.bytes_out, bindparam("b_tx", type_=BigInteger)),
    total_connections=saturating_sum(_s.c.total_connections,
                                     bindparam("b_tot", type_=BigInteger)),
    request_errors=saturating_sum(_s.c.request_errors, bindparam("b_ereq", type_=BigInteger)),
    active_connections=bindparam("b_conns"), heartbeat_seq=bindparam("b_seq"))
_COLUMNS = (_a.c.id, _a.c.load_balancer_id, _a.c.active_digest, _a.c.heartbeat_seq,
            _lb.c.generation, _lb.c.provisioning_status)
# PostgreSQL's driver path (``fetch``): every id in one array parameter
_ROWS_ANY = select(*_COLUMNS).outerjoin(_lb, _lb.c.id == _a.c.load_balancer_id).where(
    _a.c.id == any_(bindparam("b_ids", type_=ARRAY(String))), _a.c.status != c.DELETED)


@dataclass
class Known:
    """What this process last applied for one amphora."""

    lb_key: tuple[Any, ...] | None = None  # (load balancer id, generation, provisioning status)
    view: Any = None  # the statuses of the last heartbeat applied
    listeners: frozenset[str] = frozenset()
    stats_rows: set[str] = field(default_factory=set)  # listener ids with a statistics row
    conns: dict[str, int] = field(default_factory=dict)  # active_connections last written


@dataclass
class Outcome:
    applied: list[Applied] = field(default_factory=list)
    rejected: list[tuple[str, HeartbeatRejected]] = field(default_factory=list)
    logs: list[tuple[dict[str, Any], StatusChanges]] = field(default_factory=list)


def _lb_order(row: Any, amp_id: str) -> tuple[str, str]:
    return (row.load_balancer_id or "" if row is not None else "", amp_id)


def _view(health: dict[str, Any]) -> Any:
    listeners = {k: v.get("status") for k, v in health.get("listeners", {}).items()}
    return listeners, health.get("pools", {})


class Recorder:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.known: dict[str, Known] = {}

    def forget(self, amphora_id: str) -> None:
        self.known.pop(amphora_id, None)

    def record(self, batch: list[dict[str, Any]], now: datetime) -> Outcome:
        """``batch``: verified messages, at most one per amphora. Member status lines are
        logged after the commit (never for a transaction that rolled back)."""
        try:
            return self._record({m["id"]: m for m in batch}, now)
        except BaseException:
            for amp_id in {m["id"] for m in batch}:  # what we remember may not have happened
                self.forget(amp_id)
            raise

    def _record(self, by_id: dict[str, dict[str, Any]], now: datetime) -> Outcome:
        out = Outcome()
        new_rows: list[tuple[str, str]] = []
        with self.engine.begin() as conn:
            rows = self._rows(conn, list(by_id))
            touch, add = [], []
            # load balancers in id order, each locked before its children are written: the
            # order the API and the reconciler take (load balancer first), so a batch and a
            # change never wait on each other in a cycle (PostgreSQL's deadlock detector
            # aborting the API's transaction answered a 503)
            for amp_id, health in sorted(by_id.items(), key=lambda item: _lb_order(
                    rows.get(item[0]), item[0])):
                row = rows.get(amp_id)
                seq = health["seq"]
                if row is None:
                    out.rejected.append((amp_id, HeartbeatRejected(UNKNOWN_AMPHORA, amp_id)))
                    continue
                if row.heartbeat_seq is not None and row.heartbeat_seq >= seq:
                    reason = DUPLICATE if row.heartbeat_seq == seq else REPLAY
                    out.rejected.append((amp_id, HeartbeatRejected(reason, f"{amp_id} {seq}")))
                    continue
                touch.append({"b_id": amp_id, "b_seq": seq, "b_now": now})
                known = self.known.setdefault(amp_id, Known())
                changes = self._statuses(conn, row, health, known, out)
                self._stats(amp_id, health, known, add, new_rows)
                out.applied.append(Applied(amp_id, row.load_balancer_id, row.active_digest,
                                           changes))
            if touch:
                executemany(conn, _TOUCH, touch)
            if new_rows:
                self._insert_rows(conn, new_rows)
            if add:
                executemany(conn, _ADD, add)
        for lb, diff in out.logs:
            log_member_changes(lb, diff)
        return out

    @staticmethod
    def _rows(conn: Connection, ids: list[str]) -> dict[str, Any]:
        fast = fetch(conn, _ROWS_ANY, {"b_ids": ids})
        if fast is not None:
            return {r.id: r for r in fast}
        found = {}
        for i in range(0, len(ids), CHUNK):
            for r in conn.execute(
                    select(*_COLUMNS)
                    .outerjoin(_lb, _lb.c.id == _a.c.load_balancer_id)
                    .where(_a.c.id.in_(ids[i:i + CHUNK]), _a.c.status != c.DELETED)):
                found[r.id] = r
        return found

    @staticmethod
    def _statuses(conn: Connection, row: Any, health: dict[str, Any], known: Known,
                  out: Outcome) -> int:
        if row.load_balancer_id is None or row.provisioning_status in (None, c.DELETED):
            known.lb_key, known.listeners = None, frozenset()
            return 0
        key = (row.load_balancer_id, row.generation, row.provisioning_status)
        view = _view(health)
        if key == known.lb_key and view == known.view:
            return 0  # same report, same load balancer: nothing can have changed
        conn.execute(select(_lb.c.id).where(_lb.c.id == row.load_balancer_id)
                     .with_for_update())
        lb = snapshot(conn, row.load_balancer_id)
        if lb is None:
            return 0
        diff = compute_statuses(lb, health)
        write_statuses(conn, diff)
        if diff.member:
            out.logs.append((lb, diff))
        known.lb_key, known.view, known.listeners = key, view, frozenset(lb["listeners"])
        return diff.count()

    @staticmethod
    def _stats(amp_id: str, health: dict[str, Any], known: Known, add: list[dict[str, Any]],
               new_rows: list[tuple[str, str]]) -> None:
        seq = health["seq"]
        for listener_id, entry in health.get("listeners", {}).items():
            if listener_id not in known.listeners:
                continue  # not (or no longer) a listener of this load balancer
            stats = entry.get("stats", {})
            rx, tx = stat(stats, "rx"), stat(stats, "tx")
            tot, ereq, conns = stat(stats, "totconns"), stat(stats, "ereq"), gauge(stats, "conns")
            if not (rx or tx or tot or ereq) and known.conns.get(listener_id) == conns:
                continue  # nothing moved: nothing to write
            known.conns[listener_id] = conns
            if listener_id not in known.stats_rows:
                new_rows.append((listener_id, amp_id))
                known.stats_rows.add(listener_id)
            add.append({"b_listener": listener_id, "b_amp": amp_id, "b_seq": seq, "b_rx": rx,
                        "b_tx": tx, "b_tot": tot, "b_ereq": ereq, "b_conns": conns})

    @staticmethod
    def _insert_rows(conn: Connection, pairs: list[tuple[str, str]]) -> None:
        """Statistics rows this process has not seen yet: made empty if missing (another
        health manager may make the same row at the same moment: a savepoint each)."""
        wanted = set(pairs)
        amps = sorted({a for _, a in pairs})
        existing = set()
        for i in range(0, len(amps), CHUNK):
            existing |= {(r.listener_id, r.amphora_id) for r in conn.execute(
                select(_s.c.listener_id, _s.c.amphora_id)
                .where(_s.c.amphora_id.in_(amps[i:i + CHUNK])))}
        for listener_id, amp_id in sorted(wanted - existing):
            try:
                with conn.begin_nested():
                    conn.execute(_s.insert().values(
                        listener_id=listener_id, amphora_id=amp_id, bytes_in=0, bytes_out=0,
                        total_connections=0, request_errors=0, active_connections=0))
            except IntegrityError:
                pass  # made meanwhile: the UPDATE adds to it
