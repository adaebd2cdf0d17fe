"""Who may speak VXLAN to this host: an nftables table per lbaas overlay instance.

The kernel's VXLAN socket listens on the VXLAN port of every address of the host (whatever the
device's ``local``), authenticates nothing, and learns inner source MACs from whatever arrives:
one forged datagram from any machine that reaches the host could move the forwarding entry of a
segment's gateway MAC to itself and receive that segment's traffic (heartbeats, agent replies).

``table inet lbaas_underlay_<8 hex of the owner mark>``, hook ``input``: UDP to the VXLAN port is
accepted only when it is addressed to this host's underlay address (``local``) and comes from
one of the current peers, the union of the flood lists the controller keeps (every host sharing
a segment with this one, the controller included); every other datagram to that port, IPv4 or
IPv6, to any address of the host, is dropped. The table exists from the first segment on (with
no peer yet it drops everything), follows every flood-list change, and is deleted with the
segments (``lbaas teardown``; an amphora host's namespace takes it with it).

The same table takes the overlay's own datagrams out of conntrack (``notrack`` at priority
``raw``, in ``prerouting`` to ``local`` and in ``output`` from ``local``, VXLAN port; no set
lookup there: a non-peer's datagram is untracked too and dropped by ``input`` all the same, and
a dropped datagram never gets a conntrack entry either way): any rule with
``ct`` in the namespace (``host_guard.py``'s ``ct state``) makes the kernel track every packet,
and each overlay packet would otherwise pay a conntrack lookup on the way out and another on the
way in (bench-fleet: docs/benchmarks.md, run 11). Nothing matches VXLAN on its state.

What it cannot stop: a machine ON the underlay that forges a peer's source address. The
underlay must be a trusted, isolated network, as Neutron's VXLAN requires (docs/security.md).

Key choice: a table of our own, rewritten whole in one ``nft -f`` transaction, as
``host_guard.py`` does; nothing else in the ruleset is read or changed. The drop covers the
VXLAN port on the whole network namespace, so one overlay instance per namespace and port.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from lbaas.drivers.base import DriverError
from lbaas.drivers.local import nft_table

TABLE_PREFIX = "lbaas_underlay_"


def table_name(mark: str) -> str:
    return nft_table.table_name(TABLE_PREFIX, mark)


def _ipv4(address: str) -> str:
    try:
        return str(ipaddress.IPv4Address(address))
    except ValueError:
        raise DriverError(f"not an IPv4 underlay address: {address!r}") from None


def ruleset(table: str, local_ip: str, port: int, peers: Iterable[str]) -> str:
    """The whole table (addresses are checked: they go into the rules)."""
    local = _ipv4(local_ip)
    members = sorted({_ipv4(p) for p in peers} - {local})
    elements = f"        elements = {{ {', '.join(members)} }}" if members else ""
    return "\n".join(line for line in [
        f"table inet {table}", f"delete table inet {table}", f"table inet {table} {{",
        "    set peers {", "        type ipv4_addr", elements, "    }",
        "    chain input {",
        "        type filter hook input priority filter - 5; policy accept;",
        f"        ip daddr {local} ip saddr @peers udp dport {int(port)} accept",
        f"        udp dport {int(port)} counter drop",
        "    }",
        "    chain untracked_in {",
        "        type filter hook prerouting priority raw; policy accept;",
        f"        ip daddr {local} udp dport {int(port)} notrack",
        "    }",
        "    chain untracked_out {",
        "        type filter hook output priority raw; policy accept;",
        f"        ip saddr {local} udp dport {int(port)} notrack",
        "    }", "}", ""] if line)


class UnderlayGuard(nft_table.OwnedTable[frozenset[str]]):
    def __init__(self, mark: str, local_ip: str, port: int) -> None:
        super().__init__(table_name(mark))
        self.local_ip = local_ip
        self.port = port
        self.peers: frozenset[str] = frozenset()

    async def ensure(self) -> None:
        """The table before a segment comes up: one left by this instance's previous process
        stays as it is (its peers are the last flood lists) until the next flood sync (a
        host-agent's at start, ``HostAgent.recover_flood``)."""
        if self._written is not None or not await self.exists():
            await self.sync(self.peers)

    async def sync_flood(self, flood: dict[int, list[str]]) -> None:
        """Peers: every address of the flood lists (all segments)."""
        await self.sync({ip for ips in flood.values() for ip in ips})

    async def sync(self, peers: Iterable[str]) -> None:
        wanted = frozenset(peers) - {self.local_ip}
        if wanted == self._written and await self.exists():
            return
        await self.write(ruleset(self.table, self.local_ip, self.port, wanted))
        self.peers = self._written = wanted
