"""Random /24 prefixes that nothing on this host routes, for tests that start their own networks
(a module of its own: the scale, data-plane and dashboard tests all need them)."""

from __future__ import annotations

import ipaddress
import random
import subprocess


def _routed() -> list[ipaddress.IPv4Network]:
    out = subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True,
                         text=True, check=True).stdout
    nets = []
    for line in out.splitlines():
        words = line.split()
        dest = words[1] if words and words[0] in ("local", "broadcast", "unicast") else (
            words[0] if words else "")
        if dest and dest != "default" and dest[0].isdigit():
            nets.append(ipaddress.ip_network(dest, strict=False))
    return nets


def unused_prefixes(n: int) -> list[str]:
    """``n`` random ``10.24x.y`` prefixes (``.0/24`` each) that no route on this host overlaps."""
    routed = _routed()
    out: list[str] = []
    while len(out) < n:
        prefix = f"10.{random.randint(240, 247)}.{random.randint(0, 255)}"
        net = ipaddress.ip_network(f"{prefix}.0/24")
        if prefix not in out and not any(net.overlaps(r) for r in routed):
            out.append(prefix)
    return out


def network_entry(name: str, prefix: str, last: int = 200) -> str:
    """A ``[networking] networks`` TOML entry: ``prefix.0/24``, gateway .1, pool .10 to ``last``."""
    return (f"{{name = '{name}', subnet_name = '{name}-subnet', cidr = '{prefix}.0/24', "
            f"gateway_ip = '{prefix}.1', allocation_start = '{prefix}.10', "
            f"allocation_end = '{prefix}.{last}'}}")
