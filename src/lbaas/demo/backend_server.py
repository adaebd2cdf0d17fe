"""A small, fast HTTP/1.1 demo backend (stdlib only): answers with its own address.

``python -m lbaas.demo.backend_server --address A --port P``

- ``GET /`` -> 200 ``backend <address>\\n``
- ``GET /healthcheck`` -> 200 ``ok`` or 503 ``down`` after ``POST /healthcheck/down``
- ``POST /healthcheck/down`` / ``POST /healthcheck/up`` toggle it; anything else -> 404.

asyncio streams with keep-alive: one parse loop per connection, no per-request allocations
beyond the header lines, so a benchmark measures the load balancer and not this server.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

MAX_HEADER_LINES = 100


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

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request_line = await reader.readline()
                if not request_line:
                    break
                parts = request_line.decode("latin-1").split()
                if len(parts) != 3:
                    writer.write(_response(400, b"bad request\n", False, "GET"))
                    break
                method, path, version = parts
                keep_alive = version == "HTTP/1.1"
                length = 0
                for _ in range(MAX_HEADER_LINES):
                    line = await reader.readline()
                    if line in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = line.decode("latin-1").partition(":")
                    name = name.strip().lower()
                    value = value.strip().lower()
                    if name == "content-length":
                        length = int(value or 0)
                    elif name == "connection":
                        keep_alive = value == "keep-alive" or (keep_alive and value != "close")
                if length:
                    await reader.readexactly(length)
                status, body = self.respond(method, path)
                writer.write(_response(status, body, keep_alive, method))
                if not keep_alive:
                    break
                await writer.drain()
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()


REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 503: "Service Unavailable"}


def _response(status: int, body: bytes, keep_alive: bool, method: str) -> bytes:
    head = (f"HTTP/1.1 {status} {REASONS[status]}\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n").encode()
    return head if method == "HEAD" else head + body


async def serve(address: str, port: int, name: str | None = None) -> None:
    backend = Backend(address, name)
    server = await asyncio.start_server(backend.handle, address, port, reuse_address=True,
                                        backlog=1024)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
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
