"""L7 policy and L7 rule endpoints as clients see them.

Listeners and pools are created through their own endpoints; the database is only read to
observe statuses and written to simulate states a client cannot produce.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, update

from lbaas.api.policy import RequestContext
from lbaas.store import tables as t

POLICIES = "/v2/lbaas/l7policies"
LISTENERS = "/v2/lbaas/listeners"
POOLS = "/v2/lbaas/pools"

POLICY_KEYS = {
    "id", "name", "description", "provisioning_status", "operating_status", "admin_state_up",
    "project_id", "tenant_id", "action", "listener_id", "redirect_pool_id", "redirect_url",
    "redirect_prefix", "position", "rules", "created_at", "updated_at", "tags",
    "redirect_http_code",
}
RULE_KEYS = {
    "id", "type", "compare_type", "key", "value", "invert", "provisioning_status",
    "operating_status", "created_at", "updated_at", "project_id", "tenant_id",
    "admin_state_up", "tags",
}


def add_listener(api: Any, lb: dict[str, Any], protocol: str = "HTTP", port: int = 80) -> str:
    code, body = api.post(LISTENERS, {"listener": {
        "loadbalancer_id": lb["id"], "protocol": protocol, "protocol_port": port}})
    assert code == 201, body
    api.wait_lb(lb["id"])
    return body["listener"]["id"]


def insert_listener(api: Any, lb: dict[str, Any], protocol: str, port: int) -> str:
    """A listener row straight in the database (TERMINATED_HTTPS would need certificates)."""
    listener_id = str(uuid.uuid4())
    with api.service.engine.begin() as conn:
        conn.execute(t.listener.insert().values(
            id=listener_id, project_id=lb["project_id"], load_balancer_id=lb["id"],
            provisioning_status="ACTIVE", operating_status="ONLINE", admin_state_up=True,
            protocol=protocol, protocol_port=port, connection_limit=-1,
            created_at=datetime.now(UTC).replace(tzinfo=None)))
    return listener_id


def add_pool(api: Any, lb: dict[str, Any], protocol: str = "HTTP") -> str:
    code, body = api.post(POOLS, {"pool": {"loadbalancer_id": lb["id"], "protocol": protocol,
                                           "lb_algorithm": "ROUND_ROBIN"}})
    assert code == 201, body
    api.wait_lb(lb["id"])
    return body["pool"]["id"]


def status_of(api: Any, table: Any, ident: str) -> str:
    with api.service.engine.connect() as conn:
        return conn.execute(select(table.c.provisioning_status)
                            .where(table.c.id == ident)).scalar_one()


def set_status(api: Any, table: Any, ident: str, status: str) -> None:
    with api.service.engine.begin() as conn:
        conn.execute(update(table).where(table.c.id == ident)
                     .values(provisioning_status=status))


@contextlib.contextmanager
def paused(api: Any) -> Iterator[None]:
    """Hold back the reconciler (handlers' notify and the resync loop)."""
    state, queue = api.service.app.state, api.service.queue
    original = state.notify
    held: list[str] = []
    state.notify = queue.notify = held.append
    api.client.portal.call(queue.wait_idle)  # let a reconcile already under way finish
    try:
        yield
    finally:
        del queue.notify
        state.notify = original
        for lb_id in set(held):
            original(lb_id)


def enforce_quotas(api: Any) -> None:
    """Quotas are off under noauth; authenticate as a (non-noauth) admin instead."""
    class Admin:
        async def authenticate(self, req: Any) -> RequestContext:
            return RequestContext(project_id="admin", roles=frozenset({"admin"}),
                                  is_admin=True, noauth=False)

    api.service.app.authenticator = Admin()


def fault(result: tuple[int, Any]) -> tuple[int, str]:
    code, body = result
    return code, body["faultstring"]


def parent_missing(policy_id: str) -> dict[str, Any]:
    """Upstream raises its NotFound in the policy controller's _lookup: webob's body."""
    return {"code": 404, "title": "Bad Request", "description": f"L7Policy {policy_id} not found."}


@pytest.fixture()
def env(api: Any) -> dict[str, Any]:
    lb = api.create_lb(name="lb")
    return {"api": api, "lb": lb, "listener": add_listener(api, lb),
            "pool": add_pool(api, lb)}


def post_policy(api: Any, listener: str, **fields: Any) -> tuple[int, Any]:
    return api.post(POLICIES, {"l7policy": {"listener_id": listener, "action": "REJECT",
                                            **fields}})


def make_policy(env: dict[str, Any], **fields: Any) -> dict[str, Any]:
    code, body = post_policy(env["api"], env["listener"], **fields)
    assert code == 201, body
    env["api"].wait_lb(env["lb"]["id"])
    return body["l7policy"]


def rules_url(policy_id: str) -> str:
    return f"{POLICIES}/{policy_id}/rules"


def make_rule(env: dict[str, Any], policy_id: str, **fields: Any) -> dict[str, Any]:
    body = {"type": "PATH", "compare_type": "STARTS_WITH", "value": "/api", **fields}
    code, data = env["api"].post(rules_url(policy_id), {"rule": body})
    assert code == 201, data
    env["api"].wait_lb(env["lb"]["id"])
    return data["rule"]


def positions(api: Any, listener: str) -> list[tuple[str, int]]:
    code, body = api.get(f"{POLICIES}?listener_id={listener}&sort=position")
    assert code == 200
    return [(p["id"], p["position"]) for p in body["l7policies"]]


# policy create ----------------------------------------------------------------------------------
def test_create_reject_locks_listener_then_active(env):
    api, lb, listener = env["api"], env["lb"], env["listener"]
    with paused(api):
        code, body = post_policy(api, listener, name="p", description="d", tags=["x"])
        assert code == 201, body
        pol = body["l7policy"]
        assert set(pol) == POLICY_KEYS
        assert (pol["provisioning_status"], pol["operating_status"]) == (
            "PENDING_CREATE", "OFFLINE")
        assert pol["position"] == 1 and pol["rules"] == []
        assert pol["redirect_http_code"] is None and pol["redirect_url"] is None
        assert pol["tenant_id"] == pol["project_id"] == lb["project_id"]
        assert status_of(api, t.listener, listener) == "PENDING_UPDATE"
        assert status_of(api, t.load_balancer, lb["id"]) == "PENDING_UPDATE"
        assert fault(post_policy(api, listener)) == (
            409, f"Load Balancer {lb['id']} is immutable and cannot be updated.")
    api.wait_lb(lb["id"])
    view = api.get(f"{POLICIES}/{pol['id']}")[1]["l7policy"]
    assert (view["provisioning_status"], view["operating_status"]) == ("ACTIVE", "ONLINE")
    assert status_of(api, t.listener, listener) == "ACTIVE"


def test_redirect_actions_and_default_code(env):
    url = make_policy(env, action="REDIRECT_TO_URL", redirect_url="https://example.com/a?b=1")
    assert url["redirect_url"] == "https://example.com/a?b=1"
    assert url["redirect_http_code"] == 302 and url["redirect_pool_id"] is None
    prefix = make_policy(env, action="REDIRECT_PREFIX", redirect_prefix="http://example.com",
                         redirect_http_code=308)
    assert prefix["redirect_prefix"] == "http://example.com"
    assert prefix["redirect_http_code"] == 308
    pool = make_policy(env, action="REDIRECT_TO_POOL", redirect_pool_id=env["pool"],
                       redirect_http_code=301)
    assert pool["redirect_pool_id"] == env["pool"] and pool["redirect_http_code"] is None
    reject = make_policy(env, redirect_url="http://ignored.example")
    # REJECT clears the URL before a lone URL could switch the action (upstream order).
    assert reject["action"] == "REJECT" and reject["redirect_url"] is None


@pytest.mark.parametrize(("fields", "message"), [
    ({"action": "REDIRECT_TO_URL"},
     "Invalid L7 Policy arguments: redirect_url must not be None"),
    ({"action": "REDIRECT_PREFIX"},
     "Invalid L7 Policy arguments: redirect_prefix must not be None"),
    ({"action": "REDIRECT_TO_POOL"},
     "Invalid L7 Policy arguments: redirect_pool_id or redirect_pool must not be None"),
    ({"action": "REDIRECT_TO_POOL", "redirect_pool_id": "POOL",
      "redirect_prefix": "http://a.example"},
     "Invalid L7 Policy arguments: Cannot specify redirect_pool_id and redirect_url or "
     "redirect_prefix at the same time"),
])
def test_action_argument_rules(env, fields, message):
    if fields.get("redirect_pool_id") == "POOL":
        fields["redirect_pool_id"] = env["pool"]
    assert fault(post_policy(env["api"], env["listener"], **fields)) == (400, message)


@pytest.mark.parametrize("url", [
    "ftp://example.com/", "example.com/path", "http://", "http:///path", "http://a b.example/",
    "http://example.com/\x07", "http://example.com:port/", "http://example.com/%zz",
    "https://example.com/\u00e9",
])
def test_redirect_url_syntax(env, url):
    for key, action in (("redirect_url", "REDIRECT_TO_URL"),
                        ("redirect_prefix", "REDIRECT_PREFIX")):
        code, body = post_policy(env["api"], env["listener"], action=action, **{key: url})
        assert code == 400, body
        assert body["faultstring"].endswith("Value must be a valid URL string")


@pytest.mark.parametrize(("fields", "needle"), [
    ({"action": "FORWARD"}, "Value should be one of: REJECT, REDIRECT_TO_URL"),
    ({"redirect_http_code": 304, "action": "REDIRECT_TO_URL",
      "redirect_url": "http://a.example"}, "Value should be one of: 301, 302, 303, 307, 308"),
    ({"position": 0}, "Value should be greater or equal to 1"),
    ({"position": 2147483648}, "Value should be lower or equal to 2147483647"),
    ({"listener_id": None}, "Mandatory field missing."),
    ({"action": None}, "Invalid input for field/attribute action. Value: 'None'. Mandatory "
                       "field missing."),
    ({"name": "n" * 256}, "field/attribute name"),
    ({"redirect_pool_id": "x"}, "Value should be UUID format"),
    ({"bogus": True}, "Unknown attribute"),
])
def test_policy_field_validation(env, fields, needle):
    code, body = post_policy(env["api"], env["listener"], **fields)
    assert code == 400, body
    assert needle in body["faultstring"]


def test_listener_and_pool_lookups(env):
    api, lb, listener = env["api"], env["lb"], env["listener"]
    missing = str(uuid.uuid4())
    assert fault(post_policy(api, missing)) == (404, f"Listener {missing} not found.")
    assert fault(post_policy(api, listener, action="REDIRECT_TO_POOL",
                             redirect_pool_id=missing)) == (404, f"Pool {missing} not found.")
    other_lb = api.create_lb(name="other")
    foreign = add_pool(api, other_lb)
    assert fault(post_policy(api, listener, action="REDIRECT_TO_POOL",
                             redirect_pool_id=foreign)) == (404, f"Pool {foreign} not found.")
    udp = add_pool(api, lb, "UDP")
    assert fault(post_policy(api, listener, action="REDIRECT_TO_POOL",
                             redirect_pool_id=udp)) == (
        400, "Validation failure: The pool protocol 'UDP' is invalid while the listener "
             "protocol is 'HTTP'.")
    for protocol in ("PROXY", "PROXYV2"):
        pool = add_pool(api, lb, protocol)
        code, body = post_policy(api, listener, action="REDIRECT_TO_POOL", redirect_pool_id=pool)
        assert code == 201, body
        api.wait_lb(lb["id"])


def test_listener_protocol_rules(env):
    api, lb = env["api"], env["lb"]
    prom = add_listener(api, lb, "PROMETHEUS", 9100)
    assert fault(post_policy(api, prom)) == (
        400, "Protocol PROMETHEUS listeners cannot have child objects.")
    tcp = add_listener(api, lb, "TCP", 81)
    assert fault(post_policy(api, tcp)) == (
        501, "Provider 'amphora' does not support a requested option: TCP protocol listeners "
             "do not support L7 policies")
    assert status_of(api, t.load_balancer, lb["id"]) == "ACTIVE"  # rolled back
    tls = insert_listener(api, lb, "TERMINATED_HTTPS", 443)
    code, _ = post_policy(api, tls)
    assert code == 201


def test_noop_provider_accepts_tcp_listener_policies(api):
    lb = api.create_lb(provider="noop")
    tcp = add_listener(api, lb, "TCP", 81)
    code, body = post_policy(api, tcp)
    assert code == 201, body


def test_rules_created_with_policy(env):
    api = env["api"]
    pol = make_policy(env, rules=[
        {"type": "HOST_NAME", "compare_type": "EQUAL_TO", "value": "www.example.com"},
        {"type": "HEADER", "compare_type": "CONTAINS", "key": "X-Env", "value": "prod",
         "invert": True, "tags": ["r"]},
    ])
    assert len(pol["rules"]) == 2
    code, body = api.get(rules_url(pol["id"]))
    assert code == 200
    assert [r["id"] for r in body["rules"]] == [r["id"] for r in pol["rules"]]
    assert [r["type"] for r in body["rules"]] == ["HOST_NAME", "HEADER"]
    header = body["rules"][1]
    assert header["invert"] is True and header["key"] == "X-Env" and header["tags"] == ["r"]
    assert header["provisioning_status"] == "ACTIVE" and header["operating_status"] == "ONLINE"


def test_rules_with_policy_validated_and_capped(env):
    api, listener, lb = env["api"], env["listener"], env["lb"]
    code, body = post_policy(api, listener, rules=[
        {"type": "HEADER", "compare_type": "EQUAL_TO", "value": "x"}])
    assert (code, body["faultstring"]) == (
        400, "Error parsing L7Rule: Invalid L7 Rule: L7 rule type requires a key")
    rule = {"type": "PATH", "compare_type": "STARTS_WITH", "value": "/a"}
    code, body = post_policy(api, listener, rules=[rule] * 51)
    assert code == 409 and body["faultstring"].startswith("Too many rules on L7 policy ")
    assert api.get(POLICIES)[1]["l7policies"] == []
    assert status_of(api, t.load_balancer, lb["id"]) == "ACTIVE"


# positions --------------------------------------------------------------------------------------
def test_positions_insert_append_move_and_close_gaps(env):
    api, listener = env["api"], env["listener"]
    a = make_policy(env, name="a")["id"]
    b = make_policy(env, name="b")["id"]
    c = make_policy(env, name="c", position=99)["id"]
    assert positions(api, listener) == [(a, 1), (b, 2), (c, 3)]
    d = make_policy(env, name="d", position=1)
    assert d["position"] == 1
    d = d["id"]
    assert positions(api, listener) == [(d, 1), (a, 2), (b, 3), (c, 4)]
    e = make_policy(env, name="e", position=3)["id"]
    assert positions(api, listener) == [(d, 1), (a, 2), (e, 3), (b, 4), (c, 5)]
    code, body = api.put(f"{POLICIES}/{d}", {"l7policy": {"position": 4}})
    assert code == 200 and body["l7policy"]["position"] == 4
    api.wait_lb(env["lb"]["id"])
    assert positions(api, listener) == [(a, 1), (e, 2), (b, 3), (d, 4), (c, 5)]
    code, body = api.put(f"{POLICIES}/{c}", {"l7policy": {"position": 1}})
    assert code == 200
    api.wait_lb(env["lb"]["id"])
    assert positions(api, listener) == [(c, 1), (a, 2), (e, 3), (b, 4), (d, 5)]
    code, body = api.put(f"{POLICIES}/{a}", {"l7policy": {"position": 1000}})
    assert body["l7policy"]["position"] == 5
    api.wait_lb(env["lb"]["id"])
    assert positions(api, listener) == [(c, 1), (e, 2), (b, 3), (d, 4), (a, 5)]
    assert api.delete(f"{POLICIES}/{e}")[0] == 204
    api.wait_lb(env["lb"]["id"])
    assert positions(api, listener) == [(c, 1), (b, 2), (d, 3), (a, 4)]


def test_positions_are_per_listener(env):
    api, lb = env["api"], env["lb"]
    other = add_listener(api, lb, "HTTP", 8080)
    make_policy(env)
    code, body = post_policy(api, other, position=5)
    assert code == 201 and body["l7policy"]["position"] == 1


# policy update ----------------------------------------------------------------------------------
def test_update_switches_action_from_lone_target(env):
    api, lb, pool = env["api"], env["lb"], env["pool"]
    pol = make_policy(env)
    url = f"{POLICIES}/{pol['id']}"
    code, body = api.put(url, {"l7policy": {"redirect_url": "http://a.example/"}})
    assert code == 200, body
    view = body["l7policy"]
    assert view["action"] == "REDIRECT_TO_URL" and view["redirect_http_code"] == 302
    assert view["provisioning_status"] == "PENDING_UPDATE"
    api.wait_lb(lb["id"])
    code, body = api.put(url, {"l7policy": {"redirect_pool_id": pool}})
    view = body["l7policy"]
    assert view["action"] == "REDIRECT_TO_POOL" and view["redirect_pool_id"] == pool
    assert view["redirect_url"] is None and view["redirect_http_code"] is None
    api.wait_lb(lb["id"])
    code, body = api.put(url, {"l7policy": {"redirect_prefix": "https://b.example",
                                            "redirect_http_code": 307}})
    view = body["l7policy"]
    assert view["action"] == "REDIRECT_PREFIX" and view["redirect_pool_id"] is None
    assert view["redirect_http_code"] == 307
    api.wait_lb(lb["id"])
    code, body = api.put(url, {"l7policy": {"action": "REJECT", "name": "r",
                                            "admin_state_up": False}})
    view = body["l7policy"]
    assert view["action"] == "REJECT" and view["redirect_prefix"] is None
    assert view["redirect_http_code"] is None and view["name"] == "r"
    api.wait_lb(lb["id"])
    view = api.get(url)[1]["l7policy"]
    assert view["admin_state_up"] is False and view["operating_status"] == "OFFLINE"


@pytest.mark.parametrize(("fields", "message"), [
    ({}, "Invalid L7 Policy arguments: Invalid update options"),
    ({"action": None}, "Invalid L7 Policy action specified: None"),
    ({"action": "REDIRECT_TO_URL"},
     "Invalid L7 Policy arguments: redirect_url must not be None"),
    ({"action": "REDIRECT_TO_POOL"},
     "Invalid L7 Policy arguments: redirect_pool_id or redirect_pool must not be None"),
    ({"redirect_url": "http://a.example", "redirect_pool_id": "POOL"},
     "Invalid L7 Policy arguments: Cannot specify redirect_pool_id and redirect_url or "
     "redirect_prefix at the same time"),
])
def test_update_rejections(env, fields, message):
    if fields.get("redirect_pool_id") == "POOL":
        fields["redirect_pool_id"] = env["pool"]
    pol = make_policy(env)
    assert fault(env["api"].put(f"{POLICIES}/{pol['id']}", {"l7policy": fields})) == (
        400, message)


def test_update_cannot_drop_the_target(env):
    api = env["api"]
    pol = make_policy(env, action="REDIRECT_TO_POOL", redirect_pool_id=env["pool"])
    assert fault(api.put(f"{POLICIES}/{pol['id']}", {"l7policy": {"redirect_pool_id": None}})) \
        == (400, "Invalid L7 Policy arguments: redirect_pool_id or redirect_pool must not be "
                 "None")
    url = make_policy(env, action="REDIRECT_TO_URL", redirect_url="http://a.example")
    assert fault(api.put(f"{POLICIES}/{url['id']}", {"l7policy": {"redirect_url": None}})) == (
        400, "Invalid L7 Policy arguments: redirect_url must not be None")
    code, body = api.put(f"{POLICIES}/{url['id']}", {"l7policy": {"redirect_http_code": None,
                                                                 "redirect_prefix": None}})
    assert code == 200 and body["l7policy"]["redirect_http_code"] == 302
    assert body["l7policy"]["redirect_url"] == "http://a.example"


def test_update_checks_redirect_pool_and_immutables(env):
    api, lb = env["api"], env["lb"]
    pol = make_policy(env)
    url = f"{POLICIES}/{pol['id']}"
    missing = str(uuid.uuid4())
    assert fault(api.put(url, {"l7policy": {"redirect_pool_id": missing}})) == (
        404, f"Pool {missing} not found.")
    tcp_pool = add_pool(api, lb, "HTTPS")
    code, body = api.put(url, {"l7policy": {"redirect_pool_id": tcp_pool}})
    assert code == 400 and "The pool protocol 'HTTPS' is invalid" in body["faultstring"]
    for key in ("listener_id", "rules"):
        code, body = api.put(url, {"l7policy": {key: None}})
        assert code == 400 and "Unknown attribute" in body["faultstring"]
    # ERROR rather than PENDING_*: the resync loop would settle a pending LB behind our back
    set_status(api, t.load_balancer, lb["id"], "ERROR")
    assert fault(api.put(url, {"l7policy": {"name": "x"}})) == (
        409, f"Load Balancer {lb['id']} is immutable and cannot be updated.")
    assert api.delete(url)[0] == 409


# policy delete / show / list --------------------------------------------------------------------
def test_delete_policy_and_its_rules(env):
    api, lb, listener = env["api"], env["lb"], env["listener"]
    pol = make_policy(env)
    rule = make_rule(env, pol["id"])
    with paused(api):
        assert api.delete(f"{POLICIES}/{pol['id']}") == (204, None)
        assert api.get(f"{POLICIES}/{pol['id']}")[1]["l7policy"]["provisioning_status"] == \
            "PENDING_DELETE"
        assert status_of(api, t.listener, listener) == "PENDING_UPDATE"
    api.wait_lb(lb["id"])
    assert fault(api.get(f"{POLICIES}/{pol['id']}")) == (
        404, f"L7 Policy {pol['id']} not found.")
    assert api.get(rules_url(pol["id"])) == (404, parent_missing(pol["id"]))
    with api.service.engine.connect() as conn:
        assert conn.execute(select(t.l7rule).where(t.l7rule.c.id == rule["id"])).first() is None
    assert api.delete(f"{POLICIES}/{pol['id']}")[0] == 404


def test_policy_list_filters_and_pagination(env):
    api, lb = env["api"], env["lb"]
    other = add_listener(api, lb, "HTTP", 8080)
    p1 = make_policy(env, name="one")["id"]
    p2 = make_policy(env, name="two", action="REDIRECT_TO_URL",
                     redirect_url="http://a.example", tags=["blue"])["id"]
    code, body = post_policy(api, other, name="three")
    p3 = body["l7policy"]["id"]
    api.wait_lb(lb["id"])
    code, body = api.get(POLICIES)
    assert [p["id"] for p in body["l7policies"]] == [p1, p2, p3]
    assert body["l7policies_links"] == [] or body["l7policies_links"][0]["rel"] == "next"
    code, body = api.get(f"{POLICIES}?listener_id={other}")
    assert [p["id"] for p in body["l7policies"]] == [p3]
    code, body = api.get(f"{POLICIES}?action=REDIRECT_TO_URL")
    assert [p["id"] for p in body["l7policies"]] == [p2]
    code, body = api.get(f"{POLICIES}?redirect_http_code=302")
    assert [p["id"] for p in body["l7policies"]] == [p2]
    code, body = api.get(f"{POLICIES}?tags-any=blue,green")
    assert [p["id"] for p in body["l7policies"]] == [p2]
    code, body = api.get(f"{POLICIES}?limit=1&marker={p1}")
    assert [p["id"] for p in body["l7policies"]] == [p2]
    assert {link["rel"] for link in body["l7policies_links"]} == {"next", "previous"}
    code, body = api.get(f"{POLICIES}?sort=name:desc&fields=name")
    assert code == 200
    assert body["l7policies"] == [{"name": "two"}, {"name": "three"}, {"name": "one"}]
    assert api.get(f"{POLICIES}?rules=1")[0] == 400


# rules ------------------------------------------------------------------------------------------
def test_rule_create_show_locking(env):
    api, lb, listener = env["api"], env["lb"], env["listener"]
    pol = make_policy(env)
    with paused(api):
        code, body = api.post(rules_url(pol["id"]), {"rule": {
            "type": "COOKIE", "compare_type": "REGEX", "key": "session", "value": "^a.*$",
            "tags": ["t"]}})
        assert code == 201, body
        rule = body["rule"]
        assert set(rule) == RULE_KEYS
        assert rule["invert"] is False and rule["admin_state_up"] is True
        assert (rule["provisioning_status"], rule["operating_status"]) == (
            "PENDING_CREATE", "OFFLINE")
        assert rule["tenant_id"] == lb["project_id"]
        assert status_of(api, t.l7policy, pol["id"]) == "PENDING_UPDATE"
        assert status_of(api, t.listener, listener) == "PENDING_UPDATE"
        assert status_of(api, t.load_balancer, lb["id"]) == "PENDING_UPDATE"
        assert fault(api.post(rules_url(pol["id"]), {"rule": {
            "type": "PATH", "compare_type": "EQUAL_TO", "value": "/"}})) == (
            409, f"L7Policy {pol['id']} is immutable and cannot be updated.")
    api.wait_lb(lb["id"])
    code, body = api.get(f"{rules_url(pol['id'])}/{rule['id']}")
    assert code == 200 and body["rule"]["provisioning_status"] == "ACTIVE"
    assert body["rule"]["operating_status"] == "ONLINE"
    assert api.get(f"{POLICIES}/{pol['id']}")[1]["l7policy"]["rules"] == [{"id": rule["id"]}]
    set_status(api, t.load_balancer, lb["id"], "ERROR")
    assert fault(api.post(rules_url(pol["id"]), {"rule": {
        "type": "PATH", "compare_type": "EQUAL_TO", "value": "/"}})) == (
        409, f"Load Balancer {lb['id']} is immutable and cannot be updated.")


@pytest.mark.parametrize(("rule", "reason"), [
    ({"type": "HEADER", "compare_type": "EQUAL_TO", "value": "x"},
     "Invalid L7 Rule: L7 rule type requires a key"),
    ({"type": "COOKIE", "compare_type": "EQUAL_TO", "value": "x"},
     "Invalid L7 Rule: L7 rule type requires a key"),
    ({"type": "HEADER", "compare_type": "EQUAL_TO", "key": "bad key", "value": "x"},
     "Invalid characters in key"),
    ({"type": "HEADER", "compare_type": "EQUAL_TO", "key": "X-A", "value": "a b"},
     "Invalid characters in header value"),
    ({"type": "COOKIE", "compare_type": "CONTAINS", "key": "c", "value": "a;b"},
     "Invalid characters in cookie value"),
    ({"type": "COOKIE", "compare_type": "CONTAINS", "key": "c", "value": "a\"b"},
     "Invalid characters in cookie value"),
    ({"type": "PATH", "compare_type": "REGEX", "value": "(unclosed"},
     "Unable to parse regular expression: missing ), unterminated subpattern at position 0"),
    ({"type": "HOST_NAME", "compare_type": "ENDS_WITH", "value": "a b"},
     "Invalid characters in comparison value"),
    ({"type": "FILE_TYPE", "compare_type": "STARTS_WITH", "value": "jpg"},
     "Invalid L7 Rule: invalid comparison type for rule type"),
    ({"type": "FILE_TYPE", "compare_type": "CONTAINS", "value": "jpg"},
     "Invalid L7 Rule: invalid comparison type for rule type"),
    ({"type": "SSL_CONN_HAS_CERT", "compare_type": "EQUAL_TO", "value": "false"},
     "Invalid L7 Rule: L7rule value false is not a boolean True string."),
    ({"type": "SSL_CONN_HAS_CERT", "compare_type": "EQUAL_TO", "key": "k", "value": "true"},
     'Invalid L7 Rule: L7rule type SSL_CONN_HAS_CERT does not use the "key" field.'),
    ({"type": "SSL_CONN_HAS_CERT", "compare_type": "CONTAINS", "value": "true"},
     "Invalid L7 Rule: L7rule type SSL_CONN_HAS_CERT only supports the EQUAL_TO compare type."),
    ({"type": "SSL_VERIFY_RESULT", "compare_type": "EQUAL_TO", "value": "-1"},
     "Invalid L7 Rule: L7rule type SSL_VERIFY_RESULT needs a int value, which is >= 0"),
    ({"type": "SSL_VERIFY_RESULT", "compare_type": "REGEX", "value": "0"},
     "Invalid L7 Rule: L7rule type SSL_VERIFY_RESULT only supports the EQUAL_TO compare type."),
    ({"type": "SSL_VERIFY_RESULT", "compare_type": "EQUAL_TO", "key": "k", "value": "0"},
     'Invalid L7 Rule: L7rule type SSL_VERIFY_RESULT does not use the "key" field.'),
    ({"type": "SSL_DN_FIELD", "compare_type": "EQUAL_TO", "value": "x"},
     "Invalid L7 Rule: L7rule type SSL_DN_FIELD needs to specify a key and a value."),
    ({"type": "SSL_DN_FIELD", "compare_type": "EQUAL_TO", "key": "1CN", "value": "x"},
     "Invalid L7 Rule: Invalid L7rule distinguished name field."),
    ({"type": "SSL_DN_FIELD", "compare_type": "REGEX", "key": "CN", "value": "[x"},
     "Unable to parse regular expression: unterminated character set at position 0"),
    ({"type": "PATH", "compare_type": "EQUAL_TO", "value": ""},
     "Invalid L7 Rule: L7 rule type requires a value"),
])
def test_rule_validation_table(env, rule, reason):
    pol = make_policy(env)
    assert fault(env["api"].post(rules_url(pol["id"]), {"rule": rule})) == (
        400, f"Error parsing L7Rule: {reason}")


@pytest.mark.parametrize("rule", [
    {"type": "HEADER", "compare_type": "EQUAL_TO", "key": "X-A", "value": "\"a b\""},
    {"type": "HEADER", "compare_type": "STARTS_WITH", "key": "X-Forwarded-For", "value": "10."},
    {"type": "COOKIE", "compare_type": "EQUAL_TO", "key": "sess", "value": "abc/def=="},
    {"type": "FILE_TYPE", "compare_type": "EQUAL_TO", "value": "jpg"},
    {"type": "FILE_TYPE", "compare_type": "REGEX", "value": "^(jpg|png)$"},
    {"type": "SSL_CONN_HAS_CERT", "compare_type": "EQUAL_TO", "value": "TRUE"},
    {"type": "SSL_VERIFY_RESULT", "compare_type": "EQUAL_TO", "value": "0"},
    {"type": "SSL_DN_FIELD", "compare_type": "STARTS_WITH", "key": "OU-1", "value": "eng"},
    {"type": "HOST_NAME", "compare_type": "EQUAL_TO", "value": "www.example.com"},
])
def test_rule_validation_accepts(env, rule):
    pol = make_policy(env)
    code, body = env["api"].post(rules_url(pol["id"]), {"rule": rule})
    assert code == 201, body


@pytest.mark.parametrize(("fields", "needle"), [
    ({"value": "a\nb"}, "field/attribute value"),
    ({"key": "X\r\nInjected: 1", "type": "HEADER"}, "field/attribute key"),
    ({"type": "QUERY"}, "Value should be one of: HOST_NAME"),
    ({"compare_type": "LIKE"}, "Value should be one of: REGEX"),
    ({"value": "v" * 256}, "maximum character requirement of 255"),
    ({"l7policy_id": str(uuid.uuid4())}, "Unknown attribute"),
])
def test_rule_field_validation(env, fields, needle):
    pol = make_policy(env)
    body = {"type": "PATH", "compare_type": "REGEX", "value": "x", **fields}
    code, data = env["api"].post(rules_url(pol["id"]), {"rule": body})
    assert code == 400, data
    assert needle in data["faultstring"]


def test_rule_missing_policy_and_wrong_path(env):
    api = env["api"]
    missing = str(uuid.uuid4())
    body = {"rule": {"type": "PATH", "compare_type": "EQUAL_TO", "value": "/"}}
    assert api.post(rules_url(missing), body) == (404, parent_missing(missing))
    assert api.get(rules_url(missing)) == (404, parent_missing(missing))
    keyless = {"rule": {"type": "HEADER", "compare_type": "EQUAL_TO", "value": "/"}}
    # upstream's _lookup finds the policy before the body is read
    assert api.post(rules_url(missing), keyless) == (404, parent_missing(missing))
    assert api.delete(f"{rules_url(missing)}/{missing}") == (404, parent_missing(missing))
    p1, p2 = make_policy(env), make_policy(env)
    rule = make_rule(env, p1["id"])
    for method in ("get", "delete"):
        assert fault(getattr(api, method)(f"{rules_url(p2['id'])}/{rule['id']}")) == (
            404, f"L7 Rule {rule['id']} not found.")
    assert api.put(f"{rules_url(p2['id'])}/{rule['id']}", {"rule": {"invert": True}})[0] == 404


def test_too_many_rules(env):
    api = env["api"]
    rule = {"type": "PATH", "compare_type": "STARTS_WITH", "value": "/a"}
    pol = make_policy(env, rules=[rule] * 50)
    assert len(pol["rules"]) == 50
    assert fault(api.post(rules_url(pol["id"]), {"rule": rule})) == (
        409, f"Too many rules on L7 policy {pol['id']}")


def test_rule_update_merges_and_validates(env):
    api, lb = env["api"], env["lb"]
    pol = make_policy(env)
    rule = make_rule(env, pol["id"], type="HEADER", key="X-A", value="v", invert=True)
    url = f"{rules_url(pol['id'])}/{rule['id']}"
    code, body = api.put(url, {"rule": {"invert": None, "value": "w", "tags": ["n"]}})
    assert code == 200, body
    new = body["rule"]
    assert new["invert"] is False and new["value"] == "w" and new["key"] == "X-A"
    assert new["tags"] == ["n"] and new["provisioning_status"] == "PENDING_UPDATE"
    assert "l7policy_id" not in new
    api.wait_lb(lb["id"])
    code, body = api.put(url, {"rule": {"type": "PATH"}})
    assert code == 200 and body["rule"]["key"] is None  # PATH does not use a key
    api.wait_lb(lb["id"])
    assert fault(api.put(url, {"rule": {"type": "COOKIE"}})) == (
        400, "Error parsing L7Rule: Invalid L7 Rule: L7 rule type requires a key")
    assert fault(api.put(url, {"rule": {"compare_type": "REGEX", "value": "("}}))[0] == 400
    assert fault(api.put(url, {"rule": {"value": None}})) == (
        400, "Error parsing L7Rule: Invalid L7 Rule: L7 rule type requires a value")
    code, body = api.put(url, {"rule": {"type": "SSL_DN_FIELD", "key": "CN",
                                        "compare_type": "EQUAL_TO", "value": "x"}})
    assert code == 200, body
    api.wait_lb(lb["id"])
    code, body = api.put(url, {"rule": {"admin_state_up": False}})
    assert code == 200
    api.wait_lb(lb["id"])
    view = api.get(url)[1]["rule"]
    assert view["admin_state_up"] is False and view["operating_status"] == "OFFLINE"


def test_rule_delete_and_list(env):
    api, lb = env["api"], env["lb"]
    pol = make_policy(env)
    r1 = make_rule(env, pol["id"], compare_type="EQUAL_TO", value="/a")["id"]
    r2 = make_rule(env, pol["id"], compare_type="STARTS_WITH", value="/b")["id"]
    r3 = make_rule(env, pol["id"], compare_type="EQUAL_TO", value="/c", invert=True)["id"]
    other = make_policy(env)
    make_rule(env, other["id"])
    code, body = api.get(rules_url(pol["id"]))
    assert code == 200 and [r["id"] for r in body["rules"]] == [r1, r2, r3]
    assert "rules_links" in body
    code, body = api.get(f"{rules_url(pol['id'])}?compare_type=EQUAL_TO")
    assert [r["id"] for r in body["rules"]] == [r1, r3]
    code, body = api.get(f"{rules_url(pol['id'])}?invert=true")
    assert [r["id"] for r in body["rules"]] == [r3]
    code, body = api.get(f"{rules_url(pol['id'])}?limit=2")
    assert [r["id"] for r in body["rules"]] == [r1, r2]
    assert [link["rel"] for link in body["rules_links"]] == ["next"]
    code, body = api.get(f"{rules_url(pol['id'])}?fields=value&sort=value:desc")
    assert body["rules"] == [{"value": "/c"}, {"value": "/b"}, {"value": "/a"}]
    # every attribute is a filter, also the one the path already fixes (openstacksdk sends it)
    code, body = api.get(f"{rules_url(pol['id'])}?l7policy_id={pol['id']}")
    assert [r["id"] for r in body["rules"]] == [r1, r2, r3]
    code, body = api.get(f"{rules_url(pol['id'])}?l7policy_id={other['id']}")
    assert (code, body["rules"]) == (200, [])
    with paused(api):
        assert api.delete(f"{rules_url(pol['id'])}/{r2}") == (204, None)
        assert status_of(api, t.l7rule, r2) == "PENDING_DELETE"
        assert status_of(api, t.l7policy, pol["id"]) == "PENDING_UPDATE"
    api.wait_lb(lb["id"])
    code, body = api.get(rules_url(pol["id"]))
    assert [r["id"] for r in body["rules"]] == [r1, r3]
    assert fault(api.get(f"{rules_url(pol['id'])}/{r2}")) == (404, f"L7 Rule {r2} not found.")


def test_quotas(env):
    api, lb, listener = env["api"], env["lb"], env["listener"]
    enforce_quotas(api)
    with api.service.engine.begin() as conn:
        conn.execute(t.quota.insert().values(project_id=lb["project_id"], l7policy=2,
                                             l7rule=3))
    rule = {"type": "PATH", "compare_type": "STARTS_WITH", "value": "/a"}
    assert fault(post_policy(api, listener, rules=[rule] * 4)) == (
        403, "Quota has been met for resources: L7 Rule")
    pol = make_policy(env, rules=[rule] * 2)
    make_rule(env, pol["id"])
    assert fault(api.post(rules_url(pol["id"]), {"rule": rule})) == (
        403, "Quota has been met for resources: L7 Rule")
    make_policy(env)
    assert fault(post_policy(api, listener)) == (
        403, "Quota has been met for resources: L7 Policy")


# seen from the other resources ------------------------------------------------------------------
def test_policies_on_listener_pool_and_status_tree(env):
    api, lb, listener, pool = env["api"], env["lb"], env["listener"], env["pool"]
    first = make_policy(env, action="REDIRECT_TO_POOL", redirect_pool_id=pool)["id"]
    second = make_policy(env, position=1)["id"]
    code, body = api.get(f"{LISTENERS}/{listener}")
    assert code == 200 and body["listener"]["l7policies"] == [{"id": second}, {"id": first}]
    assert fault(api.delete(f"{POOLS}/{pool}")) == (
        409, f"Pool {pool} is in use by L7 policy {first}")

    def tree_pools() -> list[str]:
        tree = api.get(f"/v2/lbaas/loadbalancers/{lb['id']}/status")[1]
        return [p["id"] for p in tree["statuses"]["loadbalancer"]["listeners"][0]["pools"]]
    assert tree_pools() == []  # a policy without rules never matches
    make_rule(env, first)
    assert tree_pools() == [pool]
