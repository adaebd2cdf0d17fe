"""Gratuitous ARP for a SINGLE amphora's VIP, sent from inside its data namespace.

A replacement amphora (failover, drain) answers for the same VIP with another MAC; neighbours
(the gateway, clients on the VIP subnet) keep the old MAC for up to tens of seconds unless told.
keepalived announces the VIP itself for ACTIVE_STANDBY; for SINGLE the network driver does it
when it plugs the VIP, as upstream's amphora agent runs ``arping -U`` after plugging it.

Key choice: a raw ``AF_PACKET`` socket made in a short-lived thread that entered the namespace
with ``setns(2)`` (a thread's namespace dies with it): no ``arping`` package, no process spawn.
"""

from __future__ import annotations

import ctypes
import ipaddress
import logging
import os
import socket
import struct
import threading
import time

log = logging.getLogger(__name__)

CLONE_NEWNET = 0x40000000
ETH_P_ARP = 0x0806
NETNS_DIR = "/run/netns"


def _frame(mac: bytes, address: str) -> bytes:
    ip = ipaddress.IPv4Address(address).packed
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac, ip, b"\x00" * 6, ip)
    return b"\xff" * 6 + mac + struct.pack("!H", ETH_P_ARP) + arp


def _send(netns: str, dev: str, address: str, count: int, interval: float) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(os.path.join(NETNS_DIR, netns), os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
        finally:
            os.close(fd)
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP)) as s:
            s.bind((dev, ETH_P_ARP))
            frame = _frame(s.getsockname()[4], address)
            for i in range(count):
                if i:
                    time.sleep(interval)
                s.send(frame)
    except OSError as exc:
        log.warning("gratuitous ARP for %s from %s/%s: %s", address, netns, dev, exc)


def announce(netns: str, dev: str, address: str, count: int = 3,
             interval: float = 0.5) -> None:
    """Send ``count`` gratuitous ARP requests for ``address`` on ``dev`` in ``netns``, in the
    background (IPv4 only; IPv6 neighbours are not told)."""
    if ipaddress.ip_address(address).version != 4:
        return
    threading.Thread(target=_send, args=(netns, dev, address, count, interval),
                     name=f"garp-{netns}", daemon=True).start()
