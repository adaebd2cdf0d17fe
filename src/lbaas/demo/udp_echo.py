"""A UDP demo backend (stdlib only): answers each datagram with ``backend <address>\\n``.

``python -m lbaas.demo.udp_echo --address A --port P``

The answer names the backend, not the datagram, so a client sending through a VIP sees which
member served it (the spread). Health checks (UDP-CONNECT) get the same answer.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from lbaas.demo.stopping import stop_signal


class EchoProtocol(asyncio.DatagramProtocol):
    def __init__(self, body: bytes) -> None:
        self.body = body
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.transport is not None:
            self.transport.sendto(self.body, addr)


async def serve(address: str, port: int, name: str | None = None) -> None:
    loop = asyncio.get_running_loop()
    body = f"backend {name or address}\n".encode()
    transport, _ = await loop.create_datagram_endpoint(lambda: EchoProtocol(body),
                                                       local_addr=(address, port))
    try:
        async with stop_signal() as stop:
            print(f"udp backend listening on {address}:{port}", flush=True)
            await stop.wait()
    finally:
        transport.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lbaas.demo.udp_echo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--address", required=True, help="address to listen on and report")
    parser.add_argument("--port", type=int, default=53)
    parser.add_argument("--name", help="text after 'backend ' (default: the address)")
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.address, args.port, args.name))
    except OSError as exc:
        print(f"udp backend: cannot listen on {args.address}:{args.port}: {exc}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
