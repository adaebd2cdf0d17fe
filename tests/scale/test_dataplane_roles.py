"""The roles with the real data plane (root): traffic through a VIP, a member change, a dead
worker's load balancer taken over within the lease time, and a failover detected after the
health manager that was receiving the heartbeats was killed."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator

import pytest
from scale_dataplane import (
    assert_no_orphans,
    build_real_lb,
    fetch,
    start_backend,
    stop_backends,
    wait_lb,
)
from scale_servers import PrivateRabbit, shared_database
from scale_topology import HAS_CONTROLLER_LIST, Topology
from sqlalchemy import select

from lbaas.drivers.local import names, netlink
from lbaas.store import tables as t


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, veths, bridges)"
    for tool in ("haproxy", "ip"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    return None


@pytest.fixture
def real_site(request: pytest.FixtureRequest, rabbit: PrivateRabbit) -> Iterator[Topology]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    counts, extra = request.param
    url, drop = shared_database("postgresql")
    topo = Topology(url, rabbit.url, data_plane=True, counts=counts, extra_toml=extra)
    try:
        topo.start_all()
        yield topo
    finally:
        topo.close()
        drop()


FULL = ({"api": 2, "worker": 3, "health-manager": 2, "housekeeping": 1},
        "heartbeat_interval = 0.5\nheartbeat_timeout = 2.0\n")  # appended to [health]
TWO_WORKERS = ({"api": 1, "worker": 2}, "")


@pytest.mark.skipif(not HAS_CONTROLLER_LIST, reason="needs [health] controller_ip_port_list "
                    "(agents sending to every health manager)")
@pytest.mark.parametrize("real_site", [FULL], indirect=True)
def test_traffic_member_change_and_failover_after_the_receiving_manager_died(
        real_site: Topology) -> None:
    topo = real_site
    priv = topo.prefix["priv"]
    backends = [start_backend(topo, f"{priv}.{n}") for n in (20, 21)]
    try:
        lb = build_real_lb(topo, "dp", [f"{priv}.20"])
        assert who(lb["vip"]) == f"backend {priv}.20"
        # a member change, through the other API
        code, _ = topo.request("POST", f"/v2/lbaas/pools/{lb['pool']}/members", {"member": {
            "address": f"{priv}.21", "protocol_port": 8080,
            "subnet_id": topo.subnet_id("priv")}}, api=1)
        assert code == 201
        wait_lb(topo, lb["id"])
        seen = {who(lb["vip"]) for _ in range(8)}
        assert seen == {f"backend {priv}.20", f"backend {priv}.21"}, seen
        (before,) = [a for a in topo.amphorae() if a.status == "ALLOCATED"]
        # the health manager the agents' first target names dies and stays dead
        topo.kill("health-manager", 0)
        time.sleep(5)  # > heartbeat_timeout: a manager that heard nothing would fail over now
        assert [a.id for a in topo.amphorae() if a.status == "ALLOCATED"] == [before.id], \
            "a healthy amphora was failed over once its health manager died"
        # now the amphora really fails: the surviving manager must notice, once
        for ns in (before.compute_id, names.data_netns_of(before.compute_id)):
            for pid in netlink_pids(ns):
                # killing HAProxy's master may take its worker with it before we get to it
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 9)
        deadline = time.monotonic() + 90
        while True:
            live = [a for a in topo.amphorae() if a.status == "ALLOCATED"]
            if live and live[0].id != before.id and "ERR" not in fetch(lb["vip"]):
                break
            assert time.monotonic() < deadline, f"no failover:\n{topo.all_logs()[-4000:]}"
            time.sleep(0.5)
        wait_lb(topo, lb["id"])
        with topo.engine.connect() as conn:
            built = conn.execute(select(t.amphora.c.id).where(
                t.amphora.c.load_balancer_id == lb["id"])).all()
        assert len(built) == 2, f"failed over more than once: {built}"
        assert "failing it over" in topo.log("health-manager", 1)
        assert_no_orphans(topo)
    finally:
        stop_backends(backends)


def who(vip: str) -> str:
    """The first line of the demo backend's answer: ``backend ADDRESS``."""
    return fetch(vip).split("\n", 1)[0]


def netlink_pids(ns: str) -> list[int]:
    import asyncio

    return sorted(asyncio.run(netlink.netns_pids(ns)))


@pytest.mark.parametrize("real_site", [TWO_WORKERS], indirect=True)
def test_a_dead_workers_load_balancer_is_taken_over_within_the_lease_time(
        real_site: Topology) -> None:
    topo = real_site
    code, body = topo.request("POST", "/v2/lbaas/loadbalancers", {"loadbalancer": {
        "name": "orphan", "vip_subnet_id": topo.subnet_id("pub")}})
    assert code == 201, body
    lb_id = body["loadbalancer"]["id"]
    deadline = time.monotonic() + 30
    holder = None
    while holder is None:  # the worker building it holds its lease
        with topo.engine.connect() as conn:
            holder = conn.execute(select(t.lease.c.holder).where(
                t.lease.c.load_balancer_id == lb_id)).scalar()
        assert time.monotonic() < deadline, "no worker took the load balancer"
        time.sleep(0.02)
    slot = int(holder.rsplit("-", 1)[1])
    topo.kill("worker", slot)  # mid-build, and systemd does not bring it back
    killed = time.monotonic()
    wait_lb(topo, lb_id, timeout=60)
    took = time.monotonic() - killed
    # lease 10 s, then the survivor's scan (every 2.5 s) and a fresh build
    assert took < 10 + 5 + 15, took
    assert_no_orphans(topo)
