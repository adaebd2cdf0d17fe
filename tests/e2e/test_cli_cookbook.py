"""The README's cookbook, verbatim, through the real ``openstack`` CLI and through openstacksdk.

Every command runs as a subprocess against a real ``lbaas serve`` (see conftest.py). The
cookbook's lines are kept as written; ``--wait`` is appended where the CLI offers it, and the
load balancer is polled back to ACTIVE between steps as a user would. The member addresses are
the README's demo backends, .10 and .11 of the default ``private-subnet``.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
import time
from typing import TYPE_CHECKING, Any

import pytest

from lbaas.settings import Settings

if TYPE_CHECKING:
    from tests.e2e.conftest import Cloud

pytestmark = pytest.mark.e2e

PRIVATE = next(n for n in Settings().networking.networks if n.name == "private")
MEMBERS = [str(ipaddress.ip_network(PRIVATE.cidr)[n]) for n in (10, 11)]
COOKBOOK = [
    "loadbalancer listener create --name listener1 --protocol HTTP --protocol-port 80 lb1",
    "loadbalancer pool create --name pool1 --lb-algorithm ROUND_ROBIN --listener listener1 "
    "--protocol HTTP",
    "loadbalancer healthmonitor create --delay 5 --max-retries 4 --timeout 10 --type HTTP "
    "--url-path /healthcheck pool1",
    *(f"loadbalancer member create --subnet-id private-subnet --address {address} "
      "--protocol-port 80 pool1" for address in MEMBERS),
]


def run(cloud: Cloud, line: str, *extra: str) -> str:
    return cloud.openstack(*shlex.split(line), *extra).stdout


def show(cloud: Cloud, line: str) -> Any:
    return json.loads(run(cloud, line, "-f", "json"))


def lb_status(cloud: Cloud, name: str) -> str | None:
    proc = cloud.openstack("loadbalancer", "show", name, "-f", "value", "-c",
                           "provisioning_status", check=False)
    if proc.returncode != 0:
        assert "Unable to locate" in proc.stderr or "404" in proc.stderr, proc.stderr
        return None
    return proc.stdout.strip()


def wait_for(cloud: Cloud, name: str, wanted: str | None, timeout: float = 60) -> None:
    """Repeat ``openstack loadbalancer show`` until the status is ``wanted`` (None = gone)."""
    deadline = time.monotonic() + timeout
    seen = lb_status(cloud, name)
    while seen != wanted:
        assert seen not in ("ERROR",), f"{name} went to ERROR"
        assert time.monotonic() < deadline, f"{name} stuck in {seen}, wanted {wanted}"
        time.sleep(0.5)
        seen = lb_status(cloud, name)


def test_cookbook_through_the_cli(cloud: Cloud) -> None:
    public = show(cloud, "subnet show public-subnet")
    private = show(cloud, "subnet show private-subnet")

    out = run(cloud, "loadbalancer create --name lb1 --vip-subnet-id public-subnet")
    assert "lb1" in out and public["id"] in out
    wait_for(cloud, "lb1", "ACTIVE")
    lb = show(cloud, "loadbalancer show lb1")
    assert lb["vip_subnet_id"] == public["id"]
    assert lb["vip_network_id"] == public["network_id"]
    port = show(cloud, f"port show {lb['vip_port_id']}")
    assert port["fixed_ips"] == [{"subnet_id": public["id"], "ip_address": lb["vip_address"]}]

    for line in COOKBOOK:
        run(cloud, line, "--wait")
        wait_for(cloud, "lb1", "ACTIVE")

    listener = show(cloud, "loadbalancer listener show listener1")
    assert (listener["protocol"], listener["protocol_port"]) == ("HTTP", 80)
    assert listener["provisioning_status"] == "ACTIVE"
    pool = show(cloud, "loadbalancer pool show pool1")
    assert pool["lb_algorithm"] == "ROUND_ROBIN" and pool["protocol"] == "HTTP"
    assert {"id": listener["id"]} in pool["listeners"]
    assert listener["default_pool_id"] == pool["id"]
    hm = show(cloud, f"loadbalancer healthmonitor show {pool['healthmonitor_id']}")
    assert (hm["type"], hm["delay"], hm["max_retries"], hm["timeout"], hm["url_path"]) == \
        ("HTTP", 5, 4, 10, "/healthcheck")
    members = show(cloud, "loadbalancer member list pool1")
    assert sorted(m["address"] for m in members) == MEMBERS
    for member in members:
        detail = show(cloud, f"loadbalancer member show pool1 {member['id']}")
        assert detail["subnet_id"] == private["id"]
        assert detail["protocol_port"] == 80
        assert detail["provisioning_status"] == "ACTIVE"

    tree = json.loads(run(cloud, "loadbalancer status show lb1"))
    root = tree["loadbalancer"]
    assert root["name"] == "lb1" and root["provisioning_status"] == "ACTIVE"
    [tree_listener] = root["listeners"]
    assert tree_listener["name"] == "listener1"
    [tree_pool] = tree_listener["pools"]
    assert tree_pool["name"] == "pool1"
    assert tree_pool["health_monitor"]["type"] == "HTTP"
    assert sorted(m["address"] for m in tree_pool["members"]) == MEMBERS

    stats = show(cloud, "loadbalancer stats show lb1")
    assert set(stats) >= {"active_connections", "bytes_in", "bytes_out", "request_errors",
                          "total_connections"}
    assert all(isinstance(v, int) and v >= 0 for v in stats.values())

    run(cloud, "loadbalancer delete --cascade lb1", "--wait")
    wait_for(cloud, "lb1", None)
    assert "lb1" not in run(cloud, "loadbalancer list -f value -c name").split()
    ports = show(cloud, "port list")
    assert lb["vip_port_id"] not in [p["ID"] for p in ports]


def test_network_commands(cloud: Cloud) -> None:
    names = run(cloud, "network list -f value -c Name").split()
    assert {"public", "private", "lb-mgmt-net"} <= set(names)
    subnet = show(cloud, "subnet show private-subnet")
    assert (subnet["cidr"], subnet["ip_version"], subnet["gateway_ip"]) == \
        (PRIVATE.cidr, 4, PRIVATE.gateway_ip)

    net = show(cloud, "network create e2e-net")
    sub = show(cloud, "subnet create --network e2e-net --subnet-range 10.20.0.0/24 e2e-sub")
    assert sub["network_id"] == net["id"]
    assert sub["allocation_pools"] == [{"start": "10.20.0.2", "end": "10.20.0.254"}]
    assert show(cloud, "network show e2e-net")["subnets"] == [sub["id"]]

    # A VIP port on the subnet keeps both it and its network from being deleted.
    run(cloud, "loadbalancer create --name netlb --vip-subnet-id e2e-sub --wait")
    busy = cloud.openstack("subnet", "delete", "e2e-sub", check=False)
    assert busy.returncode != 0 and "One or more ports have an IP allocation" in busy.stderr
    busy = cloud.openstack("network", "delete", "e2e-net", check=False)
    assert busy.returncode != 0 and "ports still in use on the network" in busy.stderr
    run(cloud, "loadbalancer delete netlb --wait")
    wait_for(cloud, "netlb", None)

    run(cloud, "subnet delete e2e-sub")
    run(cloud, "network delete e2e-net")
    gone = cloud.openstack("network", "show", "e2e-net", check=False)
    assert gone.returncode != 0 and "e2e-net" in gone.stderr


def test_sdk_create_list_delete(sdk_env: Cloud) -> None:
    import openstack

    conn = openstack.connect(cloud="lbaas")
    try:
        subnet = conn.network.find_subnet("public-subnet", ignore_missing=False)
        lb = conn.load_balancer.create_load_balancer(name="sdk-lb", vip_subnet_id=subnet.id)
        assert lb.provisioning_status == "PENDING_CREATE"
        lb = conn.load_balancer.wait_for_load_balancer(lb.id, wait=60, interval=0.5)
        assert lb.provisioning_status == "ACTIVE"
        assert lb.vip_subnet_id == subnet.id
        assert "sdk-lb" in [x.name for x in conn.load_balancer.load_balancers()]
        conn.load_balancer.delete_load_balancer(lb.id)
        conn.load_balancer.wait_for_delete(lb, wait=60, interval=0.5)
        assert "sdk-lb" not in [x.name for x in conn.load_balancer.load_balancers()]
    finally:
        conn.close()


def test_cli_errors_name_the_request_id(cloud: Cloud) -> None:
    """The CLI prints the server's x-openstack-request-id with an error, not "None"."""
    run(cloud, "loadbalancer create --name ridlb --vip-subnet-id public-subnet --wait")
    try:
        run(cloud, "loadbalancer listener create --protocol HTTP --protocol-port 80 --wait "
                   "ridlb")
        again = cloud.openstack("loadbalancer", "listener", "create", "--protocol", "HTTP",
                                "--protocol-port", "80", "ridlb", check=False)
        assert again.returncode != 0 and "(HTTP 409)" in again.stderr, again.stderr
        assert re.search(r"\(Request-ID: req-[0-9a-f-]{36}\)", again.stderr), again.stderr
    finally:
        run(cloud, "loadbalancer delete --cascade --wait ridlb")
