"""Converge one load balancer towards its desired state; never branches on create/update/delete.

``reconcile(lb_id)`` holds the load balancer's lease, re-reads everything, makes sure the right
amphorae exist (replacing those flagged for failover), pushes the rendered bundle where the
active digest differs, and then settles statuses in one transaction: ``PENDING_DELETE`` rows go,
other ``PENDING_*`` rows become ACTIVE. A driver failure marks the changed objects ERROR and
puts the load balancer back to ACTIVE (ERROR if the load balancer itself was being built).
When the data plane refuses an object, that object goes ERROR and the pass converges again at
once without it (``controller.containment``): one refused object never blocks the rest of its
load balancer, nor a failover. Running it twice is harmless; running it after a crash finishes
the job.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Connection, Engine, bindparam, delete, or_, select, update
from sqlalchemy.exc import DBAPIError

from lbaas.controller import aggregate, containment, lifecycle, settle_pg
from lbaas.controller.aggregate import read_lb
from lbaas.controller.provisioning import Provisioner
from lbaas.domain import constants as c
from lbaas.domain.spec import LoadBalancerSpec
from lbaas.drivers.base import (
    AmphoraDriver,
    AmphoraSpec,
    ComputeDriver,
    ComputeInfo,
    NetworkDriver,
)
from lbaas.drivers.fleet.placement import DRAINING as FLEET_DRAINING
from lbaas.logs import REQUEST_ID
from lbaas.render import AmphoraView
from lbaas.render.bundle import bundle_digest
from lbaas.render.keepalived import KEEPALIVED_CONF
from lbaas.store import ipam, leases
from lbaas.store import tables as t
from lbaas.store.db import json_text

log = logging.getLogger(__name__)

CHILD_TABLES_DELETE_ORDER = (t.l7rule, t.l7policy, t.health_monitor, t.member, t.pool,
                             t.listener)
MONITOR_LIKE = (t.health_monitor, t.l7policy, t.l7rule)
# Each refused object is contained in at most two steps (ERROR, then left out); bounded anyway.
MAX_CONTAINED = 8
# A drained MASTER keeps answering this long after handing the VIP over (its in-flight
# requests, neighbours still on its MAC until the new MASTER's gratuitous ARP lands).
HANDOVER_GRACE = 1.0
# A pass settles on the connection it read on if it waited less than this on the data plane
# meanwhile (else on a fresh checkout, whose ping finds a connection the database dropped).
REUSE_CONNECTION_SECONDS = 2.0
# PostgreSQL: pass connections kept between passes (at most; one per concurrent pass)
KEPT_CONNECTIONS = 8


def render_bundle(aggregate: LoadBalancerSpec, amphora: AmphoraView | None = None) \
        -> tuple[dict[str, Any], str]:
    """The configuration bundle for the fake amphora driver: the aggregate itself (the same
    for both amphorae of a pair: the fake network driver gives them no VRRP addresses); the
    digest is over its JSON (orjson writes a dataclass as an object of its fields)."""
    payload = orjson.dumps(aggregate, option=orjson.OPT_SORT_KEYS, default=str)
    return {"desired": aggregate}, hashlib.sha256(payload).hexdigest()


def amphora_view(amp: Any, pair: list[Any]) -> AmphoraView | None:
    """What keepalived needs about ``amp`` (None outside ACTIVE_STANDBY); peers are the other
    amphorae's VRRP addresses on the VIP subnet, from their rows."""
    if amp.role not in (c.ROLE_MASTER, c.ROLE_BACKUP):
        return None
    return AmphoraView(role=amp.role, priority=amp.vrrp_priority or 1, vrrp_ip=amp.vrrp_ip,
                       peer_ips=tuple(a.vrrp_ip for a in pair if a.id != amp.id and a.vrrp_ip),
                       vrrp_interface=amp.vrrp_interface, vrrp_id=amp.vrrp_id or 1)


@dataclass
class Drivers:
    compute: ComputeDriver
    network: NetworkDriver
    amphora: AmphoraDriver
    # real drivers: ports, legs and certificates for each amphora (None with the fakes)
    provisioner: Provisioner | None = None
    # (aggregate, amphora view or None) -> (bundle, digest)
    render: Callable[[LoadBalancerSpec, AmphoraView | None], tuple[dict[str, Any], str]] = \
        render_bundle
    # amphora hosts (controller/fleet): started with the service, given its notify
    fleet: Any = None


class Reconciler:
    def __init__(self, engine: Engine, drivers: Drivers, holder: str | None = None,
                 lease_seconds: float = 30.0) -> None:
        self.engine = engine
        self.drivers = drivers
        self.holder = holder or f"worker-{uuid.uuid4()}"
        self.lease_seconds = lease_seconds
        self.settled_changes = 0  # passes that brought a pending load balancer to ACTIVE
        self._lb_read = aggregate.lb_read(engine.dialect.name)
        # PostgreSQL: a pass's statements run in autocommit (its writes are single
        # statements: no BEGIN and COMMIT round trips), its settle is one (``settle_pg``)
        self._pg = engine.dialect.name == "postgresql"
        self._isolation = "READ COMMITTED"
        # a build's and a retirement's writes, one statement each: autocommit there too
        self._single = engine.execution_options(isolation_level="AUTOCOMMIT") if self._pg \
            else engine
        self._kept: list[Connection] = []  # ``_pass_connection``
        # Member-subnet legs last plugged per amphora, trusted like ``active_digest``: plugging
        # costs a dozen ``ip`` calls, too slow to repeat on every member change. Kept with the
        # digest we left on the amphora: if another worker pushed since, it may have replugged.
        self._plugged: dict[str, tuple[tuple[tuple[str, str], ...], str | None]] = {}

    async def reconcile(self, lb_id: str) -> bool:
        """Return False when another worker holds the lease (caller retries later)."""
        token = REQUEST_ID.set(None)  # _reconcile_held binds the load balancer's own
        claimed = released = False
        # One connection for the lease, the read and the settle (one pool checkout and ping
        # per pass, where there were three, and on PostgreSQL none: ``_pass_connection``); no
        # transaction stays open while the pass waits.
        conn, fresh = self._pass_connection()
        try:
            try:
                claimed = leases.claim_on(conn, lb_id, self.holder, self.lease_seconds)
            except DBAPIError as exc:  # a kept connection the database dropped meanwhile
                if fresh or not exc.connection_invalidated:
                    raise
                conn.close()
                conn, fresh = self._pass_connection(kept=False)
                claimed = leases.claim_on(conn, lb_id, self.holder, self.lease_seconds)
            if not claimed:
                return False
            lb, first = self._first_read(conn, lb_id)
            conn.rollback()
            # renewed while the pass runs: only a dead worker's lease ever expires
            async with leases.keep(self.engine, lb_id, self.holder, self.lease_seconds):
                released = await self._reconcile_held(lb, first, conn)
        except leases.LeaseLost:
            log.warning("lost the lease on load balancer %s mid-pass; its new holder "
                        "finishes the work", lb_id)
        finally:
            self._put_back(conn)
            REQUEST_ID.reset(token)
            if claimed and not released:
                leases.release(self.engine, lb_id, self.holder)
        return True

    def _pass_connection(self, kept: bool = True) -> tuple[Connection, bool]:
        """A connection for one pass and whether it is fresh from the pool (pinged). On
        PostgreSQL one kept from an earlier pass when there is one (``kept``): no checkout nor
        ping; a pass finds one the database dropped at its first statement, the lease claim
        (idempotent), and claims again on a fresh one. In autocommit there."""
        if kept and self._kept:
            return self._kept.pop(), False
        conn = self.engine.connect()
        if self._pg:
            conn.execution_options(isolation_level="AUTOCOMMIT")
        return conn, True

    def _put_back(self, conn: Connection) -> None:
        if self._pg and len(self._kept) < KEPT_CONNECTIONS and not conn.closed \
                and not conn.invalidated:
            try:
                conn.rollback()  # no round trip in autocommit: only SQLAlchemy's state
                self._kept.append(conn)
                return
            except Exception:  # closed below
                pass
        conn.close()

    def close(self) -> None:
        """Return the connections kept between passes to the pool."""
        while self._kept:
            self._kept.pop().close()

    def _first_read(self, conn: Connection, lb_id: str) -> tuple[Any, _Read | None]:
        """The load balancer's row and, usually, all the rest (None: read again later)."""
        lb = read_lb(conn, self._lb_read, lb_id)
        if lb is None or lb.provider in c.NOOP_PROVIDERS or \
                lb.provisioning_status in (c.DELETED, c.PENDING_DELETE):
            return lb, None
        try:
            return lb, _read(conn, lb, set())
        except Exception:  # read again in the pass, where a failure is handled
            return lb, None

    async def _reconcile_held(self, lb: Any, first: _Read | None, conn: Connection) -> bool:
        """One pass; True when the settle transaction released the lease with it (on
        ``conn``, the pass's connection, when the pass was short)."""
        if lb is None or lb.provisioning_status == c.DELETED:
            return False
        lb_id = lb.id
        started = time.monotonic()
        REQUEST_ID.set(lb.last_request_id)  # the API call this work comes from, if any
        generation = lb.generation
        contained = containment.Contained()
        outcome = _Outcome()
        try:
            if lb.provisioning_status == c.PENDING_DELETE:
                await self._teardown(lb)
                return False
            if lb.provider not in c.NOOP_PROVIDERS:
                await self._converge_containing(lb, contained, outcome, first)
        except Exception as exc:
            log.warning("reconcile of load balancer %s failed: %s", lb_id, exc, exc_info=True)
            self._mark_failed(lb_id, lb.provisioning_status == c.PENDING_CREATE,
                              bool(contained.blamed))
            return False
        took = time.monotonic() - started
        self._settle(lb, generation, outcome, conn if took < REUSE_CONNECTION_SECONDS else None)
        return True

    # amphorae --------------------------------------------------------------------------------
    def _spec(self, lb: Any, amp_id: str, role: str, priority: int | None) -> AmphoraSpec:
        return AmphoraSpec(amphora_id=amp_id, load_balancer_id=lb.id, role=role,
                           vrrp_priority=priority, vip_address=lb.vip_address,
                           vip_subnet_id=lb.vip_subnet_id, vip_network_id=lb.vip_network_id,
                           zone=self._compute_zone(lb.availability_zone))

    def _compute_zone(self, zone_name: str | None) -> str | None:
        """The ``compute_zone`` of the load balancer's availability zone profile, if any."""
        if not zone_name:
            return None
        with self.engine.connect() as conn:
            data = conn.execute(
                select(t.availability_zone_profile.c.availability_zone_data)
                .select_from(t.availability_zone.join(
                    t.availability_zone_profile, t.availability_zone.c.availability_zone_profile_id
                    == t.availability_zone_profile.c.id))
                .where(t.availability_zone.c.name == zone_name)).scalar()
        try:
            zone = json.loads(data or "{}").get("compute_zone")
        except (ValueError, AttributeError):
            return None
        return str(zone) if zone else None

    async def _converge_containing(self, lb: Any, contained: containment.Contained,
                                   outcome: _Outcome, first: _Read | None = None) -> None:
        """Converge; when the data plane refuses an object, contain it and converge the rest
        (a load balancer being built fails whole, as upstream's create flow)."""
        for _ in range(MAX_CONTAINED):
            try:
                await self._converge(lb, outcome, contained.dropped, first)
                return
            except containment.REFUSALS as exc:
                what = None if lb.provisioning_status == c.PENDING_CREATE else \
                    self._contain(lb.id, exc, contained.dropped)
                if what is None:
                    raise
                contained.blamed.append(what)
                log.warning("load balancer %s: the data plane refused %s (%s); converging "
                            "the rest without it", lb.id, what, exc)
                first = None
        await self._converge(lb, outcome, contained.dropped)

    def _contain(self, lb_id: str, exc: Exception, dropped: set[str]) -> str | None:
        """Mark what ``exc`` blames ERROR (or leave it out); None when nothing is left to
        blame: the object a render error names, else the objects the pass was applying."""
        with self.engine.begin() as conn:
            culprit = getattr(exc, "culprit", None)
            if culprit is not None:
                what = containment.blame_culprit(conn, culprit, dropped)
                if what is not None:
                    return what
            return "the objects being changed" if _fail_pending(conn, lb_id) else None

    async def _converge(self, lb: Any, outcome: _Outcome, dropped: set[str] | None = None,
                        first: _Read | None = None) -> None:
        """Bring the amphorae to the desired configuration; ``outcome`` collects what the
        settle transaction records (``first``: the amphorae and plan already read)."""
        roles = ([(c.ROLE_MASTER, 100), (c.ROLE_BACKUP, 90)]
                 if lb.topology == c.TOPOLOGY_ACTIVE_STANDBY else [(c.ROLE_STANDALONE, None)])
        if first is None:
            with self.engine.connect() as conn:
                fresh = read_lb(conn, self._lb_read, lb.id)
                if fresh is None:
                    raise LookupError(f"load balancer {lb.id} is gone")
                first = _read(conn, fresh, dropped or set())
        amps, plan, outcome.children = first
        aggregate = plan.aggregate
        self.drivers.render(aggregate, None)  # a config that cannot render builds nothing
        healthy = {a.role: a for a in amps if not a.failover_requested
                   and a.status == c.AMPHORA_ALLOCATED}
        if lb.topology == c.TOPOLOGY_ACTIVE_STANDBY and c.ROLE_BACKUP in healthy:
            await self._hand_over(aggregate, amps)
        if lb.topology == c.TOPOLOGY_ACTIVE_STANDBY and c.ROLE_MASTER not in healthy \
                and c.ROLE_BACKUP in healthy:
            # The survivor already holds the VIP (nopreempt): it becomes the MASTER, and the
            # replacement is built as the new BACKUP.
            healthy = {c.ROLE_MASTER: self._promote(healthy[c.ROLE_BACKUP])}
        # A SINGLE amphora moved off a draining host keeps serving until its replacement
        # does (make-before-break); a failed one is retired first, as before.
        moving = [a for a in amps if lb.topology != c.TOPOLOGY_ACTIVE_STANDBY
                  and c.ROLE_STANDALONE not in healthy and a.failover_requested
                  and a.status == c.AMPHORA_ALLOCATED and self._on_draining_host(a)][:1]
        keep = {a.id for a in healthy.values()} | {a.id for a in moving}
        for amp in amps:
            if amp.id not in keep:
                await self._retire(lb, amp)
        built: set[str] = set()
        pair = [healthy.get(role) or await self._build(lb, role, priority, built)
                for role, priority in roles]
        for amp in pair:
            # per amphora: ACTIVE_STANDBY bundles differ in keepalived.conf (priority, peer)
            bundle, digest = self.drivers.render(aggregate, amphora_view(amp, pair))
            info = ComputeInfo(compute_id=amp.compute_id, lb_network_ip=amp.lb_network_ip)
            if self.drivers.provisioner is not None:
                plugs = self.drivers.provisioner.member_plugs(lb, amp.id, aggregate)
                wanted = tuple(sorted((p.subnet.subnet_id, p.address) for p in plugs))
                if self._plugged.get(amp.id) != (wanted, amp.active_digest):
                    self._plugged.pop(amp.id, None)
                    for plug in plugs:
                        await self.drivers.network.ensure_subnet(plug.subnet)
                    await self.drivers.network.plug_subnets(info, plugs)
                    self._plugged[amp.id] = (wanted, amp.active_digest)
            if amp.active_digest != digest:
                active = await self.drivers.amphora.apply(info, bundle, digest)
                # recorded by the settle transaction: if the pass fails before, the next
                # one pushes the same bundle again (harmless)
                outcome.digests[amp.id] = active
                if amp.id in self._plugged:
                    self._plugged[amp.id] = (self._plugged[amp.id][0], active)
            if amp.id in built and amp.role == c.ROLE_STANDALONE:
                # ready to serve: tell the neighbours the VIP's new MAC (keepalived does it
                # for ACTIVE_STANDBY)
                await self.drivers.network.announce_vip(
                    self._spec(lb, amp.id, amp.role, amp.vrrp_priority), info)
        for amp in moving:
            await self._retire(lb, amp)
        # every amphora serves it: the settle transaction keeps it
        outcome.accepted = None if plan.unchanged else plan.accepted

    async def _hand_over(self, aggregate: LoadBalancerSpec, amps: list[Any]) -> None:
        """A MASTER moved off a draining host hands the VIP over before it is retired
        (make-before-break): the BACKUP is sent a keepalived.conf that preempts with the
        highest priority, so it takes the VIP (and announces it) while the MASTER still holds
        it, and the MASTER steps down on its adverts; the MASTER is retired after a grace.
        Meanwhile nothing is lost at the switch: the old MASTER still serves what reaches its
        MAC (the VIP stays on its ``lo``), and the bundle's handover.nft makes the new one
        forward to it the connections it did not see start (render.keepalived)."""
        master = [a for a in amps if a.role == c.ROLE_MASTER and a.failover_requested
                  and a.status == c.AMPHORA_ALLOCATED and self._on_draining_host(a)]
        backup = [a for a in amps if a.role == c.ROLE_BACKUP and not a.failover_requested
                  and a.status == c.AMPHORA_ALLOCATED]
        if not master or not backup:
            return
        amp = backup[0]
        view = amphora_view(amp, amps)
        if view is None:
            return
        bundle, _ = self.drivers.render(aggregate, replace(view, priority=254, preempt=True))
        files = bundle.get("files")
        if not isinstance(files, dict) or KEEPALIVED_CONF not in files:
            return
        info = ComputeInfo(compute_id=amp.compute_id, lb_network_ip=amp.lb_network_ip)
        try:
            await self.drivers.amphora.apply(info, bundle, bundle_digest(files))
        except Exception as exc:  # retired as before: its priority 0 advert hands over
            log.warning("amphora %s could not take the VIP over: %s", amp.id, exc)
            return
        log.info("amphora %s (BACKUP) takes the VIP over from draining MASTER %s", amp.id,
                 master[0].id)
        await asyncio.sleep(HANDOVER_GRACE)

    def _promote(self, amp: Any) -> Any:
        with self.engine.begin() as conn:
            conn.execute(update(t.amphora).where(t.amphora.c.id == amp.id).values(
                role=c.ROLE_MASTER, vrrp_priority=100, updated_at=_now()))
            return conn.execute(select(t.amphora).where(t.amphora.c.id == amp.id)).one()

    def _on_draining_host(self, amp: Any) -> bool:
        """The amphora runs on an amphora host an operator is draining (it still serves)."""
        host, sep, _ = (amp.compute_id or "").partition("/")
        if not sep:
            return False
        with self.engine.connect() as conn:
            state = conn.execute(select(t.fleet_host.c.state).where(
                t.fleet_host.c.name == host)).scalar()
        return state == FLEET_DRAINING

    async def _build(self, lb: Any, role: str, priority: int | None,
                     built: set[str] | None = None) -> Any:
        amp_id = str(uuid.uuid4())
        if built is not None:
            built.add(amp_id)
        spec = self._spec(lb, amp_id, role, priority)
        with self._single.begin() as conn:
            conn.execute(NEW_AMPHORA, {
                "id": amp_id, "load_balancer_id": lb.id, "status": c.PENDING_CREATE,
                "role": role, "vrrp_priority": priority, "ha_ip": lb.vip_address,
                "cert_busy": False, "failover_requested": False, "created_at": _now()})
        vrrp_port_id = None
        provisioner = self.drivers.provisioner
        if provisioner is not None:
            mgmt, vip, vrrp_port_id = provisioner.base_ports(lb, amp_id)
            spec = replace(spec, mgmt=mgmt, vip=vip,
                           credentials=provisioner.credentials(amp_id, mgmt.address))
            await self.drivers.network.ensure_subnet(mgmt.subnet)
            await self.drivers.network.ensure_subnet(vip.subnet)
        compute = await self.drivers.compute.create_amphora(spec)
        plug = await self.drivers.network.plug_vip(spec, compute)
        if provisioner is not None:
            plug = replace(plug, vrrp_port_id=vrrp_port_id or plug.vrrp_port_id,
                           ha_port_id=lb.vip_port_id or plug.ha_port_id)
        values = {
            "amp_id": amp_id, "compute_id": compute.compute_id,
            "lb_network_ip": compute.lb_network_ip, "image_id": compute.image_id,
            "compute_flavor": compute.compute_flavor, "cached_zone": compute.cached_zone,
            "vrrp_ip": plug.vrrp_ip, "vrrp_port_id": plug.vrrp_port_id, "ha_ip": plug.ha_ip,
            "ha_port_id": plug.ha_port_id, "vrrp_interface": plug.vrrp_interface,
            "vrrp_id": 1 if lb.topology == c.TOPOLOGY_ACTIVE_STANDBY else None,
            "status": c.AMPHORA_ALLOCATED, "updated_at": _now()}
        with self._single.begin() as conn:
            if self.engine.dialect.update_returning:  # PostgreSQL, SQLite: one round trip
                built = conn.execute(AMPHORA_BUILT_ROW, values).one()
            else:
                conn.execute(AMPHORA_BUILT, values)
                built = conn.execute(AMPHORA_ROW, {"amp_id": amp_id}).one()
        log.info("amphora %s (%s) of load balancer %s built", amp_id, role, lb.id)
        return built

    async def _retire(self, lb: Any, amp: Any) -> None:
        self._plugged.pop(amp.id, None)
        spec = self._spec(lb, amp.id, amp.role or c.ROLE_STANDALONE, amp.vrrp_priority)
        # a build that failed after the compute was made has no compute_id recorded yet
        compute_id = amp.compute_id or self.drivers.compute.compute_id_for(amp.id)
        if compute_id:
            # Deleted before its VIP leg goes: its agent stops keepalived first, whose priority
            # 0 advert hands the VIP to the peer at once (a leg pulled first would leave the
            # peer waiting out its master-down timer: a drained MASTER cost 0.35 s).
            await self.drivers.amphora.forget(compute_id)
            await self.drivers.compute.delete_amphora(compute_id)
        await self.drivers.network.unplug_vip(spec, None)
        if self.drivers.provisioner is not None:
            self.drivers.provisioner.release_ports(amp.id)
        with self._single.begin() as conn:
            conn.execute(update(t.amphora).where(t.amphora.c.id == amp.id).values(
                status=c.DELETED, updated_at=_now()))
        log.info("amphora %s (%s) of load balancer %s retired%s", amp.id, amp.role, lb.id,
                 " (failover)" if amp.failover_requested else "")

    async def _teardown(self, lb: Any) -> None:
        with self.engine.connect() as conn:
            amps = list(conn.execute(select(t.amphora).where(
                t.amphora.c.load_balancer_id == lb.id, t.amphora.c.status != c.DELETED)))
        for amp in amps:
            await self._retire(lb, amp)
        with self.engine.begin() as conn:
            _delete_children(conn, lb.id)
            containment.forget(conn, lb.id)
            if lb.vip_port_id:
                ipam.delete_port(conn, lb.vip_port_id)
            conn.execute(delete(t.tag).where(t.tag.c.resource_id == lb.id))
            conn.execute(update(t.load_balancer).where(t.load_balancer.c.id == lb.id).values(
                provisioning_status=c.DELETED, operating_status=c.OFFLINE, updated_at=_now()))
        lifecycle.log_deleted(lb.id)

    # statuses --------------------------------------------------------------------------------
    def _settle(self, lb: Any, generation: int, outcome: _Outcome,
                conn: Connection | None = None) -> None:
        """``_settle_in`` a transaction on ``conn`` (the pass's own connection, no pool
        checkout nor ping), or on a fresh one when there is none or it turns out to be dead
        (idempotent: a settle that did commit matches nothing the second time). On
        PostgreSQL, without rows to delete, it is one statement (``settle_pg``)."""
        one = self._one_statement(lb, generation, outcome) if self._pg else None
        settled = None
        done = False
        if conn is not None:
            try:
                if one is not None:  # the pass's connection is in autocommit
                    settled = one[1] if conn.execute(*one[0]).scalar() else None
                    conn.commit()
                elif self._pg:  # out of autocommit: the settle is several statements
                    conn.rollback()
                    conn.execution_options(isolation_level=self._isolation)
                    try:
                        with conn.begin():
                            settled = self._settle_in(conn, lb, generation, outcome)
                    finally:  # the connection is kept for the next pass, in autocommit
                        if not conn.invalidated:
                            conn.execution_options(isolation_level="AUTOCOMMIT")
                else:
                    with conn.begin():
                        settled = self._settle_in(conn, lb, generation, outcome)
                done = True
            except DBAPIError as exc:
                if not exc.connection_invalidated:
                    raise
                log.warning("settling load balancer %s on a fresh connection: %s", lb.id, exc)
        if not done:
            with self.engine.begin() as fresh:
                if one is not None:
                    settled = one[1] if fresh.execute(*one[0]).scalar() else None
                else:
                    settled = self._settle_in(fresh, lb, generation, outcome)
        if settled is not None:
            self.settled_changes += lb.provisioning_status in c.PENDING_STATUSES
            lifecycle.log_settled(lb.id, lb.provisioning_status, *settled)

    def _one_statement(self, lb: Any, generation: int, outcome: _Outcome) \
            -> tuple[tuple[Any, dict[str, Any]],
                     tuple[list[lifecycle.Pending], dict[str, set[str]]]] | None:
        """The settle as one statement (and what it settles, if the load balancer does),
        None when there are rows to delete or no children read."""
        if outcome.children is None:
            return None
        writes = _status_writes(_children_as_read(outcome.children))
        if writes.doomed:
            return None
        now = _now()
        fixed: dict[str, Any] = {"lb_id": lb.id, "gen": generation, "holder": self.holder,
                                 "now": now, "active": c.ACTIVE}
        if outcome.digests:
            fixed["amp_ids"] = list(outcome.digests)
            fixed["digests"] = list(outcome.digests.values())
        if outcome.accepted is not None:
            fixed["objs"] = json_text(outcome.accepted)
        query = settle_pg.statement(bool(outcome.digests), outcome.accepted is not None,
                                    tuple(update for update, _ in writes.updates))
        return (query, settle_pg.parameters(writes.updates, **fixed)), \
            (writes.children, writes.locked)

    def _settle_in(self, conn: Connection, lb: Any, generation: int, outcome: _Outcome) \
            -> tuple[list[lifecycle.Pending], dict[str, set[str]]] | None:
        """One transaction: record what the amphorae now serve (their digests, the accepted
        configuration), settle the statuses (unless the load balancer changed meanwhile: the
        next pass settles it) and release the lease. ``lb``: its row as the pass began.

        The load balancer's row goes first: the update that makes it ACTIVE locks it, as the
        API does before changing anything under it, and matches only if no change came in
        meanwhile (``generation``) and there is something to settle — with the load balancer
        ACTIVE at its generation nothing under it is pending (every change bumps the
        generation), so a pass that found nothing to do writes nothing else. Returns what
        it settled (the pending children and the parents they locked), None if nothing."""
        lb_id = lb.id
        settling = conn.execute(SETTLE_LB, {"lb_id": lb_id, "gen": generation})\
            .rowcount == 1
        digests = [{"amp_id": amp_id, "digest": active, "now": _now()}
                   for amp_id, active in outcome.digests.items()]
        if digests:  # one row is one plain execute (executemany costs more)
            conn.execute(AMPHORA_DIGEST, digests[0] if len(digests) == 1 else digests)
        if outcome.accepted is not None and (
                settling or conn.execute(LB_EXISTS, {"lb_id": lb_id}).first() is not None):
            containment.save(conn, lb_id, outcome.accepted)
        conn.execute(RELEASE, {"lb_id": lb_id, "holder": self.holder})
        if not settling:
            return None
        # every child's status and links: as the pass read them (nothing under the load
        # balancer changed since: the update above matched at the pass's generation), else
        # one round trip; statements only where needed
        kids = _children_as_read(outcome.children) if outcome.children is not None else \
            [_Child(*row) for row in conn.execute(CHILD_STATUSES, {"lb_id": lb_id})]
        writes = _status_writes(kids)
        for table, doomed in writes.doomed:
            _remove_rows(conn, table, doomed)
        for (name, column, value), ids in writes.updates:
            conn.execute(_set_column(getattr(t, name), column), {"ids": ids, "new_value": value})
        return writes.children, writes.locked

    def _mark_failed(self, lb_id: str, lb_was_new: bool, contained: bool = False) -> None:
        """The changed objects go ERROR; parents the API only locked (PENDING_UPDATE because
        a child changed) go back to ACTIVE, as upstream's ``*ToErrorOnRevertTask`` do, so a
        refused health monitor value does not leave its pool and listener immutable."""
        with self.engine.begin() as conn:
            scope = _child_ids(conn, lb_id)
            children, locked = lifecycle.pending(conn, scope), _locked_parents(conn, scope)
            any_child = _fail_pending(conn, lb_id) or contained
            status = c.ERROR if lb_was_new or not any_child else c.ACTIVE
            conn.execute(update(t.load_balancer).where(t.load_balancer.c.id == lb_id).values(
                provisioning_status=status, applied_generation=t.load_balancer.c.generation,
                last_request_id=None))
        lifecycle.log_failed(lb_id, status, children, locked)


def _fail_pending(conn: Connection, lb_id: str) -> bool:
    """Pending children go ERROR, parents the API only locked go back to ACTIVE; whether any
    child went ERROR."""
    scope = _child_ids(conn, lb_id)
    locked = _locked_parents(conn, scope)
    any_child = False
    for table in (t.listener, t.pool, t.member, *MONITOR_LIKE):
        ids = scope[table.name]
        if not ids:
            continue
        pending = table.c.provisioning_status.in_(c.PENDING_STATUSES)
        parents = locked.get(table.name, set())
        if parents:
            conn.execute(update(table).where(table.c.id.in_(parents), pending)
                         .values(provisioning_status=c.ACTIVE))
        any_child |= bool(conn.execute(
            update(table).where(table.c.id.in_(ids), pending)
            .values(provisioning_status=c.ERROR)).rowcount)
    return any_child


def _locked_parents(conn: Connection, scope: dict[str, list[str]]) -> dict[str, set[str]]:
    """PENDING_UPDATE pools, policies and listeners with a pending child (member, monitor,
    rule, policy or pool): the API marked them only to lock them."""

    def pending(table: Any, *columns: Any) -> list[Any]:
        ids = scope[table.name]
        if not ids:
            return []
        return list(conn.execute(select(table.c.id, table.c.provisioning_status, *columns)
                                 .where(table.c.id.in_(ids),
                                        table.c.provisioning_status.in_(c.PENDING_STATUSES))))

    pools = pending(t.pool)
    policies = pending(t.l7policy, t.l7policy.c.listener_id)
    busy_pools = {r.pool_id for r in (*pending(t.member, t.member.c.pool_id),
                                      *pending(t.health_monitor, t.health_monitor.c.pool_id))}
    busy_policies = {r.l7policy_id for r in pending(t.l7rule, t.l7rule.c.l7policy_id)}
    pending_pools = {r.id for r in pools}
    busy_listeners = {r.listener_id for r in policies}
    for row in pending(t.listener, t.listener.c.default_pool_id):
        if row.default_pool_id in pending_pools:
            busy_listeners.add(row.id)
    if pending_pools and scope["listener"]:
        busy_listeners |= {r[0] for r in conn.execute(select(t.l7policy.c.listener_id).where(
            t.l7policy.c.listener_id.in_(scope["listener"]),
            t.l7policy.c.redirect_pool_id.in_(pending_pools)))}

    def locked(rows: list[Any], busy: set[str]) -> set[str]:
        return {r.id for r in rows if r.id in busy and r.provisioning_status == c.PENDING_UPDATE}

    return {"pool": locked(pools, busy_pools), "l7policy": locked(policies, busy_policies),
            "listener": locked(pending(t.listener), busy_listeners)}


# live amphorae, what to render and keep, every child row (``aggregate.read_children``)
_Read = tuple[list[Any], containment.Plan, aggregate.Rows]


def _read(conn: Connection, lb: Any, dropped: set[str]) -> _Read:
    """``lb``: the load balancer's row from ``aggregate.read_lb``, read just now on ``conn``."""
    children = aggregate.children_of(conn, lb)
    plan = containment.plan(aggregate.lb_plain(lb), aggregate.live(children),
                            lb._mapping[aggregate.ACCEPTED], dropped)
    amps = aggregate.amphorae_of(lb)
    if amps is None:
        amps = list(conn.execute(LIVE_AMPHORAE, {"lb_id": lb.id}))
    return amps, plan, children


@dataclass
class _Outcome:
    """What a pass leaves for its settle transaction to record."""

    digests: dict[str, str] = field(default_factory=dict)  # amphora id -> active digest
    accepted: containment.Objects | None = None  # the configuration to keep (None: kept)
    children: aggregate.Rows | None = None  # every child row, as the pass last read them


class _Child(NamedTuple):
    """One object under a load balancer, as the settle step needs it."""

    table: str
    id: str
    status: str  # provisioning status
    operating: str
    admin_up: bool
    parent: str | None  # member, monitor: pool; policy: listener; rule: policy
    pool: str | None  # listener: default pool; policy: redirect pool


# (parent, pool) columns of each child table, as CHILD_STATUSES returns them
_CHILD_LINKS = {"listener": (None, "default_pool_id"), "pool": (None, None),
                "member": ("pool_id", None), "health_monitor": ("pool_id", None),
                "l7policy": ("listener_id", "redirect_pool_id"), "l7rule": ("l7policy_id", None)}


def _children_as_read(rows: aggregate.Rows) -> list[_Child]:
    """``_Child`` rows (as ``CHILD_STATUSES`` reads them) from the rows the pass read."""
    return [_Child(name, r["id"], r["provisioning_status"], r["operating_status"],
                   bool(r["admin_state_up"]), r[parent] if parent else None,
                   r[pool] if pool else None)
            for name, (parent, pool) in _CHILD_LINKS.items() for r in rows.get(name, ())]


def _locked_among(kids: list[_Child]) -> dict[str, set[str]]:
    """``_locked_parents`` from the rows ``CHILD_STATUSES`` read: PENDING_UPDATE pools,
    policies and listeners with a pending child, which the API marked only to lock them."""
    pending = [k for k in kids if k.status in c.PENDING_STATUSES]
    pending_pools = {k.id for k in pending if k.table == "pool"}
    busy = {
        "pool": {k.parent for k in pending if k.table in ("member", "health_monitor")},
        "l7policy": {k.parent for k in pending if k.table == "l7rule"},
        "listener": {k.parent for k in pending if k.table == "l7policy"}
        | {k.id for k in pending if k.table == "listener" and k.pool in pending_pools}
        | {k.parent for k in kids if k.table == "l7policy" and k.pool in pending_pools},
    }
    return {name: {k.id for k in pending if k.table == name and k.id in ids
                   and k.status == c.PENDING_UPDATE} for name, ids in busy.items()}


class _StatusWrites(NamedTuple):
    """What settling a load balancer writes under it, from its children's rows."""

    children: list[lifecycle.Pending]  # the pending children (for the INFO lines)
    locked: dict[str, set[str]]  # parents the API only locked
    doomed: list[tuple[Any, list[str]]]  # (table, ids) to delete, in CHILD_TABLES_DELETE_ORDER
    updates: list[tuple[settle_pg.Update, list[str]]]  # ((table, column, value), ids)


def _status_writes(kids: list[_Child]) -> _StatusWrites:
    scope: dict[str, list[tuple[str, str]]] = {table.name: []
                                               for table in CHILD_TABLES_DELETE_ORDER}
    for kid in kids:
        scope[kid.table].append((kid.id, kid.status))
    children = lifecycle.pending_of(scope)
    locked = _locked_among(kids) if children else {}
    doomed = [(table, ids) for table in CHILD_TABLES_DELETE_ORDER
              if (ids := [i for i, status in scope[table.name] if status == c.PENDING_DELETE])]
    updates: list[tuple[settle_pg.Update, list[str]]] = []
    for table in (t.listener, t.pool, t.member, *MONITOR_LIKE):
        pending = [i for i, status in scope[table.name]
                   if status in (c.PENDING_CREATE, c.PENDING_UPDATE)]
        if pending:
            updates.append(((table.name, "provisioning_status", c.ACTIVE), pending))
        if table in MONITOR_LIKE:  # ONLINE or OFFLINE with admin_state_up
            for wanted in (c.ONLINE, c.OFFLINE):
                ids = [k.id for k in kids if k.table == table.name
                       and k.status != c.PENDING_DELETE
                       and (c.ONLINE if k.admin_up else c.OFFLINE) == wanted
                       and k.operating != wanted]
                if ids:
                    updates.append(((table.name, "operating_status", wanted), ids))
    return _StatusWrites(children, locked, doomed, updates)


def _build_child_statuses() -> Any:
    """Every object under load balancer ``:lb_id`` as a ``_Child`` row (one statement,
    built once)."""
    from sqlalchemy import String, cast, literal, null, union_all

    lb_id = bindparam("lb_id")
    listeners = select(t.listener.c.id).where(t.listener.c.load_balancer_id == lb_id)
    pools = select(t.pool.c.id).where(t.pool.c.load_balancer_id == lb_id)
    policies = select(t.l7policy.c.id).where(t.l7policy.c.listener_id.in_(listeners))
    nothing = cast(null(), String)

    def rows(table: Any, where: Any, parent: Any = nothing, pool: Any = nothing) -> Any:
        return select(literal(table.name), table.c.id, table.c.provisioning_status,
                      table.c.operating_status, table.c.admin_state_up,
                      parent, pool).where(where)

    return union_all(
        rows(t.listener, t.listener.c.load_balancer_id == lb_id,
             pool=t.listener.c.default_pool_id),
        rows(t.pool, t.pool.c.load_balancer_id == lb_id),
        rows(t.member, t.member.c.pool_id.in_(pools), t.member.c.pool_id),
        rows(t.health_monitor, t.health_monitor.c.pool_id.in_(pools),
             t.health_monitor.c.pool_id),
        rows(t.l7policy, t.l7policy.c.listener_id.in_(listeners), t.l7policy.c.listener_id,
             t.l7policy.c.redirect_pool_id),
        rows(t.l7rule, t.l7rule.c.l7policy_id.in_(policies), t.l7rule.c.l7policy_id))


CHILD_STATUSES = _build_child_statuses()
_LB_ID = bindparam("lb_id")
LB_EXISTS = select(t.load_balancer.c.id).where(t.load_balancer.c.id == _LB_ID)
SETTLE_LB = update(t.load_balancer).where(
    t.load_balancer.c.id == _LB_ID, t.load_balancer.c.generation == bindparam("gen"),
    or_(t.load_balancer.c.provisioning_status != c.ACTIVE,
        t.load_balancer.c.applied_generation != bindparam("gen"))).values(
    provisioning_status=c.ACTIVE, applied_generation=bindparam("gen"),
    last_request_id=None)
LIVE_AMPHORAE = select(t.amphora).where(t.amphora.c.load_balancer_id == _LB_ID,
                                        t.amphora.c.status != c.DELETED)
# a build's two writes (parameters: the column names; the update's amphora: ``amp_id``)
NEW_AMPHORA = t.amphora.insert()
AMPHORA_BUILT = update(t.amphora).where(t.amphora.c.id == bindparam("amp_id")).values({
    name: bindparam(name) for name in (
        "compute_id", "lb_network_ip", "image_id", "compute_flavor", "cached_zone", "vrrp_ip",
        "vrrp_port_id", "ha_ip", "ha_port_id", "vrrp_interface", "vrrp_id", "status",
        "updated_at")})
AMPHORA_BUILT_ROW = AMPHORA_BUILT.returning(*t.amphora.c)
AMPHORA_ROW = select(t.amphora).where(t.amphora.c.id == bindparam("amp_id"))
AMPHORA_DIGEST = update(t.amphora).where(t.amphora.c.id == bindparam("amp_id")).values(
    active_digest=bindparam("digest"), updated_at=bindparam("now"))
RELEASE = delete(t.lease).where(t.lease.c.load_balancer_id == _LB_ID,
                                t.lease.c.holder == bindparam("holder"))


@functools.cache
def _set_column(table: Any, column: str) -> Any:
    """``UPDATE table SET column = :new_value WHERE id IN :ids``, built once per table."""
    return update(table).where(table.c.id.in_(bindparam("ids", expanding=True)))\
        .values({column: bindparam("new_value")})


def _child_ids(conn: Connection, lb_id: str) -> dict[str, list[str]]:
    listeners = [r[0] for r in conn.execute(select(t.listener.c.id).where(
        t.listener.c.load_balancer_id == lb_id))]
    pools = [r[0] for r in conn.execute(select(t.pool.c.id).where(
        t.pool.c.load_balancer_id == lb_id))]
    members = [r[0] for r in conn.execute(select(t.member.c.id).where(
        t.member.c.pool_id.in_(pools)))] if pools else []
    hms = [r[0] for r in conn.execute(select(t.health_monitor.c.id).where(
        t.health_monitor.c.pool_id.in_(pools)))] if pools else []
    policies = [r[0] for r in conn.execute(select(t.l7policy.c.id).where(
        t.l7policy.c.listener_id.in_(listeners)))] if listeners else []
    rules = [r[0] for r in conn.execute(select(t.l7rule.c.id).where(
        t.l7rule.c.l7policy_id.in_(policies)))] if policies else []
    return {"listener": listeners, "pool": pools, "member": members, "health_monitor": hms,
            "l7policy": policies, "l7rule": rules}


def _remove_rows(conn: Connection, table: Any, ids: list[str]) -> None:
    """Delete rows and everything that hangs off them."""
    if table is t.l7policy:
        conn.execute(delete(t.l7rule).where(t.l7rule.c.l7policy_id.in_(ids)))
        _reposition_after_delete(conn, ids)
    if table is t.pool:
        children = select(t.member.c.id).where(t.member.c.pool_id.in_(ids)).union_all(
            select(t.health_monitor.c.id).where(t.health_monitor.c.pool_id.in_(ids)))
        conn.execute(delete(t.tag).where(t.tag.c.resource_id.in_(children)))
        conn.execute(delete(t.member).where(t.member.c.pool_id.in_(ids)))
        conn.execute(delete(t.health_monitor).where(t.health_monitor.c.pool_id.in_(ids)))
        conn.execute(update(t.listener).where(t.listener.c.default_pool_id.in_(ids))
                     .values(default_pool_id=None))
    if table is t.listener:
        policies = [r[0] for r in conn.execute(select(t.l7policy.c.id).where(
            t.l7policy.c.listener_id.in_(ids)))]
        if policies:
            conn.execute(delete(t.l7rule).where(t.l7rule.c.l7policy_id.in_(policies)))
            conn.execute(delete(t.l7policy).where(t.l7policy.c.id.in_(policies)))
            conn.execute(delete(t.tag).where(t.tag.c.resource_id.in_(policies)))
        conn.execute(delete(t.listener_statistics).where(
            t.listener_statistics.c.listener_id.in_(ids)))
    conn.execute(delete(t.tag).where(t.tag.c.resource_id.in_(ids)))
    conn.execute(delete(table).where(table.c.id.in_(ids)))


def _reposition_after_delete(conn: Connection, policy_ids: list[str]) -> None:
    listeners = {r[0] for r in conn.execute(select(t.l7policy.c.listener_id).where(
        t.l7policy.c.id.in_(policy_ids)))}
    conn.execute(delete(t.l7policy).where(t.l7policy.c.id.in_(policy_ids)))
    for listener_id in listeners:
        rows = conn.execute(select(t.l7policy.c.id).where(
            t.l7policy.c.listener_id == listener_id).order_by(t.l7policy.c.position))
        for pos, (pid,) in enumerate(rows, start=1):
            conn.execute(update(t.l7policy).where(t.l7policy.c.id == pid).values(position=pos))


def _delete_children(conn: Connection, lb_id: str) -> None:
    scope = _child_ids(conn, lb_id)
    for table in CHILD_TABLES_DELETE_ORDER:
        if scope[table.name]:
            _remove_rows(conn, table, scope[table.name])


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC).replace(tzinfo=None)
