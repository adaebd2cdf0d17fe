"""Issue 3, done when: bytes through a VIP of a real ``lbaas serve`` on the local data plane.

One server (module fixture) and one load balancer built by the README cookbook through the
openstack CLI, in front of ``lbaas backend`` demo servers on private-subnet. The tests run in
order on that load balancer: round robin over two backends; 20 member changes under load with
no failed request and the new member's first answer measured; a value HAProxy would refuse is
a 400 that changes nothing while the load balancer keeps serving; and a cascade
delete removes everything the amphora had on the host. The fixture's teardown stops the server,
runs ``lbaas teardown`` and checks that no namespace, bridge, route or process of it is left.
"""

from __future__ import annotations

import os
import shlex
import statistics
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from e2e_helpers import (
    LoadGenerator,
    Plane,
    sh,
    skip_reason,
    snapshot,
    start_plane,
    stop_plane,
)

from lbaas.drivers.local import names

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

COOKBOOK = [
    "loadbalancer create --name lb1 --vip-subnet-id public-subnet",
    "loadbalancer listener create --name listener1 --protocol HTTP --protocol-port 80 lb1",
    "loadbalancer pool create --name pool1 --lb-algorithm ROUND_ROBIN --listener listener1 "
    "--protocol HTTP",
    "loadbalancer healthmonitor create --delay 5 --max-retries 4 --timeout 10 --type HTTP "
    "--url-path /healthcheck pool1",
    "loadbalancer member create --subnet-id private-subnet --address 10.0.0.10 "
    "--protocol-port 80 pool1",
    "loadbalancer member create --subnet-id private-subnet --address 10.0.0.11 "
    "--protocol-port 80 pool1",
]
BACKENDS = ("10.0.0.10", "10.0.0.11")
EXTRA = ("10.0.0.12", "10.0.0.13")  # added and removed under load
# Issue 3: a new member answers within 100 ms (median) of its POST returning. On a 2-core machine
# shared with other busy jobs the figure grows with the load average; override to investigate.
ADD_BUDGET_S = float(os.environ.get("LBAAS_E2E_ADD_BUDGET_MS", "100")) / 1000
# HAProxy timers stop at 2**31-1 ms (~24.8 days): the API refuses longer delays and timeouts.
REFUSED_HM = {"delay": 3_000_000, "timeout": 3_000_000}


def body(address: str) -> str:
    return f"backend {address}"


@pytest.fixture(scope="module")
def plane() -> Iterator[Plane]:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    try:
        plane = start_plane()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    try:
        plane.start_backends(*BACKENDS, *EXTRA)
        yield plane
    finally:
        codes = plane.stop_backends()
        left = stop_plane(plane)
        assert not left, f"left behind after lbaas teardown: {left}"
        assert all(code == 0 for code in codes.values()), f"backend exit codes: {codes}"


@pytest.fixture(scope="module")
def lb(plane: Plane) -> dict[str, Any]:
    """The cookbook, verbatim through the openstack CLI, polled back to ACTIVE after each line."""
    lb_id = ""
    for line in COOKBOOK:
        out = plane.openstack(*shlex.split(line), "-f", "value", "-c", "id")
        lb_id = lb_id or out.strip()
        plane.wait_lb(lb_id, "ACTIVE")
    lb = plane.lb(lb_id)
    assert lb is not None and lb["vip_address"].startswith("172.24.4.")
    pools = plane.ok("GET", "/v2/lbaas/pools?name=pool1")["pools"]
    subnets = plane.ok("GET", "/networking/v2.0/subnets?name=private-subnet")["subnets"]
    return {**lb, "pool_id": pools[0]["id"], "hm_id": pools[0]["healthmonitor_id"],
            "listener_id": pools[0]["listeners"][0]["id"],
            "private_subnet_id": subnets[0]["id"]}


def fetch(vip: str, n: int) -> Counter[str]:
    """``n`` GETs of http://<vip>/, each on a new connection, from the host."""
    seen: Counter[str] = Counter()
    for _ in range(n):
        with urllib.request.urlopen(f"http://{vip}/", timeout=5) as resp:
            assert resp.status == 200
            seen[resp.read().decode().split("\n", 1)[0]] += 1  # "backend <address>"
    return seen


def members(plane: Plane, lb: dict[str, Any]) -> dict[str, dict[str, Any]]:
    data = plane.ok("GET", f"/v2/lbaas/pools/{lb['pool_id']}/members")["members"]
    return {m["address"]: m for m in data}


def test_cookbook_round_robin_over_two_backends(plane: Plane, lb: dict[str, Any]) -> None:
    assert fetch(lb["vip_address"], 20) == {body(a): 10 for a in BACKENDS}


def _haproxies(plane: Plane) -> list[int]:
    """HAProxy daemons serving this plane's amphorae (their command line names its data dir)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            argv = open(f"/proc/{entry.name}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        mine = str(plane.data_dir).encode() in b" ".join(argv)
        if argv and argv[0].endswith(b"haproxy") and mine:
            found.append(int(entry.name))
    return found


def test_haproxy_serves_as_nobody_chrooted_in_an_empty_directory(plane: Plane,
                                                                  lb: dict[str, Any]) -> None:
    pids = _haproxies(plane)
    assert pids, "no HAProxy of this plane found"
    for pid in pids:
        status = open(f"/proc/{pid}/status").read().splitlines()
        uids = next(ln for ln in status if ln.startswith("Uid:")).split()[1:]
        gids = next(ln for ln in status if ln.startswith("Gid:")).split()[1:]
        assert "0" not in uids and "0" not in gids, (pid, uids, gids)
        root = os.readlink(f"/proc/{pid}/root")
        assert root.startswith(str(plane.data_dir)) and root.endswith("/run/haproxy-chroot")
        assert os.listdir(root) == [] and os.stat(root).st_uid == 0
    assert Counter(fetch(lb["vip_address"], 4)) == Counter({body(a): 2 for a in BACKENDS})


def test_member_changes_under_load(plane: Plane, lb: dict[str, Any]) -> None:
    pool = f"/v2/lbaas/pools/{lb['pool_id']}/members"
    latencies: list[float] = []
    timeline: list[str] = []  # "<monotonic> <change>", to place any failed request
    changes = 0

    def mark(what: str) -> None:
        timeline.append(f"{time.monotonic():.3f} {what}")

    def settle() -> None:
        nonlocal changes
        changes += 1
        plane.wait_lb(lb["id"], "ACTIVE", timeout=30, interval=0.02)
        pool_row = plane.ok("GET", f"/v2/lbaas/pools/{lb['pool_id']}")["pool"]
        assert pool_row["provisioning_status"] == "ACTIVE", (pool_row, timeline)

    def add(load: LoadGenerator, address: str) -> None:
        load.forget(body(address))
        mark(f"add {address}")
        created = plane.ok("POST", pool, {"member": {
            "address": address, "protocol_port": 80, "subnet_id": lb["private_subnet_id"]}})
        returned = time.monotonic()
        seen = load.wait_seen(body(address), timeout=10)
        assert seen is not None, f"{address} got no traffic within 10 s of its POST"
        latencies.append(seen - returned)
        assert created["member"]["address"] == address
        settle()

    def gone(load: LoadGenerator, address: str) -> None:
        """No answer from ``address`` for 0.3 s once the change is ACTIVE."""
        before = load.count(body(address))
        time.sleep(0.3)
        assert load.count(body(address)) == before, f"{address} still answers"

    def weight(load: LoadGenerator, address: str, value: int) -> None:
        member = members(plane, lb)[address]
        mark(f"weight {address} {value}")
        plane.ok("PUT", f"{pool}/{member['id']}", {"member": {"weight": value}})
        settle()
        assert members(plane, lb)[address]["weight"] == value
        if value == 0:
            gone(load, address)

    def delete(load: LoadGenerator, address: str) -> None:
        member = members(plane, lb)[address]
        mark(f"delete {address}")
        plane.ok("DELETE", f"{pool}/{member['id']}")
        settle()
        assert address not in members(plane, lb)
        gone(load, address)

    with LoadGenerator(lb["vip_address"]) as load:
        assert load.wait_seen(body(BACKENDS[0])) is not None
        for value in (3, 2, 1):  # ends at weight 1 again
            add(load, EXTRA[0])
            add(load, EXTRA[1])
            weight(load, BACKENDS[1], 0)
            delete(load, EXTRA[0])
            weight(load, BACKENDS[1], value)
            delete(load, EXTRA[1])
        add(load, EXTRA[0])
        delete(load, EXTRA[0])
        time.sleep(0.2)
    assert changes == 20
    counts = dict(load.counts)
    median = statistics.median(latencies)
    print(f"\n{load.total} requests through the VIP during {changes} member changes, "
          f"{len(load.errors)} failed; answers per backend: {counts}")
    print("new member's first answer after its POST returned (ms): "
          + ", ".join(f"{x * 1000:.0f}" for x in latencies)
          + f"; median {median * 1000:.0f} ms")
    assert not load.errors, f"failed requests: {load.errors[:10]}; changes: {timeline}"
    assert set(counts) == {body(a) for a in (*BACKENDS, *EXTRA)}
    assert median < ADD_BUDGET_S, f"median {median * 1000:.0f} ms to the new member's first answer"
    assert {m["provisioning_status"] for m in members(plane, lb).values()} == {"ACTIVE"}


def test_value_haproxy_would_refuse_is_a_400_and_changes_nothing(plane: Plane,
                                                                 lb: dict[str, Any]) -> None:
    """HAProxy's timers stop at 2**31-1 ms: the API now refuses a longer delay (issue 10)
    instead of accepting it and leaving the monitor ERROR. Containment of what the data plane
    still refuses is tested in tests/dataplane/test_refused_objects.py."""
    hm_path = f"/v2/lbaas/healthmonitors/{lb['hm_id']}"
    hm = plane.ok("GET", hm_path)["healthmonitor"]
    assert hm["provisioning_status"] == "ACTIVE", hm
    with LoadGenerator(lb["vip_address"]) as load:
        assert load.wait_seen(body(BACKENDS[0])) is not None
        code, answer = plane.api("PUT", hm_path, {"healthmonitor": REFUSED_HM})
        assert code == 400, answer
        assert answer["faultstring"].endswith("Value should be lower or equal to 2147483")
        after = plane.ok("GET", hm_path)["healthmonitor"]
        assert (after["provisioning_status"], after["delay"]) == ("ACTIVE", hm["delay"])
        assert plane.lb(lb["id"])["provisioning_status"] == "ACTIVE"
        time.sleep(0.3)
    assert not load.errors, f"failed requests: {load.errors[:10]}"
    assert fetch(lb["vip_address"], 4) == {body(a): 2 for a in BACKENDS}


def test_cascade_delete_removes_everything_the_amphora_made(plane: Plane,
                                                            lb: dict[str, Any]) -> None:
    [amp] = plane.ok("GET", f"/v2/octavia/amphorae?loadbalancer_id={lb['id']}")["amphorae"]
    ns = amp["compute_id"]
    assert ns == names.amphora_netns(amp["id"])
    data_ns = names.data_netns_of(ns)
    legs = {space: [ln.split(":")[1].strip().split("@")[0] for ln in
                    sh("ip", "-n", space, "-o", "link").splitlines()] for space in (ns, data_ns)}
    # the agent's namespace holds the management address, HAProxy's the VRRP address and VIP
    assert f"inet {amp['lb_network_ip']}/" in sh("ip", "-n", ns, "-o", "addr")
    inside = sh("ip", "-n", data_ns, "-o", "addr")
    addresses = [amp["lb_network_ip"], amp["vrrp_ip"], lb["vip_address"]]
    assert all(f"inet {a}/" in inside for a in addresses[1:]), inside
    assert amp["lb_network_ip"] not in inside
    needles = {ns, data_ns, amp["id"], *(names.host_leg(space, leg)
                                         for space, found in legs.items()
                                         for leg in found if leg != "lo")}
    amp_dir = plane.data_dir / "amphorae" / ns
    before = snapshot(needles, amp_dir)
    print("\n" + before.report(f"before deleting {lb['id']} (amphora {ns})"))
    assert before.netns and before.links and before.files
    assert any("haproxy" in p for p in before.procs), before.procs
    assert any("lbaas.agent" in p for p in before.procs), before.procs

    plane.openstack("loadbalancer", "delete", "--cascade", "lb1")
    plane.wait_lb(lb["id"], None)

    after = snapshot(needles, amp_dir)
    print(after.report("after"))
    # Processes get a short grace: an HAProxy the agent (re)started while being stopped can
    # still be exiting (SIGTERM from PR_SET_PDEATHSIG) when the load balancer reads DELETED.
    lingering, deadline = after.procs, time.monotonic() + 2
    while after.procs and time.monotonic() < deadline:
        time.sleep(0.05)
        after = snapshot(needles, amp_dir)
    if lingering:
        print(f"processes still exiting after DELETED: {lingering}; gone: {not after.procs}")
    assert after.empty(), after.report("left behind")
    host_addrs = sh("ip", "-o", "addr")
    assert not [a for a in addresses if f"inet {a}/" in host_addrs]
    assert not plane.ok("GET", f"/networking/v2.0/ports?device_id={amp['id']}")["ports"]
    assert not plane.ok("GET", "/v2/octavia/amphorae")["amphorae"]
