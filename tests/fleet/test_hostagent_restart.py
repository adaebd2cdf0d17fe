"""A restarted host-agent keeps its segments' flood lists and underlay guard peers.

Before, a fresh process started with empty flood lists: the first segment call (an amphora
built on a segment the host already had) synced them, deleting every flood entry and every
peer of the underlay guard, while the controller, which believed its lists delivered, did not
push again. Now the host-agent takes the lists its segments hold at start
(``HostAgent.recover_flood``) and rewrites the guard from them.

Runs in a scratch network namespace of its own (a veth pair for the underlay, no lab).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lbaas.drivers.local import ownership, underlay_guard
from lbaas.drivers.local.overlay import ZERO_MAC, vxlan_name

LOCAL = "10.219.0.1"
PEERS = ["10.219.0.2", "10.219.0.3"]
NETWORK = "6c1d6a52-3b7e-4a8f-9f1e-2f0c0a5b7e11"

_AGENT = """
import asyncio, sys
from pathlib import Path
from lbaas.drivers.base import SubnetInfo
from lbaas.hostagent.service import HostAgent, HostIdentity

base, local, network, step = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
peers = sys.argv[5:]
subnet = SubnetInfo(network_id=network, subnet_id="s-" + network, cidr="10.220.0.0/24",
                    gateway_ip="10.220.0.1")

async def main() -> None:
    agent = HostAgent(HostIdentity("h1", "az1", 10, local), base, "u0")
    if step == "first":
        await agent.network.ensure_subnet(subnet)
        await agent.set_flood({str(vni): peers for vni in await agent.network.segments()})
    else:  # a new process: start-up, then what an amphora build on that segment does
        await agent.recover_flood()
        await agent.network.ensure_subnet(subnet)
        await agent._apply_flood()

asyncio.run(main())
"""


@pytest.fixture
def netns() -> Iterator[str]:
    if os.geteuid() != 0 or shutil.which("nft") is None:
        pytest.skip("needs root and nft")
    name = f"lbaas-shape-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        for cmd in (["link", "add", "u0", "type", "veth", "peer", "name", "u1"],
                    ["addr", "add", f"{LOCAL}/24", "dev", "u0"],
                    ["link", "set", "u0", "up"], ["link", "set", "lo", "up"]):
            subprocess.run(["ip", "-n", name, *cmd], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def _in(netns: str, *argv: str) -> str:
    done = subprocess.run(["ip", "netns", "exec", netns, *argv], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _agent(netns: str, base: Path, step: str) -> None:
    _in(netns, sys.executable, "-c", _AGENT, str(base), LOCAL, NETWORK, step, *PEERS)


def _state(netns: str, base: Path) -> tuple[set[str], set[str]]:
    fdb = json.loads(_in(netns, "bridge", "-j", "fdb", "show", "dev", vxlan_name(NETWORK))
                     or "[]")
    flood = {str(e["dst"]) for e in fdb if e.get("mac") == ZERO_MAC and e.get("dst")}
    table = underlay_guard.table_name(ownership.mark_for(base))
    listing = json.loads(_in(netns, "nft", "-j", "list", "set", "inet", table, "peers"))
    (peers,) = [item["set"].get("elem", []) for item in listing["nftables"] if "set" in item]
    return flood, {str(p) for p in peers}


@pytest.fixture
def base() -> Iterator[Path]:
    """A short path: amphora sockets under it must fit ``sun_path``."""
    with tempfile.TemporaryDirectory(prefix="lbs-") as folder:
        yield Path(folder) / "host"


def test_a_restarted_host_agent_keeps_its_flood_lists_and_guard_peers(
        netns: str, base: Path) -> None:
    _agent(netns, base, "first")
    assert _state(netns, base) == (set(PEERS), set(PEERS))
    _agent(netns, base, "restarted")
    assert _state(netns, base) == (set(PEERS), set(PEERS))
