"""GET requests run on a small thread pool, so that a slow one does not stall everyone else.

Handlers are ``async`` but do synchronous database work (decision 0001): run on the event loop,
one GET that spends a second in the database (a tag filter over many rows) held up every other
client for that second. Reads need none of the event loop's serialisation, so ``Offload`` runs
GET and HEAD handlers in worker threads: SQLite and the database drivers release the GIL while
a query runs, and Python work is shared in 5 ms slices instead of run to completion. Writes
stay on the loop: there a handler's check-and-set transaction runs whole before any other
(SQLite has no ``SELECT ... FOR UPDATE``), and the reconcile queue's ``notify`` is not
thread-safe. A handler never awaits real I/O (this module checks, and says so if one does), so
a worker thread drives its coroutine to the end without an event loop of its own.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

READ_METHODS = frozenset({"GET", "HEAD"})
# GETs that read in-memory state the event loop changes (the health manager's counters): they
# stay on the loop, where nothing changes under them.
ON_LOOP_PATHS = frozenset({"/metrics"})


def drive(coro: Awaitable[Any]) -> Any:
    """Run a coroutine that never suspends to its result, on the calling thread."""
    send = coro.send  # type: ignore[attr-defined]
    try:
        send(None)
    except StopIteration as done:
        return done.value
    coro.close()  # type: ignore[attr-defined]
    raise RuntimeError("a GET handler awaited real I/O; it cannot run off the event loop")


class Offload:
    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._pool: ThreadPoolExecutor | None = None

    async def run(self, method: str, handler: Callable[[Any], Awaitable[Any]],
                  req: Any) -> Any:
        if self.threads <= 0 or method not in READ_METHODS or req.path in ON_LOOP_PATHS:
            return await handler(req)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="api-read")
        context = contextvars.copy_context()  # the request id for log lines
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, context.run, lambda: drive(handler(req)))

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
