"""With lbaas serving on the default networks and an amphora up, the host still reaches what it
reached before (issue 11's "done when"), and the tutorial's curl to a VIP works.

Real host state, nothing injected: every address the host is known to use (the package
registries' 203.0.113.80, the default gateways, the resolver's nameservers, /etc/hosts entries)
is looked up with ``ip route get`` before the server starts and again while an amphora serves:
the answers must be identical. Uses the default networks: run it under the shared lock
(``flock /tmp/lbaas-defaultnets.lock``).
"""

from __future__ import annotations

import json
import subprocess
import urllib.request

import pytest
from e2e_helpers import skip_reason, start_plane, stop_plane

from lbaas.drivers.local.host_use import HostUse

pytestmark = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")
REGISTRY = "203.0.113.80"  # where this machine's package registries resolve
BACKEND = "10.0.0.10"


def route_get(address: str) -> str:
    out = subprocess.run(["ip", "-o", "route", "get", address], capture_output=True, text=True)
    return (out.stdout + out.stderr).split(" uid ")[0].strip()


def used_addresses() -> set[str]:
    found = {REGISTRY}
    for route in json.loads(subprocess.run(["ip", "-j", "route", "show", "default"],
                                           capture_output=True, text=True).stdout or "[]"):
        if route.get("gateway"):
            found.add(route["gateway"])
    found |= {str(u.network.network_address) for u in HostUse().used()
              if u.network.num_addresses == 1 and u.network.version == 4}
    return found


def test_host_routes_are_unchanged_while_an_amphora_serves() -> None:
    targets = sorted(used_addresses())
    before = {t: route_get(t) for t in targets}
    p = start_plane()
    try:
        p.start_backends(BACKEND)
        lb = json.loads(p.openstack("loadbalancer", "create", "--name", "hostsafe",
                                    "--vip-subnet-id", "public-subnet", "-f", "json"))
        p.wait_lb(lb["id"], "ACTIVE")
        for command in (
                "loadbalancer listener create --name hs-web --protocol HTTP --protocol-port 80 "
                "hostsafe",
                "loadbalancer pool create --name hs-pool --lb-algorithm ROUND_ROBIN --listener "
                "hs-web --protocol HTTP",
                f"loadbalancer member create --subnet-id private-subnet --address {BACKEND} "
                "--protocol-port 80 hs-pool"):
            p.openstack(*command.split())
            p.wait_lb(lb["id"], "ACTIVE")
        vip = lb["vip_address"]
        assert vip.startswith("172.24.4.")
        # the tutorial's curl: the public network is reachable from the host
        with urllib.request.urlopen(f"http://{vip}/", timeout=10) as resp:
            assert resp.read().decode().split("\n", 1)[0] == f"backend {BACKEND}"
        during = {t: route_get(t) for t in targets}
        assert during == before
        assert "lbr" not in route_get(REGISTRY)
    finally:
        left = stop_plane(p)
    assert not left, left
    assert {t: route_get(t) for t in targets} == before
