"""Quota endpoints as clients see them (enforcement itself is off under noauth)."""

from __future__ import annotations

import pytest

from lbaas.api.policy import RequestContext

QUOTAS = "/v2/lbaas/quotas"
KEYS = ("loadbalancer", "load_balancer", "listener", "pool", "healthmonitor",
        "health_monitor", "member", "l7policy", "l7rule")


def quota(project, **values):
    out = {"project_id": project, "tenant_id": project}
    out.update({k: -1 for k in KEYS})
    out.update(values)
    return out


def test_defaults_are_unlimited(api):
    code, body = api.get(QUOTAS + "/defaults")
    assert code == 200
    assert body == {"quota": quota("defaults")}
    code, body = api.get("/v2.0/lbaas/quotas/defaults", headers={"X-Roles": "reader",
                                                                   "X-Project-Id": "p1"})
    assert code == 200


def test_defaults_follow_settings(service_factory):
    api = service_factory(quotas={"default_load_balancer_quota": 5,
                                  "default_health_monitor_quota": 0})
    code, body = api.get(QUOTAS + "/defaults")
    assert body["quota"]["loadbalancer"] == body["quota"]["load_balancer"] == 5
    assert body["quota"]["healthmonitor"] == body["quota"]["health_monitor"] == 0
    code, body = api.get(QUOTAS + "/p9/default")
    assert code == 200 and body == {"quota": quota("p9", loadbalancer=5, load_balancer=5,
                                                   healthmonitor=0, health_monitor=0)}
    code, body = api.get(QUOTAS + "/p9")
    assert body["quota"]["loadbalancer"] == 5


def test_project_without_row_shows_defaults_and_is_not_listed(api):
    code, body = api.get(QUOTAS + "/p1")
    assert code == 200 and body == {"quota": quota("p1")}
    code, body = api.get(QUOTAS)
    assert code == 200 and body == {"quotas": [], "quotas_links": []}


def test_put_any_subset_with_either_spelling(api):
    code, body = api.put(QUOTAS + "/p1", {"quota": {"load_balancer": 10, "health_monitor": 3,
                                                    "member": 0}})
    assert code == 202
    assert body == {"quota": quota("p1", loadbalancer=10, load_balancer=10, healthmonitor=3,
                                   health_monitor=3, member=0)}
    code, body = api.put(QUOTAS + "/p1", {"quota": {"loadbalancer": 20, "l7rule": 2000000000}})
    assert code == 202
    assert body["quota"]["load_balancer"] == 20 and body["quota"]["healthmonitor"] == 3
    assert body["quota"]["l7rule"] == 2000000000
    code, body = api.get(QUOTAS + "/p1")
    assert body["quota"] == quota("p1", loadbalancer=20, load_balancer=20, healthmonitor=3,
                                  health_monitor=3, member=0, l7rule=2000000000)
    # both spellings: the current one wins
    code, body = api.put(QUOTAS + "/p1", {"quota": {"load_balancer": 1, "loadbalancer": 2}})
    assert body["quota"]["loadbalancer"] == 2


def test_put_null_returns_a_limit_to_the_default(service_factory):
    api = service_factory(quotas={"default_pool_quota": 7})
    api.put(QUOTAS + "/p1", {"quota": {"pool": 3, "listener": 4}})
    code, body = api.put(QUOTAS + "/p1", {"quota": {"pool": None}})
    assert code == 202
    assert body["quota"]["pool"] == 7 and body["quota"]["listener"] == 4
    code, body = api.get(QUOTAS)
    assert body["quotas"][0]["pool"] == 7 and body["quotas"][0]["listener"] == 4


@pytest.mark.parametrize(("body", "message"), [
    ({"quota": {"loadbalancer": -2}},
     "Invalid input for field/attribute loadbalancer. Value: '-2'. Value should be greater or "
     "equal to -1"),
    ({"quota": {"pool": 2000000001}},
     "Invalid input for field/attribute pool. Value: '2000000001'. Value should be lower or "
     "equal to 2000000000"),
    ({"quota": {"member": "lots"}}, None),
    ({"quota": {"member": True}}, None),
    ({"quota": {"bogus": 1}}, None),
    ({"quota": {"project_id": "p2"}}, None),
    ({"quotas": {"pool": 1}}, None),
])
def test_put_validation(api, body, message):
    code, resp = api.put(QUOTAS + "/p1", body)
    assert code == 400
    if message:
        assert resp["faultstring"] == message
    assert api.get(QUOTAS)[1]["quotas"] == []


def test_put_project_id_longer_than_a_project_id(api):
    code, body = api.put(QUOTAS + "/" + "p" * 37, {"quota": {"pool": 1}})
    assert code == 400 and "maximum character requirement of 36" in body["faultstring"]
    assert api.get(QUOTAS)[1]["quotas"] == []


def test_list_shows_effective_rows_with_filter_and_pagination(api):
    for project in ("p3", "p1", "p2"):
        api.put(f"{QUOTAS}/{project}", {"quota": {"pool": 1}})
    code, body = api.get(QUOTAS)
    assert code == 200
    assert [q["project_id"] for q in body["quotas"]] == ["p1", "p2", "p3"]
    assert body["quotas"][0] == {"project_id": "p1", "tenant_id": "p1", "loadbalancer": -1,
                                 "load_balancer": -1, "listener": -1, "pool": 1,
                                 "healthmonitor": -1, "health_monitor": -1,
                                 "member": -1, "l7policy": -1, "l7rule": -1}
    code, body = api.get(QUOTAS + "?project_id=p2")
    assert [q["project_id"] for q in body["quotas"]] == ["p2"]
    code, body = api.get(QUOTAS + "?limit=2")
    assert [q["project_id"] for q in body["quotas"]] == ["p1", "p2"]
    assert body["quotas_links"][0]["rel"] == "next"
    assert "marker=p2" in body["quotas_links"][0]["href"]
    code, body = api.get(QUOTAS + "?limit=2&marker=p2")
    assert [q["project_id"] for q in body["quotas"]] == ["p3"]
    code, body = api.get(QUOTAS + "?sort=project_id:desc&fields=project_id")  # fields ignored
    assert [q["project_id"] for q in body["quotas"]] == ["p3", "p2", "p1"]
    assert body["quotas"][0]["pool"] == 1
    code, body = api.get(QUOTAS + "?marker=nope")
    assert code == 400
    code, body = api.get(QUOTAS + "?colour=red")
    assert code == 400


def test_delete_resets_but_keeps_the_row(api):
    code, body = api.delete(QUOTAS + "/p1")
    assert code == 404 and body["faultstring"] == "Quotas p1 not found."
    api.put(QUOTAS + "/p1", {"quota": {"loadbalancer": 2, "l7policy": 9}})
    code, body = api.delete(QUOTAS + "/p1")
    assert code == 202 and body is None
    code, body = api.get(QUOTAS + "/p1")
    assert body == {"quota": quota("p1")}
    code, body = api.get(QUOTAS)
    assert [q["loadbalancer"] for q in body["quotas"]] == [-1]
    assert api.delete(QUOTAS + "/p1")[0] == 202


def test_defaults_path_is_not_a_project(api):
    code, _ = api.put(QUOTAS + "/defaults", {"quota": {"pool": 1}})
    assert code == 405
    code, body = api.get(QUOTAS + "/defaults")
    assert body["quota"]["pool"] == -1


class TokenAs:
    """Stands in for Keystone: every request carries this project and these roles."""

    def __init__(self, project, *roles):
        self.context = RequestContext(project_id=project, roles=frozenset(roles),
                                      is_admin="admin" in roles)

    async def authenticate(self, _req):
        return self.context


def login(api, project, *roles):
    api.service.app.authenticator = TokenAs(project, *roles)


def test_rbac_with_token_contexts(api):
    login(api, "ops", "admin")
    api.put(QUOTAS + "/p1", {"quota": {"pool": 1}})
    api.put(QUOTAS + "/p2", {"quota": {"pool": 2}})
    login(api, "p1", "reader")
    assert api.get(QUOTAS + "/defaults")[0] == 200
    assert api.get(QUOTAS + "/p1")[1]["quota"]["pool"] == 1
    assert api.get(QUOTAS + "/p1/default")[0] == 200
    code, body = api.get(QUOTAS)
    assert [q["project_id"] for q in body["quotas"]] == ["p1"]
    for method, path, body in (("get", QUOTAS + "/p2", None), ("get", QUOTAS + "/p2/default", None),
                               ("get", QUOTAS + "?project_id=p2", None),
                               ("put", QUOTAS + "/p1", {"quota": {"pool": 5}}),
                               ("delete", QUOTAS + "/p1", None)):
        code, resp = api.call(method.upper(), path, body)
        assert code == 403, path
        assert resp["faultstring"] == "Policy does not allow this request to be performed."
    login(api, "ops", "admin")
    code, body = api.get(QUOTAS)
    assert [q["project_id"] for q in body["quotas"]] == ["p1", "p2"]


def test_quota_is_enforced_for_token_callers(api):
    login(api, "ops", "admin")
    api.put(QUOTAS + "/p1", {"quota": {"loadbalancer": 1}})
    login(api, "p1", "member")
    api.create_lb()
    code, body = api.post("/v2/lbaas/loadbalancers", {"loadbalancer": {
        "vip_subnet_id": api.subnet_id("public-subnet")}})
    assert code == 403
    assert body["faultstring"] == "Quota has been met for resources: Load Balancer"
    login(api, "ops", "admin")
    api.put(QUOTAS + "/p1", {"quota": {"load_balancer": None}})  # back to unlimited
    login(api, "p1", "member")
    api.create_lb()
