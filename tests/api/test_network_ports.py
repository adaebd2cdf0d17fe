"""Neutron ports: create, update and delete as openstacksdk, gophercloud and Terraform do, and
the ports lbaas owns itself (a VIP port keeps its address and cannot be deleted)."""

from __future__ import annotations

import pytest
from network_helpers import (
    LBS,
    NETWORKS,
    PORTS,
    SUBNETS,
    fault,
    get,
    make_network,
    make_port,
    make_subnet,
    neutron_error,
)


@pytest.fixture()
def net(api):
    network = make_network(api, "n1")
    subnet = make_subnet(api, network["id"], "10.60.0.0/24",
                         allocation_pools=[{"start": "10.60.0.10", "end": "10.60.0.20"}])
    return network, subnet


def test_port_create_defaults_show_list_and_delete(api, net):
    network, subnet = net
    port = make_port(api, network["id"], name="p1", description="d")
    assert port["fixed_ips"] == [{"subnet_id": subnet["id"], "ip_address": "10.60.0.10"}]
    assert (port["status"], port["admin_state_up"], port["device_owner"],
            port["binding:vnic_type"], port["port_security_enabled"], port["security_groups"],
            port["project_id"], port["description"]) == \
        ("DOWN", True, "", "normal", True, [], "admin", "d")
    assert port["mac_address"].startswith("fa:16:3e:")
    assert get(api, f"{PORTS}/{port['id']}")["port"] == port
    code, body = api.get(PORTS, params={"name": "p1"})
    assert [p["id"] for p in body["ports"]] == [port["id"]]

    code, body = api.delete(f"{SUBNETS}/{subnet['id']}")
    assert code == 409 and neutron_error(body)[0] == "SubnetInUse"
    code, body = api.delete(f"{NETWORKS}/{network['id']}")
    assert code == 409 and neutron_error(body)[0] == "NetworkInUse"
    assert api.delete(f"{PORTS}/{port['id']}")[0] == 204
    code, body = api.get(f"{PORTS}/{port['id']}")
    assert code == 404 and neutron_error(body) == ("PortNotFound",
                                                   f"Port {port['id']} could not be found.")
    # its address is free again, and nothing keeps the network any more
    assert make_port(api, network["id"])["fixed_ips"][0]["ip_address"] == "10.60.0.10"


def test_port_on_network_without_subnets_and_with_two_families(api):
    bare = make_network(api, "bare")
    assert make_port(api, bare["id"])["fixed_ips"] == []
    dual = make_network(api, "dual")
    v4 = make_subnet(api, dual["id"], "10.61.0.0/24")
    v6 = make_subnet(api, dual["id"], "2001:db8:61::/64")
    port = make_port(api, dual["id"])
    assert port["fixed_ips"] == [{"subnet_id": v4["id"], "ip_address": "10.61.0.2"},
                                 {"subnet_id": v6["id"], "ip_address": "2001:db8:61::2"}]


def test_port_attributes_as_gophercloud_and_terraform_send_them(api, net):
    network, subnet = net
    port = make_port(api, network["id"], admin_state_up=False, security_groups=[],
                     port_security_enabled=False, fixed_ips=[{"subnet_id": subnet["id"]},
                                                            {"subnet_id": subnet["id"]}],
                     allowed_address_pairs=[{"ip_address": "192.168.255.10",
                                             "mac_address": "AA:BB:CC:DD:EE:FF"},
                                            {"ip_address": "10.60.1.0/24"}],
                     mac_address="fa:16:3e:00:00:01", device_id="vm-1",
                     device_owner="compute:nova", tags=["b", "a"],
                     **{"binding:vnic_type": "direct"})
    assert [f["ip_address"] for f in port["fixed_ips"]] == ["10.60.0.10", "10.60.0.11"]
    assert port["allowed_address_pairs"] == [
        {"ip_address": "192.168.255.10", "mac_address": "aa:bb:cc:dd:ee:ff"},
        {"ip_address": "10.60.1.0/24", "mac_address": "fa:16:3e:00:00:01"}]
    assert (port["admin_state_up"], port["port_security_enabled"], port["mac_address"],
            port["device_id"], port["device_owner"], port["binding:vnic_type"],
            port["tags"], port["status"]) == \
        (False, False, "fa:16:3e:00:00:01", "vm-1", "compute:nova", "direct", ["a", "b"],
         "DOWN")
    code, body = api.put(f"{PORTS}/{port['id']}", {"port": {"allowed_address_pairs": [],
                                                            "name": "x", "description": "y"}})
    assert code == 200, body
    assert (body["port"]["allowed_address_pairs"], body["port"]["name"],
            body["port"]["description"], body["port"]["revision_number"]) == ([], "x", "y", 1)


def test_port_takes_the_network_port_security_default(api):
    network = make_network(api, "n1", port_security_enabled=False)
    assert make_port(api, network["id"])["port_security_enabled"] is False


def test_fixed_ips_explicit_addresses(api, net):
    network, subnet = net
    outside_pool = make_port(api, network["id"], fixed_ips=[{"ip_address": "10.60.0.100"}])
    assert outside_pool["fixed_ips"] == [{"subnet_id": subnet["id"],
                                          "ip_address": "10.60.0.100"}]
    code, body = api.post(PORTS, {"port": {"network_id": network["id"], "fixed_ips": [
        {"subnet_id": subnet["id"], "ip_address": "10.60.0.100"}]}})
    assert code == 409
    assert neutron_error(body) == ("IpAddressAlreadyAllocated", f"IP address 10.60.0.100 "
                                   f"already allocated in subnet {subnet['id']}")


@pytest.mark.parametrize(("fixed_ips", "status", "kind", "text"), [
    ([{"ip_address": "10.60.0.1"}], 400, "InvalidIpForNetwork", "is not a valid IP for any"),
    ([{"ip_address": "10.60.0.0"}], 400, "InvalidIpForNetwork", "is not a valid IP for any"),
    ([{"ip_address": "10.60.0.255"}], 400, "InvalidIpForNetwork", "is not a valid IP for any"),
    ([{"ip_address": "10.99.0.5"}], 400, "InvalidIpForNetwork", "10.99.0.5 is not a valid IP"),
    ([{"ip_address": "nonsense"}], 400, "HTTPBadRequest", "is not a valid IP address"),
    ([{"ip_address": "10.60.0.5"}, {"ip_address": "10.60.0.5"}], 400, "HTTPBadRequest",
     "Duplicate IP address '10.60.0.5'"),
    ([{}], 400, "InvalidInput", "IP allocation requires subnet_id or ip_address"),
    ([{"subnet_id": "nope"}], 404, "SubnetNotFound", "Subnet nope could not be found."),
    ("10.60.0.5", 400, "HTTPBadRequest", "Invalid data format for fixed IP"),
    ([{"ip_address": f"10.60.0.{i}"} for i in range(30, 36)], 400, "InvalidInput",
     "Exceeded maximum amount of fixed ips per port."),
])
def test_fixed_ips_errors_allocate_nothing(api, net, fixed_ips, status, kind, text):
    network, _ = net
    code, body = api.post(PORTS, {"port": {"network_id": network["id"], "fixed_ips": fixed_ips}})
    assert code == status, body
    got_kind, message = neutron_error(body)
    assert got_kind == kind and text in message
    assert get(api, PORTS + f"?network_id={network['id']}")["ports"] == []


def test_fixed_ips_errors_with_the_subnet(api, net):
    network, subnet = net
    other = make_subnet(api, make_network(api, "n2")["id"], "10.62.0.0/24")
    code, body = api.post(PORTS, {"port": {"network_id": network["id"],
                                           "fixed_ips": [{"subnet_id": other["id"]}]}})
    assert code == 400
    assert neutron_error(body) == ("InvalidInput", "Invalid input for operation: Failed to "
                                   f"create port on network {network['id']}, because fixed_ips "
                                   f"included invalid subnet {other['id']}.")
    code, body = api.post(PORTS, {"port": {"network_id": network["id"], "fixed_ips": [
        {"subnet_id": subnet["id"], "ip_address": "10.62.0.5"}]}})
    assert code == 400 and neutron_error(body) == (
        "InvalidIpForSubnet", "IP address 10.62.0.5 is not a valid IP for the specified subnet.")
    bare = make_network(api, "bare")
    code, body = api.post(PORTS, {"port": {"network_id": bare["id"],
                                           "fixed_ips": [{"ip_address": "10.60.0.5"}]}})
    assert code == 400 and "IP allocation requires subnets for network" in neutron_error(body)[1]


def test_full_subnet_is_409(api):
    network = make_network(api, "n1")
    make_subnet(api, network["id"], "10.63.0.0/30", gateway_ip=None, enable_dhcp=False)
    make_port(api, network["id"])
    make_port(api, network["id"])
    code, body = api.post(PORTS, {"port": {"network_id": network["id"]}})
    assert code == 409
    assert neutron_error(body) == ("IpAddressGenerationFailure", "No more IP addresses "
                                   f"available on network {network['id']}.")


@pytest.mark.parametrize(("extra", "status", "kind", "text"), [
    ({"mac_address": "zz:16:3e:00:00:01"}, 400, "HTTPBadRequest", "is not a valid MAC address"),
    ({"mac_address": "00:00:00:00:00:00"}, 400, "HTTPBadRequest", "is not a valid MAC address"),
    ({"security_groups": ["default"]}, 404, "SecurityGroupNotFound",
     "Security group default does not exist"),
    ({"allowed_address_pairs": [{"mac_address": "fa:16:3e:00:00:09"}]}, 400,
     "AllowedAddressPairsMissingIP", "AllowedAddressPair must contain ip_address"),
    ({"allowed_address_pairs": [{"ip_address": "10.1.1.1"}] * 2}, 400,
     "DuplicateAddressPairInRequest", "Request contains duplicate address pair"),
    ({"allowed_address_pairs": [{"ip_address": "224.0.0.5"}]}, 400, "HTTPBadRequest",
     "multicast"),
    ({"allowed_address_pairs": "10.1.1.1"}, 400, "HTTPBadRequest",
     "Allowed address pairs must be a list."),
    ({"binding:vnic_type": "fancy"}, 400, "HTTPBadRequest", "fancy is not in valid_values"),
    ({"tags": ["a", "a"]}, 400, "InvalidInput", "Duplicate items in the list: 'a'"),
    ({"extra_dhcp_opts": []}, 400, "HTTPBadRequest", "Attribute 'extra_dhcp_opts' not allowed"),
    ({"status": "ACTIVE"}, 400, "HTTPBadRequest", "Attribute 'status' not allowed in POST"),
    ({"binding:host_id": "h"}, 400, "HTTPBadRequest", "Unrecognized attribute(s)"),
])
def test_port_create_validation(api, net, extra, status, kind, text):
    network, _ = net
    code, body = api.post(PORTS, {"port": {"network_id": network["id"], **extra}})
    assert code == status, body
    got_kind, message = neutron_error(body)
    assert got_kind == kind and text in message
    assert get(api, PORTS + f"?network_id={network['id']}")["ports"] == []


def test_mac_address_unique_per_network(api, net):
    network, _ = net
    make_port(api, network["id"], mac_address="fa:16:3e:aa:bb:cc")
    code, body = api.post(PORTS, {"port": {"network_id": network["id"],
                                           "mac_address": "FA-16-3E-AA-BB-CC"}})
    assert code == 409
    assert neutron_error(body) == ("MacAddressInUse", f"Unable to complete operation for "
                                   f"network {network['id']}. The mac address fa:16:3e:aa:bb:cc "
                                   "is in use.")
    other = make_network(api, "n2")
    assert make_port(api, other["id"], mac_address="fa:16:3e:aa:bb:cc")["mac_address"] == \
        "fa:16:3e:aa:bb:cc"


def test_update_fixed_ips_keeps_moves_and_frees_addresses(api, net):
    network, subnet = net
    port = make_port(api, network["id"], fixed_ips=[{"subnet_id": subnet["id"]},
                                                    {"ip_address": "10.60.0.15"}])
    assert [f["ip_address"] for f in port["fixed_ips"]] == ["10.60.0.10", "10.60.0.15"]
    code, body = api.put(f"{PORTS}/{port['id']}", {"port": {"fixed_ips": [
        {"subnet_id": subnet["id"]}, {"ip_address": "10.60.0.16"}]}})
    assert code == 200, body
    # the subnet-only entry keeps the address the port had; .15 is given back
    assert [f["ip_address"] for f in body["port"]["fixed_ips"]] == ["10.60.0.10", "10.60.0.16"]
    taker = make_port(api, network["id"], fixed_ips=[{"ip_address": "10.60.0.15"}])
    assert taker["fixed_ips"][0]["ip_address"] == "10.60.0.15"
    code, body = api.put(f"{PORTS}/{port['id']}", {"port": {"fixed_ips": [
        {"ip_address": "10.60.0.15"}]}})
    assert code == 409 and neutron_error(body)[0] == "IpAddressAlreadyAllocated"
    assert [f["ip_address"] for f in get(api, f"{PORTS}/{port['id']}")["port"]["fixed_ips"]] \
        == ["10.60.0.10", "10.60.0.16"]
    code, body = api.put(f"{PORTS}/{port['id']}", {"port": {"fixed_ips": []}})
    assert code == 200 and body["port"]["fixed_ips"] == []
    assert make_port(api, network["id"], fixed_ips=[{"ip_address": "10.60.0.16"}])


@pytest.mark.parametrize(("change", "message"), [
    ({"network_id": "x"}, "Cannot update read-only attribute network_id"),
    ({"tags": []}, "Cannot update read-only attribute tags"),
    ({"project_id": "admin"}, "Cannot update read-only attribute project_id"),
])
def test_port_update_read_only(api, net, change, message):
    port = make_port(api, net[0]["id"])
    code, body = api.put(f"{PORTS}/{port['id']}", {"port": change})
    assert code == 400 and neutron_error(body) == ("HTTPBadRequest", message)


def test_a_vip_port_is_lbaas_own_until_the_load_balancer_goes(api, net):
    network, subnet = net
    port = make_port(api, network["id"], name="vip")
    lb = api.create_lb(vip_port_id=port["id"], vip_subnet_id=subnet["id"])
    assert lb["vip_address"] == port["fixed_ips"][0]["ip_address"]
    taken = get(api, f"{PORTS}/{port['id']}")["port"]
    assert (taken["status"], taken["device_owner"], taken["device_id"]) == \
        ("ACTIVE", "Octavia", f"lb-{lb['id']}")
    for change in ({"fixed_ips": [{"subnet_id": subnet["id"]}]}, {"device_id": ""},
                   {"device_owner": ""}, {"mac_address": "fa:16:3e:00:00:02"}):
        code, body = api.put(f"{PORTS}/{port['id']}", {"port": change})
        assert code == 409, change
        assert neutron_error(body) == (
            "PortInUse", f"Unable to complete operation on port {port['id']} for network "
            f"{network['id']}. Port already has an attached device lb-{lb['id']}.")
    code, body = api.put(f"{PORTS}/{port['id']}", {"port": {"name": "still mine"}})
    assert code == 200 and body["port"]["name"] == "still mine"
    code, body = api.delete(f"{PORTS}/{port['id']}")
    assert code == 409
    assert neutron_error(body) == ("ServicePortInUse", f"Port {port['id']} cannot be deleted "
                                   "directly via the port API: has device owner Octavia.")
    # a second load balancer cannot take it either (upstream's message)
    code, body = api.post(LBS, {"loadbalancer": {"vip_port_id": port["id"]}})
    assert code == 400 and fault(body).startswith(f"Validation failure: Port {port['id']} is "
                                                  "already used by device")
    assert api.get(f"{LBS}/{lb['id']}")[1]["loadbalancer"]["vip_address"] == \
        port["fixed_ips"][0]["ip_address"]
