"""Reconcile hints over RabbitMQ (aio-pika, docs/decisions/0016-message-bus.md).

A message is a load balancer id and only a hint: the database is the truth and every worker's
resync scan finds what a lost message would have told. So the bus never blocks or fails its
callers: ``notify`` puts the id in a bounded, deduplicated buffer that a task publishes while a
connection is up; while the broker is away the buffer keeps the newest ids and the rest are left
to the scan. Workers share one durable queue (competing consumers, ``prefetch`` unacknowledged
each) and acknowledge a hint only after the pass it woke has finished, so the hints a killed
worker held go to the others at once and load follows each worker's capacity. Broadcasts
(``broadcast``) go to every consumer through a fanout exchange, each on its own exclusive
queue. Key choice: one plain connection kept by our own loop, which walks the hosts of
``transport_url`` with a capped back-off, rather than the library's robust connection, so a
dead first host does not pin us and every (re)connection declares everything afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from lbaas.queue.transport import amqp_urls, redacted

log = logging.getLogger(__name__)

MAX_PENDING = 20_000  # hints buffered while the broker is away (oldest dropped beyond)
QUEUE_MAX_LENGTH = 200_000  # the broker drops the oldest hints beyond this
CONNECT_TIMEOUT = 5.0
BACKOFF_MAX = 2.0
LOG_EVERY = 30.0

Consumer = Callable[[str], Awaitable[None]]


class RabbitBus:
    def __init__(self, transport_url: str, topic: str, *, name: str,
                 consumer: Consumer | None = None, prefetch: int = 8,
                 on_broadcast: Callable[[str], None] | None = None) -> None:
        self.urls = amqp_urls(transport_url)
        self.topic = topic
        self.fanout = f"{topic}-fanout"
        self.name = name
        self.consumer = consumer
        self.prefetch = prefetch
        self.on_broadcast = on_broadcast
        self.connected = asyncio.Event()
        self.published = 0
        self.consumed = 0
        self.dropped = 0
        self._pending: dict[str, None] = {}  # insertion-ordered set
        self._broadcasts: dict[str, None] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = 0
        self._last_log = -LOG_EVERY

    # callers ---------------------------------------------------------------------------------
    def notify(self, lb_id: str) -> None:
        """Queue a hint for the workers; never blocks, never raises."""
        self._enqueue(self._pending, lb_id)

    def broadcast(self, hint: str) -> None:
        """Queue a hint for every consumer (e.g. "floating-ips")."""
        self._enqueue(self._broadcasts, hint)

    def _enqueue(self, into: dict[str, None], item: str) -> None:
        if self._loop is not None and threading.get_ident() != self._thread:
            self._loop.call_soon_threadsafe(self._enqueue, into, item)
            return
        into.pop(item, None)
        into[item] = None
        while len(into) > MAX_PENDING:
            del into[next(iter(into))]
            self.dropped += 1
        self._wake.set()

    # lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        """Return at once; the connection is made (and remade) in the background."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._task = asyncio.create_task(self._run(), name=f"rabbit-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # connection ------------------------------------------------------------------------------
    async def _run(self) -> None:
        attempt = 0
        while True:
            url = self.urls[attempt % len(self.urls)]
            try:
                connection = await aio_pika.connect(
                    url, timeout=CONNECT_TIMEOUT, client_properties={"connection_name":
                                                                     f"lbaas {self.name}"})
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._log(f"message bus {redacted(url)} unreachable: {exc!r}; retrying")
                attempt += 1
                await asyncio.sleep(min(BACKOFF_MAX, 0.25 * attempt))
                continue
            attempt = 0
            try:
                await self._session(connection)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._log(f"message bus connection to {redacted(url)} lost: {exc!r}")
            finally:
                self.connected.clear()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(connection.close(), 2.0)
            await asyncio.sleep(0.25)

    async def _session(self, connection: AbstractRobustConnection) -> None:
        closed = asyncio.Event()
        connection.close_callbacks.add(lambda *_: closed.set())
        # no publisher confirms: a confirm per hint held the API's hints back behind its
        # requests (measured: 50 waiting, workers idle); a hint lost on the wire is the
        # resync scan's, like any other
        channel = await connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=self.prefetch)
        queue = await channel.declare_queue(
            self.topic, durable=True,
            arguments={"x-max-length": QUEUE_MAX_LENGTH, "x-overflow": "drop-head"})
        fanout = await channel.declare_exchange(self.fanout, aio_pika.ExchangeType.FANOUT,
                                                durable=True)
        if self.consumer is not None:
            await queue.consume(self._on_hint)
        if self.on_broadcast is not None:
            mine = await channel.declare_queue("", exclusive=True, auto_delete=True)
            await mine.bind(fanout)
            await mine.consume(self._on_broadcast, no_ack=True)
        log.info("message bus %s connected (%s)", redacted(str(connection.url)), self.name)
        self.connected.set()
        publisher = asyncio.create_task(self._publish(channel, fanout))
        try:
            waiters = [asyncio.ensure_future(closed.wait()), publisher]
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            if publisher.done():
                publisher.result()  # raise what stopped it
        finally:
            publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await publisher
            waiters[0].cancel()

    async def _publish(self, channel: AbstractChannel, fanout: aio_pika.abc.AbstractExchange) \
            -> None:
        default = channel.default_exchange
        while True:
            await self._wake.wait()
            self._wake.clear()
            for items, exchange, key in ((self._pending, default, self.topic),
                                         (self._broadcasts, fanout, "")):
                while items:
                    item = next(iter(items))
                    await exchange.publish(aio_pika.Message(item.encode()), routing_key=key)
                    items.pop(item, None)  # only once it is written to the connection
                    self.published += 1

    async def _on_hint(self, message: AbstractIncomingMessage) -> None:
        assert self.consumer is not None
        async with message.process(requeue=False, ignore_processed=True):
            self.consumed += 1
            await self.consumer(message.body.decode(errors="replace"))

    async def _on_broadcast(self, message: AbstractIncomingMessage) -> None:
        assert self.on_broadcast is not None
        self.on_broadcast(message.body.decode(errors="replace"))

    def _log(self, text: str) -> None:
        now = time.monotonic()
        if now - self._last_log >= LOG_EVERY:
            self._last_log = now
            log.warning("%s (%d hints waiting)", text, len(self._pending))
