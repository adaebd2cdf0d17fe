"""Neutron network and subnet attributes and updates, as openstacksdk, gophercloud and
Terraform send them: description, DNS servers, host routes, DHCP, IPv6 modes, PUT."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from network_helpers import (
    NETWORKS,
    SUBNETS,
    Callers,
    get,
    make_network,
    make_port,
    make_subnet,
    neutron_error,
    seeded_cidr,
)

# --------------------------------------------------------------------------------- networks --


def test_network_description_and_update_bump_the_revision(api):
    net = make_network(api, "n1", description="first", admin_state_up=True)
    assert (net["description"], net["revision_number"]) == ("first", 0)
    code, body = api.put(f"{NETWORKS}/{net['id']}", {"network": {
        "name": "n2", "description": "second", "admin_state_up": False,
        "port_security_enabled": False}})
    assert code == 200, body
    changed = body["network"]
    assert (changed["name"], changed["description"], changed["admin_state_up"],
            changed["port_security_enabled"], changed["revision_number"]) == \
        ("n2", "second", False, False, 1)
    assert get(api, f"{NETWORKS}/{net['id']}")["network"] == changed
    code, body = api.get(NETWORKS, params={"description": "second"})
    assert [n["id"] for n in body["networks"]] == [net["id"]]


@pytest.mark.parametrize(("body", "message"), [
    ({"status": "DOWN"}, "Cannot update read-only attribute status"),
    ({"subnets": []}, "Cannot update read-only attribute subnets"),
    ({"project_id": "admin"}, "Cannot update read-only attribute project_id"),
    ({"availability_zone_hints": []},
     "Cannot update read-only attribute availability_zone_hints"),
    ({"bogus": 1}, "Unrecognized attribute(s) 'bogus'"),
])
def test_network_update_refuses_what_neutron_refuses(api, body, message):
    net = make_network(api, "n1")
    code, data = api.put(f"{NETWORKS}/{net['id']}", {"network": body})
    assert code == 400
    assert neutron_error(data) == ("HTTPBadRequest", message)
    assert get(api, f"{NETWORKS}/{net['id']}")["network"]["revision_number"] == 0


def test_network_update_unknown_is_404(api):
    code, body = api.put(f"{NETWORKS}/nope", {"network": {"name": "x"}})
    assert code == 404
    assert neutron_error(body) == ("NetworkNotFound", "Network nope could not be found.")


def test_network_availability_zone_hints(api):
    assert make_network(api, "n1", availability_zone_hints=[])["availability_zone_hints"] == []
    code, body = api.post(NETWORKS, {"network": {"name": "n2",
                                                 "availability_zone_hints": ["nova"]}})
    assert code == 404
    assert neutron_error(body) == ("AvailabilityZoneNotFound",
                                   "AvailabilityZone nova could not be found.")


def test_management_network_is_the_operators(api):
    mgmt = api.network_id("lb-mgmt-net")
    code, body = api.put(f"{NETWORKS}/{mgmt}", {"network": {"name": "renamed"}})
    assert code == 409 and neutron_error(body)[0] == "NetworkInUse"
    code, body = api.delete(f"{NETWORKS}/{mgmt}")
    assert code == 409 and neutron_error(body)[0] == "NetworkInUse"
    code, body = api.put(f"{SUBNETS}/{api.subnet_id('lb-mgmt-subnet')}",
                         {"subnet": {"gateway_ip": None}})
    assert code == 409 and neutron_error(body)[0] == "SubnetInUse"
    code, body = api.post(SUBNETS, {"subnet": {"network_id": mgmt, "cidr": "10.99.0.0/24",
                                               "ip_version": 4}})
    assert code == 409 and neutron_error(body)[0] == "SubnetInUse"
    # no other network may take its name: the controller looks it up by name
    code, body = api.post(NETWORKS, {"network": {"name": "lb-mgmt-net"}})
    assert code == 400 and "reserved" in neutron_error(body)[1]
    other = make_network(api, "n1")
    code, body = api.put(f"{NETWORKS}/{other['id']}", {"network": {"name": "lb-mgmt-net"}})
    assert code == 400 and "reserved" in neutron_error(body)[1]
    assert get(api, f"{NETWORKS}/{mgmt}")["network"]["name"] == "lb-mgmt-net"


# ---------------------------------------------------------------------------------- subnets --

def test_subnet_attributes_as_openstacksdk_sends_them(api):
    net = make_network(api, "n1")
    sub = make_subnet(api, net["id"], "10.100.0.0/24", name="s1", description="d",
                      dns_nameservers=["8.8.4.4", "8.8.8.8"],
                      allocation_pools=[{"start": "10.100.0.2", "end": "10.100.0.253"}],
                      host_routes=[{"destination": "10.101.0.0/24",
                                    "nexthop": "10.100.0.254"}])
    shown = get(api, f"{SUBNETS}/{sub['id']}")["subnet"]
    assert shown == sub
    assert shown["dns_nameservers"] == ["8.8.4.4", "8.8.8.8"]  # order kept, as Neutron
    assert shown["host_routes"] == [{"destination": "10.101.0.0/24",
                                     "nexthop": "10.100.0.254"}]
    assert (shown["gateway_ip"], shown["enable_dhcp"], shown["description"]) == \
        ("10.100.0.1", True, "d")
    assert (shown["ipv6_ra_mode"], shown["ipv6_address_mode"]) == (None, None)


def test_subnet_as_gophercloud_creates_and_updates_it(api):
    net = make_network(api, "n1", description="TESTACC-DESC")
    sub = make_subnet(api, net["id"], "192.168.77.0/24", name="s", description="sd",
                      enable_dhcp=False, gateway_ip="192.168.77.1")
    assert (sub["enable_dhcp"], sub["gateway_ip"], sub["description"]) == \
        (False, "192.168.77.1", "sd")
    code, body = api.put(f"{SUBNETS}/{sub['id']}", {"subnet": {"gateway_ip": None}})
    assert code == 200 and body["subnet"]["gateway_ip"] is None
    code, body = api.put(f"{SUBNETS}/{sub['id']}", {"subnet": {"gateway_ip": "192.168.77.254"}})
    assert code == 409 and neutron_error(body)[0] == "GatewayConflictWithAllocationPools"
    code, body = api.put(f"{SUBNETS}/{sub['id']}", {"subnet": {
        "allocation_pools": [{"start": "192.168.77.10", "end": "192.168.77.200"}],
        "gateway_ip": "192.168.77.254", "dns_nameservers": ["1.1.1.1"],
        "enable_dhcp": True, "name": "s2", "description": "sd2"}})
    assert code == 200, body
    updated = body["subnet"]
    assert (updated["gateway_ip"], updated["dns_nameservers"], updated["enable_dhcp"],
            updated["name"], updated["description"], updated["revision_number"]) == \
        ("192.168.77.254", ["1.1.1.1"], True, "s2", "sd2", 2)
    assert updated["allocation_pools"] == [{"start": "192.168.77.10", "end": "192.168.77.200"}]
    code, body = api.put(f"{SUBNETS}/{sub['id']}", {"subnet": {"dns_nameservers": []}})
    assert code == 200 and body["subnet"]["dns_nameservers"] == []


def test_subnet_gateway_stays_while_addresses_are_in_use(api):
    net = make_network(api, "n1")
    sub = make_subnet(api, net["id"], "10.5.0.0/24")
    make_port(api, net["id"])
    code, body = api.put(f"{SUBNETS}/{sub['id']}", {"subnet": {"gateway_ip": None}})
    assert code == 409
    assert neutron_error(body) == ("SubnetInUse", f"Unable to complete operation on subnet "
                                   f"{sub['id']}: its gateway cannot move while addresses are in "
                                   "use.")
    code, body = api.put(f"{SUBNETS}/{sub['id']}", {"subnet": {"gateway_ip": "10.5.0.1",
                                                               "name": "same"}})
    assert code == 200 and body["subnet"]["name"] == "same"


def test_ipv6_modes(api):
    net = make_network(api, "n1")
    v6 = make_subnet(api, net["id"], "2001:db8:5::/64", ipv6_ra_mode="slaac",
                     ipv6_address_mode="slaac")
    assert (v6["ipv6_ra_mode"], v6["ipv6_address_mode"]) == ("slaac", "slaac")
    code, body = api.put(f"{SUBNETS}/{v6['id']}", {"subnet": {"ipv6_ra_mode": None}})
    assert code == 400 and neutron_error(body) == (
        "HTTPBadRequest", "Cannot update read-only attribute ipv6_ra_mode")


@pytest.mark.parametrize(("extra", "status", "kind", "text"), [
    ({"dns_nameservers": ["8.8.8.8", "8.8.8.8"]}, 400, "HTTPBadRequest",
     "Invalid input for dns_nameservers. Reason: Duplicate nameserver '8.8.8.8'."),
    ({"dns_nameservers": ["dns.example"]}, 400, "HTTPBadRequest",
     "'dns.example' is not a valid nameserver."),
    ({"dns_nameservers": "8.8.8.8"}, 400, "HTTPBadRequest",
     "Invalid data format for nameserver: '8.8.8.8'"),
    ({"dns_nameservers": [f"10.0.0.{i}" for i in range(1, 7)]}, 400, "DNSNameServersExhausted",
     "Unable to complete operation for new subnet. The number of DNS nameservers exceeds "
     "the limit 5."),
    ({"dns_nameservers": ["2001:db8::53"]}, 400, "InvalidInput",
     "dns_nameserver '2001:db8::53' does not match the ip_version '4'"),
    ({"host_routes": [{"destination": "10.1.0.0/24"}]}, 400, "HTTPBadRequest",
     "Validation of dictionary's keys failed."),
    ({"host_routes": [{"destination": "nowhere", "nexthop": "10.77.0.9"}]}, 400,
     "HTTPBadRequest", "'nowhere' is not a valid CIDR"),
    ({"host_routes": [{"destination": "10.1.0.0/24", "nexthop": "2001:db8::1"}]}, 400,
     "InvalidInput", "nexthop '2001:db8::1' does not match the ip_version '4'"),
    ({"host_routes": [{"destination": f"10.{i}.0.0/24", "nexthop": "10.77.0.9"}
                      for i in range(21)]}, 400, "HostRoutesExhausted",
     "The number of host routes exceeds the limit 20."),
    ({"ipv6_ra_mode": "slaac"}, 400, "InvalidInput", "ipv6_ra_mode is not valid when "
     "ip_version is 4"),
    ({"ipv6_address_mode": "magic"}, 400, "HTTPBadRequest", "magic is not in valid_values"),
    ({"enable_dhcp": "sometimes"}, 400, "InvalidInput", "cannot be converted to boolean"),
    ({"subnetpool_id": "pool-1"}, 404, "SubnetPoolNotFound",
     "Subnet pool pool-1 could not be found."),
    ({"description": "x" * 256}, 400, "HTTPBadRequest", "exceeds maximum length of 255"),
])
def test_subnet_create_validation(api, extra, status, kind, text):
    net = make_network(api, "n1")
    code, body = api.post(SUBNETS, {"subnet": {"network_id": net["id"], "cidr": "10.77.0.0/24",
                                               "ip_version": 4, **extra}})
    assert code == status, body
    got_kind, message = neutron_error(body)
    assert got_kind == kind and text in message
    assert get(api, f"{NETWORKS}/{net['id']}")["network"]["subnets"] == []


def test_ipv6_ra_and_address_modes_must_agree(api):
    net = make_network(api, "n1")
    code, body = api.post(SUBNETS, {"subnet": {
        "network_id": net["id"], "cidr": "2001:db8:6::/64", "ip_version": 6,
        "ipv6_ra_mode": "slaac", "ipv6_address_mode": "dhcpv6-stateful"}})
    assert code == 400 and neutron_error(body)[0] == "InvalidInput"
    assert "If both attributes are set, they must be the same value" in neutron_error(body)[1]


@pytest.mark.parametrize(("change", "status", "kind"), [
    ({"cidr": "10.78.0.0/24"}, 400, "HTTPBadRequest"),
    ({"network_id": "other"}, 400, "HTTPBadRequest"),
    ({"dns_nameservers": ["x"]}, 400, "HTTPBadRequest"),
    ({"host_routes": [{"destination": "10.1.0.0/24", "nexthop": "10.77.0.5"}] * 2}, 400,
     "HTTPBadRequest"),
    ({"allocation_pools": [{"start": "10.77.1.1", "end": "10.77.1.9"}]}, 400, "HTTPBadRequest"),
    ({"allocation_pools": [{"start": "10.77.0.1", "end": "10.77.0.9"}]}, 409,
     "GatewayConflictWithAllocationPools"),
    ({"gateway_ip": "10.78.0.1"}, 400, "InvalidInput"),
    ({"enable_dhcp": "maybe"}, 400, "InvalidInput"),
])
def test_subnet_update_validation_changes_nothing(api, change, status, kind):
    net = make_network(api, "n1")
    sub = make_subnet(api, net["id"], "10.77.0.0/24", dns_nameservers=["10.77.0.53"])
    code, body = api.put(f"{SUBNETS}/{sub['id']}", {"subnet": {"name": "changed", **change}})
    assert code == status, body
    assert neutron_error(body)[0] == kind
    assert get(api, f"{SUBNETS}/{sub['id']}")["subnet"] == sub


def test_subnet_enabling_dhcp_checks_the_prefix(api):
    net = make_network(api, "n1")
    tiny = make_subnet(api, net["id"], "10.79.0.0/31", enable_dhcp=False, gateway_ip=None)
    code, body = api.put(f"{SUBNETS}/{tiny['id']}", {"subnet": {"enable_dhcp": True}})
    assert code == 400 and "incompatible with DHCP" in neutron_error(body)[1]


def test_seeded_subnets_show_the_defaults(api: Any):
    sub = get(api, f"{SUBNETS}/{api.subnet_id('public-subnet')}")["subnet"]
    assert (sub["enable_dhcp"], sub["dns_nameservers"], sub["host_routes"],
            sub["description"], sub["revision_number"], sub["tags"]) == \
        (True, [], [], "", 0, [])


def test_no_subnet_may_overlap_the_management_network(api):
    mgmt = ipaddress.ip_network(seeded_cidr(api, "lb-mgmt-subnet"))
    inside = next(mgmt.subnets(new_prefix=min(mgmt.prefixlen + 2, 30)))
    around = mgmt.supernet(new_prefix=mgmt.prefixlen - 1)
    callers = Callers(api)
    for caller in ("admin", "p1"):
        if caller == "p1":
            callers.project("p1")
        net = make_network(api, f"n-{caller}")
        for cidr in (mgmt, inside, around):
            code, body = api.post(SUBNETS, {"subnet": {"network_id": net["id"],
                                                       "cidr": str(cidr), "ip_version": 4}})
            assert code == 400, (caller, cidr, body)
            assert neutron_error(body) == (
                "InvalidInput", f"Invalid input for operation: Requested subnet with cidr: "
                f"{cidr} for network: {net['id']} overlaps with the load balancers' management "
                "network.")
