"""The Neutron-compatible subset under /networking, as the openstack CLI and SDK see it."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from network_helpers import (
    LBS,
    NET,
    NETWORKS,
    PORTS,
    SUBNETS,
    make_network,
    make_subnet,
    neutron_error,
)

# --------------------------------------------------------------------------- discovery --

@pytest.mark.parametrize("path", ["/networking", "/networking/"])
def test_version_document_points_at_v2_0(api, path):
    code, body = api.get(path)
    assert code == 200
    [version] = body["versions"]
    assert version["id"] == "v2.0" and version["status"] == "CURRENT"
    assert version["links"][0]["href"].endswith("/networking/v2.0/")


def test_v2_index_lists_the_collections(api):
    code, body = api.get(f"{NET}/")
    assert code == 200
    assert {r["collection"] for r in body["resources"]} == {"networks", "subnets", "ports",
                                                           "floatingips"}
    code, body = api.get(f"{NET}/extensions")
    assert code == 200
    aliases = {e["alias"] for e in body["extensions"]}
    assert {"standard-attr-tag", "tag-creation", "external-net", "port-security",
            "standard-attr-description"} <= aliases
    code, body = api.get(f"{NET}/extensions/tag-creation")
    assert code == 200 and body["extension"]["alias"] == "tag-creation"
    code, body = api.get(f"{NET}/extensions/dns-integration")
    assert code == 404
    assert neutron_error(body) == ("HTTPNotFound",
                                   "Extension with alias dns-integration does not exist")


def test_load_balancer_root_still_octavias(api):
    code, body = api.get("/")
    assert code == 200 and body["versions"][-1]["id"].startswith("v2.")


# ------------------------------------------------------------------------------ reading --

def test_seeded_networks_and_subnets(api):
    code, body = api.get(NETWORKS)
    assert code == 200 and "networks_links" not in body
    nets = {n["name"]: n for n in body["networks"]}
    assert set(nets) == {"public", "private", "lb-mgmt-net"}
    private = nets["private"]
    assert private["id"] == api.network_id("private")
    assert private["subnets"] == [api.subnet_id("private-subnet")]
    assert private["status"] == "ACTIVE" and private["admin_state_up"] is True
    assert nets["public"]["router:external"] is True
    assert private["router:external"] is False

    code, body = api.get(f"{SUBNETS}/{api.subnet_id('private-subnet')}")
    assert code == 200
    subnet = body["subnet"]
    assert subnet["name"] == "private-subnet"
    assert subnet["network_id"] == private["id"]
    assert (subnet["cidr"], subnet["ip_version"], subnet["gateway_ip"]) == \
        ("10.0.0.0/24", 4, "10.0.0.1")
    assert subnet["allocation_pools"] == [{"start": "10.0.0.2", "end": "10.0.0.254"}]
    assert subnet["created_at"].endswith("Z")


def test_octaviaclient_lookups_by_id_then_name(api):
    sid = api.subnet_id("public-subnet")
    code, body = api.get(SUBNETS, params={"id": sid})
    assert code == 200 and [s["name"] for s in body["subnets"]] == ["public-subnet"]
    code, body = api.get(SUBNETS, params={"id": "public-subnet"})
    assert code == 200 and body["subnets"] == []
    code, body = api.get(SUBNETS, params={"name": "public-subnet"})
    assert code == 200 and [s["id"] for s in body["subnets"]] == [sid]


def test_filters(api):
    ids = [api.network_id("public"), api.network_id("private")]
    code, body = api.get(NETWORKS, params=[("id", ids[0]), ("id", ids[1])])
    assert code == 200 and sorted(n["id"] for n in body["networks"]) == sorted(ids)
    code, body = api.get(NETWORKS, params={"router:external": "true"})
    assert [n["name"] for n in body["networks"]] == ["public"]
    code, body = api.get(SUBNETS, params={"network_id": api.network_id("lb-mgmt-net")})
    assert [s["name"] for s in body["subnets"]] == ["lb-mgmt-subnet"]
    code, body = api.get(SUBNETS, params={"ip_version": "6"})
    assert code == 200 and body["subnets"] == []
    code, body = api.get(NETWORKS, params={"name": "public", "shared": "false"})
    assert body["networks"] == []


def test_bad_filters_are_400_in_neutron_shape(api):
    code, body = api.get(NETWORKS, params={"bogus": "1"})
    assert code == 400
    assert neutron_error(body) == ("HTTPBadRequest", "bogus is invalid attribute for filtering")
    code, body = api.get(NETWORKS, params={"shared": "maybe"})
    assert code == 400 and "cannot be converted to boolean" in neutron_error(body)[1]


@pytest.mark.parametrize(("path", "kind", "label"), [
    (NETWORKS, "NetworkNotFound", "Network"), (SUBNETS, "SubnetNotFound", "Subnet"),
    (PORTS, "PortNotFound", "Port")])
def test_show_unknown_is_404(api, path, kind, label):
    code, body = api.get(f"{path}/nope")
    assert code == 404
    assert neutron_error(body) == (kind, f"{label} nope could not be found.")


def test_fields_sort_and_paging(api):
    code, body = api.get(NETWORKS, params=[("fields", "id"), ("fields", "name")])
    assert code == 200 and all(set(n) == {"id", "name"} for n in body["networks"])
    code, body = api.get(NETWORKS, params={"sort_key": "name", "sort_dir": "desc"})
    assert [n["name"] for n in body["networks"]] == ["public", "private", "lb-mgmt-net"]

    params = {"sort_key": "name", "sort_dir": "asc", "limit": "2"}
    code, body = api.get(NETWORKS, params=params)
    assert [n["name"] for n in body["networks"]] == ["lb-mgmt-net", "private"]
    [link] = body["networks_links"]
    assert link["rel"] == "next"
    query = parse_qs(urlsplit(link["href"]).query)
    assert query["marker"] == [body["networks"][-1]["id"]] and query["limit"] == ["2"]
    code, body = api.get(NETWORKS, params={**params, "marker": query["marker"][0]})
    assert [n["name"] for n in body["networks"]] == ["public"]
    assert [li["rel"] for li in body["networks_links"]] == ["previous"]

    code, body = api.get(NETWORKS, params={"sort_key": "subnets"})
    assert code == 400 and neutron_error(body)[0] == "HTTPBadRequest"
    code, body = api.get(NETWORKS, params={"limit": "x"})
    assert code == 400


def test_vip_port_is_listed_with_fixed_ips(api):
    lb = api.create_lb(name="lb1")
    code, body = api.get(f"{PORTS}/{lb['vip_port_id']}")
    assert code == 200
    port = body["port"]
    assert port["network_id"] == api.network_id("public")
    assert port["fixed_ips"] == [{"subnet_id": api.subnet_id("public-subnet"),
                                  "ip_address": lb["vip_address"]}]
    assert port["status"] == "ACTIVE" and port["mac_address"].startswith("fa:16:3e:")
    code, body = api.get(PORTS, params={"fixed_ips": f"ip_address={lb['vip_address']}"})
    assert [p["id"] for p in body["ports"]] == [lb["vip_port_id"]]
    code, body = api.get(PORTS, params={"network_id": api.network_id("private")})
    assert body["ports"] == []


# ------------------------------------------------------------------------------ writing --

def test_create_network_defaults_and_show(api):
    net = make_network(api, "n1")
    assert net["shared"] is False and net["admin_state_up"] is True
    assert net["router:external"] is False and net["subnets"] == []
    assert net["project_id"] == net["tenant_id"] == "admin"
    code, body = api.get(f"{NETWORKS}/{net['id']}")
    assert code == 200 and body["network"] == net
    other = make_network(api, "n2", shared=True, project_id="p9", **{"router:external": True})
    assert (other["shared"], other["router:external"], other["project_id"]) == \
        (True, True, "p9")


def test_create_network_validation(api):
    code, body = api.post(NETWORKS, {"network": {"name": "x", "segments": []}})
    assert code == 400
    assert neutron_error(body) == ("HTTPBadRequest", "Unrecognized attribute(s) 'segments'")
    code, body = api.post(NETWORKS, {"network": {"name": "x", "mtu": 9000}})
    assert code == 400
    assert neutron_error(body) == ("HTTPBadRequest", "Attribute 'mtu' not allowed in POST")
    code, body = api.post(NETWORKS, {"net": {}})
    assert code == 400 and "Unable to find 'network'" in neutron_error(body)[1]
    code, body = api.post(NETWORKS, {"network": {"name": "x" * 256}})
    assert code == 400 and "exceeds maximum length of 255" in neutron_error(body)[1]
    code, body = api.post(NETWORKS, {"network": {"shared": "perhaps"}})
    assert code == 400 and neutron_error(body)[0] == "InvalidInput"
    code, body = api.post(NETWORKS, {"network": {"project_id": "a", "tenant_id": "b"}})
    assert code == 400


def test_create_subnet_computes_gateway_and_pools(api):
    net = make_network(api, "n1")
    sub = make_subnet(api, net["id"], "10.1.0.0/24", name="s1")
    assert sub["gateway_ip"] == "10.1.0.1"
    assert sub["allocation_pools"] == [{"start": "10.1.0.2", "end": "10.1.0.254"}]
    code, body = api.get(f"{NETWORKS}/{net['id']}")
    assert code == 200 and body["network"]["subnets"] == [sub["id"]]

    mid = make_subnet(api, net["id"], "10.2.0.0/29", gateway_ip="10.2.0.4")
    assert mid["allocation_pools"] == [{"start": "10.2.0.1", "end": "10.2.0.3"},
                                       {"start": "10.2.0.5", "end": "10.2.0.6"}]
    nogw = make_subnet(api, net["id"], "10.3.0.0/30", gateway_ip=None)
    assert nogw["gateway_ip"] is None
    assert nogw["allocation_pools"] == [{"start": "10.3.0.1", "end": "10.3.0.2"}]
    pools = make_subnet(api, net["id"], "10.4.0.0/24",
                        allocation_pools=[{"start": "10.4.0.100", "end": "10.4.0.110"}])
    assert pools["allocation_pools"] == [{"start": "10.4.0.100", "end": "10.4.0.110"}]
    v6 = make_subnet(api, net["id"], "2001:db8::/64")
    assert (v6["ip_version"], v6["gateway_ip"]) == (6, "2001:db8::1")


@pytest.mark.parametrize(("extra", "status", "kind", "text"), [
    ({"cidr": "10.9.0.1/24"}, 400, "HTTPBadRequest", "'10.9.0.0/24' is recommended"),
    ({"cidr": "nonsense"}, 400, "HTTPBadRequest", "is not a valid IP subnet"),
    ({"cidr": "10.9.0.0/24", "ip_version": 6}, 400, "InvalidInput", "must match"),
    ({"cidr": "10.9.0.0/24", "ip_version": 5}, 400, "HTTPBadRequest", "is not in [4, 6]"),
    ({"cidr": "10.9.0.0/24", "gateway_ip": "10.8.0.1"}, 400, "InvalidInput", "Gateway IP"),
    ({"cidr": "10.9.0.0/24", "allocation_pools": [{"start": "10.9.1.1", "end": "10.9.1.9"}]},
     400, "HTTPBadRequest", "spans beyond the subnet cidr 10.9.0.0/24"),
    ({"cidr": "10.9.0.0/24", "allocation_pools": [{"start": "10.9.0.9", "end": "10.9.0.1"}]},
     400, "HTTPBadRequest", "is not valid"),
    ({"cidr": "10.9.0.0/24", "allocation_pools": [{"start": "10.9.0.1", "end": "10.9.0.9"}]},
     409, "GatewayConflictWithAllocationPools", "Gateway ip 10.9.0.1 conflicts"),
    ({"cidr": "10.9.0.0/24", "gateway_ip": None,
      "allocation_pools": [{"start": "10.9.0.1", "end": "10.9.0.9"},
                           {"start": "10.9.0.5", "end": "10.9.0.20"}]},
     409, "OverlappingAllocationPools", "Found overlapping allocation pools"),
    ({"cidr": "10.9.0.0/24", "segment_id": None}, 400, "HTTPBadRequest",
     "Attribute 'segment_id' not allowed in POST"),
    ({"cidr": "10.9.0.0/24", "bogus": 1}, 400, "HTTPBadRequest",
     "Unrecognized attribute(s) 'bogus'"),
    ({"cidr": "10.9.0.0/29", "enable_dhcp": True}, 201, None, None),
    ({"cidr": "10.9.0.0/31"}, 400, "InvalidInput", "incompatible with DHCP service enabled"),
])
def test_create_subnet_validation(api, extra, status, kind, text):
    net = make_network(api, "n1")
    body = {"network_id": net["id"], "ip_version": 4, **extra}
    code, data = api.post(SUBNETS, {"subnet": body})
    assert code == status, data
    if status == 201:
        return
    got_kind, message = neutron_error(data)
    assert got_kind == kind and text in message
    code, data = api.get(SUBNETS, params={"network_id": net["id"]})
    assert data["subnets"] == []


def test_create_subnet_needs_network_cidr_and_no_overlap(api):
    net = make_network(api, "n1")
    code, body = api.post(SUBNETS, {"subnet": {"cidr": "10.0.0.0/24", "ip_version": 4}})
    assert code == 400 and "Required attribute 'network_id'" in neutron_error(body)[1]
    code, body = api.post(SUBNETS, {"subnet": {"network_id": net["id"], "ip_version": 4}})
    assert code == 400 and "absence of a cidr" in neutron_error(body)[1]
    code, body = api.post(SUBNETS, {"subnet": {"network_id": "nope", "cidr": "10.0.0.0/24",
                                               "ip_version": 4}})
    assert code == 404
    assert neutron_error(body) == ("NetworkNotFound", "Network nope could not be found.")
    make_subnet(api, net["id"], "10.0.0.0/16")
    code, body = api.post(SUBNETS, {"subnet": {"network_id": net["id"],
                                               "cidr": "10.0.5.0/24", "ip_version": 4}})
    assert code == 400 and "overlaps with another subnet" in neutron_error(body)[1]
    # Overlap is only refused within one network, as in Neutron.
    make_subnet(api, make_network(api, "n2")["id"], "10.0.5.0/24")


def test_in_use_subnet_and_network_are_409_until_the_lb_is_gone(api):
    net = make_network(api, "vipnet")
    sub = make_subnet(api, net["id"], "10.7.0.0/28", name="vipsub")
    lb = api.create_lb(vip_subnet_id=sub["id"])
    assert lb["vip_address"] == "10.7.0.2" and lb["vip_network_id"] == net["id"]

    code, body = api.delete(f"{SUBNETS}/{sub['id']}")
    assert code == 409
    assert neutron_error(body) == (
        "SubnetInUse", f"Unable to complete operation on subnet {sub['id']}: One or more "
        "ports have an IP allocation from this subnet.")
    code, body = api.delete(f"{NETWORKS}/{net['id']}")
    assert code == 409
    assert neutron_error(body) == (
        "NetworkInUse", f"Unable to complete operation on network {net['id']}. There are one "
        "or more ports still in use on the network.")

    code, _ = api.delete(f"{LBS}/{lb['id']}")
    assert code == 204
    api.wait_lb(lb["id"], "DELETED")
    code, body = api.get(PORTS, params={"network_id": net["id"]})
    assert body["ports"] == []
    # Deleting an unused network takes its subnets with it.
    code, _ = api.delete(f"{NETWORKS}/{net['id']}")
    assert code == 204
    assert api.get(f"{NETWORKS}/{net['id']}")[0] == 404
    assert api.get(f"{SUBNETS}/{sub['id']}")[0] == 404


def test_subnet_with_members_is_in_use(api):
    lb = api.create_lb()
    code, body = api.post("/v2/lbaas/pools", {"pool": {
        "loadbalancer_id": lb["id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}})
    assert code == 201, body
    pool_id = body["pool"]["id"]
    api.wait_lb(lb["id"])
    net = make_network(api, "members")
    sub = make_subnet(api, net["id"], "10.8.0.0/24")
    code, body = api.post(f"/v2/lbaas/pools/{pool_id}/members", {"member": {
        "address": "10.8.0.20", "protocol_port": 80, "subnet_id": sub["id"]}})
    assert code == 201, body
    api.wait_lb(lb["id"])
    code, body = api.delete(f"{SUBNETS}/{sub['id']}")
    assert code == 409 and neutron_error(body)[0] == "SubnetInUse"


def test_delete_unknown_is_404(api):
    code, body = api.delete(f"{SUBNETS}/nope")
    assert code == 404 and neutron_error(body)[0] == "SubnetNotFound"
    code, body = api.delete(f"{NETWORKS}/nope")
    assert code == 404 and neutron_error(body)[0] == "NetworkNotFound"
