"""What the host reaches the world through — its global addresses, the links that carry them and
its default routes — so that a test which changes any of it is named at once (lbaas must never
change how the host reaches what it already reaches; a test that did once cut the machine off
its package registries, and nothing said which)."""

from __future__ import annotations

import json
import subprocess


def _ip_json(*args: str) -> list[dict[str, object]]:
    out = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=False)
    return list(json.loads(out.stdout)) if out.returncode == 0 and out.stdout.strip() else []


def uplink_state() -> frozenset[str]:
    """One line per global address (with its link's MTU and state) and per default route."""
    state: set[str] = set()
    for link in _ip_json("addr", "show"):
        infos = [a for a in link.get("addr_info", []) if isinstance(a, dict)
                 and a.get("scope") == "global" and not str(link.get("ifname", "")).startswith(
                     ("lb", "vx", "amp"))]  # lbaas's own bridges and legs come and go
        for info in infos:
            state.add(f"{link.get('ifname')} {info.get('local')}/{info.get('prefixlen')} "
                      f"mtu {link.get('mtu')} {link.get('operstate')}")
    for family in ("-4", "-6"):
        for route in _ip_json(family, "route", "show", "default"):
            state.add(f"default {family} via {route.get('gateway')} dev {route.get('dev')}")
    return frozenset(state)
