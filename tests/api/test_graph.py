"""Single-call ("graph") load balancer create, as upstream's fully populated example."""

from __future__ import annotations

from typing import Any

import pytest

LBS = "/v2/lbaas/loadbalancers"


def full_body(api: Any) -> dict[str, Any]:
    private = api.subnet_id("private-subnet")
    return {"loadbalancer": {
        "name": "best_load_balancer", "vip_subnet_id": api.subnet_id("public-subnet"),
        "tags": ["test_tag"],
        "listeners": [
            {"name": "http_listener", "protocol": "HTTP", "protocol_port": 80,
             "default_pool": {"name": "rr_pool"},
             "l7policies": [
                 {"name": "redirect-example.com", "action": "REDIRECT_TO_URL",
                  "redirect_url": "http://www.example.com/",
                  "rules": [{"type": "PATH", "compare_type": "REGEX", "value": "/images*"}]},
                 {"name": "to-api", "action": "REDIRECT_TO_POOL",
                  "redirect_pool": {"name": "api_pool", "protocol": "HTTP",
                                    "lb_algorithm": "LEAST_CONNECTIONS"},
                  "rules": [{"type": "PATH", "compare_type": "STARTS_WITH", "value": "/api"},
                            {"type": "HEADER", "compare_type": "EQUAL_TO", "key": "X-Api",
                             "value": "yes", "invert": True}]},
             ]},
            {"name": "tcp_listener", "protocol": "TCP", "protocol_port": 22},
        ],
        "pools": [
            {"name": "rr_pool", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
             "healthmonitor": {"type": "HTTP", "delay": 3, "max_retries": 2, "timeout": 1,
                               "url_path": "/index.html"},
             "members": [
                 {"address": "192.0.2.16", "protocol_port": 80, "subnet_id": private},
                 {"address": "192.0.2.19", "protocol_port": 80, "weight": 5},
             ]},
        ],
    }}


def test_fully_populated_create_returns_the_whole_graph(api: Any) -> None:
    code, body = api.post(LBS, full_body(api))
    assert code == 201, body
    lb = body["loadbalancer"]
    assert lb["provisioning_status"] == "PENDING_CREATE"
    assert [li["name"] for li in lb["listeners"]] == ["http_listener", "tcp_listener"]
    pools = {p["name"]: p for p in lb["pools"]}
    assert set(pools) == {"rr_pool", "api_pool"}
    rr = pools["rr_pool"]
    assert [m["address"] for m in rr["members"]] == ["192.0.2.16", "192.0.2.19"]
    assert rr["members"][1]["weight"] == 5
    assert all(m["operating_status"] == "OFFLINE" for m in rr["members"])  # monitored
    assert rr["healthmonitor"]["url_path"] == "/index.html"
    assert rr["healthmonitor"]["provisioning_status"] == "PENDING_CREATE"
    http = lb["listeners"][0]
    assert http["default_pool_id"] == rr["id"]
    policies = http["l7policies"]
    assert [p["position"] for p in policies] == [1, 2]
    assert policies[0]["redirect_http_code"] == 302
    assert policies[0]["rules"][0]["value"] == "/images*"
    assert policies[1]["redirect_pool_id"] == pools["api_pool"]["id"]
    assert [r["type"] for r in policies[1]["rules"]] == ["PATH", "HEADER"]
    assert policies[1]["rules"][1]["invert"] is True

    # upstream's *FullResponse types leave these unset, so they are absent (not null)
    assert "loadbalancers" not in http and "loadbalancers" not in rr
    assert "healthmonitor_id" not in rr and "pools" not in rr["healthmonitor"]
    assert "healthmonitor" not in pools["api_pool"]

    active = api.wait_lb(lb["id"])
    assert sorted(x["id"] for x in active["listeners"]) == sorted(li["id"] for li in
                                                                   lb["listeners"])
    assert set(active["pools"][0]) == {"id"}  # GET answers id-only children
    code, tree = api.get(f"{LBS}/{lb['id']}/status")
    listeners = tree["statuses"]["loadbalancer"]["listeners"]
    assert {li["provisioning_status"] for li in listeners} == {"ACTIVE"}
    code, listed = api.get(f"/v2/lbaas/pools/{rr['id']}/members")
    assert {m["provisioning_status"] for m in listed["members"]} == {"ACTIVE"}


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda b: b["listeners"][0].update(default_pool={"protocol": "HTTP"}),
     "Pools must be named when creating a fully populated loadbalancer."),
    (lambda b: b["pools"].append({"name": "rr_pool", "protocol": "TCP",
                                  "lb_algorithm": "ROUND_ROBIN"}),
     "Pool names must be unique when creating a fully populated loadbalancer."),
    (lambda b: b["listeners"][1].update(default_pool={"name": "ghost"}),
     "Pool 'ghost' was referenced but no full definition was found."),
    (lambda b: b["pools"][0].pop("protocol"),
     "Pool definition for 'rr_pool' missing required attribute: protocol"),
])
def test_pool_naming_rules(api: Any, mutate: Any, message: str) -> None:
    body = full_body(api)
    mutate(body["loadbalancer"])
    code, answer = api.post(LBS, body)
    assert code == 400, answer
    assert message in answer["faultstring"]


def test_top_level_pools_need_no_name(api: Any) -> None:
    """Upstream requires names only of pools a listener or policy embeds; two unnamed
    top-level pools are "not unique" (its list of names holds None twice)."""
    pool = {"protocol": "TCP", "lb_algorithm": "ROUND_ROBIN"}
    subnet = api.subnet_id("public-subnet")
    code, body = api.post(LBS, {"loadbalancer": {"vip_subnet_id": subnet, "pools": [pool]}})
    assert code == 201 and body["loadbalancer"]["pools"][0]["name"] == "", body
    code, body = api.post(LBS, {"loadbalancer": {"vip_subnet_id": subnet,
                                                 "pools": [pool, pool]}})
    assert (code, body["faultstring"]) == (400, "Validation failure: Pool names must be unique "
                                                "when creating a fully populated loadbalancer.")


@pytest.mark.parametrize("mutate", [
    lambda b: b["pools"][0]["members"].append({"address": "192.0.2.16", "protocol_port": 80}),
    lambda b: b["pools"][0]["healthmonitor"].update(type="UDP-CONNECT"),
    lambda b: b["listeners"][1].update(protocol_port=80, protocol="HTTP"),
    lambda b: b["listeners"][0]["l7policies"][0]["rules"][0].update(value="(unclosed"),
    lambda b: b["pools"][0]["members"][0].update(address="not-an-ip"),
    lambda b: b["listeners"][0].update(l7policies="nope"),
])
def test_any_error_creates_nothing(api: Any, mutate: Any) -> None:
    body = full_body(api)
    mutate(body["loadbalancer"])
    code, answer = api.post(LBS, body)
    assert 400 <= code < 500 and answer["faultcode"] == "Client", answer
    assert api.get(LBS)[1]["loadbalancers"] == []
    for path in ("listeners", "pools", "healthmonitors", "l7policies"):
        assert api.get(f"/v2/lbaas/{path}")[1][path] == []
    # the VIP allocated for the failed attempt is free again
    code, body2 = api.post(LBS, full_body(api))
    assert code == 201, body2


def test_graph_policies_name_pools_not_ids(api: Any) -> None:
    body = full_body(api)
    body["loadbalancer"]["listeners"][0]["l7policies"][1]["redirect_pool_id"] = \
        "6d1cbd5e-2a2e-4c2d-9f1e-2b8d3d1f0a11"
    code, answer = api.post(LBS, body)
    assert code == 400 and "redirect_pool_id" in answer["faultstring"], answer


def test_amphora_provider_checks_are_skipped_as_upstream(api: Any) -> None:
    # Upstream's amphora driver only vets SOURCE_IP_PORT and L7-on-TCP on the single-object
    # endpoints; a graph create carrying them is accepted.
    body = full_body(api)
    lb = body["loadbalancer"]
    lb["pools"][0]["lb_algorithm"] = "SOURCE_IP_PORT"
    lb["listeners"][1]["l7policies"] = [{"action": "REJECT"}]
    code, answer = api.post(LBS, body)
    assert code == 201, answer
