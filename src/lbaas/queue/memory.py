"""In-process reconcile queue: a message is a load balancer id.

Ids are deduplicated while queued; an id notified while its reconcile runs is run once more
afterwards. A periodic resync (``resync.ResyncScanner``) enqueues every load balancer whose
desired generation is not yet applied (or that is PENDING_*), so a lost message or a crash never
leaves work unfinished. ``submit`` is ``notify`` with a future that resolves once a pass that
started after it has ended: the message bus acknowledges a hint only then.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import Engine, or_, select

from lbaas.domain import constants as c
from lbaas.store import tables as t

log = logging.getLogger(__name__)


class ReconcileQueue:
    def __init__(self, handler: Callable[[str], Awaitable[bool]], concurrency: int = 8,
                 retry_delay: float = 0.5) -> None:
        self.handler = handler
        self.concurrency = concurrency
        self.retry_delay = retry_delay
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._running: set[str] = set()
        self._again: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._idle = asyncio.Event()
        self._idle.set()

    def notify(self, lb_id: str) -> None:
        if lb_id in self._running:
            self._again.add(lb_id)
            return
        if lb_id in self._queued:
            return
        self._queued.add(lb_id)
        self._idle.clear()
        self._queue.put_nowait(lb_id)

    def submit(self, lb_id: str) -> asyncio.Future[None]:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(lb_id, []).append(waiter)
        self.notify(lb_id)
        return waiter

    def _wake_waiters(self, lb_id: str) -> None:
        for waiter in self._waiters.pop(lb_id, ()):
            if not waiter.done():
                waiter.set_result(None)

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._worker()) for _ in range(self.concurrency)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for waiters in self._waiters.values():
            for waiter in waiters:
                waiter.cancel()
        self._waiters.clear()

    def busy(self) -> bool:
        return bool(self._queued or self._running)

    async def wait_idle(self) -> None:
        await self._idle.wait()

    async def _worker(self) -> None:
        while True:
            lb_id = await self._queue.get()
            self._queued.discard(lb_id)
            self._running.add(lb_id)
            done = False
            try:
                done = await self.handler(lb_id)
            except Exception:
                log.exception("reconcile of %s crashed", lb_id)
                done = True
            finally:
                self._running.discard(lb_id)
            if not done:
                asyncio.get_running_loop().call_later(self.retry_delay, self.notify, lb_id)
            elif lb_id in self._again:
                self._again.discard(lb_id)
                self.notify(lb_id)
            if lb_id not in self._queued:
                self._wake_waiters(lb_id)
            if not self._queued and not self._running:
                self._idle.set()


def unfinished(engine: Engine) -> list[str]:
    """Load balancers with work left: pending states or an unapplied generation."""
    lb = t.load_balancer
    with engine.connect() as conn:
        rows = conn.execute(select(lb.c.id).where(
            lb.c.provisioning_status != c.DELETED,
            or_(lb.c.provisioning_status.in_(c.PENDING_STATUSES),
                lb.c.generation != lb.c.applied_generation)))
        return [r[0] for r in rows]
