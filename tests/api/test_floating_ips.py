"""Neutron floating IPs under /networking: allocation, port association and the implicit router.

What python-openstackclient's ``floating ip create/set/unset/show/list/delete`` see: bodies,
Neutron errors, lookups by address (the SDK tries GET by id first, then filters), and the
router_interface port that association takes from the internal subnet (and gives back).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from network_helpers import StaticAuth, neutron_error

NET = "/networking/v2.0"
FIPS = f"{NET}/floatingips"
PORTS = f"{NET}/ports"


def create(api: Any, **body: Any) -> tuple[int, Any]:
    return api.post(FIPS, {"floatingip": {"floating_network_id": api.network_id("public"),
                                          **body}})


def make(api: Any, **body: Any) -> dict[str, Any]:
    code, data = create(api, **body)
    assert code == 201, data
    return dict(data["floatingip"])


def router_ports(api: Any) -> list[dict[str, Any]]:
    code, body = api.get(f"{PORTS}?device_owner=network:router_interface")
    assert code == 200
    return list(body["ports"])


def private_lb(api: Any) -> dict[str, Any]:
    return api.create_lb(name="lb1", vip_subnet_id=api.subnet_id("private-subnet"))


def test_create_allocates_an_address_from_the_external_network(api: Any) -> None:
    fip = make(api)
    assert ipaddress.ip_address(fip["floating_ip_address"]) in \
        ipaddress.ip_network("172.24.4.0/24")
    assert fip["floating_network_id"] == api.network_id("public")
    assert (fip["port_id"], fip["fixed_ip_address"], fip["router_id"], fip["status"]) == \
        (None, None, None, "DOWN")
    _, body = api.get(f"{PORTS}?device_owner=network:floatingip")
    assert [p["fixed_ips"][0]["ip_address"] for p in body["ports"]] == \
        [fip["floating_ip_address"]]
    second = make(api)
    assert second["floating_ip_address"] != fip["floating_ip_address"]


def test_create_refuses_internal_networks_taken_and_foreign_addresses(api: Any) -> None:
    code, body = create(api, floating_network_id=api.network_id("private"))
    assert code == 400 and "is not a valid external network" in neutron_error(body)[1]
    fip = make(api, floating_ip_address="172.24.4.77")
    assert fip["floating_ip_address"] == "172.24.4.77"
    code, body = create(api, floating_ip_address="172.24.4.77")
    assert code == 409 and neutron_error(body)[0] == "IpAddressAlreadyAllocated"
    code, body = create(api, floating_ip_address="10.9.9.9")
    assert code == 400
    code, body = api.post(FIPS, {"floatingip": {}})
    assert code == 400 and "floating_network_id" in neutron_error(body)[1]
    code, body = create(api, bogus=1)
    assert code == 400 and "Unrecognized attribute" in neutron_error(body)[1]


def test_associate_with_a_vip_port_then_unset(api: Any) -> None:
    calls: list[int] = []
    api.service.app.state.extras["floating_ips_changed"] = lambda: calls.append(1)
    lb = private_lb(api)
    fip = make(api)
    code, body = api.put(f"{FIPS}/{fip['id']}", {"floatingip": {"port_id": lb["vip_port_id"]}})
    assert code == 200, body
    got = body["floatingip"]
    assert (got["port_id"], got["fixed_ip_address"], got["status"]) == \
        (lb["vip_port_id"], lb["vip_address"], "ACTIVE")
    [router] = router_ports(api)
    assert router["device_id"] == got["router_id"]
    assert router["fixed_ips"][0]["subnet_id"] == api.subnet_id("private-subnet")
    assert router["fixed_ips"][0]["ip_address"] != lb["vip_address"]
    code, shown = api.get(f"{FIPS}/{fip['id']}")
    assert code == 200 and shown["floatingip"] == got

    other = make(api)
    code, body = api.put(f"{FIPS}/{other['id']}", {"floatingip": {"port_id": lb["vip_port_id"]}})
    assert code == 409 and neutron_error(body)[0] == "FloatingIPPortAlreadyAssociated"

    code, body = api.put(f"{FIPS}/{fip['id']}", {"floatingip": {"port_id": None}})
    assert code == 200
    assert (body["floatingip"]["port_id"], body["floatingip"]["status"]) == (None, "DOWN")
    assert router_ports(api) == []
    assert len(calls) == 4  # two creates, two updates: the data plane is woken each time


def test_association_errors(api: Any) -> None:
    fip = make(api)
    public_lb = api.create_lb(name="pub")
    code, body = api.put(f"{FIPS}/{fip['id']}",
                         {"floatingip": {"port_id": public_lb["vip_port_id"]}})
    assert code == 400 and "external network" in neutron_error(body)[1]
    missing = "00000000-0000-4000-8000-000000000000"
    code, body = api.put(f"{FIPS}/{fip['id']}", {"floatingip": {"port_id": missing}})
    assert code == 404 and neutron_error(body)[0] == "PortNotFound"
    lb = private_lb(api)
    code, body = api.put(f"{FIPS}/{fip['id']}", {"floatingip": {
        "port_id": lb["vip_port_id"], "fixed_ip_address": "10.0.0.250"}})
    assert code == 400 and "does not have fixed ip" in neutron_error(body)[1]
    code, body = api.put(f"{FIPS}/{fip['id']}", {"floatingip": {"router_id": missing}})
    assert code == 400


def test_create_with_port_and_lookups_the_sdk_makes(api: Any) -> None:
    lb = private_lb(api)
    fip = make(api, port_id=lb["vip_port_id"])
    assert fip["fixed_ip_address"] == lb["vip_address"] and fip["status"] == "ACTIVE"
    # openstacksdk's find_ip: GET by id (404 for an address), then a filtered list
    code, body = api.get(f"{FIPS}/{fip['floating_ip_address']}")
    assert code == 404 and neutron_error(body)[0] == "FloatingIPNotFound"
    code, body = api.get(f"{FIPS}?floating_ip_address={fip['floating_ip_address']}")
    assert [f["id"] for f in body["floatingips"]] == [fip["id"]]
    make(api)
    code, body = api.get(f"{FIPS}?port_id={lb['vip_port_id']}")
    assert [f["id"] for f in body["floatingips"]] == [fip["id"]]
    code, body = api.get(f"{FIPS}?status=DOWN&fields=id&fields=status")
    assert [set(f) for f in body["floatingips"]] == [{"id", "status"}]


def test_delete_frees_the_address_and_the_router_port(api: Any) -> None:
    lb = private_lb(api)
    fip = make(api, port_id=lb["vip_port_id"], floating_ip_address="172.24.4.90")
    assert len(router_ports(api)) == 1
    code, _ = api.delete(f"{FIPS}/{fip['id']}")
    assert code == 204
    assert api.get(f"{FIPS}/{fip['id']}")[0] == 404
    assert router_ports(api) == []
    assert make(api, floating_ip_address="172.24.4.90")["floating_ip_address"] == \
        "172.24.4.90"
    assert api.delete(f"{FIPS}/{fip['id']}")[0] == 404


def test_deleted_load_balancer_leaves_the_floating_ip_down(api: Any) -> None:
    lb = private_lb(api)
    fip = make(api, port_id=lb["vip_port_id"])
    assert api.delete(f"/v2/lbaas/loadbalancers/{lb['id']}")[0] == 204
    api.wait_lb(lb["id"], "DELETED")
    code, body = api.get(f"{FIPS}/{fip['id']}")
    assert code == 200
    assert (body["floatingip"]["port_id"], body["floatingip"]["status"]) == (None, "DOWN")


def test_projects_see_only_their_floating_ips(api: Any) -> None:
    mine = make(api)
    api.service.app.authenticator = StaticAuth("another-project")
    code, body = api.get(FIPS)
    assert code == 200 and body["floatingips"] == []
    assert api.get(f"{FIPS}/{mine['id']}")[0] == 404
    api.service.app.authenticator = StaticAuth(mine["project_id"])
    assert [f["id"] for f in api.get(FIPS)[1]["floatingips"]] == [mine["id"]]


def test_desired_routers_follow_the_rows(api: Any) -> None:
    """What the data plane converges to (no kernel needed): one router per internal subnet
    with live associations, DNAT floating -> VIP, inside address = the router port."""
    from lbaas.controller.floating_ips import desired_routers
    from lbaas.drivers.local.router import nft_ruleset

    engine = api.service.engine
    lb = private_lb(api)
    make(api)  # unassociated: no router
    with engine.connect() as conn:
        assert desired_routers(conn) == []
    fip = make(api, port_id=lb["vip_port_id"])
    with engine.connect() as conn:
        [router] = desired_routers(conn)
    [port] = router_ports(api)
    assert router.router_id == fip["router_id"] == port["device_id"]
    assert router.inside.subnet_id == api.subnet_id("private-subnet")
    assert router.outside.subnet_id == api.subnet_id("public-subnet")
    assert router.inside_address == port["fixed_ips"][0]["ip_address"]
    assert router.nat == ((fip["floating_ip_address"], lb["vip_address"]),)
    rules = nft_ruleset(router)
    assert f"ip daddr {fip['floating_ip_address']} dnat to {lb['vip_address']}" in rules
    assert f"snat to {router.inside_address}" in rules
    assert api.delete(f"/v2/lbaas/loadbalancers/{lb['id']}")[0] == 204
    api.wait_lb(lb["id"], "DELETED")
    with engine.connect() as conn:
        assert desired_routers(conn) == []  # the VIP port is gone: nothing to route
