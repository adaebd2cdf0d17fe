"""A small HTTP/1.1 server for the agent's ASGI app: asyncio streams over TLS, keep-alive.

Key choice: the agent serves a few JSON endpoints to one client (the controller), so a general
server is not needed; uvicorn with its imports (click, logging.config, uvloop, httptools) costs
~10 MB of resident memory in every amphora. This one speaks just enough HTTP/1.1: requests with
a Content-Length body (chunked uploads get 411), keep-alive, one request at a time per
connection, the ASGI lifespan (startup before listening, shutdown after the last request), and a
graceful stop on SIGTERM/SIGINT (in-flight requests get ``grace`` seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

log = logging.getLogger("lbaas.agent.server")

Message = dict[str, Any]
App = Callable[[dict[str, Any], Callable[[], Awaitable[Message]],
                Callable[[Message], Awaitable[None]]], Awaitable[None]]
MAX_HEAD = 64 * 1024
IDLE_TIMEOUT = 75.0
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           411: "Length Required", 413: "Content Too Large",
           431: "Request Header Fields Too Large", 500: "Internal Server Error",
           503: "Service Unavailable"}


class _BadRequest(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class _Lifespan:
    """Drive the app's lifespan protocol: one long call fed from a queue."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.replies: asyncio.Queue[Message] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def _phase(self, name: str) -> None:
        await self.inbox.put({"type": f"lifespan.{name}"})
        assert self.task is not None
        getter = asyncio.ensure_future(self.replies.get())
        await asyncio.wait({getter, self.task}, return_when=asyncio.FIRST_COMPLETED)
        if not getter.done():
            getter.cancel()
            self.task.result()  # the app raised: let its exception out
            raise RuntimeError(f"lifespan {name}: the application returned early")
        reply = getter.result()
        if reply["type"] != f"lifespan.{name}.complete":
            raise RuntimeError(f"lifespan {name} failed: {reply.get('message', '')}")

    async def startup(self) -> None:
        async def send(message: Message) -> None:
            await self.replies.put(message)

        self.task = asyncio.create_task(self.app({"type": "lifespan", "asgi": {"version": "3.0"}},
                                                 self.inbox.get, send))
        await self._phase("startup")

    async def shutdown(self) -> None:
        await self._phase("shutdown")


class Server:
    def __init__(self, app: App, max_body: int, keepalive_timeout: float = IDLE_TIMEOUT) -> None:
        self.app = app
        self.max_body = max_body
        self.keepalive_timeout = keepalive_timeout  # a connection idle this long is closed
        self.busy = 0  # requests being handled
        self.idle = asyncio.Event()
        self.writers: set[asyncio.StreamWriter] = set()  # connections that may send requests
        # Every connection handler still running, those waiting for their close too.
        self.handlers: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}
        self.last_activity = time.monotonic()
        self.closing = False  # answer with "Connection: close" from now on
        self.linger = False  # on stop, let open connections finish their next request first

    async def connection(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers[task] = writer
        self.writers.add(writer)
        self.last_activity = time.monotonic()
        try:
            while await self._one_request(reader, writer):
                pass
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            self.writers.discard(writer)
            self.last_activity = time.monotonic()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self.handlers.pop(task, None)

    async def _one_request(self, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> bool:
        """Serve one request; False when the connection must close."""
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"),
                                          self.keepalive_timeout)
        except asyncio.LimitOverrunError:
            await _respond(writer, 431, b'{"error": "request head too large"}', False)
            return False
        except asyncio.IncompleteReadError:
            return False
        self.busy += 1
        self.idle.clear()
        try:
            try:
                scope, length, keep_alive = self._parse(head, writer)
                if length > self.max_body:
                    raise _BadRequest(413, f"body larger than {self.max_body} bytes")
            except _BadRequest as exc:
                body = f'{{"error": "{exc}"}}'.encode()
                await _respond(writer, exc.status, body, False)
                return False
            body = await reader.readexactly(length) if length else b""
            status, headers, chunks = await self._call(scope, body)
            keep_alive = keep_alive and not self.closing
            await _respond(writer, status, b"".join(chunks), keep_alive, headers)
            return keep_alive
        finally:
            self.last_activity = time.monotonic()
            self.busy -= 1
            if not self.busy:
                self.idle.set()

    def _parse(self, head: bytes, writer: asyncio.StreamWriter) -> tuple[dict[str, Any], int,
                                                                          bool]:
        lines = head[:-4].decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _BadRequest(400, "bad request line")
        method, target, version = parts
        headers: list[tuple[bytes, bytes]] = []
        length, keep_alive = 0, version == "HTTP/1.1"
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise _BadRequest(400, "bad header line")
            name, value = name.strip().lower(), value.strip()
            headers.append((name.encode("latin-1"), value.encode("latin-1")))
            if name == "content-length":
                if not value.isdigit():
                    raise _BadRequest(400, "bad Content-Length")
                length = int(value)
            elif name == "transfer-encoding":
                raise _BadRequest(411, "send a Content-Length, not a chunked body")
            elif name == "connection":
                keep_alive = value.lower() == "keep-alive" or (keep_alive and
                                                               value.lower() != "close")
        path, _, query = target.partition("?")
        peer = writer.get_extra_info("peername") or ("", 0)
        local = writer.get_extra_info("sockname") or ("", 0)
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": version[5:],
                 "method": method.upper(), "scheme": "https", "path": unquote(path),
                 "raw_path": path.encode("latin-1"), "query_string": query.encode("latin-1"),
                 "root_path": "", "headers": headers, "client": tuple(peer[:2]),
                 "server": tuple(local[:2])}
        return scope, length, keep_alive

    async def _call(self, scope: dict[str, Any], body: bytes) -> tuple[int, list[Any], list[bytes]]:
        delivered = False

        async def receive() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # the app asked twice: nothing more will come
            raise AssertionError("unreachable")

        response: dict[str, Any] = {"status": 500, "headers": [], "body": []}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
                response["headers"] = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                response["body"].append(message.get("body", b""))

        try:
            await self.app(scope, receive, send)
        except Exception:
            log.exception("request %s %s failed", scope["method"], scope["path"])
            return 500, [], [b'{"error": "internal error"}']
        return response["status"], response["headers"], response["body"]

    async def wait_unused(self, timeout: float) -> None:
        """Until no connection is open (each closes after its next answer), at most
        ``timeout`` seconds; a connection accepted as the listener closed still gets served."""
        deadline = time.monotonic() + timeout
        await asyncio.sleep(0.1)  # a TLS handshake in progress joins ``writers`` when done
        while self.writers and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    async def drain(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for in-flight requests, then close every connection."""
        if self.busy:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.idle.wait(), grace)
        for writer in list(self.writers):
            writer.close()
        # A TLS close waits for the peer's close_notify, which an idle keep-alive client (the
        # controller) never sends: without the abort, SIGTERM hung until the sender's SIGKILL.
        for _ in range(10):
            if not any(not w.transport.is_closing() or w.transport.get_write_buffer_size()
                       for w in self.writers):
                break
            await asyncio.sleep(0.02)
        for writer in list(self.writers):
            writer.transport.abort()
        # Connections closed earlier may still wait for that close_notify too. Cut them and let
        # every handler return: one still running when the event loop ends is cancelled, and
        # asyncio's stream callback logs that CancelledError with a traceback (Python 3.11).
        for writer in self.handlers.values():
            writer.transport.abort()
        if self.handlers:
            await asyncio.wait(list(self.handlers), timeout=1.0)


async def _respond(writer: asyncio.StreamWriter, status: int, body: bytes, keep_alive: bool,
                   headers: list[Any] | None = None) -> None:
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}"]
    given = {bytes(k).lower() for k, _ in headers or []}
    for name, value in headers or []:
        if bytes(name).lower() not in (b"content-length", b"connection"):
            lines.append(f"{bytes(name).decode('latin-1')}: {bytes(value).decode('latin-1')}")
    if b"content-type" not in given:
        lines.append("Content-Type: application/json")
    lines += [f"Content-Length: {len(body)}",
              f"Connection: {'keep-alive' if keep_alive else 'close'}", "", ""]
    writer.write("\r\n".join(lines).encode("latin-1") + body)
    await writer.drain()


async def serve_async(app: App, host: str | None, port: int | None, ctx: ssl.SSLContext | None,
                      max_body: int, grace: float = 5.0,
                      stop: asyncio.Event | None = None, sock: socket.socket | None = None,
                      server: Server | None = None) -> None:
    """Lifespan startup, listen (on ``host:port`` or the listening ``sock``) until ``stop`` is
    set (by default: on SIGTERM/SIGINT), drain, lifespan shutdown."""
    lifespan = _Lifespan(app)
    await lifespan.startup()
    server = server or Server(app, max_body)
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT) if stop is None else ()
    stop = stop or asyncio.Event()
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        if sock is not None:
            listener = await asyncio.start_server(server.connection, sock=sock, ssl=ctx,
                                                  limit=MAX_HEAD)
        else:
            listener = await asyncio.start_server(server.connection, host, port, ssl=ctx,
                                                  limit=MAX_HEAD, reuse_address=True)
        log.info("listening on %s:%d", *listener.sockets[0].getsockname()[:2])
        async with listener:
            await stop.wait()
            listener.close()
            server.closing = True
            if server.linger:
                await server.wait_unused(server.keepalive_timeout)
            await server.drain(grace)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        await lifespan.shutdown()


def serve_forever(app: App, host: str, port: int, ctx: ssl.SSLContext | None,
                  max_body: int, grace: float = 5.0) -> None:
    asyncio.run(serve_async(app, host, port, ctx, max_body, grace))
