"""UDP and SCTP through a real amphora (nftables), driven with the openstack CLI.

A UDP listener + ROUND_ROBIN pool + UDP-CONNECT monitor + two ``lbaas backend --udp-port``
members: datagrams from the host to the VIP are answered by both members; once one member's UDP
server is stopped (its namespace still answers ICMP port unreachable) the agent takes it out of
the pool map within delay x max_retries_down + 1 s and every answer comes from the other.
SCTP cannot carry traffic on this kernel: the SCTP listener and pool are checked up to the rules
the amphora loaded.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from l7_helpers import (
    LBAAS,
    Server,
    leftovers,
    own_networks,
    skip_reason,
    start_server,
    stop_server,
)

from lbaas.drivers.local import names

pytestmark = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")
UDP_PORT = 5300
DELAY, DOWN = 3, 2  # Octavia refuses a UDP-CONNECT delay under 3 s


def udp_backend(server: Server, subnet: str, address: str, timeout: float = 30) -> None:
    log = server.root / f"backend-{address}.log"
    with log.open("wb") as out:
        server.backends.append(subprocess.Popen(
            [LBAAS, "backend", *server.base_args(), "--subnet", subnet, "--address", address,
             "--udp-port", str(UDP_PORT)], stdout=out, stderr=subprocess.STDOUT,
            env=server.env))
    deadline = time.monotonic() + timeout
    while not ("backend listening" in log.read_text()
               and "udp backend listening" in log.read_text()):
        assert server.backends[-1].poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)


def ask(vip: str, port: int, count: int, timeout: float = 0.5) -> Counter[str]:
    """``count`` datagrams, each from a new socket (a new flow), and who answered."""
    seen: Counter[str] = Counter()
    for _ in range(count):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(timeout)
            sock.sendto(b"hello\n", (vip, port))
            try:
                seen[sock.recv(2048).decode().strip()] += 1
            except OSError:
                seen["(no answer)"] += 1
    return seen


def udp_echo_pid(address: str) -> int:
    ns = names.backend_netns(address)
    pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout
    for pid in pids.split():
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if b"lbaas.demo.udp_echo" in cmdline:
            return int(pid)
    raise AssertionError(f"no UDP echo in {ns}")


@pytest.fixture(scope="module")
def udp_lb() -> Iterator[tuple[Server, dict[str, Any]]]:
    toml, subnets = own_networks()
    server = start_server(toml)
    cidrs: list[str] = []
    try:
        show = server.show("subnet", "show", subnets["priv"])
        cidrs = [show["cidr"], server.show("subnet", "show", subnets["pub"])["cidr"]]
        base = show["cidr"].rsplit(".", 1)[0]
        members = [f"{base}.50", f"{base}.51"]
        for address in members:
            udp_backend(server, subnets["priv"], address)
        lb = server.show("loadbalancer", "create", "--name", "udp", "--vip-subnet-id",
                         subnets["pub"])
        server.wait_active(lb["id"])
        server.openstack("loadbalancer", "listener", "create", "--name", "dns", "--protocol",
                         "UDP", "--protocol-port", "53", lb["id"])
        server.wait_active(lb["id"])
        pool = server.show("loadbalancer", "pool", "create", "--name", "dns-pool",
                           "--listener", "dns", "--protocol", "UDP", "--lb-algorithm",
                           "ROUND_ROBIN")
        server.wait_active(lb["id"])
        server.openstack("loadbalancer", "healthmonitor", "create", "--type", "UDP-CONNECT",
                         "--delay", str(DELAY), "--timeout", "1", "--max-retries", "1",
                         "--max-retries-down", str(DOWN), pool["id"])
        server.wait_active(lb["id"])
        member_ids = []
        for address in members:
            member_ids.append(server.show(
                "loadbalancer", "member", "create", "--subnet-id", subnets["priv"],
                "--address", address, "--protocol-port", str(UDP_PORT), pool["id"])["id"])
            server.wait_active(lb["id"])
        info = {"lb": server.show("loadbalancer", "show", lb["id"]), "pool": pool,
                "members": members, "member_ids": member_ids, "subnets": subnets}
        yield server, info
    finally:
        stop_server(server)
        if cidrs:
            assert leftovers(cidrs) == []


def amphora_netns(server: Server, lb_id: str) -> str:
    """The amphora's data namespace, where its nftables rules are."""
    amphora = server.openstack("loadbalancer", "amphora", "list", "--loadbalancer", lb_id,
                               "-f", "value", "-c", "id").split()[0]
    return names.data_netns_of(server.openstack("loadbalancer", "amphora", "show", amphora,
                                                "-f", "value", "-c", "compute_id").strip())


def pool_map(ns: str) -> str:
    return subprocess.run(["ip", "netns", "exec", ns, "nft", "list", "table", "ip",
                           "lbaas_udp"], capture_output=True, text=True, check=True).stdout


def test_udp_spreads_then_drops_a_dead_member(udp_lb: tuple[Server, dict[str, Any]]) -> None:
    server, info = udp_lb
    vip, (first, second) = info["lb"]["vip_address"], info["members"]
    seen = ask(vip, 53, 40)
    assert seen[f"backend {first}"] >= 10 and seen[f"backend {second}"] >= 10, seen
    # Quiet while waiting: the member's kernel sends at most ~1 ICMP error a second to the
    # amphora (rate limit per peer), and client datagrams to the dead member would use them up.
    ns, dead = amphora_netns(server, info["lb"]["id"]), f"{first} . {UDP_PORT}"
    assert dead in pool_map(ns)
    os.kill(udp_echo_pid(first), signal.SIGTERM)
    stopped = time.monotonic()
    bound = DELAY * DOWN + 1
    while dead in pool_map(ns):
        assert time.monotonic() - stopped < bound + 1, "the dead member is still in the map"
        time.sleep(0.1)
    removed_after = time.monotonic() - stopped
    print(f"dead UDP member removed after {removed_after:.2f} s (bound {bound} s)")
    assert removed_after <= bound
    assert ask(vip, 53, 20) == Counter({f"backend {second}": 20})
    # The agent's heartbeat carries the statuses its checks found: Octavia's operating statuses.
    pool_id, (dead_id, live_id) = info["pool"]["id"], info["member_ids"]

    def status(member_id: str) -> str:
        return str(server.show("loadbalancer", "member", "show", pool_id,
                               member_id)["operating_status"])

    deadline = time.monotonic() + 15
    while status(dead_id) != "ERROR":
        assert time.monotonic() < deadline, "the dead member never became ERROR"
        time.sleep(0.5)
    assert status(live_id) == "ONLINE"
    listener = server.show("loadbalancer", "listener", "show", "dns")
    assert listener["operating_status"] == "ONLINE"


def test_sctp_listener_rules_load_in_the_amphora(
        udp_lb: tuple[Server, dict[str, Any]]) -> None:
    server, info = udp_lb
    lb_id = info["lb"]["id"]
    server.openstack("loadbalancer", "listener", "create", "--name", "diameter", "--protocol",
                     "SCTP", "--protocol-port", "3868", lb_id)
    server.wait_active(lb_id)
    pool = server.show("loadbalancer", "pool", "create", "--listener", "diameter",
                       "--protocol", "SCTP", "--lb-algorithm", "SOURCE_IP")
    server.wait_active(lb_id)
    server.openstack("loadbalancer", "healthmonitor", "create", "--type", "SCTP", "--delay",
                     "5", "--timeout", "2", "--max-retries", "2", pool["id"])
    server.wait_active(lb_id)
    server.openstack("loadbalancer", "member", "create", "--subnet-id",
                     info["subnets"]["priv"], "--address", info["members"][1],
                     "--protocol-port", "3868", pool["id"])
    server.wait_active(lb_id)  # ACTIVE: the agent's `nft -c` and `nft -f` took the bundle
    ns = amphora_netns(server, lb_id)
    table = subprocess.run(["ip", "netns", "exec", ns, "nft", "list", "table", "ip",
                            "lbaas_udp"], capture_output=True, text=True, check=True).stdout
    vip = info["lb"]["vip_address"]
    assert f"ip daddr {vip} sctp dport 3868 dnat ip to jhash ip saddr mod 240" \
        in table
    assert f"{info['members'][1]} . 3868" in table
    assert f"ip daddr {vip} udp dport 53 dnat ip to numgen inc mod 240" in table
