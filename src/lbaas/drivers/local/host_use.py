"""Addresses this host already sends traffic to, which a managed subnet must never take over.

Before a bridge gets a host address and a route (``network.LocalNetwork.ensure_subnet``), every
address the host is known to use is checked against the subnet: the resolver's nameservers
(/etc/resolv.conf), /etc/hosts entries, the remote ends of established TCP connections
(/proc/net/tcp, tcp6) and the operator's own list (``networking.host_used_addresses``). Routes
and their gateways, the default one included, are checked by the network driver itself from
``ip route``. A hit keeps the bridge isolated: the host would otherwise route that address into
the bridge instead of where it goes today (issue 11: package registries at an address inside
the old default ``public`` range went unreachable while lbaas ran).

Key choice: ``HostUse`` is the seam. Tests hand it their own files (or a subclass); nothing here
reads the real files at import time, and a file that cannot be read counts as empty.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
TCP_ESTABLISHED = "01"


@dataclass(frozen=True)
class UsedAddress:
    network: Network  # a single address is a /32 or /128
    why: str  # e.g. "nameserver in /etc/resolv.conf"


@dataclass(frozen=True)
class HostUse:
    """Where to look; ``extra``: addresses or CIDRs the operator says the host uses."""

    resolv_conf: Path = Path("/etc/resolv.conf")
    hosts_file: Path = Path("/etc/hosts")
    proc_net: Path = Path("/proc/net")
    extra: tuple[str, ...] = field(default=())

    def used(self, ignore_local: frozenset[str] = frozenset()) -> list[UsedAddress]:
        """Everything the host is known to use; connections whose local address is in
        ``ignore_local`` (the host's addresses on lbaas bridges) are lbaas's own traffic."""
        found = [UsedAddress(_network(x), "in networking.host_used_addresses")
                 for x in self.extra]
        found += [UsedAddress(_network(a), f"nameserver in {self.resolv_conf}")
                  for a in nameservers(_read(self.resolv_conf))]
        found += [UsedAddress(_network(a), f"{name} in {self.hosts_file}")
                  for a, name in hosts_entries(_read(self.hosts_file))]
        for proto in ("tcp", "tcp6"):
            for local, remote in established(_read(self.proc_net / proto)):
                if str(local) not in ignore_local:
                    found.append(UsedAddress(_network(str(remote)),
                                             f"established connection from {local}"))
        return [u for u in found if not u.network.is_loopback and not u.network.is_unspecified]

    def conflict(self, cidr: str, ignore_local: frozenset[str] = frozenset()) -> str | None:
        """Why ``cidr`` must stay away from the host (None: nothing the host uses is inside)."""
        subnet = ipaddress.ip_network(cidr, strict=False)
        for use in self.used(ignore_local):
            if use.network.version == subnet.version and use.network.overlaps(subnet):
                what = use.network.network_address if use.network.num_addresses == 1 \
                    else use.network
                return f"subnet {cidr} contains {what}, which this host uses ({use.why})"
        return None


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _network(text: str) -> Network:
    return ipaddress.ip_network(text.split("%")[0], strict=False)


def _address(text: str) -> Address | None:
    try:
        return ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return None


def nameservers(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        words = line.split("#")[0].split()
        if len(words) >= 2 and words[0] == "nameserver" and _address(words[1]) is not None:
            out.append(words[1])
    return out


def hosts_entries(text: str) -> list[tuple[str, str]]:
    """(address, first name) of each /etc/hosts line."""
    out = []
    for line in text.splitlines():
        words = line.split("#")[0].split()
        if len(words) >= 2 and _address(words[0]) is not None:
            out.append((words[0], words[1]))
    return out


def _proc_address(text: str) -> Address:
    """/proc/net/tcp's hex address: 32-bit words in host (little-endian) order."""
    raw = bytes.fromhex(text)
    swapped = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return ipaddress.ip_address(swapped)


def established(text: str) -> list[tuple[Address, Address]]:
    """(local, remote) addresses of established connections in /proc/net/tcp{,6}."""
    out = []
    for line in text.splitlines()[1:]:
        words = line.split()
        if len(words) < 4 or words[3] != TCP_ESTABLISHED:
            continue
        try:
            local = _proc_address(words[1].split(":")[0])
            remote = _proc_address(words[2].split(":")[0])
        except ValueError:
            continue
        if isinstance(remote, ipaddress.IPv6Address) and remote.ipv4_mapped is not None:
            remote = remote.ipv4_mapped
        if isinstance(local, ipaddress.IPv6Address) and local.ipv4_mapped is not None:
            local = local.ipv4_mapped
        out.append((local, remote))
    return out
