"""nftables.conf for UDP/SCTP listeners: golden files, ``nft -c`` on each, slot dealing, and
hostile values (every one is refused or leaves the rules' shape unchanged).

Regenerate the goldens with ``UPDATE_GOLDEN=1 pytest tests/render/test_nftables.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from render_aggregates import clone, listener, load_balancer, member, monitor, pool, spec

from lbaas.render import RenderError, RenderOptions, render_bundle
from lbaas.render.nftables import (
    NFTABLES_CONF,
    SLOTS,
    UDP_MEMBERS_JSON,
    deal_slots,
    render_nftables,
)

GOLDEN = Path(__file__).parent / "golden"


def udp_round_robin() -> dict[str, Any]:
    p = pool(1, "UDP", members=[
        member(1, 1, "10.0.1.11", 5353), member(2, 1, "10.0.1.12", 5353, weight=2),
        member(3, 1, "10.0.1.13", 5353, backup=True),
        member(4, 1, "10.0.1.14", 5353, admin_state_up=False),
        member(5, 1, "10.0.1.15", 5353, weight=0),
        member(6, 1, "10.0.1.16", 5353, monitor_address="10.0.1.116", monitor_port=7)],
        healthmonitor=monitor(1, 1, "UDP-CONNECT", delay=2, timeout=1, max_retries=1))
    return load_balancer(listeners=[
        listener(1, "UDP", 53, default_pool_id=p["id"], allowed_cidrs=["198.51.100.0/24"]),
        listener(2, "HTTP", 80)], pools=[p])


def udp_source_ip_persistence() -> dict[str, Any]:
    p = pool(1, "UDP", "SOURCE_IP_PORT", members=[member(1, 1, "10.0.1.11", 5353)],
             session_persistence={"type": "SOURCE_IP", "persistence_timeout": 120},
             healthmonitor=monitor(1, 1, "HTTP", url_path="/health", expected_codes="200-204"))
    backups = pool(2, "UDP", "LEAST_CONNECTIONS",
                   members=[member(2, 2, "10.0.1.12", 53, backup=True)])
    return load_balancer(listeners=[
        listener(1, "UDP", 53, default_pool_id=p["id"]),
        listener(2, "UDP", 54, default_pool_id=backups["id"]),
        listener(3, "UDP", 55, admin_state_up=False, default_pool_id=p["id"])],
        pools=[p, backups])


def sctp_source_ip_port() -> dict[str, Any]:
    p = pool(1, "SCTP", "SOURCE_IP_PORT", members=[
        member(1, 1, "10.0.1.11", 3868), member(2, 1, "10.0.1.12", 3868)],
        session_persistence={"type": "SOURCE_IP", "persistence_timeout": 60},
        healthmonitor=monitor(1, 1, "SCTP"))
    return load_balancer(listeners=[listener(1, "SCTP", 3868, default_pool_id=p["id"])],
                         pools=[p])


SCENARIOS: dict[str, Callable[[], dict[str, Any]]] = {
    "nft_udp_round_robin": udp_round_robin,
    "nft_udp_source_ip_persistence": udp_source_ip_persistence,
    "nft_sctp_source_ip_port": sctp_source_ip_port,
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_matches_golden_file(name: str) -> None:
    files = render_nftables(spec(SCENARIOS[name]()))
    for suffix, key in (("nft", NFTABLES_CONF), ("json", UDP_MEMBERS_JSON)):
        path = GOLDEN / f"{name}.{suffix}"
        if os.environ.get("UPDATE_GOLDEN") == "1":
            path.write_text(files[key])
        assert files[key] == path.read_text()


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_golden_file_loads_in_nft_check(name: str) -> None:
    nft = shutil.which("nft")
    if nft is None or os.geteuid() != 0:
        pytest.skip("needs root and nft")
    # A fresh network namespace: -c never changes anything, but it must not read the host's.
    result = subprocess.run(["unshare", "-n", nft, "-c", "-f", str(GOLDEN / f"{name}.nft")],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


def test_bundle_carries_nftables_only_with_udp_listeners() -> None:
    files = render_bundle(spec(udp_round_robin()), RenderOptions()).files
    assert {NFTABLES_CONF, UDP_MEMBERS_JSON} <= set(files)
    assert "10.0.1.11" not in files["haproxy.cfg"]
    plain = load_balancer(listeners=[listener(1, "TCP", 22)])
    assert NFTABLES_CONF not in render_bundle(spec(plain), RenderOptions()).files


def test_members_table_lists_eligible_members_with_their_checks() -> None:
    table = json.loads(render_nftables(spec(udp_round_robin()))[UDP_MEMBERS_JSON])
    (entry,) = table["pools"].values()
    by_address = {m["address"]: m for m in entry["members"]}
    assert sorted(by_address) == ["10.0.1.11", "10.0.1.12", "10.0.1.13", "10.0.1.16"]
    assert by_address["10.0.1.13"]["backup"] is True
    assert (by_address["10.0.1.16"]["check_address"], by_address["10.0.1.16"]["check_port"]) \
        == ("10.0.1.116", 7)
    assert entry["monitor"] == {"type": "UDP-CONNECT", "delay": 2, "timeout": 1,
                                "max_retries": 1, "max_retries_down": 3}


def test_slots_follow_weights_and_interleave() -> None:
    slots = deal_slots([("a", 1), ("b", 2), ("c", 0)])
    assert len(slots) == SLOTS and Counter(slots) == {"a": 80, "b": 160}
    assert deal_slots([("a", 1), ("b", 1)])[:4] == ["a", "b", "a", "b"]
    assert deal_slots([]) == []


def test_only_backups_serve_when_there_is_no_primary() -> None:
    conf = render_nftables(spec(udp_source_ip_persistence()))[NFTABLES_CONF]
    assert "0 : 10.0.1.12 . 53" in conf


EVIL = ["10.0.0.1 . 53 }\n\tchain evil {", "10.0.0.1\nflush ruleset", "1; flush ruleset",
        "53 }", "x\"; flush ruleset", "/x\nflush ruleset", "200\nflush ruleset", True, -1,
        10**9, None, "10.0.0.0/8 } drop\n", {"a": 1}, ["10.0.0.1"]]
FIELDS: dict[str, Callable[[dict[str, Any], Any], None]] = {
    "vip_address": lambda lb, v: lb.update(vip_address=v),
    "listener id": lambda lb, v: lb["listeners"][0].update(id=v),
    "protocol_port": lambda lb, v: lb["listeners"][0].update(protocol_port=v),
    "allowed_cidrs": lambda lb, v: lb["listeners"][0].update(allowed_cidrs=[v]),
    "member address": lambda lb, v: lb["pools"][0]["members"][0].update(address=v),
    "member port": lambda lb, v: lb["pools"][0]["members"][0].update(protocol_port=v),
    "member weight": lambda lb, v: lb["pools"][0]["members"][0].update(weight=v),
    "monitor_address": lambda lb, v: lb["pools"][0]["members"][0].update(monitor_address=v),
    "monitor delay": lambda lb, v: lb["pools"][0]["healthmonitor"].update(delay=v),
    "monitor type": lambda lb, v: lb["pools"][0]["healthmonitor"].update(type=v),
    "url_path": lambda lb, v: lb["pools"][0]["healthmonitor"].update(type="HTTP", url_path=v),
    "expected_codes": lambda lb, v: lb["pools"][0]["healthmonitor"].update(
        type="HTTP", expected_codes=v),
    "persistence_timeout": lambda lb, v: lb["pools"][0].update(
        session_persistence={"type": "SOURCE_IP", "persistence_timeout": v}),
}


def _shape(conf: str) -> list[str]:
    """Each line's leading words up to the first value-bearing word."""
    return [" ".join(line.split()[:2]) for line in conf.splitlines()]


@pytest.mark.parametrize("field", sorted(FIELDS))
@pytest.mark.parametrize("value", EVIL, ids=range(len(EVIL)))
def test_hostile_values_are_refused_or_inert(field: str, value: Any) -> None:
    base = udp_round_robin()
    if field == "persistence_timeout":  # a valid value adds lines: compare with one
        FIELDS[field](base, 120)
    clean = render_nftables(spec(base))
    lb = clone(base)
    FIELDS[field](lb, value)
    try:
        files = render_nftables(spec(lb))
    except RenderError:
        return
    shapes = [_shape(clean[NFTABLES_CONF]), _shape(render_nftables(spec(udp_round_robin()))
                                                   [NFTABLES_CONF])]
    assert _shape(files[NFTABLES_CONF]) in shapes  # None persistence_timeout: no timeout
    assert "flush ruleset" not in files[NFTABLES_CONF] and "evil" not in files[NFTABLES_CONF]
    json.loads(files[UDP_MEMBERS_JSON])
