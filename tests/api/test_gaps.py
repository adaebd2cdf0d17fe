"""Behaviours docs/api-compat.md §3.1 listed as untested: VIP selection on create (by network,
by port, additional VIPs, deployment switches), flavor/AZ/provider errors, the ``/statuses``
alias, ``GET /v2``, ``/healthcheck``, the ``/load-balancer/`` prefix, ``HEAD`` and unknown
paths. Expected codes and messages are upstream Octavia 19.0.0's (``load_balancer.py``,
``common/validate.py`` and their functional tests)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from lbaas.api import common
from lbaas.store import ipam
from lbaas.store import tables as t

LBS = "/v2/lbaas/loadbalancers"
NET = "/networking/v2.0"


def fault(message: str) -> dict[str, Any]:
    return {"faultcode": "Client", "faultstring": message, "debuginfo": None}


def create(api: Any, **fields: Any) -> tuple[int, Any]:
    return api.post(LBS, {"loadbalancer": fields})


def add_subnet(api: Any, network_id: str, cidr: str, version: int = 4, **extra: Any) -> str:
    code, body = api.post(f"{NET}/subnets", {"subnet": {
        "network_id": network_id, "cidr": cidr, "ip_version": version, **extra}})
    assert code == 201, body
    return str(body["subnet"]["id"])


def add_network(api: Any, name: str) -> str:
    code, body = api.post(f"{NET}/networks", {"network": {"name": name}})
    assert code == 201, body
    return str(body["network"]["id"])


def add_port(api: Any, *subnets: tuple[str, str | None], device_id: str = "") -> str:
    """A Neutron port (the subset has no port create): one fixed IP per (subnet, address)."""
    port_id = str(uuid.uuid4())
    with api.service.engine.begin() as conn:
        first, address = subnets[0]
        row = ipam.get_subnet(conn, first)
        ipam.create_port(conn, port_id=port_id, subnet=row, address=address, name="p",
                         device_owner="", device_id=device_id, project_id=None,
                         now=common.utcnow())
        fixed = list(ipam.get_port(conn, port_id).fixed_ips)
        for subnet_id, wanted in subnets[1:]:
            ip = ipam.pick_address(conn, ipam.get_subnet(conn, subnet_id), wanted)
            conn.execute(t.ip_allocation.insert().values(
                subnet_id=subnet_id, ip_address=ip, port_id=port_id))
            fixed.append({"subnet_id": subnet_id, "ip_address": ip})
        conn.execute(t.port.update().where(t.port.c.id == port_id)
                     .values(fixed_ips=fixed))
    return port_id


def vip(lb: dict[str, Any]) -> tuple[str, str, str]:
    return lb["vip_address"], lb["vip_subnet_id"], lb["vip_network_id"]


def test_vip_by_network_picks_ipv4_subnet_or_the_one_holding_the_address(api):
    public, public_v4 = api.network_id("public"), api.subnet_id("public-subnet")
    public_v6 = add_subnet(api, public, "2001:db8::/64", 6)
    code, body = create(api, vip_network_id=public)
    assert code == 201, body
    address, subnet, network = vip(body["loadbalancer"])
    assert (subnet, network) == (public_v4, public) and address.startswith("172.24.4.")
    code, body = create(api, vip_network_id=public, vip_address="2001:db8::50")
    assert code == 201 and vip(body["loadbalancer"]) == ("2001:db8::50", public_v6, public)
    code, body = create(api, vip_network_id=public, vip_subnet_id=public_v6)
    assert code == 201 and vip(body["loadbalancer"])[1:] == (public_v6, public)
    # The VIP port is visible through the Neutron subset and bound to the load balancer.
    lb = body["loadbalancer"]
    code, port = api.get(f"{NET}/ports/{lb['vip_port_id']}")
    assert code == 200 and port["port"]["device_id"] == f"lb-{lb['id']}"


def test_vip_by_network_errors(api):
    public, private = api.network_id("public"), api.network_id("private")
    unknown = str(uuid.uuid4())
    assert create(api, vip_network_id=unknown) == (400, fault(f"Network {unknown} not found."))
    foreign = api.subnet_id("private-subnet")
    assert create(api, vip_network_id=public, vip_subnet_id=foreign) == (
        400, fault(f"Subnet {foreign} not found."))
    assert create(api, vip_network_id=private, vip_address="172.24.4.9") == (
        400, fault("Validation failure: Supplied network does not contain a subnet for VIP "
                   "address specified."))
    empty = add_network(api, "empty")
    assert create(api, vip_network_id=empty) == (
        400, fault("Validation failure: Supplied network does not contain a subnet."))
    tiny = add_network(api, "tiny")  # a /30 has two usable addresses, one is the gateway
    tiny_subnet = add_subnet(api, tiny, "10.9.9.0/30")
    assert create(api, vip_network_id=tiny) == (
        400, fault("Validation failure: Subnet(s) in the supplied network do not contain "
                   "enough available IPs."))
    # Naming the subnet skips that count (as upstream): the last address goes, then 409.
    code, body = create(api, vip_subnet_id=tiny_subnet)
    assert code == 201 and body["loadbalancer"]["vip_address"] == "10.9.9.2"
    code, body = create(api, vip_subnet_id=tiny_subnet)
    assert code == 409 and body["faultstring"].startswith("The VIP IP address is already in use")
    public_v4 = api.subnet_id("public-subnet")
    assert create(api, vip_subnet_id=public_v4, vip_address="10.0.0.1") == (
        400, fault(f"Validation failure: VIP address 10.0.0.1 is not in subnet {public_v4}."))


def test_vip_by_port(api):
    public_v4 = api.subnet_id("public-subnet")
    port = add_port(api, (public_v4, "172.24.4.40"))
    code, body = create(api, vip_port_id=port)
    assert code == 201, body
    lb = body["loadbalancer"]
    assert lb["vip_port_id"] == port
    assert vip(lb) == ("172.24.4.40", public_v4, api.network_id("public"))
    code, shown = api.get(f"{NET}/ports/{port}")
    assert shown["port"]["device_id"] == f"lb-{lb['id']}"
    # Now bound: a second load balancer cannot take it.
    assert create(api, vip_port_id=port) == (
        400, fault(f"Validation failure: Port {port} is already used by device lb-{lb['id']} "))
    unknown = str(uuid.uuid4())
    assert create(api, vip_port_id=unknown) == (400, fault(f"Port {unknown} not found."))


def test_vip_by_port_with_two_addresses_needs_subnet_or_address(api):
    public = api.network_id("public")
    v4, v6 = api.subnet_id("public-subnet"), add_subnet(api, public, "2001:db8::/64", 6)
    port = add_port(api, (v4, "172.24.4.41"), (v6, "2001:db8::41"))
    assert create(api, vip_port_id=port) == (
        400, fault("Validation failure: VIP port's subnet could not be determined. Please "
                   "specify either a VIP subnet or address."))
    assert create(api, vip_port_id=port, vip_address="172.24.4.99") == (
        400, fault("Validation failure: Specified VIP address not found on the specified VIP "
                   "port."))
    private = api.subnet_id("private-subnet")
    assert create(api, vip_port_id=port, vip_subnet_id=private) == (
        400, fault("Validation failure: No VIP address found on the specified VIP port within "
                   "the specified subnet."))
    unknown = str(uuid.uuid4())
    assert create(api, vip_port_id=port, vip_subnet_id=unknown) == (
        400, fault(f"Subnet {unknown} not found."))
    code, body = create(api, vip_port_id=port, vip_address="2001:0db8::41")
    assert code == 201 and vip(body["loadbalancer"]) == ("2001:0db8::41", v6, public)


def test_additional_vips(api):
    public, v4 = api.network_id("public"), api.subnet_id("public-subnet")
    v6 = add_subnet(api, public, "2001:db8::/64", 6)
    code, body = create(api, vip_subnet_id=v4, additional_vips=[
        {"subnet_id": v6, "ip_address": "2001:db8::7"}])
    assert code == 201, body
    lb = body["loadbalancer"]
    assert lb["additional_vips"] == [
        {"subnet_id": v6, "ip_address": "2001:db8::7", "port_id": lb["vip_port_id"]}]
    code, shown = api.get(f"{LBS}/{lb['id']}")
    assert shown["loadbalancer"]["additional_vips"] == lb["additional_vips"]
    duplicate = fault("Validation failure: Duplicate VIP subnet(s) specified. Only one IP can "
                      "be bound per subnet.")
    assert create(api, vip_subnet_id=v4, additional_vips=[{"subnet_id": v4}]) == (
        400, duplicate)
    assert create(api, vip_subnet_id=v4, additional_vips=[
        {"subnet_id": v6}, {"subnet_id": v6}]) == (400, duplicate)
    unknown = str(uuid.uuid4())
    assert create(api, vip_subnet_id=v4, additional_vips=[{"subnet_id": unknown}]) == (
        400, fault(f"Validation failure: Subnet {unknown} not found"))
    assert create(api, vip_subnet_id=v4, additional_vips=[
        {"subnet_id": api.subnet_id("private-subnet")}]) == (
        400, fault("Validation failure: All VIP subnets must belong to the same network."))
    code, body = create(api, vip_subnet_id=v4, additional_vips=[
        {"subnet_id": v6, "ip_address": "2001:db8::7"}])
    assert code == 409 and body["faultstring"] == (
        "The VIP IP address is already in use: 2001:db8::7")
    assert create(api, vip_subnet_id=v4, additional_vips=[
        {"subnet_id": v6, "ip_address": "2001:db9::1"}]) == (
        400, fault(f"Validation failure: no usable address in subnet {v6}."))
    # Refused creates left nothing behind.
    code, listed = api.get(LBS)
    assert [x["id"] for x in listed["loadbalancers"]] == [lb["id"]]


@pytest.mark.parametrize("key", ["vip_port_id", "vip_network_id", "vip_subnet_id"])
def test_vip_inputs_disabled_by_configuration(service_factory, key):
    api = service_factory(networking={f"allow_{key}": False})
    value = {"vip_port_id": str(uuid.uuid4()), "vip_network_id": api.network_id("public"),
             "vip_subnet_id": api.subnet_id("public-subnet")}[key]
    assert create(api, **{key: value}) == (
        400, fault(f"Validation failure: use of {key} is disallowed by this deployment's "
                   "configuration."))
    allowed = ", ".join(k for k in ("vip_port_id", "vip_network_id", "vip_subnet_id")
                        if k != key)
    assert create(api, name="novip") == (
        400, fault(f"Validation failure: VIP must contain one of: {allowed}."))


def test_valid_and_denied_vip_networks(service_factory):
    not_allowed = fault("Validation failure: Supplied VIP network_id is not allowed by the "
                        "configuration of this deployment.")
    api = service_factory(networking={"valid_vip_networks": [api_network("private")]})
    assert create(api, vip_subnet_id=api.subnet_id("public-subnet")) == (400, not_allowed)
    assert create(api, vip_network_id=api.network_id("private"))[0] == 201
    api = service_factory(networking={"denylist_vip_networks": [api_network("public")]})
    assert create(api, vip_network_id=api.network_id("public")) == (400, not_allowed)
    assert create(api, vip_subnet_id=api.subnet_id("private-subnet"))[0] == 201


def api_network(name: str) -> str:
    from lbaas.store.seed import network_id

    return network_id(name)


def make_flavor(api: Any, provider: str = "amphora", enabled: bool = True) -> str:
    code, body = api.post("/v2.0/lbaas/flavorprofiles", {"flavorprofile": {
        "name": f"p-{provider}", "provider_name": provider,
        "flavor_data": '{"loadbalancer_topology": "ACTIVE_STANDBY"}'}})
    assert code == 201, body
    code, body = api.post("/v2.0/lbaas/flavors", {"flavor": {
        "name": f"f-{provider}-{enabled}", "flavor_profile_id": body["flavorprofile"]["id"],
        "enabled": enabled}})
    assert code == 201, body
    return str(body["flavor"]["id"])


def test_flavor_availability_zone_and_provider_errors_on_create(api):
    subnet = api.subnet_id("public-subnet")
    assert create(api, vip_subnet_id=subnet, provider="BOGUS") == (
        400, fault("Provider 'BOGUS' is not enabled."))
    unknown = str(uuid.uuid4())
    assert create(api, vip_subnet_id=subnet, flavor_id=unknown) == (
        400, fault("Validation failure: Invalid flavor_id."))
    nil = "00000000-0000-0000-0000-000000000000"  # upstream's disabled placeholder flavor
    assert create(api, vip_subnet_id=subnet, flavor_id=nil) == (
        400, fault(f"The selected flavor is not allowed in this deployment: {nil}"))
    disabled = make_flavor(api, "amphora", enabled=False)
    assert create(api, vip_subnet_id=subnet, flavor_id=disabled) == (
        400, fault(f"The selected flavor is not allowed in this deployment: {disabled}"))
    noop = make_flavor(api, "noop")
    assert create(api, vip_subnet_id=subnet, flavor_id=noop, provider="amphora") == (
        400, fault(f"Flavor '{noop}' is not compatible with provider 'amphora'"))
    assert create(api, vip_subnet_id=subnet, availability_zone="nowhere") == (
        400, fault("Validation failure: Invalid availability zone."))
    # The flavor decides the provider when none is given, and they may also match.
    for extra in ({}, {"provider": "noop"}):
        code, body = create(api, vip_subnet_id=subnet, flavor_id=noop, **extra)
        assert code == 201, body
        assert (body["loadbalancer"]["provider"], body["loadbalancer"]["flavor_id"]) == (
            "noop", noop)


@pytest.mark.parametrize(("count", "status"), [(50, 201), (51, 409)])
def test_graph_create_caps_rules_per_policy(api, count, status):
    rules = [{"type": "PATH", "compare_type": "STARTS_WITH", "value": f"/p{i}"}
             for i in range(count)]
    code, body = create(api, vip_subnet_id=api.subnet_id("public-subnet"), listeners=[{
        "protocol": "HTTP", "protocol_port": 80,
        "l7policies": [{"action": "REJECT", "rules": rules}]}])
    assert code == status, body
    if status == 201:
        policy = body["loadbalancer"]["listeners"][0]["l7policies"][0]
        assert len(policy["rules"]) == 50
        return
    assert re.fullmatch(r"Too many rules on L7 policy [0-9a-f-]{36}", body["faultstring"])
    assert api.get(LBS)[1]["loadbalancers"] == []

def test_statuses_alias_answers_the_status_tree(api):
    lb = api.create_lb(name="tree")
    code, body = api.post("/v2/lbaas/listeners", {"listener": {
        "loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 80}})
    assert code == 201, body
    api.wait_lb(lb["id"])
    code, status = api.get(f"{LBS}/{lb['id']}/status")
    assert code == 200
    code, statuses = api.get(f"/v2.0/lbaas/loadbalancers/{lb['id']}/statuses")
    assert code == 200 and statuses == status
    assert [li["provisioning_status"] for li in statuses["statuses"]["loadbalancer"][
        "listeners"]] == ["ACTIVE"]
    code, body = api.get(f"{LBS}/{uuid.uuid4()}/statuses")
    assert code == 404 and body["faultstring"].startswith("Load Balancer ")


def test_v2_and_v2_0_answer_the_version_string(api):
    for path in ("/v2", "/v2.0", "/v2/", "/load-balancer/v2"):
        assert api.get(path) == (200, "v2"), path


def test_healthcheck_is_404_unless_enabled(service_factory):
    api = service_factory()
    not_found = {"code": 404, "title": "Not Found", "description": ""}  # pecan's abort(404)
    assert api.get("/healthcheck") == (404, not_found)
    assert api.get("/load-balancer/healthcheck") == (404, not_found)
    resp = api.client.head("/healthcheck")
    assert resp.status_code == 404 and resp.content == b""
    api = service_factory(api={"healthcheck_enabled": True})
    for path in ("/healthcheck", "/load-balancer/healthcheck"):
        resp = api.client.get(path, headers={"Accept": "text/plain"})
        assert (resp.status_code, resp.text) == (200, "OK"), path
        assert resp.headers["content-type"].startswith("text/plain")
    for method in ("POST", "PUT", "DELETE"):
        code, body = api.call(method, "/healthcheck", {"foo": "bar"})
        assert (code, body) == (405, {"code": 405, "title": "Method Not Allowed",
                                      "description": ""}), method


def test_load_balancer_prefix_head_and_unknown_paths(api):
    lb = api.create_lb(name="p")
    code, body = api.get(f"/load-balancer/v2/lbaas/loadbalancers/{lb['id']}")
    assert code == 200 and body["loadbalancer"]["name"] == "p"
    resp = api.client.head(f"{LBS}/{lb['id']}")
    assert resp.status_code == 200 and resp.content == b""
    resp = api.client.head(f"{LBS}/{uuid.uuid4()}")
    assert resp.status_code == 404 and resp.content == b""
    # webob's body as pecan renders it: "" from a controller's abort(404), null from routing
    for path, description in (("/v2/lbaas/nothing", ""), ("/v3", None),
                              ("/v2/lbaas/loadbalancers/x/y/z", "")):
        assert api.get(path) == (404, {"code": 404, "title": "Not Found",
                                       "description": description}), path
