"""A small, fast HTTP/1.1 demo backend (stdlib only) that echoes what reached it, like whoami.

``python -m lbaas.demo.backend_server --address A --port P [--control-socket PATH]``

- any method, any path -> 200 with the backend's name, its listening address, the client's
  address, then the request line and headers exactly as received (so L7 rules, inserted
  headers such as ``X-Forwarded-For`` and client-certificate headers show with curl)::

      backend 10.0.0.10
      server: 10.0.0.10:80
      client: 10.0.0.5:40312

      GET /images/a.png HTTP/1.1
      host: 172.24.4.10
      X-Forwarded-For: 172.24.4.1

- ``GET /healthcheck`` -> 200 ``ok`` or 503 ``down``; ``POST /healthcheck/down`` and
  ``POST /healthcheck/up`` switch it.
- ``--control-socket``: the same server on a unix socket, so ``lbaas backend ctl`` can switch
  the health check without sending anything over a network.

A bare ``asyncio.Protocol`` with keep-alive and pipelining; the echo is the raw request head
with a per-connection prefix (no per-header formatting), so a benchmark measures the load
balancer rather than this server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys

from lbaas.demo.stopping import stop_signal

MAX_HEAD = 65536
HEALTH_PATHS = ("/healthcheck", "/healthcheck/down", "/healthcheck/up")


class Backend:
    def __init__(self, address: str, port: int, name: str | None = None) -> None:
        self.head = f"backend {name or address}\nserver: {_hostport(address, port)}\n".encode()
        self.healthy = True

    def health(self, method: str, path: str) -> tuple[int, bytes] | None:
        """The health check's answer, or None when the request is not for it."""
        if path == "/healthcheck" and method in ("GET", "HEAD"):
            return (200, b"ok\n") if self.healthy else (503, b"down\n")
        if path in ("/healthcheck/down", "/healthcheck/up") and method == "POST":
            self.healthy = path.endswith("/up")
            return 200, b"ok\n" if self.healthy else b"down\n"
        return None


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class HttpProtocol(asyncio.Protocol):
    """HTTP/1.1 with keep-alive and pipelining; bodies are read and ignored."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.prefix = backend.head

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        client = _hostport(*peer[:2]) if isinstance(peer, tuple) else "local (control socket)"
        self.prefix = self.backend.head + f"client: {client}\n\n".encode()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        out: list[bytes] = []
        close = False
        while not close:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD:
                    out.append(_response(400, b"bad request\n", False, "GET"))
                    close = True
                break
            raw = self.buffer[:end]
            head = raw.decode("latin-1").split("\r\n")
            parts = head[0].split()
            length, keep_alive = 0, len(parts) == 3 and parts[2] == "HTTP/1.1"
            try:
                for line in head[1:]:
                    name, _, value = line.partition(":")
                    name = name.strip().lower()
                    if name == "content-length":
                        length = int(value)
                    elif name == "connection":
                        value = value.strip().lower()
                        keep_alive = value == "keep-alive" or (keep_alive and value != "close")
            except ValueError:
                parts = []
            if len(parts) != 3:
                out.append(_response(400, b"bad request\n", False, "GET"))
                close = True
                break
            if len(self.buffer) < end + 4 + length:
                break  # wait for the rest of the body
            self.buffer = self.buffer[end + 4 + length:]
            method = parts[0]
            answer = None
            if parts[1].startswith("/healthcheck"):
                answer = self.backend.health(method, parts[1].split("?", 1)[0])
            if answer is None:
                answer = 200, self.prefix + raw.replace(b"\r\n", b"\n") + b"\n"
            out.append(_response(*answer, keep_alive, method))
            close = not keep_alive
        assert self.transport is not None
        if out:
            self.transport.write(b"".join(out))
        if close:
            self.transport.close()


REASONS = {200: "OK", 400: "Bad Request", 503: "Service Unavailable"}


def _response(status: int, body: bytes, keep_alive: bool, method: str) -> bytes:
    head = (f"HTTP/1.1 {status} {REASONS[status]}\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n").encode()
    return head if method == "HEAD" else head + body


async def serve(address: str, port: int, name: str | None = None,
                control_socket: str | None = None) -> None:
    backend = Backend(address, port, name)
    loop = asyncio.get_running_loop()
    servers = [await loop.create_server(lambda: HttpProtocol(backend), address, port,
                                        reuse_address=True, backlog=1024)]
    if control_socket:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(control_socket)  # left by a backend that was killed
        servers.append(await loop.create_unix_server(lambda: HttpProtocol(backend),
                                                     control_socket))
    try:
        async with stop_signal() as stop:
            print(f"backend listening on {_hostport(address, port)}", flush=True)
            await stop.wait()
    finally:
        for server in servers:
            server.close()
        if control_socket:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(control_socket)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lbaas.demo.backend_server", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--address", required=True, help="address to listen on and report")
    parser.add_argument("--port", type=int, default=80, help="TCP port (default: %(default)s)")
    parser.add_argument("--name", help="text after 'backend ' in answers (default: the address)")
    parser.add_argument("--control-socket", metavar="PATH",
                        help="also serve on this unix socket (default: none)")
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.address, args.port, args.name, args.control_socket))
    except OSError as exc:
        print(f"backend: cannot listen on {args.address}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
