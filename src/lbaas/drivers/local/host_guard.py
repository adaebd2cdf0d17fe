"""The host's own firewall against tenant traffic: an nftables table per lbaas instance.

An amphora's data namespace routes through its VIP subnet's gateway, and on an operator network
(``public``, ``private``, networks seeded from the settings) that gateway is an address of this
host. A member at that gateway (or any host address reached through it) would make a tenant's
VIP relay into the host's own services (RabbitMQ, the database, the API's internals). The API
refuses such members; this table is the data plane's second layer for what slips past it (a row
written straight into the database, an address the host gains later).

``table inet lbaas_guard_<8 hex of the owner mark>``, hook ``input``: packets arriving on one of
this instance's guarded bridges (every managed bridge) that open a connection to the host itself
are refused (ICMP administratively prohibited, so HAProxy moves on to another member at once
instead of waiting out a connect timeout). Established/related traffic (replies to what the host
started: its own requests to VIPs and floating IPs, the controller's agent calls on 9443), ICMPv6
neighbour discovery and ICMP/ICMPv6 echo pass, so routing through the gateway keeps working;
forwarded traffic (hook ``forward``) is not this table's business. On the management bridges
one kind of new traffic passes too: UDP to the health manager's heartbeat ports (``[health]
bind_port`` and the ports of ``controller_ip_port_list``), the only thing an amphora agent
sends to the controller (it resolves no names and keeps the host's clock). So neither an
amphora nor, in fleet mode, anything on the overlay reaches the other services the host binds
on 0.0.0.0 (RabbitMQ, the database, the API's internals) through the management gateway.

Key choice: a table of our own, named per instance and replaced in one ``nft -f`` transaction;
nothing else in the host's ruleset is read or changed, and two instances (two data directories
on one machine) each guard only their own bridges. It is rewritten from the subnets the network
driver has ensured, so it follows them through restarts, and deleted with the last of them
(``lbaas teardown``).
"""

from __future__ import annotations

import logging
import re

from lbaas.drivers.base import DriverError, SubnetInfo
from lbaas.drivers.local import names, nft_table

log = logging.getLogger(__name__)

TABLE_PREFIX = "lbaas_guard_"
_BRIDGE = re.compile(rf"^{re.escape(names.BRIDGE_PREFIX)}[0-9a-f]{{8}}$")


def table_name(mark: str) -> str:
    return nft_table.table_name(TABLE_PREFIX, mark)


def guarded_bridges(subnets: list[SubnetInfo]) -> list[str]:
    """Every bridge of ``subnets`` except the management network's."""
    return sorted({names.bridge_name(s.network_id) for s in subnets if not s.management})


def management_bridges(subnets: list[SubnetInfo]) -> list[str]:
    """The management network's bridges (heartbeats may open to the host there)."""
    return sorted({names.bridge_name(s.network_id) for s in subnets if s.management})


def _elements(items: list[str]) -> str:
    return f"        elements = {{ {', '.join(items)} }}" if items else ""


def ruleset(table: str, bridges: list[str], management: list[str] | None = None,
            heartbeat_ports: tuple[int, ...] = ()) -> str:
    """The whole table (bridge names are checked: they go into the rules)."""
    management = management or []
    for bridge in [*bridges, *management]:
        if not _BRIDGE.match(bridge):
            raise DriverError(f"not an lbaas bridge name: {bridge!r}")
    ports = sorted({int(p) for p in heartbeat_ports if 0 < int(p) < 65536})
    lines = [
        f"table inet {table}", f"delete table inet {table}", f"table inet {table} {{",
        "    set bridges {", "        type ifname", _elements([f'"{b}"' for b in bridges]),
        "    }",
        "    set management {", "        type ifname",
        _elements([f'"{b}"' for b in management]), "    }",
        "    set heartbeat_ports {", "        type inet_service",
        _elements([str(p) for p in ports]), "    }",
        "    chain input {",
        "        type filter hook input priority filter - 5; policy accept;",
        "        iifname != @bridges iifname != @management accept",
        "        iifname @management udp dport @heartbeat_ports accept",
        "        ct state established,related accept",
        "        icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit,"
        " nd-router-advert, nd-redirect, echo-request } accept",
        "        icmp type echo-request accept",
        "        counter reject with icmpx type admin-prohibited",
        "    }", "}", ""]
    return "\n".join(line for line in lines if line) + "\n"


class HostGuard(nft_table.OwnedTable[tuple[list[str], list[str], tuple[int, ...]]]):
    def __init__(self, mark: str, heartbeat_ports: tuple[int, ...] = ()) -> None:
        """``heartbeat_ports``: UDP ports amphorae may send to on the management bridges
        (none: the management bridges take no new traffic at all)."""
        super().__init__(table_name(mark))
        self.heartbeat_ports = heartbeat_ports

    async def sync(self, subnets: list[SubnetInfo]) -> None:
        """Make the table guard exactly the bridges of ``subnets`` (none: no table)."""
        bridges, management = guarded_bridges(subnets), management_bridges(subnets)
        wanted = (bridges, management, self.heartbeat_ports)
        if wanted == self._written and await self.exists():
            return
        if bridges or management:
            await self.write(ruleset(self.table, bridges, management, self.heartbeat_ports))
        else:
            await self.remove()
        self._written = wanted
