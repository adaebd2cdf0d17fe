"""The health manager: UDP receiver, heartbeat processing and the stale-amphora loop.

Key choices: the datagram callback verifies the signature at once, over the raw bytes (one
HMAC; nothing unsigned is ever decompressed or parsed), and queues only verified messages
(bounded; overflow is counted), so a flood of forged datagrams can neither fill the queue nor
cost more than a hash each. One consumer takes whatever has queued up (up to ``BATCH_MAX``,
one heartbeat per amphora) and records it in one transaction in a thread (``Recorder``: only
what changed is written), so neither the API's event loop nor a slow database stalls the
socket, and batches grow with the load; a batch the database refuses for its content (not an
outage) is retried one message at a time, so one bad row cannot hold the others back.
Replays are rejected in the socket callback, before they are queued: an exact copy of one of
an amphora's recent datagrams by its signature before anything is inflated (``replay.py``),
an older one by the in-memory sequence cache once decoded; then by the database's
conditional update (authoritative across processes). Every rejection is counted by reason;
its log line is rate-limited per source and reason. Only a database failure (heartbeats lost
to us) postpones stale detection; anything else a signed message triggers is a rejection that
changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError

from lbaas.health import stale
from lbaas.health.batch import Recorder
from lbaas.health.metrics import HealthMetrics
from lbaas.health.ratelog import RateLimitedLog
from lbaas.health.replay import RecentSignatures
from lbaas.health.writer import apply_heartbeat
from lbaas.store.failover import request_failover
from lbaas.wire.heartbeat import (
    DUPLICATE,
    MALFORMED,
    MAX_DATAGRAM,
    REPLAY,
    UNKNOWN_AMPHORA,
    HeartbeatRejected,
    open_envelope,
)

log = logging.getLogger(__name__)
QUEUE_SIZE = 4096
BATCH_MAX = 2000
DRIFT_HEARTBEATS = 3  # consecutive heartbeats with another digest before we act
LOG_EVERY = 30.0


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


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
        self.recent = RecentSignatures()
        self.recorder = Recorder(engine)
        self.drift: dict[str, int] = {}
        self.listening_since = clock()
        self._queue: asyncio.Queue[tuple[dict[str, Any], Any, float]] = \
            asyncio.Queue(QUEUE_SIZE)
        self._reject_log = RateLimitedLog(log, LOG_EVERY)
        self._transport: asyncio.DatagramTransport | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._last_failure_log = -LOG_EVERY
        self._suppressed = 0

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
        if health["seq"] <= self.last_seq.get(health["id"], -1):
            self._rejected(HeartbeatRejected(REPLAY, f"{health['id']} {health['seq']}"), addr)
            return
        try:
            self._queue.put_nowait((health, addr, time.time()))
        except asyncio.QueueFull:
            self.metrics.dropped += 1

    def verify(self, data: bytes) -> dict[str, Any]:
        """The signed, well-formed message in ``data``; else ``HeartbeatRejected``."""
        return open_envelope(data, self.key, self.accept_master_key, self.recent.check)

    async def _consume(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < BATCH_MAX and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self.apply_batch([(health, addr) for health, addr, _ in batch])
            except Exception as exc:  # the consumer must outlive anything one batch does
                self.listening_since = self.clock()
                self._log_failure(f"{len(batch)} heartbeats could not be recorded: {exc!r}")

    async def apply_batch(self, items: list[tuple[dict[str, Any], Any]]) -> None:
        """Record verified messages, a batch per round (an amphora's second message in the
        same round waits for the next: its statistics deltas must be added too)."""
        while items:
            fresh: dict[str, tuple[dict[str, Any], Any]] = {}
            later = []
            for health, addr in items:
                amp_id = health["id"]
                if health["seq"] <= self.last_seq.get(amp_id, -1):
                    self._rejected(HeartbeatRejected(REPLAY, f"{amp_id} {health['seq']}"),
                                   addr)
                elif amp_id in fresh:
                    later.append((health, addr))
                else:
                    fresh[amp_id] = (health, addr)
            items = later
            if fresh:
                await self._record(fresh)

    async def _record(self, fresh: dict[str, tuple[dict[str, Any], Any]]) -> None:
        try:
            out = await asyncio.to_thread(self.recorder.record,
                                          [h for h, _ in fresh.values()], self.clock())
        except (DataError, IntegrityError):
            for health, addr in fresh.values():  # find the one the database refuses
                await self._apply_guarded(health, addr)
            return
        except (OSError, SQLAlchemyError) as exc:
            self.listening_since = self.clock()  # heartbeats lost to us: see _apply_guarded
            self._log_failure(f"{len(fresh)} heartbeats could not be recorded: {exc!r}")
            return
        except Exception:  # a bug with one message: each on its own, counted if it fails
            for health, addr in fresh.values():
                await self._apply_guarded(health, addr)
            return
        for amp_id, exc in out.rejected:
            if exc.reason == UNKNOWN_AMPHORA:  # deleted: forget what we kept about it
                self.last_seq.pop(amp_id, None)
                self.recent.forget(amp_id)
                self.recorder.forget(amp_id)
            self._rejected(exc, fresh[amp_id][1])
        for applied in out.applied:
            health = fresh[applied.amphora_id][0]
            self.last_seq[applied.amphora_id] = health["seq"]
            self.metrics.accepted += 1
            self.metrics.status_changes += applied.changes
            await self._check_digest(applied, health.get("digest"))

    async def _apply_guarded(self, health: dict[str, Any], addr: Any) -> None:
        try:
            await self.apply(health)
        except HeartbeatRejected as exc:
            self._rejected(exc, addr)
        except (SQLAlchemyError, OSError) as exc:
            # Heartbeats are being lost (the database is down?): like upstream after a
            # database outage, judge nobody stale until a whole timeout has passed again.
            self.listening_since = self.clock()
            self._log_failure(f"heartbeat from {addr[0]} could not be applied: {exc!r}")
        except Exception as exc:  # a bug, not an outage: refuse this message, change nothing
            self._rejected(HeartbeatRejected(MALFORMED, f"unexpected {exc!r}"), addr)

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

    async def apply(self, health: dict[str, Any]) -> None:
        """The per-message path (one transaction, a full snapshot each): a batch's fallback."""
        amp_id, seq = health["id"], health["seq"]
        if seq <= self.last_seq.get(amp_id, -1):
            raise HeartbeatRejected(REPLAY, f"{amp_id} seq {seq}")
        self.recorder.forget(amp_id)
        applied = await asyncio.to_thread(apply_heartbeat, self.engine, health, self.clock())
        self.last_seq[amp_id] = seq
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
        due = await asyncio.to_thread(stale.find_stale, self.engine, self.clock(), self.timeout,
                                      self.build_grace, self.listening_since)
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
                self.last_seq.pop(amp_id, None)
                self.recent.forget(amp_id)
                self.recorder.forget(amp_id)
                flagged.append(amp_id)
                self.notify(lb_id)
        return flagged

    async def _stale_loop(self) -> None:
        while True:
            await asyncio.sleep(self.check_interval)
            if self._queue.qsize() >= QUEUE_SIZE // 4:
                # heartbeats are waiting to be applied: last_heartbeat lags, judge nobody
                self._log_failure(f"{self._queue.qsize()} heartbeats queued: stale check skipped")
                continue
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
