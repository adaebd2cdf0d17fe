"""Who sees and changes which network, subnet and port: Neutron's default policy, the
management network hidden from projects, and sharing that cannot be taken back while used."""

from __future__ import annotations

import pytest
from network_helpers import (
    LBS,
    NETWORKS,
    POOLS,
    PORTS,
    SUBNETS,
    Callers,
    get,
    make_network,
    make_port,
    make_subnet,
    neutron_error,
)


@pytest.fixture()
def callers(api):
    return Callers(api)


def names(api, path=NETWORKS):
    code, body = api.get(path)
    assert code == 200, body
    key = path.rsplit("/", 1)[-1]
    return {item["name"] for item in body[key]}


def test_a_member_creates_and_owns_its_networks(api, callers):
    callers.project("p1")
    net = make_network(api, "mine")
    assert (net["project_id"], net["shared"]) == ("p1", False)
    sub = make_subnet(api, net["id"], "10.80.0.0/24")
    port = make_port(api, net["id"], fixed_ips=[{"ip_address": "10.80.0.50"}],
                     mac_address="fa:16:3e:01:02:03", port_security_enabled=False)
    assert (sub["project_id"], port["project_id"]) == ("p1", "p1")
    code, body = api.put(f"{NETWORKS}/{net['id']}", {"network": {"name": "renamed"}})
    assert code == 200 and body["network"]["name"] == "renamed"
    assert api.delete(f"{PORTS}/{port['id']}")[0] == 204
    assert api.delete(f"{SUBNETS}/{sub['id']}")[0] == 204
    assert api.delete(f"{NETWORKS}/{net['id']}")[0] == 204


def test_members_cannot_set_admin_attributes_or_other_owners(api, callers):
    callers.project("p1")
    for attr in ("shared", "router:external"):
        code, body = api.post(NETWORKS, {"network": {"name": "x", attr: True}})
        assert code == 403
        assert neutron_error(body) == ("PolicyNotAuthorized",
                                       f"(rule:create_network:{attr}) is disallowed by policy")
    code, body = api.post(NETWORKS, {"network": {"name": "x", "project_id": "p2"}})
    assert code == 400
    assert neutron_error(body) == ("HTTPBadRequest", "Specifying 'project_id' other than the "
                                   "authenticated project in request is not allowed for the "
                                   "current user.")
    code, body = api.post(NETWORKS, {"network": {"name": "x", "tenant_id": "p1",
                                                 "project_id": "p1"}})
    assert code == 201, body
    net = body["network"]
    code, body = api.put(f"{NETWORKS}/{net['id']}", {"network": {"shared": True}})
    assert code == 403 and "update_network:shared" in neutron_error(body)[1]
    callers.admin()
    assert names(api) >= {"x"}
    assert "x" not in {n["name"] for n in get(api, NETWORKS + "?shared=true")["networks"]}


def test_projects_see_their_own_and_shared_networks_not_the_management_one(api, callers):
    callers.project("p1")
    mine = make_network(api, "p1-net")
    sub = make_subnet(api, mine["id"], "10.81.0.0/24")
    port = make_port(api, mine["id"])
    callers.project("p2")
    assert names(api) == {"public", "private"}
    assert api.subnet_id("lb-mgmt-subnet") not in {
        s["id"] for s in get(api, SUBNETS)["subnets"]}
    for path, kind in ((f"{NETWORKS}/{mine['id']}", "NetworkNotFound"),
                       (f"{SUBNETS}/{sub['id']}", "SubnetNotFound"),
                       (f"{PORTS}/{port['id']}", "PortNotFound"),
                       (f"{NETWORKS}/{api.network_id('lb-mgmt-net')}", "NetworkNotFound"),
                       (f"{SUBNETS}/{api.subnet_id('lb-mgmt-subnet')}", "SubnetNotFound")):
        code, body = api.get(path)
        assert code == 404 and neutron_error(body)[0] == kind, path
    # changing what one cannot see is "not found", not "forbidden"
    code, body = api.put(f"{NETWORKS}/{mine['id']}", {"network": {"name": "stolen"}})
    assert code == 404 and neutron_error(body)[0] == "NetworkNotFound"
    assert api.delete(f"{SUBNETS}/{sub['id']}")[0] == 404
    assert api.delete(f"{PORTS}/{port['id']}")[0] == 404
    code, body = api.post(SUBNETS, {"subnet": {"network_id": mine["id"],
                                               "cidr": "10.82.0.0/24", "ip_version": 4}})
    assert code == 404 and neutron_error(body)[0] == "NetworkNotFound"
    code, body = api.post(PORTS, {"port": {"network_id": mine["id"]}})
    assert code == 404 and neutron_error(body)[0] == "NetworkNotFound"
    callers.admin()
    assert names(api) >= {"public", "private", "lb-mgmt-net", "p1-net"}


def test_on_a_shared_network_a_project_may_only_plug_ports(api, callers):
    shared = make_network(api, "common", shared=True)
    sub = make_subnet(api, shared["id"], "10.83.0.0/24")
    callers.project("p2")
    code, body = api.put(f"{NETWORKS}/{shared['id']}", {"network": {"name": "x"}})
    assert code == 403 and neutron_error(body) == (
        "PolicyNotAuthorized", "(rule:update_network) is disallowed by policy")
    assert api.delete(f"{NETWORKS}/{shared['id']}")[0] == 403
    code, body = api.post(SUBNETS, {"subnet": {"network_id": shared["id"],
                                               "cidr": "10.84.0.0/24", "ip_version": 4}})
    assert code == 403 and "(rule:create_subnet)" in neutron_error(body)[1]
    assert api.put(f"{SUBNETS}/{sub['id']}", {"subnet": {"name": "x"}})[0] == 403
    port = make_port(api, shared["id"], fixed_ips=[{"subnet_id": sub["id"]}])
    assert port["project_id"] == "p2"
    for extra, rule in (({"fixed_ips": [{"ip_address": "10.83.0.99"}]},
                         "create_port:fixed_ips:ip_address"),
                        ({"mac_address": "fa:16:3e:00:00:07"}, "create_port:mac_address"),
                        ({"port_security_enabled": False}, "create_port:port_security_enabled"),
                        ({"allowed_address_pairs": []}, "create_port:allowed_address_pairs"),
                        ({"device_owner": "network:router_interface"},
                         "create_port:device_owner"),
                        ({"device_owner": "Octavia"}, "create_port:device_owner"),
                        ({"device_owner": "compute:amphora"}, "create_port:device_owner")):
        code, body = api.post(PORTS, {"port": {"network_id": shared["id"], **extra}})
        assert code == 403, extra
        assert neutron_error(body) == ("PolicyNotAuthorized",
                                       f"(rule:{rule}) is disallowed by policy")
    code, body = api.put(f"{PORTS}/{port['id']}", {"port": {"fixed_ips": []}})
    assert code == 403 and "update_port:fixed_ips" in neutron_error(body)[1]
    code, body = api.put(f"{PORTS}/{port['id']}", {"port": {"name": "mine"}})
    assert code == 200 and body["port"]["name"] == "mine"
    assert api.delete(f"{PORTS}/{port['id']}")[0] == 204


def test_network_owner_sees_and_deletes_ports_others_put_on_its_network(api, callers):
    callers.project("p1")
    own = make_network(api, "p1-shared")
    sub = make_subnet(api, own["id"], "10.85.0.0/24")
    callers.admin()
    api.put(f"{NETWORKS}/{own['id']}", {"network": {"shared": True}})
    callers.project("p2")
    theirs = make_port(api, own["id"])
    callers.project("p1")
    assert get(api, f"{PORTS}/{theirs['id']}")["port"]["project_id"] == "p2"
    code, body = api.put(f"{PORTS}/{theirs['id']}", {"port": {"name": "x"}})
    assert code == 403 and "(rule:update_port)" in neutron_error(body)[1]
    assert api.delete(f"{PORTS}/{theirs['id']}")[0] == 204
    assert api.delete(f"{SUBNETS}/{sub['id']}")[0] == 204


@pytest.mark.parametrize(("roles", "reads_own", "writes"), [
    (("reader",), True, False),
    (("member",), True, True),
    (("load-balancer_member",), False, False),
    (("unrelated",), False, False),
])
def test_roles(api, callers, roles, reads_own, writes):
    callers.project("p1")
    own = make_network(api, "own")
    callers.project("p1", *roles)
    assert ("own" in names(api)) is reads_own
    assert {"public", "private"} <= names(api)
    code, body = api.post(NETWORKS, {"network": {"name": "new"}})
    assert code == (201 if writes else 403), body
    code, _ = api.put(f"{NETWORKS}/{own['id']}", {"network": {"name": "own2"}})
    assert code == (200 if writes else 403 if reads_own else 404)


def test_deprecated_defaults_let_any_role_of_the_project_write(service_factory):
    api = service_factory(api={"enforce_new_defaults": False})
    callers = Callers(api)
    callers.project("p1", "load-balancer_member")
    net = make_network(api, "old-rules")
    assert net["project_id"] == "p1" and "old-rules" in names(api)


def test_sharing_cannot_be_taken_back_while_another_project_uses_it(api, callers):
    shared = make_network(api, "common", shared=True)
    sub = make_subnet(api, shared["id"], "10.86.0.0/24")
    callers.project("p2")
    code, body = api.post(LBS, {"loadbalancer": {"vip_subnet_id": sub["id"]}})
    assert code == 201, body
    lb = api.wait_lb(body["loadbalancer"]["id"])
    callers.admin()
    code, body = api.put(f"{NETWORKS}/{shared['id']}", {"network": {"shared": False}})
    assert code == 409
    assert neutron_error(body) == ("InvalidSharedSetting", "Unable to reconfigure sharing "
                                   f"settings for network {shared['id']}. Multiple projects "
                                   "are using it.")
    assert get(api, f"{NETWORKS}/{shared['id']}")["network"]["shared"] is True
    callers.project("p2")
    assert api.delete(f"{LBS}/{lb['id']}")[0] == 204
    api.wait_lb(lb["id"], "DELETED")
    callers.admin()
    code, body = api.put(f"{NETWORKS}/{shared['id']}", {"network": {"shared": False}})
    assert code == 200 and body["network"]["shared"] is False


def test_members_keep_a_shared_subnet_shared(api, callers):
    shared = make_network(api, "common", shared=True)
    sub = make_subnet(api, shared["id"], "10.87.0.0/24")
    callers.project("p2")
    lb = api.create_lb(project_id="p2")
    code, body = api.post(POOLS, {"pool": {"loadbalancer_id": lb["id"], "protocol": "HTTP",
                                           "lb_algorithm": "ROUND_ROBIN"}})
    assert code == 201, body
    api.wait_lb(lb["id"])
    code, body = api.post(f"{POOLS}/{body['pool']['id']}/members", {"member": {
        "address": "10.87.0.10", "protocol_port": 80, "subnet_id": sub["id"]}})
    assert code == 201, body
    callers.admin()
    code, body = api.put(f"{NETWORKS}/{shared['id']}", {"network": {"shared": False}})
    assert code == 409 and neutron_error(body)[0] == "InvalidSharedSetting"
