"""The API's HTTP server: uvicorn (httptools) with limits, and who may listen where.

uvicorn with httptools has no limit on a request's header size (a 64 MB header was buffered
whole) and no deadline for the request line and headers (a half request line was held open for
minutes) nor for the body (a request whose body never came was held open for good) nor for a
response the client does not read, and it keeps every connection a client opens.
``LimitedHttp`` adds the five:

- the request line and headers together: at most ``[api] max_header_bytes``, counted as the
  bytes arrive (before the parser buffers them); beyond it, ``431`` and the connection closes;
- ``[api] header_timeout`` seconds for them, from the connection's first moment or the end of
  the previous request on a kept-alive connection; after it, ``408`` and the connection closes
  (between requests uvicorn's own keep-alive timeout closes idle connections first);
- ``[api] body_timeout`` seconds for the body, from the end of the headers; after it, ``408``
  if no response has begun on the connection, and the connection closes. A pipelined request
  held back by a response the client does not read (writing paused) closes the connection too;
- ``[api] send_timeout`` seconds for a client to take any of a response the server has to hold
  back (its write buffer full: the transport paused writing); after it the connection is
  aborted, dropping the unsent rest (a client that never read a large listing held its
  connection, and the listing's memory, for good);
- at most ``[api] max_connections`` open connections per process; one more gets ``503`` and is
  closed at once.

``check_listen`` refuses ``noauth`` (every caller is admin) on anything but loopback addresses
unless ``[api] allow_noauth_non_loopback`` says so.
"""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import socket
import sys
from typing import Any

import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from lbaas.settings import ApiSettings

HEAD_END = b"\r\n\r\n"
KEEP_ALIVE_TIMEOUT = 5  # seconds an idle kept-alive connection stays open (uvicorn's default)
REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large",
           503: b"Service Unavailable"}


class NotServing(Exception):
    """The settings forbid serving this way; the message is the one line to print."""


def _error_response(status: int, description: str) -> bytes:
    body = orjson.dumps({"code": status, "title": REASONS[status].decode(),
                         "description": description})
    return b"".join([b"HTTP/1.1 %d %s\r\n" % (status, REASONS[status]),
                     b"content-type: application/json\r\n",
                     b"content-length: %d\r\n" % len(body), b"connection: close\r\n\r\n", body])


class LimitedHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header size cap, header and body deadlines and a
    connection cap. The limits are class attributes: ``limited_http(settings)`` makes the
    subclass."""

    max_header_bytes = 65536
    header_timeout = 10.0
    body_timeout = 30.0
    send_timeout = 30.0
    max_connections = 1000

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_bytes = 0
        self._in_head = True
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._send_timer: asyncio.TimerHandle | None = None
        if len(self.connections) > self.max_connections:
            self._refuse(503, f"More than {self.max_connections} open connections.")
            return
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        self._cancel_body_timer()
        self._cancel_send_timer()
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._send_timer is None:
            self._send_timer = self.loop.call_later(self.send_timeout, self._send_timed_out)

    def resume_writing(self) -> None:
        self._cancel_send_timer()  # the client took some: its deadline starts again next pause
        super().resume_writing()

    def _send_timed_out(self) -> None:
        self._send_timer = None
        if self.flow.write_paused and not self.transport.is_closing():
            self._cancel_head_timer()
            self._cancel_body_timer()
            self.transport.abort()  # close() would wait to flush what the client never reads

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            end = data.find(HEAD_END)
            self._head_bytes += len(data) if end < 0 else end + len(HEAD_END)
            if self._head_bytes > self.max_header_bytes:
                self._refuse(431, "The request line and headers exceed "
                                  f"{self.max_header_bytes} bytes.")
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        if self._head_timer is None:
            self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self._cancel_head_timer()
        super().on_headers_complete()
        self._cancel_body_timer()
        if not (self.parser.should_upgrade() and self._should_upgrade()):  # not a websocket
            self._body_timer = self.loop.call_later(self.body_timeout, self._body_timed_out)

    def on_message_complete(self) -> None:
        self._cancel_body_timer()
        super().on_message_complete()
        self._in_head = True  # whatever comes next on this connection is the next head

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _cancel_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _cancel_send_timer(self) -> None:
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None

    def _body_timed_out(self) -> None:
        self._body_timer = None
        if self.transport.is_closing():
            return
        if self.pipeline and not self.flow.write_paused:
            # reading is paused behind an earlier response the server is still making
            self._body_timer = self.loop.call_later(self.body_timeout, self._body_timed_out)
            return
        message = f"The request body took longer than {self.body_timeout:g} s."
        if self.pipeline or (self.cycle is not None and self.cycle.response_started):
            self._close()  # a response is under way: no room for another on this connection
        else:
            self._refuse(408, message)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._in_head or self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            if self.flow.write_paused:
                self._close()  # the client does not read the response the head waits for
                return
            self._arm_head_timer()  # a pipelined head waits for the response under way
            return
        if self._head_bytes == 0 and self.cycle is not None:
            return  # kept alive and idle: uvicorn's keep-alive timeout closes it
        self._refuse(408, f"The request line and headers took longer than "
                          f"{self.header_timeout:g} s.")

    def _refuse(self, status: int, description: str) -> None:
        if not self.transport.is_closing():
            self.transport.write(_error_response(status, description))
        self._close()

    def _close(self) -> None:
        self._cancel_head_timer()
        self._cancel_body_timer()
        self._cancel_send_timer()
        self._in_head = False
        if not self.transport.is_closing():
            self.transport.close()


def limited_http(api: ApiSettings) -> type[LimitedHttp]:
    return type("LimitedHttp", (LimitedHttp,), {
        "max_header_bytes": api.max_header_bytes, "header_timeout": api.header_timeout,
        "body_timeout": api.body_timeout, "send_timeout": api.send_timeout,
        "max_connections": api.max_connections})


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback
                               for info in infos)


def check_listen(api: ApiSettings) -> None:
    """Raise ``NotServing`` for ``noauth`` on a non-loopback address, unless allowed."""
    if api.auth_strategy == "noauth" and not api.allow_noauth_non_loopback \
            and not _is_loopback(api.host):
        raise NotServing(
            f"refusing to serve auth_strategy 'noauth' (every caller is admin) on {api.host}, "
            "which is not a loopback address: use keystone, a loopback host, or set "
            "[api] allow_noauth_non_loopback = true")


def may_listen(api: ApiSettings, program: str) -> bool:
    """``check_listen``; a refusal is printed as ``<program>: cannot start: ...``."""
    try:
        check_listen(api)
    except NotServing as exc:
        print(f"{program}: cannot start: {exc}", file=sys.stderr, flush=True)
        return False
    return True


def run_api_server(app: Any, api: ApiSettings) -> None:
    """Serve ``app`` on ``api.host:api.port`` with the limits above (blocks until stopped)."""
    # The service keeps ~80k long-lived objects; one list response makes ~1.6k more, so the
    # default thresholds ran two collections per request (measured: 2.1 -> 1.5 ms CPU each).
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    uvicorn.run(app, host=api.host, port=api.port, log_level="warning", access_log=False,
                lifespan="on", http=limited_http(api), timeout_keep_alive=KEEP_ALIVE_TIMEOUT)
