"""Which networks, subnets and ports a load balancer may use: Octavia's answer for what the
caller cannot see, the management network refused to everyone, member addresses that would
reach the operator's side refused, and members without a subnet routed only to their own
project's subnets."""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

import psutil
import pytest
from network_helpers import (
    LBS,
    POOLS,
    PORTS,
    SUBNETS,
    Callers,
    fault,
    get,
    make_network,
    make_port,
    make_subnet,
    seeded_cidr,
)
from sqlalchemy import select

from lbaas.controller.provisioning import Provisioner
from lbaas.domain.spec import LoadBalancerSpec
from lbaas.store import tables as t
from lbaas.store.network_scope import operator_network


@pytest.fixture()
def tenants(api):
    """p1 owns a private network; p2 is the other tenant. Requests come from p2."""
    callers = Callers(api)
    callers.project("p1")
    net = make_network(api, "p1-private")
    sub = make_subnet(api, net["id"], "10.90.0.0/24")
    port = make_port(api, net["id"])
    callers.project("p2")
    return callers, net, sub, port


def create_lb(api: Any, **vip: Any) -> tuple[int, Any]:
    return api.post(LBS, {"loadbalancer": vip})


def make_pool(api: Any, lb: dict[str, Any]) -> str:
    code, body = api.post(POOLS, {"pool": {"loadbalancer_id": lb["id"], "protocol": "HTTP",
                                           "lb_algorithm": "ROUND_ROBIN"}})
    assert code == 201, body
    api.wait_lb(lb["id"])
    return str(body["pool"]["id"])


def add_member(api: Any, pool_id: str, **member: Any) -> tuple[int, Any]:
    return api.post(f"{POOLS}/{pool_id}/members",
                    {"member": {"protocol_port": 80, **member}})


def lb_count(api: Any) -> int:
    return len(get(api, LBS)["loadbalancers"])


# ----------------------------------------------------------------------------------- VIPs --

def test_a_vip_on_another_projects_network_subnet_or_port_does_not_exist(api, tenants):
    _, net, sub, port = tenants
    for vip, message in (({"vip_subnet_id": sub["id"]}, f"Subnet {sub['id']} not found."),
                         ({"vip_network_id": net["id"]}, f"Network {net['id']} not found."),
                         ({"vip_port_id": port["id"]}, f"Port {port['id']} not found.")):
        code, body = create_lb(api, **vip)
        assert (code, fault(body)) == (400, message), vip
    code, body = create_lb(api, vip_subnet_id=api.subnet_id("public-subnet"),
                           additional_vips=[{"subnet_id": sub["id"]}])
    assert (code, fault(body)) == (400, f"Validation failure: Subnet {sub['id']} not found")
    assert lb_count(api) == 0
    # the same answer as for ids that exist nowhere
    code, body = create_lb(api, vip_subnet_id="a0000000-0000-0000-0000-000000000000")
    assert fault(body) == "Subnet a0000000-0000-0000-0000-000000000000 not found."


def test_own_and_shared_networks_are_usable(api, tenants):
    callers, net, sub, port = tenants
    callers.project("p1")
    for vip in ({"vip_subnet_id": sub["id"]}, {"vip_network_id": net["id"]},
                {"vip_port_id": port["id"]}):
        code, body = create_lb(api, **vip)
        assert code == 201, (vip, body)
    callers.project("p2")
    code, body = create_lb(api, vip_subnet_id=api.subnet_id("private-subnet"))
    assert code == 201, body


def test_the_management_network_is_never_a_vip(api, tenants):
    callers = tenants[0]
    mgmt_net, mgmt_sub = api.network_id("lb-mgmt-net"), api.subnet_id("lb-mgmt-subnet")
    code, body = create_lb(api, vip_subnet_id=mgmt_sub)
    assert (code, fault(body)) == (400, f"Subnet {mgmt_sub} not found.")
    code, body = create_lb(api, vip_network_id=mgmt_net)
    assert (code, fault(body)) == (400, f"Network {mgmt_net} not found.")
    callers.admin()
    refused = ("Validation failure: Supplied VIP network_id is not allowed by the "
               "configuration of this deployment.")
    mgmt_port = make_port(api, mgmt_net)
    for vip in ({"vip_subnet_id": mgmt_sub}, {"vip_network_id": mgmt_net},
                {"vip_port_id": mgmt_port["id"]},
                {"vip_subnet_id": api.subnet_id("public-subnet"),
                 "additional_vips": [{"subnet_id": mgmt_sub}]}):
        code, body = create_lb(api, **vip)
        assert (code, fault(body)) == (400, refused), vip
    assert lb_count(api) == 0


def test_allow_invisible_resource_usage_as_upstream(service_factory):
    api = service_factory(networking={"allow_invisible_resource_usage": True})
    callers = Callers(api)
    callers.project("p1")
    sub = make_subnet(api, make_network(api, "p1-private")["id"], "10.91.0.0/24")
    callers.project("p2")
    code, body = create_lb(api, vip_subnet_id=sub["id"])
    assert code == 201, body
    code, body = create_lb(api, vip_subnet_id=api.subnet_id("lb-mgmt-subnet"))
    assert code == 400 and "not allowed by the configuration" in fault(body)


# -------------------------------------------------------------------------------- members --

def test_a_member_on_another_projects_subnet_does_not_exist(api, tenants):
    _, _, sub, _ = tenants
    lb = api.create_lb()
    pool = make_pool(api, lb)
    code, body = add_member(api, pool, address="10.90.0.10", subnet_id=sub["id"])
    assert (code, fault(body)) == (400, f"Subnet {sub['id']} not found.")
    code, body = api.put(f"{POOLS}/{pool}/members", {"members": [
        {"address": "10.90.0.10", "protocol_port": 80, "subnet_id": sub["id"]}]})
    assert (code, fault(body)) == (400, f"Subnet {sub['id']} not found.")
    graph = {"vip_subnet_id": api.subnet_id("public-subnet"), "pools": [
        {"name": "p", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", "members": [
            {"address": "10.90.0.10", "protocol_port": 80, "subnet_id": sub["id"]}]}]}
    code, body = create_lb(api, **graph)
    assert (code, fault(body)) == (400, f"Subnet {sub['id']} not found.")
    assert get(api, f"{POOLS}/{pool}/members")["members"] == []
    assert lb_count(api) == 1


def test_no_member_on_the_management_network(api):
    lb = api.create_lb()
    pool = make_pool(api, lb)
    mgmt_sub = api.subnet_id("lb-mgmt-subnet")
    inside = str(next(ipaddress.ip_network(seeded_cidr(api, "lb-mgmt-subnet")).hosts()) + 40)
    code, body = add_member(api, pool, address=inside, subnet_id=mgmt_sub)
    assert (code, fault(body)) == (400, f"Validation failure: Subnet {mgmt_sub} is on the "
                                   "management network, which members cannot use.")
    for member in ({"address": inside}, {"address": inside, "subnet_id": None},
                   {"address": "10.200.0.5", "monitor_address": inside, "monitor_port": 80}):
        code, body = add_member(api, pool, **member)
        option = "member monitor_address" if "monitor_address" in member else "member address"
        assert (code, fault(body)) == (400, f"{inside} is not a valid option for {option}")
    assert get(api, f"{POOLS}/{pool}/members")["members"] == []


def _host_address() -> str | None:
    for entries in psutil.net_if_addrs().values():
        for entry in entries:
            if entry.family.name == "AF_INET" and not entry.address.startswith("127."):
                return str(entry.address)
    return None


def test_no_member_at_the_operators_own_addresses(service_factory):
    api = service_factory(health={"bind_ip": "10.201.0.1"}, api={"host": "10.202.0.1"})
    lb = api.create_lb()
    pool = make_pool(api, lb)
    refused = ["127.0.0.1", "127.0.0.53", "::1", "0.0.0.0", "::ffff:127.0.0.1", "10.201.0.1",
               "10.202.0.1"]
    host = _host_address()
    if host is not None:
        refused.append(host)
    for address in refused:
        code, body = add_member(api, pool, address=address)
        expected = ipaddress.ip_address(address).exploded.upper()
        assert (code, fault(body)) == (400, f"{expected} is not a valid option for member "
                                       "address"), address
    code, body = add_member(api, pool, address="10.203.0.7", monitor_address="127.0.0.1")
    assert (code, fault(body)) == (400, "127.0.0.1 is not a valid option for member "
                                   "monitor_address")
    code, body = add_member(api, pool, address="10.203.0.7")
    assert code == 201, body
    member = body["member"]
    api.wait_lb(lb["id"])
    # updates are checked too: single and batch
    code, body = api.put(f"{POOLS}/{pool}/members/{member['id']}",
                         {"member": {"monitor_address": "10.201.0.1", "monitor_port": 5555}})
    assert (code, fault(body)) == (400, "10.201.0.1 is not a valid option for member "
                                   "monitor_address")
    code, body = api.put(f"{POOLS}/{pool}/members", {"members": [
        {"address": "10.203.0.7", "protocol_port": 80, "monitor_address": "10.202.0.1"}]})
    assert (code, fault(body)) == (400, "10.202.0.1 is not a valid option for member "
                                   "monitor_address")
    assert get(api, f"{POOLS}/{pool}/members/{member['id']}")["member"]["monitor_address"] \
        is None


def test_no_member_at_an_operator_subnets_gateway(api):
    """The host takes an operator subnet's gateway when the data plane first needs the subnet,
    possibly after the member was accepted: the gateway is refused whether or not the host
    holds it yet (create, monitor address, update, batch, graph). A project's subnet's gateway,
    on its own or a shared network, is never the host's (its bridge is not attached to the
    host), so it stays a valid member."""
    shared = make_network(api, "op-shared", shared=True)
    external = make_network(api, "op-external", **{"router:external": True})
    shared_gw = make_subnet(api, shared["id"], "10.91.0.0/24")["gateway_ip"]
    gateways = [make_subnet(api, external["id"], "10.92.0.0/24")["gateway_ip"],
                get(api, f"{SUBNETS}/{api.subnet_id('private-subnet')}")["subnet"]
                ["gateway_ip"]]
    assert (shared_gw, gateways[0]) == ("10.91.0.1", "10.92.0.1")
    lb = api.create_lb()
    pool = make_pool(api, lb)
    for gateway in gateways:
        code, body = add_member(api, pool, address=gateway)
        assert (code, fault(body)) == (400, f"{gateway} is not a valid option for member "
                                       "address"), gateway
        code, body = add_member(api, pool, address="10.203.0.8", monitor_address=gateway,
                                monitor_port=5672)
        assert (code, fault(body)) == (400, f"{gateway} is not a valid option for member "
                                       "monitor_address"), gateway
    code, body = add_member(api, pool, address="10.203.0.8")
    assert code == 201, body
    member = body["member"]
    api.wait_lb(lb["id"])
    code, body = api.put(f"{POOLS}/{pool}/members/{member['id']}",
                         {"member": {"monitor_address": "10.92.0.1", "monitor_port": 22}})
    assert (code, fault(body)) == (400, "10.92.0.1 is not a valid option for member "
                                   "monitor_address")
    code, body = api.put(f"{POOLS}/{pool}/members", {"members": [
        {"address": "10.92.0.1", "protocol_port": 5672}]})
    assert (code, fault(body)) == (400, "10.92.0.1 is not a valid option for member address")
    before = lb_count(api)
    code, body = create_lb(api, vip_subnet_id=api.subnet_id("public-subnet"), listeners=[{
        "protocol": "HTTP", "protocol_port": 80, "default_pool": {
            "name": "gw-pool", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
            "members": [
                {"address": "10.92.0.1", "protocol_port": 5672}]}}])
    assert (code, fault(body)) == (400, "10.92.0.1 is not a valid option for member address")
    assert lb_count(api) == before
    assert [m["address"] for m in get(api, f"{POOLS}/{pool}/members")["members"]] \
        == ["10.203.0.8"]
    # a project's own or shared network: its gateway is no host address
    tenant = make_network(api, "tenant-own")
    tenant_gw = make_subnet(api, tenant["id"], "10.93.0.0/24")["gateway_ip"]
    for gateway in (tenant_gw, shared_gw):
        code, body = add_member(api, pool, address=gateway)
        assert code == 201, body


def test_only_admins_touch_the_subnets_of_an_external_network(api):
    """External networks' subnets are attached to the host (gateway, route): a project that owns
    one, or a shared network an admin made for it, cannot pick a range the host would then route
    to its bridge (Neutron lets the network's owner do it)."""
    callers = Callers(api)
    external = make_network(api, "p1-external", project_id="p1", **{"router:external": True})
    shared = make_network(api, "p1-shared", project_id="p1", shared=True)
    admin_made = make_subnet(api, external["id"], "10.94.0.0/24")
    callers.project("p1")
    code, body = api.post(SUBNETS, {"subnet": {"network_id": external["id"], "ip_version": 4,
                                               "cidr": "198.18.106.0/24"}})
    assert code == 403, body
    for change in ({"gateway_ip": "10.94.0.254"}, {"host_routes": []}):
        code, body = api.put(f"{SUBNETS}/{admin_made['id']}", {"subnet": change})
        assert code == 403, body
    assert api.delete(f"{SUBNETS}/{admin_made['id']}")[0] == 403
    # a shared network's owner still makes subnets: they stay off the host
    sub = make_subnet(api, shared["id"], "198.18.107.0/24")
    row = api.service.engine.connect().execute(
        select(t.network).where(t.network.c.id == shared["id"])).one()
    assert not operator_network(row), sub


# ------------------------------------------------------------------- members without subnet --

def test_a_member_without_subnet_is_routed_only_to_its_own_projects_subnets(api, tenants,
                                                                            tmp_path):
    """Octavia plugs the amphora into the VIP subnet only and reaches a member without
    subnet_id by routing; Neutron routes a project's traffic only to subnets its routers
    join. lbaas stands in for that router: it plugs the amphora into the subnet holding the
    address only if the load balancer's project may use that subnet."""
    callers = tenants[0]
    own_net = make_network(api, "p2-private")
    own_sub = make_subnet(api, own_net["id"], "10.92.0.0/24")
    lb = api.create_lb()
    pool = make_pool(api, lb)
    for address in ("10.90.0.10", "10.92.0.10"):  # in p1's subnet, in p2's own
        code, body = add_member(api, pool, address=address)
        assert code == 201, body  # accepted, as upstream: the address alone proves nothing
        api.wait_lb(lb["id"])

    callers.admin()
    provisioner = Provisioner(api.service.engine, tmp_path / "pki", "lb-mgmt-net")
    with api.service.engine.connect() as conn:
        row = conn.execute(select(t.load_balancer).where(t.load_balancer.c.id == lb["id"])).one()
    amphora_id = str(uuid.uuid4())
    members = get(api, f"{POOLS}/{pool}/members")["members"]
    aggregate = LoadBalancerSpec.from_mapping({"pools": [{"members": members}]})
    plugs = provisioner.member_plugs(row, amphora_id, aggregate)
    assert [p.subnet.subnet_id for p in plugs] == [own_sub["id"]]
    legs = get(api, f"{PORTS}?device_id={amphora_id}")["ports"]
    assert {f["subnet_id"] for p in legs for f in p["fixed_ips"]} == {own_sub["id"]}
