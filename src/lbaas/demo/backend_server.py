"""A small, fast HTTP/1.1 demo backend (stdlib only): answers with its own address.

``python -m lbaas.demo.backend_server --address A --port P``

- ``GET /`` -> 200 ``backend <address>\\n``
- ``GET /healthcheck`` -> 200 ``ok`` or 503 ``down`` after ``POST /healthcheck/down``
- ``POST /healthcheck/down`` / ``POST /healthcheck/up`` toggle it; anything else -> 404.

A bare ``asyncio.Protocol`` with keep-alive and pipelining (about twice the rate of asyncio
streams), so a benchmark measures the load balancer rather than this server.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

MAX_HEAD = 65536


class Backend:
    def __init__(self, address: str, name: str | None = None) -> None:
        self.body = f"backend {name or address}\n".encode()
        self.healthy = True

    def respond(self, method: str, path: str) -> tuple[int, bytes]:
        path = path.split("?", 1)[0]
        if path == "/" and method in ("GET", "HEAD"):
            return 200, self.body
        if path == "/healthcheck" and method in ("GET", "HEAD"):
            return (200, b"ok\n") if self.healthy else (503, b"down\n")
        if path in ("/healthcheck/down", "/healthcheck/up") and method == "POST":
            self.healthy = path.endswith("/up")
            return 200, b"ok\n" if self.healthy else b"down\n"
        return 404, b"not found\n"



class HttpProtocol(asyncio.Protocol):
    """HTTP/1.1 with keep-alive and pipelining; bodies are read and ignored."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

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
            head = self.buffer[:end].decode("latin-1").split("\r\n")
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
            status, body = self.backend.respond(parts[0], parts[1])
            out.append(_response(status, body, keep_alive, parts[0]))
            close = not keep_alive
        assert self.transport is not None
        if out:
            self.transport.write(b"".join(out))
        if close:
            self.transport.close()


REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 503: "Service Unavailable"}


def _response(status: int, body: bytes, keep_alive: bool, method: str) -> bytes:
    head = (f"HTTP/1.1 {status} {REASONS[status]}\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n").encode()
    return head if method == "HEAD" else head + body


async def serve(address: str, port: int, name: str | None = None) -> None:
    backend = Backend(address, name)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: HttpProtocol(backend), address, port,
                                      reuse_address=True, backlog=1024)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"backend listening on {address}:{port}", flush=True)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lbaas.demo.backend_server", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--address", required=True, help="address to listen on and report")
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--name", help="text after 'backend ' in GET / (default: the address)")
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.address, args.port, args.name))
    except OSError as exc:
        print(f"backend: cannot listen on {args.address}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
