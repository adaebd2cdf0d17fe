"""What upstream's own API tests (octavia-tempest-plugin ``tests.api.v2``, run by
tools/tempest/run) found: each test here failed before its fix, in the noop deployment those
tests run against (``[networking] driver = "noop"``, ``[certificates] cert_manager = "noop"``,
fake drivers).
"""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

import psutil
import pytest

from lbaas.settings import NetworkingSettings

LBS = "/v2/lbaas/loadbalancers"
POOLS = "/v2/lbaas/pools"
NOOP = {"networking": {"driver": "noop"}, "certificates": {"cert_manager": "noop"}}


def host_addresses() -> list[str]:
    """This host's own IPv4 and IPv6 addresses, without loopback, link-local and the
    management network's (a running lbaas's bridge gateway: refused in any deployment)."""
    networking = NetworkingSettings()
    management = [ipaddress.ip_network(n.cidr) for n in networking.networks
                  if n.name == networking.management_network]
    found = []
    for entries in psutil.net_if_addrs().values():
        for entry in entries:
            if entry.family.name not in ("AF_INET", "AF_INET6") or "%" in entry.address:
                continue
            ip = ipaddress.ip_address(entry.address)
            if not (ip.is_loopback or ip.is_link_local
                    or any(ip in net for net in management if net.version == ip.version)):
                found.append(str(entry.address))
    return found


@pytest.fixture()
def noop_api(service_factory: Any) -> Any:
    return service_factory(**NOOP)


def test_noop_members_may_use_this_hosts_addresses(noop_api):
    """test_member's ``alt_monitor`` tests send ``monitor_address`` 192.0.2.2 (TEST-NET-1),
    which can be the address of the machine lbaas runs on. With the noop network driver there
    is no data plane that could relay to this host, and upstream takes any address."""
    addresses = host_addresses()
    if not addresses:
        pytest.skip("this host has no address besides loopback")
    api = noop_api
    lb = api.wait_lb(api.post(LBS, {"loadbalancer": {
        "vip_subnet_id": str(uuid.uuid4())}})[1]["loadbalancer"]["id"])
    code, body = api.post(POOLS, {"pool": {"loadbalancer_id": lb["id"], "protocol": "HTTP",
                                           "lb_algorithm": "ROUND_ROBIN"}})
    assert code == 201, body
    pool = body["pool"]["id"]
    api.wait_lb(lb["id"])
    for port, address in enumerate(addresses, start=80):
        code, body = api.post(f"{POOLS}/{pool}/members", {"member": {
            "address": address, "protocol_port": port, "monitor_address": address,
            "monitor_port": 8080, "subnet_id": str(uuid.uuid4())}})
        assert code == 201, body
        assert (body["member"]["address"], body["member"]["monitor_address"]) == \
            (address, address)
        api.wait_lb(lb["id"])
    # loopback stays refused: it is never a member's address
    code, body = api.post(f"{POOLS}/{pool}/members", {"member": {
        "address": "127.0.0.1", "protocol_port": 99}})
    assert (code, body["faultstring"]) == (
        400, "127.0.0.1 is not a valid option for member address")
