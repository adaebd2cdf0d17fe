"""Octavia's RBAC through a real Keystone: tokens validated by keystonemiddleware, objects scoped
to the token's project, the default roles (new and deprecated), policy-file overrides, quotas."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import insert

from lbaas.store import tables as t

LBS = "/v2/lbaas/loadbalancers"
FORBIDDEN = "Policy does not allow this request to be performed."
UNAUTHORIZED = {"error": {"code": 401, "title": "Unauthorized",
                          "message": "The request you have made requires authentication."}}


def lb_body(api: Any, **fields: Any) -> dict[str, Any]:
    return {"loadbalancer": {"vip_subnet_id": api.subnet_id("public-subnet"), **fields}}


def assert_forbidden(result: tuple[int, Any]) -> None:
    code, body = result
    assert code == 403, body
    assert body["faultstring"] == FORBIDDEN


def listed(api: Any, query: str = "") -> set[str]:
    code, body = api.get(LBS + query)
    assert code == 200, body
    return {lb["id"] for lb in body["loadbalancers"]}


@pytest.fixture()
def two_projects(keystone_api: Any) -> Any:
    """New defaults; one load balancer created by a member of each project."""
    users = keystone_api()
    users.lb_a = users["member-a"].create_lb(name="lb-a")
    users.lb_b = users["member-b"].create_lb(name="lb-b")
    return users


def test_missing_or_invalid_token_is_401(keystone_api: Any, tokens: Any,
                                         keystone: Any) -> None:
    users = keystone_api()
    anonymous = users.anonymous
    assert anonymous.get(LBS) == (401, UNAUTHORIZED)
    assert anonymous.get(LBS, headers={"X-Auth-Token": "not-a-token"}) == (401, UNAUTHORIZED)
    assert anonymous.post(LBS, lb_body(anonymous)) == (401, UNAUTHORIZED)
    # Identity headers from the client are ignored: only the token says who the caller is.
    spoofed = {"X-Roles": "admin", "X-Project-Id": "A", "X-Identity-Status": "Confirmed"}
    assert anonymous.get(LBS, headers=spoofed) == (401, UNAUTHORIZED)
    # A token Keystone has revoked is refused too.
    revoked = tokens.fresh("member-a")
    with keystone.admin_client() as kc:
        assert kc.delete("/auth/tokens", headers={"X-Subject-Token": revoked}).status_code == 204
    assert anonymous.get(LBS, headers={"X-Auth-Token": revoked}) == (401, UNAUTHORIZED)
    # The version document stays public.
    assert anonymous.get("/")[0] == 200


def test_spoofed_role_headers_do_not_raise_privileges(two_projects: Any) -> None:
    users = two_projects
    lb_b = users.lb_b["id"]
    spoofed = {"X-Roles": "admin", "X-Project-Id": users.lb_b["project_id"]}
    assert_forbidden(users["member-a"].get(f"{LBS}/{lb_b}", headers=spoofed))
    assert_forbidden(users["member-a"].put(f"{LBS}/{users.lb_a['id']}/failover",
                                           headers=spoofed))


def test_objects_belong_to_the_token_project(two_projects: Any, project: dict[str, str]) -> None:
    users = two_projects
    assert users.lb_a["project_id"] == project["A"]
    assert users.lb_b["project_id"] == project["B"]


def test_project_cannot_see_or_change_another_projects_load_balancers(
        two_projects: Any, project: dict[str, str]) -> None:
    users = two_projects
    member_a = users["member-a"]
    lb_a, lb_b = users.lb_a["id"], users.lb_b["id"]
    assert_forbidden(member_a.get(f"{LBS}/{lb_b}"))
    assert_forbidden(member_a.get(f"{LBS}/{lb_b}/stats"))
    assert_forbidden(member_a.get(f"{LBS}/{lb_b}/status"))
    assert_forbidden(member_a.put(f"{LBS}/{lb_b}", {"loadbalancer": {"name": "stolen"}}))
    assert_forbidden(member_a.delete(f"{LBS}/{lb_b}"))
    assert listed(member_a) == {lb_a}
    assert listed(member_a, f"?project_id={project['A']}") == {lb_a}
    assert_forbidden(member_a.get(f"{LBS}?project_id={project['B']}"))
    # Creating in someone else's project is refused as well.
    assert_forbidden(member_a.post(LBS, lb_body(member_a, project_id=project["B"])))
    # B's load balancer is untouched, and B still sees only its own.
    code, body = users["member-b"].get(f"{LBS}/{lb_b}")
    assert code == 200
    assert (body["loadbalancer"]["name"], body["loadbalancer"]["provisioning_status"]) == \
        ("lb-b", "ACTIVE")
    assert listed(users["member-b"]) == {lb_b}


def test_member_writes_its_own_project(two_projects: Any) -> None:
    member_a = two_projects["member-a"]
    lb_a = two_projects.lb_a["id"]
    code, body = member_a.put(f"{LBS}/{lb_a}", {"loadbalancer": {"name": "renamed"}})
    assert code == 200, body
    assert member_a.wait_lb(lb_a)["name"] == "renamed"
    assert member_a.delete(f"{LBS}/{lb_a}")[0] == 204
    member_a.wait_lb(lb_a, "DELETED")


def test_reader_reads_its_project_but_cannot_write(two_projects: Any) -> None:
    reader = two_projects["reader-a"]
    lb_a, lb_b = two_projects.lb_a["id"], two_projects.lb_b["id"]
    assert reader.get(f"{LBS}/{lb_a}")[0] == 200
    assert reader.get(f"{LBS}/{lb_a}/stats")[0] == 200
    assert reader.get(f"{LBS}/{lb_a}/status")[0] == 200
    assert listed(reader) == {lb_a}
    assert_forbidden(reader.get(f"{LBS}/{lb_b}"))
    assert_forbidden(reader.post(LBS, lb_body(reader)))
    assert_forbidden(reader.put(f"{LBS}/{lb_a}", {"loadbalancer": {"name": "x"}}))
    assert_forbidden(reader.delete(f"{LBS}/{lb_a}"))
    assert reader.get(f"{LBS}/{lb_a}")[1]["loadbalancer"]["name"] == "lb-a"


def test_roles_without_load_balancer_meaning_get_nothing(two_projects: Any) -> None:
    unrelated = two_projects["unrelated-a"]
    assert_forbidden(unrelated.get(LBS))
    assert_forbidden(unrelated.get(f"{LBS}/{two_projects.lb_a['id']}"))
    assert_forbidden(unrelated.post(LBS, lb_body(unrelated)))


def test_admin_does_everything_under_new_defaults(two_projects: Any,
                                                   project: dict[str, str]) -> None:
    users = two_projects
    admin = users["admin-a"]  # admin role in project A: global under Octavia's rules
    lb_a, lb_b = users.lb_a["id"], users.lb_b["id"]
    assert listed(admin) == {lb_a, lb_b}
    assert listed(admin, f"?project_id={project['B']}") == {lb_b}
    assert admin.get(f"{LBS}/{lb_b}")[0] == 200
    code, body = admin.put(f"{LBS}/{lb_b}", {"loadbalancer": {"name": "by-admin"}})
    assert code == 200, body
    admin.wait_lb(lb_b)
    assert admin.put(f"{LBS}/{lb_b}/failover")[0] == 202
    admin.wait_lb(lb_b)
    # Members cannot fail over even their own load balancer.
    assert_forbidden(users["member-a"].put(f"{LBS}/{lb_a}/failover"))
    # The admin may create for another project and delete it again.
    created = admin.post(LBS, lb_body(admin, project_id=project["B"]))
    assert created[0] == 201, created
    new_id = created[1]["loadbalancer"]["id"]
    assert created[1]["loadbalancer"]["project_id"] == project["B"]
    admin.wait_lb(new_id)
    assert admin.delete(f"{LBS}/{new_id}")[0] == 204
    admin.wait_lb(new_id, "DELETED")
    assert listed(users["member-b"]) == {lb_b}


def test_advanced_rbac_roles_only_count_without_new_defaults(keystone_api: Any) -> None:
    users = keystone_api(enforce_new_defaults=True)
    lb_a = users["member-a"].create_lb(name="lb-a")["id"]
    for user in ("observer-a", "lbmember-a", "global-observer-a", "lbadmin-a"):
        assert_forbidden(users[user].get(f"{LBS}/{lb_a}"))
    assert_forbidden(users["lbmember-a"].post(LBS, lb_body(users["lbmember-a"])))


def test_advanced_rbac_roles_with_deprecated_defaults(keystone_api: Any,
                                                      project: dict[str, str]) -> None:
    users = keystone_api(enforce_new_defaults=False)
    lb_a = users["lbmember-a"].create_lb(name="lb-a")["id"]
    lb_b = users["member-b"].create_lb(name="lb-b")["id"]
    observer = users["observer-a"]
    assert observer.get(f"{LBS}/{lb_a}")[0] == 200
    assert listed(observer) == {lb_a}
    assert_forbidden(observer.get(f"{LBS}/{lb_b}"))
    assert_forbidden(observer.put(f"{LBS}/{lb_a}", {"loadbalancer": {"name": "x"}}))
    assert_forbidden(users["lbmember-a"].get(f"{LBS}/{lb_b}"))
    assert_forbidden(users["lbmember-a"].put(f"{LBS}/{lb_a}/failover"))
    # The global observer reads every project but writes none.
    glob = users["global-observer-a"]
    assert listed(glob) == {lb_a, lb_b}
    assert listed(glob, f"?project_id={project['B']}") == {lb_b}
    assert glob.get(f"{LBS}/{lb_b}")[0] == 200
    assert_forbidden(glob.put(f"{LBS}/{lb_b}", {"loadbalancer": {"name": "x"}}))
    assert_forbidden(glob.put(f"{LBS}/{lb_a}", {"loadbalancer": {"name": "x"}}))
    assert_forbidden(glob.post(LBS, lb_body(glob)))
    # load-balancer_admin is a full admin.
    lbadmin = users["lbadmin-a"]
    assert listed(lbadmin) == {lb_a, lb_b}
    assert lbadmin.put(f"{LBS}/{lb_b}", {"loadbalancer": {"name": "by-lbadmin"}})[0] == 200
    lbadmin.wait_lb(lb_b)
    assert lbadmin.put(f"{LBS}/{lb_b}/failover")[0] == 202
    lbadmin.wait_lb(lb_b)
    # Keystone's default roles keep working alongside.
    assert listed(users["reader-a"]) == {lb_a}
    assert listed(users["admin-a"]) == {lb_a, lb_b}


def test_policy_file_overrides_outcomes(keystone_api: Any, tmp_path: Any) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "# only admins create load balancers here\n"
        '"os_load-balancer_api:loadbalancer:post": "rule:load-balancer:admin"\n'
        "# and owners may fail over their own\n"
        '"os_load-balancer_api:loadbalancer:put_failover": '
        '"rule:load-balancer:member_and_owner or rule:load-balancer:admin"\n'
        "# readers see nothing beyond their own project, even the ones called admin\n"
        '"load-balancer:global_observer": "!"\n')
    users = keystone_api(policy_file=str(policy))
    member_a = users["member-a"]
    assert_forbidden(member_a.post(LBS, lb_body(member_a)))
    lb_a = users["admin-a"].create_lb(name="lb-a")["id"]
    assert member_a.put(f"{LBS}/{lb_a}/failover")[0] == 202
    member_a.wait_lb(lb_a)
    assert_forbidden(users["member-b"].put(f"{LBS}/{lb_a}/failover"))
    # Rules the file does not name keep Octavia's defaults.
    assert member_a.put(f"{LBS}/{lb_a}", {"loadbalancer": {"name": "x"}})[0] == 200
    member_a.wait_lb(lb_a)
    assert_forbidden(users["reader-a"].put(f"{LBS}/{lb_a}", {"loadbalancer": {"name": "y"}}))


def test_policy_file_base_rule_override_reaches_every_action(keystone_api: Any,
                                                             tmp_path: Any) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text('{"load-balancer:observer_and_owner": "!"}')
    users = keystone_api(policy_file=str(policy))
    lb_a = users["member-a"].create_lb()["id"]
    assert_forbidden(users["reader-a"].get(f"{LBS}/{lb_a}"))
    assert_forbidden(users["reader-a"].get(LBS))
    assert users["member-a"].get(f"{LBS}/{lb_a}")[0] == 200


def set_quota(users: Any, project_id: str, load_balancers: int) -> None:
    """PUT the quota as admin; write the row directly while the quota API is not there."""
    admin = users["admin-a"]
    code, body = admin.put(f"/v2/lbaas/quotas/{project_id}",
                           {"quota": {"load_balancer": load_balancers}})
    if code in (404, 405):
        with admin.service.engine.begin() as conn:
            conn.execute(insert(t.quota).values(project_id=project_id,
                                                load_balancer=load_balancers))
        return
    assert code == 202, body
    assert body["quota"]["load_balancer"] == load_balancers


def test_quotas_are_enforced_under_keystone(keystone_api: Any, project: dict[str, str]) -> None:
    users = keystone_api()
    set_quota(users, project["A"], 1)
    member_a = users["member-a"]
    member_a.create_lb(name="first")
    code, body = member_a.post(LBS, lb_body(member_a, name="second"))
    assert (code, body["faultstring"]) == (403, "Quota has been met for resources: "
                                                "Load Balancer")
    # Other projects are not limited by A's quota.
    users["member-b"].create_lb(name="b1")
    users["member-b"].create_lb(name="b2")


def test_members_cannot_change_quotas(keystone_api: Any, project: dict[str, str]) -> None:
    users = keystone_api()
    code, _ = users["admin-a"].get(f"/v2/lbaas/quotas/{project['A']}")
    if code == 404:
        pytest.skip("the quota API is not available yet")
    assert_forbidden(users["member-a"].put(f"/v2/lbaas/quotas/{project['A']}",
                                           {"quota": {"load_balancer": 100}}))
    assert users["member-a"].get(f"/v2/lbaas/quotas/{project['A']}")[0] == 200
    assert_forbidden(users["member-a"].get(f"/v2/lbaas/quotas/{project['B']}"))


def test_validated_tokens_are_cached(keystone_api: Any, monkeypatch: Any) -> None:
    users = keystone_api()
    auth = users.anonymous.service.app.authenticator
    identity = auth.middleware._identity_server
    calls: list[str] = []
    verify = identity.verify_token

    def counting(token: str, **kw: Any) -> Any:
        calls.append(token)
        return verify(token, **kw)

    monkeypatch.setattr(identity, "verify_token", counting)
    for _ in range(3):
        assert users["reader-a"].get(LBS)[0] == 200
        assert users["member-a"].get(LBS)[0] == 200
    assert len(calls) == 2  # one trip to Keystone per token, then the cache
    assert auth.cache.size() == 2


def test_keystone_refusing_the_service_user_is_503(keystone_api: Any) -> None:
    users = keystone_api(keystone_settings={"password": "wrong"})
    code, body = users["member-a"].get(LBS)
    assert code == 503, body
    assert body["faultstring"] == "The Keystone service is temporarily unavailable."
