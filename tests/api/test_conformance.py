"""What upstream's own clients and test suites found (issue 9): upstream's noop deployment,
``updated_at``, addresses as sent, the UDP family check, provider aliases, list filters and
upstream's exact error shapes. Expected bodies were read from a running Octavia 19.0.0 API
(noop drivers) and its code (pecan/webob for routing and the pagination hook, WSME elsewhere).
"""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

import pytest

LBS = "/v2/lbaas/loadbalancers"
LISTENERS = "/v2/lbaas/listeners"
POOLS = "/v2/lbaas/pools"
POLICIES = "/v2/lbaas/l7policies"
QUOTAS = "/v2/lbaas/quotas"
NOOP = {"networking": {"driver": "noop"}, "certificates": {"cert_manager": "noop"}}


def made_up() -> str:
    return str(uuid.uuid4())


def webob(code: int, title: str, description: str | None) -> dict[str, Any]:
    return {"code": code, "title": title, "description": description}


def fault(message: str) -> dict[str, Any]:
    return {"faultcode": "Client", "faultstring": message, "debuginfo": None}


def created(api: Any, path: str, envelope: str, **fields: Any) -> dict[str, Any]:
    code, body = api.post(path, {envelope: fields})
    assert code == 201, body
    return dict(body[envelope])


def child(api: Any, lb_id: str, path: str, envelope: str, **fields: Any) -> dict[str, Any]:
    """Create a child object and wait until its load balancer is ACTIVE again."""
    obj = created(api, path, envelope, **fields)
    api.wait_lb(lb_id)
    return obj


def tree(api: Any, lb_id: str, policy_position: int | None = None) -> dict[str, Any]:
    """listener -> pool (default) with a member and a monitor, and a policy with a rule; each
    created and settled in turn. ``path`` gives each object's URL."""
    made: dict[str, Any] = {}
    made["listener"] = child(api, lb_id, LISTENERS, "listener", loadbalancer_id=lb_id,
                             protocol="HTTP", protocol_port=80)
    made["pool"] = child(api, lb_id, POOLS, "pool", listener_id=made["listener"]["id"],
                         protocol="HTTP", lb_algorithm="ROUND_ROBIN")
    members = f"{POOLS}/{made['pool']['id']}/members"
    made["member"] = child(api, lb_id, members, "member", address="192.0.2.9", protocol_port=80)
    made["healthmonitor"] = child(api, lb_id, "/v2/lbaas/healthmonitors", "healthmonitor",
                                  pool_id=made["pool"]["id"], type="TCP", delay=5, timeout=3,
                                  max_retries=3)
    extra = {} if policy_position is None else {"position": policy_position}
    made["l7policy"] = child(api, lb_id, POLICIES, "l7policy", action="REJECT",
                             listener_id=made["listener"]["id"], **extra)
    rules = f"{POLICIES}/{made['l7policy']['id']}/rules"
    made["rule"] = child(api, lb_id, rules, "rule", type="PATH", compare_type="EQUAL_TO",
                         value="/x")
    made["path"] = {"listener": LISTENERS, "pool": POOLS, "member": members,
                    "healthmonitor": "/v2/lbaas/healthmonitors", "l7policy": POLICIES,
                    "rule": rules}
    return made


@pytest.fixture()
def noop_api(service_factory: Any) -> Any:
    return service_factory(**NOOP)


# -- 1. upstream's noop deployment ------------------------------------------------------------

def test_noop_deployment_accepts_made_up_networks_ports_and_certificates(noop_api):
    api = noop_api
    subnet, network, port = made_up(), made_up(), made_up()
    lb = created(api, LBS, "loadbalancer", vip_subnet_id=subnet)
    assert (lb["vip_subnet_id"], lb["vip_address"]) == (subnet, "198.51.100.1")
    assert uuid.UUID(lb["vip_network_id"]) and uuid.UUID(lb["vip_port_id"])
    lb = created(api, LBS, "loadbalancer", vip_network_id=network, vip_address="10.1.2.3")
    assert (lb["vip_network_id"], lb["vip_address"]) == (network, "10.1.2.3")
    lb = created(api, LBS, "loadbalancer", vip_port_id=port, vip_subnet_id=subnet,
                 additional_vips=[{"subnet_id": made_up(), "ip_address": "10.9.9.9"}])
    assert (lb["vip_port_id"], lb["vip_subnet_id"]) == (port, subnet)
    assert lb["additional_vips"][0]["ip_address"] == "10.9.9.9"
    lb = api.wait_lb(lb["id"])
    listener = child(api, lb["id"], LISTENERS, "listener", loadbalancer_id=lb["id"],
                     protocol="TERMINATED_HTTPS", protocol_port=443,
                     default_tls_container_ref=f"http://barbican/v1/containers/{made_up()}",
                     client_ca_tls_container_ref=f"http://barbican/v1/secrets/{made_up()}")
    pool = child(api, lb["id"], POOLS, "pool", listener_id=listener["id"], protocol="HTTP",
                 lb_algorithm="ROUND_ROBIN")
    member = child(api, lb["id"], f"{POOLS}/{pool['id']}/members", "member",
                   address="192.0.2.50", protocol_port=80, subnet_id=made_up())
    assert member["address"] == "192.0.2.50"
    # the lbaas networks still work, with addresses from their pools
    lb = created(api, LBS, "loadbalancer", vip_subnet_id=api.subnet_id("public-subnet"))
    public = next(n for n in api.service.settings.networking.networks if n.name == "public")
    assert ipaddress.ip_address(lb["vip_address"]) in ipaddress.ip_network(public.cidr)


def test_made_up_ids_stay_400_with_the_local_network_driver(api):
    subnet = made_up()
    assert api.post(LBS, {"loadbalancer": {"vip_subnet_id": subnet}}) == (
        400, fault(f"Subnet {subnet} not found."))


def test_noop_settings_refuse_the_local_data_plane(tmp_path, database_url):
    from service_kit import make_service

    with pytest.raises(ValueError, match=r"needs controller\.drivers"):
        make_service(database_url, tmp_path, controller={"drivers": "local"}, **NOOP)


def test_noop_driver_is_listed_as_upstream_and_noop_stays_an_alias(api):
    _, body = api.get("/v2/lbaas/providers")
    assert "noop_driver" in [p["name"] for p in body["providers"]]
    for name in ("noop_driver", "noop"):
        assert api.create_lb(provider=name)["provider"] == name


# -- 2. updated_at ------------------------------------------------------------------------------

def test_updated_at_is_set_by_every_change_status_settling_included(api):
    _, body = api.post(LBS, {"loadbalancer": {"vip_subnet_id": api.subnet_id("public-subnet")}})
    assert body["loadbalancer"]["updated_at"] is None  # as created
    lb = api.wait_lb(body["loadbalancer"]["id"])
    assert lb["updated_at"] is not None  # PENDING_CREATE -> ACTIVE is a change
    listener = child(api, lb["id"], LISTENERS, "listener", loadbalancer_id=lb["id"],
                     protocol="HTTP", protocol_port=81)
    first = child(api, lb["id"], POLICIES, "l7policy", action="REJECT",
                  listener_id=listener["id"])
    made = tree(api, lb["id"])
    # a policy placed before another: the other one's position changes
    made["l7policy"] = child(api, lb["id"], POLICIES, "l7policy", action="REJECT",
                             listener_id=listener["id"], position=1)
    for envelope, path in made["path"].items():
        obj = made[envelope]
        assert obj["updated_at"] is None, envelope  # the create response: nothing changed yet
        _, body = api.get(f"{path}/{obj['id']}")
        assert body[envelope]["updated_at"] is not None, envelope  # settled ACTIVE since
    # moving a policy down is a change of the one moved
    _, body = api.get(f"{POLICIES}/{first['id']}")
    assert body["l7policy"]["position"] == 2 and body["l7policy"]["updated_at"] is not None


# -- 3. addresses as sent -----------------------------------------------------------------------

def test_addresses_come_back_as_sent_and_compare_as_addresses(noop_api):
    api = noop_api
    lb = created(api, LBS, "loadbalancer", vip_subnet_id=made_up(),
                 vip_address="2001:db8:0:0:0:0:0:1")
    assert lb["vip_address"] == "2001:db8:0:0:0:0:0:1"
    lb = api.wait_lb(lb["id"])
    assert lb["vip_address"] == "2001:db8:0:0:0:0:0:1"
    pool = child(api, lb["id"], POOLS, "pool", loadbalancer_id=lb["id"], protocol="TCP",
                 lb_algorithm="ROUND_ROBIN")
    members = f"{POOLS}/{pool['id']}/members"
    member = child(api, lb["id"], members, "member", address="2001:DB8:0:0:0:0:0:10",
                   protocol_port=80, monitor_address="2001:db8:0::20")
    assert (member["address"], member["monitor_address"]) == (
        "2001:DB8:0:0:0:0:0:10", "2001:db8:0::20")
    code, body = api.post(members, {"member": {"address": "2001:db8::10",
                                                "protocol_port": 80}})
    assert (code, body) == (409, fault("Another member on this pool is already using ip "
                                       "2001:db8::10 on protocol_port 80"))


def test_ipam_addresses_are_kept_as_sent_and_still_unique(api):
    from test_gaps import add_subnet

    subnet = add_subnet(api, api.network_id("public"), "2001:db8::/64", 6)
    lb = api.create_lb(vip_subnet_id=subnet, vip_address="2001:db8:0:0:0:0:0:99")
    assert lb["vip_address"] == "2001:db8:0:0:0:0:0:99"
    code, body = api.post(LBS, {"loadbalancer": {"vip_subnet_id": subnet,
                                                 "vip_address": "2001:db8::99"}})
    assert code == 409 and "already in use" in body["faultstring"]


# -- 4. UDP/SCTP address families: only through the pool's listeners ----------------------------

def test_udp_pool_without_listener_takes_a_member_of_the_other_family(noop_api):
    api = noop_api
    lb = api.wait_lb(created(api, LBS, "loadbalancer", vip_subnet_id=made_up(),
                             vip_address="2001:db8::5")["id"])
    pool = child(api, lb["id"], POOLS, "pool", loadbalancer_id=lb["id"], protocol="UDP",
                 lb_algorithm="ROUND_ROBIN")
    code, body = api.post(f"{POOLS}/{pool['id']}/members", {"member": {
        "address": "192.0.2.7", "protocol_port": 53}})
    assert code == 201, body


# -- 5. provider aliases ------------------------------------------------------------------------

def test_octavia_provider_is_answered_as_octavia(api):
    lb = api.create_lb(provider="octavia")
    assert lb["provider"] == "octavia"
    _, body = api.get(f"{LBS}?provider=octavia")
    assert [x["id"] for x in body["loadbalancers"]] == [lb["id"]]


# -- 7. list filters: every attribute ----------------------------------------------------------

def test_every_attribute_is_a_list_filter(api):
    lb = api.create_lb(name="a")
    other = api.create_lb(name="b", admin_state_up=False)
    made = tree(api, lb["id"])
    listener, pool, member, monitor, policy, rule = (made[k] for k in (
        "listener", "pool", "member", "healthmonitor", "l7policy", "rule"))

    def ids(path: str, plural: str) -> list[str]:
        code, body = api.get(path)
        assert code == 200, (path, body)
        return [x["id"] for x in body[plural]]

    assert ids(f"{LBS}?topology=SINGLE&sort=name", "loadbalancers") == [lb["id"], other["id"]]
    assert ids(f"{LBS}?enabled=false", "loadbalancers") == [other["id"]]
    assert ids(f"{LBS}?admin_state_up=true", "loadbalancers") == [lb["id"]]
    for key in ("load_balancer_id", "loadbalancer_id"):
        assert ids(f"{LISTENERS}?{key}={lb['id']}", "listeners") == [listener["id"]]
        assert ids(f"{POOLS}?{key}={lb['id']}", "pools") == [pool["id"]]
        assert ids(f"{LISTENERS}?{key}={other['id']}", "listeners") == []
    assert ids(f"{POOLS}?healthmonitor_id={monitor['id']}", "pools") == [pool["id"]]
    assert ids(f"{POOLS}/{pool['id']}/members?pool_id={pool['id']}", "members") == \
        [member["id"]]
    assert ids(f"{POLICIES}/{policy['id']}/rules?l7policy_id={policy['id']}", "rules") == \
        [rule["id"]]
    assert ids(f"/v2/lbaas/healthmonitors?pool_id={pool['id']}", "healthmonitors") == \
        [monitor["id"]]
    # tag filters are ignored where there are no tags (upstream pops them before filtering)
    assert api.get("/v2/lbaas/flavors?tags=a") == (200, {"flavors": [], "flavors_links": []})
    # internal columns are not attributes
    assert api.get(f"{LBS}?generation=1") == (
        400, fault("One or more arguments are either duplicate or invalid"))


# -- 8. error shapes and texts ------------------------------------------------------------------

def test_routing_errors_are_webob_bodies(api):
    assert api.get("/v2/lbaas/nothing") == (404, webob(404, "Not Found", ""))
    assert api.get("/nothing") == (404, webob(404, "Not Found", None))
    assert api.call("PATCH", LBS) == (405, webob(405, "Method Not Allowed", ""))
    assert api.call("POST", "/v2/lbaas/providers", {}) == (
        405, webob(405, "Method Not Allowed", ""))
    # pecan sends PUT/DELETE on a collection to the item handler: WSME's missing argument
    assert api.call("DELETE", LBS) == (400, fault('Missing argument: "id"'))
    assert api.call("PUT", QUOTAS, {}) == (400, fault('Missing argument: "project_id"'))


def test_pagination_hook_errors_are_webob_and_handler_errors_wsme(api):
    bad = webob(400, "Bad Request", "")
    for query, description in (
            ("limit=abc", "Supplied pagination limit 'abc' is not valid."),
            ("sort=name:up", "Supplied sort direction 'up' is not valid."),
            ("sort_key=name&sort_dir=sideways", "Supplied sort direction 'sideways' is not valid."),
            ("sort=a:b:c", "Supplied sort key '['a', 'b', 'c']' is not valid.")):
        assert api.get(f"{LBS}?{query}") == (400, {**bad, "description": description}), query
    assert api.get(f"{LBS}?sort=bogus:asc") == (
        400, fault("Supplied sort key 'bogus' is not valid."))
    assert api.get(f"{LBS}?marker=abc") == (
        400, fault("Supplied pagination marker 'abc' is not valid."))
    assert api.get(f"{LBS}?sort_dir=sideways")[0] == 200  # no key: the direction is not read


def test_children_of_an_unknown_parent_are_webob_404s(api):
    pool, policy = made_up(), made_up()
    assert api.get(f"{POOLS}/{pool}/members") == (
        404, webob(404, "Bad Request", f"Pool {pool} not found."))
    assert api.post(f"{POLICIES}/{policy}/rules", {"rule": {}}) == (
        404, webob(404, "Bad Request", f"L7Policy {policy} not found."))


@pytest.mark.parametrize(("path", "body", "message"), [
    (LBS, {"loadbalancer": {"bogus": 1}},
     "Unknown attribute for argument load_balancer.loadbalancer: bogus"),
    (LBS, {"loadbalancer": {}, "extra": 1}, "Unknown attribute for argument load_balancer: extra"),
    (LBS, {"loadbalancer": {"bogus": 1, "zed": 2}},
     "Unknown attributes for argument load_balancer.loadbalancer: bogus, zed"),
    (LBS, {"loadbalancer": {"listeners": [{"protocol": "HTTP", "protocol_port": 80, "x": 1}]}},
     "Unknown attribute for argument load_balancer.loadbalancer.listeners: x"),
    (LISTENERS, {"listener": {"bogus": 1}},
     "Unknown attribute for argument listener_.listener: bogus"),
    ("/v2/lbaas/healthmonitors", {"healthmonitor": {"bogus": 1}},
     "Unknown attribute for argument health_monitor_.healthmonitor: bogus"),
    ("/v2/lbaas/flavorprofiles", {"flavorprofile": {"bogus": 1}},
     "Unknown attribute for argument flavor_profile_.flavorprofile: bogus"),
])
def test_unknown_attributes_name_upstreams_argument(api, path, body, message):
    assert api.post(path, body) == (400, fault(message))


def test_unknown_attributes_in_updates_and_batches(api):
    lb = api.create_lb()
    assert api.put(f"{LBS}/{lb['id']}", {"loadbalancer": {"bogus": 1}}) == (
        400, fault("Unknown attribute for argument load_balancer.loadbalancer: bogus"))
    assert api.put(f"{QUOTAS}/p1", {"quota": {"bogus": 1}}) == (
        400, fault("Unknown attribute for argument quotas.quota: bogus"))
    pool = child(api, lb["id"], POOLS, "pool", loadbalancer_id=lb["id"], protocol="HTTP",
                 lb_algorithm="ROUND_ROBIN")
    members = f"{POOLS}/{pool['id']}/members"
    assert api.put(members, {"members": [], "extra": 1}) == (
        400, fault("Unknown attribute for argument members_: extra"))
    assert api.put(members, {"members": [{"address": "192.0.2.1", "protocol_port": 80,
                                          "x": 1}]}) == (
        400, fault("Unknown attribute for argument members_.members: x"))


def test_version_document_dates_and_v2_roots(api):
    _, body = api.get("/")
    updated = {v["id"]: v["updated"] for v in body["versions"]}
    assert updated["v2.7"] == "2018-01-25T12:00:00Z"
    assert updated["v2.18"] == "2020-04-29T01:00:00Z"
    assert updated["v2.17"] == "2020-04-29T00:00:00Z"
    for path in ("/v2.0/lbaas", "/v2/lbaas", "/v2/octavia", "/v2"):
        assert api.get(path) == (200, "v2"), path


def test_pool_without_monitor_has_no_healthmonitor_id_key(api):
    lb = api.create_lb()
    pool = child(api, lb["id"], POOLS, "pool", loadbalancer_id=lb["id"], protocol="HTTP",
                 lb_algorithm="ROUND_ROBIN")
    assert "healthmonitor_id" not in pool
    _, body = api.get(f"{POOLS}?fields=id&fields=healthmonitor_id")
    assert body["pools"] == [{"id": pool["id"]}]


def test_quota_rows_after_delete_and_fields(api):
    api.put(f"{QUOTAS}/p1", {"quota": {"loadbalancer": 5}})
    assert api.delete(f"{QUOTAS}/p1")[0] == 202
    _, body = api.get(QUOTAS)
    row = body["quotas"][0]
    assert row["loadbalancer"] == row["pool"] == row["l7rule"] == -1
    _, body = api.get(f"{QUOTAS}?fields=load_balancer")
    assert body["quotas"] == [row]
    assert api.get(f"{QUOTAS}/p1?fields=load_balancer") == (
        400, fault('Unknown argument: "fields"'))
