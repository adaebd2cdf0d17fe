"""Neutron's per-project quotas on the network subset (issue 10 follow-up: one project took 239
floating IPs on ``public`` until nobody else could get one, or a VIP there).

Callers are non-admin projects (``StaticAuth``): quotas are not enforced under noauth.
"""

from __future__ import annotations

import ipaddress
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from network_helpers import NET, NETWORKS, PORTS, SUBNETS, Callers, fault, neutron_error
from starlette.testclient import TestClient

from lbaas.store import ipam
from lbaas.store import tables as t
from service_kit import make_service

QUOTAS = f"{NET}/quotas"
FIPS = f"{NET}/floatingips"
LBS = "/v2/lbaas/loadbalancers"
A, B = "a" * 32, "b" * 32


def over(resource: str) -> dict[str, Any]:
    return {"NeutronError": {"type": "OverQuota", "detail": "",
                             "message": f"Quota exceeded for resources: ['{resource}']."}}


def fip(api: Any) -> tuple[int, Any]:
    return api.post(FIPS, {"floatingip": {"floating_network_id": api.network_id("public")}})


def port(api: Any) -> tuple[int, Any]:
    return api.post(PORTS, {"port": {"network_id": api.network_id("private")}})


@pytest.fixture
def small(service_factory: Any) -> Any:
    return service_factory(neutron_quotas={"quota_floatingip": 3, "quota_port": 2,
                                           "quota_network": 1, "quota_subnet": 1})


def test_defaults_are_neutrons_and_a_project_reads_its_own(api: Any) -> None:
    callers = Callers(api)
    callers.project(A, "reader")
    code, body = api.get(f"{QUOTAS}/{A}")
    assert code == 200
    assert body == {"quota": {"network": 100, "subnet": 100, "port": 500, "floatingip": 50}}
    code, body = api.get(f"{QUOTAS}/{A}/default")
    assert code == 200 and body["quota"]["port"] == 500
    code, body = api.get(f"{QUOTAS}/tenant")
    assert body == {"tenant": {"tenant_id": A}}
    code, body = api.get(f"{QUOTAS}/{B}")
    assert code == 403 and neutron_error(body)[0] == "PolicyNotAuthorized"
    code, body = api.get(QUOTAS)
    assert code == 403
    code, body = api.get(f"{NET}/extensions/quotas")
    assert code == 200


def test_the_reviewers_exhaustion_of_public_stops_at_neutrons_default(api: Any) -> None:
    """The finding itself, with default settings: one project's 51st floating IP is refused, and
    another project still gets a floating IP and a VIP on public."""
    callers = Callers(api)
    callers.project(A)
    for n in range(50):
        code, body = fip(api)
        assert code == 201, (n, body)
    assert fip(api) == (409, over("floatingip"))
    callers.project(B)
    assert fip(api)[0] == 201
    code, body = api.post(LBS, {"loadbalancer": {"vip_subnet_id": api.subnet_id("public-subnet")}})
    assert code == 201, body


def test_floating_ips_stop_at_the_quota_and_other_projects_keep_theirs(small: Any) -> None:
    api, callers = small, Callers(small)
    callers.project(A)
    made = []
    for _ in range(3):
        code, body = fip(api)
        assert code == 201, body
        made.append(body["floatingip"]["id"])
    code, body = fip(api)
    assert (code, body) == (409, over("floatingip"))
    callers.project(B)
    code, body = fip(api)
    assert code == 201, body  # B's own quota, and addresses are left on public
    callers.project(A)
    assert api.delete(f"{FIPS}/{made[0]}")[0] == 204
    assert fip(api)[0] == 201
    code, body = api.get(f"{QUOTAS}/{A}/details")
    assert code == 200
    assert body["quota"]["floatingip"] == {"limit": 3, "used": 3, "reserved": 0}


def test_ports_on_the_shared_network_networks_and_subnets_are_limited(small: Any) -> None:
    api, callers = small, Callers(small)
    callers.project(A)
    assert port(api)[0] == 201 and port(api)[0] == 201
    assert port(api) == (409, over("port"))
    code, body = api.post(NETWORKS, {"network": {"name": "n1"}})
    assert code == 201
    net = body["network"]["id"]
    assert api.post(NETWORKS, {"network": {"name": "n2"}}) == (409, over("network"))
    sub = {"network_id": net, "ip_version": 4}
    assert api.post(SUBNETS, {"subnet": {**sub, "cidr": "10.77.0.0/24"}})[0] == 201
    assert api.post(SUBNETS, {"subnet": {**sub, "cidr": "10.77.1.0/24"}}) == \
        (409, over("subnet"))
    callers.project(B)
    assert port(api)[0] == 201


def test_a_vip_port_counts_and_a_full_port_quota_refuses_the_load_balancer(small: Any) -> None:
    api, callers = small, Callers(small)
    callers.project(A)
    lb = {"loadbalancer": {"vip_subnet_id": api.subnet_id("private-subnet")}}
    code, body = api.post(LBS, lb)
    assert code == 201, body
    assert port(api)[0] == 201  # VIP port + this one = 2
    code, body = api.post(LBS, lb)
    assert code == 409 and fault(body) == "Quota exceeded for resources: ['port']."
    code, body = api.get(f"{QUOTAS}/{A}/details")
    assert body["quota"]["port"]["used"] == 2


def test_amphora_legs_belong_to_the_service_not_the_tenant(small: Any) -> None:
    api, callers = small, Callers(small)
    with api.service.engine.begin() as conn:  # what provisioning writes for an amphora leg
        conn.execute(t.port.insert().values(
            id=str(uuid.uuid4()), project_id=A, network_id=api.network_id("private"),
            mac_address="fa:16:3e:00:00:01", fixed_ips=[], device_owner="compute:amphora",
            device_id="amp", name="octavia-vrrp-amp", revision_number=0,
            created_at=datetime.now(UTC).replace(tzinfo=None)))
    callers.project(A)
    assert api.get(f"{QUOTAS}/{A}/details")[1]["quota"]["port"]["used"] == 0
    assert port(api)[0] == 201 and port(api)[0] == 201


def test_load_balancers_cannot_exhaust_public_other_projects_keep_vips_and_fips(
        service_factory: Any) -> None:
    """The second finding: VIP ports on ``public`` went to one project's port quota (500) only,
    so 241 load balancers took every address. Addresses on networks the project does not own
    (VIPs, their amphora legs, floating IPs) now have their own limit; its own network does not."""
    api = service_factory(neutron_quotas={"quota_shared_address": 5})
    callers = Callers(api)
    callers.project(A)
    public_lb = {"loadbalancer": {"vip_subnet_id": api.subnet_id("public-subnet")}}
    code, body = api.post(LBS, public_lb)  # its VIP and (SINGLE) one amphora's VRRP leg: 2
    assert code == 201, body
    lb_id = body["loadbalancer"]["id"]
    with api.service.engine.begin() as conn:  # the leg provisioning makes, in A's name
        subnet = ipam.get_subnet(conn, api.subnet_id("public-subnet"))
        assert subnet is not None
        ipam.create_port(conn, port_id=str(uuid.uuid4()), subnet=subnet, address=None,
                         name=f"octavia-vrrp-{lb_id}", device_owner="compute:amphora",
                         device_id="amp", project_id=A,
                         now=datetime.now(UTC).replace(tzinfo=None))
    assert fip(api)[0] == 201  # 3 used
    code, body = api.post(LBS, public_lb)  # 3 + 2 = 5
    assert code == 201, body
    code, body = api.post(LBS, public_lb)  # 4 used (its leg is not built here) + 2 > 5
    assert code == 409 and fault(body) == "Quota exceeded for resources: ['shared_address'].", \
        body
    assert fip(api)[0] == 201  # 5 used
    assert fip(api) == (409, over("shared_address"))
    code, body = api.post(NETWORKS, {"network": {"name": "own"}})  # its own: not limited
    assert code == 201
    net = body["network"]["id"]
    code, body = api.post(SUBNETS, {"subnet": {"network_id": net, "ip_version": 4,
                                               "cidr": "10.78.0.0/24"}})
    assert code == 201
    code, body = api.post(LBS, {"loadbalancer": {"vip_subnet_id": body["subnet"]["id"]}})
    assert code == 201, body
    callers.project(B)
    code, body = api.post(LBS, public_lb)
    assert code == 201, body
    assert fip(api)[0] == 201
    callers.admin()  # a deployment setting: not in the quota API
    code, body = api.get(f"{QUOTAS}/{A}")
    assert code == 200 and "shared_address" not in body["quota"]


def test_a_member_on_public_brings_amphora_legs_there_and_they_count(
        service_factory: Any) -> None:
    """An amphora gets a leg on every member subnet: with the VIP on its own network, members on
    ``public`` would still take addresses there, one per amphora."""
    api = service_factory(neutron_quotas={"quota_shared_address": 2})
    callers = Callers(api)
    callers.project(A)
    code, body = api.post(NETWORKS, {"network": {"name": "own"}})
    net = body["network"]["id"]
    code, body = api.post(SUBNETS, {"subnet": {"network_id": net, "ip_version": 4,
                                               "cidr": "10.79.0.0/24"}})
    assert code == 201
    own = body["subnet"]["id"]
    public = api.subnet_id("public-subnet")
    code, body = api.get(f"{SUBNETS}/{public}")
    address = str(ipaddress.ip_network(body["subnet"]["cidr"])[10])

    def graph(subnet_id: str) -> dict[str, Any]:
        member = {"address": address if subnet_id == public else "10.79.0.10",
                  "protocol_port": 80, "subnet_id": subnet_id}
        return {"loadbalancer": {"vip_subnet_id": own, "pools": [
            {"protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", "members": [member]}]}}

    assert fip(api)[0] == 201 and fip(api)[0] == 201  # the limit is used up
    code, body = api.post(LBS, graph(public))
    assert code == 409 and fault(body) == "Quota exceeded for resources: ['shared_address'].", \
        body
    code, body = api.post(LBS, graph(own))
    assert code == 201, body
    callers.project(B)
    code, body = api.post(LBS, {"loadbalancer": {"vip_subnet_id": public, "pools": [
        {"protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", "members": [
            {"address": address, "protocol_port": 80, "subnet_id": public}]}]}})
    assert code == 201, body


def test_admin_sets_limits_projects_cannot(small: Any) -> None:
    api, callers = small, Callers(small)
    callers.project(A)
    code, body = api.put(f"{QUOTAS}/{A}", {"quota": {"floatingip": 100}})
    assert code == 403 and neutron_error(body)[0] == "PolicyNotAuthorized"
    callers.admin()
    code, body = api.put(f"{QUOTAS}/{A}", {"quota": {"floatingip": 1, "port": -1}})
    assert code == 200
    assert body == {"quota": {"network": 1, "subnet": 1, "port": -1, "floatingip": 1}}
    code, body = api.get(QUOTAS)
    assert code == 200 and body["quotas"] == [
        {"network": 1, "subnet": 1, "port": -1, "floatingip": 1, "project_id": A,
         "tenant_id": A}]
    callers.project(A)
    assert fip(api)[0] == 201
    assert fip(api) == (409, over("floatingip"))
    for _ in range(3):
        assert port(api)[0] == 201  # unlimited now
    callers.admin()
    assert api.delete(f"{QUOTAS}/{A}")[0] == 204
    assert api.get(f"{QUOTAS}/{A}")[1]["quota"]["floatingip"] == 3
    for bad, reason in (({"floatingip": -2}, "too small"), ({"floatingip": "x"}, "integer"),
                        ({"floatingip": True}, "integer"), ({"router": 1}, "Unrecognized"),
                        ({"port": 2**31}, "too large")):
        code, body = api.put(f"{QUOTAS}/{A}", {"quota": bad})
        assert code == 400 and reason in neutron_error(body)[1], (bad, body)


def test_concurrent_creates_in_two_api_processes_do_not_pass_the_quota(
        small: Any, database_url: str, tmp_path: Any) -> None:
    """Two services (two API processes' worth of engines and event loops) on one database,
    eight threads creating floating IPs at once: exactly the quota is created. Several API
    processes need PostgreSQL or MariaDB (LBAAS_TEST_DATABASE); SQLite has one writer."""
    if database_url.startswith("sqlite"):
        pytest.skip("several API processes need a database server")
    other = make_service(database_url, tmp_path / "second",
                         neutron_quotas={"quota_floatingip": 3})
    clients = [small.client, TestClient(other.app, raise_server_exceptions=False)]
    clients[1].__enter__()
    try:
        for service in (small.service, other):
            Callers(type("Api", (), {"service": service})()).project(A)
        body = {"floatingip": {"floating_network_id": small.network_id("public")}}
        codes: list[int] = []
        start = threading.Barrier(8)

        def create(n: int) -> None:
            start.wait()
            response = clients[n % 2].post(FIPS, json=body)
            codes.append(response.status_code)

        threads = [threading.Thread(target=create, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(codes) == [201] * 3 + [409] * 5, codes
    finally:
        clients[1].__exit__(None, None, None)
