"""The host's own firewall against tenant traffic: an nftables table per lbaas instance.

An amphora's data namespace routes through its VIP subnet's gateway, and on an operator network
(``public``, ``private``, networks seeded from the settings) that gateway is an address of this
host. A member at that gateway (or any host address reached through it) would make a tenant's
VIP relay into the host's own services (RabbitMQ, the database, the API's internals). The API
refuses such members; this table is the data plane's second layer for what slips past it (a row
written straight into the database, an address the host gains later).

``table inet lbaas_guard_<8 hex of the owner mark>``, hook ``input``: packets arriving on one of
this instance's guarded bridges (every managed bridge except the management network's) that
open a connection to the host itself are refused (ICMP administratively prohibited, so HAProxy
moves on to another member at once instead of waiting out a connect timeout).
Established/related traffic (replies to what the host started: its own requests to VIPs and
floating IPs), ICMPv6 neighbour discovery and ICMP/ICMPv6 echo pass, so routing through the
gateway keeps working; forwarded traffic (hook ``forward``) is not this table's business. The
management bridge is not guarded: the amphorae's heartbeats are new datagrams to the health
manager on it (the controller opens the agent connections, so those are replies either way).

Key choice: a table of our own, named per instance and replaced in one ``nft -f`` transaction;
nothing else in the host's ruleset is read or changed, and two instances (two data directories
on one machine) each guard only their own bridges. It is rewritten from the subnets the network
driver has ensured, so it follows them through restarts, and deleted with the last of them
(``lbaas teardown``).
"""

from __future__ import annotations

import hashlib
import logging
import re

from lbaas.drivers.base import DriverError, SubnetInfo
from lbaas.drivers.local import names
from lbaas.drivers.local import netlink as nl

log = logging.getLogger(__name__)

TABLE_PREFIX = "lbaas_guard_"
NFT = "nft"
_BRIDGE = re.compile(rf"^{re.escape(names.BRIDGE_PREFIX)}[0-9a-f]{{8}}$")


def table_name(mark: str) -> str:
    return TABLE_PREFIX + hashlib.sha256(mark.encode()).hexdigest()[:8]


def guarded_bridges(subnets: list[SubnetInfo]) -> list[str]:
    """Every bridge of ``subnets`` except the management network's."""
    return sorted({names.bridge_name(s.network_id) for s in subnets if not s.management})


def ruleset(table: str, bridges: list[str]) -> str:
    """The whole table (bridge names are checked: they go into the rules)."""
    for bridge in bridges:
        if not _BRIDGE.match(bridge):
            raise DriverError(f"not an lbaas bridge name: {bridge!r}")
    elements = ", ".join(f'"{b}"' for b in bridges)
    return "\n".join([
        f"table inet {table}", f"delete table inet {table}", f"table inet {table} {{",
        "    set bridges {", "        type ifname", f"        elements = {{ {elements} }}",
        "    }",
        "    chain input {",
        "        type filter hook input priority filter - 5; policy accept;",
        "        iifname != @bridges accept",
        "        ct state established,related accept",
        "        icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit,"
        " nd-router-advert, nd-redirect, echo-request } accept",
        "        icmp type echo-request accept",
        "        counter reject with icmpx type admin-prohibited",
        "    }", "}", ""])


class HostGuard:
    def __init__(self, mark: str) -> None:
        self.table = table_name(mark)
        self._written: list[str] | None = None

    async def sync(self, subnets: list[SubnetInfo]) -> None:
        """Make the table guard exactly the bridges of ``subnets`` (none: no table)."""
        bridges = guarded_bridges(subnets)
        if bridges == self._written and await self.exists():
            return
        if bridges:
            rc, _, err = await nl.run(NFT, "-f", "-", check=False,
                                      stdin=ruleset(self.table, bridges))
            if rc != 0:
                raise DriverError(f"nft: cannot write table inet {self.table}: {err.strip()}")
        else:
            await self.remove()
        self._written = bridges

    async def exists(self) -> bool:
        rc, _, _ = await nl.run(NFT, "list", "table", "inet", self.table, check=False)
        return rc == 0

    async def remove(self) -> bool:
        """Delete the table; True if there was one."""
        self._written = None
        rc, _, _ = await nl.run(NFT, "delete", "table", "inet", self.table, check=False)
        return rc == 0
