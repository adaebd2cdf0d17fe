"""The health manager: UDP receiver, heartbeat processing and the stale-amphora loop.

Key choices: the datagram callback verifies the signature at once, over the raw bytes (one
HMAC; nothing unsigned is ever decompressed or parsed), and keeps only verified messages, the
newest per amphora (``pending.py``: a newer one replaces the older and takes over its
statistics deltas; more than ``RATE_MAX`` a second from one amphora are refused), so neither a
flood of forged datagrams nor one amphora's flood of genuine ones can fill the backlog. One
consumer takes whatever is pending (up to ``BATCH_MAX`` amphorae) and records it in one
transaction in a thread (``Recorder``: only what changed is written), so neither the API's event
loop nor a slow database stalls the socket, and batches grow with the load; a batch the
database refuses for its content (not an outage) is retried one message at a time, so one bad
row cannot hold the others back, and the one it refuses is counted as ``malformed``.
Staleness is judged from the database's ``last_heartbeat`` and, for this process, from the
time each amphora's latest verified heartbeat was received (``heard``), so heartbeats waiting
for the writer never make their amphora look stale and the stale check never has to pause.
Replays are rejected in the socket callback, before they are queued: an exact copy of one of
an amphora's recent datagrams by its signature before anything is inflated (``replay.py``),
an older one by the in-memory sequence cache once decoded; then by the database's
conditional update (authoritative across processes). Every rejection is counted by reason;
its log line is rate-limited per source and reason. Only a connection-level database failure
(heartbeats lost to us) postpones stale detection; anything else a signed message triggers,
including the database refusing its values, is a rejection that changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from lbaas.health import stale
from lbaas.health.batch import Recorder
from lbaas.health.metrics import HealthMetrics
from lbaas.health.pending import Item, Pending, RateLimit
from lbaas.health.ratelog import RateLimitedLog
from lbaas.health.replay import RecentSignatures
from lbaas.health.writer import apply_heartbeat
from lbaas.store.failover import request_failover
from lbaas.wire.heartbeat import (
    DUPLICATE,
    MALFORMED,
    MAX_DATAGRAM,
    RATE_LIMITED,
    REPLAY,
    UNKNOWN_AMPHORA,
    HeartbeatRejected,
    open_envelope,
)

log = logging.getLogger(__name__)
QUEUE_SIZE = 4096  # amphorae with a heartbeat waiting to be written (one slot each)
BATCH_MAX = 2000
DRIFT_HEARTBEATS = 3  # consecutive heartbeats with another digest before we act
LOG_EVERY = 30.0


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def is_outage(exc: BaseException) -> bool:
    """Heartbeats are being lost to us (the database is unreachable), as opposed to the
    database refusing one message's values (``DataError``, ``IntegrityError``) or a bug."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OSError | OperationalError | InterfaceError | DisconnectionError
                      | PoolTimeout)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, manager: HealthManager) -> None:
        self.manager = manager

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.manager.received(data, addr)


class HealthManager:
    def __init__(self, engine: Engine, key: str, notify: Callable[[str], None], *,
                 bind_ip: str, bind_port: int, heartbeat_timeout: float = 3.0,
                 check_interval: float = 0.25, build_grace: float = 10.0,
                 failover_threshold: int = 0, accept_master_key: bool = False,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.key = key  # the master key: each amphora's is derived from it and its id
        self.accept_master_key = accept_master_key
        self.notify = notify
        self.bind = (bind_ip, bind_port)
        self.timeout = heartbeat_timeout
        self.check_interval = check_interval
        self.build_grace = build_grace
        self.failover_threshold = failover_threshold
        self.clock = clock
        self.metrics = HealthMetrics()
        self.last_seq: dict[str, int] = {}
        # when this process received each amphora's latest verified heartbeat (written or not)
        self.heard: dict[str, datetime] = {}
        self.recent = RecentSignatures()
        self.recorder = Recorder(engine)
        self.drift: dict[str, int] = {}
        self.listening_since = clock()
        self.pending = Pending(QUEUE_SIZE)
        self.rate = RateLimit()
        self._reject_log = RateLimitedLog(log, LOG_EVERY)
        self._transport: asyncio.DatagramTransport | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._last_failure_log = -LOG_EVERY
        self._suppressed = 0

    @property
    def backlog(self) -> int:
        """Amphorae whose latest heartbeat is verified but not yet written."""
        return len(self.pending)

    @property
    def address(self) -> tuple[str, int]:
        assert self._transport is not None
        return self._transport.get_extra_info("sockname")[:2]

    async def start(self, stale_detection: bool = True) -> None:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=self.bind)
        self.listening_since = self.clock()
        self._tasks.append(asyncio.create_task(self._consume()))
        if stale_detection:
            self._tasks.append(asyncio.create_task(self._stale_loop()))
        log.info("health manager listening on %s:%s", *self.address)

    async def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def received(self, data: bytes, addr: Any) -> None:
        self.metrics.received += 1
        try:
            health = self.verify(data[:MAX_DATAGRAM])
        except HeartbeatRejected as exc:
            self._rejected(exc, addr)
            return
        except Exception as exc:  # a bug, not the sender's: refuse, count, change nothing
            self._rejected(HeartbeatRejected(MALFORMED, f"unexpected {exc!r}"), addr)
            return
        amp_id, seq = health["id"], health["seq"]
        if seq <= self.last_seq.get(amp_id, -1) or seq <= self.pending.seq(amp_id):
            self._rejected(HeartbeatRejected(REPLAY, f"{amp_id} {seq}"), addr)
            return
        now = self.clock()
        if amp_id in self.last_seq:
            # newer than one this process recorded: the amphora is alive, written or not
            self.heard[amp_id] = now
        if not self.rate.allow(amp_id):
            self._rejected(HeartbeatRejected(RATE_LIMITED, f"{amp_id} {seq}"), addr)
            return
        outcome = self.pending.put(health, addr, now)
        if outcome == "merged":
            self.metrics.merged += 1
        elif outcome == "full":
            self.metrics.dropped += 1

    def verify(self, data: bytes) -> dict[str, Any]:
        """The signed, well-formed message in ``data``; else ``HeartbeatRejected``."""
        return open_envelope(data, self.key, self.accept_master_key, self.recent.check)

    async def _consume(self) -> None:
        while True:
            await self.pending.ready.wait()
            batch = self.pending.take(BATCH_MAX)
            try:
                await self.apply_batch(batch)
            except Exception as exc:  # the consumer must outlive anything one batch does
                if is_outage(exc):
                    self.listening_since = self.clock()
                self._log_failure(f"{len(batch)} heartbeats could not be recorded: {exc!r}")

    async def apply_batch(self, items: list[Item]) -> None:
        """Record verified messages (at most one per amphora, as ``Pending`` keeps them)."""
        fresh: dict[str, Item] = {}
        for health, addr, received_at in items:
            amp_id = health["id"]
            if health["seq"] <= self.last_seq.get(amp_id, -1):
                self._rejected(HeartbeatRejected(REPLAY, f"{amp_id} {health['seq']}"), addr)
            else:
                fresh[amp_id] = (health, addr, received_at)
        if fresh:
            await self._record(fresh)

    async def _record(self, fresh: dict[str, Item]) -> None:
        try:
            out = await asyncio.to_thread(self.recorder.record,
                                          [h for h, _, _ in fresh.values()], self.clock())
        except Exception as exc:
            if is_outage(exc):
                self.listening_since = self.clock()  # heartbeats lost to us: see _apply_guarded
                self._log_failure(f"{len(fresh)} heartbeats could not be recorded: {exc!r}")
                return
            # the database refused some message's values, or a bug with one message: each on
            # its own, so only the one it refuses is lost (and counted)
            for item in fresh.values():
                await self._apply_guarded(*item)
            return
        for amp_id, exc in out.rejected:
            if exc.reason == UNKNOWN_AMPHORA:  # deleted: forget what we kept about it
                self._forget(amp_id)
            elif exc.reason == DUPLICATE:  # recorded by another health manager: alive
                self._heard(amp_id, fresh[amp_id][0]["seq"], fresh[amp_id][2])
            self._rejected(exc, fresh[amp_id][1])
        for applied in out.applied:
            health, _, received_at = fresh[applied.amphora_id]
            self._heard(applied.amphora_id, health["seq"], received_at)
            self.metrics.accepted += 1
            self.metrics.status_changes += applied.changes
            await self._check_digest(applied, health.get("digest"))

    def _heard(self, amp_id: str, seq: int, received_at: datetime) -> None:
        """``seq`` of ``amp_id`` is in the database (ours or another manager's write)."""
        self.last_seq[amp_id] = max(seq, self.last_seq.get(amp_id, -1))
        self.heard[amp_id] = max(received_at, self.heard.get(amp_id, received_at))

    def _forget(self, amp_id: str) -> None:
        self.last_seq.pop(amp_id, None)
        self.heard.pop(amp_id, None)
        self.recent.forget(amp_id)
        self.recorder.forget(amp_id)
        self.rate.forget(amp_id)

    async def _apply_guarded(self, health: dict[str, Any], addr: Any,
                             received_at: datetime | None = None) -> None:
        try:
            await self.apply(health, received_at)
        except HeartbeatRejected as exc:
            self._rejected(exc, addr)
        except Exception as exc:
            if is_outage(exc):
                # Heartbeats are being lost (the database is down?): like upstream after a
                # database outage, judge nobody stale until a whole timeout has passed again.
                self.listening_since = self.clock()
                self._log_failure(f"heartbeat from {addr[0]} could not be applied: {exc!r}")
                return
            # the database refused this message's values (DataError, IntegrityError), or a
            # bug: refuse this message only, change nothing; no outage, stale checks go on
            why = str(getattr(exc, "orig", None) or exc).splitlines()[0][:200]
            self._rejected(HeartbeatRejected(MALFORMED, f"{type(exc).__name__}: {why}"), addr)

    def _rejected(self, exc: HeartbeatRejected, addr: Any) -> None:
        self.metrics.reject(exc.reason)
        # unknown: deleted amphorae, or another instance's on a shared network (upstream
        # logs these at debug too); the others are worth an operator's attention
        level = logging.DEBUG if exc.reason in (UNKNOWN_AMPHORA, DUPLICATE) else logging.WARNING
        source = str(addr[0]) if addr else "?"
        self._reject_log(level, source, exc.reason, f"heartbeat from {source} rejected: {exc}")

    async def process(self, data: bytes) -> None:
        """Verify and apply one datagram (``HeartbeatRejected`` if refused)."""
        await self.apply(self.verify(data))

    async def apply(self, health: dict[str, Any], received_at: datetime | None = None) -> None:
        """The per-message path (one transaction, a full snapshot each): a batch's fallback."""
        amp_id, seq = health["id"], health["seq"]
        if seq <= self.last_seq.get(amp_id, -1):
            raise HeartbeatRejected(REPLAY, f"{amp_id} seq {seq}")
        self.recorder.forget(amp_id)
        now = self.clock()
        applied = await asyncio.to_thread(apply_heartbeat, self.engine, health, now)
        self._heard(amp_id, seq, received_at or now)
        self.metrics.accepted += 1
        self.metrics.status_changes += applied.changes
        await self._check_digest(applied, health.get("digest"))

    async def _check_digest(self, applied: Any, reported: Any) -> None:
        amp_id = applied.amphora_id
        if not isinstance(reported, str | None) or reported == applied.stored_digest \
                or applied.load_balancer_id is None:
            self.drift.pop(amp_id, None)
            return
        self.drift[amp_id] = self.drift.get(amp_id, 0) + 1
        if self.drift[amp_id] >= DRIFT_HEARTBEATS:
            self.drift.pop(amp_id, None)
            log.warning("amphora %s serves bundle %s, not %s: reconciling", amp_id, reported,
                        applied.stored_digest)
            await asyncio.to_thread(stale.forget_digest, self.engine, amp_id, reported)
            self.metrics.drift_reconciles += 1
            self.notify(applied.load_balancer_id)

    async def check_stale(self) -> list[str]:
        """Flag every stale amphora and wake its load balancer; the ids flagged."""
        now = self.clock()
        due = await asyncio.to_thread(stale.find_stale, self.engine, now, self.timeout,
                                      self.build_grace, self.listening_since)
        # late in the database, but this process received a newer heartbeat within the
        # timeout (still waiting for the writer, or dropped): alive, not stale
        due = [(amp_id, lb_id) for amp_id, lb_id in due if not self._alive(amp_id, now)]
        if self.failover_threshold and len(due) >= self.failover_threshold:
            # upstream's failover_threshold: this many at once smells of a broken management
            # network, where rebuilding everything would not help
            self._log_failure(f"{len(due)} amphorae are stale (threshold "
                              f"{self.failover_threshold}): no automatic failover")
            return []
        flagged = []
        for amp_id, lb_id in due:
            if await asyncio.to_thread(request_failover, self.engine, amp_id, lb_id):
                log.warning("amphora %s sent no heartbeat for %.1f s: failing it over",
                            amp_id, self.timeout)
                self.metrics.failovers += 1
                self._forget(amp_id)
                flagged.append(amp_id)
                self.notify(lb_id)
        return flagged

    def _alive(self, amp_id: str, now: datetime) -> bool:
        # only heartbeats newer than one the database accepted count (``heard``): after a
        # restart, replayed old datagrams waiting for the writer must not keep anyone alive
        heard = self.heard.get(amp_id)
        return heard is not None and now - heard <= timedelta(seconds=self.timeout)

    async def _stale_loop(self) -> None:
        # never paused for a backlog: heartbeats received but not yet written count through
        # ``heard`` (_alive), so no sender can suspend failovers by flooding
        while True:
            await asyncio.sleep(self.check_interval)
            try:
                await self.check_stale()
            except Exception as exc:
                self._log_failure(f"stale amphora check failed: {exc!r}")

    def _log_failure(self, text: str) -> None:
        """At most one line per LOG_EVERY seconds: a broken database must not flood the log."""
        now = time.monotonic()
        self._suppressed += 1
        if now - self._last_failure_log >= LOG_EVERY:
            more = f" ({self._suppressed - 1} similar suppressed)" if self._suppressed > 1 else ""
            log.error("%s%s", text, more)
            self._last_failure_log, self._suppressed = now, 0
