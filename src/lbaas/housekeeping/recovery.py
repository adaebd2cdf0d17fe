"""Crash recovery: what a killed controller can leave behind, found and put right.

A SIGKILL can stop the controller between any two steps of building or retiring an amphora.
Rows are written before the thing they describe is made and marked DELETED only after it is
gone, so the database always knows at least as much as exists. Three repairs follow:

* an amphora row stuck in PENDING_CREATE (its build died) is retired: its namespace (named
  from the amphora id, so known even without a ``compute_id``), ports and row go;
* an amphora namespace or directory of this data dir that belongs to no live amphora row is an
  orphan and is deleted with everything running in it (safe while reconciles run: a namespace
  is listed before the rows are read, and every namespace's row is committed before it exists);
* an ALLOCATED amphora whose namespace vanished is flagged for failover so it is rebuilt.

Key choice: only the local compute driver has namespaces to sweep; with the fake drivers only
the row repairs apply. Demo backends (``lbbe-*``) are never touched.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select, update

from lbaas.controller.reconciler import Drivers
from lbaas.domain import constants as c
from lbaas.drivers.local import names
from lbaas.drivers.local import netlink as nl
from lbaas.drivers.local.compute import LocalCompute
from lbaas.store import leases
from lbaas.store import tables as t

log = logging.getLogger(__name__)


@dataclass
class Recovery:
    retired: list[str] = field(default_factory=list)  # amphora ids
    orphans: list[str] = field(default_factory=list)  # namespaces removed
    lost: list[str] = field(default_factory=list)  # amphora ids flagged for failover
    load_balancers: set[str] = field(default_factory=set)  # to reconcile now


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC).replace(tzinfo=None)


def _held_elsewhere(engine: Engine, holder: str) -> set[str]:
    lease = t.lease
    with engine.connect() as conn:
        return {r[0] for r in conn.execute(select(lease.c.load_balancer_id).where(
            lease.c.holder != holder, lease.c.expires_at >= time.time()))}


def clear_cert_busy(engine: Engine) -> None:
    """Free every amphora's rotation claim (only while no rotation can be running)."""
    with engine.begin() as conn:
        conn.execute(update(t.amphora).where(t.amphora.c.cert_busy.is_(True))
                     .values(cert_busy=False))


async def recover(engine: Engine, drivers: Drivers, holder: str, lease_seconds: float = 30.0,
                  rotation_job: str | None = None) -> Recovery:
    """Run once at start-up, before the reconcile queue (nothing of ours is in flight).

    Other processes may be working meanwhile: a load balancer is repaired only under its
    lease, and rotation claims are freed only while nobody runs ``rotation_job``."""
    result = Recovery()
    if rotation_job is None or not leases.running_elsewhere(engine, rotation_job, holder):
        clear_cert_busy(engine)  # a rotation cut short
    busy = _held_elsewhere(engine, holder)
    with engine.connect() as conn:
        stuck = list(conn.execute(select(t.amphora).where(
            t.amphora.c.status == c.PENDING_CREATE)))
    for amp in stuck:
        lb_id = amp.load_balancer_id
        if lb_id in busy or not leases.claim(engine, lb_id, holder, lease_seconds):
            continue
        try:
            with engine.connect() as conn:  # another worker may have finished it meanwhile
                amp = conn.execute(select(t.amphora).where(t.amphora.c.id == amp.id)).one()
            if amp.status != c.PENDING_CREATE:
                continue
            await _retire_stuck(engine, drivers, amp)
        finally:
            leases.release(engine, lb_id, holder)
        result.retired.append(amp.id)
        result.load_balancers.add(lb_id)
    if isinstance(drivers.compute, LocalCompute):
        result.orphans = await remove_orphans(engine, drivers.compute)
        lost = await _flag_lost(engine, busy)
        result.lost = [amp_id for amp_id, _ in lost]
        result.load_balancers |= {lb_id for _, lb_id in lost}
    if result.retired or result.orphans or result.lost:
        log.warning("crash recovery: retired stuck amphorae %s, removed orphan namespaces %s, "
                    "rebuilding lost amphorae %s", result.retired, result.orphans, result.lost)
    return result


async def _retire_stuck(engine: Engine, drivers: Drivers, amp: Any) -> None:
    compute_id = amp.compute_id
    if compute_id is None and isinstance(drivers.compute, LocalCompute):
        compute_id = names.amphora_netns(amp.id)
    if compute_id is not None:
        await drivers.amphora.forget(compute_id)
        await drivers.compute.delete_amphora(compute_id)
    if drivers.provisioner is not None:
        drivers.provisioner.release_ports(amp.id)
    with engine.begin() as conn:
        conn.execute(update(t.amphora).where(t.amphora.c.id == amp.id).values(
            status=c.DELETED, updated_at=_now()))


async def remove_orphans(engine: Engine, compute: LocalCompute) -> list[str]:
    """Delete amphora namespaces/directories of this data dir that no live row claims."""
    present = set(await nl.netns_list())
    made = {p.name for p in compute.base_dir.iterdir() if p.is_dir()} \
        if compute.base_dir.is_dir() else set()
    with engine.connect() as conn:  # read after listing: see the module docstring
        rows = list(conn.execute(select(t.amphora.c.id, t.amphora.c.compute_id,
                                        t.amphora.c.status)))
    ours: set[str] = set()
    live: set[str] = set()
    for row in rows:
        claimed = {names.amphora_netns(row.id), *([row.compute_id] if row.compute_id else [])}
        ours |= claimed
        if row.status != c.DELETED:
            live |= claimed
    candidates = made | (present & ours)
    orphans = sorted(ns for ns in candidates - live if ns.startswith(names.AMP_NETNS_PREFIX))
    for ns in orphans:
        try:
            await compute.delete_amphora(ns)
        except Exception as exc:  # keep sweeping; the next pass retries this one
            log.warning("cannot remove orphan amphora %s: %s", ns, exc)
    return orphans


async def _flag_lost(engine: Engine, busy: set[str]) -> list[tuple[str, str]]:
    present = set(await nl.netns_list())
    amp = t.amphora
    with engine.begin() as conn:
        gone = [(r.id, r.load_balancer_id) for r in conn.execute(select(amp).where(
            amp.c.status == c.AMPHORA_ALLOCATED, amp.c.compute_id.is_not(None),
            amp.c.failover_requested.is_(False)))
            if r.compute_id not in present and r.load_balancer_id not in busy]
        for amp_id, _ in gone:
            conn.execute(update(amp).where(amp.c.id == amp_id).values(failover_requested=True))
    return gone
