"""The controller's view of its amphora hosts, kept by polling each host-agent.

Every ``poll_interval`` each host-agent is asked ``GET /v1/host``: its name, zone, capacity,
amphorae and segments (VNIs). The host-agents are those of ``[fleet] hosts`` and those that
registered themselves (``registration.py``: rows of ``fleet_host`` with a port), followed on
every pass, so every worker polls a newly registered host within a poll interval. A pass reads
only the rows registered since the last one, the hosts not ENABLED, and a count (all the
registered rows again only when the count says one went or one came that the read missed):
not the whole table.
From the answers the controller
- records the hosts in the ``fleet_host`` table (``lbaas host list``), reading back the
  operator's state (``lbaas host drain|enable``);
- keeps the overlay's flood lists, as Neutron's l2population: every host gets, per segment it
  has, the underlay addresses of the controller and of the other live hosts with that segment;
  the controller's own segments get the hosts that have them;
- declares a host lost when it has not answered for ``host_timeout``: its amphorae are flagged
  for failover at once (the health manager would notice their silence too, later), and the
  reconciler rebuilds them on other hosts;
- moves amphorae off a DRAINING host, one load balancer at a time (an ACTIVE_STANDBY pair's
  BACKUP first, so the VIP never moves twice);
- deletes amphorae that no live row claims (a lost host back, a build whose controller died),
  every ``SWEEP_INTERVAL`` and when a lost host answers again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update

from lbaas.controller.fleet.registration import RegistrationListener
from lbaas.domain import constants as c
from lbaas.drivers.fleet import placement, wire
from lbaas.drivers.fleet.client import HostClient
from lbaas.drivers.fleet.placement import DRAINING, ENABLED, Candidate
from lbaas.drivers.local.overlay import OverlayNetwork
from lbaas.store import tables as t
from lbaas.store.failover import request_failover

log = logging.getLogger("lbaas.fleet")

DB_REFRESH = 2.0  # seconds between last_seen writes of an unchanged host
SWEEP_INTERVAL = 30.0  # seconds between looks for amphorae no live row claims
PUSH_TIMEOUT = 1.0  # seconds a flood-list update may take (the next pass retries)
REPAIR_INTERVAL = 10.0  # seconds between looks for load balancers short of amphorae
# registrations are read from (newest registered_at seen - REGISTERED_SLACK): a row committed
# late with an earlier timestamp (another worker's listener) is still seen; and whole every
# REGISTERED_FULL_READ seconds, whatever happened
REGISTERED_SLACK = timedelta(seconds=10)
REGISTERED_FULL_READ = 30.0
_REGISTERED = (t.fleet_host.c.registered_at.is_not(None), t.fleet_host.c.port > 0)


@dataclass
class HostView:
    endpoint: str  # ADDRESS:PORT of its host-agent
    name: str = ""  # as it answers; "" until it has
    expected: str = ""  # a registered host: the name it registered (its answers must carry it)
    zone: str = ""
    capacity: int = 0
    address: str = ""
    amphorae: list[dict[str, Any]] = field(default_factory=list)
    segments: set[int] = field(default_factory=set)
    last_ok: float = 0.0  # monotonic time of its last answer
    state: str = ENABLED
    written: float = 0.0
    recorded: dict[str, Any] | None = None  # the values last written to its row
    pushed: dict[int, list[str]] | None = None  # flood lists it has
    poller: asyncio.Task[None] | None = field(default=None, repr=False, compare=False)

    def live(self, timeout: float) -> bool:
        return bool(self.name) and time.monotonic() - self.last_ok < timeout


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Fleet:
    def __init__(self, engine: Engine, client: HostClient, endpoints: tuple[str, ...],
                 overlay: OverlayNetwork, poll_interval: float = 0.5,
                 host_timeout: float = 1.5, registration: RegistrationListener | None = None,
                 ) -> None:
        self.engine = engine
        self.client = client
        self.overlay = overlay
        self.poll_interval = poll_interval
        self.host_timeout = host_timeout
        self.hosts = [HostView(endpoint=e) for e in endpoints]
        self.registration = registration
        self.pending: dict[str, tuple[str, str]] = {}  # amphora id -> (host, lb id) in build
        self.notify: Callable[[str], Any] | None = None
        self._lost: set[str] = set()
        self._misnamed: set[str] = set()  # endpoints that answered with another host's name
        self._stuck: set[tuple[str, str]] = set()  # (host, amphora) a drain had to leave
        self._sweeps: set[asyncio.Future[None]] = set()
        self._swept = time.monotonic()  # the first sweep waits a period (builds in flight)
        self._repaired = time.monotonic()
        self._tasks: list[asyncio.Task[None]] = []
        self._flood_lock = asyncio.Lock()
        self._controller_flood: dict[int, list[str]] | None = None
        self._registered: set[str] = set()  # names of the registered rows
        self._registered_since: datetime | None = None  # None: read them all
        self._registered_read = time.monotonic()

    # lookups ---------------------------------------------------------------------------------
    def by_name(self, name: str) -> HostView | None:
        return next((h for h in self.hosts if h.name == name), None)

    def live(self, host: HostView) -> bool:
        return host.live(self.host_timeout)

    def answering(self, host: HostView) -> bool:
        """It answered one of its last three polls: a stricter test than ``live`` (a host
        that has just died is still live for ``host_timeout``), for what must not wait on a
        dead host: placement, deletes."""
        return host.live(min(self.host_timeout, 3 * self.poll_interval + 0.3))

    def fresh(self, host: HostView) -> bool:
        """It answered one of its last two polls: a host that missed more is dying or very
        slow, and a failover must not wait for its answer (``FleetCompute.delete_amphora``)."""
        return host.live(min(self.host_timeout, 2 * self.poll_interval + 0.1))

    def candidates(self, fresh: bool = False) -> list[Candidate]:
        """``fresh``: only hosts that answered one of their last two polls count as live."""
        building: dict[str, int] = {}
        for host, _ in self.pending.values():
            building[host] = building.get(host, 0) + 1
        return [Candidate(name=h.name, zone=h.zone, capacity=h.capacity,
                          load=len(h.amphorae) + building.get(h.name, 0),
                          live=self.fresh(h) if fresh else self.answering(h),
                          state=h.state) for h in self.hosts if h.name]

    def hosts_of_lb(self, lb_id: str, besides: str) -> set[str]:
        """Hosts holding (or building) another amphora of the load balancer."""
        found = {host for amp, (host, lb) in self.pending.items() if lb == lb_id
                 and amp != besides}
        for h in self.hosts:
            if any(a.get("load_balancer_id") == lb_id and a.get("amphora_id") != besides
                   for a in h.amphorae):
                found.add(h.name)
        with self.engine.connect() as conn:
            for row in conn.execute(select(t.amphora.c.id, t.amphora.c.compute_id).where(
                    t.amphora.c.load_balancer_id == lb_id, t.amphora.c.status != c.DELETED,
                    t.amphora.c.id != besides)):
                if row.compute_id and "/" in row.compute_id:
                    found.add(wire.split_compute_id(row.compute_id)[0])
        return found

    def host_of_amphora(self, amphora_id: str) -> HostView | None:
        for h in self.hosts:
            if any(a.get("amphora_id") == amphora_id for a in h.amphorae):
                return h
        return None

    # the loop --------------------------------------------------------------------------------
    def start(self, notify: Callable[[str], Any] | None) -> None:
        self.notify = notify
        if not self._tasks:
            # one poller per host: a host that does not answer never delays the others
            for host in self.hosts:
                self._start_poller(host)
            self._tasks.append(asyncio.create_task(self._run()))
            if self.registration is not None:
                self._tasks.append(asyncio.create_task(self._listen(self.registration)))

    def _start_poller(self, host: HostView) -> None:
        host.poller = asyncio.create_task(self._poll_forever(host))

    async def stop(self) -> None:
        tasks = [*self._tasks, *(h.poller for h in self.hosts if h.poller is not None)]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks = []
        for host in self.hosts:
            host.poller = None
        await self.client.aclose()

    async def _listen(self, listener: RegistrationListener) -> None:
        try:
            await listener.start()
        except OSError as exc:  # the hosts already registered are still polled
            log.error("registration listener on %s:%d: %s", *listener.listen, exc)
            return
        try:
            await asyncio.Event().wait()
        finally:
            await listener.stop()

    async def _poll_forever(self, host: HostView) -> None:
        while True:
            started = time.monotonic()
            await self._poll(host)
            await asyncio.sleep(max(0.0, self.poll_interval - (time.monotonic() - started)))

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.act()
            except Exception:  # the loop must survive anything one pass meets
                log.exception("fleet pass failed")
            await asyncio.sleep(max(0.0, self.poll_interval - (time.monotonic() - started)))

    async def poll_once(self) -> None:
        """Ask every host once, then act on the answers (tests, start-up)."""
        await asyncio.gather(*(self._poll(h) for h in self.hosts))
        await self.act()

    async def act(self) -> None:
        now = time.monotonic()
        if now - self._swept > SWEEP_INTERVAL:
            self._swept = now
            for host in self.hosts:
                if self.live(host) and host.amphorae:
                    self.spawn(self._sweep(host))
        if now - self._repaired > REPAIR_INTERVAL:
            self._repaired = now
            self._repair()
        self._record()
        await self.sync_flood()
        self._fail_over_lost()
        self._drain()

    async def _poll(self, host: HostView) -> None:
        try:
            data = await self.client.call(host.endpoint, "GET", wire.HOST_PATH,
                                          timeout=self.host_timeout)
        except Exception as exc:  # HostUnreachable, DriverError: it is down for now
            if host.name and host.name not in self._lost and not self.live(host):
                log.warning("amphora host %s (%s) does not answer: %s", host.name,
                            host.endpoint, exc)
            return
        self.update(host, data)

    def update(self, host: HostView, data: dict[str, Any]) -> None:
        if host.expected and str(data["name"]) != host.expected:
            # another host-agent at the registered address: never take it for this host
            if host.endpoint not in self._misnamed:
                self._misnamed.add(host.endpoint)
                log.warning("host-agent at %s answers as %r, registered as %r: ignored",
                            host.endpoint, data["name"], host.expected)
            return
        host.name = str(data["name"])
        host.zone = str(data.get("zone", ""))
        host.capacity = int(data.get("capacity", 0))
        host.address = str(data.get("address", ""))
        host.amphorae = list(data.get("amphorae", []))
        host.segments = {int(v) for v in data.get("segments", [])}
        host.last_ok = time.monotonic()
        if host.name in self._lost:
            self._lost.discard(host.name)
            log.warning("amphora host %s answers again", host.name)
            self.spawn(self._sweep(host))

    def spawn(self, work: Any) -> None:
        """Run ``work`` in the background (kept until done; ``stop`` does not wait)."""
        task = asyncio.ensure_future(work)
        self._sweeps.add(task)
        task.add_done_callback(self._sweeps.discard)

    def _record(self) -> None:
        """Upsert the hosts' rows; read back the operator's state."""
        now = time.monotonic()
        with self.engine.begin() as conn:
            self._follow_registrations(conn)
            states = {r.name: r.state for r in conn.execute(
                select(t.fleet_host.c.name, t.fleet_host.c.state)
                .where(t.fleet_host.c.state != ENABLED))}
            for h in self.hosts:
                if not h.name:
                    continue
                h.state = states.get(h.name, ENABLED)
                if not self.live(h):
                    continue
                values: dict[str, Any] = {"zone": h.zone, "capacity": h.capacity,
                                          "amphorae": len(h.amphorae)}
                if not h.expected:  # a registered host's address is its registration's
                    values["address"] = h.address
                if values == h.recorded and now - h.written <= DB_REFRESH:
                    continue
                if not conn.execute(update(t.fleet_host).where(t.fleet_host.c.name == h.name)
                                    .values(last_seen=_now(), **values)).rowcount:
                    conn.execute(t.fleet_host.insert().values(
                        name=h.name, state=ENABLED, last_seen=_now(), **values))
                h.recorded, h.written = values, now

    def _follow_registrations(self, conn: Connection) -> None:
        """Poll every registered host (new ones, new addresses); forget those whose row was
        removed (``lbaas host remove``). A configured host of the same name wins."""
        if time.monotonic() - self._registered_read > REGISTERED_FULL_READ:
            self._registered_since = None
        self._read_registered(conn)
        count = conn.execute(select(func.count()).select_from(t.fleet_host)
                             .where(*_REGISTERED)).scalar_one()
        if count != len(self._registered):  # a row went, or one came that the read missed
            self._registered_since = None
            self._read_registered(conn)
        for view in [h for h in self.hosts if h.expected and h.expected not in self._registered]:
            log.warning("amphora host %s removed: no longer polled", view.expected)
            if view.poller is not None:
                view.poller.cancel()
            self.hosts.remove(view)
            self._lost.discard(view.expected)

    def _read_registered(self, conn: Connection) -> None:
        """Follow the registered rows: all of them when ``_registered_since`` is None, else
        those registered since then."""
        query = select(t.fleet_host).where(*_REGISTERED)
        if self._registered_since is None:
            self._registered_read = time.monotonic()
            self._registered = set()
        else:
            query = query.where(t.fleet_host.c.registered_at >= self._registered_since)
        for row in conn.execute(query):
            self._registered.add(row.name)
            since = row.registered_at - REGISTERED_SLACK
            if self._registered_since is None or since > self._registered_since:
                self._registered_since = since
            self._follow(row)

    def _follow(self, row: Any) -> None:
        """A registered row: poll it (a new host) or follow its new address."""
        endpoint = f"{row.address}:{row.port}"
        view = next((h for h in self.hosts if row.name in (h.expected, h.name)
                     or h.endpoint == endpoint), None)
        if view is None:
            view = HostView(endpoint=endpoint, expected=row.name)
            self.hosts.append(view)
            log.info("amphora host %s registered at %s: polling it", row.name, endpoint)
            if self._tasks:
                self._start_poller(view)
        elif view.expected and view.endpoint != endpoint:
            log.warning("amphora host %s moved from %s to %s", row.name, view.endpoint,
                        endpoint)
            view.endpoint, view.pushed = endpoint, None

    # overlay ---------------------------------------------------------------------------------
    async def sync_flood(self) -> None:
        """Flood lists for every answering host and for the controller (l2population). The
        pushes run outside the lock, each bounded by ``PUSH_TIMEOUT``: a host that has just
        died must not hold up a build waiting for its lists."""
        async with self._flood_lock:
            live = [h for h in self.hosts if self.live(h) and h.address]
            mine = set((await self.overlay.segments()).keys())
            me = self.overlay.local_ip
            ours = {vni: sorted(h.address for h in live if vni in h.segments) for vni in mine}
            if ours != self._controller_flood:
                await self.overlay.sync_flood(ours)
                self._controller_flood = ours
            pushes = []
            for h in live:
                lists = {vni: sorted([me] * (vni in mine) + [o.address for o in live
                                     if o is not h and vni in o.segments])
                         for vni in h.segments}
                # only to a host that answered lately: a build must not wait up to
                # PUSH_TIMEOUT on one that has just died (the next pass retries)
                if lists != h.pushed and self.fresh(h):
                    pushes.append(self._push(h, lists))
        await asyncio.gather(*pushes)

    async def _push(self, host: HostView, lists: dict[int, list[str]]) -> None:
        try:
            await self.client.call(host.endpoint, "PUT", wire.FLOOD_PATH,
                                   {str(k): v for k, v in lists.items()}, timeout=PUSH_TIMEOUT)
            host.pushed = lists
        except Exception as exc:
            log.warning("cannot update the flood lists of host %s: %s", host.name, exc)

    # lost hosts and drains -------------------------------------------------------------------
    def _amphorae_on(self, host: str) -> list[Any]:
        with self.engine.connect() as conn:
            return [r for r in conn.execute(
                select(t.amphora.c.id, t.amphora.c.load_balancer_id, t.amphora.c.role,
                       t.amphora.c.compute_id, t.amphora.c.failover_requested).where(
                    t.amphora.c.status == c.AMPHORA_ALLOCATED,
                    t.amphora.c.compute_id.like(f"{host}/%")))]

    def _flag(self, amphora_id: str, lb_id: str) -> None:
        if request_failover(self.engine, amphora_id, lb_id) and self.notify is not None:
            self.notify(lb_id)

    def _fail_over_lost(self) -> None:
        for h in self.hosts:
            if not h.name or self.live(h) or h.name in self._lost:
                continue
            self._lost.add(h.name)
            amps = self._amphorae_on(h.name)
            log.warning("amphora host %s is lost: failing over its %d amphorae", h.name,
                        len(amps))
            for amp in amps:
                self._flag(amp.id, amp.load_balancer_id)

    def _drain(self) -> None:
        for h in self.hosts:
            if h.state != DRAINING or not self.live(h):
                continue
            amps = self._amphorae_on(h.name)
            if any(a.failover_requested for a in amps):
                continue  # one at a time
            busy = self._lbs_in_flight()
            for amp in sorted(amps, key=lambda a: a.role != c.ROLE_BACKUP):
                if amp.load_balancer_id in busy:
                    continue
                try:  # only what another host can take: a drain must not break a pair
                    placement.choose(self.candidates(), self._zone_of(amp.load_balancer_id),
                                     self.hosts_of_lb(amp.load_balancer_id, amp.id))
                except placement.NoHost as exc:
                    if (h.name, amp.id) not in self._stuck:
                        self._stuck.add((h.name, amp.id))
                        log.warning("draining host %s: amphora %s stays: %s", h.name, amp.id,
                                    exc)
                    continue
                log.info("draining host %s: moving amphora %s (%s)", h.name, amp.id, amp.role)
                self._flag(amp.id, amp.load_balancer_id)
                return

    def _zone_of(self, lb_id: str) -> str | None:
        """The compute_zone the load balancer's amphorae must stay in (its availability
        zone's profile), as the reconciler reads it."""
        with self.engine.connect() as conn:
            data = conn.execute(
                select(t.availability_zone_profile.c.availability_zone_data)
                .select_from(t.load_balancer.join(
                    t.availability_zone,
                    t.load_balancer.c.availability_zone == t.availability_zone.c.name)
                    .join(t.availability_zone_profile,
                          t.availability_zone.c.availability_zone_profile_id
                          == t.availability_zone_profile.c.id))
                .where(t.load_balancer.c.id == lb_id)).scalar()
        try:
            zone = json.loads(data or "{}").get("compute_zone")
        except (ValueError, AttributeError):
            return None
        return str(zone) if zone else None

    def _repair(self) -> None:
        """Load balancers left with fewer amphorae than their topology needs (a failover that
        found no host: every host was busy, slow or down at that moment) are reconciled again
        once a host can take an amphora, instead of staying broken in ERROR."""
        if not any(cand.live and cand.state == ENABLED and cand.load < cand.capacity
                   for cand in self.candidates()):
            return
        lb, a = t.load_balancer, t.amphora
        with self.engine.connect() as conn:
            rows = list(conn.execute(select(lb.c.id, lb.c.topology).where(
                lb.c.provisioning_status.in_([c.ACTIVE, c.ERROR]),
                lb.c.provider.not_in(c.NOOP_PROVIDERS))))
            serving: dict[str, int] = {}
            for r in conn.execute(select(a.c.load_balancer_id).where(
                    a.c.status == c.AMPHORA_ALLOCATED, a.c.failover_requested.is_(False))):
                serving[r.load_balancer_id] = serving.get(r.load_balancer_id, 0) + 1
        for row in rows:
            needed = 2 if row.topology == c.TOPOLOGY_ACTIVE_STANDBY else 1
            if serving.get(row.id, 0) < needed:
                log.warning("load balancer %s has %d of its %d amphorae: rebuilding", row.id,
                            serving.get(row.id, 0), needed)
                with self.engine.begin() as conn:
                    conn.execute(update(lb).where(lb.c.id == row.id).values(
                        generation=lb.c.generation + 1))
                    conn.execute(update(lb).where(
                        lb.c.id == row.id, lb.c.provisioning_status == c.ERROR)
                        .values(provisioning_status=c.PENDING_UPDATE))
                if self.notify is not None:
                    self.notify(row.id)

    def _lbs_in_flight(self) -> set[str]:
        with self.engine.connect() as conn:
            return {r.load_balancer_id for r in conn.execute(
                select(t.amphora.c.load_balancer_id).where(
                    t.amphora.c.status == c.AMPHORA_ALLOCATED,
                    t.amphora.c.failover_requested.is_(True)))}

    async def _sweep(self, host: HostView) -> None:
        """Delete the host's amphorae that no live row claims: left on a lost host that came
        back, or by a build whose controller died before recording it. Judged by amphora id
        (the row exists before its amphora is built), never by compute_id."""
        with self.engine.connect() as conn:
            live = {r.id for r in conn.execute(select(t.amphora.c.id).where(
                t.amphora.c.status != c.DELETED))}
        for amp in list(host.amphorae):
            cid, amp_id = str(amp.get("compute_id", "")), str(amp.get("amphora_id", ""))
            if not cid or amp_id in live or amp_id in self.pending:
                continue
            _, ns = wire.split_compute_id(cid)
            try:
                await self.client.call(host.endpoint, "DELETE", f"{wire.AMPHORAE_PATH}/{ns}")
                host.amphorae = [a for a in host.amphorae if a.get("compute_id") != cid]
                log.info("removed amphora %s left on host %s (no live row)", ns, host.name)
            except Exception as exc:
                log.warning("cannot remove amphora %s from host %s: %s", ns, host.name, exc)
