"""One health probe of a UDP/SCTP pool member: True (up), False (down), None (cannot tell).

Key choices, as upstream's amphora does with keepalived's checkers: UDP-CONNECT sends a datagram
on a connected socket and counts only an ICMP port-unreachable (ECONNREFUSED) as down, so a
silent service is up; PING is an ICMP echo on a raw socket (the agent is root in its namespace,
and the amphora has no ``ping`` binary); SCTP cannot be probed because this kernel has no SCTP
sockets, so it reports None (kept up, logged once). Every probe socket is made in the amphora's
data namespace (``netns.py``): members are reached as HAProxy reaches them, never through the
management network.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import struct
from typing import Any

from lbaas.agent.netns import DataNamespace


async def probe(monitor: dict[str, Any], address: str, port: int,
                netns: DataNamespace | None = None) -> bool | None:
    kind = monitor["type"]
    timeout = max(float(monitor.get("timeout") or 1), 0.1)
    ns = netns or DataNamespace()
    try:
        if kind == "UDP-CONNECT":
            return await asyncio.wait_for(udp_connect(address, port, timeout, ns), timeout + 1)
        if kind == "PING":
            return await asyncio.wait_for(ping(address, ns), timeout)
        if kind == "SCTP":
            return None
        if kind in ("HTTP", "HTTPS"):
            return await asyncio.wait_for(http(monitor, address, port, kind == "HTTPS", ns),
                                          timeout)
        return await asyncio.wait_for(tcp(address, port, ns), timeout)  # TCP, TLS-HELLO
    except (TimeoutError, OSError):
        return False


def _family(address: str) -> int:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


async def _connected(address: str, port: int, ns: DataNamespace) -> socket.socket:
    sock = ns.socket(_family(address), socket.SOCK_STREAM)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (address, port))
    except BaseException:
        sock.close()
        raise
    return sock


async def udp_connect(address: str, port: int, wait: float, ns: DataNamespace) -> bool:
    """Down only on ECONNREFUSED (ICMP port unreachable) within ``wait`` seconds."""
    loop = asyncio.get_running_loop()
    with ns.socket(_family(address), socket.SOCK_DGRAM) as sock:
        sock.connect((address, port))
        try:
            await loop.sock_sendall(sock, b"lbaas-health-check\n")
            await asyncio.wait_for(loop.sock_recv(sock, 2048), wait)
        except ConnectionRefusedError:
            return False
        except TimeoutError:
            return True  # no answer and no ICMP error: like `nc -uz`, counted as up
    return True


async def tcp(address: str, port: int, ns: DataNamespace) -> bool:
    (await _connected(address, port, ns)).close()
    return True


async def http(monitor: dict[str, Any], address: str, port: int, tls: bool,
               ns: DataNamespace) -> bool:
    context = None
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    host = monitor.get("domain_name") or address
    reader, writer = await asyncio.open_connection(
        sock=await _connected(address, port, ns), ssl=context,
        server_hostname=host if tls else None)
    try:
        request = (f"{monitor.get('http_method', 'GET')} {monitor.get('url_path', '/')} "
                   f"HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n")
        writer.write(request.encode())
        await writer.drain()
        status = (await reader.readline()).split()
    finally:
        writer.close()
    return len(status) >= 2 and status[1].isdigit() and \
        expected(int(status[1]), monitor.get("expected_codes", "200"))


def expected(code: int, codes: str) -> bool:
    """Octavia's "200", "200,202" or "200-204"."""
    if "-" in codes:
        low, high = codes.split("-", 1)
        return int(low) <= code <= int(high)
    return str(code) in codes.split(",")


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


async def ping(address: str, ns: DataNamespace) -> bool:
    """One ICMP echo (IPv4) on a raw socket; True when the matching reply arrives."""
    loop = asyncio.get_running_loop()
    ident = os.getpid() & 0xFFFF
    header = struct.pack("!BBHHH", 8, 0, 0, ident, 1)
    payload = b"lbaas"
    packet = struct.pack("!BBHHH", 8, 0, _checksum(header + payload), ident, 1) + payload
    with ns.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as sock:
        sock.connect((address, 0))
        await loop.sock_sendall(sock, packet)
        while True:
            data = await loop.sock_recv(sock, 2048)
            icmp = data[(data[0] & 0x0F) * 4:]
            if len(icmp) >= 8 and icmp[0] == 0 and struct.unpack("!H", icmp[4:6])[0] == ident:
                return True
