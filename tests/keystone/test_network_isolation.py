"""Tenant isolation of networks through a real Keystone: project B cannot put a VIP on project
A's private network, subnet or port, nor a member on A's subnet, and nobody but the operator
sees the management network. Octavia's answer for what the caller cannot see is "not found"."""

from __future__ import annotations

from typing import Any

import pytest

NET = "/networking/v2.0"
LBS = "/v2/lbaas/loadbalancers"
POOLS = "/v2/lbaas/pools"


def created(result: tuple[int, Any], key: str) -> dict[str, Any]:
    code, body = result
    assert code == 201, body
    return dict(body[key])


def refused(result: tuple[int, Any], message: str) -> None:
    code, body = result
    assert (code, body.get("faultstring")) == (400, message), body


@pytest.fixture()
def private_a(keystone_api: Any) -> Any:
    """Project A's own network, subnet and port, made by A's member through the Neutron API."""
    users = keystone_api()
    a = users["member-a"]
    users.net = created(a.post(f"{NET}/networks", {"network": {"name": "a-private"}}),
                        "network")
    users.subnet = created(a.post(f"{NET}/subnets", {"subnet": {
        "network_id": users.net["id"], "cidr": "10.110.0.0/24", "ip_version": 4}}), "subnet")
    users.port = created(a.post(f"{NET}/ports", {"port": {"network_id": users.net["id"]}}),
                         "port")
    return users


def test_a_owns_what_it_made(private_a: Any, project: dict[str, str]) -> None:
    users = private_a
    for item in (users.net, users.subnet, users.port):
        assert item["project_id"] == project["A"]
    assert users.net["shared"] is False


def test_b_cannot_see_the_private_network_of_a(private_a: Any) -> None:
    users = private_a
    b = users["member-b"]
    code, body = b.get(f"{NET}/networks")
    assert code == 200
    names = {n["name"] for n in body["networks"]}
    assert "a-private" not in names and "lb-mgmt-net" not in names
    assert {"public", "private"} <= names
    assert b.get(f"{NET}/subnets/{users.subnet['id']}")[0] == 404
    assert b.get(f"{NET}/ports/{users.port['id']}")[0] == 404
    code, body = users["admin-a"].get(f"{NET}/networks")
    assert "lb-mgmt-net" in {n["name"] for n in body["networks"]}


def test_b_cannot_put_a_vip_on_the_network_subnet_or_port_of_a(private_a: Any) -> None:
    users = private_a
    b = users["member-b"]
    refused(b.post(LBS, {"loadbalancer": {"vip_subnet_id": users.subnet["id"]}}),
            f"Subnet {users.subnet['id']} not found.")
    refused(b.post(LBS, {"loadbalancer": {"vip_network_id": users.net["id"]}}),
            f"Network {users.net['id']} not found.")
    refused(b.post(LBS, {"loadbalancer": {"vip_port_id": users.port["id"]}}),
            f"Port {users.port['id']} not found.")
    mgmt = b.subnet_id("lb-mgmt-subnet")
    refused(b.post(LBS, {"loadbalancer": {"vip_subnet_id": mgmt}}), f"Subnet {mgmt} not found.")
    assert b.get(LBS)[1]["loadbalancers"] == []
    # A itself may use all three
    a = users["member-a"]
    created(a.post(LBS, {"loadbalancer": {"vip_subnet_id": users.subnet["id"]}}),
            "loadbalancer")
    created(a.post(LBS, {"loadbalancer": {"vip_port_id": users.port["id"]}}), "loadbalancer")


def test_b_cannot_put_a_member_on_the_subnet_of_a(private_a: Any) -> None:
    users = private_a
    b = users["member-b"]
    lb = b.create_lb(name="b-lb")
    pool = created(b.post(POOLS, {"pool": {"loadbalancer_id": lb["id"], "protocol": "HTTP",
                                           "lb_algorithm": "ROUND_ROBIN"}}), "pool")
    b.wait_lb(lb["id"])
    refused(b.post(f"{POOLS}/{pool['id']}/members", {"member": {
        "address": "10.110.0.10", "protocol_port": 80, "subnet_id": users.subnet["id"]}}),
        f"Subnet {users.subnet['id']} not found.")
    refused(b.put(f"{POOLS}/{pool['id']}/members", {"members": [{
        "address": "10.110.0.10", "protocol_port": 80, "subnet_id": users.subnet["id"]}]}),
        f"Subnet {users.subnet['id']} not found.")
    assert b.get(f"{POOLS}/{pool['id']}/members")[1]["members"] == []
